import ByteStreams
import Foundation
import NIOCore
import Testing
import TransformSpec

@testable import Records

let line = Array("alpha\nbeta\r\ngamma\n".utf8)

@Suite struct LineSplitterTests {
    @Test func singleRecordSendsEachLineWithoutItsTerminator() async throws {
        let sent = try await batches(line, split: .line, strategy: .singleRecord, limit: 100)
        #expect(sent == ["alpha", "beta", "gamma"].map { Array($0.utf8) })
    }

    @Test func multiRecordSendsWholeLinesKeepingCRLF() async throws {
        let sent = try await batches(line, split: .line, strategy: .multiRecord, limit: 100)
        #expect(sent == [line])
    }

    @Test func multiRecordFillsUpToTheLimitWithoutSplittingALine() async throws {
        // "alpha\n" is 6 bytes, "beta\r\n" 6, "gamma\n" 6: a 12-byte limit holds two lines.
        let sent = try await batches(line, split: .line, strategy: .multiRecord, limit: 12)
        #expect(sent.allSatisfy { $0.count <= 12 })
        #expect(sent.flatMap { $0 } == line)
        #expect(sent.allSatisfy { $0.last == UInt8(ascii: "\n") })
    }

    @Test func aLastLineWithoutNewlineIsARecordAndNoEmptyRecordFollows() async throws {
        let sent = try await batches(Array("one\ntwo".utf8), split: .line, strategy: .singleRecord, limit: 100)
        #expect(sent == [Array("one".utf8), Array("two".utf8)])
        #expect(try await batches([], split: .line, strategy: .singleRecord, limit: 100).isEmpty)
    }

    @Test func onlyNewlineSplitsNotCarriageReturn() async throws {
        let sent = try await batches(Array("a\rb\nc\n".utf8), split: .line, strategy: .singleRecord, limit: 100)
        #expect(sent == [Array("a\rb".utf8), Array("c".utf8)])
    }

    @Test func aLineLongerThanThePayloadLimitFailsWithItsOffset() async throws {
        let input = Array("short\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 50) + [10]
        for strategy in [BatchStrategy.singleRecord, .multiRecord] {
            await #expect {
                _ = try await batches(input, split: .line, strategy: strategy, limit: 20)
            } throws: { error in
                let message = (error as? RecordError)?.message ?? ""
                return message.contains("record 2 at byte offset 6 is larger than MaxPayloadInMB")
            }
        }
    }

    @Test func batchesAreSlicesOfOneReadBuffer() async throws {
        var batcher = MiniBatcher(
            source: MemoryStream(line, chunk: 1000),
            splitType: .line,
            strategy: .singleRecord,
            maxPayloadBytes: 100,
            objectName: "o"
        )
        let first = try await batcher.next()!
        let second = try await batcher.next()!
        let firstBase = first.payload.withUnsafeReadableBytes { $0.baseAddress! }
        let secondBase = second.payload.withUnsafeReadableBytes { $0.baseAddress! }
        // Same storage: the second record starts 6 bytes after the first ("alpha\n").
        #expect(secondBase - firstBase == 6)
        #expect(second.byteOffset == 6 && second.firstRecord == 1)
    }
}

@Suite struct WholeObjectTests {
    @Test func splitTypeNoneSendsTheWholeObjectOnce() async throws {
        let bytes = Array(repeating: UInt8(7), count: 1000)
        #expect(try await batches(bytes, split: .none, strategy: .singleRecord, limit: 1000) == [bytes])
        #expect(try await batches([], split: .none, strategy: .multiRecord, limit: 10) == [[]])
    }

    @Test func anObjectOverTheLimitFails() async throws {
        await #expect(throws: RecordError.self) {
            _ = try await batches(Array(repeating: 1, count: 11), split: .none, strategy: .multiRecord, limit: 10)
        }
    }
}

@Suite struct RecordIOTests {
    let records = [Array("a".utf8), Array("four".utf8), Array("seven!!".utf8)]

    @Test func multiRecordSendsRawFramesWithPadding() async throws {
        let file = records.flatMap { recordIO($0) }
        #expect(try await batches(file, split: .recordIO, strategy: .multiRecord, limit: 1000) == [file])
    }

    @Test func singleRecordSendsOneFrameWithoutTrailingPadding() async throws {
        let file = records.flatMap { recordIO($0) }
        let sent = try await batches(file, split: .recordIO, strategy: .singleRecord, limit: 1000)
        #expect(sent == records.map { Array(recordIO($0).prefix(8 + $0.count)) })
    }

    @Test func multiPartRecordsStayTogether() async throws {
        let parts =
            recordIO(Array("ab".utf8), flag: 1) + recordIO(Array("cd".utf8), flag: 2)
            + recordIO(Array("e".utf8), flag: 3)
        let file = parts + recordIO(Array("z".utf8))
        let sent = try await batches(file, split: .recordIO, strategy: .singleRecord, limit: 1000)
        #expect(sent.count == 2)
        #expect(sent[0] == Array(parts.prefix(parts.count - 3)))
    }

    @Test func badMagicFailsWithItsOffset() async throws {
        var file = records.flatMap { recordIO($0) }
        file[12] = 0
        await #expect {
            _ = try await batches(file, split: .recordIO, strategy: .multiRecord, limit: 1000)
        } throws: { error in
            (error as? RecordError)?.message.contains("not a RecordIO frame at byte offset 12") == true
        }
    }

    @Test func aTruncatedFrameFails() async throws {
        let file = records.flatMap { recordIO($0) }.dropLast(6)
        await #expect {
            _ = try await batches(Array(file), split: .recordIO, strategy: .multiRecord, limit: 1000)
        } throws: { error in
            (error as? RecordError)?.code == .truncatedInput
        }
    }
}

@Suite struct TFRecordTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) } == 0xe306_9283)
        // The table-driven, eight-bytes-a-step path agrees with the bitwise definition.
        let bytes = (0..<1003).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var reference: UInt32 = 0xffff_ffff
        for byte in bytes {
            reference ^= UInt32(byte)
            for _ in 0..<8 { reference = reference & 1 == 1 ? (reference >> 1) ^ 0x82f6_3b78 : reference >> 1 }
        }
        #expect(bytes.withUnsafeBytes { CRC32C.checksum($0) } == ~reference)
    }

    @Test func framesAreSentWholeAndCRCsChecked() async throws {
        let records = [Array("first".utf8), [], Array(repeating: 9, count: 300)]
        let file = records.flatMap { tfRecord($0) }
        #expect(try await batches(file, split: .tfRecord, strategy: .multiRecord, limit: 10_000) == [file])
        #expect(
            try await batches(file, split: .tfRecord, strategy: .singleRecord, limit: 10_000)
                == records.map { tfRecord($0) }
        )
    }

    @Test func aCorruptDataCRCFailsWithTheFrameOffset() async throws {
        var file = tfRecord(Array("first".utf8)) + tfRecord(Array("second".utf8))
        file[21 + 12 + 2] ^= 0xff
        await #expect {
            _ = try await batches(file, split: .tfRecord, strategy: .multiRecord, limit: 10_000)
        } throws: { error in
            (error as? RecordError)?.message.contains("corrupt TFRecord frame at byte offset 21: the data CRC") == true
        }
    }

    @Test func aCorruptLengthCRCFails() async throws {
        var file = tfRecord(Array("first".utf8))
        file[9] ^= 1
        await #expect {
            _ = try await batches(file, split: .tfRecord, strategy: .singleRecord, limit: 10_000)
        } throws: { error in
            (error as? RecordError)?.message.contains("length CRC") == true
        }
    }

    @Test func aTruncatedFrameFails() async throws {
        let file = tfRecord(Array("first".utf8)).dropLast(2)
        await #expect {
            _ = try await batches(Array(file), split: .tfRecord, strategy: .singleRecord, limit: 10_000)
        } throws: { error in
            (error as? RecordError)?.message.contains("truncated TFRecord record at byte offset 0") == true
        }
    }
}

@Suite struct GzipTests {
    @Test func decompressesAsAStream() async throws {
        let text = Array((0..<5000).map { "line \($0)\n" }.joined().utf8)
        let stream = try GzipStream(MemoryStream(try gzip(text), chunk: 333), name: "t.gz")
        #expect(try await readAll(stream) == text)
    }

    @Test func concatenatedMembersReadAsOne() async throws {
        let stream = try GzipStream(MemoryStream(try gzip(Array("a\n".utf8)) + gzip(Array("b\n".utf8))), name: "t.gz")
        #expect(try await readAll(stream) == Array("a\nb\n".utf8))
    }

    @Test func truncatedInputFails() async throws {
        let compressed = try gzip(Array(repeating: UInt8(ascii: "q"), count: 10_000))
        let stream = try GzipStream(MemoryStream(Array(compressed.dropLast(10))), name: "t.gz")
        await #expect {
            _ = try await readAll(stream)
        } throws: { error in
            (error as? ByteStreamError)?.code == .truncatedInput
        }
    }

    @Test func plainBytesAreNotGzip() async throws {
        let stream = try GzipStream(MemoryStream(Array("not gzip at all".utf8)), name: "t.gz")
        await #expect {
            _ = try await readAll(stream)
        } throws: { error in
            (error as? ByteStreamError)?.message.contains("not valid gzip data") == true
        }
    }
}

@Suite struct NewlineCountTests {
    /// The word-at-a-time count agrees with a byte loop on bytes next to `\n` in value
    /// (0x0b, 0x8a, 0x09, 0x00, 0xff), at every alignment and tail length, and on long runs.
    @Test func wordAtATimeCountMatchesAByteLoop() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x0a, 0x0b, 0x8a, 0x09, 0x00, 0xff, 0x7f, 0x80, 0x2c, 0x31]
        for length in [0, 1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 1000, 8160, 8161, 20000] {
            let bytes = (0..<length + 3).map { _ in alphabet.randomElement(using: &generator)! }
            for start in 0..<3 {
                let slice = Array(bytes[start..<(start + length)])
                let expected = slice.filter { $0 == 0x0a }.count
                slice.withUnsafeBytes {
                    #expect(MiniBatcher.countNewlines($0) == expected, "length \(length) start \(start)")
                }
            }
        }
    }
}

@Suite struct PreferredPayloadTests {
    /// Lines of 10 bytes, and one of 60 (larger than the preferred size, within the limit).
    static let input: [UInt8] = Array(
        ((0..<40).map { String(format: "line %04d\n", $0) } + [String(repeating: "x", count: 59) + "\n"]
            + (40..<60).map { String(format: "line %04d\n", $0) }).joined().utf8
    )

    @Test func aPreferredSizeCutsSmallerBatchesOfTheSameRecordsNeverAboveTheLimit() async throws {
        var batcher = MiniBatcher(
            source: MemoryStream(Self.input, chunk: 13),
            splitType: .line,
            strategy: .multiRecord,
            maxPayloadBytes: 200,
            objectName: "o"
        )
        batcher.preferredPayloadBytes = 35
        var joined: [UInt8] = []
        var sizes: [Int] = []
        while let batch = try await batcher.next() {
            joined += Array(batch.payload.readableBytesView)
            sizes.append(batch.payload.readableBytes)
        }
        #expect(joined == Self.input, "the same bytes, in order")
        #expect(sizes.allSatisfy { $0 <= 200 }, "never above MaxPayloadInMB")
        #expect(sizes.filter { $0 > 35 } == [60], "only the one larger record exceeds the preferred size, alone")
        #expect(sizes.count > Self.input.count / 35)
    }
}

@Suite struct BatchHalvesTests {
    func batch(_ text: String) -> MiniBatch {
        let count = text.split(separator: "\n", omittingEmptySubsequences: false).count - (text.hasSuffix("\n") ? 1 : 0)
        return MiniBatch(
            payload: ByteBuffer(string: text),
            sequenceNumber: 3,
            firstRecord: 10,
            recordCount: count,
            byteOffset: 500
        )
    }

    @Test(arguments: [
        ("a\nbb\nccc\ndddd\neeeee\n", false),
        ("1,\"x\ny\"\n2,z\n3,w\n4,v\n", true),  // a quoted newline: the halves follow the framing
        ("only one line without end", false),
    ])
    func halvesAreTheSameRecordsCutAtABoundary(_ text: String, _ quoted: Bool) throws {
        let framing = RecordFraming(splitType: .line, csvQuoting: quoted)
        let whole =
            quoted
            ? MiniBatch(
                payload: ByteBuffer(string: text),
                sequenceNumber: 3,
                firstRecord: 10,
                recordCount: 4,
                byteOffset: 500
            ) : batch(text)
        guard let (left, right) = try whole.halves(framing: framing) else {
            #expect(whole.recordCount == 1)
            return
        }
        #expect(String(buffer: left.payload) + String(buffer: right.payload) == text)
        #expect(left.recordCount + right.recordCount == whole.recordCount)
        #expect(left.recordCount >= 1 && right.recordCount >= 1)
        #expect(right.firstRecord == 10 + left.recordCount)
        #expect(right.byteOffset == 500 + Int64(left.payload.readableBytes))
        #expect(String(buffer: left.payload).hasSuffix("\n"))
        if quoted { #expect(String(buffer: left.payload) == "1,\"x\ny\"\n2,z\n") }
    }
}
