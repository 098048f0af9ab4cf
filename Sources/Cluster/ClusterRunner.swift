import Crypto
import Foundation
import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
import ObjectStorage
public import TransformEngine
public import TransformSpec

/// Runs a job over a cluster: this process is the coordinator. It plans work units, starts
/// `InstanceCount` workers through the executor, leases units to them over an authenticated
/// HTTP connection, and commits each object's parts as its one `.out` once all are written.
/// No input byte goes through it.
public struct ClusterRunner: PlanRunner {
    public let executor: any WorkerExecutor
    /// The requests as given, which each worker validates again and runs with one instance.
    public let model: CreateModelRequest
    public let request: CreateTransformJobRequest
    /// The worker's command line: this Batchform binary and `worker`.
    public let workerCommand: [String]
    /// Where the coordinator listens, and the address workers reach it at.
    public let address: CoordinatorAddress
    public let logger: Logger

    public init(
        executor: any WorkerExecutor,
        model: CreateModelRequest,
        request: CreateTransformJobRequest,
        workerCommand: [String],
        address: CoordinatorAddress,
        logger: Logger
    ) {
        self.executor = executor
        self.model = model
        self.request = request
        self.workerCommand = workerCommand
        self.address = address
        self.logger = logger
    }

    public func run(_ job: TransformJob, _ plan: TransformPlan) async -> TransformJobResult {
        let pending = plan.objects
        let started = Date().timeIntervalSince1970
        let configuration = job.configuration
        let options = job.options
        let progress = job.progress
        let logger = {
            var logger = self.logger
            logger[metadataKey: "job"] = .string(configuration.name)
            return logger
        }()
        func result(
            _ status: TransformJobStatus,
            _ reason: String?,
            failed: [(String, String)] = []
        )
            -> TransformJobResult
        {
            progress.update { $0.phase = status.rawValue }
            return TransformJobResult(
                status: status,
                failureReason: reason,
                startTime: started,
                endTime: Date().timeIntervalSince1970,
                failedObjects: failed,
                parameters: nil,
                recordErrorsReport: nil
            )
        }
        progress.update { $0.phase = "starting workers" }
        let settings: ClusterSettings
        let partsRoot: ObjectURI
        do {
            let environment = ProcessInfo.processInfo.environment.merging(model.PrimaryContainer?.Environment ?? [:]) {
                $1
            }.merging(configuration.environment) { $1 }
            settings = try ClusterSettings(environment: environment, instanceCount: configuration.instanceCount)
            // Slurm cannot start a worker whose output file's folder is missing (JobLaunchFailure).
            try FileManager.default.createDirectory(atPath: options.logDirectory, withIntermediateDirectories: true)
            partsRoot = try ObjectURI(parsing: configuration.outputPath, workingDirectory: options.workingDirectory)
                .appending(".batchform-parts/\(configuration.name)/")
        } catch {
            return result(.Failed, "ClientError: \(error)")
        }
        let stores = ObjectStores(s3: options.s3, confinement: options.confinement)
        let notSplittable = WorkUnitPlanner.reasonNotSplittable(configuration)
        let units = WorkUnitPlanner.units(of: pending, unitBytes: settings.unitBytes, splittable: notSplittable == nil)
        if let notSplittable, let large = pending.first(where: { ($0.input.size ?? 0) > settings.unitBytes }) {
            logger.info(
                "\(large.input.uri) and other inputs larger than a unit run as one work unit each: \(notSplittable)."
            )
        }
        logger.info(
            "\(pending.count) object(s) in \(units.count) work unit(s) of up to \(settings.unitBytes >> 20) MB, on \(configuration.instanceCount) \(executor.name) worker(s)"
        )
        await removeParts(partsRoot, stores: stores)
        let secret = Self.newSecret()
        let (readyObjects, ready) = AsyncStream<Int>.makeStream()
        let relativeKeys = pending.map(\.input.relativeKey)
        let coordinator = Coordinator(
            objects: pending,
            units: units,
            assignment: { [request, model] worker, number in
                var request = request
                request.TransformResources?.InstanceCount = 1
                return WorkerProtocol.Assignment(
                    worker: worker,
                    number: number,
                    model: model,
                    job: request,
                    logDirectory: options.logDirectory,
                    workingDirectory: options.workingDirectory,
                    s3Endpoint: options.s3.endpoint,
                    region: options.s3.region,
                    allowedLocalPaths: options.confinement.roots,
                    startupTimeoutSeconds: Int(options.startupTimeout.components.seconds),
                    heartbeatMilliseconds: 1000
                )
            },
            partLocation: { unit, attempt in
                partsRoot.appending("\(relativeKeys[unit.object]).part\(unit.part)-attempt\(attempt)")
            },
            ready: ready,
            logger: logger
        )
        let outcome: Outcome
        do {
            outcome = try await withThrowingTaskGroup(of: Outcome?.self) { group in
                let (ports, portSink) = AsyncStream<Int>.makeStream()
                let app = Application(
                    router: Self.router(coordinator, secret: secret),
                    configuration: .init(
                        address: .hostname(address.host, port: address.port),
                        serverName: "Batchform coordinator"
                    ),
                    onServerRunning: { channel in
                        portSink.yield(channel.localAddress?.port ?? 0)
                        portSink.finish()
                    },
                    logger: Logger(label: "batchform.coordinator.http", factory: { _ in SwiftLogNoOpLogHandler() })
                )
                group.addTask {
                    try await app.runService()
                    return nil
                }
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else { throw CancellationError() }
                let advertised = address.advertisedHost ?? address.host
                let url = "http://\(advertised.contains(":") ? "[\(advertised)]" : advertised):\(port)"
                logger.info("Coordinator listening on \(url)")
                group.addTask {
                    var assembly = OutputAssembly(coordinator: coordinator, stores: stores, job: job, logger: logger)
                    for await object in readyObjects { await assembly.partWritten(of: object) }
                    await assembly.abortAll()
                    return nil
                }
                let launch = WorkerLaunch(
                    jobName: configuration.name,
                    command: workerCommand,
                    environment: [WorkerProtocol.coordinatorVariable: url, WorkerProtocol.secretVariable: secret],
                    logDirectory: options.logDirectory
                )
                let submitted = ContinuousClock.now
                let first = try await executor.start(configuration.instanceCount, launch)
                logger.info("Started \(first.count) worker(s) with \(executor.name): \(first.joined(separator: ", "))")
                group.addTask {
                    try await supervise(
                        coordinator,
                        launch: launch,
                        settings: settings,
                        submitted: submitted,
                        job: job,
                        logger: logger
                    )
                }
                var outcome: Outcome?
                for try await finished in group {
                    if let finished {
                        outcome = finished
                        break
                    }
                }
                group.cancelAll()
                ready.finish()
                return outcome ?? .stopped
            }
        } catch let error as ClusterError {
            outcome = .failed(error.message)
        } catch is CancellationError {
            outcome = .stopped
        } catch {
            outcome = Task.isCancelled ? .stopped : .failed("\(error)")
        }
        // However the job ended: no worker runs on, and no part is left behind.
        await coordinator.end()
        await Task.detached { [executor] in await executor.cancelAll() }.value
        await removeParts(partsRoot, stores: stores)
        progress.update { progress in
            for index in progress.instances.indices where progress.instances[index].state != "lost" {
                progress.instances[index].state = "stopped"
            }
        }
        switch outcome {
        case .stopped:
            return result(.Stopped, nil)
        case .failed(let reason):
            return result(.Failed, reason)
        case .finished:
            let objects = await coordinator.objects
            let failed = objects.compactMap { track in
                track.failure.map { (track.planned.input.uri.description, $0.message) }
            }
            guard !failed.isEmpty else { return result(.Completed, nil) }
            let kind = objects.contains { $0.failure?.code == .modelRefused } ? "ClientError" : "AlgorithmError"
            let reason =
                "\(kind): \(failed.count) of \(pending.count) input objects failed. "
                + failed.map { "\($0.0): \($0.1)" }.joined(separator: " ")
            return result(.Failed, reason, failed: failed)
        }
    }

    enum Outcome: Sendable {
        case finished, stopped
        case failed(String)
    }

    /// Watches the workers until every object is resolved: loses those Slurm ended or that went
    /// quiet, asks for replacements while work remains, fails the job when none can run.
    private func supervise(
        _ coordinator: Coordinator,
        launch: WorkerLaunch,
        settings: ClusterSettings,
        submitted: ContinuousClock.Instant,
        job: TransformJob,
        logger: Logger
    ) async throws -> Outcome {
        let progress = job.progress
        var replacements = 0
        var firstBatchLogged = false
        while true {
            try await Task.sleep(for: .milliseconds(500))
            let allocations = await executor.allocations()
            let alive = await coordinator.observe(allocations, leaseTimeout: .seconds(settings.leaseTimeoutSeconds))
            for (object, failure) in await coordinator.takeFailedObjects() {
                let planned = await coordinator.objects[object].planned
                progress.update { $0.objectsFailed += 1 }
                logger.error("\(planned.input.uri) failed: \(failure.message)")
                await job.options.objectEvents?(
                    ObjectEvent(
                        input: planned.input.uri.description,
                        output: planned.output.description,
                        kind: .failed(reason: failure.message)
                    )
                )
            }
            await updateProgress(coordinator, allocations: allocations, progress: progress)
            if !firstBatchLogged, progress.snapshot.recordsProcessed > 0 {
                firstBatchLogged = true
                logger.info(
                    "First records answered \((ContinuousClock.now - submitted).seconds) s after submitting the workers"
                )
            }
            if await coordinator.isFinished { return .finished }
            let open = await coordinator.openUnits
            let needed = min(open, job.configuration.instanceCount)
            if alive < needed {
                if replacements < settings.maxWorkerReplacements {
                    replacements += 1
                    logger.warning(
                        "\(alive) worker(s) left for \(open) open unit(s): asking \(executor.name) for a replacement (\(replacements) of at most \(settings.maxWorkerReplacements))"
                    )
                    do {
                        _ = try await executor.start(1, launch)
                    } catch let error as ClusterError {
                        logger.error("\(error.message)")
                    }
                } else if alive == 0 {
                    let lost = await coordinator.lostReasons()
                    let states = allocations.map { "\($0.id) \($0.state)" + ($0.reason.map { " (\($0))" } ?? "") }
                    return .failed(
                        "AlgorithmError: no worker can run: \(replacements) replacement(s) used "
                            + "(\(ClusterSettings.maxWorkerReplacementsName)=\(settings.maxWorkerReplacements)). "
                            + (lost.isEmpty ? "" : "Lost: \(lost.joined(separator: "; ")). ")
                            + (states.isEmpty ? "" : "Slurm: \(states.joined(separator: ", ")).")
                    )
                }
            }
            if !(await coordinator.hasRegisteredWorkers),
                ContinuousClock.now - submitted > .seconds(settings.workerStartTimeoutSeconds)
            {
                let states = allocations.map { "\($0.id) \($0.state)" + ($0.reason.map { " (reason: \($0))" } ?? "") }
                return .failed(
                    "AlgorithmError: no worker started within \(settings.workerStartTimeoutSeconds) s "
                        + "(\(ClusterSettings.workerStartTimeoutName)). Slurm: "
                        + (states.isEmpty ? "no allocation is known" : states.joined(separator: ", ")) + "."
                )
            }
        }
    }

    private func updateProgress(
        _ coordinator: Coordinator,
        allocations: [WorkerAllocation],
        progress: JobProgress
    ) async {
        let (workers, recordsInProgress, bytesInProgress) = await coordinator.workerProgress()
        let done = await coordinator.units.filter { $0.doneAttempt != nil }
        let byAllocation = Dictionary(allocations.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        progress.update { snapshot in
            snapshot.phase = "transforming"
            snapshot.recordsProcessed = done.reduce(0) { $0 + $1.records } + recordsInProgress
            snapshot.bytesProcessed = done.reduce(0) { $0 + $1.bytes } + bytesInProgress
            snapshot.instances = workers.map { worker in
                let slurm = byAllocation[worker.allocation].map { " (Slurm \($0.id) \($0.state))" } ?? ""
                var instance = JobProgress.InstanceProgress(
                    name: "\(worker.id) on \(worker.node)\(slurm)",
                    state: worker.lostReason == nil ? worker.state : "lost"
                )
                instance.inFlight = worker.inFlight
                instance.node = worker.node
                return instance
            }
        }
    }

    /// Removes the job's temporary parts: before it runs (a killed earlier run's) and after.
    private func removeParts(_ root: ObjectURI, stores: ObjectStores) async {
        switch root {
        case .file(let path):
            try? FileManager.default.removeItem(atPath: path)
            // The `.batchform-parts` folder too, once no job uses it.
            let folder = (path.hasSuffix("/") ? String(path.dropLast()) : path) as NSString
            try? FileManager.default.removeItem(atPath: folder.deletingLastPathComponent)
        case .s3:
            guard let store = try? stores.store(for: root), let parts = try? await store.list(prefix: root) else {
                return
            }
            for part in parts { try? await store.delete(part.uri) }
        }
    }

    static func newSecret() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
    }

    static func router(_ coordinator: Coordinator, secret: String) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: SecretCheck(secret: secret))
        router.post("/v1/register") { request, context in
            let registration = try await request.decode(as: WorkerProtocol.Registration.self, context: context)
            return try json(await coordinator.register(registration))
        }
        router.post("/v1/lease") { request, context in
            let ask = try await request.decode(as: WorkerProtocol.LeaseRequest.self, context: context)
            return try json(await coordinator.lease(for: ask.worker))
        }
        router.post("/v1/heartbeat") { request, context in
            let beat = try await request.decode(as: WorkerProtocol.Heartbeat.self, context: context)
            return try json(await coordinator.heartbeat(beat))
        }
        router.post("/v1/report") { request, context in
            let report = try await request.decode(as: WorkerProtocol.UnitReport.self, context: context)
            await coordinator.report(report)
            return try json(WorkerProtocol.HeartbeatAnswer(stop: false))
        }
        return router
    }

    static func json(_ value: some Encodable) throws -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(value)))
        )
    }
}

/// Only the job's workers, who hold its secret, may talk to its coordinator.
struct SecretCheck<Context: RequestContext>: RouterMiddleware {
    let secret: String

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        let given = request.headers[.authorization] ?? ""
        let expected = "Bearer \(secret)"
        // Compared in constant time: the answer's timing tells nothing about the secret.
        guard given.utf8.count == expected.utf8.count,
            zip(given.utf8, expected.utf8).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0
        else {
            return Response(status: .unauthorized)
        }
        return try await next(request, context)
    }
}

/// Where a job's coordinator listens and how workers reach it. Locally and on a cluster whose
/// nodes reach this machine, a free port of `host`; behind a Kubernetes Service, a fixed port
/// and the Service's name.
public struct CoordinatorAddress: Sendable {
    public var host: String
    /// 0 picks a free port for each job.
    public var port: Int
    /// The name workers use, where it is not `host` (a bind address such as 0.0.0.0).
    public var advertisedHost: String?

    public static let hostVariable = "BATCHFORM_COORDINATOR_HOST"
    public static let portVariable = "BATCHFORM_COORDINATOR_PORT"
    public static let advertisedHostVariable = "BATCHFORM_COORDINATOR_ADVERTISE"

    public init(host: String = "127.0.0.1", port: Int = 0, advertisedHost: String? = nil) {
        self.host = host
        self.port = port
        self.advertisedHost = advertisedHost
    }

    /// From `BATCHFORM_COORDINATOR_HOST`, `_PORT` and `_ADVERTISE`.
    public init(environment: [String: String]) throws(ValidationException) {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        self.init(
            host: value(Self.hostVariable) ?? "127.0.0.1",
            port: Int(try NumericSetting.integer(Self.portVariable, in: environment, default: 0, range: 0...65535)),
            advertisedHost: value(Self.advertisedHostVariable)
        )
    }
}

/// Each object's `.out` put together as its parts are written: parts that follow on the ones
/// before go in at once, so an object commits one part after its last unit.
struct OutputAssembly {
    let coordinator: Coordinator
    let stores: ObjectStores
    let job: TransformJob
    let logger: Logger
    private var composers: [Int: any ObjectComposer] = [:]

    init(coordinator: Coordinator, stores: ObjectStores, job: TransformJob, logger: Logger) {
        self.coordinator = coordinator
        self.stores = stores
        self.job = job
        self.logger = logger
    }

    mutating func partWritten(of object: Int) async {
        let track = await coordinator.objects[object]
        let planned = track.planned
        guard !track.resolved else { return }
        if track.failure != nil {
            if var composer = composers.removeValue(forKey: object) { await composer.abort() }
            return
        }
        let (parts, complete) = await coordinator.takeAppendableParts(of: object)
        var failure: TransformError?
        do {
            let store = try stores.store(for: planned.output)
            var composer: any ObjectComposer
            if let open = composers.removeValue(forKey: object) {
                composer = open
            } else {
                composer = try await store.openComposer(planned.output)
            }
            do {
                for part in parts { try await composer.append(part) }
                guard complete else {
                    composers[object] = composer
                    return
                }
                await job.options.objectEvents?(
                    ObjectEvent(
                        input: planned.input.uri.description,
                        output: planned.output.description,
                        kind: .committing
                    )
                )
                let summary = try await composer.commit()
                logger.info("Committed \(planned.output): \(summary.description)")
                // A composer may read a part until it commits (S3 places each one when the next comes).
                for part in await coordinator.writtenParts(of: object) { try? await store.delete(part) }
            } catch {
                await composer.abort()
                throw error
            }
        } catch {
            failure = TransformError(.outputFailed, "committing \(planned.output) failed: \(error)")
        }
        await coordinator.resolve(object, failure: failure)
        job.progress.update {
            if failure == nil { $0.objectsCompleted += 1 } else { $0.objectsFailed += 1 }
        }
        let kind: ObjectEvent.Kind = failure.map { .failed(reason: $0.message) } ?? .completed
        await job.options.objectEvents?(
            ObjectEvent(input: planned.input.uri.description, output: planned.output.description, kind: kind)
        )
    }

    /// A job that ends before its objects do commits none of them.
    mutating func abortAll() async {
        for (_, var composer) in composers { await composer.abort() }
        composers = [:]
    }
}
