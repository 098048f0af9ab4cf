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
        validating: CreateModelRequest(ModelName: "model", PrimaryContainer: .init(Image: "./serve", Environment: environment))
    )
}

@Suite struct EnvironmentTests {
    @Test func jobEnvironmentWinsOverTheModelsAndPlatformVariablesWinOverBoth() throws {
        let environment = InstanceEnvironment.build(
            model: try model(environment: ["SHARED": "model", "MODEL_ONLY": "m", "SAGEMAKER_BATCH": "no"]),
            job: try job { $0.Environment = ["SHARED": "job", "JOB_ONLY": "j"] }, modelDirectory: "/models/m"
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
            }, modelDirectory: "/m"
        )
        #expect(set["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == "2")
        #expect(set["SAGEMAKER_BATCH_STRATEGY"] == "SINGLE_RECORD")
        #expect(set["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] == "4")
    }
}

@Suite struct ExecutionParameterTests {
    @Test func bothSpellingsAreRead() {
        let upper = ExecutionParameters(json: Data(#"{"MaxConcurrentTransforms": 8, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}"#.utf8))
        #expect(upper == ExecutionParameters(maxConcurrentTransforms: 8, batchStrategy: .multiRecord, maxPayloadInMB: 6))
        let camel = ExecutionParameters(json: Data(#"{"BatchStrategy":"SingleRecord","MaxConcurrentTransforms":1}"#.utf8))
        #expect(camel == ExecutionParameters(maxConcurrentTransforms: 1, batchStrategy: .singleRecord))
        #expect(ExecutionParameters(json: Data("not json".utf8)) == nil)
    }

    @Test func requestThenContainerThenDefaults() throws {
        let container = ExecutionParameters(maxConcurrentTransforms: 8, batchStrategy: .singleRecord, maxPayloadInMB: 2)
        let fromContainer = ResolvedParameters(job: try job(), container: container)
        #expect(fromContainer.description == "MaxConcurrentTransforms=8, MaxPayloadInMB=2, BatchStrategy=SINGLE_RECORD")
        let fromRequest = ResolvedParameters(job: try job { $0.MaxConcurrentTransforms = 3; $0.MaxPayloadInMB = 1 }, container: container)
        #expect(fromRequest.description == "MaxConcurrentTransforms=3, MaxPayloadInMB=1, BatchStrategy=SINGLE_RECORD")
        let defaults = ResolvedParameters(job: try job(), container: nil)
        #expect(defaults.description == "MaxConcurrentTransforms=1, MaxPayloadInMB=6, BatchStrategy=MULTI_RECORD")
    }
}

@Suite struct ArchiveTests {
    /// Builds a .tar.gz with Python's tarfile, which can write the hostile entries we refuse.
    func archive(_ script: String) throws -> String {
        let directory = NSTemporaryDirectory() + "archive-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/model.tar.gz"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            """
            import io, tarfile
            t = tarfile.open('\(path)', 'w:gz')
            def add(name, data=b'', kind=tarfile.REGTYPE, link=''):
                info = tarfile.TarInfo(name); info.type = kind; info.linkname = link; info.size = len(data)
                t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            \(script)
            t.close()
            """,
        ]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return path
    }

    func extract(_ path: String) async throws -> String {
        let target = NSTemporaryDirectory() + "extracted-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let stream = try await LocalFileStore().openReader(.file(path: path))
        try await TarArchive.extract(from: GzipStream(AnyByteStream(stream), name: path), into: target, name: path)
        return target
    }

    @Test func unpacksFilesFoldersLinksAndTheSDKsRootEntry() async throws {
        let path = try archive(
            """
            add('/', kind=tarfile.DIRTYPE)
            add('model.joblib', b'weights')
            add('code/inference.py', b'def model_fn(d): pass')
            add('code/link.py', kind=tarfile.SYMTYPE, link='inference.py')
            add('./nested/deep/' + 'n' * 120 + '.txt', b'long name')
            """
        )
        let root = try await extract(path)
        #expect(FileManager.default.contents(atPath: root + "/model.joblib") == Data("weights".utf8))
        #expect(FileManager.default.contents(atPath: root + "/code/link.py") == Data("def model_fn(d): pass".utf8))
        #expect(FileManager.default.contents(atPath: root + "/nested/deep/" + String(repeating: "n", count: 120) + ".txt") == Data("long name".utf8))
    }

    @Test(arguments: [
        "add('../escape.txt', b'x')",
        "add('/etc/escape.txt', b'x')",
        "add('code/../../escape.txt', b'x')",
        "add('evil', kind=tarfile.SYMTYPE, link='/etc/passwd')",
        "add('evil', kind=tarfile.SYMTYPE, link='../../outside')",
        "add('evil', kind=tarfile.LNKTYPE, link='../outside')",
    ])
    func refusesEntriesThatEscape(_ entry: String) async throws {
        let path = try archive(entry)
        await #expect {
            _ = try await extract(path)
        } throws: { error in
            (error as? RuntimeError)?.code == .unsafeArchive
        }
    }
}
