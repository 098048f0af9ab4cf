import Foundation
import Testing

/// A bad record does not sink its file: the real binary and the test model server, which
/// refuses (HTTP 400) any request holding a record with FAIL and dies on one with CRASH.
@Suite struct RecordErrorsEndToEndTests {
    /// `count` lines "line-000123 payload", with `marker` appended to the lines in `bad`.
    static func lines(_ count: Int, bad: Set<Int> = [], marker: String = "FAIL") -> [String] {
        (0..<count).map { "line-\(String(format: "%06d", $0)) payload" + (bad.contains($0) ? " \(marker)" : "") }
    }

    static func text(_ lines: [String]) -> String { lines.map { $0 + "\n" }.joined() }

    /// The byte offset of line `index`.
    static func offset(of index: Int, in lines: [String]) -> Int {
        lines.prefix(index).reduce(0) { $0 + $1.utf8.count + 1 }
    }

    /// What the test model answers for a line: the line reversed.
    static func answer(_ line: String) -> String { String(line.reversed()) }

    func report(_ harness: Harness, _ path: String) -> [[String: Any]] {
        (harness.output(path) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test func multiRecordSkipModeAnswersEveryOtherRecordInOrderAndReportsTheBadOnes() async throws {
        let harness = try Harness()
        let input = Self.lines(300, bad: [37, 150])
        try harness.write("in/a.csv", Self.text(input))
        let result = try await harness.run([
            "--job-name", "skip", "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy",
            "MultiRecord", "--max-record-errors", "5",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let expected = input.enumerated().filter { ![37, 150].contains($0.offset) }.map { Self.answer($0.element) }
        #expect(harness.output("out/a.csv.out") == Self.text(expected))
        let lines = report(harness, "batchform-logs/skip/record-errors.jsonl")
        #expect(lines.count == 2)
        #expect(lines.map { $0["record"] as? Int } == [37, 150])
        #expect(
            lines.map { $0["offset"] as? Int } == [Self.offset(of: 37, in: input), Self.offset(of: 150, in: input)]
        )
        #expect(lines.allSatisfy { ($0["input"] as? String)?.hasSuffix("/in/a.csv") == true })
        #expect(lines.allSatisfy { $0["status"] as? Int == 400 })
        #expect(lines.allSatisfy { ($0["message"] as? String)?.contains("cannot read FAIL") == true })
        #expect(lines.allSatisfy { $0["attempts"] as? Int == 1 })
        #expect(result.stderr.contains("Records failed: 2"), "\(result.stderr)")
    }

    @Test func placeholderModeKeepsTheOutputAlignedWithTheInput() async throws {
        let harness = try Harness()
        let input = Self.lines(120, bad: [0, 60, 119])
        try harness.write("in/a.csv", Self.text(input))
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--max-record-errors", "3",
            "--record-error-placeholder", "ERROR",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let output = (harness.output("out/a.csv.out") ?? "").split(separator: "\n", omittingEmptySubsequences: false)
        #expect(output.count == input.count + 1, "one line per input line, then the final newline")
        for (index, line) in input.enumerated() {
            #expect(String(output[index]) == ([0, 60, 119].contains(index) ? "ERROR" : Self.answer(line)))
        }
    }

    @Test func moreFailuresThanAllowedFailTheJobAndTheObjectThatCrossedTheLimit() async throws {
        let harness = try Harness()
        try harness.write("in/a.csv", Self.text(Self.lines(50)))
        try harness.write("in/b.csv", Self.text(Self.lines(50, bad: [10, 20, 30])))
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--max-record-errors", "2",
        ])
        #expect(result.status == 1)
        #expect(harness.output("out/b.csv.out") == nil, "the object that crossed the limit gets no .out")
        #expect(harness.output("out/a.csv.out") != nil)
        #expect(result.stderr.contains("more than BATCHFORM_MAX_RECORD_ERRORS=2"), "\(result.stderr)")
        #expect(result.stderr.contains("/in/b.csv crossed the limit"), "\(result.stderr)")
        #expect(result.stderr.contains("record 10 (byte"), "\(result.stderr)")
    }

    @Test func singleRecordWithTheSettingsInTheJobEnvironment() async throws {
        let harness = try Harness()
        let input = Self.lines(40, bad: [5, 6])
        try harness.write("in/a.csv", Self.text(input))
        let result = try await harness.run([
            "--job-name", "single", "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy",
            "SingleRecord", "--env", "BATCHFORM_MAX_RECORD_ERRORS=2", "--env",
            "BATCHFORM_RECORD_ERRORS_OUTPUT=reports/errors.jsonl",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let expected = input.enumerated().filter { ![5, 6].contains($0.offset) }.map { Self.answer($0.element) }
        #expect(harness.output("out/a.csv.out") == Self.text(expected))
        #expect(report(harness, "reports/errors.jsonl").map { $0["record"] as? Int } == [5, 6])
    }

    @Test func aRecordThatCrashesTheModelServerIsFoundAndReported() async throws {
        let harness = try Harness()
        let input = Self.lines(64, bad: [41], marker: "CRASH")
        try harness.write("in/a.csv", Self.text(input))
        let result = try await harness.run([
            "--job-name", "crash", "--input", "in/", "--output", "out", "--split-type", "Line", "--max-record-errors",
            "1",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let expected = input.enumerated().filter { $0.offset != 41 }.map { Self.answer($0.element) }
        #expect(harness.output("out/a.csv.out") == Self.text(expected))
        let lines = report(harness, "batchform-logs/crash/record-errors.jsonl")
        #expect(lines.map { $0["record"] as? Int } == [41])
        #expect(lines.first?["status"] is NSNull, "a crash has no HTTP status")
        // The first batch's attempts (4), then one crash per level of 64 records (6), then the record's own attempts.
        #expect(harness.modelServerPIDs().count <= 2 * 6 + 2 + 1, "\(harness.modelServerPIDs().count) starts")
    }

    @Test func gzipOffsetsAreInDecompressedBytes() async throws {
        let harness = try Harness()
        let input = Self.lines(500, bad: [321])
        try harness.write("plain.csv", Self.text(input))
        try harness.gzip("plain.csv", to: "in/a.csv.gz")
        let result = try await harness.run([
            "--job-name", "gz", "--input", "in/", "--output", "out", "--split-type", "Line", "--compression", "Gzip",
            "--max-record-errors", "1",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = report(harness, "batchform-logs/gz/record-errors.jsonl")
        #expect(lines.map { $0["offset"] as? Int } == [Self.offset(of: 321, in: input)])
    }

    @Test func oneBadRecordInAOneMegabyteBatchIsFoundInUnderFortyRequests() async throws {
        let harness = try Harness()
        // 25,000 records of 41 bytes: one batch of about 1 MB.
        let input = (0..<25_000).map { "r\(String(format: "%08d", $0)),\(String(repeating: "x", count: 30))" }
        var withBad = input
        withBad[17_345] += "FAIL"
        try harness.write("in/a.csv", Self.text(withBad))
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--max-payload-mb", "1",
            "--max-record-errors", "1",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let requests = harness.requests().count
        #expect(requests < 40, "\(requests) requests")
        let output = (harness.output("out/a.csv.out") ?? "").split(separator: "\n")
        #expect(output.count == 24_999)
    }
}
