// Codable shapes of the SageMaker API, with SageMaker's own member names so the code can be read
// next to the AWS documentation. Every member is optional on the wire: a missing required member
// is reported by validation in SageMaker's words ("Member must not be null"), not by the decoder.

// MARK: - CreateModel

public struct CreateModelRequest: Codable, Sendable, Equatable {
    public var ModelName: String?
    public var PrimaryContainer: ContainerDefinition?
    public var Containers: [ContainerDefinition]?
    public var ExecutionRoleArn: String?
    public var EnableNetworkIsolation: Bool?
    public var Tags: [Tag]?

    public init(ModelName: String? = nil, PrimaryContainer: ContainerDefinition? = nil) {
        self.ModelName = ModelName
        self.PrimaryContainer = PrimaryContainer
    }
}

public struct ContainerDefinition: Codable, Sendable, Equatable {
    public var ContainerHostname: String?
    public var Image: String?
    public var Mode: String?
    public var ModelDataUrl: String?
    public var Environment: [String: String]?

    public init(Image: String? = nil, ModelDataUrl: String? = nil, Environment: [String: String]? = nil) {
        self.Image = Image
        self.ModelDataUrl = ModelDataUrl
        self.Environment = Environment
    }
}

public struct Tag: Codable, Sendable, Equatable {
    public var Key: String?
    public var Value: String?
}

// MARK: - CreateTransformJob

public struct CreateTransformJobRequest: Codable, Sendable, Equatable {
    public var TransformJobName: String?
    public var ModelName: String?
    public var MaxConcurrentTransforms: Int?
    public var ModelClientConfig: ModelClientConfig?
    public var MaxPayloadInMB: Int?
    public var BatchStrategy: String?
    public var Environment: [String: String]?
    public var TransformInput: TransformInput?
    public var TransformOutput: TransformOutput?
    public var DataCaptureConfig: BatchDataCaptureConfig?
    public var TransformResources: TransformResources?
    public var DataProcessing: DataProcessing?
    public var Tags: [Tag]?
    public var ExperimentConfig: ExperimentConfig?

    public init() {}
}

public struct ModelClientConfig: Codable, Sendable, Equatable {
    public var InvocationsTimeoutInSeconds: Int?
    public var InvocationsMaxRetries: Int?
    public init(InvocationsTimeoutInSeconds: Int? = nil, InvocationsMaxRetries: Int? = nil) {
        self.InvocationsTimeoutInSeconds = InvocationsTimeoutInSeconds
        self.InvocationsMaxRetries = InvocationsMaxRetries
    }
}

public struct TransformInput: Codable, Sendable, Equatable {
    public var DataSource: TransformDataSource?
    public var ContentType: String?
    public var CompressionType: String?
    public var SplitType: String?
    public init() {}
}

public struct TransformDataSource: Codable, Sendable, Equatable {
    public var S3DataSource: TransformS3DataSource?
    public init(S3DataSource: TransformS3DataSource? = nil) { self.S3DataSource = S3DataSource }
}

public struct TransformS3DataSource: Codable, Sendable, Equatable {
    public var S3DataType: String?
    public var S3Uri: String?
    public init(S3DataType: String? = nil, S3Uri: String? = nil) {
        self.S3DataType = S3DataType
        self.S3Uri = S3Uri
    }
}

public struct TransformOutput: Codable, Sendable, Equatable {
    public var S3OutputPath: String?
    public var Accept: String?
    public var AssembleWith: String?
    public var KmsKeyId: String?
    public init() {}
}

public struct BatchDataCaptureConfig: Codable, Sendable, Equatable {
    public var DestinationS3Uri: String?
    public var KmsKeyId: String?
    public var GenerateInferenceId: Bool?
}

public struct TransformResources: Codable, Sendable, Equatable {
    public var InstanceType: String?
    public var InstanceCount: Int?
    public var VolumeKmsKeyId: String?
    public var TransformAmiVersion: String?
    public init() {}
}

public struct DataProcessing: Codable, Sendable, Equatable {
    public var InputFilter: String?
    public var OutputFilter: String?
    public var JoinSource: String?
    public init(InputFilter: String? = nil, OutputFilter: String? = nil, JoinSource: String? = nil) {
        self.InputFilter = InputFilter
        self.OutputFilter = OutputFilter
        self.JoinSource = JoinSource
    }
}

public struct ExperimentConfig: Codable, Sendable, Equatable {
    public var ExperimentName: String?
    public var TrialName: String?
    public var TrialComponentDisplayName: String?
    public var RunName: String?
}

// MARK: - DescribeTransformJob

public enum TransformJobStatus: String, Codable, Sendable {
    case InProgress, Completed, Failed, Stopping, Stopped
}

public struct DescribeTransformJobResponse: Codable, Sendable, Equatable {
    public var TransformJobName: String
    public var TransformJobArn: String
    public var TransformJobStatus: TransformJobStatus
    public var FailureReason: String?
    public var ModelName: String
    public var MaxConcurrentTransforms: Int?
    public var ModelClientConfig: ModelClientConfig?
    public var MaxPayloadInMB: Int?
    public var BatchStrategy: String?
    public var Environment: [String: String]?
    public var TransformInput: TransformInput
    public var TransformOutput: TransformOutput?
    public var DataCaptureConfig: BatchDataCaptureConfig?
    public var TransformResources: TransformResources
    /// Epoch seconds, as the AWS JSON 1.1 protocol sends timestamps.
    public var CreationTime: Double
    public var TransformStartTime: Double?
    public var TransformEndTime: Double?
    public var DataProcessing: DataProcessing?
    public var ExperimentConfig: ExperimentConfig?
    public var BatchformProgress: BatchformProgress?

    /// Echoes a request the way SageMaker's Describe does: defaults filled in where the service
    /// normalizes them (CompressionType, KmsKeyId, DataProcessing), and BatchStrategy,
    /// MaxPayloadInMB and MaxConcurrentTransforms only where the user set them.
    public init(
        request: CreateTransformJobRequest,
        arn: String,
        status: TransformJobStatus,
        failureReason: String? = nil,
        creationTime: Double,
        startTime: Double? = nil,
        endTime: Double? = nil
    ) {
        self.TransformJobName = request.TransformJobName ?? ""
        self.TransformJobArn = arn
        self.TransformJobStatus = status
        self.FailureReason = failureReason.map { String($0.prefix(1024)) }
        self.ModelName = request.ModelName ?? ""
        self.MaxConcurrentTransforms = request.MaxConcurrentTransforms
        self.ModelClientConfig = request.ModelClientConfig
        self.MaxPayloadInMB = request.MaxPayloadInMB
        self.BatchStrategy = request.BatchStrategy
        self.Environment = request.Environment
        var input = request.TransformInput ?? .init()
        input.CompressionType = input.CompressionType ?? "None"
        self.TransformInput = input
        var output = request.TransformOutput ?? .init()
        output.KmsKeyId = output.KmsKeyId ?? ""
        self.TransformOutput = output
        self.DataCaptureConfig = request.DataCaptureConfig
        self.TransformResources = request.TransformResources ?? .init()
        self.CreationTime = creationTime
        self.TransformStartTime = startTime
        self.TransformEndTime = endTime
        let processing = request.DataProcessing
        self.DataProcessing = .init(
            InputFilter: processing?.InputFilter ?? "$",
            OutputFilter: processing?.OutputFilter ?? "$",
            JoinSource: processing?.JoinSource ?? "None"
        )
        self.ExperimentConfig = request.ExperimentConfig
    }
}

/// ARNs in SageMaker's format: the caller's region (the one its request was signed for) and the
/// server's account ID (`--account-id`), since SDK code parses both out of ARNs.
public struct ResourceARN: Sendable, Hashable {
    public var region: String
    public var account: String

    /// For a request that names no region (unsigned): AWS's default region.
    public static let defaultRegion = "us-east-1"
    public static let defaultAccount = "000000000000"
    public static let standard = ResourceARN()

    public init(region: String = defaultRegion, account: String = defaultAccount) {
        self.region = region
        self.account = account
    }

    public func transformJob(_ name: String) -> String {
        "arn:aws:sagemaker:\(region):\(account):transform-job/\(name.lowercased())"
    }

    public func model(_ name: String) -> String {
        "arn:aws:sagemaker:\(region):\(account):model/\(name.lowercased())"
    }

    /// An account ID is 12 digits.
    public static func checkAccount(_ account: String) throws(ValidationException) {
        guard account.count == 12, account.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw ValidationException("--account-id must be 12 digits, like AWS account IDs, not '\(account)'.")
        }
    }
}
