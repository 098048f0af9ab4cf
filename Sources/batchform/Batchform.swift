import ArgumentParser
import Dispatch
import Foundation

import TransformEngine
import TransformSpec

#if canImport(Glibc)
    import Glibc
#endif

@main
struct Batchform: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batchform",
        abstract: "Batch inference the SageMaker Batch Transform way, on your own machines.",
        subcommands: [TransformCommand.self, ServeCommand.self, JobsCommand.self]
    )
}

/// Turns SIGINT and SIGTERM into a callback, so Ctrl-C stops the job in order instead of
/// killing the process with outputs half-written.
final class InterruptWatcher {
    private let sources: [any DispatchSourceSignal]

    init() {
        sources = [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        }
    }

    func onInterrupt(_ action: @escaping @Sendable () -> Void) {
        for source in sources {
            source.setEventHandler {
                FileHandle.standardError.write(Data("\nInterrupted: stopping the job...\n".utf8))
                action()
            }
            source.resume()
        }
    }
}

/// A live line on a terminal (rewritten in place), plain periodic lines otherwise.
struct ProgressReporter: Sendable {
    let progress: JobProgress
    let isTerminal = isatty(STDERR_FILENO) == 1

    func run() async {
        let interval: Duration = isTerminal ? .milliseconds(500) : .seconds(10)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            let line = describe()
            FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    func finish(_ result: TransformJobResult) {
        FileHandle.standardError.write(Data("\(result.status.rawValue): \(describe())\n".utf8))
    }

    private func describe() -> String {
        let now = progress.snapshot
        let elapsed = (ContinuousClock.now - progress.started).seconds
        let megabytes = Double(now.bytesProcessed) / 1_048_576
        let rate = elapsed > 0 ? megabytes / elapsed : 0
        let done = now.objectsCompleted + now.objectsFailed
        var line = "files \(done)/\(now.objectsTotal)"
        if now.objectsFailed > 0 { line += " (\(now.objectsFailed) failed)" }
        line += String(format: ", %d records, %.1f MB, %.1f MB/s, %.1f s", now.recordsProcessed, megabytes, rate, elapsed)
        if now.phase != "transforming", done < now.objectsTotal { line += " [\(now.phase)]" }
        if rate > 0, now.phase == "transforming", done < now.objectsTotal, done > 0 {
            let eta = elapsed / Double(done) * Double(now.objectsTotal - done)
            line += String(format: ", ETA %.0f s", eta)
        }
        return line
    }
}
