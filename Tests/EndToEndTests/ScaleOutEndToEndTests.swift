import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Batches of any object go to any instance: the real binary against real model server
/// processes, each reporting every request it answers (its pid, when it started).
@Suite(.serialized) struct ScaleOutEndToEndTests {
    /// `lines` CSV rows of about 100 bytes each.
    static func csv(lines: Int) -> String {
        (0..<lines).map { "\($0),\(String(repeating: "f", count: 90)),\($0 % 7)" }.joined(separator: "\n") + "\n"
    }

    /// What the test model answers for `text`: each line reversed.
    static func answers(_ text: String) -> String {
        text.split(separator: "\n").map { String($0.reversed()) + "\n" }.joined()
    }

    /// Requests answered by each model server process.
    func requestsPerInstance(_ harness: Harness) -> [Int: Int] {
        var counts: [Int: Int] = [:]
        for request in harness.requests() { counts[request["pid"] as? Int ?? 0, default: 0] += 1 }
        return counts
    }

    /// The most requests in flight at one moment, over every process, when each takes `delay` seconds.
    func peakInFlight(_ harness: Harness, delay: Double) -> Int {
        let starts = harness.requests().compactMap { $0["at"] as? Double }.sorted()
        return starts.map { start in starts.filter { $0 <= start && start < $0 + delay }.count }.max() ?? 0
    }

    func oneInstanceOutput(_ harness: Harness, _ arguments: [String]) async throws -> String? {
        let result = try await harness.run(arguments + ["--output", "single", "--instance-count", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        return harness.output("single/" + (harness.files(in: "single").first ?? "none"))
    }

    @Test func oneBigCSVKeepsThreeInstancesBusy() async throws {
        let harness = try Harness()
        try harness.write("in/big.csv", Self.csv(lines: 120_000))  // about 12 MB
        let arguments = [
            "--input", "in/", "--split-type", "Line", "--content-type", "text/csv", "--strategy", "MultiRecord",
            "--max-payload-mb", "1", "--max-concurrent", "2",
        ]
        let result = try await harness.run(
            arguments + ["--output", "out", "--instance-count", "3"],
            environment: ["TEST_FIXED_DELAY_MS": "400"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let counts = requestsPerInstance(harness)
        let total = counts.values.reduce(0, +)
        #expect(counts.count == 3, "every instance answered: \(counts)")
        #expect(total >= 12, "a 12 MB file in 1 MB batches: \(total)")
        for (pid, count) in counts {
            #expect(count >= total / 3 - 2, "instance \(pid) answered \(count) of \(total): \(counts)")
        }
        let peak = peakInFlight(harness, delay: 0.4)
        #expect(peak >= 5 && peak <= 6, "about 3 × 2 requests in flight at once, saw \(peak)")
        #expect(try await oneInstanceOutput(harness, arguments) == harness.output("out/big.csv.out"))
    }

    @Test func aGzipObjectIsSpreadOverTwoInstances() async throws {
        let harness = try Harness()
        let text = Self.csv(lines: 40_000)
        try harness.write("plain.csv", text)
        try harness.gzip("plain.csv", to: "in/data.csv.gz")
        let arguments = [
            "--input", "in/", "--split-type", "Line", "--compression", "Gzip", "--content-type", "text/csv",
            "--max-payload-mb", "1",
        ]
        let result = try await harness.run(
            arguments + ["--output", "out", "--instance-count", "2"],
            environment: ["TEST_FIXED_DELAY_MS": "100"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let counts = requestsPerInstance(harness)
        #expect(counts.count == 2 && counts.values.allSatisfy { $0 >= 1 }, "\(counts)")
        #expect(harness.output("out/data.csv.gz.out") == Self.answers(text))
        #expect(try await oneInstanceOutput(harness, arguments) == Self.answers(text))
    }

    @Test func twoFilesUseAllFourInstances() async throws {
        let harness = try Harness()
        try harness.write("in/a.csv", Self.csv(lines: 30_000))
        try harness.write("in/b.csv", Self.csv(lines: 30_000))
        let result = try await harness.run(
            [
                "--input", "in/", "--output", "out", "--split-type", "Line", "--max-payload-mb", "1",
                "--instance-count", "4",
            ],
            environment: ["TEST_FIXED_DELAY_MS": "200"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let counts = requestsPerInstance(harness)
        #expect(counts.count == 4, "all four instances answered: \(counts)")
        #expect(harness.output("out/a.csv.out") == Self.answers(Self.csv(lines: 30_000)))
        #expect(harness.output("out/b.csv.out") == Self.answers(Self.csv(lines: 30_000)))
    }

    @Test func aModelKilledMidJobIsRestartedAndTheJobCompletesExactly() async throws {
        let harness = try Harness()
        let text = Self.csv(lines: 4_000)
        try harness.write("in/a.csv", text)
        let process = try harness.start(
            [
                "--job-name", "killed", "--input", "in/", "--output", "out", "--split-type", "Line",
                "--max-payload-mb", "1", "--instance-count", "2", "--max-concurrent", "2",
                "--strategy", "SingleRecord",
            ],
            environment: ["TEST_FIXED_DELAY_MS": "5"]
        )
        // Once some requests are answered, kill one model server as the kernel's OOM killer would.
        let deadline = ContinuousClock.now + .seconds(60)
        var victim: Int32?
        while victim == nil, process.isRunning, ContinuousClock.now < deadline {
            let counts = requestsPerInstance(harness)
            if counts.values.reduce(0, +) > 200, let pid = counts.keys.sorted().first { victim = Int32(pid) }
            try await Task.sleep(for: .milliseconds(20))
        }
        let killed = try #require(victim, "the job ended before a model server could be killed")
        kill(killed, SIGKILL)
        let result = harness.result(of: process)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.output("out/a.csv.out") == Self.answers(text), "exact output despite the crash")
        let log = harness.output("batchform-logs/killed/batchform.log") ?? ""
        #expect(log.contains("was killed by signal 9"), "\(log)")
        #expect(log.contains("starting it again (restart 1 of 3)"), "\(log)")
        #expect(harness.modelServerPIDs().count == 3, "two servers, and one started again")
    }
}

/// Local instances of a GPU instance type split the machine's GPUs, found with a fake
/// `nvidia-smi` on PATH.
@Suite struct GPUSharingEndToEndTests {
    func fakeNvidiaSmi(in harness: Harness, gpus: Int) throws -> String {
        let lines = (0..<gpus).map { "echo \"GPU \($0): NVIDIA A10G (UUID: GPU-\($0)\($0)\($0))\"" }
        try harness.write("bin/nvidia-smi", "#!/bin/sh\n" + lines.joined(separator: "\n") + "\n")
        chmod(harness.root + "/bin/nvidia-smi", 0o755)
        return harness.root + "/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    }

    func visibleDevices(_ harness: Harness) -> [String] {
        harness.environments().map { $0["CUDA_VISIBLE_DEVICES"] ?? "unset" }.sorted()
    }

    @Test func fourGPUsAndFourInstancesGiveOneGPUEach() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "1\n2\n")
        let path = try fakeNvidiaSmi(in: harness, gpus: 4)
        let result = try await harness.run(
            ["--input", "in/", "--output", "out", "--instance-count", "4", "--instance-type", "ml.g5.xlarge"],
            environment: ["PATH": path]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(visibleDevices(harness) == ["0", "1", "2", "3"])
    }

    @Test func gpusPerInstanceOverridesTheSplit() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "1\n")
        let path = try fakeNvidiaSmi(in: harness, gpus: 4)
        let result = try await harness.run(
            [
                "--input", "in/", "--output", "out", "--instance-count", "2", "--instance-type", "ml.p3.8xlarge",
                "--env", "BATCHFORM_GPUS_PER_INSTANCE=2",
            ],
            environment: ["PATH": path]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(visibleDevices(harness) == ["0,1", "2,3"])
    }

    @Test func aCPUInstanceTypeGetsNoGPUs() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "1\n")
        let path = try fakeNvidiaSmi(in: harness, gpus: 4)
        let result = try await harness.run(
            ["--input", "in/", "--output", "out", "--instance-count", "2", "--instance-type", "ml.m5.xlarge"],
            environment: ["PATH": path]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(visibleDevices(harness) == ["unset", "unset"])
    }
}
