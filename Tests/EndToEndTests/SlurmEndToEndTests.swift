import Foundation
import NIOCore
import ObjectStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real Slurm cluster this suite runs on: 4 nodes on localhost (`scripts/slurm-up`, which
/// `.ci/run` starts). Jobs take whole nodes, so the suite runs one test at a time.
enum SlurmCluster {
    static let available: Bool = {
        guard let sinfo = try? shell("sinfo -h -N -o '%N %T'") else { return false }
        return sinfo.split(separator: "\n").count >= 4
    }()
    static let reason: Comment = "needs a Slurm cluster of 4 nodes: SLURM_NODES=4 scripts/slurm-up (sbatch is missing)"

    /// Runs a shell command to its end; returns its output, throws on a failure status.
    @discardableResult
    static func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw CocoaError(.executableLoad, userInfo: ["output": text]) }
        return text
    }

    /// The Slurm jobs of a Batchform job (named `batchform-<job>`), in any state but ended.
    static func jobs(named job: String) -> String {
        ((try? shell("squeue -h -n batchform-\(job) -o '%i %T'")) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

@Suite(.serialized, .enabled(if: RequiredPart.enabled(SlurmCluster.available), SlurmCluster.reason))
struct SlurmEndToEndTests {
    /// Fails in CI when the cluster is missing (the suite would otherwise skip).
    @Test func theClusterThisSuiteNeedsIsHere() {
        #expect(SlurmCluster.available, SlurmCluster.reason)
    }

    let harness: Harness
    /// 16 MB of CSV in 2 MB units, plus small files: every worker gets a share of the big one.
    let flags = [
        "--content-type", "text/csv", "--split-type", "Line", "--strategy", "MultiRecord", "--max-payload-mb", "1",
        "--env", "BATCHFORM_CSV_SPLIT=newline",
    ]

    init() throws {
        harness = try Harness()
        var big = ""
        var row = 0
        while big.utf8.count < 16 << 20 {
            big += "\(row),\(row % 97),\(String(repeating: "v", count: row % 61))\n"
            row += 1
        }
        try harness.write("in/big.csv", big)
        for index in 0..<3 { try harness.write("in/small-\(index).csv", (0..<50).map { "s\(index),\($0)\n" }.joined()) }
    }

    /// The outputs of the same job run locally, by name.
    func localOutputs() async throws -> [String: Data] {
        let result = try await harness.run(["--input", "in/", "--output", "local-out"] + flags)
        #expect(result.status == 0, "\(result.stderr)")
        return outputs("local-out")
    }

    func outputs(_ folder: String) -> [String: Data] {
        var found: [String: Data] = [:]
        for file in harness.files(in: folder) {
            found[file] = FileManager.default.contents(atPath: "\(harness.root)/\(folder)/\(file)")
        }
        return found
    }

    func slurmFlags(_ name: String, count: Int = 4) -> [String] {
        [
            "--job-name", name, "--executor", "slurm", "--instance-count", String(count), "--input", "in/",
            "--output", "slurm-out", "--log-dir", harness.root + "/logs",
        ] + flags
    }

    /// Waits until the Batchform job's workers all run, then a little more.
    func waitForRunningWorkers(_ job: String, count: Int) async throws {
        for _ in 0..<600 {
            if SlurmCluster.jobs(named: job).split(separator: "\n").filter({ $0.hasSuffix("RUNNING") }).count >= count {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the workers of \(job) never all ran: \(SlurmCluster.jobs(named: job))")
    }

    func wait(_ process: Process) async throws -> Int32 {
        for _ in 0..<3000 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            process.interrupt()
            Issue.record("the job did not end within 150 s")
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test func aSixteenMegabyteCSVOnFourNodesIsByteIdenticalToALocalRun() async throws {
        let expected = try await localOutputs()
        let reports = harness.root + "/slurm-reports"
        try FileManager.default.createDirectory(atPath: reports, withIntermediateDirectories: true)
        let result = try await harness.run(
            slurmFlags("slurm-identical"),
            environment: ["BATCHFORM_UNIT_MB": "2", "TEST_REPORT_DIR": reports]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(outputs("slurm-out") == expected, "outputs differ from the local run")
        #expect(harness.files(in: "slurm-out").allSatisfy { !$0.hasPrefix(".") }, "no temporary part is left")
        // One model server on each node, started by that node's worker.
        let nodes = try FileManager.default.contentsOfDirectory(atPath: reports).filter { $0.hasPrefix("env-") }.map {
            file -> String in
            let data = FileManager.default.contents(atPath: reports + "/" + file) ?? Data()
            let environment = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            return environment?["SLURMD_NODENAME"] as? String ?? "none"
        }
        #expect(nodes.sorted() == ["node1", "node2", "node3", "node4"], "\(nodes)")
        let log = harness.output("logs/batchform.log") ?? ""
        let size = try FileManager.default.attributesOfItem(atPath: harness.root + "/in/big.csv")[.size] as! Int
        let units = (size + (2 << 20) - 1) / (2 << 20) + 3
        #expect(log.contains("4 object(s) in \(units) work unit(s) of up to 2 MB"), "\(log)")
        #expect(SlurmCluster.jobs(named: "slurm-identical").isEmpty)
        for worker in 1...4 { #expect(harness.output("logs/worker-\(worker).log")?.contains("Unit ") == true) }
    }

    @Test(.enabled(if: RequiredPart.enabled(S3TestServer.available), S3TestServer.reason))
    func onS3ASplitObjectIsCommittedAsOneWithUploadPartCopy() async throws {
        let expected = try await localOutputs()
        let server = S3TestServer.shared
        let bucket = server.makeBucket("slurm")
        let store = S3Store(environment: server.environment())
        for file in harness.files(in: "in") {
            var writer = try await store.openWriter(.s3(bucket: bucket, key: "in/" + file))
            try await writer.write(
                ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: "\(harness.root)/in/\(file)")))
            )
            try await writer.commit()
        }
        let result = try await harness.run(
            [
                "--job-name", "slurm-s3", "--executor", "slurm", "--instance-count", "3", "--input",
                "s3://\(bucket)/in/",
                "--output", "s3://\(bucket)/out/", "--s3-endpoint", server.endpoint, "--log-dir",
                harness.root + "/s3-logs",
            ]
                + flags,
            environment: server.environment().merging(["BATCHFORM_UNIT_MB": "6"]) { $1 }
        )
        #expect(result.status == 0, "\(result.stderr)")
        var outputs: [String: Data] = [:]
        for object in try await store.list(prefix: .s3(bucket: bucket, key: "out/")) {
            outputs[object.relativeKey] = Data(try await store.readAll(object.uri, upTo: 1 << 30).readableBytesView)
        }
        #expect(outputs == expected, "outputs differ from the local run")
        #expect(outputs["big.csv.out"].map { $0.count > 5 << 20 } == true)
        let log = harness.output("s3-logs/batchform.log") ?? ""
        #expect(
            log.contains(
                "big.csv.out: \(expected["big.csv.out"]?.count ?? 0) bytes from 3 part(s), 3 copied server-side"
            ),
            "\(log)"
        )
        #expect(server.command("uploads \(bucket)") == "0", "no unfinished multipart upload")
        #expect(
            try await store.list(prefix: .s3(bucket: bucket, key: "")).allSatisfy {
                !$0.relativeKey.contains(".batchform-parts")
            }
        )
    }

    @Test func aNodeSetDownMidJobLosesNothing() async throws {
        let expected = try await localOutputs()
        let job = "slurm-node-down"
        let process = try harness.start(
            slurmFlags(job),
            environment: ["BATCHFORM_UNIT_MB": "1", "TEST_FIXED_DELAY_MS": "1000"]
        )
        try await waitForRunningWorkers(job, count: 4)
        try await Task.sleep(for: .seconds(2))
        let node = try SlurmCluster.shell("squeue -h -n batchform-\(job) -t RUNNING -o '%N' | head -1")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try SlurmCluster.shell("scontrol update nodename=\(node) state=down reason=batchform-test")
        defer { _ = try? SlurmCluster.shell("scontrol update nodename=\(node) state=resume") }
        let status = try await wait(process)
        let log = harness.output("logs/batchform.log") ?? ""
        #expect(status == 0, "\(log)")
        #expect(outputs("slurm-out") == expected, "outputs differ from the local run")
        #expect(log.contains("was lost"), "\(log)")
        #expect(SlurmCluster.jobs(named: job).isEmpty)
    }

    @Test func aWorkerKilledWithSIGKILLLosesNothing() async throws {
        let expected = try await localOutputs()
        let job = "slurm-kill-9"
        let process = try harness.start(
            slurmFlags(job),
            environment: ["BATCHFORM_UNIT_MB": "1", "TEST_FIXED_DELAY_MS": "1000"]
        )
        try await waitForRunningWorkers(job, count: 4)
        try await Task.sleep(for: .seconds(2))
        // A worker of this job (the suite runs one job at a time); `[b]` keeps pgrep's shell out.
        let pids = try SlurmCluster.shell("pgrep -f '[b]atchform worker'").split(separator: "\n")
        let victim = try #require(pids.first.flatMap { Int32($0) })
        kill(victim, SIGKILL)
        let status = try await wait(process)
        let log = harness.output("logs/batchform.log") ?? ""
        #expect(status == 0, "\(log)")
        #expect(outputs("slurm-out") == expected, "outputs differ from the local run")
        #expect(log.contains("was lost"), "\(log)")
        #expect(SlurmCluster.jobs(named: job).isEmpty)
    }

    @Test func stoppingCancelsTheSlurmJobAndWritesNoOutput() async throws {
        let job = "slurm-stop"
        let process = try harness.start(slurmFlags(job), environment: ["TEST_FIXED_DELAY_MS": "2000"])
        try await waitForRunningWorkers(job, count: 4)
        process.interrupt()
        let status = try await wait(process)
        #expect(status == 130)
        #expect(harness.files(in: "slurm-out").isEmpty, "\(harness.files(in: "slurm-out"))")
        for _ in 0..<100 where !SlurmCluster.jobs(named: job).isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(SlurmCluster.jobs(named: job).isEmpty, "the Slurm job is cancelled")
    }

    @Test func aJobTheClusterRefusesFailsQuotingSlurmAndLeavesNoJob() async throws {
        let job = "slurm-refused"
        let result = try await harness.run(slurmFlags(job) + ["--slurm-arg=--partition=no-such-partition"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("Slurm refused"), "\(result.stderr)")
        #expect(result.stderr.contains("Invalid partition name specified"), "\(result.stderr)")
        #expect(SlurmCluster.jobs(named: job).isEmpty)
        #expect(harness.files(in: "slurm-out").isEmpty)
    }

    @Test func aModelThatCannotStartOnAnyNodeFailsTheJobSayingWhy() async throws {
        let job = "slurm-no-model"
        let result = try await harness.run(
            [
                "--job-name", job, "--executor", "slurm", "--instance-count", "2", "--image", "/bin/false",
                "--input", "in/small-0.csv", "--output", "slurm-out",
            ] + flags,
            environment: ["BATCHFORM_MAX_WORKER_REPLACEMENTS": "1"]
        )
        #expect(result.status == 1)
        #expect(result.stderr.contains("no worker can run: 1 replacement(s) used"), "\(result.stderr)")
        #expect(result.stderr.contains("exited with status 1 before answering /ping"), "\(result.stderr)")
        #expect(result.stderr.contains("FAILED (NonZeroExitCode)"), "\(result.stderr)")
        #expect(SlurmCluster.jobs(named: job).isEmpty)
        #expect(harness.files(in: "slurm-out").isEmpty)
    }

    @Test func withoutSbatchTheExecutorSaysWhatIsMissingAndRunsNothing() async throws {
        let result = try await harness.run(slurmFlags("slurm-missing"), environment: ["PATH": "/nonexistent"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--executor slurm needs Slurm's sbatch"), "\(result.stderr)")
        #expect(SlurmCluster.jobs(named: "slurm-missing").isEmpty)
    }

    @Test func anUnknownExecutorIsRefused() async throws {
        let result = try await harness.run(["--executor", "kubernetes", "--input", "in/", "--output", "x"] + flags)
        #expect(result.status == 64 || result.status == 2, "\(result.status)")
        #expect(result.stderr.contains("'kubernetes'") && result.stderr.contains("local"), "\(result.stderr)")
    }

    @Test func anInputThatCannotBeSplitRunsAsOneUnit() async throws {
        try harness.gzip("in/big.csv", to: "gz/big.csv.gz")
        let local = try await harness.run(
            ["--input", "gz/", "--output", "gz-local", "--compression", "Gzip"] + flags
        )
        #expect(local.status == 0, "\(local.stderr)")
        let result = try await harness.run(
            [
                "--job-name", "slurm-gzip", "--executor", "slurm", "--instance-count", "2", "--input", "gz/",
                "--output", "gz-slurm", "--compression", "Gzip", "--log-dir", harness.root + "/gz-logs",
            ] + flags,
            environment: ["BATCHFORM_UNIT_MB": "1"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(outputs("gz-slurm") == outputs("gz-local"))
        let log = harness.output("gz-logs/batchform.log") ?? ""
        #expect(log.contains("run as one work unit each: it is gzip-compressed"), "\(log)")
        #expect(log.contains("1 object(s) in 1 work unit(s)"), "\(log)")
    }
}
