import Foundation

/// Waits for a new instance's first healthy `/ping`, as SageMaker does before any invocation.
public enum HealthCheck {
    public static let pingFailureReason =
        "AlgorithmError: Model container failed to respond to ping. Please ensure /ping endpoint is "
        + "implemented and responds with an HTTP 200 status code"

    /// Pings (2 s per attempt) until HTTP 200 or `deadline`. Fails at once, with the exit
    /// status, if the server process ends; both failures quote the server's last log lines.
    public static func waitUntilHealthy(
        _ instance: any ModelInstance,
        client: ModelClient,
        startupTimeout: Duration
    ) async throws {
        let deadline = ContinuousClock.now + startupTimeout
        var pause = Duration.milliseconds(10)
        while true {
            try Task.checkCancellation()
            if let ended = instance.exitDescription() {
                throw RuntimeError(
                    .exitedEarly,
                    "AlgorithmError: the model server \(instance.name) \(ended) before answering /ping."
                        + logTail(instance.logFile)
                )
            }
            if await client.ping(instance) { return }
            if ContinuousClock.now >= deadline {
                throw RuntimeError(
                    .pingFailed,
                    "\(pingFailureReason) (\(instance.name) did not within \(startupTimeout.components.seconds) s; "
                        + "raise --startup-timeout for slow-loading models)." + logTail(instance.logFile)
                )
            }
            // A loopback ping is cheap; a long pause would be start-up time added to every job.
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(25))
        }
    }

    /// ` Last log lines of <file>: ...` or nothing when the log is empty.
    public static func logTail(_ logFile: String, lines: Int = 10) -> String {
        guard let data = FileManager.default.contents(atPath: logFile), !data.isEmpty else { return "" }
        let text = String(decoding: data.suffix(4096), as: UTF8.self)
        let last = text.split(separator: "\n", omittingEmptySubsequences: true).suffix(lines)
        return " Last log lines (\(logFile)): " + last.joined(separator: " | ")
    }
}
