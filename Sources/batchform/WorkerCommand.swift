import ArgumentParser
import Cluster
import Foundation
import Logging
import TransformEngine
import TransformSpec

/// Where a job's instances run: this machine's processes, or workers a cluster manager starts.
enum ExecutorName: String, ExpressibleByArgument, CaseIterable {
    case local, slurm
}

/// The parts of a cluster run the CLI and the server share.
enum ClusterLaunch {
    /// The Slurm executor, with the `sbatch` arguments given; throws when `sbatch` is missing.
    static func slurm(arguments: [String]) throws -> SlurmExecutor {
        try SlurmExecutor.checkAvailable()
        return SlurmExecutor(extraArguments: arguments)
    }

    /// This binary and `worker`: what each node runs (Batchform installed at the same path there).
    static var workerCommand: [String] {
        let binary =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return [binary, "worker"]
    }

    /// Where the coordinator listens and workers reach it (`BATCHFORM_COORDINATOR_*`).
    static func coordinatorAddress() throws(ValidationException) -> CoordinatorAddress {
        try CoordinatorAddress(environment: ProcessInfo.processInfo.environment)
    }
}

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a cluster job's work units on this node (started by --executor slurm, not by hand).",
        discussion: """
            The coordinator (batchform transform or serve with --executor slurm) starts one worker per \
            node through the cluster manager, with its address and the job's secret in the environment \
            (BATCHFORM_COORDINATOR_URL, BATCHFORM_WORKER_SECRET). The worker starts one model instance \
            here, leases units, reads their input and writes their output parts straight to the stores.
            """
    )

    func run() async throws {
        do {
            let result = try await ClusterWorker.run(environment: ProcessInfo.processInfo.environment) { path in
                let sink = JobLogFile.Sink(path: path, echo: true)
                return Logger(label: "batchform.worker") { _ in JobLogFile(sink: sink) }
            }
            if result.status == .Failed { throw ExitCode(1) }
        } catch let error as ClusterError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
    }
}
