import AWSSigV4
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Signed S3 REST requests with retries. Knows addressing, signing, retry and error mapping;
/// the operations themselves (list, get, multipart) are in `S3Store`.
struct S3Client: Sendable {
    let configuration: S3Configuration
    let http: HTTPClient
    /// Attempts per request; backoff with full jitter between them (0.1 s doubling, capped at 5 s).
    var maxAttempts = 6

    /// One process-wide connection pool for S3, never shut down (like `HTTPClient.shared`), so
    /// stores can be made and dropped freely.
    static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
        configuration.decompression = .disabled
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(120))
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    struct Address {
        var url: String
        var host: String
        var path: String
    }

    /// Path-style for custom endpoints and for bucket names with dots (TLS wildcard certificates
    /// do not cover them); virtual-hosted for AWS.
    func address(bucket: String, key: String, query: [(name: String, value: String)]) -> Address {
        let encodedKey = SigV4Signer.uriEncode(key, keepSlash: true)
        let scheme: String
        let host: String
        var path: String
        if let endpoint = configuration.endpoint {
            scheme = endpoint.scheme ?? "http"
            host = endpoint.host! + (endpoint.port.map { ":\($0)" } ?? "")
            let base = endpoint.path.hasSuffix("/") ? String(endpoint.path.dropLast()) : endpoint.path
            path = base + "/" + SigV4Signer.uriEncode(bucket, keepSlash: false) + (key.isEmpty ? "" : "/" + encodedKey)
        } else if bucket.contains(".") {
            scheme = "https"
            host = "s3.\(configuration.region).amazonaws.com"
            path = "/" + bucket + (key.isEmpty ? "" : "/" + encodedKey)
        } else {
            scheme = "https"
            host = "\(bucket).s3.\(configuration.region).amazonaws.com"
            path = "/" + encodedKey
        }
        if path.isEmpty { path = "/" }
        let queryString = query.map {
            SigV4Signer.uriEncode($0.name, keepSlash: false) + "=" + SigV4Signer.uriEncode($0.value, keepSlash: false)
        }.joined(separator: "&")
        return Address(
            url: "\(scheme)://\(host)\(path)" + (queryString.isEmpty ? "" : "?" + queryString),
            host: host,
            path: path
        )
    }

    var endpointDescription: String {
        configuration.endpoint.map { "the S3 endpoint \($0.absoluteString)" } ?? "AWS S3 (\(configuration.region))"
    }

    func signedRequest(
        _ method: HTTPMethod,
        bucket: String,
        key: String,
        query: [(name: String, value: String)],
        headers: [(name: String, value: String)],
        body: ByteBuffer?
    ) -> HTTPClientRequest {
        let address = address(bucket: bucket, key: key, query: query)
        var request = HTTPClientRequest(url: address.url)
        request.method = method
        var signed: [(name: String, value: String)] = [("host", address.host)] + headers
        if let body { signed.append(("content-length", String(body.readableBytes))) }
        // Over TLS the payload is protected in transit, so skip hashing it; over plain HTTP sign it.
        let payloadHash: String
        if let body, body.readableBytes > 0 {
            payloadHash =
                address.url.hasPrefix("https:")
                ? SigV4Signer.unsignedPayload : body.withUnsafeReadableBytes { SigV4Signer.sha256Hex($0) }
        } else {
            payloadHash = SigV4Signer.emptyPayloadHash
        }
        let signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: "s3")
        let sigV4 = SigV4Request(method: method.rawValue, path: address.path, query: query, headers: signed)
        signed += signer.signingHeaders(for: sigV4, payloadHash: payloadHash, date: Date())
        for header in signed { request.headers.add(name: header.name, value: header.value) }
        if let body { request.body = .bytes(body) }
        return request
    }

    /// Sends a request whose answer is small, retrying what may succeed on a second try.
    /// `errorIn200`: CompleteMultipartUpload may answer 200 and still fail, with `<Error>` as body.
    func send(
        _ method: HTTPMethod,
        bucket: String,
        key: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [],
        body: ByteBuffer? = nil,
        timeout: TimeAmount = .minutes(5),
        errorIn200: Bool = false,
        operation: String,
        subject: ObjectURI? = nil
    ) async throws -> Response {
        let uri = subject ?? ObjectURI.s3(bucket: bucket, key: key)
        return try await withRetries(uri: uri, operation: operation) {
            let request = signedRequest(method, bucket: bucket, key: key, query: query, headers: headers, body: body)
            let response = try await http.execute(request, timeout: timeout)
            let answer = Response(
                status: Int(response.status.code),
                headers: response.headers,
                body: try await response.body.collect(upTo: 64 << 20)
            )
            var status = answer.status
            if errorIn200, status == 200, let root = XMLNode.parse(answer.body.readableBytesView), root.name == "Error"
            {
                status = 500
            }
            if (200..<300).contains(status) { return .done(answer) }
            return try S3Failure(status: status, headers: answer.headers, body: answer.body).outcome(
                uri: uri,
                operation: operation,
                client: self
            )
        }
    }

    /// Starts a GET whose body the caller streams. Retries until the response head arrives.
    func open(
        bucket: String,
        key: String,
        headers: [(name: String, value: String)],
        operation: String
    ) async throws -> HTTPClientResponse {
        let uri = ObjectURI.s3(bucket: bucket, key: key)
        return try await withRetries(uri: uri, operation: operation) {
            let request = signedRequest(.GET, bucket: bucket, key: key, query: [], headers: headers, body: nil)
            let response = try await http.execute(request, deadline: .distantFuture)
            if (200..<300).contains(Int(response.status.code)) { return .done(response) }
            let body = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            return try S3Failure(status: Int(response.status.code), headers: response.headers, body: body).outcome(
                uri: uri,
                operation: operation,
                client: self
            )
        }
    }

    enum Attempt<Value> {
        case done(Value)
        case retryable(StorageError)
    }

    /// Runs `attempt` up to `maxAttempts` times with backoff. It returns what to retry and throws
    /// what to give up on; any other error (connection refused, reset, timeout) is retried too.
    private func withRetries<Value>(
        uri: ObjectURI,
        operation: String,
        _ attempt: () async throws -> Attempt<Value>
    ) async throws -> Value {
        for number in 1...maxAttempts {
            let failure: StorageError
            do {
                switch try await attempt() {
                case .done(let value): return value
                case .retryable(let error): failure = error
                }
            } catch let error as StorageError {
                throw error
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                failure = StorageError(
                    .service,
                    "\(uri): \(operation) could not reach \(endpointDescription): \(error)"
                )
            }
            if number == maxAttempts { throw failure }
            try await Self.backoff(attempt: number)
        }
        preconditionFailure("maxAttempts must be at least 1")
    }

    static func backoff(attempt: Int) async throws {
        let ceiling = min(5.0, 0.1 * pow(2.0, Double(attempt - 1)))
        try await Task.sleep(for: .seconds(Double.random(in: 0...ceiling)))
    }
}

/// An S3 error answer turned into a message a person can act on.
struct S3Failure {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer

    static func code(in body: ByteBuffer) -> String? {
        XMLNode.parse(body.readableBytesView).flatMap { $0.name == "Error" ? $0["Code"] : nil }
    }

    static func isRetryable(status: Int, code: String?) -> Bool {
        if status >= 500 || status == 429 { return true }
        return ["SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling"].contains(code ?? "")
    }

    /// Retryable failures are returned for another attempt; the rest are thrown.
    func outcome<Value>(
        uri: ObjectURI,
        operation: String,
        client: S3Client
    ) throws(StorageError) -> S3Client.Attempt<Value> {
        let failure = error(uri: uri, operation: operation, client: client)
        guard Self.isRetryable(status: status, code: Self.code(in: body)) else { throw failure }
        return .retryable(failure)
    }

    func error(uri: ObjectURI, operation: String, client: S3Client) -> StorageError {
        let error = XMLNode.parse(body.readableBytesView).flatMap { $0.name == "Error" ? $0 : nil }
        let code = error?["Code"] ?? Self.codeForBodilessStatus[status] ?? "HTTP \(status)"
        let serverMessage = error?["Message"].map { " (\($0))" } ?? ""
        let configuration = client.configuration
        let where_ = client.endpointDescription
        let bucket: String
        if case .s3(let name, _) = uri { bucket = name } else { bucket = "" }
        switch code {
        case "NoSuchBucket":
            return StorageError(
                .notFound,
                "\(uri): the bucket '\(bucket)' does not exist at \(where_) (NoSuchBucket). Check the bucket name and the endpoint."
            )
        case "PreconditionFailed":
            return StorageError(
                .readFailed,
                "\(uri) changed while it was being read (its ETag no longer matches). Run the job again."
            )
        case "NoSuchKey":
            return StorageError(.notFound, "\(uri) does not exist (NoSuchKey).")
        case "AccessDenied":
            return StorageError(
                .accessDenied,
                "\(uri): access denied for \(operation) (AccessDenied) to access key \(configuration.credentials.accessKeyId) from \(configuration.credentialSource). Grant it access or use other credentials."
            )
        case "InvalidAccessKeyId":
            return StorageError(
                .credentials,
                "\(uri): \(where_) does not know the access key \(configuration.credentials.accessKeyId) (InvalidAccessKeyId). Check the credentials from \(configuration.credentialSource)."
            )
        case "SignatureDoesNotMatch":
            return StorageError(
                .credentials,
                "\(uri): the secret access key does not match access key \(configuration.credentials.accessKeyId) (SignatureDoesNotMatch). Check the secret from \(configuration.credentialSource)."
            )
        case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
            let actual = headers.first(name: "x-amz-bucket-region") ?? error?["Region"]
            let hint =
                actual.map { "is in region \($0), not \(configuration.region). Use --region \($0) or set AWS_REGION." }
                ?? "is not in region \(configuration.region). Set --region or AWS_REGION to the bucket's region."
            return StorageError(.service, "\(uri): the bucket '\(bucket)' \(hint) (\(code))")
        default:
            return StorageError(
                status >= 500 ? .service : .readFailed,
                "\(uri): \(operation) failed at \(where_): \(code)\(serverMessage)."
            )
        }
    }

    /// HEAD answers carry no body, so only the status and headers tell what went wrong.
    static let codeForBodilessStatus: [Int: String] = [
        301: "PermanentRedirect", 403: "AccessDenied", 404: "NoSuchKey", 412: "PreconditionFailed",
    ]
}
