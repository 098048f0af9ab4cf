public import AWSSigV4
import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1

/// A Swift client of `batchform serve`'s API: AWS JSON 1.1 calls, SigV4-signed when there are
/// keys, as boto3 makes them. Used by the CLI's `jobs` verbs and by tests.
public struct BatchformClient: Sendable {
    public let endpoint: String
    public let credentials: AWSCredentials?
    public let region: String

    public init(endpoint: String, credentials: AWSCredentials?, region: String = "us-east-1") {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.credentials = credentials
        self.region = region
    }

    public func call<Answer: Decodable>(
        _ operation: String,
        _ body: some Encodable,
        answer: Answer.Type
    ) async throws(BatchformClientError) -> Answer {
        let data = try await call(operation, body)
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw BatchformClientError(
                .unexpectedAnswer,
                "\(operation) answered something else than expected: \(error)"
            )
        }
    }

    /// The answer's JSON body.
    public func call(_ operation: String, _ body: some Encodable) async throws(BatchformClientError) -> Data {
        let payload: Data
        do {
            payload = try JSONEncoder().encode(body)
        } catch {
            throw BatchformClientError(.unexpectedAnswer, "Cannot encode the \(operation) request: \(error)")
        }
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "SageMaker.\(operation)")]
        return try await send("POST", path: "/", headers: headers, body: payload)
    }

    /// A plain GET, such as `/jobs/NAME/logs`.
    public func get(_ path: String) async throws(BatchformClientError) -> String {
        String(decoding: try await send("GET", path: path, headers: [], body: Data()), as: UTF8.self)
    }

    private func send(
        _ method: String,
        path: String,
        headers: [(String, String)],
        body: Data
    ) async throws(BatchformClientError) -> Data {
        guard let url = URL(string: endpoint + path), let host = url.host else {
            throw BatchformClientError(
                .invalidEndpoint,
                "\(endpoint) is not a server URL such as http://127.0.0.1:8070."
            )
        }
        let authority = url.port.map { "\(host):\($0)" } ?? host
        let unsigned = [(name: "host", value: authority)] + headers.map { (name: $0.0, value: $0.1) }
        var signing: [(name: String, value: String)] = []
        if let credentials {
            let signer = SigV4Signer(credentials: credentials, region: region, service: "sagemaker")
            signing = signer.signingHeaders(
                for: SigV4Request(method: method, path: path, headers: unsigned),
                payloadHash: SigV4Signer.sha256Hex(body),
                date: Date()
            )
        }
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .init(rawValue: method)
        for header in unsigned + signing { request.headers.add(name: header.name, value: header.value) }
        if !body.isEmpty { request.body = .bytes(ByteBuffer(bytes: body)) }
        let status: UInt
        let answer: Data
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            status = response.status.code
            answer = Data(try await response.body.collect(upTo: 256 << 20).readableBytesView)
        } catch {
            throw BatchformClientError(
                .unreachable,
                "Cannot reach a Batchform server at \(endpoint): \(error). Is `batchform serve` running?",
                cause: error
            )
        }
        guard (200..<300).contains(status) else {
            let error = (try? JSONSerialization.jsonObject(with: answer)) as? [String: Any]
            let type = error?["__type"] as? String ?? "HTTP \(status)"
            let message = error?["message"] as? String ?? String(decoding: answer, as: UTF8.self)
            let code: BatchformClientError.Code =
                credentials == nil && type == "MissingAuthenticationTokenException" ? .needsCredentials : .refused
            throw BatchformClientError(code, message, errorType: type, status: Int(status))
        }
        return answer
    }
}

/// Why a call did not get an answer: a stable code, the server's error type and message where it
/// answered, and the underlying error where there was one.
public struct BatchformClientError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalidEndpoint, unreachable, refused, needsCredentials, unexpectedAnswer
    }

    public var code: Code
    public var message: String
    /// The AWS error type the server answered (`ValidationException`), or `HTTP <status>`.
    public var errorType: String?
    public var status: Int?
    public var cause: (any Error & Sendable)?

    public init(
        _ code: Code,
        _ message: String,
        errorType: String? = nil,
        status: Int? = nil,
        cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.errorType = errorType
        self.status = status
        self.cause = cause
    }

    public var description: String { errorType.map { "\($0): \(message)" } ?? message }
}
