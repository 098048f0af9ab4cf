public import ByteStreams
public import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The records of one byte range of a `SplitType=Line` object: every line that starts inside
/// `range`, whole. A range that does not start at 0 skips to its first line start (the line
/// before belongs to the range before); its last line is read past `range.upperBound` to its
/// newline. Ranges that tile an object thus give each line to exactly one of them.
public struct LineRangeStream: ByteStream {
    private var base: any ByteStream
    private let end: Int64
    /// The object offset of the next byte `base` gives.
    private var position: Int64
    /// Before the first line start: bytes are dropped up to and including a newline.
    private var skipping: Bool
    /// Past `end` inside the last line: bytes are kept up to and including a newline.
    private var finishing = false
    private var done = false

    /// Where in the object `base` must start: one byte early, so that a range starting right
    /// after a newline knows its first byte starts a line.
    public static func readOffset(for range: Range<Int64>) -> Int64 { max(0, range.lowerBound - 1) }

    public init(_ base: any ByteStream, range: Range<Int64>) {
        self.base = base
        self.end = range.upperBound
        self.position = Self.readOffset(for: range)
        self.skipping = range.lowerBound > 0
        if range.isEmpty { done = true }
    }

    /// Drops the bytes before the range's first line start and returns its object offset
    /// (`range.upperBound` or more when no line starts inside the range), so that batches can
    /// name their bytes by their place in the whole object.
    public mutating func skipToFirstLine() async throws -> Int64 {
        guard skipping else { return position }
        var scratch = ByteBuffer()
        while !done {
            scratch.clear()
            let count = try await base.read(into: &scratch, maxBytes: 1 << 20)
            if count == 0 {
                done = true
                break
            }
            let chunkStart = position
            position += Int64(count)
            guard let newline = Self.newline(in: scratch, at: scratch.writerIndex - count, from: 0, to: count) else {
                if position >= end { done = true }
                continue
            }
            skipping = false
            let lineStart = chunkStart + Int64(newline + 1)
            if lineStart >= end {
                done = true
                return lineStart
            }
            scratch.moveReaderIndex(forwardBy: newline + 1)
            carry = scratch
            position = lineStart
            return lineStart
        }
        return max(position, end)
    }

    /// Bytes read past the first line start by `skipToFirstLine`, given out first.
    private var carry = ByteBuffer()

    public mutating func read(into buffer: inout ByteBuffer, maxBytes: Int) async throws -> Int {
        if skipping { _ = try await skipToFirstLine() }
        while !done {
            let start = buffer.writerIndex
            let count: Int
            if carry.readableBytes > 0 {
                count = buffer.writeBuffer(&carry)
            } else {
                count = try await base.read(into: &buffer, maxBytes: maxBytes)
            }
            if count == 0 {
                done = true
                return 0
            }
            let chunkStart = position
            position += Int64(count)
            var to = count
            if finishing {
                if let newline = Self.newline(in: buffer, at: start, from: 0, to: count) {
                    to = newline + 1
                    done = true
                }
            } else if end - chunkStart < Int64(count) {
                let endInChunk = Int(end - chunkStart)
                if buffer.getInteger(at: start + endInChunk - 1, as: UInt8.self) == 0x0A {
                    to = endInChunk
                    done = true
                } else if let newline = Self.newline(in: buffer, at: start, from: endInChunk, to: count) {
                    to = newline + 1
                    done = true
                } else {
                    finishing = true
                }
            } else if end - chunkStart == Int64(count) {
                // The range ends with this chunk: done if it ends a line, else finish the line.
                if buffer.getInteger(at: start + count - 1, as: UInt8.self) == 0x0A {
                    done = true
                } else {
                    finishing = true
                }
            }
            buffer.moveWriterIndex(to: start + to)
            if to > 0 { return to }
        }
        return 0
    }

    /// The offset (relative to `base`) of the first newline in `from..<to` of the bytes at `base`.
    private static func newline(in buffer: ByteBuffer, at base: Int, from: Int, to: Int) -> Int? {
        guard from < to else { return nil }
        return buffer.withVeryUnsafeBytes { bytes -> Int? in
            guard let found = memchr(bytes.baseAddress! + base + from, 0x0A, to - from) else { return nil }
            return bytes.baseAddress!.distance(to: UnsafeRawPointer(found)) - base
        }
    }
}
