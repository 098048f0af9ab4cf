import ByteStreams
import NIOCore
import Records
import Testing

struct LineRangeTests {
    /// The bytes of `range` of `bytes` as a work unit reads them.
    func read(_ bytes: [UInt8], _ range: Range<Int64>, chunk: Int) async throws -> (first: Int64, bytes: [UInt8]) {
        let offset = Int(LineRangeStream.readOffset(for: range))
        var stream = LineRangeStream(MemoryStream(Array(bytes[offset...]), chunk: chunk), range: range)
        let first = try await stream.skipToFirstLine()
        var buffer = ByteBuffer()
        while try await stream.read(into: &buffer, maxBytes: 1 << 16) > 0 {}
        return (first, Array(buffer.readableBytesView))
    }

    /// Ranges that tile an object give every line to exactly one of them, whole and in order,
    /// whatever the unit size, the read size, and where lines fall (empty lines, a last line
    /// without its newline, lines longer than a unit).
    @Test(arguments: [1, 2, 3, 5, 8, 13, 40, 1000])
    func rangesThatTileAnObjectGiveEachLineToExactlyOne(unit: Int) async throws {
        var generator = SystemRandomNumberGenerator()
        for trial in 0..<20 {
            var text = ""
            for _ in 0..<Int.random(in: 0...30, using: &generator) {
                text += String(repeating: "x", count: Int.random(in: 0...25, using: &generator)) + "\n"
            }
            if trial % 3 == 0 { text += "tail-without-newline" }
            let bytes = Array(text.utf8)
            var joined: [UInt8] = []
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + unit)
                let (first, piece) = try await read(bytes, Int64(start)..<Int64(end), chunk: 1 + trial % 7)
                if !piece.isEmpty {
                    #expect(first == Int64(joined.count), "a unit's first line starts where the last one ended")
                    #expect(first == 0 || bytes[Int(first) - 1] == UInt8(ascii: "\n"))
                }
                joined += piece
                start = end
            }
            #expect(joined == bytes, "unit \(unit), trial \(trial)")
        }
    }

    @Test func aRangeInsideOneLongLineHoldsNothing() async throws {
        let bytes = Array("short\n\(String(repeating: "y", count: 50))\nend\n".utf8)
        let (_, piece) = try await read(bytes, 10..<20, chunk: 4)
        #expect(piece.isEmpty)
        let (first, next) = try await read(bytes, 6..<10, chunk: 4)
        #expect(first == 6)
        #expect(String(decoding: next, as: UTF8.self) == String(repeating: "y", count: 50) + "\n")
    }
}
