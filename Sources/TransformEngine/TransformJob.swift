import Foundation
public import Logging
public import ModelRuntime
import NIOCore
public import ObjectStorage
import Records
import Synchronization
public import TransformSpec

/// How a job ended.
public struct TransformJobResult: Sendable {
    public var status: TransformJobStatus
    public var failureReason: String?
    /// Epoch seconds, as Describe reports them.
    public var startTime: Double
    public var endTime: Double
    /// Each failed object and why, in input order.
    public var failedObjects: [(object: String, reason: String)]
    public var parameters: ResolvedParameters?
    /// Where the record-errors report was written, when records were isolated.
    public var recordErrorsReport: String?

    public init(
        status: TransformJobStatus,
        failureReason: String?,
        startTime: Double,
        endTime: Double,
        failedObjects: [(object: String, reason: String)],
        parameters: ResolvedParameters?,
        recordErrorsReport: String?
    ) {
        self.status = status
        self.failureReason = failureReason
        self.startTime = startTime
        self.endTime = endTime
        self.failedObjects = failedObjects
        self.parameters = parameters
        self.recordErrorsReport = recordErrorsReport
    }
}

/// Settings of a run that are not part of the SageMaker request.
public struct RunOptions: Sendable {
    public var logDirectory: String
    public var startupTimeout: Duration
    public var workingDirectory: String
    /// Endpoint and region for `s3://` locations where the command line gives them.
    public var s3: S3Options
    /// The local folders the job may touch (a server's `--allow-local-path`); the CLI's is unconfined.
    public var confinement: LocalConfinement = .unconfined
    /// Inputs (by URI) whose `.out` an earlier run of this job committed: they are not read again.
    public var completedInputs: Set<String> = []
    /// Runs the plan elsewhere (a cluster executor); nil runs it on this machine's instances.
    public var runner: (any PlanRunner)?
    /// The number in the first instance's log name (`instance-N.log`): a cluster worker's own.
    public var firstInstanceNumber = 1
    /// Told as each object ends; `.committing` comes before the commit, so a record of it
    /// survives a crash that happens during the commit.
    public var objectEvents: (@Sendable (ObjectEvent) async -> Void)?

    public init(
        logDirectory: String,
        startupTimeout: Duration,
        workingDirectory: String,
        s3: S3Options = S3Options(),
        confinement: LocalConfinement = .unconfined
    ) {
        self.logDirectory = logDirectory
        self.startupTimeout = startupTimeout
        self.workingDirectory = workingDirectory
        self.s3 = s3
        self.confinement = confinement
    }
}

/// What happened to one input object (named by its URI) and its `.out`.
public struct ObjectEvent: Sendable {
    public enum Kind: Sendable {
        /// Its first batch is about to be read.
        case started
        case committing, completed
        case failed(reason: String)
    }

    public var input: String
    public var output: String
    public var kind: Kind

    public init(input: String, output: String, kind: Kind) {
        self.input = input
        self.output = output
        self.kind = kind
    }
}

/// Runs a job's plan somewhere other than this machine's own instances: the seam where
/// `Cluster`'s coordinator takes over, whichever executor starts its workers.
public protocol PlanRunner: Sendable {
    /// Runs `pending`, the plan's objects no earlier run completed; the job's progress already
    /// counts the whole plan.
    func run(_ job: TransformJob, _ pending: TransformPlan) async -> TransformJobResult
}

/// Where a cluster worker gets its work units from, and tells how each ended.
public protocol UnitSource: Sendable {
    /// The next unit to run; nil once this worker is to stop.
    func next() async throws -> PlannedObject?
    /// Called once the unit's output was committed (failure nil) or abandoned.
    func finished(_ unit: PlannedObject, failure: TransformError?) async throws
}

/// Runs one batch transform job: start the instances, stream every input object through them,
/// write each `.out` whole or not at all, stop the instances however the job ends.
public struct TransformJob: Sendable {
    public let model: ModelDefinition
    public let configuration: TransformJobConfiguration
    public let options: RunOptions
    public let progress = JobProgress()
    private let stores: ObjectStores
    private let logger: Logger

    public init(model: ModelDefinition, configuration: TransformJobConfiguration, options: RunOptions, logger: Logger) {
        self.model = model
        self.configuration = configuration
        self.options = options
        self.stores = ObjectStores(s3: options.s3, confinement: options.confinement)
        var logger = logger
        logger[metadataKey: "job"] = .string(configuration.name)
        self.logger = logger
    }

    /// Lists the inputs; a `ValidationException` here means nothing was started.
    public func plan() async throws -> TransformPlan {
        try await TransformPlan.make(for: configuration, stores: stores, workingDirectory: options.workingDirectory)
    }

    /// Runs the plan. Cancelling the calling task stops the job: status Stopped, no new `.out`.
    public func run(_ plan: TransformPlan) async -> TransformJobResult {
        let pending = plan.objects.filter { !options.completedInputs.contains($0.input.uri.description) }
        progress.update {
            $0.objectsTotal = plan.objects.count
            $0.objectsSkipped = plan.objects.count - pending.count
            $0.objectsCompleted = $0.objectsSkipped
            $0.bytesTotal = pending.reduce(0) { $0 + ($1.input.size ?? 0) }
        }
        if pending.count < plan.objects.count {
            logger.info(
                "Resuming: \(plan.objects.count - pending.count) of \(plan.objects.count) objects were completed by an earlier run."
            )
        }
        if let runner = options.runner { return await runner.run(self, TransformPlan(objects: pending)) }
        await stores.local.removeAbandonedTemporaries(for: pending.map(\.output))
        return await execute(objectCount: pending.count) { scheduler in
            try await scheduler.run(TransformPlan(objects: pending))
        }
    }

    /// A cluster worker's run: this machine's instances, started once, take one unit after
    /// another from `units` until it has no more.
    public func run(units: any UnitSource) async -> TransformJobResult {
        await execute(objectCount: 0) { scheduler in
            while let unit = try await units.next() {
                let failures = try await scheduler.run(TransformPlan(objects: [unit]))
                try await units.finished(unit, failure: failures.first?.error)
            }
            return []
        }
    }

    /// Starts the instances, runs `work` on them, and stops them however it ends.
    private func execute(
        objectCount: Int,
        _ work: (BatchScheduler) async throws -> [ObjectFailure]
    ) async -> TransformJobResult {
        let started = Date().timeIntervalSince1970
        let scratch = NSTemporaryDirectory() + "batchform-\(configuration.name)-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var instances: [any ModelInstance] = []
        // Once the job runs, each instance's current server (a restart replaces it) is the endpoint's.
        var servers: [ServerEndpoint] = []
        var reportWritten: String?
        let client = ModelClient(maxConnectionsPerInstance: 64)
        func finish(
            _ status: TransformJobStatus,
            _ reason: String?,
            _ failed: [(String, String)] = [],
            _ parameters: ResolvedParameters? = nil
        ) async -> TransformJobResult {
            // Stopping must finish even when the job's task was cancelled.
            let running = servers.isEmpty ? instances : servers.map(\.instance)
            await Task.detached {
                await withDiscardingTaskGroup { group in
                    for instance in running { group.addTask { await instance.stop() } }
                }
                await client.shutdown()
            }.value
            progress.update { snapshot in
                snapshot.phase = status.rawValue
                for index in snapshot.instances.indices { snapshot.instances[index].state = "stopped" }
            }
            return TransformJobResult(
                status: status,
                failureReason: reason,
                startTime: started,
                endTime: Date().timeIntervalSince1970,
                failedObjects: failed,
                parameters: parameters,
                recordErrorsReport: reportWritten
            )
        }
        do {
            progress.update { $0.phase = "starting model servers" }
            try FileManager.default.createDirectory(atPath: options.logDirectory, withIntermediateDirectories: true)
            let modelData = try model.modelDataURL.map {
                try ObjectURI(parsing: $0, workingDirectory: options.workingDirectory)
            }
            let jobEnvironment = model.environment.merging(configuration.environment) { $1 }
            let limits = ArchiveLimits(
                maxBytes: try NumericSetting.maxModelBytes(
                    process: ProcessInfo.processInfo.environment,
                    job: jobEnvironment
                )
            )
            let modelDirectory = try await ModelArtifacts.prepare(
                modelData: modelData,
                stores: stores,
                scratch: scratch,
                limits: limits
            )
            let runtime = try ModelRuntimes.runtime(for: model.image, workingDirectory: options.workingDirectory)
            let environment = try await SubmitDirectory.localize(
                InstanceEnvironment.build(model: model, job: configuration, modelDirectory: modelDirectory),
                modelDirectory: modelDirectory,
                stores: stores,
                scratch: scratch,
                workingDirectory: options.workingDirectory,
                limits: limits
            )
            let settings = try EngineSettings(environment: jobEnvironment)
            let gpus = GPUAssignment.split(
                devices: await GPUAssignment.visibleDevices(environment: ProcessInfo.processInfo.environment),
                instances: configuration.instanceCount,
                instanceType: configuration.instanceType,
                gpusPerInstance: settings.gpusPerInstance
            )
            var launches: [InstanceLaunch] = []
            for index in 0..<configuration.instanceCount {
                let launch = InstanceLaunch(
                    index: index,
                    jobName: configuration.name,
                    modelDirectory: modelDirectory,
                    environment: environment,
                    logFile: "\(options.logDirectory)/instance-\(index + options.firstInstanceNumber).log",
                    instanceType: configuration.instanceType,
                    gpus: gpus[index]
                )
                if let devices = gpus[index] {
                    logger.info("Instance \(index + 1) uses GPU \(devices.joined(separator: ","))")
                }
                let instance = try await runtime.launch(launch)
                instances.append(instance)
                launches.append(launch)
                progress.setInstance(index, name: instance.name, state: "starting")
            }
            try await withThrowingTaskGroup { group in
                for (index, instance) in instances.enumerated() {
                    group.addTask {
                        try await HealthCheck.waitUntilHealthy(
                            instance,
                            client: client,
                            startupTimeout: options.startupTimeout
                        )
                        progress.setInstance(index, name: instance.name, state: "serving")
                    }
                }
                try await group.waitForAll()
            }
            let parameters = ResolvedParameters(
                job: configuration,
                container: try await client.executionParameters(instances[0])
            )
            logger.info("[sagemaker logs]: \(parameters)")
            progress.update { $0.phase = "transforming" }
            let request = ServerEndpoint.Request(
                contentType: configuration.contentType,
                accept: configuration.accept,
                timeout: .seconds(configuration.invocationTimeoutSeconds),
                startupTimeout: options.startupTimeout
            )
            let endpoints = zip(instances, launches).map { instance, launch in
                ServerEndpoint(instance: instance, launch: launch, runtime: runtime, client: client, request: request)
            }
            servers = endpoints
            let pool = InstancePool(
                endpoints: endpoints,
                slotsPerInstance: parameters.maxConcurrentTransforms,
                maxRestarts: settings.maxInstanceRestarts,
                logger: logger
            ) { instance, status, inFlight in
                progress.update { snapshot in
                    guard instance < snapshot.instances.count else { return }
                    snapshot.instances[instance].inFlight = inFlight
                    snapshot.instances[instance].state =
                        switch status {
                        case .serving: "serving"
                        case .restarting: "restarting"
                        case .retired: "stopped"
                        }
                }
            }
            let recordErrors = settings.isolatesRecords ? RecordErrorLog(limit: settings.maxRecordErrors) : nil
            let reportLocation = try settings.recordErrorsOutput.map {
                try ObjectURI(parsing: $0, workingDirectory: options.workingDirectory)
            }
            let scheduler = BatchScheduler(
                configuration: configuration,
                parameters: parameters,
                processor: DataProcessor(configuration.dataProcessing, splitType: configuration.splitType),
                store: { [stores] uri in try stores.store(for: uri) },
                pool: pool,
                progress: progress,
                logger: logger,
                objectEvents: options.objectEvents,
                recordErrors: recordErrors,
                recordErrorPlaceholder: settings.recordErrorPlaceholder
            )
            /// The report is written as the job ends, however it ends but stopped.
            func writeReport() async throws {
                guard let recordErrors else { return }
                let location = reportLocation ?? .file(path: options.logDirectory + "/record-errors.jsonl")
                try await recordErrors.write(to: location, stores: stores)
                reportWritten = location.description
                logger.info("\(recordErrors.count) record error(s) reported in \(location)")
            }
            let failures: [ObjectFailure]
            do {
                failures = try await work(scheduler)
            } catch let error as TransformError where error.code == .recordErrorsExceeded {
                try await writeReport()
                let refused = recordErrors?.sorted.contains { ($0.status ?? 0) / 100 == 4 } ?? false
                return await finish(
                    .Failed,
                    (refused ? "ClientError: " : "AlgorithmError: ") + error.message,
                    [],
                    parameters
                )
            }
            try Task.checkCancellation()
            try await writeReport()
            if failures.isEmpty { return await finish(.Completed, nil, [], parameters) }
            return await finish(
                .Failed,
                failureReason(failures, of: objectCount, pool: pool),
                failures.map { ($0.object, $0.error.message) },
                parameters
            )
        } catch is CancellationError {
            return await finish(.Stopped, nil)
        } catch {
            if Task.isCancelled { return await finish(.Stopped, nil) }
            return await finish(.Failed, "\(error)")
        }
    }

    private func failureReason(_ failures: [ObjectFailure], of objectCount: Int, pool: InstancePool) -> String {
        let kind = failures.contains { $0.error.code == .modelRefused } ? "ClientError" : "AlgorithmError"
        var reason =
            "\(kind): \(failures.count) of \(objectCount) input objects failed. "
            + failures.map { "\($0.object): \($0.error.message)" }.joined(separator: " ")
        for (index, endpoint) in pool.endpoints.enumerated() {
            if case .retired(let why) = pool.status(of: index) {
                reason += " \(why)" + HealthCheck.logTail(endpoint.logFile, lines: 5)
            } else if let ended = endpoint.exitDescription() {
                reason +=
                    " The model server \(endpoint.name) \(ended)." + HealthCheck.logTail(endpoint.logFile, lines: 5)
            }
        }
        return reason
    }
}

extension Duration {
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
