/// A failure starting, reaching or calling a model server. `message` is written for the person
/// running the job: what happened, where, and what to change.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unsupportedImage, launchFailed, pingFailed, exitedEarly, unsafeArchive, modelDataNotFound
        case invocationFailed, invocationTimedOut, connectionFailed, badExecutionParameters
    }

    public var code: Code
    public var message: String
    /// The model's HTTP status, for `invocationFailed`: a 4xx is the request's fault (ClientError).
    public var httpStatus: Int?
    /// The start of the body the model answered with that status.
    public var modelAnswer: String?
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

    /// Timeouts, dropped connections and 5xx answers may succeed when sent again; a 4xx never does.
    public var isRetryable: Bool {
        switch code {
        case .invocationTimedOut, .connectionFailed: true
        case .invocationFailed: (httpStatus ?? 500) >= 500
        default: false
        }
    }
}
