import ByteStreams
import Foundation
import NIOCore
import ObjectStorage
import Testing

/// The S3 `ObjectStore` against a real S3-compatible server (moto) on loopback.
@Suite(.enabled(if: RequiredPart.enabled(S3TestServer.available), S3TestServer.reason))
struct S3StoreTests {
    let server = S3TestServer.shared

    func store(faulty: Bool = false, environment extra: [String: String] = [:]) -> S3Store {
        S3Store(environment: server.environment(faulty: faulty).merging(extra) { $1 })
    }

    func put(_ store: S3Store, _ uri: ObjectURI, _ bytes: ByteBuffer, chunk: Int = 1 << 20) async throws {
        var writer = try await store.openWriter(uri)
        var rest = bytes
        while let piece = rest.readSlice(length: min(chunk, rest.readableBytes)), piece.readableBytes > 0 {
            try await writer.write(piece)
        }
        try await writer.commit()
    }

    func get(_ store: S3Store, _ uri: ObjectURI, readSize: Int = 64 << 10) async throws -> ByteBuffer {
        var reader = try await store.openReader(uri)
        var buffer = ByteBuffer()
        while try await reader.read(into: &buffer, maxBytes: readSize) > 0 {}
        return buffer
    }

    static func pattern(_ count: Int, seed: UInt64) -> ByteBuffer {
        var state = seed
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        for _ in 0..<(count + 7) / 8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            buffer.writeInteger(state)
        }
        return buffer.getSlice(at: 0, length: count)!
    }

    @Test func listsMoreThanOnePageWithRawPrefixesAndSkipsFolderMarkers() async throws {
        let bucket = server.makeBucket("listing")
        let store = store()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<1105 {
                if index >= 16 { try await group.next() }
                group.addTask {
                    try await put(
                        store,
                        .s3(bucket: bucket, key: "in/day=1/part-\(index).csv"),
                        ByteBuffer(string: "\(index)\n")
                    )
                }
            }
            try await group.waitForAll()
        }
        try await put(store, .s3(bucket: bucket, key: "in/day=1/"), ByteBuffer())  // a console-made folder marker
        try await put(store, .s3(bucket: bucket, key: "in/day=10/part-0.csv"), ByteBuffer(string: "x\n"))
        try await put(store, .s3(bucket: bucket, key: "other/part-0.csv"), ByteBuffer(string: "y\n"))

        let all = try await store.list(prefix: .s3(bucket: bucket, key: "in/"))
        #expect(all.count == 1106)
        #expect(all.map(\.relativeKey) == all.map(\.relativeKey).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(!all.contains { $0.relativeKey.hasSuffix("/") })
        #expect(all.first?.relativeKey == "day=1/part-0.csv" && all.first?.size == 2)
        // A raw string prefix, as SageMaker means it: "in/day=1" also matches "in/day=10/...".
        let raw = try await store.list(prefix: .s3(bucket: bucket, key: "in/day=1"))
        #expect(raw.count == 1106 && raw.contains { $0.relativeKey == "day=10/part-0.csv" })
        let folder = try await store.list(prefix: .s3(bucket: bucket, key: "in/day=1/part-110"))
        #expect(
            folder.map(\.relativeKey) == [
                "part-110.csv", "part-1100.csv", "part-1101.csv", "part-1102.csv", "part-1103.csv", "part-1104.csv",
            ]
        )
    }

    @Test func largeOutputsAreMultipartInSeveralPartsAndInvisibleUntilCommitted() async throws {
        let bucket = server.makeBucket("multipart")
        let store = store()
        let uri = ObjectURI.s3(bucket: bucket, key: "out/big.csv.out")
        let data = Self.pattern(20 << 20, seed: 1)
        var writer = try await store.openWriter(uri)
        var rest = data
        while let piece = rest.readSlice(length: min(1 << 20, rest.readableBytes)), piece.readableBytes > 0 {
            try await writer.write(piece)
        }
        #expect(server.command("etag \(bucket) out/big.csv.out") == "none")
        #expect(server.command("uploads \(bucket)") == "1")
        try await writer.commit()
        // A multipart ETag ends with the number of parts: 8 MiB + 8 MiB + 4 MiB.
        #expect(server.command("etag \(bucket) out/big.csv.out").hasSuffix("-3\""))
        #expect(server.command("uploads \(bucket)") == "0")
        #expect(try await get(store, uri) == data)
        let info = try await store.info(uri)
        #expect(info.size == Int64(20 << 20) && info.etag?.hasSuffix("-3\"") == true)
    }

    @Test func abortLeavesNeitherObjectNorUpload() async throws {
        let bucket = server.makeBucket("abort")
        let store = store()
        var writer = try await store.openWriter(.s3(bucket: bucket, key: "out/failed.out"))
        try await writer.write(Self.pattern(9 << 20, seed: 2))
        #expect(server.command("uploads \(bucket)") == "1")
        await writer.abort()
        #expect(server.command("uploads \(bucket)") == "0")
        #expect(server.command("etag \(bucket) out/failed.out") == "none")
        var small = try await store.openWriter(.s3(bucket: bucket, key: "out/small.out"))
        try await small.write(ByteBuffer(string: "never committed"))
        await small.abort()
        #expect(server.command("etag \(bucket) out/small.out") == "none")
    }

    @Test func smallAndEmptyObjectsRoundTrip() async throws {
        let bucket = server.makeBucket("small")
        let store = store()
        let key = "dir with space/naïve+plus=equals&amp.txt"
        try await put(store, .s3(bucket: bucket, key: key), ByteBuffer(string: "hello\n"))
        try await put(store, .s3(bucket: bucket, key: "empty.out"), ByteBuffer())
        #expect(try await get(store, .s3(bucket: bucket, key: key)) == ByteBuffer(string: "hello\n"))
        #expect(try await get(store, .s3(bucket: bucket, key: "empty.out")).readableBytes == 0)
        #expect(
            try await store.list(prefix: .s3(bucket: bucket, key: "dir ")).map(\.relativeKey) == [
                "dir with space/naïve+plus=equals&amp.txt"
            ]
        )
    }

    /// Through the proxy every 4th request fails: 503 SlowDown, 500, a GET cut off half way, or a
    /// CompleteMultipartUpload answering 200 with an error. Everything must still arrive intact.
    @Test func retriesAndResumesThroughInjectedFaults() async throws {
        let bucket = server.makeBucket("faults")
        let faulty = store(faulty: true)
        let before = Int(server.command("faults")) ?? 0
        var objects: [(ObjectURI, ByteBuffer)] = []
        for index in 0..<6 {
            let uri = ObjectURI.s3(bucket: bucket, key: "data/object-\(index).bin")
            let data = Self.pattern(index % 2 == 0 ? 3 << 20 : 9 << 20, seed: UInt64(index))
            try await put(faulty, uri, data)
            objects.append((uri, data))
        }
        for (uri, data) in objects {
            #expect(try await get(faulty, uri, readSize: 256 << 10) == data, "\(uri)")
        }
        #expect(try await faulty.list(prefix: .s3(bucket: bucket, key: "data/")).count == 6)
        #expect((Int(server.command("faults")) ?? 0) - before >= 5)
        #expect(server.command("uploads \(bucket)") == "0")
    }

    @Test func badCredentialsAndMissingBucketsSayWhatIsWrong() async throws {
        let bucket = server.makeBucket("errors")
        let prefix = ObjectURI.s3(bucket: bucket, key: "in/")
        func message(_ store: S3Store, _ uri: ObjectURI) async -> String {
            do {
                _ = try await store.list(prefix: uri)
                return "no error"
            } catch { return "\(error)" }
        }
        let wrongSecret = await message(store(environment: ["AWS_SECRET_ACCESS_KEY": "not-the-secret"]), prefix)
        #expect(wrongSecret.contains("s3://\(bucket)/in/") && wrongSecret.contains("SignatureDoesNotMatch"))
        #expect(wrongSecret.contains("AWS_ACCESS_KEY_ID"))
        let unknownKey = await message(store(environment: ["AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000000"]), prefix)
        #expect(unknownKey.contains("does not know the access key AKIAUNKNOWNKEY000000 (InvalidAccessKeyId)"))
        let missing = await message(store(), .s3(bucket: "no-such-bucket-here", key: "in/"))
        #expect(
            missing.contains(
                "s3://no-such-bucket-here/in/: the bucket 'no-such-bucket-here' does not exist at the S3 endpoint"
            )
        )
        let noKey = await {
            do {
                _ = try await get(store(), .s3(bucket: bucket, key: "absent.csv"))
                return "no error"
            } catch { return "\(error)" }
        }()
        #expect(noKey == "s3://\(bucket)/absent.csv does not exist (NoSuchKey).")
    }

    @Test func credentialsComeFromAProfile() async throws {
        let bucket = server.makeBucket("profile")
        let home = NSTemporaryDirectory() + "batchform-home-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        try """
        [default]
        aws_access_key_id = AKIAWRONGDEFAULT0000
        aws_secret_access_key = wrong

        [batch]
        aws_access_key_id = \(server.accessKeyId)
        aws_secret_access_key = \(server.secretAccessKey)
        """.write(toFile: home + "/.aws/credentials", atomically: true, encoding: .utf8)
        try """
        [profile batch]
        region = us-east-1
        endpoint_url = \(server.endpoint)
        """.write(toFile: home + "/.aws/config", atomically: true, encoding: .utf8)
        let store = S3Store(environment: ["HOME": home, "AWS_PROFILE": "batch"])
        try await put(store, .s3(bucket: bucket, key: "from-profile.txt"), ByteBuffer(string: "ok"))
        #expect(try await store.list(prefix: .s3(bucket: bucket, key: "")).map(\.relativeKey) == ["from-profile.txt"])
        let missingProfile = S3Store(environment: ["HOME": home, "AWS_PROFILE": "nope"])
        await #expect(throws: StorageError.self) { try await missingProfile.list(prefix: .s3(bucket: bucket, key: "")) }
    }
}

extension S3StoreTests {
    /// Parts of every size become one object: big ones (and the tails of parts a small one was
    /// topped up from) copied server-side, small ones gathered here, nothing visible before it is whole.
    @Test func composeJoinsPartsOfEverySizeWithUploadPartCopy() async throws {
        let bucket = server.makeBucket("compose")
        let store = store()
        let sizes = [6 << 20, 1 << 20, 12 << 20, 100, 5 << 20, 3 << 20]
        var expected = ByteBuffer()
        var parts: [ObjectURI] = []
        for (index, size) in sizes.enumerated() {
            let bytes = Self.pattern(size, seed: UInt64(index + 1))
            expected.writeImmutableBuffer(bytes)
            let uri = ObjectURI.s3(bucket: bucket, key: "parts/p\(index)")
            try await put(store, uri, bytes)
            parts.append(uri)
        }
        let destination = ObjectURI.s3(bucket: bucket, key: "out/joined.out")
        let summary = try await store.compose(parts, into: destination)
        #expect(summary.bytes == Int64(expected.readableBytes))
        // p0 copied; p1 and 4 MB of p2 sent as one part, the rest of p2 copied; the small rest gathered.
        #expect(summary.copiedParts == 2, "\(summary)")
        #expect(summary.streamedBytes == Int64((13 << 20) + 100), "\(summary)")
        #expect(try await get(store, destination) == expected)
        #expect(server.command("uploads \(bucket)") == "0")
        // Small parts only: one PUT; no parts at all: an empty object.
        let small = try await store.compose(Array(parts[3...3]), into: .s3(bucket: bucket, key: "out/small.out"))
        #expect(small.copiedParts == 1 && small.bytes == 100)
        _ = try await store.compose([], into: .s3(bucket: bucket, key: "out/empty.out"))
        #expect(try await get(store, .s3(bucket: bucket, key: "out/empty.out")).readableBytes == 0)
    }
}
