import CProcessSpawn
import Foundation
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A model server process in a process group of its own: a terminal's Ctrl-C reaches Batchform
/// only (which then stops the job in order), and stopping signals the whole group, so workers the
/// server forked go with it. It dies with Batchform, too.
public final class ChildProcess: Sendable {
    public let pid: Int32
    private let status = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`, the given environment, and stdout/stderr appended
    /// to `logFile` (started afresh: one log per run of the job, unless `appendingToLog`, as a
    /// restarted model server's is). The process is killed when
    /// Batchform ends, even by `kill -9` (`PR_SET_PDEATHSIG`), so no model server outlives it.
    public init(
        executable: String,
        arguments: [String],
        environment: [String: String],
        logFile: String,
        appendingToLog: Bool = false
    ) throws {
        // A Batchform that was killed could not stop its model servers; the next run of the job
        // (which writes the same log) ends them first.
        let record = logFile + ".pid"
        ProcessRecord.endRecordedGroup(at: record)
        let logDescriptor = open(
            logFile,
            O_WRONLY | O_CREAT | (appendingToLog ? 0 : O_TRUNC) | O_APPEND | O_CLOEXEC,
            0o644
        )
        guard logDescriptor >= 0 else {
            throw RuntimeError(
                .launchFailed,
                "Cannot open the log file \(logFile): \(String(cString: strerror(errno)))."
            )
        }
        defer { close(logDescriptor) }
        pid = try Self.spawn(executable, arguments, environment, output: logDescriptor, dieWithParent: true)
        ProcessRecord.write(pid: pid, to: record)
        self.record = record
    }

    /// Runs `command` once Batchform has ended, however it ends: a watcher process waits for the
    /// end of a pipe only Batchform holds. For what dies with Batchform but cannot be killed by a
    /// signal to it, such as a container the engine runs apart from its client. Closing the
    /// returned descriptor runs the command now.
    public static func whenBatchformEnds(run command: [String]) throws -> Int32 {
        var ends: [Int32] = [0, 0]
        guard batchform_pipe_cloexec(&ends) == 0 else {
            throw RuntimeError(.launchFailed, "Cannot create a pipe: \(String(cString: strerror(errno))).")
        }
        defer { close(ends[0]) }
        let output = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(output) }
        do {
            // `read` returns at the pipe's end; the command's words are passed as arguments, never parsed.
            _ = try spawn(
                "/bin/sh",
                ["-c", "read _; exec \"$@\"", "batchform-watch"] + command,
                ProcessInfo.processInfo.environment,
                input: ends[0],
                output: output,
                dieWithParent: false
            )
        } catch {
            close(ends[1])
            throw error
        }
        return ends[1]
    }

    /// Runs a short command (a container engine's `rm`, `pull`, `image inspect`) to its end and
    /// returns its exit status and its output (stdout and stderr together). The same launcher as
    /// the model servers; the blocking reads and the wait run on NIO's thread pool.
    public static func runToEnd(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil
    ) async -> (status: Int32, output: String) {
        let environment = environment ?? ProcessInfo.processInfo.environment
        var ends: [Int32] = [0, 0]
        guard batchform_pipe_cloexec(&ends) == 0 else {
            return (127, "Cannot create a pipe: \(String(cString: strerror(errno))).")
        }
        let pid: Int32
        do {
            pid = try spawn(executable, arguments, environment, output: ends[1], dieWithParent: true)
        } catch {
            close(ends[0])
            close(ends[1])
            return (127, "\(error)")
        }
        close(ends[1])
        let readEnd = ends[0]
        let outcome = try? await NIOThreadPool.singleton.runIfActive(
            eventLoop: MultiThreadedEventLoopGroup.singleton.any()
        ) { () -> (Int32, String) in
            var output: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = read(readEnd, &chunk, chunk.count)
                if count > 0 {
                    output += chunk[..<count]
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(readEnd)
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0, errno == EINTR {}
            return (Self.decode(raw), String(decoding: output, as: UTF8.self))
        }.get()
        return outcome.map { (status: $0.0, output: $0.1) } ?? (127, "\(executable) could not be run to its end.")
    }

    private static func spawn(
        _ executable: String,
        _ arguments: [String],
        _ environment: [String: String],
        input: Int32? = nil,
        output: Int32,
        dieWithParent: Bool
    ) throws -> Int32 {
        let nullInput = input == nil ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1
        defer { if nullInput >= 0 { close(nullInput) } }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var child = pid_t()
        let result = batchform_spawn(executable, argv, envp, input ?? nullInput, output, dieWithParent ? 1 : 0, &child)
        guard result == 0 else {
            throw RuntimeError(
                .launchFailed,
                "Cannot start \(executable): \(String(cString: strerror(result))). "
                    + "Check that it exists and is executable (chmod +x)."
            )
        }
        return child
    }

    private let record: String

    /// The exit status once the process has ended, without waiting; nil while it runs.
    public func exitStatus() -> Int32? {
        status.withLock { known in
            if let known { return known }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            known = Self.decode(raw)
            return known
        }
    }

    /// SIGTERM to the group, then SIGKILL after `grace`; returns once the process is reaped.
    public func stop(grace: Duration = .seconds(5)) async {
        guard exitStatus() == nil else { return }
        kill(-pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while exitStatus() == nil, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if exitStatus() == nil {
            kill(-pid, SIGKILL)
            while exitStatus() == nil { try? await Task.sleep(for: .milliseconds(10)) }
        }
        // Workers that outlived their parent (ignored SIGTERM, or were reparented) go too.
        kill(-pid, SIGKILL)
        unlink(record)
    }

    /// Exit code, or 128 + signal number as shells report it.
    private static func decode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }

    public static func describe(exitStatus: Int32) -> String {
        exitStatus > 128 ? "was killed by signal \(exitStatus - 128)" : "exited with status \(exitStatus)"
    }
}

/// A started process group written down as "<pid> <start time>", the start time (from
/// /proc/<pid>/stat) guarding against a reused pid.
enum ProcessRecord {
    static func write(pid: Int32, to path: String) {
        guard let started = startTime(of: pid) else { return }
        try? "\(pid) \(started)\n".write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func endRecordedGroup(at path: String) {
        defer { unlink(path) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let fields = text.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard fields.count == 2, let pid = Int32(fields[0]), pid > 1, startTime(of: pid) == fields[1] else { return }
        kill(-pid, SIGKILL)
    }

    /// Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces).
    static func startTime(of pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }
}
