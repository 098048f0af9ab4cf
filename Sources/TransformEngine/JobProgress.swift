import Synchronization
public import TransformSpec

/// Live counters of a running job, read by progress displays, Describe and metrics while the
/// engine updates them.
public final class JobProgress: Sendable {
    public struct Snapshot: Sendable, Codable {
        public var objectsTotal = 0
        public var objectsCompleted = 0
        public var objectsFailed = 0
        /// Objects a stop (Ctrl-C, StopTransformJob, a server shutdown) interrupted: neither done nor failed.
        public var objectsStopped = 0
        /// Of `objectsCompleted`, those finished by an earlier run of the same job (a resumed job).
        public var objectsSkipped = 0
        public var recordsProcessed = 0
        /// Records in batches whose answer was an error (only the bad ones where records are isolated).
        public var recordsFailed = 0
        /// Records that failed alone, found by isolation (`BATCHFORM_MAX_RECORD_ERRORS`).
        public var recordErrors = 0
        public var bytesProcessed: Int64 = 0
        /// The input bytes to read (as listed; compressed size for gzip inputs).
        public var bytesTotal: Int64 = 0
        public var phase = "starting"
        public var instances: [InstanceProgress] = []
        public var invocationLatency = LatencyHistogram()
        /// Invocations that failed after their retries (the model's errors, timeouts, dropped connections).
        public var modelErrors = 0

        public init() {}

        /// Members missing from an older saved snapshot keep their defaults.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
                try container.decodeIfPresent(T.self, forKey: key) ?? fallback
            }
            objectsTotal = try value(.objectsTotal, 0)
            objectsCompleted = try value(.objectsCompleted, 0)
            objectsFailed = try value(.objectsFailed, 0)
            objectsStopped = try value(.objectsStopped, 0)
            objectsSkipped = try value(.objectsSkipped, 0)
            recordsProcessed = try value(.recordsProcessed, 0)
            recordsFailed = try value(.recordsFailed, 0)
            recordErrors = try value(.recordErrors, 0)
            bytesProcessed = try value(.bytesProcessed, 0)
            bytesTotal = try value(.bytesTotal, 0)
            phase = try value(.phase, "starting")
            instances = try value(.instances, [])
            invocationLatency = try value(.invocationLatency, LatencyHistogram())
            modelErrors = try value(.modelErrors, 0)
        }
    }

    /// How far a job is and when it will end, by bytes read (records where the byte total is not
    /// known). The ETA is the bytes left at the rate so far, so it falls steadily while one big
    /// object runs, as a count of files would not.
    public struct Estimate: Sendable, Equatable {
        /// 0...1; nil when nothing says how much there is.
        public var fractionDone: Double?
        public var bytesPerSecond: Double
        public var secondsLeft: Double?

        public init(_ snapshot: Snapshot, elapsedSeconds: Double, recordsTotal: Int? = nil) {
            let finishedObjects = snapshot.objectsCompleted + snapshot.objectsFailed + snapshot.objectsStopped
            let allDone = snapshot.objectsTotal > 0 && finishedObjects == snapshot.objectsTotal
            let toRead = snapshot.bytesTotal
            bytesPerSecond = elapsedSeconds > 0 ? Double(snapshot.bytesProcessed) / elapsedSeconds : 0
            if allDone {
                fractionDone = 1
            } else if toRead > 0 {
                // Gzip inputs are listed compressed and read decompressed: stop short of done.
                fractionDone = min(0.999, Double(snapshot.bytesProcessed) / Double(toRead))
            } else if let recordsTotal, recordsTotal > 0 {
                fractionDone = min(0.999, Double(snapshot.recordsProcessed) / Double(recordsTotal))
            } else if snapshot.objectsTotal > 0 {
                fractionDone = Double(finishedObjects) / Double(snapshot.objectsTotal)
            } else {
                fractionDone = nil
            }
            if allDone {
                secondsLeft = 0
            } else if let fractionDone, fractionDone > 0, elapsedSeconds > 0 {
                secondsLeft = elapsedSeconds * (1 - fractionDone) / fractionDone
            } else {
                secondsLeft = nil
            }
        }
    }

    public struct InstanceProgress: Sendable, Codable {
        public var name: String
        public var state: String
        public var invocations = 0
        /// Requests being answered now.
        public var inFlight = 0
        /// The cluster node a worker runs on; nil for a local instance.
        public var node: String?

        public init(name: String, state: String) {
            self.name = name
            self.state = state
        }

        /// Members missing from an older saved snapshot keep their defaults.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            state = try container.decode(String.self, forKey: .state)
            invocations = try container.decodeIfPresent(Int.self, forKey: .invocations) ?? 0
            inFlight = try container.decodeIfPresent(Int.self, forKey: .inFlight) ?? 0
            node = try container.decodeIfPresent(String.self, forKey: .node)
        }
    }

    private let state = Mutex(Snapshot())
    public let started = ContinuousClock.now

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// Changes the snapshot in place (the engine's scheduler, a cluster coordinator).
    public func update(_ change: (inout Snapshot) -> Void) { state.withLock { change(&$0) } }

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

extension BatchformProgress {
    /// Describe's `BatchformProgress` member for a job that has run `elapsedSeconds` so far.
    public init(_ snapshot: JobProgress.Snapshot, elapsedSeconds: Double) {
        let allRead = snapshot.objectsCompleted == snapshot.objectsTotal && snapshot.objectsTotal > 0
        self.init(
            Phase: snapshot.phase,
            ObjectsTotal: snapshot.objectsTotal,
            ObjectsCompleted: snapshot.objectsCompleted,
            ObjectsFailed: snapshot.objectsFailed,
            ObjectsResumed: snapshot.objectsSkipped,
            RecordsProcessed: snapshot.recordsProcessed,
            RecordsFailed: snapshot.recordsFailed,
            RecordsTotal: allRead && snapshot.objectsSkipped == 0 ? snapshot.recordsProcessed : nil,
            BytesProcessed: snapshot.bytesProcessed,
            BytesTotal: snapshot.bytesTotal,
            BytesPerSecond: elapsedSeconds > 0 ? (Double(snapshot.bytesProcessed) / elapsedSeconds).rounded() : 0,
            Instances: snapshot.instances.map {
                .init(Name: $0.name, State: $0.state, Invocations: $0.invocations, Node: $0.node)
            }
        )
    }
}
