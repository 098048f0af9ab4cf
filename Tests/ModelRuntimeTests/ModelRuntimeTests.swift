import Foundation
import ObjectStorage
import Records
import Testing
import TransformSpec

@testable import ModelRuntime

func job(_ change: (inout CreateTransformJobRequest) -> Void = { _ in }) throws -> TransformJobConfiguration {
    var request = CreateTransformJobRequest()
    request.TransformJobName = "job"
    request.ModelName = "model"
    var input = TransformInput()
    input.DataSource = .init(S3DataSource: .init(S3DataType: "S3Prefix", S3Uri: "in/"))
    input.SplitType = "Line"
    request.TransformInput = input
    var output = TransformOutput()
    output.S3OutputPath = "out/"
    request.TransformOutput = output
    var resources = TransformResources()
    resources.InstanceType = "ml.m5.large"
    resources.InstanceCount = 1
    request.TransformResources = resources
    change(&request)
    return try TransformJobConfiguration(validating: request)
}

func model(environment: [String: String]) throws -> ModelDefinition {
    try ModelDefinition(
        validating: CreateModelRequest(
            ModelName: "model",
            PrimaryContainer: .init(Image: "./serve", Environment: environment)
        )
    )
}

@Suite struct EnvironmentTests {
    @Test func jobEnvironmentWinsOverTheModelsAndPlatformVariablesWinOverBoth() throws {
        let environment = InstanceEnvironment.build(
            model: try model(environment: ["SHARED": "model", "MODEL_ONLY": "m", "SAGEMAKER_BATCH": "no"]),
            job: try job { $0.Environment = ["SHARED": "job", "JOB_ONLY": "j"] },
            modelDirectory: "/models/m"
        )
        #expect(environment["SHARED"] == "job")
        #expect(environment["MODEL_ONLY"] == "m")
        #expect(environment["JOB_ONLY"] == "j")
        #expect(environment["SAGEMAKER_BATCH"] == "true")
        #expect(environment["SM_MODEL_DIR"] == "/models/m")
    }

    @Test func batchParametersAreSetOnlyWhereTheRequestSetThem() throws {
        let unset = InstanceEnvironment.build(model: try model(environment: [:]), job: try job(), modelDirectory: "/m")
        #expect(unset["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == nil)
        #expect(unset["SAGEMAKER_BATCH_STRATEGY"] == nil)
        #expect(unset["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] == nil)
        let set = InstanceEnvironment.build(
            model: try model(environment: [:]),
            job: try job {
                $0.MaxPayloadInMB = 2
                $0.BatchStrategy = "SingleRecord"
                $0.MaxConcurrentTransforms = 4
            },
            modelDirectory: "/m"
        )
        #expect(set["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == "2")
        #expect(set["SAGEMAKER_BATCH_STRATEGY"] == "SINGLE_RECORD")
        #expect(set["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] == "4")
    }
}

@Suite struct ExecutionParameterTests {
    @Test func bothSpellingsAreRead() throws {
        let upper = try ExecutionParameters.parse(
            Data(#"{"MaxConcurrentTransforms": 8, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}"#.utf8)
        )
        #expect(
            upper == ExecutionParameters(maxConcurrentTransforms: 8, batchStrategy: .multiRecord, maxPayloadInMB: 6)
        )
        let camel = try ExecutionParameters.parse(
            Data(#"{"BatchStrategy":"SingleRecord","MaxConcurrentTransforms":1}"#.utf8)
        )
        #expect(camel == ExecutionParameters(maxConcurrentTransforms: 1, batchStrategy: .singleRecord))
        #expect(try ExecutionParameters.parse(Data("not json".utf8)) == nil)
    }

    /// A container is held to a request's limits: nothing it answers can overflow or exceed them.
    @Test(arguments: [
        #"{"MaxConcurrentTransforms": 4611686018427387904}"#,
        #"{"MaxConcurrentTransforms": 1e30}"#,
        #"{"MaxConcurrentTransforms": -1}"#,
        #"{"MaxConcurrentTransforms": 2.5}"#,
        #"{"MaxPayloadInMB": 101}"#,
        #"{"MaxConcurrentTransforms": 1000000, "MaxPayloadInMB": 100}"#,
        #"{"MaxConcurrentTransforms": "8"}"#,
    ])
    func outOfRangeAnswersAreRefusedNamingTheAnswer(_ answer: String) throws {
        #expect {
            _ = try ExecutionParameters.parse(Data(answer.utf8))
        } throws: { error in
            guard let error = error as? RuntimeError else { return false }
            return error.code == .badExecutionParameters && error.message.contains(answer)
        }
    }

    @Test func requestThenContainerThenDefaults() throws {
        let container = ExecutionParameters(maxConcurrentTransforms: 8, batchStrategy: .singleRecord, maxPayloadInMB: 2)
        let fromContainer = ResolvedParameters(job: try job(), container: container)
        #expect(fromContainer.description == "MaxConcurrentTransforms=8, MaxPayloadInMB=2, BatchStrategy=SINGLE_RECORD")
        let fromRequest = ResolvedParameters(
            job: try job {
                $0.MaxConcurrentTransforms = 3
                $0.MaxPayloadInMB = 1
            },
            container: container
        )
        #expect(fromRequest.description == "MaxConcurrentTransforms=3, MaxPayloadInMB=1, BatchStrategy=SINGLE_RECORD")
        let defaults = ResolvedParameters(job: try job(), container: nil)
        #expect(defaults.description == "MaxConcurrentTransforms=1, MaxPayloadInMB=6, BatchStrategy=MULTI_RECORD")
    }
}

@Suite struct FrameworkImageTests {
    /// Each framework image gets its container's default handlers in the built-in server.
    @Test(arguments: [
        ("batchform/python", "sklearn"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3", "sklearn"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "xgboost"),
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310", "pytorch"),
        (
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/huggingface-pytorch-inference:2.1-transformers4.37-cpu-py310",
            "huggingface"
        ),
        ("sagemaker-xgboost@sha256:0123", "xgboost"),
    ])
    func frameworkImagesNameTheirDefaults(_ image: String, _ framework: String) {
        #expect(BuiltinPythonRuntime.serves(image: image))
        #expect(BuiltinPythonRuntime.framework(of: image) == framework)
    }

    @Test func otherImagesAreNotTheBuiltInServers() {
        #expect(!BuiltinPythonRuntime.serves(image: "my-registry/my-model:1"))
        #expect(BuiltinPythonRuntime.framework(of: "tensorflow-inference:2.13") == nil)
    }
}
