public import TransformSpec

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the next record lies in a run of bytes. `length` is how many bytes the record takes in
/// the stream (with its terminator or padding): MultiRecord sends whole records back to back.
/// `singlePayload` is what SingleRecord sends: the line without its terminator, or the framed
/// record without trailing padding (SageMaker: "padding is removed ... for SingleRecord").
public struct FramedRecord: Equatable, Sendable {
    public var length: Int
    public var singlePayload: Range<Int>
}

public enum FrameScan: Equatable, Sendable {
    case record(FramedRecord)
    /// The bytes end inside a record; more are needed.
    case incomplete
}

public struct RecordFraming: Sendable {
    public let splitType: SplitType
    /// Line records follow RFC 4180 quoting: a newline inside a quoted field does not end one.
    public let csvQuoting: Bool

    public init(splitType: SplitType, csvQuoting: Bool = false) {
        self.splitType = splitType
        self.csvQuoting = csvQuoting && splitType == .line
    }

    static let recordIOMagic: UInt32 = 0xced7_230a

    /// Finds the record at the start of `bytes`. `atEnd` says no more bytes follow, so a final
    /// line without `\n` is a record, while a cut binary frame is an error. `streamOffset` is
    /// where `bytes` starts in the (decompressed) object, for messages.
    /// `quoteFreeBytes`: how many leading bytes the caller already knows hold no `"`, so CSV
    /// quoting costs nothing there.
    public func scan(
        _ bytes: UnsafeRawBufferPointer,
        atEnd: Bool,
        streamOffset: Int64,
        quoteFreeBytes: Int = 0
    ) throws(RecordError) -> FrameScan {
        switch splitType {
        case .none:
            return atEnd ? .record(FramedRecord(length: bytes.count, singlePayload: 0..<bytes.count)) : .incomplete
        case .line:
            guard csvQuoting else { return scanLine(bytes, atEnd: atEnd) }
            let plain = scanLine(bytes, atEnd: atEnd)
            if case .record(let record) = plain, record.length <= quoteFreeBytes { return plain }
            return try scanCSVLine(bytes, atEnd: atEnd, streamOffset: streamOffset)
        case .recordIO:
            return try scanRecordIO(bytes, atEnd: atEnd, streamOffset: streamOffset)
        case .tfRecord:
            return try scanTFRecord(bytes, atEnd: atEnd, streamOffset: streamOffset)
        }
    }

    private func scanLine(_ bytes: UnsafeRawBufferPointer, atEnd: Bool) -> FrameScan {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            return atEnd && !bytes.isEmpty
                ? .record(FramedRecord(length: bytes.count, singlePayload: 0..<bytes.count)) : .incomplete
        }
        let end = newline > 0 && bytes[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
        return .record(FramedRecord(length: newline + 1, singlePayload: 0..<end))
    }

    /// A line ends at the first `\n` outside double quotes. Lines without any quote (the common
    /// case) cost one extra `memchr`; only lines with quotes are walked byte by byte.
    private func scanCSVLine(
        _ bytes: UnsafeRawBufferPointer,
        atEnd: Bool,
        streamOffset: Int64
    ) throws(RecordError) -> FrameScan {
        let plain = scanLine(bytes, atEnd: atEnd)
        if case .record(let record) = plain, memchr(bytes.baseAddress!, Int32(UInt8(ascii: "\"")), record.length) == nil
        {
            return plain
        }
        // Only a quote at the start of a field opens a quoted field, so `5" screen` stays plain text.
        enum State { case fieldStart, unquoted, quoted, quoteInQuoted }
        var state = State.fieldStart
        var quoteStart = 0
        for position in 0..<bytes.count {
            let byte = bytes[position]
            switch (state, byte) {
            case (.quoted, UInt8(ascii: "\"")): state = .quoteInQuoted
            case (.quoted, _): continue
            case (.quoteInQuoted, UInt8(ascii: "\"")): state = .quoted  // "" is an escaped quote
            case (.fieldStart, UInt8(ascii: "\"")):
                state = .quoted
                quoteStart = position
            case (_, UInt8(ascii: ",")): state = .fieldStart
            case (_, UInt8(ascii: "\n")):
                let end = position > 0 && bytes[position - 1] == UInt8(ascii: "\r") ? position - 1 : position
                return .record(FramedRecord(length: position + 1, singlePayload: 0..<end))
            default: state = .unquoted
            }
        }
        let inQuotes = state == .quoted
        guard atEnd else { return .incomplete }
        if inQuotes {
            throw RecordError(
                .corruptInput,
                "unterminated quoted CSV field starting at byte offset \(streamOffset + Int64(quoteStart)): a \" opens a field that never closes. "
                    + "Fix the quoting, or set BATCHFORM_CSV_SPLIT=newline to split on every newline as SageMaker does."
            )
        }
        return bytes.isEmpty ? .incomplete : .record(FramedRecord(length: bytes.count, singlePayload: 0..<bytes.count))
    }

    private func scanRecordIO(
        _ bytes: UnsafeRawBufferPointer,
        atEnd: Bool,
        streamOffset: Int64
    ) throws(RecordError) -> FrameScan {
        // A logical record is one frame (cflag 0) or a run of frames: start (1), middle (2)..., end (3).
        var position = 0
        var first = true
        while true {
            guard bytes.count - position >= 8 else {
                return try cut(atEnd, "RecordIO header", streamOffset + Int64(position))
            }
            let magic = bytes.loadLittleEndianUInt32(at: position)
            guard magic == Self.recordIOMagic else {
                throw RecordError(
                    .corruptInput,
                    "not a RecordIO frame at byte offset \(streamOffset + Int64(position)): magic is 0x"
                        + "\(String(magic, radix: 16)), expected 0xced7230a. Check SplitType and that the file is RecordIO."
                )
            }
            let header = bytes.loadLittleEndianUInt32(at: position + 4)
            let length = Int(header & ((1 << 29) - 1))
            let flag = header >> 29
            let dataEnd = position + 8 + length
            let paddedEnd = position + 8 + ((length + 3) & ~3)
            guard bytes.count >= dataEnd else {
                return try cut(atEnd, "RecordIO record", streamOffset + Int64(position))
            }
            let validContinuation = first ? (flag == 0 || flag == 1) : (flag == 2 || flag == 3)
            guard validContinuation else {
                throw RecordError(
                    .corruptInput,
                    "broken RecordIO multi-part record at byte offset \(streamOffset + Int64(position)) (part flag \(flag))."
                )
            }
            let finalFrame = flag == 0 || flag == 3
            if finalFrame {
                // The last record of a file may lack its padding; everything else must be whole.
                let end = bytes.count >= paddedEnd ? paddedEnd : (atEnd ? dataEnd : -1)
                if end < 0 { return .incomplete }
                return .record(FramedRecord(length: end, singlePayload: 0..<dataEnd))
            }
            guard bytes.count >= paddedEnd else {
                return try cut(atEnd, "RecordIO record", streamOffset + Int64(position))
            }
            position = paddedEnd
            first = false
        }
    }

    private func scanTFRecord(
        _ bytes: UnsafeRawBufferPointer,
        atEnd: Bool,
        streamOffset: Int64
    ) throws(RecordError) -> FrameScan {
        guard bytes.count >= 12 else { return try cut(atEnd, "TFRecord header", streamOffset) }
        let lengthCRC = bytes.loadLittleEndianUInt32(at: 8)
        guard CRC32C.masked(UnsafeRawBufferPointer(rebasing: bytes[0..<8])) == lengthCRC else {
            throw RecordError(
                .corruptInput,
                "corrupt TFRecord frame at byte offset \(streamOffset): the length CRC does not match. "
                    + "Check SplitType and that the file is TFRecord."
            )
        }
        let length = bytes.loadLittleEndianUInt64(at: 0)
        guard length < UInt64(Int.max - 16) else {
            throw RecordError(.corruptInput, "corrupt TFRecord frame at byte offset \(streamOffset): length \(length).")
        }
        let total = 16 + Int(length)
        guard bytes.count >= total else { return try cut(atEnd, "TFRecord record", streamOffset) }
        let dataCRC = bytes.loadLittleEndianUInt32(at: 12 + Int(length))
        guard CRC32C.masked(UnsafeRawBufferPointer(rebasing: bytes[12..<(12 + Int(length))])) == dataCRC else {
            throw RecordError(
                .corruptInput,
                "corrupt TFRecord frame at byte offset \(streamOffset): the data CRC does not match (record of \(length) bytes)."
            )
        }
        return .record(FramedRecord(length: total, singlePayload: 0..<total))
    }

    private func cut(_ atEnd: Bool, _ what: String, _ offset: Int64) throws(RecordError) -> FrameScan {
        guard atEnd else { return .incomplete }
        throw RecordError(.truncatedInput, "truncated \(what) at byte offset \(offset): the file ends inside it.")
    }
}

extension UnsafeRawBufferPointer {
    func loadLittleEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func loadLittleEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

/// CRC-32C (Castagnoli) with TFRecord's masking, table-driven, eight bytes per step.
public enum CRC32C {
    private static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82f6_3b78 : crc >> 1 }
            tables[0][byte] = crc
        }
        for byte in 0..<256 {
            for slice in 1..<8 {
                let previous = tables[slice - 1][byte]
                tables[slice][byte] = (previous >> 8) ^ tables[0][Int(previous & 0xff)]
            }
        }
        return tables
    }()

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        var index = 0
        let count = bytes.count
        tables.withUnsafeBufferPointer { t in
            let (t0, t1, t2, t3, t4, t5, t6, t7) = (t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7])
            while count - index >= 8 {
                let low = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt32.self)) ^ crc
                let high = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index + 4, as: UInt32.self))
                crc =
                    t7[Int(low & 0xff)] ^ t6[Int((low >> 8) & 0xff)] ^ t5[Int((low >> 16) & 0xff)]
                    ^ t4[Int(low >> 24)] ^ t3[Int(high & 0xff)] ^ t2[Int((high >> 8) & 0xff)]
                    ^ t1[Int((high >> 16) & 0xff)] ^ t0[Int(high >> 24)]
                index += 8
            }
            while index < count {
                crc = (crc >> 8) ^ t0[Int((crc ^ UInt32(bytes[index])) & 0xff)]
                index += 1
            }
        }
        return ~crc
    }

    public static func masked(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xa282_ead8
    }
}

/// Writers of the binary framings, for tools and tests that produce RecordIO or TFRecord data.
public enum RecordEncoding {
    /// One MXNet RecordIO frame (complete record, cflag 0), padded to 4 bytes.
    public static func recordIO(_ payload: [UInt8], partFlag: UInt32 = 0) -> [UInt8] {
        var frame: [UInt8] = []
        withUnsafeBytes(of: RecordFraming.recordIOMagic.littleEndian) { frame += $0 }
        withUnsafeBytes(of: (UInt32(payload.count) | partFlag << 29).littleEndian) { frame += $0 }
        return frame + payload + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
    }

    /// One TFRecord frame: length, masked CRC of the length, data, masked CRC of the data.
    public static func tfRecord(_ payload: [UInt8]) -> [UInt8] {
        var length: [UInt8] = []
        withUnsafeBytes(of: UInt64(payload.count).littleEndian) { length += $0 }
        var frame = length
        withUnsafeBytes(of: length.withUnsafeBytes { CRC32C.masked($0) }.littleEndian) { frame += $0 }
        frame += payload
        withUnsafeBytes(of: payload.withUnsafeBytes { CRC32C.masked($0) }.littleEndian) { frame += $0 }
        return frame
    }
}
