/// Bad input found while reading records: the message names the object, the byte offset and
/// what to change.
public struct RecordError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case corruptInput, truncatedInput, recordTooLarge
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
