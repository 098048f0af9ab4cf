/// A failure starting, reaching or calling a model server. `message` is written for the person
/// running the job: what happened, where, and what to change.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unsupportedImage, launchFailed, pingFailed, exitedEarly, unsafeArchive, modelDataNotFound
        case invocationFailed, invocationTimedOut, connectionFailed, badExecutionParameters
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
