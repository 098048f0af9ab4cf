import Cluster
import Foundation
import Logging
import ModelRuntime
import ObjectStorage
import ServiceLifecycle
import TransformEngine
import TransformSpec

/// Runs stored jobs through the engine, at most `maxRunningJobs` at once and the rest queued
/// (InProgress) in creation order. Every change of a job's state goes to the store first, so a
/// restarted server picks up where a killed one stopped. A lifecycle `Service`: on graceful
/// shutdown (SIGTERM, SIGINT) it takes no new jobs, lets the running ones reach a resumable state
/// and stops their model servers; the jobs stay InProgress and resume at the next start.
actor JobExecutor: Service {
    private struct RunningJob {
        var task: Task<Void, Never>
        var progress: JobProgress?
    }

    private let store: JobStore
    private let settings: ServerSettings
    private let metrics: ServerMetrics
    private var queued: [String] = []
    private var running: [String: RunningJob] = [:]

    /// The server's own log: one line per job event, for whoever runs `batchform serve`.
    private let events: Logger

    init(
        store: JobStore,
        settings: ServerSettings,
        metrics: ServerMetrics,
        events: Logger = Logger(label: "batchform.serve")
    ) {
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.events = events
    }

    /// After a restart: jobs that were being stopped are Stopped; InProgress ones run again,
    /// skipping the objects whose `.out` was already committed.
    /// A job that was running when the server crashed (`crashSignal`), or during
    /// `maxUnfinishedRuns` starts in a row, is marked Failed instead: resuming it could take the
    /// server down again.
    func resumeInterruptedJobs(crashSignal: Int32?) async throws {
        for job in try await store.jobs(withStatus: [.Stopping]) {
            try await store.setStatus(of: job.name, to: .Stopped, ended: Date().timeIntervalSince1970)
        }
        for job in try await store.jobs(withStatus: [.InProgress]) {
            let unfinished = try await store.unfinishedRuns(of: job.name)
            var reason: String?
            if let crashSignal, unfinished > 0 {
                reason =
                    "The Batchform server crashed (signal \(crashSignal)) while this job was running, so the job is not "
                    + "resumed: running it again could crash the server again. Read the job's logs, then create it again."
            } else if unfinished >= Self.maxUnfinishedRuns {
                reason =
                    "The Batchform server stopped without finishing this job \(unfinished) times in a row, so the job "
                    + "is not resumed again. Read the job's logs and the server's output, then create it again."
            }
            if let reason {
                try await store.setStatus(
                    of: job.name,
                    to: .Failed,
                    failureReason: reason,
                    ended: Date().timeIntervalSince1970
                )
                try await store.appendLog(job: job.name, "Job Failed: \(reason)")
                try await store.endRun(of: job.name)
                events.error("job failed at restart", metadata: ["job": "\(job.name)", "reason": "\(reason)"])
                continue
            }
            try await store.appendLog(job: job.name, "Batchform restarted: resuming the job.")
            events.info("job resumed after restart", metadata: ["job": "\(job.name)"])
            enqueue(job.name)
        }
    }

    static let maxUnfinishedRuns = 3

    func enqueue(_ name: String) {
        // During shutdown a new job waits, InProgress, for the next start.
        guard !shuttingDown else { return }
        queued.append(name)
        startQueuedJobs()
    }

    private var shuttingDown = false

    /// Writes the job logs in batches until the service group's graceful shutdown, then stops in order.
    func run() async throws {
        let store = self.store
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                try? await store.flushLogs()
            }
        }
        await shutdown()
        try? await store.flushLogs()
    }

    /// The live counters of a running job; nil when it is not running.
    func progress(of name: String) -> JobProgress.Snapshot? {
        running.first { $0.key.lowercased() == name.lowercased() }?.value.progress?.snapshot
    }

    func runningProgress() -> [JobProgress.Snapshot] { running.values.compactMap { $0.progress?.snapshot } }

    /// Stops a queued or running job. Returns false when the job is neither.
    func stop(_ name: String) async throws -> Bool {
        if let position = queued.firstIndex(where: { $0.lowercased() == name.lowercased() }) {
            queued.remove(at: position)
            try await store.setStatus(of: name, to: .Stopped, from: [.InProgress], ended: Date().timeIntervalSince1970)
            try await store.appendLog(job: name, "Stopped before it started.")
            return true
        }
        guard let job = running.first(where: { $0.key.lowercased() == name.lowercased() }) else { return false }
        try await store.setStatus(of: name, to: .Stopping, from: [.InProgress])
        try await store.appendLog(job: name, "StopTransformJob: stopping.")
        events.info("job stopping", metadata: ["job": "\(name)"])
        job.value.task.cancel()
        return true
    }

    /// Stops every running job's model servers and waits, for an orderly shutdown. The jobs stay
    /// InProgress in the store, so the next start resumes them.
    func shutdown() async {
        guard !shuttingDown else { return }
        shuttingDown = true
        events.info("shutting down", metadata: ["running": "\(running.count)", "queued": "\(queued.count)"])
        queued.removeAll()
        let tasks = running.values.map(\.task)
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    private func startQueuedJobs() {
        while running.count < settings.maxRunningJobs, !queued.isEmpty {
            let name = queued.removeFirst()
            running[name] = RunningJob(task: Task { await self.execute(name) })
        }
    }

    private func finished(_ name: String) {
        running[name] = nil
        startQueuedJobs()
    }

    private func attach(_ progress: JobProgress, to name: String) { running[name]?.progress = progress }

    // MARK: Running one job

    private func execute(_ name: String) async {
        defer { finished(name) }
        // Counted until the run ends in order, however it ends; a crash leaves it counted.
        let counted = (try? await store.beginRun(of: name)) != nil
        await runJob(name)
        if counted { try? await store.endRun(of: name) }
        try? await store.flushLogs()
    }

    private func runJob(_ name: String) async {
        let logger = Logger(label: "batchform.job") { _ in JobLogHandler(store: self.store, job: name) }
        do {
            guard let job = try await store.job(named: name), job.status == .InProgress else { return }
            try await store.setStatus(of: name, to: .InProgress, started: Date().timeIntervalSince1970)
            events.info("job started", metadata: ["job": "\(name)"])
            let model = try ModelDefinition(validating: job.model)
            let configuration = try TransformJobConfiguration(validating: job.request)
            var options = RunOptions(
                logDirectory: settings.logDirectory(of: name),
                startupTimeout: settings.startupTimeout,
                workingDirectory: settings.workingDirectory,
                s3: settings.s3,
                confinement: settings.confinement
            )
            options.completedInputs = try await completedInputs(of: name)
            if let makeExecutor = settings.clusterExecutor {
                options.runner = ClusterRunner(
                    executor: makeExecutor(),
                    model: job.model,
                    request: job.request,
                    workerCommand: settings.workerCommand,
                    address: settings.coordinatorAddress,
                    logger: logger
                )
            }
            keepEarlierRunLogs(in: options.logDirectory)
            options.objectEvents = { [store, events] event in
                await Self.record(event, of: name, in: store, logger: logger)
                if case .failed(let reason) = event.kind {
                    events.warning(
                        "object failed",
                        metadata: ["job": "\(name)", "input": "\(event.input)", "reason": "\(reason)"]
                    )
                }
            }
            let transformJob = TransformJob(
                model: model,
                configuration: configuration,
                options: options,
                logger: logger
            )
            attach(transformJob.progress, to: name)
            metrics.jobStarted(transformJob.progress)
            defer { metrics.jobEnded(transformJob.progress) }
            let saving = Task { await saveProgressPeriodically(transformJob.progress, of: name) }
            defer { saving.cancel() }
            let plan = try await transformJob.plan()
            try await store.planObjects(
                job: name,
                plan.objects.map { ($0.input.uri.description, $0.output.description) }
            )
            let result = await transformJob.run(plan)
            if result.status == .Stopped, !(try await isBeingStopped(name)) {
                // Cancelled by a server shutdown, not by StopTransformJob: left InProgress to resume.
                try await store.setProgress(of: name, transformJob.progress.snapshot)
                return
            }
            try await store.setProgress(of: name, transformJob.progress.snapshot)
            try await store.setStatus(
                of: name,
                to: result.status,
                failureReason: result.failureReason,
                ended: result.endTime
            )
            logger.info("Job \(result.status.rawValue).\(result.failureReason.map { " FailureReason: \($0)" } ?? "")")
            var metadata: Logger.Metadata = [
                "job": "\(name)", "objects": "\(transformJob.progress.snapshot.objectsCompleted)",
                "records": "\(transformJob.progress.snapshot.recordsProcessed)",
            ]
            if let reason = result.failureReason { metadata["reason"] = "\(reason)" }
            events.log(
                level: result.status == .Failed ? .error : .info,
                "job \(result.status.rawValue.lowercased())",
                metadata: metadata
            )
        } catch {
            let reason = (error as? ValidationException)?.message ?? "\(error)"
            logger.error("Job Failed: \(reason)")
            events.error("job failed", metadata: ["job": "\(name)", "reason": "\(reason)"])
            _ = try? await store.setStatus(
                of: name,
                to: .Failed,
                failureReason: reason,
                ended: Date().timeIntervalSince1970
            )
        }
    }

    /// A resumed job's model servers log afresh; the earlier run's logs stay, renamed.
    private func keepEarlierRunLogs(in directory: String) {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let stamp = Int(Date().timeIntervalSince1970)
        for file in files
        where file.hasPrefix("instance-") && file.hasSuffix(".log") && file.split(separator: ".").count == 2 {
            try? FileManager.default.moveItem(
                atPath: "\(directory)/\(file)",
                toPath: "\(directory)/\(file.dropLast(4)).before-\(stamp).log"
            )
        }
    }

    private func isBeingStopped(_ name: String) async throws -> Bool {
        try await store.job(named: name)?.status == .Stopping
    }

    /// What an earlier run committed. An object caught between "committing" and "completed" by a
    /// crash counts as done exactly when its `.out` exists, as commits are atomic.
    private func completedInputs(of name: String) async throws -> Set<String> {
        var done: Set<String> = []
        let stores = ObjectStores(s3: settings.s3, confinement: settings.confinement)
        for object in try await store.objects(of: name) {
            switch object.state {
            case .completed:
                done.insert(object.input)
            case .committing:
                let output = try ObjectURI(parsing: object.output, workingDirectory: "/")
                if (try? await stores.store(for: output).info(output)) != nil {
                    try await store.setObjectState(job: name, input: object.input, state: .completed)
                    done.insert(object.input)
                }
            case .pending, .running, .failed:
                break  // done again
            }
        }
        try await store.clearUnfinishedObjects(of: name)
        return done
    }

    private static func record(_ event: ObjectEvent, of job: String, in store: JobStore, logger: Logger) async {
        do {
            switch event.kind {
            case .started:
                try await store.setObject(job: job, input: event.input, output: event.output, state: .running)
            case .committing:
                try await store.setObject(job: job, input: event.input, output: event.output, state: .committing)
            case .completed:
                try await store.setObjectState(job: job, input: event.input, state: .completed)
                logger.info("Completed \(event.input) -> \(event.output)")
            case .failed(let reason):
                try await store.setObject(
                    job: job,
                    input: event.input,
                    output: event.output,
                    state: .failed,
                    reason: reason
                )
                logger.error("Failed \(event.input): \(reason)")
            }
        } catch {
            logger.error("Could not record the state of \(event.input): \(error)")
        }
    }

    private func saveProgressPeriodically(_ progress: JobProgress, of name: String) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(2))
            try? await store.setProgress(of: name, progress.snapshot)
        }
    }
}

/// Sends a job's engine log lines to the store, in the `[sagemaker logs]` style the engine writes.
struct JobLogHandler: LogHandler {
    let store: JobStore
    let job: String
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Held for the next batch write: no I/O here.
    func log(event: LogEvent) {
        let level = event.level == .info ? "" : "\(event.level.rawValue.uppercased()): "
        store.enqueueLog(job: job, level + event.message.description)
    }
}
