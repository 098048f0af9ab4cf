/// A storage failure with a stable code and a message that names the location and what to do.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalidURI, notFound, notSupported, readFailed, writeFailed, tooLarge, credentials, accessDenied, service
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
