public import Foundation
public import NIOCore
import NIOHTTP1
import Synchronization
public import TransformSpec

/// The batch engine's side of the container contract: `/ping`, `/execution-parameters`,
/// `/invocations`. One client (one connection pool per instance) serves the whole job.
public final class ModelClient: Sendable {
    private let connections = Mutex<[String: ModelConnections]>([:])
    private let maxConnectionsPerInstance: Int

    /// The largest response accepted for one request; model answers are usually far smaller
    /// than their input, and this keeps a misbehaving server from exhausting memory.
    public static let maxResponseBytes = 1 << 30

    public init(maxConnectionsPerInstance: Int) {
        self.maxConnectionsPerInstance = max(1, maxConnectionsPerInstance)
    }

    public func shutdown() async {
        for pool in connections.withLock({ $0.values }) { pool.close() }
    }

    /// The instance's connections; its base URL is `http://<host>:<port>`.
    private func pool(_ instance: any ModelInstance) -> ModelConnections {
        connections.withLock { pools in
            if let pool = pools[instance.baseURL] { return pool }
            let address = instance.baseURL.dropFirst("http://".count)
            let colon = address.lastIndex(of: ":") ?? address.endIndex
            let port = Int(address[address.index(after: colon)...].prefix { $0.isNumber }) ?? 80
            let pool = ModelConnections(
                host: String(address[..<colon]),
                port: port,
                maxIdle: maxConnectionsPerInstance,
                maxResponseBytes: Self.maxResponseBytes
            )
            pools[instance.baseURL] = pool
            return pool
        }
    }

    /// True for HTTP 200 within `timeout` (SageMaker's ping timeout is 2 s).
    public func ping(_ instance: any ModelInstance, timeout: Duration = .seconds(2)) async -> Bool {
        (try? await pool(instance).request(.GET, "/ping", timeout: timeout))?.status == 200
    }

    /// The container's answer to `GET /execution-parameters`, nil when it has none (404, not
    /// JSON, or no answer): the route is optional.
    /// The container's `/execution-parameters`, nil when it does not answer 200 with a JSON object;
    /// an answer with values out of range throws, naming the answer.
    public func executionParameters(_ instance: any ModelInstance) async throws(RuntimeError) -> ExecutionParameters? {
        guard let answer = try? await pool(instance).request(.GET, "/execution-parameters", timeout: .seconds(10)),
            answer.status == 200
        else { return nil }
        return try ExecutionParameters.parse(Data(answer.body.readableBytesView))
    }

    /// Posts one mini-batch once and returns the answer's body. Failures are `RuntimeError`s:
    /// `invocationFailed` with the answer's `httpStatus`, `invocationTimedOut`, or
    /// `connectionFailed` with its cause. Retrying, and on which instance, is the caller's choice
    /// (`RuntimeError.isRetryable`). Cancellation throws `CancellationError`.
    public func invoke(
        _ instance: any ModelInstance,
        body: ByteBuffer,
        contentType: String?,
        accept: String?,
        timeout: Duration
    ) async throws -> ByteBuffer {
        var headers: [(String, String)] = []
        if let contentType { headers.append(("Content-Type", contentType)) }
        if let accept { headers.append(("Accept", accept)) }
        let response: ModelConnections.Answer
        do {
            response = try await pool(instance).request(
                .POST,
                "/invocations",
                headers: headers,
                body: body,
                timeout: timeout
            )
        } catch let error as RuntimeError where error.code == .invocationTimedOut {
            throw RuntimeError(
                .invocationTimedOut,
                "Unable to get response from algorithm: no answer within \(timeout.components.seconds) s.",
                cause: error
            )
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            try Task.checkCancellation()
            let exited = instance.exitDescription().map { "; the model server \($0)" } ?? ""
            throw RuntimeError(
                .connectionFailed,
                "Unable to get response from algorithm: \(error)\(exited)",
                cause: error
            )
        }
        guard (200..<300).contains(response.status) else {
            var failure = RuntimeError(
                .invocationFailed,
                "the model answered HTTP \(response.status)\(Self.quote(response.body))"
            )
            failure.httpStatus = response.status
            failure.modelAnswer = String(decoding: response.body.readableBytesView.prefix(512), as: UTF8.self)
            throw failure
        }
        return response.body
    }

    /// `: "first bytes of the body"`, so a FailureReason shows what the model said.
    static func quote(_ body: ByteBuffer) -> String {
        guard body.readableBytes > 0 else { return " with an empty body" }
        let prefix = body.getSlice(at: body.readerIndex, length: min(body.readableBytes, 512))!
        var text = String(decoding: prefix.readableBytesView, as: UTF8.self)
            .replacingOccurrences(of: "\n", with: "\\n")
        if body.readableBytes > 512 { text += "..." }
        return ": \"\(text)\""
    }
}

/// `GET /execution-parameters`: what the container asks for, used where the request is silent.
public struct ExecutionParameters: Sendable, Equatable {
    public var maxConcurrentTransforms: Int?
    public var batchStrategy: BatchStrategy?
    public var maxPayloadInMB: Int?

    public init(maxConcurrentTransforms: Int? = nil, batchStrategy: BatchStrategy? = nil, maxPayloadInMB: Int? = nil) {
        self.maxConcurrentTransforms = maxConcurrentTransforms
        self.batchStrategy = batchStrategy
        self.maxPayloadInMB = maxPayloadInMB
    }

    /// Parses an answer; nil when it is not a JSON object (treated as no answer, as SageMaker does).
    /// Numbers are held to the request's own ranges, so a container cannot ask for more than a
    /// request could.
    public static func parse(_ json: Data) throws(RuntimeError) -> ExecutionParameters? {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else { return nil }
        let answer = String(decoding: json.prefix(300), as: UTF8.self)
        func integer(_ key: String, max: Int) throws(RuntimeError) -> Int? {
            guard let value = object[key] else { return nil }
            guard let number = value as? NSNumber, number.doubleValue.rounded() == number.doubleValue,
                number.doubleValue >= 0, number.doubleValue <= Double(max)
            else {
                throw RuntimeError(
                    .badExecutionParameters,
                    "The model server's /execution-parameters answered \(answer): \(key) must be a whole number "
                        + "from 0 to \(max), as in a request. Fix the container's answer, or set \(key) in the request."
                )
            }
            return number.intValue
        }
        let parameters = ExecutionParameters(
            maxConcurrentTransforms: try integer(
                "MaxConcurrentTransforms",
                max: TransformJobConfiguration.maxConcurrentTransforms
            ),
            batchStrategy: (object["BatchStrategy"] as? String).flatMap(BatchStrategy.init(anySpelling:)),
            maxPayloadInMB: try integer("MaxPayloadInMB", max: 100)
        )
        if let concurrency = parameters.maxConcurrentTransforms, let payload = parameters.maxPayloadInMB {
            do {
                try TransformJobConfiguration.checkConcurrencyTimesPayload(
                    concurrency,
                    payload,
                    source: "The model server's /execution-parameters answered \(answer): "
                )
            } catch {
                throw RuntimeError(.badExecutionParameters, error.message + " Or set them in the request.")
            }
        }
        return parameters
    }
}

/// The parameters a job runs with, resolved as SageMaker does: the request, else the
/// container's `/execution-parameters`, else the defaults (1, MultiRecord, 6 MB).
public struct ResolvedParameters: Sendable, Equatable, CustomStringConvertible {
    public var maxConcurrentTransforms: Int
    public var batchStrategy: BatchStrategy
    public var maxPayloadInMB: Int

    public init(job: TransformJobConfiguration, container: ExecutionParameters?) {
        maxConcurrentTransforms =
            job.requestedMaxConcurrentTransforms ?? container?.maxConcurrentTransforms.flatMap { $0 > 0 ? $0 : nil }
            ?? 1
        batchStrategy = job.requestedBatchStrategy ?? container?.batchStrategy ?? .multiRecord
        maxPayloadInMB = job.requestedMaxPayloadInMB ?? container?.maxPayloadInMB ?? 6
    }

    /// The `[sagemaker logs]` line SageMaker writes after resolving them.
    public var description: String {
        "MaxConcurrentTransforms=\(maxConcurrentTransforms), MaxPayloadInMB=\(maxPayloadInMB), "
            + "BatchStrategy=\(batchStrategy.environmentValue)"
    }
}
