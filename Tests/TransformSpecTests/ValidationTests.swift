import Testing

@testable import TransformSpec

/// A minimal valid request; each test breaks one thing.
func validRequest() -> CreateTransformJobRequest {
    var request = CreateTransformJobRequest()
    request.TransformJobName = "job-1"
    request.ModelName = "model-1"
    var input = TransformInput()
    input.DataSource = .init(S3DataSource: .init(S3DataType: "S3Prefix", S3Uri: "s3://bucket/in/"))
    request.TransformInput = input
    var output = TransformOutput()
    output.S3OutputPath = "s3://bucket/out/"
    request.TransformOutput = output
    var resources = TransformResources()
    resources.InstanceType = "ml.m5.large"
    resources.InstanceCount = 1
    request.TransformResources = resources
    return request
}

func validationMessage(_ request: CreateTransformJobRequest) -> String? {
    do {
        _ = try TransformJobConfiguration(validating: request)
        return nil
    } catch {
        return error.message
    }
}

@Suite struct ValidationTests {
    @Test func validRequestGetsSageMakerDefaults() throws {
        let job = try TransformJobConfiguration(validating: validRequest())
        #expect(job.splitType == .none)
        #expect(job.compression == .none)
        #expect(job.assembleWith == .none)
        #expect(job.invocationTimeoutSeconds == 600)
        #expect(job.invocationMaxRetries == 3)
        #expect(job.requestedBatchStrategy == nil)
        #expect(job.requestedMaxConcurrentTransforms == nil)
    }

    @Test func badJobNameUsesSageMakersMessage() {
        var request = validRequest()
        request.TransformJobName = "-bad"
        #expect(
            validationMessage(request)
                == "1 validation error detected: Value '-bad' at 'transformJobName' failed to satisfy constraint: "
                + "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
        )
    }

    @Test func consecutiveHyphensAreAllowedInJobNames() {
        var request = validRequest()
        request.TransformJobName = "a--b"
        #expect(validationMessage(request) == nil)
    }

    @Test func enumViolationListsTheAllowedValues() {
        var request = validRequest()
        request.TransformInput?.SplitType = "Lines"
        #expect(
            validationMessage(request)
                == "1 validation error detected: Value 'Lines' at 'transformInput.splitType' failed to satisfy "
                + "constraint: Member must satisfy enum value set: [None, Line, RecordIO, TFRecord]"
        )
    }

    @Test func severalViolationsAreCountedAndJoined() {
        var request = validRequest()
        request.TransformJobName = nil
        request.ModelClientConfig = .init(InvocationsTimeoutInSeconds: 0, InvocationsMaxRetries: 4)
        #expect(
            validationMessage(request)
                == "3 validation errors detected: Value null at 'transformJobName' failed to satisfy constraint: "
                + "Member must not be null; Value '0' at 'modelClientConfig.invocationsTimeoutInSeconds' failed to "
                + "satisfy constraint: Member must have value greater than or equal to 1; Value '4' at "
                + "'modelClientConfig.invocationsMaxRetries' failed to satisfy constraint: Member must have value "
                + "less than or equal to 3"
        )
    }

    @Test func payloadOver100MBIsRejected() {
        var request = validRequest()
        request.MaxPayloadInMB = 101
        #expect(validationMessage(request)?.contains("at 'maxPayloadInMB'") == true)
    }

    @Test func concurrencyTimesPayloadOver100IsRejected() {
        var request = validRequest()
        request.TransformInput?.SplitType = "Line"
        request.MaxConcurrentTransforms = 8
        request.MaxPayloadInMB = 20
        #expect(
            validationMessage(request)
                == "MaxConcurrentTransforms * MaxPayloadInMB cannot exceed 100 MB: 8 * 20 = 160. "
                + "Lower MaxConcurrentTransforms or MaxPayloadInMB."
        )
        request.MaxPayloadInMB = 12
        #expect(validationMessage(request) == nil)
    }

    /// The SageMaker SDK's integration test sends `strategy="SingleRecord"` with no split type.
    @Test func aBatchStrategyWithoutASplitTypeIsAccepted() throws {
        var request = validRequest()
        for strategy in ["SingleRecord", "MultiRecord"] {
            request.BatchStrategy = strategy
            #expect(validationMessage(request) == nil)
            #expect(try TransformJobConfiguration(validating: request).splitType == .none)
        }
    }

    @Test func environmentLimits() {
        var request = validRequest()
        request.Environment = Dictionary(uniqueKeysWithValues: (0..<17).map { ("K\($0)", "v") })
        #expect(
            validationMessage(request)?.contains(
                "at 'environment' failed to satisfy constraint: Member must have length less than or equal to 16"
            ) == true
        )
        request.Environment = ["1BAD": "v"]
        #expect(validationMessage(request)?.contains("Value '1BAD' at 'environment.key'") == true)
        request.Environment = ["GOOD": String(repeating: "x", count: 10241)]
        #expect(validationMessage(request)?.contains("at 'environment.value'") == true)
    }

    @Test func instanceTypeAndCount() {
        var request = validRequest()
        request.TransformResources?.InstanceType = "local"
        #expect(validationMessage(request)?.contains("Value 'local' at 'transformResources.instanceType'") == true)
        request.TransformResources?.InstanceType = "ml.g5.xlarge"
        request.TransformResources?.InstanceCount = 101
        #expect(validationMessage(request)?.contains("Member must have value less than or equal to 100") == true)
        #expect(transformInstanceTypes.count == 108)
    }

    @Test func augmentedManifestIsRejectedClearly() {
        var request = validRequest()
        request.TransformInput?.DataSource?.S3DataSource?.S3DataType = "AugmentedManifestFile"
        #expect(validationMessage(request)?.contains("Use S3Prefix or ManifestFile") == true)
    }

    @Test func localPathsAreAcceptedWhereS3UrisAre() {
        var request = validRequest()
        request.TransformInput?.DataSource?.S3DataSource?.S3Uri = "data/in/"
        request.TransformOutput?.S3OutputPath = "file:///tmp/out"
        #expect(validationMessage(request) == nil)
        request.TransformOutput?.S3OutputPath = "s3://"
        #expect(validationMessage(request)?.contains("at 'transformOutput.s3OutputPath'") == true)
    }

    @Test func zeroConcurrencyMeansAskTheContainer() throws {
        var request = validRequest()
        request.MaxConcurrentTransforms = 0
        #expect(try TransformJobConfiguration(validating: request).requestedMaxConcurrentTransforms == nil)
    }

    @Test func executionParameterSpellings() {
        #expect(BatchStrategy(anySpelling: "MULTI_RECORD") == .multiRecord)
        #expect(BatchStrategy(anySpelling: "MultiRecord") == .multiRecord)
        #expect(BatchStrategy(anySpelling: "single_record") == .singleRecord)
        #expect(BatchStrategy(anySpelling: "Batch") == nil)
    }

    @Test func modelNeedsAnImage() {
        #expect(throws: ValidationException.self) {
            try ModelDefinition(validating: CreateModelRequest(ModelName: "m", PrimaryContainer: .init()))
        }
        let model = try? ModelDefinition(
            validating: CreateModelRequest(
                ModelName: "m",
                PrimaryContainer: .init(Image: "./serve", Environment: ["A": "1"])
            )
        )
        #expect(model?.environment == ["A": "1"])
    }
}

@Suite struct DescribeTests {
    @Test func describeNormalizesDefaultsLikeSageMaker() {
        var request = validRequest()
        request.TransformInput?.ContentType = "text/csv"
        let describe = DescribeTransformJobResponse(
            request: request,
            arn: ResourceARN(region: "eu-west-1", account: "123456789012").transformJob("job-1"),
            status: .InProgress,
            creationTime: 1
        )
        #expect(describe.TransformInput.CompressionType == "None")
        #expect(describe.TransformOutput?.KmsKeyId == "")
        #expect(describe.DataProcessing == .init(InputFilter: "$", OutputFilter: "$", JoinSource: "None"))
        #expect(describe.BatchStrategy == nil)
        #expect(describe.MaxPayloadInMB == nil)
        #expect(describe.TransformJobArn == "arn:aws:sagemaker:eu-west-1:123456789012:transform-job/job-1")
    }

    @Test func failureReasonIsCutAt1024Characters() {
        let describe = DescribeTransformJobResponse(
            request: validRequest(),
            arn: "a",
            status: .Failed,
            failureReason: String(repeating: "x", count: 2000),
            creationTime: 1
        )
        #expect(describe.FailureReason?.count == 1024)
    }
}
