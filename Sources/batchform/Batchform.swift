import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TransformEngine
import TransformSpec
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

@main
struct Batchform: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batchform",
        abstract: "Batch inference the SageMaker Batch Transform way, on your own machines.",
        version: BatchformVersion.description,
        subcommands: [TransformCommand.self, ServeCommand.self, JobsCommand.self, WorkerCommand.self]
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

/// `batchform transform`'s job as a lifecycle service: SIGINT or SIGTERM starts the group's
/// graceful shutdown, which cancels the job in order (no `.out` is written for unfinished
/// objects, the model servers are stopped) instead of killing the process mid-write.
final class TransformService: Service {
    private let job: TransformJob
    private let plan: TransformPlan
    private let outcome = Mutex<TransformJobResult?>(nil)

    init(job: TransformJob, plan: TransformPlan) {
        self.job = job
        self.plan = plan
    }

    var result: TransformJobResult? { outcome.withLock { $0 } }

    func run() async throws {
        let (job, plan) = (self.job, self.plan)
        let result = await cancelWhenGracefulShutdown {
            await withGracefulShutdownHandler {
                await job.run(plan)
            } onGracefulShutdown: {
                FileHandle.standardError.write(Data("\nInterrupted: stopping the job...\n".utf8))
            }
        }
        outcome.withLock { $0 = result }
    }

    /// Runs the job in a service group that stops it on SIGINT or SIGTERM; returns how it ended.
    static func run(_ job: TransformJob, _ plan: TransformPlan, logger: Logger) async throws -> TransformJobResult {
        let service = TransformService(job: job, plan: plan)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigint, .sigterm],
                logger: logger
            )
        )
        try await group.run()
        guard let result = service.result else { throw CancellationError() }
        return result
    }
}
