#if canImport(Glibc)
import Glibc
#endif

/// Writes down that the server crashed (a trap, a bad access, an abort), so the next start can
/// tell a crash from a `kill -9` or a power cut: the jobs that were running when it crashed are
/// then marked Failed instead of being resumed, and the same request cannot crash it again.
/// The handler only calls async-signal-safe functions, then hands the signal on to the handler
/// it replaced (Swift's backtracer), so crash reports are unchanged.
enum CrashRecord {
    static let signals: [Int32] = [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGABRT]

    /// Installs the handlers; a crash writes its signal number to `path`.
    static func install(at path: String) {
        crashRecordPath = strdup(path)
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                if let path = crashRecordPath {
                    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                    if descriptor >= 0 {
                        var number = signal
                        _ = write(descriptor, &number, MemoryLayout<Int32>.size)
                        close(descriptor)
                    }
                }
                // With SA_NODEFER the signal is delivered at once, to the handler we replaced; when
                // that returns (Swift's backtracer does, after printing), the default action ends
                // the process, as a crash must.
                _ = sigaction(signal, replacedActions + Int(signal), nil)
                raise(signal)
                _ = Glibc.signal(signal, SIG_DFL)
                raise(signal)
            }
            action.sa_flags = SA_NODEFER
            sigemptyset(&action.sa_mask)
            _ = sigaction(signal, &action, replacedActions + Int(signal))
        }
    }

    /// The signal of a crash recorded at `path`, removing the record; nil when there was none.
    static func take(at path: String) -> Int32? {
        defer { unlink(path) }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var number: Int32 = 0
        return read(descriptor, &number, MemoryLayout<Int32>.size) == MemoryLayout<Int32>.size ? number : nil
    }
}

// Read by the signal handler, which can capture nothing; set up before it is installed.
private nonisolated(unsafe) var crashRecordPath: UnsafeMutablePointer<CChar>?
/// The action each signal had before, by signal number.
private nonisolated(unsafe) let replacedActions = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)
