import Foundation
import Testing

/// DataProcessing and CSV handling through the real binary and the test model server. The
/// request fragments are the SageMaker documentation's (§3.5 of the reference), byte for byte.
struct DataProcessingEndToEndTests {
    let harness: Harness

    init() throws { harness = try Harness() }

    func run(
        _ input: String,
        _ flags: [String],
        contentType: String = "text/csv",
        environment: [String: String] = [:],
        strategy: String = "MultiRecord"
    ) async throws -> (status: Int32, output: String?, stderr: String) {
        try harness.write("in/data", input)
        let result = try await harness.run(
            [
                "--input", "in/", "--output", "out/", "--content-type", contentType, "--accept", contentType,
                "--split-type", "Line", "--assemble-with", "Line", "--strategy", strategy,
            ] + flags,
            environment: environment
        )
        return (result.status, harness.output("out/data.out"), result.stderr)
    }

    func requestFile(_ json: String) throws -> [String] {
        try harness.write("request.json", json)
        return ["--request", "request.json", "--job-name", "dp", "--input", "in/", "--output", "out/"]
    }

    @Test func vector1ExplicitDefaultsGiveInferencesOnly() async throws {
        let flags = try requestFile(
            #"{"ModelName":"m","DataProcessing":{"InputFilter":"$","JoinSource":"None","OutputFilter":"$"}}"#
        )
        let result = try await run("1,2,3\n4,5,6\n", flags)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "3,2,1\n6,5,4\n")
    }

    @Test(arguments: ["MultiRecord", "SingleRecord"])
    func vector2JoinEverythingCSV(_ strategy: String) async throws {
        let flags = try requestFile(
            #"{"ModelName":"m","DataProcessing":{"JoinSource":"Input"},"TransformOutput":{"Accept":"text/csv","AssembleWith":"Line"},"TransformInput":{"ContentType":"text/csv","SplitType":"Line"}}"#
        )
        let result = try await run("1,2,3\n4,5,6\n", flags, environment: ["TEST_ANSWER": "first"], strategy: strategy)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "1,2,3,1\n4,5,6,4\n")
    }

    @Test func vector3DropTheIdBeforeInferenceAndJoinAllInput() async throws {
        let result = try await run(
            "id1,10,20,30,40\nid2,11,21,31,41\n",
            ["--input-filter", "$[1:]", "--join-source", "Input"],
            environment: ["TEST_ANSWER": "first"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "id1,10,20,30,40,10\nid2,11,21,31,41,11\n")
        let sent = try String(
            contentsOfFile: harness.reports + "/"
                + (harness.files(in: "reports").first { $0.hasPrefix("requests") } ?? ""),
            encoding: .utf8
        )
        #expect(sent.contains("\"records\": 2"))
    }

    @Test func vector4KeepOnlyTheIdAndThePrediction() async throws {
        let result = try await run(
            "id1,10,20,30,40\nid2,11,21,31,41\n",
            ["--input-filter", "$[1:]", "--join-source", "Input", "--output-filter", "$[0,-1]"],
            environment: ["TEST_ANSWER": "first"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "id1,10\nid2,11\n")
    }

    @Test func vector5JSONJoinPutsTheAnswerUnderSageMakerOutput() async throws {
        let result = try await run(
            "{\"key\":1}\n{\"key\":2, \"note\": \"spaces are normalized\"}\n[1,2]\n",
            ["--join-source", "Input"],
            contentType: "application/jsonlines",
            environment: ["TEST_ANSWER": "label"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.output
                == "{\"key\":1,\"SageMakerOutput\":{\"label\":1}}\n{\"key\":2,\"note\":\"spaces are normalized\",\"SageMakerOutput\":{\"label\":2}}\n{\"SageMakerInput\":[1,2],\"SageMakerOutput\":{\"label\":1}}\n"
        )
    }

    @Test func jsonFiltersSelectKeys() async throws {
        let result = try await run(
            "{\"id\":7,\"features\":[3,4]}\n",
            ["--input-filter", "$.features", "--join-source", "Input", "--output-filter", "$['id','SageMakerOutput']"],
            contentType: "application/jsonlines",
            environment: ["TEST_ANSWER": "label"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "{\"id\":7,\"SageMakerOutput\":{\"label\":3}}\n")
    }

    @Test func vector6TwoRangesAreRefusedBeforeAnythingRuns() async throws {
        let result = try await run("1,2,3\n", ["--join-source", "Input", "--output-filter", "$[0:2,246:]"])
        #expect(result.status == 2)
        #expect(
            result.stderr.contains(
                "Invalid JsonPath: $[0:2,246:]: only single range filters of format (eg: [1:5]) are supported. Format [0:2,246:] is not supported"
            )
        )
        #expect(harness.files(in: "reports").isEmpty)
    }

    @Test func vector7ARowWithSpacesKeepsItsBytes() async throws {
        let row = "0, 1c1a8d1e-6a3c-4b1e-9a5e-3f2a1b0c9d8e,2022-08-30T00:49:15Z"
        let result = try await run(row + "\n", ["--join-source", "Input"], environment: ["TEST_ANSWER": "first"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == row + ",0\n")
    }

    @Test func quotedFieldsWithNewlinesStayOneRecord() async throws {
        let input = "1,\"two\nlines, and \"\"quotes\"\"\",3\n4,plain,6\n"
        let result = try await run(
            input,
            ["--join-source", "Input", "--output-filter", "$[1,-1]"],
            environment: ["TEST_ANSWER": "first"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "\"two\nlines, and \"\"quotes\"\"\",1\nplain,4\n")
    }

    @Test func anOutOfRangeIndexFailsTheObjectClearly() async throws {
        let result = try await run(
            "1,2,3\n",
            ["--join-source", "Input", "--output-filter", "$[0,7]"],
            environment: ["TEST_ANSWER": "first"]
        )
        #expect(result.status == 1)
        #expect(result.stderr.contains("record 1: $[0,7] selects index 7, but the record has only 4 elements"))
        #expect(result.output == nil)
    }

    @Test func aCountMismatchNamesBothCounts() async throws {
        let result = try await run("1,2\n3,4\n", ["--join-source", "Input"], environment: ["TEST_EXTRA_LINE": "1"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("the model answered 3 records for 2 input records"))
    }

    @Test func headerSkipDropsTheFirstLine() async throws {
        let result = try await run("a,b\n1,2\n3,4\n", ["--env", "BATCHFORM_CSV_HEADER=skip"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "2,1\n4,3\n")
    }

    @Test func headerRepeatSendsItWithEveryBatchAndJoinKeepsOneHeaderLine() async throws {
        var input = "id,x,y\n"
        for index in 0..<100_000 { input += "r\(index),\(index),\(index * 2)\n" }
        let result = try await run(
            input,
            ["--env", "BATCHFORM_CSV_HEADER=repeat", "--join-source", "Input", "--max-payload-mb", "1"],
            environment: ["TEST_ANSWER": "first", "TEST_HEADER_ANSWER": "prediction"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.output?.split(separator: "\n") ?? []
        #expect(lines.count == 100_001)
        #expect(lines.first == "id,x,y,prediction")
        #expect(lines[1] == "r0,0,0,r0" && lines.last == "r99999,99999,199998,r99999")
        let requests = try String(
            contentsOfFile: harness.reports + "/" + harness.files(in: "reports").first { $0.hasPrefix("requests") }!,
            encoding: .utf8
        )
        #expect(requests.split(separator: "\n").count > 1)  // several batches, each with the header
    }

    @Test func headerRepeatWithoutJoinKeepsTheModelsHeaderOnce() async throws {
        var input = "id,x\n"
        for index in 0..<100_000 { input += "r\(index),\(index)\n" }
        let result = try await run(
            input,
            ["--env", "BATCHFORM_CSV_HEADER=repeat", "--max-payload-mb", "1"],
            environment: ["TEST_ANSWER": "first", "TEST_HEADER_ANSWER": "prediction"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.output?.split(separator: "\n") ?? []
        #expect(lines.count == 100_001 && lines.first == "prediction" && lines.filter { $0 == "prediction" }.count == 1)
    }
}
