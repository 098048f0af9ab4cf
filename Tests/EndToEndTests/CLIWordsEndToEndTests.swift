import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What `batchform` says, in the words the user typed: flag errors with suggestions, missing
/// flags, the version, unique job names, and the summary.
@Suite(.serialized, .timeLimit(.minutes(2))) struct CLIWordsEndToEndTests {
    @Test(arguments: [
        (
            ["--split-type", "line"],
            "--split-type: 'line' is not one of None, Line, RecordIO, TFRecord (did you mean Line?)"
        ),
        (
            ["--strategy", "multi"],
            "--strategy: 'multi' is not one of SingleRecord, MultiRecord (did you mean MultiRecord?)"
        ),
        (["--compression", "gzip"], "--compression: 'gzip' is not one of None, Gzip (did you mean Gzip?)"),
        (["--assemble-with", "Lines"], "--assemble-with: 'Lines' is not one of None, Line (did you mean Line?)"),
        (["--max-payload-mb", "200"], "--max-payload-mb: '200' must be at most 100"),
        (["--instance-count", "0"], "--instance-count: '0' must be at least 1"),
        (["--max-retries", "9"], "--max-retries: '9' must be at most 3"),
    ])
    func aBadFlagValueIsNamedWithASuggestion(_ flags: [String], _ expected: String) async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        let result = try await harness.run(["--input", "in/", "--output", "out"] + flags)
        #expect(result.status == 2)
        #expect(result.stderr.contains("batchform transform: " + expected), "\(result.stderr)")
        #expect(!result.stderr.contains("validation error"), "\(result.stderr)")
        #expect(harness.modelServerPIDs().isEmpty)
    }

    /// A value from a --request file keeps SageMaker's words, as the API's do.
    @Test func aBadValueFromARequestFileKeepsSageMakersWords() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        try harness.write("request.json", #"{"TransformInput": {"SplitType": "line"}}"#)
        let result = try await harness.run(["--request", "request.json", "--input", "in/", "--output", "out"])
        #expect(result.status == 2)
        #expect(
            result.stderr.contains("Value 'line' at 'transformInput.splitType' failed to satisfy constraint"),
            "\(result.stderr)"
        )
    }

    @Test func missingFlagsAreNamedAsFlags() async throws {
        let harness = try Harness()
        let bare = try await harness.run([], withImage: false)
        #expect(bare.status == 2)
        #expect(bare.stderr.contains("--input (or --manifest), --output and --image are required."), "\(bare.stderr)")
        #expect(!bare.stderr.contains("Value null"))
        let noOutput = try await harness.run(["--input", "in/"])
        #expect(noOutput.stderr.contains("batchform transform: --output is required."), "\(noOutput.stderr)")
    }

    @Test func versionNamesTheReleaseAndCommit() async throws {
        let harness = try Harness()
        let result = try await harness.runBinary(["--version"])
        #expect(result.status == 0)
        let version = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(version.hasPrefix("0.2.0"), "\(version)")
        // Built inside a git checkout: the commit is known.
        if FileManager.default.fileExists(atPath: Harness.packageRoot + "/.git") {
            #expect(
                version.range(of: #"^0\.2\.0 \([0-9a-f]{7,12}\)$"#, options: .regularExpression) != nil,
                "\(version)"
            )
        }
    }

    @Test func twoJobsStartedAtOnceGetDifferentNames() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        let first = try harness.start(["--input", "in/", "--output", "out1"], stdoutName: "one")
        let second = try harness.start(["--input", "in/", "--output", "out2"], stdoutName: "two")
        for process in [first, second] { process.waitUntilExit() }
        #expect(first.terminationStatus == 0 && second.terminationStatus == 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: harness.root + "/batchform-logs").sorted()
        #expect(names.count == 2, "\(names)")
        for name in names {
            #expect(
                name.range(of: #"^batchform-\d{8}-\d{6}-\d{3}[0-9a-f]{4}$"#, options: .regularExpression) != nil,
                "\(name)"
            )
            #expect(name.count <= 63)
        }
    }

    @Test func theSummarySaysWhereOutputsAndLogsAreInFittingUnits() async throws {
        let harness = try Harness()
        try harness.write("in/good.txt", (0..<3000).map { "line \($0)" }.joined(separator: "\n") + "\n")
        try harness.write("in/bad.txt", "ok\nFAIL here\n")
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--job-name", "summary-job",
        ])
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0 == "Failed" }.count == 1, "the status once: \(lines)")
        #expect(lines.contains("  objects:    1 of 2 completed (1 failed)"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("  records:    3,000, ") && $0.contains(" KB in ") }, "\(lines)")
        #expect(lines.contains("  outputs:    \(harness.root)/out"))
        #expect(lines.contains("  logs:       \(harness.root)/batchform-logs/summary-job"))
        #expect(lines.contains("Failed objects (1):"))
        #expect(
            lines.contains {
                $0.hasPrefix("  \(harness.root)/in/bad.txt: records 1-2 (bytes 0-12): the model answered HTTP 400")
            }
        )
    }

    @Test func anInterruptedObjectIsStoppedNotFailed() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", (0..<200).map { "line \($0)" }.joined(separator: "\n"))
        let process = try harness.start(
            ["--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", "SingleRecord"],
            environment: ["TEST_DELAY_MS": "100"]
        )
        let deadline = ContinuousClock.now + .seconds(30)
        while harness.requests().isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(process.processIdentifier, SIGINT)
        let result = harness.result(of: process)
        #expect(result.status == 130)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0 == "Stopped" }.count == 1, "\(lines)")
        #expect(lines.contains("  objects:    0 of 1 completed (1 stopped)"), "\(lines)")
        #expect(!result.stderr.contains("failed"), "\(result.stderr)")
    }

    /// A server with keys refuses unsigned calls; the client says what to set, and signs with no built-in key.
    @Test func jobsWithoutCredentialsSaysWhatToSet() async throws {
        let harness = try Harness()
        let server = try harness.startServer(keys: ("AKIDWORDS", "words-secret"))
        defer { server.process.terminate() }
        var environment = ProcessInfo.processInfo.environment
        for name in [
            "BATCHFORM_ACCESS_KEY_ID", "BATCHFORM_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        ] {
            environment[name] = nil
        }
        let result = try await harness.runBinary(["jobs", "list", "--endpoint", server.url], environment: environment)
        #expect(result.status == 2)
        #expect(
            result.stderr.contains("export BATCHFORM_ACCESS_KEY_ID and BATCHFORM_SECRET_ACCESS_KEY"),
            "\(result.stderr)"
        )
        #expect(!result.stderr.contains("UnrecognizedClientException"))
        environment["BATCHFORM_ACCESS_KEY_ID"] = "AKIDWORDS"
        environment["BATCHFORM_SECRET_ACCESS_KEY"] = "words-secret"
        let signed = try await harness.runBinary(["jobs", "list", "--endpoint", server.url], environment: environment)
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(signed.stdout.hasPrefix("NAME"))
    }
}
