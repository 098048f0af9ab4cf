import AsyncHTTPClient
import Foundation
public import Logging
import ObjectStorage
import Synchronization
public import TransformEngine
import TransformSpec

/// `batchform worker`: started by an executor on a cluster node, never by hand. It registers
/// with the coordinator, starts one model instance here, and runs the units it leases, reading
/// inputs from and writing parts to the stores directly, heartbeating all along.
public enum ClusterWorker {
    /// Runs until the coordinator has no more work for it; returns how its engine ended.
    /// `makeLogger` gets the path of the worker's log in the job's log folder.
    public static func run(
        environment: [String: String],
        makeLogger: @Sendable (String) -> Logger
    ) async throws -> TransformJobResult {
        guard let url = environment[WorkerProtocol.coordinatorVariable],
            let secret = environment[WorkerProtocol.secretVariable]
        else {
            throw ClusterError(
                .notAWorker,
                "batchform worker is started by a cluster executor (batchform transform --executor slurm, or "
                    + "batchform serve --executor slurm), not by hand: it needs \(WorkerProtocol.coordinatorVariable) "
                    + "and \(WorkerProtocol.secretVariable) in its environment."
            )
        }
        let connection = CoordinatorConnection(baseURL: url, secret: secret, http: HTTPClient.shared)
        // Where it runs and as what, in the executor's words: Slurm's, or any executor's overrides.
        let node =
            environment["BATCHFORM_WORKER_NODE"] ?? environment["SLURMD_NODENAME"] ?? ProcessInfo.processInfo.hostName
        let allocation =
            environment["BATCHFORM_WORKER_ALLOCATION"]
            ?? environment["SLURM_ARRAY_JOB_ID"].map { "\($0)_\(environment["SLURM_ARRAY_TASK_ID"] ?? "0")" }
            ?? environment["SLURM_JOB_ID"] ?? "pid-\(getpid())"
        let assignment = try await connection.post(
            "/v1/register",
            WorkerProtocol.Registration(node: node, allocation: allocation),
            as: WorkerProtocol.Assignment.self
        )
        let logger = makeLogger("\(assignment.logDirectory)/\(assignment.worker).log")
        logger.info("\(assignment.worker) on \(node) (allocation \(allocation)), coordinator \(url)")
        let model = try ModelDefinition(validating: assignment.model)
        let configuration = try TransformJobConfiguration(validating: Self.ownRecordErrorsReport(assignment))
        var options = RunOptions(
            logDirectory: assignment.logDirectory,
            startupTimeout: .seconds(assignment.startupTimeoutSeconds),
            workingDirectory: assignment.workingDirectory,
            s3: S3Options(endpoint: assignment.s3Endpoint, region: assignment.region),
            confinement: assignment.allowedLocalPaths.map { LocalConfinement(allowing: $0) } ?? .unconfined
        )
        options.firstInstanceNumber = assignment.number
        let job = TransformJob(model: model, configuration: configuration, options: options, logger: logger)
        let units = LeasedUnits(
            connection: connection,
            worker: assignment.worker,
            progress: job.progress,
            logger: logger
        )
        return await withTaskGroup(of: TransformJobResult?.self) { group in
            group.addTask { await job.run(units: units) }
            group.addTask {
                await heartbeat(
                    connection,
                    worker: assignment.worker,
                    every: .milliseconds(assignment.heartbeatMilliseconds),
                    units: units,
                    progress: job.progress,
                    logger: logger
                )
                return nil
            }
            var outcome: TransformJobResult?
            for await finished in group {
                // The run ends the heartbeat; a coordinator that says stop (or is gone) ends the run.
                if outcome == nil { outcome = finished }
                group.cancelAll()
            }
            let result = outcome ?? TransformJobResult.stopped
            if result.status == .Failed {
                logger.error("The worker's run failed: \(result.failureReason ?? "")")
                _ = try? await connection.post(
                    "/v1/heartbeat",
                    WorkerProtocol.Heartbeat(
                        worker: assignment.worker,
                        state: "failed: \(result.failureReason ?? "")",
                        records: 0,
                        bytes: 0,
                        inFlight: 0
                    ),
                    as: WorkerProtocol.HeartbeatAnswer.self
                )
            }
            logger.info("\(assignment.worker) ends: \(result.status.rawValue)")
            return result
        }
    }

    /// Each worker isolates its own records, so each writes its own record-errors report:
    /// `record-errors-worker-N.jsonl` in the job's logs, or `<BATCHFORM_RECORD_ERRORS_OUTPUT>.worker-N`.
    static func ownRecordErrorsReport(_ assignment: WorkerProtocol.Assignment) -> CreateTransformJobRequest {
        var request = assignment.job
        let environment = (assignment.model.PrimaryContainer?.Environment ?? [:]).merging(request.Environment ?? [:]) {
            $1
        }
        guard (Int(environment[EngineSettings.maxRecordErrorsName] ?? "0") ?? 0) > 0 else { return request }
        request.Environment = request.Environment ?? [:]
        request.Environment?[EngineSettings.recordErrorsOutputName] =
            environment[EngineSettings.recordErrorsOutputName].map { "\($0).\(assignment.worker)" }
            ?? "\(assignment.logDirectory)/record-errors-\(assignment.worker).jsonl"
        return request
    }

    /// Tells the coordinator every `interval` that this worker lives and what it does. Returns
    /// when the coordinator says stop, or has not answered for a minute.
    private static func heartbeat(
        _ connection: CoordinatorConnection,
        worker: String,
        every interval: Duration,
        units: LeasedUnits,
        progress: JobProgress,
        logger: Logger
    ) async {
        var lastAnswer = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let snapshot = progress.snapshot
            let counted = units.countedInCurrentUnit(snapshot)
            let beat = WorkerProtocol.Heartbeat(
                worker: worker,
                state: snapshot.phase == "transforming" ? "serving" : snapshot.phase,
                records: counted.records,
                bytes: counted.bytes,
                inFlight: snapshot.instances.reduce(0) { $0 + $1.inFlight }
            )
            do {
                let answer = try await connection.post("/v1/heartbeat", beat, as: WorkerProtocol.HeartbeatAnswer.self)
                lastAnswer = .now
                if answer.stop {
                    logger.info("The coordinator says stop.")
                    return
                }
            } catch {
                if Task.isCancelled { return }
                if ContinuousClock.now - lastAnswer > .seconds(60) {
                    logger.error("The coordinator has not answered for 60 s (\(error)): stopping.")
                    return
                }
            }
        }
    }
}

extension TransformJobResult {
    static var stopped: TransformJobResult {
        let now = Date().timeIntervalSince1970
        return TransformJobResult(
            status: .Stopped,
            failureReason: nil,
            startTime: now,
            endTime: now,
            failedObjects: [],
            parameters: nil,
            recordErrorsReport: nil
        )
    }
}

/// The units this worker leases, one at a time, and what it reports of each.
final class LeasedUnits: UnitSource {
    private struct Current {
        var unit: WorkUnit
        var attempt: Int
        var records: Int
        var bytes: Int64
    }

    private let connection: CoordinatorConnection
    private let worker: String
    private let progress: JobProgress
    private let logger: Logger
    private let current = Mutex<Current?>(nil)

    init(connection: CoordinatorConnection, worker: String, progress: JobProgress, logger: Logger) {
        self.connection = connection
        self.worker = worker
        self.progress = progress
        self.logger = logger
    }

    func next() async throws -> PlannedObject? {
        while true {
            let lease = try await connection.post(
                "/v1/lease",
                WorkerProtocol.LeaseRequest(worker: worker),
                as: WorkerProtocol.Lease.self
            )
            if let unit = lease.unit, let output = lease.output {
                let snapshot = progress.snapshot
                current.withLock {
                    $0 = Current(
                        unit: unit,
                        attempt: lease.attempt,
                        records: snapshot.recordsProcessed,
                        bytes: snapshot.bytesProcessed
                    )
                }
                let input = try ObjectURI(parsing: unit.input, workingDirectory: "/")
                logger.info(
                    "Unit \(unit.id): \(unit.input)\(unit.range.map { " bytes \($0.lowerBound)-\($0.upperBound - 1)" } ?? "") (attempt \(lease.attempt))"
                )
                return PlannedObject(
                    // The size is where the unit ends, so the tail split sees the unit's end.
                    input: ListedObject(uri: input, relativeKey: "", size: unit.end ?? unit.size),
                    output: try ObjectURI(parsing: output, workingDirectory: "/"),
                    range: unit.range
                )
            }
            guard lease.wait else { return nil }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    func finished(_ unit: PlannedObject, failure: TransformError?) async throws {
        guard let leased = current.withLock({ $0 }) else { return }
        let snapshot = progress.snapshot
        current.withLock { $0 = nil }
        let report = WorkerProtocol.UnitReport(
            worker: worker,
            unit: leased.unit.id,
            attempt: leased.attempt,
            records: snapshot.recordsProcessed - leased.records,
            bytes: snapshot.bytesProcessed - leased.bytes,
            failure: failure?.message,
            failureCode: failure?.code.rawValue
        )
        if let failure { logger.error("Unit \(leased.unit.id) failed: \(failure.message)") }
        _ = try await connection.post("/v1/report", report, as: WorkerProtocol.HeartbeatAnswer.self)
    }

    /// What the engine counted on the unit in progress.
    func countedInCurrentUnit(_ snapshot: JobProgress.Snapshot) -> (records: Int, bytes: Int64) {
        current.withLock { current in
            guard let current else { return (0, 0) }
            return (snapshot.recordsProcessed - current.records, snapshot.bytesProcessed - current.bytes)
        }
    }
}
