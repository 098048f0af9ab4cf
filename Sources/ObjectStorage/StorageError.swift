/// A storage failure with a stable code and a message that names the location and what to do.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalidURI, notFound, notSupported, readFailed, writeFailed, tooLarge, credentials, accessDenied, service
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
