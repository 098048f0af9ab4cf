import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The safety defects, each through the real binary: where outputs go, archives that try to
/// leave their folder, numbers that used to crash, colliding outputs, and model servers that
/// outlived a killed Batchform.
@Suite(.serialized, .timeLimit(.minutes(2))) struct SafetyEndToEndTests {
    /// `--input data` (no slash, as the SDK's `upload_data` URIs come) wrote `out/data/a.csv.out`.
    @Test func aFolderGivenWithoutASlashWritesOutputsDirectlyUnderTheOutput() async throws {
        let harness = try Harness()
        try harness.write("data/a.csv", linesA.joined(separator: "\n") + "\n")
        try harness.write("data/sub/b.csv", linesB.joined(separator: "\n"))
        let result = try await harness.run(["--input", "data", "--output", "out", "--split-type", "Line"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.files(in: "out") == ["a.csv.out", "sub/b.csv.out"])
        #expect(harness.output("out/a.csv.out") == TestModel.answer(lines: linesA))
    }

    /// Builds a `.tar.gz` with Python's tarfile, which writes the hostile entries as asked.
    func archive(_ harness: Harness, _ name: String, _ script: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            """
            import io, tarfile
            t = tarfile.open('\(harness.root)/\(name)', 'w:gz', format=tarfile.PAX_FORMAT)
            def add(name, data=b'', kind=tarfile.REGTYPE, link='', pax=None):
                info = tarfile.TarInfo(name); info.type = kind; info.linkname = link; info.size = len(data)
                if pax: info.pax_headers = pax
                t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            \(script)
            t.close()
            """,
        ]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// `a -> .`, then `a/b -> ..`, then `a/b/<outside>/planted`: each link harmless alone.
    @Test func aSymlinkChainArchiveIsRefusedAndPlantsNothing() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        try archive(
            harness,
            "model.tar.gz",
            """
            add('a', kind=tarfile.SYMTYPE, link='.')
            add('a/b', kind=tarfile.SYMTYPE, link='..')
            add('a/b/planted.txt', b'pwned')
            add('root', kind=tarfile.SYMTYPE, link='/')
            """
        )
        let result = try await harness.run(["--input", "in/", "--output", "out", "--model-data", "model.tar.gz"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("refusing the entry \"a/b\""), "\(result.stderr)")
        #expect(harness.files(in: "out").isEmpty)
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func aHugePaxSizeIsAnErrorNotACrash() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        try archive(harness, "model.tar.gz", "add('weights.bin', b'x', pax={'size': '9223372036854775807'})")
        let result = try await harness.run(["--input", "in/", "--output", "out", "--model-data", "model.tar.gz"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("9223372036854775807"), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("overflow"))
    }

    @Test func theModelArchiveExpansionIsCapped() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        try archive(harness, "model.tar.gz", "add('weights.bin', b'0' * 5000)")
        let result = try await harness.run(
            ["--input", "in/", "--output", "out", "--model-data", "model.tar.gz"],
            environment: ["BATCHFORM_MAX_MODEL_BYTES": "4096"]
        )
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("refusing the entry \"weights.bin\""), "\(result.stderr)")
        #expect(result.stderr.contains("BATCHFORM_MAX_MODEL_BYTES"))
    }

    /// 2^62 crashed the process with "arithmetic overflow" (MaxConcurrentTransforms × MaxPayloadInMB).
    @Test func aHugeMaxConcurrentTransformsIsARangeError() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--max-concurrent", "4611686018427387904", "--max-payload-mb", "6",
        ])
        #expect(result.status == 2, "\(result.stderr)")
        // In the flag's words; the API answers SageMaker's range error (Tests/ServerAPITests/test_safety.py).
        #expect(
            result.stderr.contains(
                "batchform transform: --max-concurrent: '4611686018427387904' must be at most 2147483647"
            ),
            "\(result.stderr)"
        )
        #expect(harness.modelServerPIDs().isEmpty)
    }

    @Test func aContainerAskingForTooMuchFailsTheJobNamingItsAnswer() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        let answer = #"{"MaxConcurrentTransforms": 4611686018427387904, "MaxPayloadInMB": 6}"#
        let result = try await harness.run(
            ["--input", "in/", "--output", "out", "--split-type", "Line"],
            environment: ["TEST_EXEC_PARAMS": answer]
        )
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("/execution-parameters answered \(answer)"), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
        #expect(harness.files(in: "out").isEmpty)
    }

    @Test func aManifestListingAnObjectTwiceRunsNothing() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "x\n")
        try harness.write("in.manifest", #"[{"prefix": "in/"}, "a.txt", "a.txt"]"#)
        let result = try await harness.run(["--manifest", "in.manifest", "--output", "out"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("lists the input \(harness.root)/in/a.txt twice"), "\(result.stderr)")
        #expect(harness.modelServerPIDs().isEmpty)
    }

    /// A `kill -9` of the CLI left its model servers running with parent PID 1.
    @Test func modelServersDieWithAKilledBatchform() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", (0..<200).map { "line \($0)" }.joined(separator: "\n"))
        let process = try harness.start(
            [
                "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", "SingleRecord",
                "--instance-count", "2",
            ],
            environment: ["TEST_DELAY_MS": "200"]
        )
        let deadline = ContinuousClock.now + .seconds(30)
        while harness.requests().count < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let servers = harness.modelServerPIDs()
        #expect(servers.count == 2)
        #expect(servers.allSatisfy(isRunning))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let gone = ContinuousClock.now + .seconds(10)
        while servers.contains(where: isRunning), ContinuousClock.now < gone {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(servers.allSatisfy { !isRunning($0) }, "still running: \(servers.filter(isRunning))")
        #expect(harness.files(in: "out").allSatisfy { !$0.hasSuffix(".out") })
    }
}

/// Alive and not a zombie waiting to be reaped (a killed parent's children go to a PID 1 that may
/// not reap them).
func isRunning(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let end = stat.lastIndex(of: ")")
    else { return false }
    return stat[stat.index(end, offsetBy: 2)] != "Z"
}
