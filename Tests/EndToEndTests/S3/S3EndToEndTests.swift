import Foundation
import NIOCore
import ObjectStorage
import Testing

/// `batchform transform` with `s3://` inputs, outputs and model data, against moto on loopback.
@Suite(.enabled(if: RequiredPart.enabled(S3TestServer.available), S3TestServer.reason))
struct S3EndToEndTests {
    /// Fails in CI when the part this suite needs is missing (it would otherwise skip).
    @Test func thePartThisSuiteNeedsIsHere() {
        #expect(S3TestServer.available, S3TestServer.reason)
    }

    let server = S3TestServer.shared
    let harness: Harness

    init() throws {
        harness = try Harness()
        // Sub-folders, a gzip file, and one input big enough that its output is a multipart upload.
        try harness.write(
            "in/day=1/a.csv",
            (0..<2000).map { "a,\($0),\(String(repeating: "x", count: $0 % 50))\n" }.joined()
        )
        try harness.write("in/day=2/b.csv", (0..<500).map { "b,\($0)\n" }.joined())
        var big: [UInt8] = []
        for index in 0..<110_000 { big += Array("big,\(index),\(String(repeating: "abcdefghij", count: 9))\n".utf8) }
        try harness.write("in/day=2/big.csv", big)
        try harness.write("in/day=3/c.csv.gz", Array(Data(base64Encoded: Self.gzippedLines)!))
    }

    /// "g,0\ng,1\n...g,99\n", gzip-compressed (made with Python's gzip module).
    static let gzippedLines =
        "H4sIAAAAAAACAx3RsZUEIQxEQX9jWeMAIaGINv8MjsJo79e8AX7fv8/vO+7m3bqLu32Xd3V37lrzQuWQDu0QD/WQD/0ABjGJ+b5NTGISk5jEJCYxiUUsYr3fIRaxiEUsYhGLCCKIIOKdgAgiiCCCCGITm9jEJvY7NLGJTWxiE0kkkUQSSeS7JyKJJJIooogiiiiiiHpXSxRRxCEOcYhDHOIQhzjvNYhDNNFEE0000UQTTfR7wP78AxhYYwbqAQAA"

    func upload(_ bucket: String, faulty: Bool = false) async throws {
        let store = S3Store(environment: server.environment(faulty: faulty))
        for file in harness.files(in: "in") {
            var writer = try await store.openWriter(.s3(bucket: bucket, key: "in/" + file))
            try await writer.write(
                ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: harness.root + "/in/" + file)))
            )
            try await writer.commit()
        }
    }

    /// Every object below `prefix`, relative to it, with its bytes.
    func download(_ bucket: String, _ prefix: String) async throws -> [String: [UInt8]] {
        let store = S3Store(environment: server.environment())
        var found: [String: [UInt8]] = [:]
        for object in try await store.list(prefix: .s3(bucket: bucket, key: prefix)) {
            found[object.relativeKey] = Array(try await store.readAll(object.uri, upTo: 1 << 30).readableBytesView)
        }
        return found
    }

    func local(_ folder: String) throws -> [String: [UInt8]] {
        var found: [String: [UInt8]] = [:]
        for file in harness.files(in: folder) {
            found[file] = Array(try Data(contentsOf: URL(fileURLWithPath: harness.root + "/\(folder)/" + file)))
        }
        return found
    }

    let jobFlags = [
        "--content-type", "text/csv", "--split-type", "Line", "--strategy", "MultiRecord", "--max-payload-mb", "1",
        "--max-concurrent", "4", "--instance-count", "2",
    ]

    func runLocalJob() async throws -> [String: [UInt8]] {
        let result = try await harness.run(["--input", "in/", "--output", "local-out/"] + jobFlags)
        #expect(result.status == 0, "\(result.stderr)")
        return try local("local-out")
    }

    @Test(arguments: [false, true])
    func s3InputAndOutputAreIdenticalToTheSameJobOnLocalFiles(throughFaults faulty: Bool) async throws {
        let bucket = server.makeBucket(faulty ? "e2e-faults" : "e2e")
        try await upload(bucket)
        let expected = try await runLocalJob()
        #expect(expected.count == 4 && expected["day=2/big.csv.out"]!.count > 10 << 20)
        let faultsBefore = Int(server.command("faults")) ?? 0
        let result = try await harness.run(
            [
                "--input", "s3://\(bucket)/in/", "--output", "s3://\(bucket)/out/", "--s3-endpoint",
                faulty ? server.faultyEndpoint : server.endpoint,
            ]
                + jobFlags,
            environment: server.environment()
        )
        #expect(result.status == 0, "\(result.stderr)")
        let outputs = try await download(bucket, "out/")
        #expect(outputs.keys.sorted() == expected.keys.sorted())
        for (name, bytes) in expected { #expect(outputs[name] == bytes, "\(name) differs") }
        #expect(server.command("uploads \(bucket)") == "0")
        if faulty { #expect((Int(server.command("faults")) ?? 0) - faultsBefore >= 3) }
    }

    @Test func aFailedObjectLeavesNoOutputAndNoUnfinishedUpload() async throws {
        let bucket = server.makeBucket("e2e-fail")
        var big: [UInt8] = []
        for index in 0..<110_000 { big += Array("row,\(index),\(String(repeating: "0123456789", count: 9))\n".utf8) }
        big += Array("FAIL\n".utf8)  // the last record: most of the output is already uploaded in parts
        try harness.write("in/day=9/fails.csv", big)
        try await upload(bucket)
        let result = try await harness.run(
            ["--input", "s3://\(bucket)/in/", "--output", "s3://\(bucket)/out/", "--max-retries", "0"] + jobFlags,
            environment: server.environment()
        )
        #expect(result.status == 1)
        #expect(result.stderr.contains("s3://\(bucket)/in/day=9/fails.csv"))
        let outputs = try await download(bucket, "out/")
        #expect(
            outputs.keys.sorted() == ["day=1/a.csv.out", "day=2/b.csv.out", "day=2/big.csv.out", "day=3/c.csv.gz.out"]
        )
        #expect(server.command("uploads \(bucket)") == "0")
    }

    @Test func modelDataFromS3IsDownloadedOnceAndCachedByETag() async throws {
        let bucket = server.makeBucket("e2e-model")
        try harness.write("model-src/weights.txt", "w=1\n")
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = [
            "tar", "-czf", harness.root + "/model.tar.gz", "-C", harness.root + "/model-src", "weights.txt",
        ]
        try tar.run()
        tar.waitUntilExit()
        let store = S3Store(environment: server.environment())
        var writer = try await store.openWriter(.s3(bucket: bucket, key: "models/model.tar.gz"))
        try await writer.write(
            ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: harness.root + "/model.tar.gz")))
        )
        try await writer.commit()
        let cache = harness.root + "/cache"
        var environment = server.environment()
        environment["BATCHFORM_CACHE_DIR"] = cache
        for run in 0..<2 {
            let result = try await harness.run(
                [
                    "--model-data", "s3://\(bucket)/models/model.tar.gz", "--input", "in/day=2/b.csv", "--output",
                    "out-\(run)/",
                ] + jobFlags,
                environment: environment
            )
            #expect(result.status == 0, "\(result.stderr)")
        }
        let cached = try FileManager.default.contentsOfDirectory(atPath: cache + "/models")
        #expect(cached.count == 1)
        #expect(harness.output("cache/models/\(cached[0])/weights.txt") == "w=1\n")
        let reports = try FileManager.default.contentsOfDirectory(atPath: harness.reports).filter {
            $0.hasPrefix("env-")
        }
        for report in reports {
            #expect(harness.output("reports/" + report)?.contains("\(cache)/models/\(cached[0])") == true)
        }
    }
}
