import Synchronization

/// Live counters of a running job, read by progress displays while the engine updates them.
public final class JobProgress: Sendable {
    public struct Snapshot: Sendable {
        public var objectsTotal = 0
        public var objectsCompleted = 0
        public var objectsFailed = 0
        public var recordsProcessed = 0
        public var bytesProcessed: Int64 = 0
        public var phase = "starting"
    }

    private let state = Mutex(Snapshot())
    public let started = ContinuousClock.now

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ change: (inout Snapshot) -> Void) { state.withLock { change(&$0) } }
}
