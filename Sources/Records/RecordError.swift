/// Bad input found while reading records: the message names the object, the byte offset and
/// what to change.
public struct RecordError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case corruptInput, truncatedInput, recordTooLarge
        /// A CSV field, JSON value or JSONPath that cannot be read; DataProcessing that cannot be applied.
        case badCSV, badJSON, badJSONPath, dataProcessing
    }

    public var code: Code
    public var message: String
    /// The underlying error, where one led to this.
    public var cause: (any Error & Sendable)?
    /// Where it was thrown (`Module/File.swift:line`), for bug reports; not part of the message.
    public var location: String

    public init(
        _ code: Code,
        _ message: String,
        cause: (any Error & Sendable)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.location = "\(file):\(line)"
    }

    public var description: String { message }
}

extension RecordError {
    /// A CSV row that cannot be split into fields.
    static func csv(_ problem: String, near bytes: some Collection<UInt8>) -> RecordError {
        RecordError(.badCSV, "\(problem) found near: \(String(decoding: bytes.prefix(60), as: UTF8.self))")
    }

    /// A JSON value that cannot be parsed, at a byte offset in the record.
    static func json(at offset: Int, _ problem: String) -> RecordError {
        RecordError(.badJSON, "\(problem) at byte \(offset)")
    }
}
