import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// moto's S3 server (authentication on) and a fault-injecting proxy in front of it, started once
/// per test process by Fixtures/s3-server.py. It exits when this process does (its stdin closes).
final class S3TestServer: Sendable {
    let endpoint: String
    /// The same server behind a proxy that answers every 4th request with a fault.
    let faultyEndpoint: String
    let accessKeyId: String
    let secretAccessKey: String
    private let control: Mutex<(input: FileHandle, output: FileHandle)>

    static let python = ProcessInfo.processInfo.environment["BATCHFORM_PYTHON"] ?? ""
    static let available: Bool =
        !python.isEmpty && (try? BuiltinPython.run(["-c", "import moto.server, boto3"])) != nil
    static let reason: Comment =
        "BATCHFORM_PYTHON must name a Python with moto[server] (./scripts/test sets up .venv and sets it)"

    static let shared: S3TestServer = {
        do { return try S3TestServer() } catch { fatalError("could not start the S3 test server: \(error)") }
    }()

    private init() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Harness.packageRoot + "/Tests/EndToEndTests/Fixtures/s3-server.py"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let ready = Self.readLine(output.fileHandleForReading).split(separator: " ").map(String.init)
        guard ready.count == 5, ready[0] == "READY" else { throw CocoaError(.fileReadCorruptFile) }
        endpoint = "http://127.0.0.1:\(ready[1])"
        faultyEndpoint = "http://127.0.0.1:\(ready[2])"
        accessKeyId = ready[3]
        secretAccessKey = ready[4]
        control = Mutex((input.fileHandleForWriting, output.fileHandleForReading))
    }

    /// Environment for a `batchform` run or an `S3Store` using this server.
    func environment(faulty: Bool = false) -> [String: String] {
        [
            "AWS_ENDPOINT_URL": faulty ? faultyEndpoint : endpoint, "AWS_ACCESS_KEY_ID": accessKeyId,
            "AWS_SECRET_ACCESS_KEY": secretAccessKey, "AWS_REGION": "us-east-1", "HOME": NSTemporaryDirectory(),
        ]
    }

    /// One command to the server script (see its docstring); returns its one-line answer.
    @discardableResult
    func command(_ line: String) -> String {
        control.withLock { pipes in
            pipes.input.write(Data((line + "\n").utf8))
            return Self.readLine(pipes.output)
        }
    }

    /// A new bucket with a unique name, so tests sharing the server never see each other's keys.
    func makeBucket(_ label: String) -> String {
        let name = "\(label)-\(UUID().uuidString.prefix(8).lowercased())"
        let answer = command("bucket \(name)")
        #expect(answer == "ok", "creating bucket \(name): \(answer)")
        return name
    }

    private static func readLine(_ handle: FileHandle) -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(handle.fileDescriptor, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
