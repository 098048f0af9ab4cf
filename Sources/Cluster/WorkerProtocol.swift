import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
public import TransformSpec

/// What the coordinator and its workers say to each other: JSON over HTTP, each request
/// carrying the job's secret (`Authorization: Bearer …`), which reaches a worker only through
/// its environment (`BATCHFORM_WORKER_SECRET`), never a command line.
public enum WorkerProtocol {
    public static let coordinatorVariable = "BATCHFORM_COORDINATOR_URL"
    public static let secretVariable = "BATCHFORM_WORKER_SECRET"

    /// A worker introduces itself: where it runs and as which allocation of the executor.
    public struct Registration: Codable, Sendable {
        public var node: String
        public var allocation: String
    }

    /// What a registered worker needs to run the job's model and read and write its stores.
    public struct Assignment: Codable, Sendable {
        public var worker: String
        /// The worker's number: its logs are `worker-N.log` and `instance-N.log`.
        public var number: Int
        public var model: CreateModelRequest
        public var job: CreateTransformJobRequest
        public var logDirectory: String
        public var workingDirectory: String
        public var s3Endpoint: String?
        public var region: String?
        /// The local folders the job may touch (a server's `--allow-local-path`); nil is anywhere.
        public var allowedLocalPaths: [String]?
        public var startupTimeoutSeconds: Int
        public var heartbeatMilliseconds: Int
    }

    public struct LeaseRequest: Codable, Sendable {
        public var worker: String
    }

    /// A unit to run and where its output goes, or `wait` (others hold the last units; ask
    /// again), or neither: the job needs this worker no more.
    public struct Lease: Codable, Sendable {
        public var unit: WorkUnit?
        public var output: String?
        public var attempt: Int
        public var wait: Bool
    }

    public struct UnitReport: Codable, Sendable {
        public var worker: String
        public var unit: Int
        public var attempt: Int
        public var records: Int
        public var bytes: Int64
        /// Why the unit failed (the engine's message) and its `TransformError` code; nil when committed.
        public var failure: String?
        public var failureCode: String?
    }

    public struct Heartbeat: Codable, Sendable {
        public var worker: String
        public var state: String
        /// Counted on the unit the worker runs now (completed units are reported with them).
        public var records: Int
        public var bytes: Int64
        public var inFlight: Int
    }

    public struct HeartbeatAnswer: Codable, Sendable {
        /// The coordinator no longer counts on this worker (lost, or the job ended): stop.
        public var stop: Bool
    }
}

/// The worker's side of the connection.
struct CoordinatorConnection: Sendable {
    let baseURL: String
    let secret: String
    let http: HTTPClient

    func post<Body: Encodable, Answer: Decodable>(
        _ path: String,
        _ body: Body,
        as: Answer.Type
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(secret)")
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        let response = try await http.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 16 << 20)
        guard response.status == .ok else {
            throw ClusterError(
                .protocolFailed,
                "The coordinator at \(baseURL) answered \(path) with HTTP \(response.status.code): "
                    + String(buffer: answer)
            )
        }
        return try JSONDecoder().decode(Answer.self, from: Data(answer.readableBytesView))
    }
}
