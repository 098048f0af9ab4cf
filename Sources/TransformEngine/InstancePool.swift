import Logging
import Synchronization
import TransformSpec

/// The right to have one request in flight on one instance. It is not copyable, and giving it
/// back is its deinit, so it returns to its instance exactly once on every path: an answer, an
/// error, a cancellation. No permit can leak, and no instance's lane can shrink.
struct Slot: ~Copyable {
    let instance: Int
    /// Which start of the instance's model server the slot belongs to (0, then one more per restart).
    let generation: Int
    private let pool: InstancePool

    fileprivate init(instance: Int, generation: Int, pool: InstancePool) {
        self.instance = instance
        self.generation = generation
        self.pool = pool
    }

    /// Ends the slot now, rather than at the end of its scope.
    consuming func giveBack() {}

    deinit { pool.giveBack(instance: instance) }
}

/// The job's instances and their slots: `MaxConcurrentTransforms` for each instance that is
/// serving. A request takes a slot from whichever instance has the most free, so the batches of
/// any object spread over every instance. An instance whose model server dies takes no requests
/// while it is started again, and none once its restarts are used up.
final class InstancePool: Sendable {
    enum Status: Equatable, Sendable {
        case serving
        case restarting
        /// Stopped for good, and why.
        case retired(String)
    }

    let endpoints: [any ModelEndpoint]
    let slotsPerInstance: Int
    let maxRestarts: Int
    private let logger: Logger
    private let state: Mutex<State>
    /// Told when an instance's status or its requests in flight change (progress, tests).
    private let observe: @Sendable (_ instance: Int, _ status: Status, _ inFlight: Int) -> Void

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<(instance: Int, generation: Int), any Error>
    }

    private struct State {
        /// Slots per instance.
        var capacity: Int
        var free: [Int]
        var status: [Status]
        var generation: [Int]
        var restarts: [Int]
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
        /// Where the search for the freest instance starts, turned on each grant so ties rotate.
        var cursor = 0
        var inFlightPeak = 0

        var allRetired: Bool { status.allSatisfy { if case .retired = $0 { true } else { false } } }
    }

    init(
        endpoints: [any ModelEndpoint],
        slotsPerInstance: Int,
        maxRestarts: Int,
        logger: Logger,
        observe: @escaping @Sendable (_ instance: Int, _ status: Status, _ inFlight: Int) -> Void = { _, _, _ in }
    ) {
        self.endpoints = endpoints
        self.slotsPerInstance = max(1, slotsPerInstance)
        self.maxRestarts = maxRestarts
        self.logger = logger
        self.observe = observe
        state = Mutex(
            State(
                capacity: max(1, slotsPerInstance),
                free: Array(repeating: max(1, slotsPerInstance), count: endpoints.count),
                status: Array(repeating: .serving, count: endpoints.count),
                generation: Array(repeating: 0, count: endpoints.count),
                restarts: Array(repeating: 0, count: endpoints.count)
            )
        )
    }

    var totalSlots: Int { slotsPerInstance * endpoints.count }
    var allRetired: Bool { state.withLock { $0.allRetired } }
    /// The most requests that were in flight at once, over all instances.
    var inFlightPeak: Int { state.withLock { $0.inFlightPeak } }
    func status(of instance: Int) -> Status { state.withLock { $0.status[instance] } }
    func restarts(of instance: Int) -> Int { state.withLock { $0.restarts[instance] } }
    func freeSlots(of instance: Int) -> Int { state.withLock { $0.free[instance] } }

    /// Waits for a free slot on any serving instance. Throws `TransformError.noInstances` once
    /// every instance is retired, and `CancellationError` if the task is cancelled while waiting.
    func acquire() async throws -> Slot {
        try Task.checkCancellation()
        // A free slot is taken without suspending: no continuation, no cancellation record.
        let immediate = state.withLock { state -> (instance: Int, generation: Int, inFlight: Int)? in
            guard state.waiters.isEmpty, let instance = Self.freest(&state) else { return nil }
            return (instance, state.generation[instance], Self.take(instance, &state))
        }
        if let immediate {
            observe(immediate.instance, .serving, immediate.inFlight)
            return Slot(instance: immediate.instance, generation: immediate.generation, pool: self)
        }
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        let granted = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<(instance: Int, generation: Int), any Error>) in
                enum Decision {
                    case granted(Int, Int, Int)
                    case refused(any Error)
                    case waiting
                }
                let decision = state.withLock { state -> Decision in
                    if Task.isCancelled { return .refused(CancellationError()) }
                    if state.allRetired { return .refused(Self.noInstancesError) }
                    if let instance = Self.freest(&state) {
                        return .granted(instance, state.generation[instance], Self.take(instance, &state))
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .waiting
                }
                switch decision {
                case .granted(let instance, let generation, let inFlight):
                    observe(instance, .serving, inFlight)
                    continuation.resume(returning: (instance, generation))
                case .refused(let error): continuation.resume(throwing: error)
                case .waiting: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
        return Slot(instance: granted.instance, generation: granted.generation, pool: self)
    }

    fileprivate func giveBack(instance: Int) {
        let (handedOn, status, inFlight) = state.withLock { state in
            state.free[instance] += 1
            let handedOn = Self.grantWaiters(&state)
            return (handedOn, state.status[instance], slotsPerInstance - state.free[instance])
        }
        observe(instance, status, inFlight)
        resume(handedOn)
    }

    /// Called by a request that failed on an instance whose model server has exited. The first
    /// caller for a given start of the server restarts it (up to `maxRestarts` times in the job),
    /// logging each restart with the exit status; later callers return at once. Returns when the
    /// instance is serving again or retired.
    /// With `counted` false (a crash that record isolation explains), the first restart is not
    /// counted against `maxRestarts`; a server that then fails to start again still is.
    func recover(instance: Int, generation: Int, counted: Bool = true) async throws {
        let restartsFirst = state.withLock { state in
            guard state.generation[instance] == generation, state.status[instance] == .serving else { return false }
            state.status[instance] = .restarting
            return true
        }
        guard restartsFirst else { return }
        let endpoint = endpoints[instance]
        observe(instance, .restarting, slotsPerInstance - state.withLock { $0.free[instance] })
        var reason = endpoint.exitDescription() ?? "stopped answering"
        var free = !counted
        while true {
            let restart = state.withLock { state -> String? in
                if free { return "isolating a record that crashes it; not counted against the \(maxRestarts) restarts" }
                guard state.restarts[instance] < maxRestarts else { return nil }
                state.restarts[instance] += 1
                return "restart \(state.restarts[instance]) of \(maxRestarts)"
            }
            free = false
            guard let restart else {
                retire(
                    instance,
                    "The model server \(endpoint.name) \(reason); it was started again \(maxRestarts) time(s), "
                        + "the most \(EngineSettings.maxInstanceRestartsName) allows."
                )
                return
            }
            logger.warning(
                "The model server \(endpoint.name) \(reason); starting it again (\(restart))."
            )
            do {
                try await endpoint.restart()
                logger.info("The model server \(endpoint.name) is serving again.")
                let (handedOn, inFlight) = state.withLock { state in
                    state.generation[instance] += 1
                    state.status[instance] = .serving
                    return (Self.grantWaiters(&state), slotsPerInstance - state.free[instance])
                }
                observe(instance, .serving, inFlight)
                resume(handedOn)
                return
            } catch is CancellationError {
                retire(instance, "The job stopped while \(endpoint.name) was starting again.")
                throw CancellationError()
            } catch {
                reason = "could not be started again: \(error)"
                if Task.isCancelled {
                    retire(instance, reason)
                    throw CancellationError()
                }
            }
        }
    }

    private func retire(_ instance: Int, _ reason: String) {
        logger.error("\(reason) It takes no more batches.")
        let (orphans, inFlight) = state.withLock { state -> ([Waiter], Int) in
            state.status[instance] = .retired(reason)
            let inFlight = slotsPerInstance - state.free[instance]
            guard state.allRetired else { return ([], inFlight) }
            defer { state.waiters.removeAll() }
            return (state.waiters, inFlight)
        }
        observe(instance, .retired(reason), inFlight)
        for waiter in orphans { waiter.continuation.resume(throwing: Self.noInstancesError) }
    }

    static let noInstancesError = TransformError(
        .noInstances,
        "not processed: every model server had stopped."
    )

    // MARK: State changes, under the lock

    /// The serving instance with the most free slots; ties go to the one after the last grant.
    private static func freest(_ state: inout State) -> Int? {
        var best: Int?
        let count = state.free.count
        for step in 0..<count {
            let instance = (state.cursor + step) % count
            guard state.status[instance] == .serving, state.free[instance] > 0 else { continue }
            if best.map({ state.free[instance] > state.free[$0] }) ?? true { best = instance }
        }
        return best
    }

    /// Takes a slot of `instance`; returns its requests in flight.
    private static func take(_ instance: Int, _ state: inout State) -> Int {
        state.free[instance] -= 1
        state.cursor = (instance + 1) % state.free.count
        let total = state.free.reduce(0) { $0 + state.capacity - $1 }
        state.inFlightPeak = max(state.inFlightPeak, total)
        return state.capacity - state.free[instance]
    }

    private static func grantWaiters(_ state: inout State) -> [Grant] {
        var granted: [Grant] = []
        while !state.waiters.isEmpty, let instance = freest(&state) {
            let waiter = state.waiters.removeFirst()
            let inFlight = take(instance, &state)
            granted.append(
                Grant(waiter: waiter, instance: instance, generation: state.generation[instance], inFlight: inFlight)
            )
        }
        return granted
    }

    private struct Grant {
        var waiter: Waiter
        var instance: Int
        var generation: Int
        var inFlight: Int
    }

    private func resume(_ granted: [Grant]) {
        for grant in granted {
            observe(grant.instance, .serving, grant.inFlight)
            grant.waiter.continuation.resume(returning: (grant.instance, grant.generation))
        }
    }
}
