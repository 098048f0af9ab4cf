import Synchronization

/// Live counters of a running job, read by progress displays, Describe and metrics while the
/// engine updates them.
public final class JobProgress: Sendable {
    public struct Snapshot: Sendable, Codable {
        public var objectsTotal = 0
        public var objectsCompleted = 0
        public var objectsFailed = 0
        /// Of `objectsCompleted`, those finished by an earlier run of the same job (a resumed job).
        public var objectsSkipped = 0
        public var recordsProcessed = 0
        /// Records in batches whose answer was an error.
        public var recordsFailed = 0
        public var bytesProcessed: Int64 = 0
        /// The input bytes to read (as listed; compressed size for gzip inputs).
        public var bytesTotal: Int64 = 0
        public var phase = "starting"
        public var instances: [InstanceProgress] = []
        public var invocationLatency = LatencyHistogram()
        /// Invocations that failed after their retries (the model's errors, timeouts, dropped connections).
        public var modelErrors = 0

        public init() {}
    }

    public struct InstanceProgress: Sendable, Codable {
        public var name: String
        public var state: String
        public var invocations = 0
    }

    private let state = Mutex(Snapshot())
    public let started = ContinuousClock.now

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ change: (inout Snapshot) -> Void) { state.withLock { change(&$0) } }

    func setInstance(_ index: Int, name: String, state newState: String) {
        update { snapshot in
            while snapshot.instances.count <= index { snapshot.instances.append(.init(name: "", state: "")) }
            snapshot.instances[index].name = name
            snapshot.instances[index].state = newState
        }
    }
}

/// Invocation latencies in Prometheus' cumulative-bucket form.
public struct LatencyHistogram: Sendable, Codable {
    /// Upper bounds in seconds; a last, implicit bucket is +Inf.
    public static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
    /// Observations per bucket (not cumulative), one more than `bounds` for +Inf.
    public var counts = [Int](repeating: 0, count: LatencyHistogram.bounds.count + 1)
    public var sum = 0.0
    public var count: Int { counts.reduce(0, +) }

    public init() {}

    public mutating func observe(seconds: Double) {
        let bucket = Self.bounds.firstIndex { seconds <= $0 } ?? Self.bounds.count
        counts[bucket] += 1
        sum += seconds
    }

    public mutating func add(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        sum += other.sum
    }
}
