import Foundation
import ModelRuntime
import NIOCore
import ObjectStorage
import Synchronization
import TransformSpec

/// One record that failed alone (a line of the record-errors report).
public struct RecordFailure: Sendable, Codable, Equatable {
    /// The object's URI.
    public var input: String
    /// 0-based index of the record in its object.
    public var record: Int
    /// Byte offset of its first byte in the (decompressed) object.
    public var offset: Int64
    /// The model's HTTP status; nil for a timeout, a dropped connection or a crash.
    public var status: Int?
    /// What the model answered, or the timeout or exit.
    public var message: String
    public var attempts: Int

    /// The JSON line, with `status` written as null when there is none.
    var jsonLine: String {
        let fields: [(String, String)] = [
            ("input", Self.quoted(input)), ("record", String(record)), ("offset", String(offset)),
            ("status", status.map(String.init) ?? "null"), ("message", Self.quoted(message)),
            ("attempts", String(attempts)),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    private static func quoted(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// "object a.csv, record 12 (byte 3456): HTTP 400 bad record"
    var summary: String {
        "\(input) record \(record) (byte \(offset)): " + (status.map { "HTTP \($0) " } ?? "") + message
    }
}

/// The job's failed records, kept as they are isolated, counted against `BATCHFORM_MAX_RECORD_ERRORS`.
final class RecordErrorLog: Sendable {
    let limit: Int
    private let failures = Mutex<[RecordFailure]>([])

    init(limit: Int) { self.limit = limit }

    var count: Int { failures.withLock { $0.count } }

    /// Adds `new`; throws once more than `limit` records have failed.
    func add(_ new: [RecordFailure], object: String) throws(TransformError) {
        guard !new.isEmpty else { return }
        let (count, first) = failures.withLock { failures in
            failures += new
            return (failures.count, Array(failures.prefix(3)))
        }
        guard count > limit else { return }
        throw TransformError(
            .recordErrorsExceeded,
            "\(count) records failed, more than BATCHFORM_MAX_RECORD_ERRORS=\(limit); \(object) crossed the limit. "
                + "First failed records: " + first.map(\.summary).joined(separator: "; ")
        )
    }

    /// Sorted by input, then record.
    var sorted: [RecordFailure] {
        failures.withLock { $0 }.sorted { ($0.input, $0.record) < ($1.input, $1.record) }
    }

    /// Writes the report, all or nothing, as one JSON Lines object.
    func write(to location: ObjectURI, stores: ObjectStores) async throws {
        var body = ByteBuffer()
        for failure in sorted { body.writeString(failure.jsonLine + "\n") }
        var writer = try await stores.store(for: location).openWriter(location)
        do {
            try await writer.write(body)
            try await writer.commit()
        } catch {
            await writer.abort()
            throw error
        }
    }
}

extension RecordFailure {
    /// The record error for `batch` (one record) after `error`.
    init(_ batch: BatchInfo, input: String, error: TransformError, attempts: Int) {
        let cause = error.cause as? RuntimeError
        self.init(
            input: input,
            record: batch.firstRecord,
            offset: batch.byteOffset,
            status: cause?.httpStatus,
            message: cause?.modelAnswer ?? cause?.message ?? error.message,
            attempts: attempts
        )
    }
}
