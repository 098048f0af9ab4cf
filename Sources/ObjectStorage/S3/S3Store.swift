import AWSSigV4
import AsyncHTTPClient
public import ByteStreams
public import Foundation
public import NIOCore
import NIOHTTP1
import Synchronization

/// S3 (or any S3-compatible service) behind the `ObjectStore` protocol. The configuration is
/// resolved on first use, so a job that touches no `s3://` location needs no credentials.
public final class S3Store: ObjectStore {
    private let options: S3Options
    private let environment: [String: String]
    private let resolved = Mutex<S3Client?>(nil)

    public init(options: S3Options = S3Options(), environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.options = options
        self.environment = environment
    }

    func client() throws(StorageError) -> S3Client {
        if let client = resolved.withLock({ $0 }) { return client }
        let client = S3Client(
            configuration: try S3Configuration.resolve(options, environment: environment),
            http: S3Client.sharedHTTPClient
        )
        resolved.withLock { $0 = client }
        return client
    }

    static func location(_ uri: ObjectURI) throws(StorageError) -> (bucket: String, key: String) {
        guard case .s3(let bucket, let key) = uri else {
            throw StorageError(.notSupported, "\(uri) is not an s3:// URI.")
        }
        return (bucket, key)
    }

    /// ListObjectsV2, every page. Keys ending in `/` are folder markers, not data, and are skipped.
    public func list(prefix: ObjectURI) async throws -> [ListedObject] {
        let (bucket, prefixKey) = try Self.location(prefix)
        let client = try client()
        var found: [ListedObject] = []
        var token: String?
        repeat {
            var query: [(name: String, value: String)] = [("list-type", "2"), ("prefix", prefixKey)]
            if let token { query.append(("continuation-token", token)) }
            let response = try await client.send(
                .GET,
                bucket: bucket,
                key: "",
                query: query,
                operation: "ListObjectsV2",
                subject: prefix
            )
            guard let result = XMLNode.parse(response.body.readableBytesView), result.name == "ListBucketResult" else {
                throw StorageError(
                    .service,
                    "\(prefix): ListObjectsV2 answered something that is not a ListBucketResult."
                )
            }
            for entry in result.children("Contents") {
                guard let key = entry["Key"], !key.hasSuffix("/") else { continue }
                found.append(
                    ListedObject(
                        uri: .s3(bucket: bucket, key: key),
                        relativeKey: outputRelativeKey(of: key, listedUnder: prefixKey),
                        size: entry["Size"].flatMap { Int64($0) }
                    )
                )
            }
            token = result["IsTruncated"] == "true" ? result["NextContinuationToken"] : nil
        } while token != nil
        return found.sorted { $0.uri.description.utf8.lexicographicallyPrecedes($1.uri.description.utf8) }
    }

    public func info(_ uri: ObjectURI) async throws -> ListedObject {
        let (bucket, key) = try Self.location(uri)
        let response = try await client().send(.HEAD, bucket: bucket, key: key, operation: "HeadObject")
        return ListedObject(
            uri: uri,
            relativeKey: String(key.split(separator: "/").last ?? ""),
            size: response.headers.first(name: "content-length").flatMap { Int64($0) },
            etag: response.headers.first(name: "etag")
        )
    }

    public func openReader(_ uri: ObjectURI) async throws -> any ByteStream {
        let (bucket, key) = try Self.location(uri)
        return S3ObjectReader(client: try client(), bucket: bucket, key: key)
    }

    public func openReader(_ uri: ObjectURI, from offset: Int64) async throws -> any ByteStream {
        let (bucket, key) = try Self.location(uri)
        return S3ObjectReader(client: try client(), bucket: bucket, key: key, from: offset)
    }

    public func delete(_ uri: ObjectURI) async throws {
        let (bucket, key) = try Self.location(uri)
        _ = try await client().send(.DELETE, bucket: bucket, key: key, operation: "DeleteObject")
    }

    public func openComposer(_ destination: ObjectURI) async throws -> any ObjectComposer {
        let (bucket, key) = try Self.location(destination)
        return S3Composer(store: self, upload: S3PartUpload(client: try client(), bucket: bucket, key: key))
    }

    public func readAll(_ uri: ObjectURI, upTo limit: Int) async throws -> ByteBuffer {
        let reader = try await openReader(uri)
        var stream = reader
        var buffer = ByteBuffer()
        while try await stream.read(into: &buffer, maxBytes: 1 << 20) > 0 {
            if buffer.readableBytes > limit { throw StorageError(.tooLarge, "\(uri) is larger than \(limit) bytes.") }
        }
        return buffer
    }

    public func openWriter(_ uri: ObjectURI) async throws -> any ObjectWriter {
        let (bucket, key) = try Self.location(uri)
        return S3ObjectWriter(client: try client(), bucket: bucket, key: key)
    }
}

/// Streams an object with GET; if the connection drops, asks for the rest (`Range: bytes=N-`,
/// `If-Match` the first answer's ETag so a changed object is noticed rather than spliced).
final class S3ObjectReader: ByteStream {
    private let client: S3Client
    private let bucket: String
    private let key: String
    private var received: Int64 = 0
    private var length: Int64?
    private var etag: String?
    private var body: HTTPClientResponse.Body.AsyncIterator?
    private var pending = ByteBuffer()
    private var resumes = 0
    static let maxResumes = 10

    init(client: S3Client, bucket: String, key: String, from offset: Int64 = 0) {
        self.client = client
        self.bucket = bucket
        self.key = key
        self.received = offset
    }

    private var uri: ObjectURI { .s3(bucket: bucket, key: key) }

    func read(into buffer: inout ByteBuffer, maxBytes: Int) async throws -> Int {
        while pending.readableBytes == 0 {
            if let length, received >= length { return 0 }
            if body == nil { try await open() }
            do {
                var iterator = body!
                let chunk = try await iterator.next()
                body = iterator
                guard let chunk else {
                    body = nil
                    if length == nil { return 0 }
                    try await resume(after: "the connection ended early")
                    continue
                }
                pending = chunk
            } catch let error as StorageError {
                throw error
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                body = nil
                try await resume(after: "\(error)")
            }
        }
        var slice = pending.readSlice(length: min(maxBytes, pending.readableBytes))!
        let count = buffer.writeBuffer(&slice)
        received += Int64(count)
        return count
    }

    private func resume(after problem: String) async throws {
        resumes += 1
        guard resumes <= Self.maxResumes else {
            throw StorageError(
                .readFailed,
                "\(uri): reading failed at byte \(received) after \(resumes - 1) resumed attempts: \(problem)."
            )
        }
        try await S3Client.backoff(attempt: resumes)
    }

    private func open() async throws {
        var headers: [(name: String, value: String)] = []
        // The first request asks for the whole object: a Range on an empty object would be refused.
        if received > 0 { headers.append(("range", "bytes=\(received)-")) }
        if let etag { headers.append(("if-match", etag)) }
        let response = try await client.open(bucket: bucket, key: key, headers: headers, operation: "GetObject")
        if length == nil {
            etag = response.headers.first(name: "etag")
            // A first request from an offset (a unit's range) is answered with the bytes after it.
            length = response.headers.first(name: "content-length").flatMap { Int64($0) }.map { received + $0 }
        }
        body = response.body.makeAsyncIterator()
    }
}

/// Writes an object as a multipart upload, parts sent while later bytes are still being written
/// (up to two in flight), completed only by `commit`; `abort` deletes the upload. An object that
/// ends smaller than one part is sent with a single PUT at commit, so nothing is ever visible early.
final class S3ObjectWriter: ObjectWriter {
    private let client: S3Client
    private let bucket: String
    private let key: String
    private var buffer = ByteBuffer()
    private var uploadId: String?
    private var inFlight: [Task<String, any Error>] = []
    private var completedETags: [String] = []
    private var bytesSent = 0
    static let minimumPartSize = 8 << 20
    static let maxPartsInFlight = 2

    init(client: S3Client, bucket: String, key: String) {
        self.client = client
        self.bucket = bucket
        self.key = key
    }

    /// Parts grow with the object so that even a huge one stays under S3's 10,000 parts.
    private var partSize: Int { max(Self.minimumPartSize, bytesSent / 1000) }

    func write(_ bytes: ByteBuffer) async throws {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
        if buffer.readableBytes >= partSize { try await sendPart() }
    }

    private func sendPart() async throws {
        if uploadId == nil { uploadId = try await client.createMultipartUpload(bucket: bucket, key: key) }
        if inFlight.count >= Self.maxPartsInFlight {
            completedETags.append(try await inFlight.removeFirst().value)
        }
        let part = buffer
        buffer = ByteBuffer()
        let number = completedETags.count + inFlight.count + 1
        bytesSent += part.readableBytes
        let (client, bucket, key, uploadId) = (client, bucket, key, uploadId!)
        inFlight.append(
            Task { try await client.uploadPart(part, number: number, uploadId: uploadId, bucket: bucket, key: key) }
        )
    }

    func commit() async throws {
        guard uploadId != nil else {
            _ = try await client.send(.PUT, bucket: bucket, key: key, body: buffer, operation: "PutObject")
            return
        }
        if buffer.readableBytes > 0 { try await sendPart() }
        for task in inFlight { completedETags.append(try await task.value) }
        inFlight = []
        try await client.completeMultipartUpload(uploadId!, etags: completedETags, bucket: bucket, key: key)
        uploadId = nil
    }

    func abort() async {
        for task in inFlight { task.cancel() }
        let pending = inFlight
        inFlight = []
        guard let uploadId else { return }
        self.uploadId = nil
        let (client, bucket, key) = (client, bucket, key)
        // Runs detached: abort is most needed when the job's task has been cancelled.
        await Task.detached {
            for task in pending { _ = try? await task.value }
            await client.abortMultipartUpload(uploadId, bucket: bucket, key: key)
        }.value
    }
}

/// A multipart upload whose parts are copied server-side (UploadPartCopy) wherever they, or what
/// is left of them, are at least S3's 5 MiB part minimum; smaller pieces are gathered here into
/// parts of their own. A part is placed once the next one is appended (or at commit), since
/// only the last part of an upload may be small. Only CompleteMultipartUpload makes it visible.
struct S3Composer: ObjectComposer {
    let store: S3Store
    var upload: S3PartUpload
    private var held: (uri: ObjectURI, size: Int64)?
    private var pending = ByteBuffer()
    private var summary = ComposeSummary()

    init(store: S3Store, upload: S3PartUpload) {
        self.store = store
        self.upload = upload
    }

    mutating func append(_ part: ObjectURI) async throws {
        let size = try await store.info(part).size ?? 0
        if let held { try await place(held.uri, size: held.size, isLast: false) }
        held = (part, size)
        summary.parts += 1
        summary.bytes += size
    }

    private mutating func place(_ part: ObjectURI, size: Int64, isLast: Bool) async throws {
        let (bucket, key) = try S3Store.location(part)
        var offset: Int64 = 0
        if pending.readableBytes > 0 {
            let wanted = min(size, Int64(S3PartUpload.minimumPartSize - pending.readableBytes))
            var bytes = try await upload.client.readRange(bucket: bucket, key: key, 0..<wanted)
            pending.writeBuffer(&bytes)
            offset = wanted
            if pending.readableBytes >= S3PartUpload.minimumPartSize { try await flush() }
        }
        let remaining = size - offset
        guard remaining > 0 else { return }
        if remaining >= S3PartUpload.minimumPartSize || (isLast && pending.readableBytes == 0) {
            try await upload.copy(bucket: bucket, key: key, range: offset..<size)
            summary.copiedParts += 1
        } else {
            var bytes = try await upload.client.readRange(bucket: bucket, key: key, offset..<size)
            pending.writeBuffer(&bytes)
        }
    }

    private mutating func flush() async throws {
        try await upload.upload(pending)
        summary.streamedBytes += Int64(pending.readableBytes)
        pending.clear()
    }

    mutating func commit() async throws -> ComposeSummary {
        if let held {
            try await place(held.uri, size: held.size, isLast: true)
            self.held = nil
        }
        if upload.partCount == 0 {
            // Nothing was copied: one PUT of what was gathered (an empty object included).
            await upload.abort()
            _ = try await upload.client.send(
                .PUT,
                bucket: upload.bucket,
                key: upload.key,
                body: pending,
                operation: "PutObject"
            )
            summary.streamedBytes += Int64(pending.readableBytes)
            return summary
        }
        if pending.readableBytes > 0 { try await flush() }
        try await upload.complete()
        return summary
    }

    mutating func abort() async { await upload.abort() }
}

/// A multipart upload built part by part: parts uploaded from memory or copied server-side.
struct S3PartUpload {
    let client: S3Client
    let bucket: String
    let key: String
    private var uploadId: String?
    private var etags: [String] = []
    /// S3's smallest part, the last one excepted.
    static let minimumPartSize = 5 << 20

    init(client: S3Client, bucket: String, key: String) {
        self.client = client
        self.bucket = bucket
        self.key = key
    }

    var partCount: Int { etags.count }

    private mutating func start() async throws -> String {
        if let uploadId { return uploadId }
        let id = try await client.createMultipartUpload(bucket: bucket, key: key)
        uploadId = id
        return id
    }

    mutating func upload(_ bytes: ByteBuffer) async throws {
        let id = try await start()
        etags.append(
            try await client.uploadPart(bytes, number: etags.count + 1, uploadId: id, bucket: bucket, key: key)
        )
    }

    mutating func copy(bucket sourceBucket: String, key sourceKey: String, range: Range<Int64>) async throws {
        let id = try await start()
        let number = etags.count + 1
        let source = "/" + sourceBucket + "/" + SigV4Signer.uriEncode(sourceKey, keepSlash: true)
        let response = try await client.send(
            .PUT,
            bucket: bucket,
            key: key,
            query: [("partNumber", String(number)), ("uploadId", id)],
            headers: [
                ("x-amz-copy-source", source),
                ("x-amz-copy-source-range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"),
            ],
            errorIn200: true,
            operation: "UploadPartCopy \(number)"
        )
        guard let etag = XMLNode.parse(response.body.readableBytesView)?["ETag"] else {
            throw StorageError(.writeFailed, "s3://\(bucket)/\(key): UploadPartCopy \(number) answered no ETag.")
        }
        etags.append(etag)
    }

    mutating func complete() async throws {
        guard let uploadId else { return }
        try await client.completeMultipartUpload(uploadId, etags: etags, bucket: bucket, key: key)
        self.uploadId = nil
    }

    func abort() async {
        guard let uploadId else { return }
        let (client, bucket, key) = (client, bucket, key)
        await Task.detached { await client.abortMultipartUpload(uploadId, bucket: bucket, key: key) }.value
    }
}

/// The multipart upload requests, shared by the streaming writer and the composer.
extension S3Client {
    func createMultipartUpload(bucket: String, key: String) async throws -> String {
        let response = try await send(
            .POST,
            bucket: bucket,
            key: key,
            query: [("uploads", "")],
            operation: "CreateMultipartUpload"
        )
        guard let id = XMLNode.parse(response.body.readableBytesView)?["UploadId"] else {
            throw StorageError(.writeFailed, "s3://\(bucket)/\(key): CreateMultipartUpload answered no UploadId.")
        }
        return id
    }

    /// Returns the part's ETag.
    func uploadPart(
        _ bytes: ByteBuffer,
        number: Int,
        uploadId: String,
        bucket: String,
        key: String
    )
        async throws -> String
    {
        let response = try await send(
            .PUT,
            bucket: bucket,
            key: key,
            query: [("partNumber", String(number)), ("uploadId", uploadId)],
            body: bytes,
            operation: "UploadPart \(number)"
        )
        guard let etag = response.headers.first(name: "etag") else {
            throw StorageError(.writeFailed, "s3://\(bucket)/\(key): UploadPart \(number) answered no ETag.")
        }
        return etag
    }

    func completeMultipartUpload(_ uploadId: String, etags: [String], bucket: String, key: String) async throws {
        let parts = etags.enumerated().map {
            "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\($0.element.xmlEscaped)</ETag></Part>"
        }.joined()
        _ = try await send(
            .POST,
            bucket: bucket,
            key: key,
            query: [("uploadId", uploadId)],
            headers: [("content-type", "application/xml")],
            body: ByteBuffer(string: "<CompleteMultipartUpload>\(parts)</CompleteMultipartUpload>"),
            errorIn200: true,
            operation: "CompleteMultipartUpload"
        )
    }

    func abortMultipartUpload(_ uploadId: String, bucket: String, key: String) async {
        _ = try? await send(
            .DELETE,
            bucket: bucket,
            key: key,
            query: [("uploadId", uploadId)],
            operation: "AbortMultipartUpload"
        )
    }

    /// A small byte range of an object, read whole.
    func readRange(bucket: String, key: String, _ range: Range<Int64>) async throws -> ByteBuffer {
        guard !range.isEmpty else { return ByteBuffer() }
        return try await send(
            .GET,
            bucket: bucket,
            key: key,
            headers: [("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")],
            operation: "GetObject (range)"
        ).body
    }
}
