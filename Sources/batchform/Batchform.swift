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
        version: BatchformVersion.description,
        subcommands: [TransformCommand.self, ServeCommand.self, JobsCommand.self]
    )
}

/// `batchform --version`: the release, and the commit it was built from where that is known
/// (written by scripts/install, or read from the git checkout a development build sits in).
enum BatchformVersion {
    static let number = "0.2.0"

    static var description: String { commit.map { "\(number) (\($0))" } ?? number }

    static var commit: String? {
        guard var folder = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            return nil
        }
        while folder.count > 1 {
            folder = String(folder[..<(folder.lastIndex(of: "/") ?? folder.startIndex)])
            let installed = folder + "/share/batchform/COMMIT"
            if let text = try? String(contentsOfFile: installed, encoding: .utf8) { return text.trimmed }
            if let head = try? String(contentsOfFile: folder + "/.git/HEAD", encoding: .utf8) {
                let reference = head.trimmed
                guard reference.hasPrefix("ref: ") else { return String(reference.prefix(12)) }
                let name = String(reference.dropFirst(5))
                if let hash = try? String(contentsOfFile: folder + "/.git/" + name, encoding: .utf8) {
                    return String(hash.trimmed.prefix(12))
                }
                let packed = (try? String(contentsOfFile: folder + "/.git/packed-refs", encoding: .utf8)) ?? ""
                let line = packed.split(separator: "\n").first { $0.hasSuffix(" " + name) }
                return line.map { String($0.prefix(12)) }
            }
        }
        return nil
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
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
