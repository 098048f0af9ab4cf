import ModelRuntime
import NIOCore
import ObjectStorage
import Records

/// Writes one object's answers to its `.out` in input order, as they arrive. The output is
/// committed only when every batch was answered and written; otherwise it is aborted and no
/// `.out` appears. Every answer received gives back its `unwritten` permit once it is written or
/// dropped.
struct ObjectAssembler: Sendable {
    let object: PlannedObject
    let store: any ObjectStore
    let lane: Lane
    let assembleWithLine: Bool
    let progress: JobProgress

    private static let newline = ByteBuffer(string: "\n")

    /// Returns nil when the `.out` was committed, else why the object failed.
    func assemble(
        _ events: AsyncStream<AssemblyEvent>,
        abandoned: AbandonFlag,
        beforeCommit: @Sendable () async -> Void
    ) async -> String? {
        var failure: String?
        func fail(_ reason: String) {
            if failure == nil {
                failure = reason
                abandoned.set()
            }
        }
        var writer: (any ObjectWriter)?
        do {
            writer = try await store.openWriter(object.output)
        } catch {
            fail("cannot write \(object.output): \(error)")
        }
        var waiting: [Int: (BatchInfo, ByteBuffer)] = [:]
        var nextToWrite = 0
        var received = 0
        var expected: Int?
        for await event in events {
            switch event {
            case .answer(let info, .success(let body)):
                received += 1
                if failure == nil { waiting[info.sequenceNumber] = (info, body) } else { lane.unwritten.release() }
            case .answer(let info, .failure(let error)):
                received += 1
                lane.unwritten.release()
                if !(error is CancellationError) { fail(Self.describe(error, info)) }
            case .dispatched(let count):
                expected = count
            case .readFailed(let error, let count):
                expected = count
                if !(error is CancellationError) { fail("\(error)") }
            }
            if failure != nil {
                // Answers held for ordering will never be written: give their permits back.
                for _ in waiting { lane.unwritten.release() }
                waiting.removeAll()
            }
            while failure == nil, let (info, body) = waiting.removeValue(forKey: nextToWrite) {
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
                    fail("writing \(object.output) failed: \(error)")
                }
                lane.unwritten.release()
                nextToWrite += 1
            }
            if let expected, received == expected { break }
        }
        // Complete only if every dispatched batch was written; a cancelled job never commits.
        let complete = failure == nil && expected != nil && nextToWrite == expected && !Task.isCancelled
        if complete {
            do {
                await beforeCommit()
                try await writer?.commit()
                return nil
            } catch {
                fail("finishing \(object.output) failed: \(error)")
            }
        }
        await writer?.abort()
        return failure ?? "stopped before it was complete."
    }

    static func describe(_ error: any Error, _ info: BatchInfo) -> String {
        let records =
            info.recordCount == 1
            ? "record \(info.firstRecord + 1)"
            : "records \(info.firstRecord + 1)-\(info.firstRecord + info.recordCount)"
        return "\(records) (bytes \(info.byteOffset)-\(info.byteOffset + Int64(info.bytes) - 1)): \(error)"
    }
}
