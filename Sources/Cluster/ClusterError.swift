/// A failure of the cluster layer: starting workers, talking to them, committing parts.
public struct ClusterError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The executor cannot be used here (its tools are missing).
        case executorMissing
        /// The cluster refused to start the workers.
        case submissionRefused
        /// A request between coordinator and worker failed.
        case protocolFailed
        /// `batchform worker` was started without what the coordinator gives it.
        case notAWorker
    }

    public var code: Code
    public var message: String
    /// Where it was thrown (`Module/File.swift:line`), for bug reports; not part of the message.
    public var location: String

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.location = "\(file):\(line)"
    }

    public var description: String { message }
}
