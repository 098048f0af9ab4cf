import NIOCore
import ObjectStorage
import Records
import Synchronization

/// One answer's claim on the job's room for answers not yet written (about two per slot, so
/// memory stays bounded whatever the input size). Like a `Slot`, it gives itself back when
/// dropped: written, discarded with a failed object, or lost to a cancellation.
final class AnswerPermit: Sendable {
    private let room: AsyncSemaphore

    private init(room: AsyncSemaphore) { self.room = room }

    static func acquire(from room: AsyncSemaphore) async throws -> AnswerPermit {
        try await room.acquire()
        return AnswerPermit(room: room)
    }

    deinit { room.release() }
}

/// What an object's assembler is told.
enum AssemblyEvent: Sendable {
    /// A batch's final answer (after its retries), shaped for the `.out`, or why it failed.
    case answer(BatchInfo, Result<ByteBuffer, TransformError>, AnswerPermit)
    /// Every batch of the object has been sent: `count` answers will come.
    case dispatched(count: Int)
    /// Reading the object failed after `dispatched` batches were sent.
    case readFailed(TransformError, dispatched: Int)
}

/// Writes one object's answers to its `.out` in input order, as they arrive: reorder →
/// JoinSource/OutputFilter (`shape`, run where each answer arrives) → write. The output is
/// committed only when every batch was answered and written; otherwise it is aborted and no
/// `.out` appears.
struct OrderedAssembler: Sendable {
    let object: PlannedObject
    let store: any ObjectStore
    let processor: DataProcessor
    let assembleWithLine: Bool
    let progress: JobProgress

    private static let newline = ByteBuffer(string: "\n")

    /// The model's answer to `batch` as it goes into the `.out`: split into one answer per
    /// record, joined with its input, through OutputFilter (unchanged when none is asked for).
    func shape(_ answer: ByteBuffer, for batch: OutgoingBatch) throws(TransformError) -> ByteBuffer {
        do {
            return try processor.output(answer, for: batch.batch, header: batch.header)
        } catch {
            throw TransformError(
                .modelFailed,
                "\(batch.info.recordsDescription): \(error)",
                cause: error
            )
        }
    }

    /// Returns nil when the `.out` was committed, else why the object failed. Runs until every
    /// dispatched answer has arrived, so each permit is given back here and none waits in the
    /// stream's buffer.
    func assemble(
        _ events: AsyncStream<AssemblyEvent>,
        abandoned: AbandonFlag,
        beforeCommit: @Sendable () async -> Void
    ) async -> TransformError? {
        var failure: TransformError?
        // The batch whose failure is reported: the earliest in input order, so the reason does not
        // depend on which of the batches in flight the model answered first.
        var failedBatch: Int?
        func fail(_ error: TransformError, batch: Int? = nil) {
            if failure == nil {
                failure = error
                failedBatch = batch
                abandoned.set()
            } else if let batch, let reported = failedBatch, batch < reported {
                failure = error
                failedBatch = batch
            }
        }
        var writer: (any ObjectWriter)?
        do {
            writer = try await store.openWriter(object.output)
        } catch {
            fail(TransformError(.outputFailed, "cannot write \(object.output): \(error)", cause: error))
        }
        // Answers that came before an earlier one, each holding its permit until written or dropped.
        var waiting: [Int: (BatchInfo, ByteBuffer, AnswerPermit)] = [:]
        var nextToWrite = 0
        var received = 0
        var expected: Int?
        for await event in events {
            switch event {
            case .answer(let info, .success(let body), let permit):
                received += 1
                if failure == nil { waiting[info.sequenceNumber] = (info, body, permit) }
            case .answer(let info, .failure(let error), _):
                received += 1
                fail(error, batch: info.sequenceNumber)
            case .dispatched(let count):
                expected = count
            case .readFailed(let error, let count):
                expected = count
                fail(error)
            }
            if failure != nil { waiting.removeAll() }
            while failure == nil, let (info, body, _) = waiting.removeValue(forKey: nextToWrite) {
                do {
                    try await writer?.write(body)
                    if assembleWithLine, body.readableBytesView.last != UInt8(ascii: "\n") {
                        try await writer?.write(Self.newline)
                    }
                    progress.update {
                        $0.recordsProcessed += info.recordCount
                        $0.bytesProcessed += Int64(info.bytes)
                    }
                } catch {
                    fail(
                        TransformError(
                            .outputFailed,
                            "writing \(object.output) failed: \(error)",
                            cause: error
                        )
                    )
                    waiting.removeAll()
                }
                nextToWrite += 1
            }
            if let expected, received == expected { break }
        }
        // Complete only if every dispatched batch was written; a cancelled job never commits.
        if failure == nil, let expected, nextToWrite == expected, !Task.isCancelled {
            do {
                await beforeCommit()
                try await writer?.commit()
                return nil
            } catch {
                fail(
                    TransformError(
                        .outputFailed,
                        "finishing \(object.output) failed: \(error)",
                        cause: error
                    )
                )
            }
        }
        await writer?.abort()
        return failure ?? TransformError(.outputFailed, "stopped before it was complete.")
    }
}

/// Set once an object has failed, so its remaining batches are not sent.
final class AbandonFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
