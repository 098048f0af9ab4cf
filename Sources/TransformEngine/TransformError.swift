import ModelRuntime

/// Why an object failed (or why the job could not go on), typed so SageMaker's failure kind comes
/// from the code, never from the message's words.
public struct TransformError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The model refused a batch with a 4xx: the request is at fault (SageMaker's ClientError).
        case modelRefused
        /// The model failed a batch: a 5xx, a timeout, a dropped connection or a crash, after its retries.
        case modelFailed
        /// The input could not be read, split or filtered.
        case inputFailed
        /// The `.out` could not be written or committed.
        case outputFailed
        /// Every model server has stopped for good.
        case noInstances
        /// More records failed than `BATCHFORM_MAX_RECORD_ERRORS` allows.
        case recordErrorsExceeded
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

    /// The kind SageMaker names in a FailureReason.
    public var sageMakerKind: String { code == .modelRefused ? "ClientError" : "AlgorithmError" }

    /// A failed invocation as the engine reports it: 4xx is `modelRefused`, anything else `modelFailed`.
    static func invocation(
        _ error: any Error,
        batch: BatchInfo,
        attempts: Int,
        timeoutSeconds: Int
    ) -> TransformError {
        let runtimeError = error as? RuntimeError
        let refused = (runtimeError?.httpStatus).map { (400..<500).contains($0) } ?? false
        let what: String
        switch runtimeError?.code {
        case .invocationTimedOut:
            what =
                "Unable to get response from algorithm: no answer within InvocationsTimeoutInSeconds "
                + "(\(timeoutSeconds) s) after \(attempts) attempt(s). Raise "
                + "ModelClientConfig.InvocationsTimeoutInSeconds or send smaller mini-batches (MaxPayloadInMB)."
        case .connectionFailed: what = "\(error) (after \(attempts) attempt(s))"
        default: what = "\(error)" + (attempts > 1 ? " (attempt \(attempts))" : "")
        }
        return TransformError(
            refused ? .modelRefused : .modelFailed,
            "\(batch.recordsDescription): \(what)",
            cause: error
        )
    }
}

/// One object that produced no `.out`.
public struct ObjectFailure: Sendable {
    public var object: String
    public var error: TransformError
}
