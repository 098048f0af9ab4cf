import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The engine and a SageMaker-style test image (the test model server on a Debian base with
/// python3, as ENTRYPOINT, so `run <image> serve` starts `serve serve`), built here once.
enum ContainerFixture {
    static let image = "localhost/batchform-test-model:latest"
    static let baseImage = ProcessInfo.processInfo.environment["BATCHFORM_TEST_BASE_IMAGE"] ?? "localhost/base:latest"

    static let engine: String? = {
        let environment = ProcessInfo.processInfo.environment
        let candidates = [environment["BATCHFORM_CONTAINER_ENGINE"], "podman", "docker"].compactMap { $0 }
        let folders = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for name in candidates {
            let paths: [String] = name.contains("/") ? [name] : folders.map { "\($0)/\(name)" }
            if let path = paths.first(where: { access($0, X_OK) == 0 }), run(path, ["info"]).status == 0 { return path }
        }
        return nil
    }()

    /// Why the tests cannot run, or nil once the image is built.
    static let unavailable: String? = {
        guard let engine else { return "no working container engine (podman or docker): run scripts/setup-podman" }
        guard run(engine, ["image", "inspect", baseImage]).status == 0 else {
            return "the base image \(baseImage) is missing: run scripts/setup-podman"
        }
        let context = NSTemporaryDirectory() + "batchform-image-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: context) }
        try? FileManager.default.copyItem(atPath: Harness.testModel, toPath: context + "/serve")
        let containerfile = """
            FROM \(baseImage)
            COPY serve /usr/local/bin/serve
            ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONUNBUFFERED=1 TEST_BIND_ADDRESS=0.0.0.0
            EXPOSE 8080
            ENTRYPOINT ["/usr/local/bin/serve"]
            """
        try? containerfile.write(toFile: context + "/Containerfile", atomically: true, encoding: .utf8)
        let build = run(engine, ["build", "-q", "-t", image, "-f", context + "/Containerfile", context])
        return build.status == 0 ? nil : "building \(image) failed: \(build.output)"
    }()

    static var available: Bool { unavailable == nil }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard (try? process.run()) != nil else { return (127, "cannot run \(executable)") }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// Containers (running or not) whose name starts with `batchform-<job>-`.
    static func containers(ofJob job: String) -> [String] {
        guard let engine else { return [] }
        return run(engine, ["ps", "-a", "--format", "{{.Names}}"]).output.split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix("batchform-\(job)-") }
    }
}

@Suite(
    .serialized,
    .enabled(if: RequiredPart.enabled(ContainerFixture.available), "\(ContainerFixture.unavailable ?? "")")
)
struct ContainerEndToEndTests {
    /// Fails in CI when the part this suite needs is missing (it would otherwise skip).
    @Test func thePartThisSuiteNeedsIsHere() {
        #expect(ContainerFixture.available, Comment(rawValue: ContainerFixture.unavailable ?? ""))
    }

    private func lines(_ file: Int) -> [String] {
        (0..<300).map { "file \(file) row \($0) \(String(repeating: "z", count: $0 % 9))" }
    }

    @Test func twoContainerInstancesMatchTheSameModelRunAsAnExecutable() async throws {
        let harness = try Harness()
        for file in 0..<4 { try harness.write("in/part-\(file).txt", lines(file).joined(separator: "\n") + "\n") }
        let common = [
            "--input", "in/", "--split-type", "Line", "--strategy", "MultiRecord", "--max-payload-mb", "1",
            "--instance-count", "2", "--max-concurrent", "2", "--model-env", "TEST_DELAY_MS=20",
        ]
        let contained = try await harness.run(
            common + ["--job-name", "in-containers", "--output", "out-container", "--image", ContainerFixture.image]
        )
        #expect(contained.status == 0, "\(contained.stderr)")
        let local = try await harness.run(common + ["--job-name", "as-executable", "--output", "out-local"])
        #expect(local.status == 0, "\(local.stderr)")
        let names = (0..<4).map { "part-\($0).txt.out" }
        #expect(harness.files(in: "out-container") == names)
        for name in names {
            #expect(harness.output("out-container/\(name)") == harness.output("out-local/\(name)"))
            #expect(
                harness.output("out-container/\(name)")
                    == TestModel.answer(lines: lines(Int(name.dropFirst(5).prefix(1))!))
            )
        }
        // Both containers started (their output is the instances' logs), and none is left.
        let logs = harness.root + "/batchform-logs/in-containers"
        for instance in 1...2 {
            let log = FileManager.default.contents(atPath: "\(logs)/instance-\(instance).log").map {
                String(decoding: $0, as: UTF8.self)
            }
            #expect(
                log?.contains("test model: listening on 8080") == true,
                "instance \(instance) log: \(log ?? "none")"
            )
        }
        #expect(ContainerFixture.containers(ofJob: "in-containers").isEmpty)
    }

    @Test func aContainerWhosePingFailsFailsTheJobAndIsRemoved() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        let result = try await harness.run([
            "--job-name", "no-ping", "--input", "in/", "--output", "out", "--image", ContainerFixture.image,
            "--model-env", "TEST_NO_PING=1", "--startup-timeout", "8",
        ])
        #expect(result.status == 1)
        #expect(result.stderr.contains("ping"), "\(result.stderr)")
        #expect(harness.files(in: "out").isEmpty)
        #expect(ContainerFixture.containers(ofJob: "no-ping").isEmpty)
    }

    @Test func ctrlCLeavesNoContainerBehind() async throws {
        let harness = try Harness()
        // Long enough (at least 10 s over both instances) to be interrupted after the first progress line.
        try harness.write("in/a.txt", (0..<400).map { "line \($0)" }.joined(separator: "\n"))
        let process = try harness.start([
            "--job-name", "interrupted", "--input", "in/", "--output", "out", "--image", ContainerFixture.image,
            "--split-type", "Line", "--strategy", "SingleRecord", "--instance-count", "2", "--model-env",
            "TEST_DELAY_MS=300",
        ])
        let deadline = ContinuousClock.now + .seconds(60)
        while !(harness.output("stderr.txt") ?? "").contains("records"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(ContainerFixture.containers(ofJob: "interrupted").count == 2)
        kill(process.processIdentifier, SIGINT)
        let result = harness.result(of: process)
        #expect(result.status == 130)
        #expect(harness.files(in: "out").isEmpty)
        #expect(ContainerFixture.containers(ofJob: "interrupted").isEmpty)
    }

    /// A `kill -9` cannot be handled, so a watcher that outlives Batchform removes its containers.
    @Test func kill9LeavesNoContainerBehind() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", (0..<100).map { "line \($0)" }.joined(separator: "\n"))
        let process = try harness.start([
            "--job-name", "killed", "--input", "in/", "--output", "out", "--image", ContainerFixture.image,
            "--split-type", "Line", "--strategy", "SingleRecord", "--model-env", "TEST_DELAY_MS=300",
        ])
        let deadline = ContinuousClock.now + .seconds(60)
        while ContainerFixture.containers(ofJob: "killed").isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(ContainerFixture.containers(ofJob: "killed").count == 1)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let gone = ContinuousClock.now + .seconds(30)
        while !ContainerFixture.containers(ofJob: "killed").isEmpty, ContinuousClock.now < gone {
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(ContainerFixture.containers(ofJob: "killed").isEmpty)
        #expect(harness.files(in: "out").allSatisfy { !$0.hasSuffix(".out") })
    }

    @Test func leftoversOfACrashedRunAreRemovedFirst() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "abc\n")
        let engine = try #require(ContainerFixture.engine)
        let created = ContainerFixture.run(
            engine,
            ["create", "--name", "batchform-leftover-1", ContainerFixture.image, "serve"]
        )
        #expect(created.status == 0, "\(created.output)")
        let result = try await harness.run([
            "--job-name", "leftover", "--input", "in/", "--output", "out", "--image", ContainerFixture.image,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.output("out/a.txt.out") == "cba\n")
        #expect(ContainerFixture.containers(ofJob: "leftover").isEmpty)
    }

    @Test func anImageThatIsNotHereAndCannotBePulledIsReported() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "abc\n")
        let result = try await harness.run([
            "--job-name", "no-image", "--input", "in/", "--output", "out", "--image", "localhost/batchform-absent:1",
        ])
        #expect(result.status == 1)
        #expect(result.stderr.contains("Image localhost/batchform-absent:1 is not on this machine"), "\(result.stderr)")
    }
}
