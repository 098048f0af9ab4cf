import Foundation
import Logging
import ObjectStorage
import TransformEngine

/// The job's work as the coordinator tracks it: which unit is leased to which worker, which
/// workers are alive, which objects have every part. Leases are taken in input order by
/// whichever worker asks, so fast workers take more; a lost worker's leases go back to the queue.
actor Coordinator {
    struct UnitTrack {
        var unit: WorkUnit
        var lease: (worker: String, attempt: Int)?
        var attempts = 0
        /// The attempt whose part was written whole; set once.
        var doneAttempt: Int?
        var records = 0
        var bytes: Int64 = 0
    }

    struct ObjectTrack {
        var planned: PlannedObject
        var units: [Int] = []
        var remaining = 0
        var failure: TransformError?
        /// Committed or failed: nothing more happens to it.
        var resolved = false
        /// How many of its parts, from the first, are in its `.out` being put together.
        var appended = 0
    }

    struct WorkerTrack {
        var id: String
        var node: String
        var allocation: String
        var lastSeen: ContinuousClock.Instant
        var state = "starting"
        var unit: Int?
        var records = 0
        var bytes: Int64 = 0
        var inFlight = 0
        var lostReason: String?
    }

    private(set) var units: [UnitTrack]
    private(set) var objects: [ObjectTrack]
    private var workers: [String: WorkerTrack] = [:]
    private var workerOrder: [String] = []
    private var ending = false
    private let assignment: @Sendable (String, Int) -> WorkerProtocol.Assignment
    private let partLocation: @Sendable (WorkUnit, Int) -> ObjectURI
    private let ready: AsyncStream<Int>.Continuation
    private let logger: Logger

    init(
        objects: [PlannedObject],
        units: [WorkUnit],
        assignment: @escaping @Sendable (String, Int) -> WorkerProtocol.Assignment,
        partLocation: @escaping @Sendable (WorkUnit, Int) -> ObjectURI,
        ready: AsyncStream<Int>.Continuation,
        logger: Logger
    ) {
        self.objects = objects.map { ObjectTrack(planned: $0) }
        self.units = units.map { UnitTrack(unit: $0) }
        for unit in units {
            self.objects[unit.object].units.append(unit.id)
            self.objects[unit.object].remaining += 1
        }
        self.assignment = assignment
        self.partLocation = partLocation
        self.ready = ready
        self.logger = logger
    }

    // MARK: What workers ask

    func register(_ registration: WorkerProtocol.Registration) -> WorkerProtocol.Assignment {
        let number = workerOrder.count + 1
        let id = "worker-\(number)"
        workers[id] = WorkerTrack(
            id: id,
            node: registration.node,
            allocation: registration.allocation,
            lastSeen: .now
        )
        workerOrder.append(id)
        logger.info("\(id) started on \(registration.node) (allocation \(registration.allocation))")
        return assignment(id, number)
    }

    func lease(for worker: String) -> WorkerProtocol.Lease {
        let stop = WorkerProtocol.Lease(unit: nil, output: nil, attempt: 0, wait: false)
        guard !ending, var track = workers[worker], track.lostReason == nil else { return stop }
        track.lastSeen = .now
        defer { workers[worker] = track }
        if let index = units.indices.first(where: { isOpen($0) && units[$0].lease == nil }) {
            units[index].attempts += 1
            let attempt = units[index].attempts
            units[index].lease = (worker, attempt)
            track.unit = index
            track.records = 0
            track.bytes = 0
            let unit = units[index].unit
            return WorkerProtocol.Lease(
                unit: unit,
                output: partLocation(unit, attempt).description,
                attempt: attempt,
                wait: false
            )
        }
        track.unit = nil
        // Others hold the last units: this worker waits, in case one of them is lost.
        guard units.indices.contains(where: isOpen) else {
            track.state = "finished"
            return stop
        }
        track.state = "idle"
        return WorkerProtocol.Lease(unit: nil, output: nil, attempt: 0, wait: true)
    }

    /// Not yet written whole, and its object still wanted.
    private func isOpen(_ index: Int) -> Bool {
        units[index].doneAttempt == nil && objects[units[index].unit.object].failure == nil
            && !objects[units[index].unit.object].resolved
    }

    func heartbeat(_ beat: WorkerProtocol.Heartbeat) -> WorkerProtocol.HeartbeatAnswer {
        guard var track = workers[beat.worker], track.lostReason == nil, !ending else {
            return WorkerProtocol.HeartbeatAnswer(stop: true)
        }
        track.lastSeen = .now
        if track.state != "finished" { track.state = beat.state }
        track.records = beat.records
        track.bytes = beat.bytes
        track.inFlight = beat.inFlight
        workers[beat.worker] = track
        return WorkerProtocol.HeartbeatAnswer(stop: false)
    }

    func report(_ report: WorkerProtocol.UnitReport) {
        guard units.indices.contains(report.unit) else { return }
        workers[report.worker]?.lastSeen = .now
        workers[report.worker]?.unit = nil
        var track = units[report.unit]
        let holds = track.lease?.worker == report.worker && track.lease?.attempt == report.attempt
        if holds { track.lease = nil }
        defer { units[report.unit] = track }
        let object = track.unit.object
        guard track.doneAttempt == nil, !objects[object].resolved, objects[object].failure == nil else { return }
        guard let message = report.failure else {
            // A whole part, even from a worker whose lease was given to another since: outputs are
            // deterministic, and only this attempt's part is used.
            track.doneAttempt = report.attempt
            track.records = report.records
            track.bytes = report.bytes
            objects[object].remaining -= 1
            ready.yield(object)
            return
        }
        guard holds else { return }
        let code = report.failureCode.flatMap(TransformError.Code.init(rawValue:)) ?? .modelFailed
        if code == .noInstances {
            // The worker's model server cannot run: the unit is not at fault; the worker stops.
            workers[report.worker]?.lostReason = message
            logger.warning("\(report.worker) stops: \(message) Its unit goes back to the queue.")
            return
        }
        objects[object].failure = TransformError(code, message)
    }

    // MARK: What the coordinator decides

    /// Workers whose allocation ended or who stopped heartbeating are lost; their leases go
    /// back to the queue. Returns how many allocations can still give work.
    func observe(_ allocations: [WorkerAllocation], leaseTimeout: Duration) -> Int {
        let byID = Dictionary(allocations.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        for id in workerOrder {
            guard var track = workers[id], track.lostReason == nil, track.state != "finished" else { continue }
            if let allocation = byID[track.allocation], allocation.phase == .ended {
                lose(&track, "Slurm reports its allocation \(allocation.id) \(allocation.state)")
            } else if ContinuousClock.now - track.lastSeen > leaseTimeout {
                lose(&track, "no heartbeat for \(leaseTimeout.components.seconds) s")
            }
            workers[id] = track
        }
        let lostAllocations = Set(workers.values.filter { $0.lostReason != nil }.map(\.allocation))
        return allocations.filter { $0.phase != .ended && !lostAllocations.contains($0.id) }.count
    }

    private func lose(_ track: inout WorkerTrack, _ reason: String) {
        // A worker whose engine failed said why in its last heartbeat.
        let said = track.state.dropFirst("failed: ".count).trimmingCharacters(in: CharacterSet(charactersIn: ". "))
        let reason = track.state.hasPrefix("failed: ") ? "\(reason); it said: \(said)" : reason
        track.lostReason = reason
        track.state = "lost"
        var released: [Int] = []
        for index in units.indices where units[index].lease?.worker == track.id {
            units[index].lease = nil
            released.append(index)
        }
        logger.warning(
            "\(track.id) on \(track.node) was lost (\(reason))\(released.isEmpty ? "." : "; unit(s) \(released.map(String.init).joined(separator: ", ")) go back to the queue.")"
        )
    }

    /// Units not yet written whole, of objects still wanted.
    var openUnits: Int { units.indices.filter(isOpen).count }
    var hasRegisteredWorkers: Bool { !workerOrder.isEmpty }
    var isFinished: Bool { objects.allSatisfy(\.resolved) }

    /// Objects that failed and were not yet resolved; each is resolved by this call.
    func takeFailedObjects() -> [(Int, TransformError)] {
        var failed: [(Int, TransformError)] = []
        for index in objects.indices where !objects[index].resolved {
            if let failure = objects[index].failure {
                objects[index].resolved = true
                failed.append((index, failure))
            }
        }
        return failed
    }

    func resolve(_ object: Int, failure: TransformError?) {
        objects[object].resolved = true
        if let failure { objects[object].failure = failure }
    }

    /// The object's parts written whole since the last call and following on the ones taken
    /// before, in order, and whether that makes all of them: they go into its `.out` now, so
    /// its commit waits for its last part only.
    func takeAppendableParts(of object: Int) -> (parts: [ObjectURI], complete: Bool) {
        var parts: [ObjectURI] = []
        let ids = objects[object].units
        while objects[object].appended < ids.count, let attempt = units[ids[objects[object].appended]].doneAttempt {
            parts.append(partLocation(units[ids[objects[object].appended]].unit, attempt))
            objects[object].appended += 1
        }
        return (parts, objects[object].appended == ids.count)
    }

    /// Every part of the object written whole, in order.
    func writtenParts(of object: Int) -> [ObjectURI] {
        objects[object].units.compactMap { id in units[id].doneAttempt.map { partLocation(units[id].unit, $0) } }
    }

    /// From now on every worker is told to stop.
    func end() { ending = true }

    /// Each worker as `jobs describe` shows it, and the records counted on units in progress.
    func workerProgress() -> (workers: [WorkerTrack], recordsInProgress: Int, bytesInProgress: Int64) {
        let list = workerOrder.compactMap { workers[$0] }
        let live = list.filter { $0.lostReason == nil && $0.unit != nil }
        return (list, live.reduce(0) { $0 + $1.records }, live.reduce(0) { $0 + $1.bytes })
    }

    func lostReasons() -> [String] {
        workerOrder.compactMap { id in workers[id].flatMap { w in w.lostReason.map { "\(w.id) on \(w.node): \($0)" } } }
    }
}
