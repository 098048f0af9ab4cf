import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `batchform` binary in a scratch folder against the test model server, and
/// reads back what the model server reported.
struct Harness {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let binary =
        ProcessInfo.processInfo.environment["BATCHFORM_BINARY"] ?? packageRoot + "/.build/debug/batchform"
    static let testModel = packageRoot + "/Tests/EndToEndTests/Fixtures/test-model/serve"

    let root: String
    var reports: String { root + "/reports" }

    init() throws {
        root = NSTemporaryDirectory() + "batchform-e2e-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root + "/reports", withIntermediateDirectories: true)
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "build batchform first: swift build")
    }

    func write(_ relativePath: String, _ bytes: [UInt8]) throws {
        let path = root + "/" + relativePath
        try FileManager.default.createDirectory(
            atPath: String(path[..<path.lastIndex(of: "/")!]),
            withIntermediateDirectories: true
        )
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func write(_ relativePath: String, _ text: String) throws { try write(relativePath, Array(text.utf8)) }

    /// Compresses a file of the scratch folder with the system's gzip.
    func gzip(_ source: String, to destination: String) throws {
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/sh")
        gzip.arguments = [
            "-c", "mkdir -p \"$(dirname \"$2\")\" && gzip -c \"$1\" > \"$2\"", "gzip", source, destination,
        ]
        gzip.currentDirectoryURL = URL(fileURLWithPath: root)
        try gzip.run()
        gzip.waitUntilExit()
    }

    func output(_ relativePath: String) -> String? {
        FileManager.default.contents(atPath: root + "/" + relativePath).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every file below `folder`, relative to it, hidden ones included (a leftover temp file would show).
    func files(in folder: String) -> [String] {
        let base = root + "/" + folder
        let all = FileManager.default.enumerator(atPath: base)?.allObjects as? [String] ?? []
        return all.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: base + "/" + path, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }.sorted()
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The model is the test model server unless `--image` is given (or `withImage` is false);
    /// its reports go to `reports/`.
    func run(_ arguments: [String], environment: [String: String] = [:], withImage: Bool = true) async throws -> Result
    {
        let process = try start(arguments, environment: environment, withImage: withImage)
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return result(of: process)
    }

    /// `batchform` with exactly these arguments (no `transform`), in the scratch folder.
    func runBinary(_ arguments: [String], environment: [String: String]? = nil) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        if let environment { process.environment = environment }
        _ = FileManager.default.createFile(atPath: root + "/stdout.txt", contents: nil)
        _ = FileManager.default.createFile(atPath: root + "/stderr.txt", contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: root + "/stdout.txt")
        process.standardError = FileHandle(forWritingAtPath: root + "/stderr.txt")
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return result(of: process)
    }

    /// `batchform serve` on a free loopback port with one access key; returns once it listens.
    func startServer(keys: (id: String, secret: String)) throws -> (process: Process, url: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--port", "0", "--data-dir", root + "/server-data"]
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        var environment = ProcessInfo.processInfo.environment
        environment["BATCHFORM_ACCESS_KEY_ID"] = keys.id
        environment["BATCHFORM_SECRET_ACCESS_KEY"] = keys.secret
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let start = text.range(of: "http://") else { throw CocoaError(.fileReadUnknown) }
        let url = text[start.lowerBound...].prefix { !$0.isWhitespace }
        return (process, String(url))
    }

    func start(
        _ arguments: [String],
        environment: [String: String] = [:],
        withImage: Bool = true,
        stdoutName: String? = nil
    ) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        var arguments = ["transform"] + arguments
        if withImage, !arguments.contains("--image") && !arguments.contains("--model") {
            arguments += ["--image", Self.testModel]
        }
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        var inherited = ProcessInfo.processInfo.environment
        inherited["TEST_REPORT_DIR"] = reports
        inherited.merge(environment) { $1 }
        process.environment = inherited
        let name = stdoutName ?? "std"
        _ = FileManager.default.createFile(atPath: root + "/\(name)out.txt", contents: nil)
        _ = FileManager.default.createFile(atPath: root + "/\(name)err.txt", contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: root + "/\(name)out.txt")
        process.standardError = FileHandle(forWritingAtPath: root + "/\(name)err.txt")
        try process.run()
        return process
    }

    func result(of process: Process) -> Result {
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: output("stdout.txt") ?? "",
            stderr: output("stderr.txt") ?? ""
        )
    }

    /// One entry per `/invocations` request the model servers answered.
    func requests() -> [[String: Any]] {
        reportFiles(prefix: "requests-").flatMap { text in
            text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
    }

    /// The environment each model server process started with.
    func environments() -> [[String: String]] {
        reportFiles(prefix: "env-").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]
        }
    }

    /// Process ids of the model servers that started.
    func modelServerPIDs() -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: reports)) ?? []
        return names.filter { $0.hasPrefix("env-") }.compactMap { Int32($0.dropFirst(4).dropLast(5)) }
    }

    private func reportFiles(prefix: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: reports)) ?? []
        return names.filter { $0.hasPrefix(prefix) }.sorted().compactMap { output("reports/" + $0) }
    }
}

/// The test model's answers, so expected outputs are computed, not copied.
enum TestModel {
    static func answer(lines: [String]) -> String {
        lines.map { String($0.replacingOccurrences(of: "\r", with: "").reversed()) + "\n" }.joined()
    }

    static func answer(binaryRecords: [[UInt8]]) -> String {
        binaryRecords.map { $0.map { String(format: "%02x", $0) }.joined() + "\n" }.joined()
    }
}

func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

/// `.ci/run` installs every part the suites need (moto, Podman, scikit-learn), so with `CI=true`
/// a suite whose part is missing runs and fails instead of skipping; elsewhere it skips, saying why.
enum RequiredPart {
    static let inCI = ProcessInfo.processInfo.environment["CI"] == "true"

    static func enabled(_ available: Bool) -> Bool { available || inCI }
}
