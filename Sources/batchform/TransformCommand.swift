import ArgumentParser
import Cluster
import Foundation
import Logging
import ModelRuntime
import ObjectStorage
import TransformEngine
import TransformSpec

struct TransformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transform",
        abstract: "Run a SageMaker-shaped batch transform job on this machine.",
        discussion: """
            Exit status: 0 Completed, 1 Failed (the FailureReason is printed), 2 invalid request \
            (nothing was run), 130 interrupted (the job is Stopped and writes no new output).
            """
    )

    @Option(help: "A JSON file holding a CreateTransformJob request body, as boto3 sends it.")
    var request: String?
    @Option(help: "A JSON file holding a CreateModel request body.")
    var model: String?

    @Option(help: "TransformJobName (default: batchform-<yyyymmdd>-<hhmmss>-<milliseconds><random>, unique per run).")
    var jobName: String?
    @Option(help: "ModelDataUrl: a model directory or .tar.gz (path, file:// or s3:// URI).") var modelData: String?
    @Option(
        help: """
            PrimaryContainer.Image: batchform/python (or a SageMaker framework image URI) for inference.py handlers, \
            a container image to run with Podman or Docker, or the path of a model server executable.
            """
    )
    var image: String?
    @Option(help: "A model Environment entry K=V (repeatable).") var modelEnv: [String] = []
    @Option(help: "S3Prefix input: a path, file:// or s3:// URI (a raw prefix; end a folder with /).")
    var input: String?
    @Option(help: "ManifestFile input: a manifest's path or URI.") var manifest: String?
    @Option(help: "S3OutputPath: where <input>.out files go.") var output: String?
    @Option(help: "TransformInput.ContentType, sent as Content-Type.") var contentType: String?
    @Option(help: "TransformOutput.Accept, sent as Accept.") var accept: String?
    @Option(help: "SplitType: None (each object whole, the default) | Line | RecordIO | TFRecord.") var splitType:
        String?
    @Option(help: "CompressionType: None | Gzip.") var compression: String?
    @Option(help: "BatchStrategy: SingleRecord | MultiRecord.") var strategy: String?
    @Option(help: "MaxPayloadInMB: the largest request, 0 to 100 (default: the container's, else 6).") var maxPayloadMb:
        Int?
    @Option(help: "MaxConcurrentTransforms: requests in flight per instance (default: the container's, else 1).")
    var maxConcurrent: Int?
    @Option(help: "TransformResources.InstanceCount: model server processes to run.") var instanceCount: Int?
    @Option(help: "TransformResources.InstanceType (default ml.m5.large; ml.p* and ml.g* give containers the GPUs).")
    var instanceType: String?
    @Option(help: "AssembleWith: None | Line.") var assembleWith: String?
    @Option(help: "DataProcessing.InputFilter: a JSONPath applied to each record before the model (e.g. $[1:]).")
    var inputFilter: String?
    @Option(help: "DataProcessing.OutputFilter: a JSONPath applied to each (joined) output record (e.g. $[0,-1]).")
    var outputFilter: String?
    @Option(help: "DataProcessing.JoinSource: Input | None (Input joins each answer onto its input record).")
    var joinSource: String?
    @Option(help: "A job Environment entry K=V (repeatable; wins over the model's).") var env: [String] = []
    @Option(help: "ModelClientConfig.InvocationsTimeoutInSeconds, 1 to 3600 (default 600).") var invocationTimeout: Int?
    @Option(help: "ModelClientConfig.InvocationsMaxRetries, 0 to 3 (default 3): timeouts, 5xx and lost connections.")
    var maxRetries: Int?
    @Option(help: "Seconds to wait for the model's first healthy /ping.") var startupTimeout: Int = 300
    @Option(
        help:
            "How often each instance's model server is started again after it dies (default 3; job Environment BATCHFORM_MAX_INSTANCE_RESTARTS)."
    )
    var maxInstanceRestarts: Int?
    @Option(
        help:
            "How many records of the job may fail (each isolated by bisection) before the job fails (default 0: a failed batch fails its object, as in SageMaker; BATCHFORM_MAX_RECORD_ERRORS)."
    )
    var maxRecordErrors: Int?
    @Option(
        help:
            "Where the failed records are reported: a path, file:// or s3:// URI of one JSON Lines object (default <log dir>/record-errors.jsonl; BATCHFORM_RECORD_ERRORS_OUTPUT)."
    )
    var recordErrorsOutput: String?
    @Option(
        help:
            "A failed record's answer in the .out, so the output stays aligned with the input (default: the record is left out; BATCHFORM_RECORD_ERROR_PLACEHOLDER)."
    )
    var recordErrorPlaceholder: String?
    @Option(help: "Where the job's log (batchform.log) and model server logs go (default ./batchform-logs/<job>/).")
    var logDir: String?
    @Option(
        help: "S3 endpoint URL for s3:// locations (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile, AWS)."
    )
    var s3Endpoint: String?
    @Option(help: "AWS region for s3:// locations (default: AWS_REGION, AWS_DEFAULT_REGION, the profile, us-east-1).")
    var region: String?
    @Option(
        help:
            "Where the instances run: local (this machine's processes) or slurm (one worker per instance, each on a Slurm node; inputs, outputs and --log-dir on a shared folder or S3)."
    )
    var executor: ExecutorName = .local
    @Option(
        help:
            "An argument passed to sbatch as it is, e.g. --slurm-arg=--partition=gpu --slurm-arg=--gres=gpu:1 (repeatable; --executor slurm)."
    )
    var slurmArg: [String] = []
    @Flag(help: "Print the final DescribeTransformJob JSON on stdout.") var json = false
    @Flag(help: "Also print the engine's log lines (always in <log dir>/batchform.log) on the terminal.")
    var verbose = false

    func run() async throws {
        let workingDirectory = FileManager.default.currentDirectoryPath
        let (jobRequest, modelDefinition, job): (CreateTransformJobRequest, ModelDefinition, TransformJobConfiguration)
        let builtModel: CreateModelRequest
        do {
            let built = try buildRequests()
            try refuseMissingFlags(built)
            jobRequest = built.job
            builtModel = built.model
            job = try TransformJobConfiguration(validating: built.job)
            modelDefinition = try ModelDefinition(validating: built.model)
            guard modelDefinition.name == job.modelName else {
                throw ValidationException("Could not find model \"\(ResourceARN.standard.model(job.modelName))\".")
            }
        } catch let error as ValidationException {
            if let flagMessage = FlagErrors.message(for: error, flagsGiven: flagsGiven) {
                throw Exit.invalidFlags(flagMessage)
            }
            throw Exit.invalid(error.message)
        }

        let logDirectory = ObjectURI.absolute(logDir ?? "batchform-logs/\(job.name)", in: workingDirectory)
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        let sink = JobLogFile.Sink(path: logDirectory + "/batchform.log", echo: verbose)
        let logger = Logger(label: "batchform") { _ in JobLogFile(sink: sink) }
        var options = RunOptions(
            logDirectory: logDirectory,
            startupTimeout: .seconds(startupTimeout),
            workingDirectory: workingDirectory,
            s3: S3Options(endpoint: s3Endpoint, region: region)
        )
        if executor == .slurm {
            do {
                options.runner = ClusterRunner(
                    executor: try ClusterLaunch.slurm(arguments: slurmArg),
                    model: builtModel,
                    request: jobRequest,
                    workerCommand: ClusterLaunch.workerCommand,
                    address: try ClusterLaunch.coordinatorAddress(),
                    logger: logger
                )
            } catch let error as ClusterError {
                throw Exit.invalidFlags(error.message)
            } catch let error as ValidationException {
                throw Exit.invalidFlags(error.message)
            }
        } else if !slurmArg.isEmpty {
            throw Exit.invalidFlags("--slurm-arg is for --executor slurm; this job runs with --executor local.")
        }
        let transformJob = TransformJob(model: modelDefinition, configuration: job, options: options, logger: logger)
        let plan: TransformPlan
        do {
            plan = try await transformJob.plan()
        } catch let error as ValidationException {
            throw Exit.invalid(error.message)
        } catch {
            throw Exit.invalid("\(error)")
        }

        let created = Date().timeIntervalSince1970
        let reporter = ProgressReporter(progress: transformJob.progress)
        let reporting = Task { await reporter.run() }
        let result = try await TransformService.run(transformJob, plan, logger: logger)
        reporting.cancel()
        await reporting.value
        let elapsed = (ContinuousClock.now - transformJob.progress.started).seconds
        let output =
            (try? ObjectURI(parsing: job.outputPath, workingDirectory: workingDirectory).description) ?? job.outputPath
        let summary = Summary.lines(
            result,
            transformJob.progress.snapshot,
            elapsed: elapsed,
            output: output,
            logs: logDirectory
        )
        FileHandle.standardError.write(Data((summary.joined(separator: "\n") + "\n").utf8))

        if json {
            var describe = DescribeTransformJobResponse(
                request: jobRequest,
                arn: ResourceARN.standard.transformJob(job.name),
                status: result.status,
                failureReason: result.failureReason,
                creationTime: created,
                startTime: result.startTime,
                endTime: result.endTime
            )
            describe.BatchformProgress = BatchformProgress(
                transformJob.progress.snapshot,
                elapsedSeconds: result.endTime - result.startTime
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(describe), as: UTF8.self))
        }
        switch result.status {
        case .Completed: return
        case .Stopped: throw ExitCode(130)
        default:
            FileHandle.standardError.write(Data("FailureReason: \(result.failureReason ?? "unknown")\n".utf8))
            throw ExitCode(1)
        }
    }

    /// The flags the user typed, by their names, so errors can speak of them.
    var flagsGiven: Set<String> {
        let given: [(String, Bool)] = [
            ("--job-name", jobName != nil), ("--model-data", modelData != nil), ("--image", image != nil),
            ("--model-env", !modelEnv.isEmpty), ("--input", input != nil || manifest != nil),
            ("--output", output != nil),
            ("--content-type", contentType != nil), ("--accept", accept != nil), ("--split-type", splitType != nil),
            ("--compression", compression != nil), ("--strategy", strategy != nil),
            ("--max-payload-mb", maxPayloadMb != nil),
            ("--max-concurrent", maxConcurrent != nil), ("--instance-count", instanceCount != nil),
            ("--instance-type", instanceType != nil), ("--assemble-with", assembleWith != nil),
            ("--input-filter", inputFilter != nil), ("--output-filter", outputFilter != nil),
            ("--join-source", joinSource != nil), ("--env", !env.isEmpty),
            ("--invocation-timeout", invocationTimeout != nil),
            ("--max-retries", maxRetries != nil),
        ]
        return Set(given.filter(\.1).map(\.0))
    }

    /// What neither a flag nor a request file gave, named as flags.
    func refuseMissingFlags(_ built: (job: CreateTransformJobRequest, model: CreateModelRequest)) throws {
        var missing: [String] = []
        if built.job.TransformInput?.DataSource?.S3DataSource?.S3Uri == nil {
            missing.append("--input (or --manifest)")
        }
        if built.job.TransformOutput?.S3OutputPath == nil { missing.append("--output") }
        if (built.model.PrimaryContainer?.Image ?? "").isEmpty { missing.append("--image") }
        guard !missing.isEmpty else { return }
        let list =
            missing.count == 1 ? missing[0] : missing.dropLast().joined(separator: ", ") + " and " + missing.last!
        var message = "\(list) \(missing.count == 1 ? "is" : "are") required."
        if missing.contains("--image") {
            message +=
                " --image is batchform/python for inference.py handlers, a container image, or a model server's path."
        }
        throw Exit.invalidFlags(message + " See batchform transform --help.")
    }

    /// The two request bodies: files first, then each flag sets or overrides its field.
    func buildRequests() throws -> (job: CreateTransformJobRequest, model: CreateModelRequest) {
        var jobRequest = try request.map { try decode(CreateTransformJobRequest.self, from: $0) } ?? .init()
        var modelRequest = try model.map { try decode(CreateModelRequest.self, from: $0) } ?? .init()

        if let jobName { jobRequest.TransformJobName = jobName }
        if jobRequest.TransformJobName == nil { jobRequest.TransformJobName = Self.defaultJobName() }
        var input = jobRequest.TransformInput ?? .init()
        var source = input.DataSource?.S3DataSource ?? .init()
        if let path = self.input { source = .init(S3DataType: "S3Prefix", S3Uri: path) }
        if let manifest { source = .init(S3DataType: "ManifestFile", S3Uri: manifest) }
        if source.S3Uri != nil || input.DataSource != nil { input.DataSource = .init(S3DataSource: source) }
        if let contentType { input.ContentType = contentType }
        if let splitType { input.SplitType = splitType }
        if let compression { input.CompressionType = compression }
        if input != .init() { jobRequest.TransformInput = input }

        var output = jobRequest.TransformOutput ?? .init()
        if let path = self.output { output.S3OutputPath = path }
        if let accept { output.Accept = accept }
        if let assembleWith { output.AssembleWith = assembleWith }
        if output != .init() { jobRequest.TransformOutput = output }

        var resources = jobRequest.TransformResources ?? .init()
        if let instanceCount { resources.InstanceCount = instanceCount }
        if let instanceType { resources.InstanceType = instanceType }
        resources.InstanceCount = resources.InstanceCount ?? 1
        resources.InstanceType = resources.InstanceType ?? "ml.m5.large"
        jobRequest.TransformResources = resources

        if inputFilter != nil || outputFilter != nil || joinSource != nil {
            var processing = jobRequest.DataProcessing ?? .init()
            if let inputFilter { processing.InputFilter = inputFilter }
            if let outputFilter { processing.OutputFilter = outputFilter }
            if let joinSource { processing.JoinSource = joinSource }
            jobRequest.DataProcessing = processing
        }
        if let strategy { jobRequest.BatchStrategy = strategy }
        if let maxPayloadMb { jobRequest.MaxPayloadInMB = maxPayloadMb }
        if let maxConcurrent { jobRequest.MaxConcurrentTransforms = maxConcurrent }
        if invocationTimeout != nil || maxRetries != nil {
            var client = jobRequest.ModelClientConfig ?? .init()
            if let invocationTimeout { client.InvocationsTimeoutInSeconds = invocationTimeout }
            if let maxRetries { client.InvocationsMaxRetries = maxRetries }
            jobRequest.ModelClientConfig = client
        }
        if !env.isEmpty { jobRequest.Environment = (jobRequest.Environment ?? [:]).merging(try pairs(env)) { $1 } }
        // Batchform's own settings travel in the job Environment, as boto3 callers send them.
        let settings: [(String, String?)] = [
            (EngineSettings.maxInstanceRestartsName, maxInstanceRestarts.map(String.init)),
            (EngineSettings.maxRecordErrorsName, maxRecordErrors.map(String.init)),
            (EngineSettings.recordErrorsOutputName, recordErrorsOutput),
            (EngineSettings.recordErrorPlaceholderName, recordErrorPlaceholder),
        ]
        for case (let name, let value?) in settings {
            jobRequest.Environment = (jobRequest.Environment ?? [:]).merging([name: value]) { $1 }
        }

        if modelRequest.ModelName == nil {
            modelRequest.ModelName = jobRequest.ModelName ?? "batchform-model"
        }
        if jobRequest.ModelName == nil { jobRequest.ModelName = modelRequest.ModelName }
        var container = modelRequest.PrimaryContainer ?? modelRequest.Containers?.first ?? .init()
        if let image { container.Image = image }
        if let modelData { container.ModelDataUrl = modelData }
        if !modelEnv.isEmpty {
            container.Environment = (container.Environment ?? [:]).merging(try pairs(modelEnv)) { $1 }
        }
        modelRequest.PrimaryContainer = container
        modelRequest.Containers = modelRequest.Containers.map { Array($0.dropFirst()) }.flatMap {
            $0.isEmpty ? nil : $0
        }
        return (jobRequest, modelRequest)
    }

    /// `batchform-20261202-035512-123a7f3`: the UTC time to the millisecond and a random suffix, so
    /// two jobs started at once differ; 34 characters, within SageMaker's name pattern.
    static func defaultJobName(now: Date = Date()) -> String {
        let utc = Calendar(identifier: .gregorian)
        var calendar = utc
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: now)
        let date = String(format: "%04d%02d%02d", parts.year!, parts.month!, parts.day!)
        let time = String(format: "%02d%02d%02d", parts.hour!, parts.minute!, parts.second!)
        let millisecond = String(format: "%03d", parts.nanosecond! / 1_000_000)
        let suffix = String(UInt32.random(in: 0..<(1 << 16)), radix: 16)
        return "batchform-\(date)-\(time)-\(millisecond)\(String(repeating: "0", count: 4 - suffix.count))\(suffix)"
    }

    private func decode<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationException("Cannot read \(path).")
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw ValidationException("\(path) is not a valid \(type) JSON body: \(error)")
        }
    }

    private func pairs(_ entries: [String]) throws -> [String: String] {
        var result: [String: String] = [:]
        for entry in entries {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw ValidationException("\(entry) is not KEY=VALUE.")
            }
            result[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        return result
    }
}

enum Exit {
    /// An invalid request: SageMaker's ValidationException text on stderr, exit 2.
    static func invalid(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("ValidationException: \(message)\n".utf8))
        return ExitCode(2)
    }

    /// Flags that are wrong or missing, in the words typed: exit 2, nothing was run.
    static func invalidFlags(_ message: String) -> ExitCode {
        FileHandle.standardError.write(
            Data(message.split(separator: "\n").map { "batchform transform: \($0)\n" }.joined().utf8)
        )
        return ExitCode(2)
    }
}
