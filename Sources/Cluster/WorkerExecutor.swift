/// Starts a job's workers on some cluster manager and reports where they are. The coordinator
/// does everything else (leases, heartbeats, commits), so an executor is only this: Slurm now
/// (`SlurmExecutor`), a Kubernetes Indexed Job next (docs/kubernetes.md).
public protocol WorkerExecutor: Sendable {
    /// The name users give it (`--executor slurm`).
    var name: String { get }
    /// Starts `count` workers, each running `launch.command` with `launch.environment` added to
    /// its environment, one per node. Returns the allocations' ids. Throws `ClusterError`
    /// (`executorMissing`, `submissionRefused`) quoting the cluster's own message.
    func start(_ count: Int, _ launch: WorkerLaunch) async throws -> [String]
    /// The state of every allocation started so far.
    func allocations() async -> [WorkerAllocation]
    /// Ends every allocation started so far (a stopped or finished job).
    func cancelAll() async
}

/// How to start a job's workers.
public struct WorkerLaunch: Sendable {
    public var jobName: String
    /// The worker's command line: the Batchform binary and `worker`; no secret in it.
    public var command: [String]
    /// Added to the workers' environment: the coordinator's address and the job's secret.
    public var environment: [String: String]
    /// Where the cluster writes each worker's own output.
    public var logDirectory: String

    public init(jobName: String, command: [String], environment: [String: String], logDirectory: String) {
        self.jobName = jobName
        self.command = command
        self.environment = environment
        self.logDirectory = logDirectory
    }
}

/// One started worker as the cluster sees it.
public struct WorkerAllocation: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case pending, running, ended
    }

    public var id: String
    public var phase: Phase
    /// The cluster's own words: Slurm's job state (`RUNNING`, `NODE_FAIL`…) and reason.
    public var state: String
    public var node: String?
    public var reason: String?

    public init(id: String, phase: Phase, state: String, node: String?, reason: String?) {
        self.id = id
        self.phase = phase
        self.state = state
        self.node = node
        self.reason = reason
    }
}
