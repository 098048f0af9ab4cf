import Foundation
import Logging
import ModelRuntime
import NIOCore
import ObjectStorage
import Records
import Synchronization
import TransformSpec

/// Moves a plan's work through the instances. Objects are read one after another, in plan
/// order; each of their mini-batches goes to whichever instance has a free slot (`InstancePool`),
/// so one big object keeps every instance busy. Read-ahead is bounded by the answers not yet
/// written (`AnswerPermit`, two per slot), and each object's answers are put back in order and
/// written by its own `OrderedAssembler`.
struct BatchScheduler: Sendable {
    let configuration: TransformJobConfiguration
    let parameters: ResolvedParameters
    let processor: DataProcessor
    /// The store for an input or output location (`ObjectStores.store(for:)`; tests put faults in it).
    let store: @Sendable (ObjectURI) throws -> any ObjectStore
    let pool: InstancePool
    let progress: JobProgress
    let logger: Logger
    /// Told as each object ends; `.committing` comes before the commit.
    let objectEvents: (@Sendable (ObjectEvent) async -> Void)?

    /// Room for answers sent but not yet written: two per slot.
    let room: AsyncSemaphore
    /// The failed records, when records are isolated (`BATCHFORM_MAX_RECORD_ERRORS` > 0).
    let recordErrors: RecordErrorLog?
    let recordErrorPlaceholder: String?

    init(
        configuration: TransformJobConfiguration,
        parameters: ResolvedParameters,
        processor: DataProcessor,
        store: @escaping @Sendable (ObjectURI) throws -> any ObjectStore,
        pool: InstancePool,
        progress: JobProgress,
        logger: Logger,
        objectEvents: (@Sendable (ObjectEvent) async -> Void)?,
        recordErrors: RecordErrorLog? = nil,
        recordErrorPlaceholder: String? = nil
    ) {
        self.recordErrors = recordErrors
        self.recordErrorPlaceholder = recordErrorPlaceholder
        self.configuration = configuration
        self.parameters = parameters
        self.processor = processor
        self.store = store
        self.pool = pool
        self.progress = progress
        self.logger = logger
        self.objectEvents = objectEvents
        room = AsyncSemaphore(permits: 2 * pool.totalSlots)
    }

    /// Runs every object of `plan`; returns the ones that failed, in plan order. Throws
    /// `CancellationError`, or `recordErrorsExceeded` as soon as too many records have failed.
    func run(_ plan: TransformPlan) async throws -> [ObjectFailure] {
        let failures = Mutex<[Int: ObjectFailure]>([:])
        // The plan's bytes after each object, for the tail split; nil where a size is unknown.
        var bytesAfter: [Int64?] = Array(repeating: 0, count: plan.objects.count)
        var following: Int64? = 0
        for index in plan.objects.indices.reversed() {
            bytesAfter[index] = following
            following = following.flatMap { sum in plan.objects[index].input.size.map { sum + $0 } }
        }
        try await withThrowingDiscardingTaskGroup { group in
            for (index, object) in plan.objects.enumerated() {
                try Task.checkCancellation()
                if pool.allRetired {
                    failures.withLock {
                        $0[index] = ObjectFailure(
                            object: object.input.uri.description,
                            error: InstancePool.noInstancesError
                        )
                    }
                    progress.update { $0.objectsFailed += 1 }
                    continue
                }
                let tail = object.input.size.flatMap { size in
                    bytesAfter[index].map {
                        ObjectBatches.TailSplit(slots: pool.totalSlots, objectBytes: size, bytesAfter: $0)
                    }
                }
                try await dispatch(object, tail: tail, group: &group, room: room) { error in
                    failures.withLock { $0[index] = ObjectFailure(object: object.input.uri.description, error: error) }
                }
            }
        }
        return failures.withLock { $0.sorted { $0.key < $1.key }.map(\.value) }
    }

    /// Starts the object's assembler, then reads and sends its batches, each as a task of `group`.
    private func dispatch(
        _ object: PlannedObject,
        tail: ObjectBatches.TailSplit?,
        group: inout ThrowingDiscardingTaskGroup<any Error>,
        room: AsyncSemaphore,
        recordFailure: @escaping @Sendable (TransformError) -> Void
    ) async throws {
        let (events, sink) = AsyncStream<AssemblyEvent>.makeStream()
        let abandoned = AbandonFlag()
        let assembler = OrderedAssembler(
            object: object,
            store: try store(object.output),
            processor: processor,
            assembleWithLine: configuration.assembleWith == .line,
            progress: progress
        )
        let (input, output, objectEvents, progress) = (
            object.input.uri.description, object.output.description, self.objectEvents, self.progress
        )
        let report: @Sendable (ObjectEvent.Kind) async -> Void = {
            await objectEvents?(ObjectEvent(input: input, output: output, kind: $0))
        }
        group.addTask {
            guard
                let error = await assembler.assemble(
                    events,
                    abandoned: abandoned,
                    beforeCommit: { await report(.committing) }
                )
            else {
                progress.update { $0.objectsCompleted += 1 }
                await report(.completed)
                return
            }
            if Task.isCancelled {
                // Interrupted by a stop, not failed: a resumed run does it again.
                progress.update { $0.objectsStopped += 1 }
                return
            }
            recordFailure(error)
            progress.update { $0.objectsFailed += 1 }
            await report(.failed(reason: error.message))
        }
        var dispatched = 0
        await report(.started)
        do {
            var batches = try await ObjectBatches(
                object,
                store: try store(object.input.uri),
                configuration: configuration,
                parameters: parameters,
                processor: processor,
                tail: tail
            )
            while let batch = try await batches.next() {
                let permit = try await AnswerPermit.acquire(from: room)
                if abandoned.isSet { break }
                dispatched += 1
                group.addTask {
                    let answer = try await answer(to: batch, of: input, shapedBy: assembler)
                    sink.yield(.answer(batch.info, answer, permit))
                }
            }
            sink.yield(.dispatched(count: dispatched))
        } catch is CancellationError {
            sink.yield(.dispatched(count: dispatched))
            throw CancellationError()
        } catch {
            let failure =
                error as? TransformError
                ?? TransformError(.inputFailed, "\(error)", cause: error)
            sink.yield(.readFailed(failure, dispatched: dispatched))
        }
    }

    /// The batch's answer as it goes into the `.out`. When records are isolated
    /// (`BATCHFORM_MAX_RECORD_ERRORS` > 0), a batch that fails after its retries is cut in two
    /// and each half sent again, recursively, until each failure is one record: every other
    /// record gets its real answer in its place, a failed one the placeholder or nothing. Throws
    /// `CancellationError`, or `recordErrorsExceeded` once more records failed than allowed.
    func answer(
        to batch: OutgoingBatch,
        of input: String,
        shapedBy assembler: OrderedAssembler
    ) async throws -> Result<ByteBuffer, TransformError> {
        let (outcome, attempts) = try await send(batch, maxRetries: configuration.invocationMaxRetries)
        let failure: TransformError
        switch outcome {
        case .success(let body): return Result { () throws(TransformError) in try assembler.shape(body, for: batch) }
        case .failure(let error): failure = error
        }
        guard let recordErrors, failure.code == .modelRefused || failure.code == .modelFailed else {
            progress.update { $0.recordsFailed += batch.info.recordCount }
            return .failure(failure)
        }
        let pieces: [Piece]
        do {
            pieces = try await isolate(batch, failure: failure, attempts: attempts, input: input)
        } catch let error as TransformError {
            progress.update { $0.recordsFailed += batch.info.recordCount }
            return .failure(error)
        }
        let failed = pieces.compactMap { if case .failed(_, let record) = $0 { record } else { nil } }
        progress.update {
            $0.recordsFailed += failed.count
            $0.recordErrors += failed.count
        }
        if !failed.isEmpty {
            let named = failed.prefix(3).map { "record \($0.record) (byte \($0.offset))" }.joined(separator: ", ")
            logger.warning("\(failed.count) record(s) of \(input) failed alone: \(named)")
        }
        try recordErrors.add(failed, object: input)
        return Result { () throws(TransformError) in
            var body = ByteBuffer()
            for piece in pieces {
                let part: ByteBuffer
                switch piece {
                case .answered(let sub, let answer): part = try assembler.shape(answer, for: sub)
                case .failed(let sub, _):
                    guard let placeholder = recordErrorPlaceholder else { continue }
                    // Line records keep their lines: the placeholder takes the failed record's line.
                    let line = configuration.splitType == .line && !placeholder.hasSuffix("\n")
                    part = try assembler.shape(ByteBuffer(string: line ? placeholder + "\n" : placeholder), for: sub)
                }
                body.writeImmutableBuffer(part)
                if configuration.assembleWith == .line, part.readableBytesView.last != UInt8(ascii: "\n") {
                    body.writeString("\n")
                }
            }
            return body
        }
    }

    /// A part of a batch after isolation: answered as a whole, or one record that failed alone.
    enum Piece {
        case answered(OutgoingBatch, ByteBuffer)
        case failed(OutgoingBatch, RecordFailure)
    }

    /// Narrows a failed batch down to its failed records by bisection: O(k log n) requests for k
    /// bad records among n. A half of several records is sent once; a single record gets the
    /// usual retries. Throws `noInstances` (as a `TransformError`) or `CancellationError`.
    private func isolate(
        _ batch: OutgoingBatch,
        failure: TransformError,
        attempts: Int,
        input: String
    ) async throws -> [Piece] {
        guard let (left, right) = try? batch.batch.halves(framing: processor.framing) else {
            return [.failed(batch, RecordFailure(batch.info, input: input, error: failure, attempts: attempts))]
        }
        // Where the model answered (a 4xx or 5xx), the halves go out together, each on whichever
        // instance has a free slot: about log2(n) round trips for a bad record, not 2 log2(n). A
        // timeout or a crash is narrowed down one half at a time, so a record that kills the
        // server takes no innocent request in flight with it.
        guard (failure.cause as? RuntimeError)?.httpStatus != nil else {
            let first = try await isolatedPieces(of: left, header: batch.header, input: input)
            return first + (try await isolatedPieces(of: right, header: batch.header, input: input))
        }
        async let first = isolatedPieces(of: left, header: batch.header, input: input)
        async let second = isolatedPieces(of: right, header: batch.header, input: input)
        let pieces = try await first + second
        return pieces
    }

    /// One half of a failed batch: sent once (a single record with the usual retries), and
    /// narrowed down again if it fails.
    private func isolatedPieces(of half: MiniBatch, header: ByteBuffer?, input: String) async throws -> [Piece] {
        let outgoing: OutgoingBatch
        do {
            outgoing = OutgoingBatch(
                batch: half,
                body: try processor.request(for: half, header: header),
                header: header
            )
        } catch {
            throw TransformError(.inputFailed, "\(error)", cause: error)
        }
        let retries = half.recordCount == 1 ? configuration.invocationMaxRetries : 0
        let (outcome, tries) = try await send(outgoing, maxRetries: retries)
        switch outcome {
        case .success(let body): return [.answered(outgoing, body)]
        case .failure(let error) where error.code == .noInstances: throw error
        case .failure(let error): return try await isolate(outgoing, failure: error, attempts: tries, input: input)
        }
    }

    /// Sends one batch until it is answered or out of attempts (`maxRetries` more after the
    /// first), each attempt on whichever instance has a free slot. A model server that died is
    /// started again before the batch is retried; the crash counts as an attempt. Returns the
    /// attempts made; throws only `CancellationError`.
    func send(
        _ batch: OutgoingBatch,
        maxRetries: Int
    ) async throws -> (Result<ByteBuffer, TransformError>, attempts: Int) {
        var attempt = 0
        while true {
            attempt += 1
            let slot: Slot
            do {
                slot = try await pool.acquire()
            } catch let error as TransformError {
                return (.failure(error), attempt)
            }
            let (instance, generation) = (slot.instance, slot.generation)
            let endpoint = pool.endpoints[instance]
            let sent = ContinuousClock.now
            let outcome: Result<ByteBuffer, any Error>
            do {
                outcome = .success(try await endpoint.invoke(batch.body))
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                outcome = .failure(error)
            }
            slot.giveBack()
            let elapsed = ContinuousClock.now - sent
            progress.update { snapshot in
                snapshot.invocationLatency.observe(seconds: elapsed.seconds)
                if instance < snapshot.instances.count { snapshot.instances[instance].invocations += 1 }
            }
            let error: any Error
            switch outcome {
            case .success(let body): return (.success(body), attempt)
            case .failure(let failure): error = failure
            }
            let retryable = (error as? RuntimeError)?.isRetryable ?? true
            let dropped = (error as? RuntimeError)?.code == .connectionFailed
            if retryable, dropped ? await hasExited(endpoint) : endpoint.exitDescription() != nil {
                // A crash while records are isolated is explained by a record, not counted.
                try await pool.recover(instance: instance, generation: generation, counted: recordErrors == nil)
            }
            if !retryable || attempt > maxRetries {
                progress.update { $0.modelErrors += 1 }
                let failure = TransformError.invocation(
                    error,
                    batch: batch.info,
                    attempts: attempt,
                    timeoutSeconds: configuration.invocationTimeoutSeconds
                )
                return (.failure(failure), attempt)
            }
            // Exponential backoff with jitter: 0.1 s, 0.2 s, 0.4 s ... capped at 2 s.
            let base = min(2.0, 0.1 * pow(2.0, Double(attempt - 1)))
            try await Task.sleep(for: .seconds(base * Double.random(in: 0.5...1.0)))
        }
    }

    /// Whether the endpoint's model server has ended. A dropped connection can come a moment
    /// before the process is seen to end, so this looks again for up to half a second.
    private func hasExited(_ endpoint: any ModelEndpoint) async -> Bool {
        for _ in 0..<10 {
            if endpoint.exitDescription() != nil { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return endpoint.exitDescription() != nil
    }
}
