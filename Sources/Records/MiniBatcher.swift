public import ByteStreams
import CByteCount
public import NIOCore
public import TransformSpec

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `/invocations` request body and where its records came from.
public struct MiniBatch: Sendable {
    /// A slice of the buffer the input was read into: the records' own bytes, not a copy.
    public var payload: ByteBuffer
    /// Position of this batch in its object, from 0; responses are assembled in this order.
    public var sequenceNumber: Int
    /// Index of the first record in the object, from 0.
    public var firstRecord: Int
    public var recordCount: Int
    /// Offset of the first record in the (decompressed) object.
    public var byteOffset: Int64

    public init(payload: ByteBuffer, sequenceNumber: Int, firstRecord: Int, recordCount: Int, byteOffset: Int64) {
        self.payload = payload
        self.sequenceNumber = sequenceNumber
        self.firstRecord = firstRecord
        self.recordCount = recordCount
        self.byteOffset = byteOffset
    }
}

/// Cuts a stream into mini-batches as SageMaker does: SingleRecord sends one record per request;
/// MultiRecord sends as many whole records as fit in the payload limit; SplitType None sends the
/// whole object. A batch never spans objects.
///
/// Memory: the buffer holds at most one payload's worth of bytes. Each refill copies only the
/// unfinished record left at the end of the previous buffer, then reads the rest of the payload
/// straight into the new buffer, so MultiRecord batches are near the limit and are slices.
public struct MiniBatcher {
    private var source: any ByteStream
    private let framing: RecordFraming
    private let strategy: BatchStrategy
    private let maxPayloadBytes: Int
    private let capacity: Int
    private let objectName: String
    private var buffer = ByteBuffer()
    private var bufferOffset: Int64 = 0
    private var sourceEnded = false
    private var nextSequence = 0
    private var nextRecord = 0
    /// Stream offset before which no `"` remains unscanned (CSV quoting only).
    private var quoteFreeUntil: Int64 = 0
    private let headerMode: CSVHeaderMode
    private var headerTaken = false
    /// The object's first line when the header is skipped or repeated (without its terminator).
    public private(set) var header: ByteBuffer?

    /// What `MaxPayloadInMB = 0` (SageMaker: unlimited, chunked) means here: one request is still
    /// held in memory, so it is capped.
    public static let unlimitedPayloadBytes = 100 * 1024 * 1024

    public static func payloadBytes(megabytes: Int) -> Int {
        megabytes == 0 ? unlimitedPayloadBytes : megabytes * 1024 * 1024
    }

    public init(
        source: any ByteStream,
        splitType: SplitType,
        strategy: BatchStrategy,
        maxPayloadBytes: Int,
        objectName: String,
        csvQuoting: Bool = false,
        header: CSVHeaderMode = .none,
        startingAt offset: Int64 = 0
    ) {
        self.source = source
        // A work unit's range: batches name their bytes by their place in the whole object.
        self.bufferOffset = offset
        self.framing = RecordFraming(splitType: splitType, csvQuoting: csvQuoting)
        self.headerMode = header
        self.strategy = splitType == .none ? .multiRecord : strategy
        self.maxPayloadBytes = maxPayloadBytes
        // SingleRecord strips a line terminator or RecordIO padding (at most 3 bytes) from what
        // it sends, so a record that fits the limit may take a few bytes more in the stream.
        // SplitType None reads one byte past the limit to tell "exactly the limit" from "over it".
        self.capacity = maxPayloadBytes + (splitType == .none ? 1 : self.strategy == .singleRecord ? 4 : 0)
        self.objectName = objectName
    }

    public mutating func next() async throws -> MiniBatch? {
        while true {
            if headerMode != .none, !headerTaken {
                if try takeHeader() { continue }
            } else if let batch = try takeRecords() {
                return batch
            }
            if sourceEnded {
                if framing.splitType == .none, nextSequence == 0 {
                    // An empty object still gets its one request, as SageMaker sends the whole object.
                    return emit(length: 0, payload: 0..<0, records: 1)
                }
                return nil
            }
            if buffer.readableBytes >= capacity { throw tooLarge() }
            try await refill()
        }
    }

    /// A smaller size for the batches from now on (the engine's tail split, so the last batches
    /// of a job spread over every slot); never above MaxPayloadInMB, and a record larger than it
    /// still goes whole in a batch of its own.
    public var preferredPayloadBytes: Int?

    /// What a request's records may take: MaxPayloadInMB, less the header line (and its newline)
    /// when it is repeated at the top of every request, so the body stays within the limit.
    private var recordBudget: Int {
        guard headerMode == .repeat, let header else { return maxPayloadBytes }
        return max(1, maxPayloadBytes - header.readableBytes - 1)
    }

    /// Moves the object's first record into `header`; false while more bytes are needed.
    /// Not inlined: Swift 6.3's optimizer crashes splitting `next()` with it inlined.
    @inline(never)
    private mutating func takeHeader() throws -> Bool {
        let (ended, offset, framing) = (sourceEnded, bufferOffset, framing)
        var found: FramedRecord?
        try buffer.withUnsafeReadableBytes { bytes in
            if case .record(let record) = try framing.scan(bytes, atEnd: ended, streamOffset: offset) { found = record }
        }
        guard let record = found else {
            if ended { headerTaken = true }  // an empty object has no header
            return ended
        }
        header = buffer.getSlice(
            at: buffer.readerIndex + record.singlePayload.lowerBound,
            length: record.singlePayload.count
        )
        buffer.moveReaderIndex(forwardBy: record.length)
        bufferOffset += Int64(record.length)
        headerTaken = true
        return true
    }

    private mutating func takeRecords() throws -> MiniBatch? {
        let (ended, offset, single, hardLimit) = (sourceEnded, bufferOffset, strategy == .singleRecord, recordBudget)
        let limit = preferredPayloadBytes.map { max(1, min($0, hardLimit)) } ?? hardLimit
        let framing = self.framing
        var taken = 0
        var records = 0
        var singlePayload = 0..<0
        var quoteFreeUntil = self.quoteFreeUntil
        let wholeLines = !single && framing.splitType == .line
        try buffer.withUnsafeReadableBytes { bytes in
            if wholeLines, bytes.count > 0 {
                // Extend the known quote-free stretch over what this refill added (a quote at its end
                // is found again at once, so it stays the boundary).
                let scanned = max(0, Int(quoteFreeUntil - offset))
                if framing.csvQuoting, scanned < bytes.count {
                    let quote = memchr(bytes.baseAddress! + scanned, Int32(UInt8(ascii: "\"")), bytes.count - scanned)
                    quoteFreeUntil = offset + Int64(quote.map { bytes.baseAddress!.distance(to: $0) } ?? bytes.count)
                }
                // MultiRecord lines outside quotes: the batch ends after the last newline that fits,
                // found searching back from the limit; the records are counted, not framed one by one.
                var end = min(bytes.count, limit)
                if framing.csvQuoting { end = min(end, Int(quoteFreeUntil - offset)) }
                if let newline = Self.lastNewline(in: UnsafeRawBufferPointer(rebasing: bytes[..<end])) {
                    taken = newline + 1
                    records = Self.countNewlines(UnsafeRawBufferPointer(rebasing: bytes[..<taken]))
                }
                // What is left (a last line without a newline, a quoted field) is framed below.
            }
            while taken < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[taken...])
                if framing.csvQuoting, offset + Int64(taken) >= quoteFreeUntil {
                    // One memchr up to the next quote serves every record before it.
                    let quote = memchr(rest.baseAddress!, Int32(UInt8(ascii: "\"")), rest.count)
                    quoteFreeUntil =
                        offset + Int64(taken + (quote.map { rest.baseAddress!.distance(to: $0) } ?? rest.count))
                }
                let quoteFree = Int(quoteFreeUntil - offset) - taken
                guard
                    case .record(let record) = try framing.scan(
                        rest,
                        atEnd: ended,
                        streamOffset: offset + Int64(taken),
                        quoteFreeBytes: quoteFree
                    )
                else { break }
                if single {
                    singlePayload = record.singlePayload
                    taken = record.length
                    records = 1
                    break
                }
                if taken + record.length > limit {
                    if records == 0, record.length <= hardLimit {
                        // Larger than the preferred size, within the limit: a batch of its own.
                        taken = record.length
                        records = 1
                    }
                    if records == 0 { throw tooLarge() }
                    break
                }
                taken += record.length
                records += 1
            }
        }
        self.quoteFreeUntil = quoteFreeUntil
        guard records > 0 else { return nil }
        if single {
            if singlePayload.count > maxPayloadBytes { throw tooLarge() }
            return emit(length: taken, payload: singlePayload, records: 1)
        }
        return emit(length: taken, payload: 0..<taken, records: records)
    }

    /// Searching backwards: a line ends within a line's length of the end.
    static func lastNewline(in bytes: UnsafeRawBufferPointer) -> Int? {
        var index = bytes.count - 1
        while index >= 0 {
            if bytes[index] == UInt8(ascii: "\n") { return index }
            index -= 1
        }
        return nil
    }

    /// In C, which the compiler vectorizes; Swift's loops over bytes here ran at a few GB/s.
    static func countNewlines(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let base = bytes.baseAddress else { return 0 }
        return batchform_count_byte(base, bytes.count, UInt8(ascii: "\n"))
    }

    private mutating func emit(length: Int, payload: Range<Int>, records: Int) -> MiniBatch {
        let slice = buffer.getSlice(at: buffer.readerIndex + payload.lowerBound, length: payload.count)!
        let batch = MiniBatch(
            payload: slice,
            sequenceNumber: nextSequence,
            firstRecord: nextRecord,
            recordCount: records,
            byteOffset: bufferOffset
        )
        buffer.moveReaderIndex(forwardBy: length)
        bufferOffset += Int64(length)
        nextSequence += 1
        nextRecord += records
        return batch
    }

    private mutating func refill() async throws {
        var fresh = ByteBufferAllocator().buffer(capacity: capacity)
        fresh.writeImmutableBuffer(buffer)
        while fresh.readableBytes < capacity {
            if try await source.read(into: &fresh, maxBytes: capacity - fresh.readableBytes) == 0 {
                sourceEnded = true
                break
            }
        }
        buffer = fresh
    }

    private func tooLarge() -> RecordError {
        let megabytes = Double(maxPayloadBytes) / 1_048_576
        let what =
            framing.splitType == .none ? "the object (SplitType None sends it whole)" : "record \(nextRecord + 1)"
        return RecordError(
            .recordTooLarge,
            "\(objectName): \(what) at byte offset \(bufferOffset) is larger than MaxPayloadInMB "
                + "(\(megabytes.formatted()) MB). Raise MaxPayloadInMB (at most 100) or split the input "
                + (framing.splitType == .none ? "with a SplitType." : "into smaller records.")
        )
    }
}

extension Double {
    fileprivate func formatted() -> String {
        self == rounded() ? String(Int(self)) : String(self)
    }
}

extension MiniBatch {
    /// The batch cut in two at the record boundary nearest its middle, each half a slice of this
    /// batch's bytes; nil for a batch of one record. Record errors are isolated this way.
    public func halves(framing: RecordFraming) throws(RecordError) -> (MiniBatch, MiniBatch)? {
        guard recordCount > 1 else { return nil }
        if let lines = lineHalves(framing: framing) { return lines }
        let leftCount = recordCount / 2
        let (payload, byteOffset) = (self.payload, self.byteOffset)
        let cut = try payload.withUnsafeReadableBytes { bytes throws(RecordError) -> Int in
            var position = 0
            for _ in 0..<leftCount {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[position...])
                guard
                    case .record(let record) = try framing.scan(
                        rest,
                        atEnd: true,
                        streamOffset: byteOffset + Int64(position)
                    )
                else { return position }
                position += record.length
            }
            return position
        }
        return split(at: cut, leftCount: leftCount)
    }

    /// Lines outside quotes: cut at the newline nearest the middle byte, and count the records,
    /// without framing them one by one (a bad record among 25,000 is cut about 15 times).
    private func lineHalves(framing: RecordFraming) -> (MiniBatch, MiniBatch)? {
        guard framing.splitType == .line else { return nil }
        let found = payload.withUnsafeReadableBytes { bytes -> (cut: Int, records: Int)? in
            guard let base = bytes.baseAddress, bytes.count > 1 else { return nil }
            if framing.csvQuoting, memchr(base, Int32(UInt8(ascii: "\"")), bytes.count) != nil { return nil }
            let middle = bytes.count / 2
            var cut: Int
            if let after = memchr(base + middle, Int32(UInt8(ascii: "\n")), bytes.count - middle) {
                cut = base.distance(to: UnsafeRawPointer(after)) + 1
            } else {
                cut = bytes.count
            }
            if cut >= bytes.count,
                let before = MiniBatcher.lastNewline(in: UnsafeRawBufferPointer(rebasing: bytes[..<middle]))
            {
                cut = before + 1
            }
            guard cut > 0, cut < bytes.count else { return nil }
            return (cut, MiniBatcher.countNewlines(UnsafeRawBufferPointer(rebasing: bytes[..<cut])))
        }
        guard let found, found.records > 0, found.records < recordCount else { return nil }
        return split(at: found.cut, leftCount: found.records)
    }

    private func split(at cut: Int, leftCount: Int) -> (MiniBatch, MiniBatch)? {
        guard cut > 0, cut < payload.readableBytes else { return nil }
        let left = MiniBatch(
            payload: payload.getSlice(at: payload.readerIndex, length: cut)!,
            sequenceNumber: sequenceNumber,
            firstRecord: firstRecord,
            recordCount: leftCount,
            byteOffset: byteOffset
        )
        let right = MiniBatch(
            payload: payload.getSlice(at: payload.readerIndex + cut, length: payload.readableBytes - cut)!,
            sequenceNumber: sequenceNumber,
            firstRecord: firstRecord + leftCount,
            recordCount: recordCount - leftCount,
            byteOffset: byteOffset + Int64(cut)
        )
        return (left, right)
    }
}
