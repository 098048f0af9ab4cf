// The validated, typed form of a request: what the engine runs. Built only by `init(validating:)`,
// so everything downstream can trust the values and never sees an unknown enum string.

public enum SplitType: String, Sendable, CaseIterable {
    case none = "None"
    case line = "Line"
    case recordIO = "RecordIO"
    case tfRecord = "TFRecord"
}

public enum BatchStrategy: String, Sendable, CaseIterable {
    case singleRecord = "SingleRecord"
    case multiRecord = "MultiRecord"

    /// The spelling of the `SAGEMAKER_BATCH_STRATEGY` variable and `/execution-parameters`.
    public var environmentValue: String { self == .singleRecord ? "SINGLE_RECORD" : "MULTI_RECORD" }

    /// Accepts both `MULTI_RECORD` and `MultiRecord` (containers use either), any case.
    public init?(anySpelling value: String) {
        switch String(value.filter { $0 != "_" }).lowercased() {
        case "singlerecord": self = .singleRecord
        case "multirecord": self = .multiRecord
        default: return nil
        }
    }
}

public enum CompressionType: String, Sendable, CaseIterable {
    case none = "None"
    case gzip = "Gzip"
}

public enum AssemblyType: String, Sendable, CaseIterable {
    case none = "None"
    case line = "Line"
}

public enum S3DataType: String, Sendable {
    case s3Prefix = "S3Prefix"
    case manifestFile = "ManifestFile"
}

public struct TransformJobConfiguration: Sendable {
    public var name: String
    public var modelName: String
    public var dataType: S3DataType
    /// The input prefix or manifest location, as given (a path, `file://` or `s3://` URI).
    public var inputURI: String
    public var contentType: String?
    public var compression: CompressionType
    public var splitType: SplitType
    public var outputPath: String
    public var accept: String?
    public var assembleWith: AssemblyType
    /// What the request set; nil means "ask the container, then use the default".
    public var requestedMaxConcurrentTransforms: Int?
    public var requestedMaxPayloadInMB: Int?
    public var requestedBatchStrategy: BatchStrategy?
    public var invocationTimeoutSeconds: Int
    public var invocationMaxRetries: Int
    public var environment: [String: String]
    public var instanceCount: Int
    public var instanceType: String
    /// DataProcessing, defaults applied: `$`, `$`, JoinSource None.
    public var inputFilter: String
    public var outputFilter: String
    public var joinsInput: Bool
    /// DataProcessing and CSV settings, checked with the rest of the request.
    public var dataProcessing: DataProcessingSettings

    /// SageMaker's integers are Java ints; no per-instance concurrency needs more.
    public static let maxConcurrentTransforms = Int(Int32.max)

    /// SageMaker's rule for the request, and Batchform's for a container's `/execution-parameters`
    /// answer (`source` says which, for the message). Computed without overflow.
    public static func checkConcurrencyTimesPayload(
        _ concurrency: Int,
        _ payload: Int,
        source: String
    ) throws(ValidationException) {
        let (product, overflow) = concurrency.multipliedReportingOverflow(by: payload)
        guard overflow || product > 100 else { return }
        throw ValidationException(
            "\(source)MaxConcurrentTransforms * MaxPayloadInMB cannot exceed 100 MB: \(concurrency) * \(payload) = "
                + "\(overflow ? "more than \(Int.max)" : String(product)). Lower MaxConcurrentTransforms or MaxPayloadInMB."
        )
    }

    public static let defaultInvocationTimeoutSeconds = 600
    public static let defaultInvocationMaxRetries = 3

    public init(validating request: CreateTransformJobRequest) throws(ValidationException) {
        var checker = ConstraintChecker()
        checker.required(request.TransformJobName, at: "transformJobName")
        checker.required(request.ModelName, at: "modelName")
        checker.required(request.TransformInput, at: "transformInput")
        checker.required(request.TransformOutput, at: "transformOutput")
        checker.required(request.TransformResources, at: "transformResources")
        checker.string(request.TransformJobName, at: "transformJobName", min: 1, max: 63, pattern: Patterns.jobName)
        checker.string(request.ModelName, at: "modelName", max: 63, pattern: Patterns.modelName)
        checker.integer(
            request.MaxConcurrentTransforms,
            at: "maxConcurrentTransforms",
            min: 0,
            max: Self.maxConcurrentTransforms
        )
        checker.integer(request.MaxPayloadInMB, at: "maxPayloadInMB", min: 0, max: 100)
        checker.string(
            request.BatchStrategy,
            at: "batchStrategy",
            oneOf: BatchStrategy.allCases.map(\.rawValue)
        )
        checker.integer(
            request.ModelClientConfig?.InvocationsTimeoutInSeconds,
            at: "modelClientConfig.invocationsTimeoutInSeconds",
            min: 1,
            max: 3600
        )
        checker.integer(
            request.ModelClientConfig?.InvocationsMaxRetries,
            at: "modelClientConfig.invocationsMaxRetries",
            min: 0,
            max: 3
        )
        checker.map(
            request.Environment,
            at: "environment",
            maxEntries: 16,
            keyMax: 1024,
            keyPattern: Patterns.environmentKey,
            valueMax: 10240
        )

        let input = request.TransformInput
        let source = input?.DataSource?.S3DataSource
        if input != nil { checker.required(input?.DataSource, at: "transformInput.dataSource") }
        if input?.DataSource != nil {
            checker.required(source, at: "transformInput.dataSource.s3DataSource")
        }
        if source != nil {
            checker.required(source?.S3DataType, at: "transformInput.dataSource.s3DataSource.s3DataType")
            checker.required(source?.S3Uri, at: "transformInput.dataSource.s3DataSource.s3Uri")
        }
        checker.string(
            source?.S3DataType,
            at: "transformInput.dataSource.s3DataSource.s3DataType",
            oneOf: ["ManifestFile", "S3Prefix", "AugmentedManifestFile", "Converse"]
        )
        checkLocation(source?.S3Uri, at: "transformInput.dataSource.s3DataSource.s3Uri", &checker)
        checker.string(input?.ContentType, at: "transformInput.contentType", max: 256)
        checker.string(
            input?.CompressionType,
            at: "transformInput.compressionType",
            oneOf: CompressionType.allCases.map(\.rawValue)
        )
        checker.string(input?.SplitType, at: "transformInput.splitType", oneOf: SplitType.allCases.map(\.rawValue))

        let output = request.TransformOutput
        if output != nil { checker.required(output?.S3OutputPath, at: "transformOutput.s3OutputPath") }
        checkLocation(output?.S3OutputPath, at: "transformOutput.s3OutputPath", &checker)
        checker.string(output?.Accept, at: "transformOutput.accept", max: 256)
        checker.string(
            output?.AssembleWith,
            at: "transformOutput.assembleWith",
            oneOf: AssemblyType.allCases.map(\.rawValue)
        )
        checker.string(output?.KmsKeyId, at: "transformOutput.kmsKeyId", max: 2048, pattern: Patterns.kmsKeyId)

        let resources = request.TransformResources
        if resources != nil {
            checker.required(resources?.InstanceType, at: "transformResources.instanceType")
            checker.required(resources?.InstanceCount, at: "transformResources.instanceCount")
        }
        checker.string(resources?.InstanceType, at: "transformResources.instanceType", oneOf: transformInstanceTypes)
        checker.integer(resources?.InstanceCount, at: "transformResources.instanceCount", min: 1, max: 100)
        checker.string(
            resources?.VolumeKmsKeyId,
            at: "transformResources.volumeKmsKeyId",
            max: 2048,
            pattern: Patterns.kmsKeyId
        )
        checker.string(
            resources?.TransformAmiVersion,
            at: "transformResources.transformAmiVersion",
            min: 1,
            max: 63,
            pattern: Patterns.amiVersion
        )

        let processing = request.DataProcessing
        checker.string(processing?.InputFilter, at: "dataProcessing.inputFilter", max: 63)
        checker.string(processing?.OutputFilter, at: "dataProcessing.outputFilter", max: 63)
        checker.string(processing?.JoinSource, at: "dataProcessing.joinSource", oneOf: ["Input", "None"])
        if let capture = request.DataCaptureConfig {
            checker.required(capture.DestinationS3Uri, at: "dataCaptureConfig.destinationS3Uri")
            checkLocation(capture.DestinationS3Uri, at: "dataCaptureConfig.destinationS3Uri", &checker)
        }
        checkTags(request.Tags, at: "tags", &checker)
        if let experiment = request.ExperimentConfig {
            for (value, path) in [
                (experiment.ExperimentName, "experimentName"), (experiment.TrialName, "trialName"),
                (experiment.TrialComponentDisplayName, "trialComponentDisplayName"), (experiment.RunName, "runName"),
            ] {
                checker.string(
                    value,
                    at: "experimentConfig.\(path)",
                    min: 1,
                    max: 120,
                    pattern: Patterns.experimentName
                )
            }
        }
        if let error = checker.result() { throw error }

        // Past the shape constraints: the rules SageMaker states in prose.
        guard let name = request.TransformJobName, let modelName = request.ModelName, let source,
            let dataTypeValue = source.S3DataType, let inputURI = source.S3Uri, let outputPath = output?.S3OutputPath,
            let instanceType = resources?.InstanceType, let instanceCount = resources?.InstanceCount
        else { throw ValidationException("The request is missing required members.") }
        guard let dataType = S3DataType(rawValue: dataTypeValue) else {
            throw ValidationException(
                "S3DataType \(dataTypeValue) is not supported for batch transform. Use S3Prefix or ManifestFile."
            )
        }
        let splitType = input?.SplitType.flatMap(SplitType.init(rawValue:)) ?? .none
        // With SplitType None each object is sent whole, whatever BatchStrategy says (SageMaker
        // accepts the pair; the SDK's own integration test sends it).
        let strategy = request.BatchStrategy.flatMap(BatchStrategy.init(rawValue:))
        if let concurrency = request.MaxConcurrentTransforms, let payload = request.MaxPayloadInMB {
            try Self.checkConcurrencyTimesPayload(concurrency, payload, source: "")
        }
        self.name = name
        self.modelName = modelName
        self.dataType = dataType
        self.inputURI = inputURI
        self.contentType = input?.ContentType
        self.compression = input?.CompressionType.flatMap(CompressionType.init(rawValue:)) ?? .none
        self.splitType = splitType
        self.outputPath = outputPath
        self.accept = output?.Accept
        self.assembleWith = output?.AssembleWith.flatMap(AssemblyType.init(rawValue:)) ?? .none
        // 0 means "not set" for MaxConcurrentTransforms: SageMaker then asks the container.
        self.requestedMaxConcurrentTransforms = request.MaxConcurrentTransforms.flatMap { $0 == 0 ? nil : $0 }
        self.requestedMaxPayloadInMB = request.MaxPayloadInMB
        self.requestedBatchStrategy = strategy
        self.invocationTimeoutSeconds =
            request.ModelClientConfig?.InvocationsTimeoutInSeconds ?? Self.defaultInvocationTimeoutSeconds
        self.invocationMaxRetries = request.ModelClientConfig?.InvocationsMaxRetries ?? Self.defaultInvocationMaxRetries
        self.environment = request.Environment ?? [:]
        self.instanceCount = instanceCount
        self.instanceType = instanceType
        self.inputFilter = processing?.InputFilter ?? "$"
        self.outputFilter = processing?.OutputFilter ?? "$"
        self.joinsInput = processing?.JoinSource == "Input"
        _ = try EngineSettings(environment: environment)  // refused now, not once the instances are up
        self.dataProcessing = try DataProcessingSettings(
            inputFilter: inputFilter,
            outputFilter: outputFilter,
            joinsInput: joinsInput,
            contentType: contentType,
            accept: accept,
            splitType: splitType,
            assembleWith: assembleWith,
            environment: environment
        )
    }
}

public struct ModelDefinition: Sendable {
    public var name: String
    public var image: String
    /// A directory or `.tar.gz`, as a path, `file://` or `s3://` URI; nil when the image needs none.
    public var modelDataURL: String?
    public var environment: [String: String]

    public init(validating request: CreateModelRequest) throws(ValidationException) {
        var checker = ConstraintChecker()
        checker.required(request.ModelName, at: "modelName")
        checker.string(request.ModelName, at: "modelName", max: 63, pattern: Patterns.modelName)
        let container = request.PrimaryContainer ?? request.Containers?.first
        checker.string(container?.Image, at: "primaryContainer.image", max: 255, pattern: Patterns.image)
        if let url = container?.ModelDataUrl, !url.isEmpty {
            checkLocation(url, at: "primaryContainer.modelDataUrl", &checker)
        }
        checker.map(
            container?.Environment,
            at: "primaryContainer.environment",
            maxEntries: 100,
            keyMax: 1024,
            keyPattern: Patterns.modelEnvironmentKey,
            valueMax: 1024
        )
        checker.string(container?.Mode, at: "primaryContainer.mode", oneOf: ["SingleModel", "MultiModel"])
        checkTags(request.Tags, at: "tags", &checker)
        if let error = checker.result() { throw error }

        guard let name = request.ModelName else { throw ValidationException("ModelName is required.") }
        guard let image = container?.Image, !image.isEmpty else {
            throw ValidationException(
                "Model \(name) has no PrimaryContainer.Image. Set it to the path of a model server executable."
            )
        }
        if (request.Containers?.count ?? 0) > 1 {
            throw ValidationException(
                "Model \(name) has \(request.Containers!.count) Containers (an inference pipeline); "
                    + "Batchform runs single-container models only. Use PrimaryContainer."
            )
        }
        self.name = name
        self.image = image
        self.modelDataURL = container?.ModelDataUrl.flatMap { $0.isEmpty ? nil : $0 }
        self.environment = container?.Environment ?? [:]
    }
}
