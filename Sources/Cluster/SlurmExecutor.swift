import Foundation
import ModelRuntime
import Synchronization

/// Workers as a Slurm job array: one array task per worker, each on a node of its own
/// (`--exclusive`), not requeued by Slurm (the coordinator asks for replacements itself, so it
/// knows what runs). `sbatch`, `squeue` and `scancel` are run as commands, so any Slurm the
/// machine's client tools reach will do.
public final class SlurmExecutor: WorkerExecutor {
    public let name = "slurm"
    /// Passed to `sbatch` as they are (`--partition`, `--account`, `--time`, `--gres=gpu:1`…).
    public let extraArguments: [String]
    private let submitted = Mutex<[String]>([])

    public init(extraArguments: [String]) { self.extraArguments = extraArguments }

    /// `BATCHFORM_SLURM_ARGS`: words separated by spaces, as a shell would split them
    /// (no quoting); each word is one `sbatch` argument.
    public static func arguments(fromEnvironment value: String?) -> [String] {
        (value ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }

    /// Throws unless `sbatch` is on the PATH: checked before anything else starts.
    public static func checkAvailable(environment given: [String: String]? = nil) throws {
        let environment = given ?? ProcessInfo.processInfo.environment
        guard executable("sbatch", environment: environment) != nil else {
            throw ClusterError(
                .executorMissing,
                "--executor slurm needs Slurm's sbatch, squeue and scancel, and sbatch is not on the PATH "
                    + "(\(environment["PATH"] ?? "")). Install the Slurm client tools where Batchform runs "
                    + "(Debian: apt-get install slurm-client) with this machine allowed to submit to the "
                    + "cluster, or run with --executor local."
            )
        }
    }

    static func executable(_ name: String, environment: [String: String]) -> String? {
        for folder in (environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(folder)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    public func start(_ count: Int, _ launch: WorkerLaunch) async throws -> [String] {
        var environment = ProcessInfo.processInfo.environment
        try Self.checkAvailable(environment: environment)
        environment.merge(launch.environment) { $1 }
        let command = launch.command.map(Self.shellQuoted).joined(separator: " ")
        let arguments =
            [
                "--parsable",
                "--job-name=batchform-\(launch.jobName)",
                "--array=0-\(count - 1)",
                "--nodes=1",
                "--ntasks=1",
                "--exclusive",
                "--no-requeue",
                "--output=\(launch.logDirectory)/slurm-%A_%a.out",
                // The secret and the coordinator's address reach the workers through this.
                "--export=ALL",
            ] + extraArguments + ["--wrap=exec \(command)"]
        let (status, output) = await ChildProcess.runToEnd(
            Self.executable("sbatch", environment: environment)!,
            arguments,
            environment: environment
        )
        let answer = output.trimmingCharacters(in: .whitespacesAndNewlines)
        // --parsable prints "jobid" or "jobid;cluster".
        guard status == 0, let jobID = answer.split(separator: "\n").last?.split(separator: ";").first,
            Int(jobID) != nil
        else {
            throw ClusterError(
                .submissionRefused,
                "Slurm refused the job's \(count) worker(s): \(answer.isEmpty ? "sbatch exited with status \(status)" : answer)"
            )
        }
        submitted.withLock { $0.append(String(jobID)) }
        return (0..<count).map { "\(jobID)_\($0)" }
    }

    public func allocations() async -> [WorkerAllocation] {
        let jobs = submitted.withLock { $0 }
        guard !jobs.isEmpty, let squeue = Self.executable("squeue", environment: ProcessInfo.processInfo.environment)
        else { return [] }
        let (status, output) = await ChildProcess.runToEnd(
            squeue,
            ["--noheader", "--states=all", "--array", "--jobs=\(jobs.joined(separator: ","))", "--format=%i|%T|%N|%r"]
        )
        guard status == 0 else { return [] }
        return output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4 else { return nil }
            let state = fields[1]
            let phase: WorkerAllocation.Phase =
                switch state {
                case "PENDING", "CONFIGURING", "REQUEUED", "RESV_DEL_HOLD", "REQUEUE_HOLD", "REQUEUE_FED": .pending
                case "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING": .running
                default: .ended
                }
            return WorkerAllocation(
                id: fields[0],
                phase: phase,
                state: state,
                node: fields[2].isEmpty || fields[2] == "(null)" ? nil : fields[2],
                reason: fields[3].isEmpty || fields[3] == "None" ? nil : fields[3]
            )
        }
    }

    public func cancelAll() async {
        let jobs = submitted.withLock { $0 }
        guard !jobs.isEmpty, let scancel = Self.executable("scancel", environment: ProcessInfo.processInfo.environment)
        else { return }
        _ = await ChildProcess.runToEnd(scancel, jobs)
        // Returns once Slurm has let go of every allocation (COMPLETING ones included), up to 10 s,
        // so that a job that has ended leaves no Slurm job behind.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, await allocations().contains(where: { $0.phase != .ended }) {
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    static func shellQuoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
