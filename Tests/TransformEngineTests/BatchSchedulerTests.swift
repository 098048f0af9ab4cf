import ByteStreams
import Foundation
import Logging
import ModelRuntime
import NIOCore
import ObjectStorage
import Records
import Synchronization
import Testing
import TransformSpec

@testable import TransformEngine

/// An in-process model server whose answers, delays, failures and exits the test controls. It
/// answers each batch with its lines upper-cased, so outputs can be checked exactly.
final class FakeEndpoint: ModelEndpoint {
    struct Behaviour: Sendable {
        /// How long a request takes.
        var delay: @Sendable () -> Duration = { .zero }
        /// Ends the server while answering the request with this number (1 = the first) of its
        /// first start; a restarted server does not die again.
        var dieOnRequest: Int?
        /// Restarts that fail before one succeeds; `Int.max` never comes back.
        var failedRestarts = 0
        /// An HTTP status to answer instead, for bodies containing this text.
        var refuse: (marker: String, status: Int)?
        /// An extra delay for bodies containing this text.
        var slow: (marker: String, delay: Duration)?
    }

    private struct State {
        var inFlight = 0
        var peak = 0
        var answered = 0
        var requestsSinceStart = 0
        var exit: String?
        var restartAttempts = 0
        var largestBody = 0
        var requests = 0
    }

    let name: String
    let logFile = "/dev/null"
    private let behaviour: Behaviour
    private let state = Mutex(State())

    init(_ name: String, _ behaviour: Behaviour = Behaviour()) {
        self.name = name
        self.behaviour = behaviour
    }

    var peakInFlight: Int { state.withLock { $0.peak } }
    var answered: Int { state.withLock { $0.answered } }
    var largestBody: Int { state.withLock { $0.largestBody } }
    var requests: Int { state.withLock { $0.requests } }

    func invoke(_ body: ByteBuffer) async throws -> ByteBuffer {
        let dies = try state.withLock { state -> Bool in
            if let exit = state.exit { throw RuntimeError(.connectionFailed, "connection refused (\(exit))") }
            state.inFlight += 1
            state.peak = max(state.peak, state.inFlight)
            state.requests += 1
            state.largestBody = max(state.largestBody, body.readableBytes)
            state.requestsSinceStart += 1
            return state.restartAttempts == 0 && state.requestsSinceStart == behaviour.dieOnRequest
        }
        defer { state.withLock { $0.inFlight -= 1 } }
        try await Task.sleep(for: behaviour.delay())
        let text = String(buffer: body)
        if let slow = behaviour.slow, text.contains(slow.marker) { try await Task.sleep(for: slow.delay) }
        if dies {
            state.withLock { $0.exit = "was killed by signal 9" }
            throw RuntimeError(.connectionFailed, "the model server closed the connection before answering")
        }
        if let refuse = behaviour.refuse, text.contains(refuse.marker) {
            var error = RuntimeError(.invocationFailed, "the model answered HTTP \(refuse.status)")
            error.httpStatus = refuse.status
            throw error
        }
        state.withLock { $0.answered += 1 }
        return ByteBuffer(string: text.uppercased())
    }

    func exitDescription() -> String? { state.withLock { $0.exit } }

    func restart() async throws {
        let fails = state.withLock { state in
            state.restartAttempts += 1
            if state.restartAttempts > behaviour.failedRestarts {
                state.exit = nil
                state.requestsSinceStart = 0
                return false
            }
            return true
        }
        if fails { throw RuntimeError(.exitedEarly, "exited with status 1 before answering /ping") }
    }

    func stop() async {}
}

/// A local store whose writers fail on the write with this number (1 = the first), for one output.
struct FaultyWriteStore: ObjectStore {
    let base = LocalFileStore()
    let failingOutput: ObjectURI
    let failOnWrite: Int

    func list(prefix: ObjectURI) async throws -> [ListedObject] { try await base.list(prefix: prefix) }
    func info(_ uri: ObjectURI) async throws -> ListedObject { try await base.info(uri) }
    func openReader(_ uri: ObjectURI) async throws -> any ByteStream { try await base.openReader(uri) }
    func openReader(_ uri: ObjectURI, from offset: Int64) async throws -> any ByteStream {
        try await base.openReader(uri, from: offset)
    }
    func delete(_ uri: ObjectURI) async throws { try await base.delete(uri) }
    func readAll(_ uri: ObjectURI, upTo limit: Int) async throws -> ByteBuffer {
        try await base.readAll(uri, upTo: limit)
    }
    func openWriter(_ uri: ObjectURI) async throws -> any ObjectWriter {
        let writer = try await base.openWriter(uri)
        return uri == failingOutput ? FaultyWriter(base: writer, failOnWrite: failOnWrite) : writer
    }
    func removeAbandonedTemporaries(for outputs: [ObjectURI]) async {}

    struct FaultyWriter: ObjectWriter {
        var base: any ObjectWriter
        let failOnWrite: Int
        var writes = 0
        mutating func write(_ bytes: ByteBuffer) async throws {
            writes += 1
            if writes == failOnWrite { throw StorageError(.writeFailed, "No space left on device (test).") }
            try await base.write(bytes)
        }
        mutating func commit() async throws { try await base.commit() }
        mutating func abort() async { await base.abort() }
    }
}

@Suite struct BatchSchedulerTests {
    let root = NSTemporaryDirectory() + "scheduler-\(UUID().uuidString)"

    /// `count` lines of `width` bytes each ("r000123 ...\n"); with a 1-record payload limit
    /// (MaxPayloadInMB is whole megabytes) the tests use SingleRecord for many small batches.
    func writeInput(_ name: String, lines count: Int, marker: (line: Int, text: String)? = nil) throws -> String {
        try FileManager.default.createDirectory(atPath: root + "/in", withIntermediateDirectories: true)
        var text = ""
        for line in 0..<count {
            text += "r\(String(format: "%06d", line)) payload" + (marker?.line == line ? " \(marker!.text)" : "") + "\n"
        }
        let path = "\(root)/in/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return text
    }

    func configuration(retries: Int = 3, strategy: String = "SingleRecord") throws -> TransformJobConfiguration {
        var request = CreateTransformJobRequest()
        request.TransformJobName = "job"
        request.ModelName = "model"
        var input = TransformInput()
        input.DataSource = .init(S3DataSource: .init(S3DataType: "S3Prefix", S3Uri: root + "/in"))
        input.SplitType = "Line"
        request.TransformInput = input
        var output = TransformOutput()
        output.S3OutputPath = root + "/out"
        output.AssembleWith = "Line"
        request.TransformOutput = output
        var resources = TransformResources()
        resources.InstanceType = "ml.m5.large"
        resources.InstanceCount = 1
        request.TransformResources = resources
        request.BatchStrategy = strategy
        var client = ModelClientConfig()
        client.InvocationsMaxRetries = retries
        client.InvocationsTimeoutInSeconds = 60
        request.ModelClientConfig = client
        return try TransformJobConfiguration(validating: request)
    }

    struct Run {
        var failures: [ObjectFailure]
        var pool: InstancePool
        var scheduler: BatchScheduler
    }

    func run(
        _ endpoints: [FakeEndpoint],
        slots: Int,
        retries: Int = 3,
        maxRestarts: Int = 3,
        strategy: String = "SingleRecord",
        store: (@Sendable (ObjectURI) throws -> any ObjectStore)? = nil
    ) async throws -> Run {
        let job = try configuration(retries: retries, strategy: strategy)
        let stores = ObjectStores()
        let plan = try await TransformPlan.make(for: job, stores: stores, workingDirectory: root)
        let pool = InstancePool(
            endpoints: endpoints,
            slotsPerInstance: slots,
            maxRestarts: maxRestarts,
            logger: Logger(label: "test")
        )
        let scheduler = BatchScheduler(
            configuration: job,
            parameters: ResolvedParameters(job: job, container: ExecutionParameters(maxConcurrentTransforms: slots)),
            processor: DataProcessor(job.dataProcessing, splitType: job.splitType),
            store: store ?? { uri in try stores.store(for: uri) },
            pool: pool,
            progress: JobProgress(),
            logger: Logger(label: "test"),
            objectEvents: nil
        )
        return Run(failures: try await scheduler.run(plan), pool: pool, scheduler: scheduler)
    }

    func output(_ name: String) -> String? {
        try? String(contentsOfFile: "\(root)/out/\(name).out", encoding: .utf8)
    }

    /// Every slot and every answer permit is back where it started.
    func expectNothingHeld(_ run: Run) {
        for instance in run.pool.endpoints.indices {
            #expect(run.pool.freeSlots(of: instance) == run.pool.slotsPerInstance)
        }
        #expect(run.scheduler.room.available == 2 * run.pool.totalSlots)
    }

    @Test func answersAreWrittenInInputOrderUnderRandomDelays() async throws {
        let input = try writeInput("a.csv", lines: 300)
        let delay: @Sendable () -> Duration = { .microseconds(Int.random(in: 0...3000)) }
        let endpoints = (1...3).map { FakeEndpoint("fake-\($0)", .init(delay: delay)) }
        let run = try await run(endpoints, slots: 4)
        #expect(run.failures.isEmpty)
        #expect(output("a.csv") == input.uppercased())
        expectNothingHeld(run)
    }

    @Test func oneObjectSpreadsOverEveryInstanceWithinEachOnesBound() async throws {
        let input = try writeInput("big.csv", lines: 120)
        let endpoints = (1...3).map { FakeEndpoint("fake-\($0)", .init(delay: { .milliseconds(5) })) }
        let run = try await run(endpoints, slots: 2)
        #expect(output("big.csv") == input.uppercased())
        for endpoint in endpoints {
            #expect(endpoint.peakInFlight <= 2, "the per-instance bound (MaxConcurrentTransforms)")
            // A fair share is 40 of 120; the old engine sent all of them to one instance.
            #expect(endpoint.answered >= 25, "\(endpoint.name) answered \(endpoint.answered) of 120")
        }
        #expect(run.pool.inFlightPeak == 6, "all 3 × 2 slots busy at some moment")
        expectNothingHeld(run)
    }

    @Test func aFailedWriteEndsTheObjectWithoutShrinkingAnyLane() async throws {
        _ = try writeInput("a.csv", lines: 60)
        let second = try writeInput("b.csv", lines: 60)
        let failing = ObjectURI.file(path: "\(root)/out/a.csv.out")
        let store = FaultyWriteStore(failingOutput: failing, failOnWrite: 1)
        let endpoints = (1...2).map {
            FakeEndpoint("fake-\($0)", .init(delay: { .microseconds(Int.random(in: 0...2000)) }))
        }
        let run = try await run(endpoints, slots: 3) { _ in store }
        #expect(run.failures.map(\.object) == ["\(root)/in/a.csv"])
        #expect(run.failures.first?.error.code == .outputFailed)
        #expect(output("a.csv") == nil)
        #expect(output("b.csv") == second.uppercased())
        expectNothingHeld(run)
    }

    @Test func aRefusedBatchFailsItsObjectAsAClientErrorWithoutRetries() async throws {
        _ = try writeInput("a.csv", lines: 20, marker: (7, "BAD"))
        let endpoint = FakeEndpoint("fake-1", .init(refuse: ("BAD", 415)))
        let run = try await run([endpoint], slots: 2)
        #expect(run.failures.count == 1)
        #expect(run.failures.first?.error.code == .modelRefused)
        #expect(run.failures.first?.error.message.contains("record 8") == true)
        #expect(output("a.csv") == nil)
        expectNothingHeld(run)
    }

    @Test func theEarliestFailedRecordIsTheOneReportedWhicheverAnswersFirst() async throws {
        try FileManager.default.createDirectory(atPath: root + "/in", withIntermediateDirectories: true)
        try "r0 BAD SLOW\nr1 BAD\nr2\n".write(toFile: "\(root)/in/a.csv", atomically: true, encoding: .utf8)
        let endpoint = FakeEndpoint("fake-1", .init(refuse: ("BAD", 400), slow: ("SLOW", .milliseconds(200))))
        let run = try await run([endpoint], slots: 3)
        #expect(run.failures.count == 1)
        #expect(run.failures.first?.error.message.contains("record 1 ") == true, "\(run.failures)")
        #expect(endpoint.requests == 3, "the later records were in flight when the first one failed")
        expectNothingHeld(run)
    }

    @Test func cancellingStopsTheRunAndGivesEverythingBack() async throws {
        _ = try writeInput("a.csv", lines: 2000)
        let endpoints = (1...2).map { FakeEndpoint("fake-\($0)", .init(delay: { .milliseconds(2) })) }
        let job = try configuration()
        let stores = ObjectStores()
        let plan = try await TransformPlan.make(for: job, stores: stores, workingDirectory: root)
        let pool = InstancePool(
            endpoints: endpoints,
            slotsPerInstance: 2,
            maxRestarts: 3,
            logger: Logger(label: "test")
        )
        let scheduler = BatchScheduler(
            configuration: job,
            parameters: ResolvedParameters(job: job, container: ExecutionParameters(maxConcurrentTransforms: 2)),
            processor: DataProcessor(job.dataProcessing, splitType: job.splitType),
            store: { uri in try stores.store(for: uri) },
            pool: pool,
            progress: JobProgress(),
            logger: Logger(label: "test"),
            objectEvents: nil
        )
        let task = Task { try await scheduler.run(plan) }
        while endpoints.reduce(0, { $0 + $1.answered }) < 50 { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        #expect(output("a.csv") == nil, "a stopped job commits nothing")
        #expect(endpoints.reduce(0) { $0 + $1.answered } < 2000)
        expectNothingHeld(Run(failures: [], pool: pool, scheduler: scheduler))
    }

    @Test func anInstanceThatDiesMidBatchIsRestartedAndItsBatchesSentAgain() async throws {
        let input = try writeInput("a.csv", lines: 100)
        let dying = FakeEndpoint("fake-1", .init(delay: { .milliseconds(1) }, dieOnRequest: 10))
        let healthy = FakeEndpoint("fake-2", .init(delay: { .milliseconds(1) }))
        let run = try await run([dying, healthy], slots: 2)
        #expect(run.failures.isEmpty)
        #expect(output("a.csv") == input.uppercased(), "exact output despite the crash")
        #expect(run.pool.restarts(of: 0) == 1)
        #expect(run.pool.status(of: 0) == .serving)
        #expect(dying.answered > 9, "the restarted instance takes batches again")
        expectNothingHeld(run)
    }

    @Test func anInstanceThatCannotComeBackIsRetiredAndTheOthersFinish() async throws {
        let input = try writeInput("a.csv", lines: 60)
        let dying = FakeEndpoint("fake-1", .init(dieOnRequest: 3, failedRestarts: .max))
        let healthy = FakeEndpoint("fake-2", .init(delay: { .milliseconds(1) }))
        let run = try await run([dying, healthy], slots: 2, maxRestarts: 2)
        #expect(run.failures.isEmpty)
        #expect(output("a.csv") == input.uppercased())
        #expect(run.pool.restarts(of: 0) == 2)
        if case .retired = run.pool.status(of: 0) {} else { Issue.record("instance 1 should be retired") }
        expectNothingHeld(run)
    }

    @Test func whenEveryInstanceIsGoneTheObjectsFailAndNothingHangs() async throws {
        _ = try writeInput("a.csv", lines: 30)
        _ = try writeInput("b.csv", lines: 30)
        let endpoint = FakeEndpoint("fake-1", .init(dieOnRequest: 2, failedRestarts: .max))
        let run = try await run([endpoint], slots: 2, maxRestarts: 1)
        #expect(run.failures.count == 2)
        #expect(run.failures.allSatisfy { $0.error.code == .noInstances || $0.error.code == .modelFailed })
        #expect(output("a.csv") == nil && output("b.csv") == nil)
        expectNothingHeld(run)
    }

    @Test func theLastBatchesAreCutSmallerSoEverySlotHasOneAndTheOutputIsTheSame() async throws {
        // 5 MB in one object, MaxPayloadInMB 6: one request without the tail split, for 4 slots.
        let lines = (0..<52_000).map { "r\(String(format: "%07d", $0)),\(String(repeating: "v", count: 88))\n" }
        try FileManager.default.createDirectory(atPath: root + "/in", withIntermediateDirectories: true)
        let input = lines.joined()
        try input.write(toFile: root + "/in/big.csv", atomically: true, encoding: .utf8)
        let endpoints = (1...2).map { FakeEndpoint("fake-\($0)", .init(delay: { .milliseconds(2) })) }
        let run = try await run(endpoints, slots: 2, strategy: "MultiRecord")
        #expect(run.failures.isEmpty)
        #expect(output("big.csv") == input.uppercased(), "byte-identical output")
        let requests = endpoints.reduce(0) { $0 + $1.requests }
        #expect(requests >= 4, "about one batch per slot, not one 5 MB batch: \(requests)")
        #expect(endpoints.allSatisfy { $0.requests >= 1 }, "both instances get a share of the tail")
        #expect(endpoints.allSatisfy { $0.largestBody <= 6 << 20 }, "never above MaxPayloadInMB")
        expectNothingHeld(run)
    }

    @Test func aCancelledTaskTakesNoPermitAndNoSlot() async throws {
        let room = AsyncSemaphore(permits: 2)
        let pool = InstancePool(
            endpoints: [FakeEndpoint("fake-1")],
            slotsPerInstance: 2,
            maxRestarts: 0,
            logger: Logger(label: "test")
        )
        let permit = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await room.acquire()
        }
        await #expect(throws: CancellationError.self) { try await permit.value }
        let slot = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            _ = try await pool.acquire()
        }
        await #expect(throws: CancellationError.self) { try await slot.value }
        #expect(room.available == 2, "a refused acquire gives nothing away")
        #expect(pool.freeSlots(of: 0) == 2)
    }
}
