import Foundation
import Records
import Testing

#if canImport(Glibc)
import Glibc
#endif

let linesA = (1...300).map { "row \($0),\($0 * 7 % 13)" }
let linesB = ["alpha", "beta\r", "gamma"]

/// Every test runs the real binary against real model server processes; they share the
/// machine's two cores, so they run one at a time.
@Suite(.serialized) struct TransformEndToEndTests {
    @Test(arguments: ["SingleRecord", "MultiRecord"])
    func lineSplitWritesOneOutputPerInputInOrderKeepingSubfolders(_ strategy: String) async throws {
        let harness = try Harness()
        try harness.write("in/a.csv", linesA.joined(separator: "\n") + "\n")
        try harness.write("in/sub/b.csv", linesB.joined(separator: "\n"))
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", strategy,
            "--content-type", "text/csv", "--accept", "text/plain", "--max-payload-mb", "1",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.output("out/a.csv.out") == TestModel.answer(lines: linesA))
        #expect(harness.output("out/sub/b.csv.out") == TestModel.answer(lines: linesB))
        #expect(harness.files(in: "out") == ["a.csv.out", "sub/b.csv.out"])
        let requests = harness.requests()
        #expect(
            requests.allSatisfy {
                $0["content_type"] as? String == "text/csv" && $0["accept"] as? String == "text/plain"
            }
        )
        if strategy == "SingleRecord" {
            #expect(requests.count == linesA.count + linesB.count)
            #expect(requests.allSatisfy { $0["records"] as? Int == 1 && $0["has_cr"] as? Bool == false })
        } else {
            // Each small file fits one request; CRLF lines arrive intact.
            #expect(requests.count == 2)
            #expect(requests.contains { $0["has_cr"] as? Bool == true })
        }
    }

    @Test func multiRecordBatchesStayUnderMaxPayload() async throws {
        let harness = try Harness()
        let lines = (0..<40_000).map { "record number \($0) with some padding text" }
        try harness.write("in/big.txt", lines.joined(separator: "\n") + "\n")
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", "MultiRecord",
            "--max-payload-mb", "1", "--max-concurrent", "3",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.output("out/big.txt.out") == TestModel.answer(lines: lines))
        let requests = harness.requests()
        #expect(requests.count >= 2)
        #expect(
            requests.allSatisfy {
                ($0["bytes"] as? Int ?? .max) <= 1_048_576 && $0["ends_with_newline"] as? Bool == true
            }
        )
    }

    @Test(arguments: ["SingleRecord", "MultiRecord"])
    func recordIOAndTFRecordFramesReachTheModelWhole(_ strategy: String) async throws {
        let harness = try Harness()
        let records: [[UInt8]] = (0..<50).map { index in (0..<(index % 9)).map { UInt8(truncatingIfNeeded: $0 * index) }
        }
        try harness.write("in/data.rec", records.flatMap { RecordEncoding.recordIO($0) })
        try harness.write("tf/data.tfrecord", records.flatMap { RecordEncoding.tfRecord($0) })
        for (input, split, contentType) in [
            ("in/", "RecordIO", "application/x-recordio"), ("tf/", "TFRecord", "application/x-tfrecord"),
        ] {
            let result = try await harness.run([
                "--input", input, "--output", "out-\(split)", "--split-type", split, "--strategy", strategy,
                "--content-type", contentType, "--max-concurrent", "2",
            ])
            #expect(result.status == 0, "\(result.stderr)")
        }
        #expect(harness.output("out-RecordIO/data.rec.out") == TestModel.answer(binaryRecords: records))
        #expect(harness.output("out-TFRecord/data.tfrecord.out") == TestModel.answer(binaryRecords: records))
        let perRequest = harness.requests().map { $0["records"] as? Int ?? -1 }
        #expect(perRequest.count == (strategy == "SingleRecord" ? 100 : 2))
    }

    @Test func splitTypeNoneSendsEachObjectWhole() async throws {
        let harness = try Harness()
        try harness.write("in/one.bin", [UInt8](repeating: 1, count: 1000))
        try harness.write("in/two.bin", [UInt8](repeating: 2, count: 5))
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--content-type", "application/octet-stream",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.output("out/one.bin.out") == "bytes=1000\n")
        #expect(harness.output("out/two.bin.out") == "bytes=5\n")
    }

    @Test func anObjectOverMaxPayloadFailsOnlyThatObject() async throws {
        let harness = try Harness()
        try harness.write("in/big.bin", [UInt8](repeating: 1, count: 1_048_577))
        try harness.write("in/small.bin", [UInt8](repeating: 2, count: 10))
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--content-type", "application/octet-stream", "--max-payload-mb", "1",
        ])
        #expect(result.status == 1)
        #expect(
            result.stderr.contains(
                "big.bin: the object (SplitType None sends it whole) at byte offset 0 is larger than MaxPayloadInMB (1 MB)"
            )
        )
        #expect(harness.files(in: "out") == ["small.bin.out"])
    }

    @Test func gzipInputIsDecompressedAndKeepsItsName() async throws {
        let harness = try Harness()
        try harness.write("plain/a.csv", linesA.joined(separator: "\n") + "\n")
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/sh")
        gzip.arguments = ["-c", "mkdir -p in && (gzip -c plain/a.csv; gzip -c plain/a.csv) > in/a.csv.gz"]
        gzip.currentDirectoryURL = URL(fileURLWithPath: harness.root)
        try gzip.run()
        gzip.waitUntilExit()
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--compression", "Gzip", "--max-payload-mb",
            "1",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        // Two concatenated gzip members read as one stream.
        #expect(harness.output("out/a.csv.gz.out") == TestModel.answer(lines: linesA + linesA))
    }

    @Test func aManifestSelectsObjectsAndNamesOutputsByEntry() async throws {
        let harness = try Harness()
        try harness.write("data/x/a.txt", "one\n")
        try harness.write("data/y/b.txt", "two\n")
        try harness.write("data/z/c.txt", "three\n")
        try harness.write("list.manifest", #"[{"prefix": "file://\#(harness.root)/data/"}, "y/b.txt", "x/a.txt"]"#)
        let result = try await harness.run(["--manifest", "list.manifest", "--output", "out", "--split-type", "Line"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.files(in: "out") == ["x/a.txt.out", "y/b.txt.out"])
        #expect(harness.output("out/y/b.txt.out") == "owt\n")
    }

    @Test func severalInstancesWithConcurrencyKeepInputOrder() async throws {
        let harness = try Harness()
        let files = (0..<6).map { file in
            (0..<120).map { "file \(file) line \($0) \(String(repeating: "x", count: $0 % 17))" }
        }
        for (index, lines) in files.enumerated() {
            try harness.write("in/f\(index).txt", lines.joined(separator: "\n") + "\n")
        }
        let result = try await harness.run(
            [
                "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", "SingleRecord",
                "--instance-count", "3", "--max-concurrent", "4",
            ],
            environment: ["TEST_DELAY_MS": "8"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        for (index, lines) in files.enumerated() {
            #expect(harness.output("out/f\(index).txt.out") == TestModel.answer(lines: lines))
        }
        // Work was spread over all three servers, each kept as busy as MaxConcurrentTransforms allows and no busier.
        #expect(Set(harness.requests().compactMap { $0["pid"] as? Int }).count == 3)
        #expect(harness.requests().compactMap { $0["in_flight"] as? Int }.max() == 4)
        #expect(harness.modelServerPIDs().count == 3)
        #expect(harness.modelServerPIDs().allSatisfy { !isAlive($0) })
    }

    @Test func theModelSeesTheContractEnvironment() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "a\n")
        try harness.write("model/weights.bin", "w")
        let result = try await harness.run([
            "--model-data", "model/",
            "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", "MultiRecord",
            "--max-payload-mb", "2",
            "--max-concurrent", "3", "--model-env", "MODEL_SHARED=model", "--model-env", "MODEL_ONLY=m",
            "--env", "MODEL_SHARED=job", "--env", "JOB_ONLY=j",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let environment = try #require(harness.environments().first)
        #expect(environment["MODEL_SHARED"] == "job")
        #expect(environment["MODEL_ONLY"] == "m")
        #expect(environment["JOB_ONLY"] == "j")
        #expect(environment["SAGEMAKER_BATCH"] == "true")
        #expect(environment["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == "2")
        #expect(environment["SAGEMAKER_BATCH_STRATEGY"] == "MULTI_RECORD")
        #expect(environment["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] == "3")
        #expect(environment["SAGEMAKER_BIND_TO_PORT"].flatMap(Int.init) != nil)
        #expect(environment["SM_MODEL_DIR"] == harness.root + "/model")
    }

    @Test func theContainersExecutionParametersApplyWhereTheRequestIsSilent() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", linesB.joined(separator: "\n"))
        let result = try await harness.run(
            ["--input", "in/", "--output", "out", "--split-type", "Line", "--job-name", "exec-params"],
            environment: [
                "TEST_EXEC_PARAMS":
                    #"{"MaxConcurrentTransforms": 2, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 1}"#
            ]
        )
        #expect(result.status == 0, "\(result.stderr)")
        // The engine's lines go to the job's log file; the terminal shows them only with --verbose.
        let log = harness.output("batchform-logs/exec-params/batchform.log") ?? ""
        #expect(
            log.contains("[sagemaker logs]: MaxConcurrentTransforms=2, MaxPayloadInMB=1, BatchStrategy=SINGLE_RECORD")
        )
        #expect(!result.stderr.contains("[sagemaker logs]"))
        #expect(harness.requests().count == 3)
        // Unset in the request, so not passed to the container.
        #expect(harness.environments().first?["SAGEMAKER_BATCH_STRATEGY"] == nil)
    }

    @Test func assembleWithLineAddsANewlineOnlyWhereAnAnswerLacksOne() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "abc\ndef\n")
        for assemble in ["None", "Line"] {
            let result = try await harness.run(
                [
                    "--input", "in/", "--output", "out-\(assemble)", "--split-type", "Line", "--strategy",
                    "SingleRecord",
                    "--assemble-with", assemble,
                ],
                environment: ["TEST_NO_TRAILING_NEWLINE": "1"]
            )
            #expect(result.status == 0, "\(result.stderr)")
        }
        #expect(harness.output("out-None/a.txt.out") == "cbafed")
        #expect(harness.output("out-Line/a.txt.out") == "cba\nfed\n")
    }

    @Test func anAnswerWaitingForAnEarlierOneDoesNotHoldBackTheNextRequests() async throws {
        // SLOW is answered a second late; the records after it, and the next object, go out meanwhile.
        let harness = try Harness()
        try harness.write("in/a.txt", "SLOW\nx\ny\n")
        try harness.write("in/b.txt", "z\n")
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", "SingleRecord",
            "--max-concurrent", "2",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.output("out/a.txt.out") == "WOLS\nx\ny\n")
        #expect(harness.output("out/b.txt.out") == "z\n")
        var arrivals: [String: Double] = [:]
        for request in harness.requests() {
            if let record = request["first_record"] as? String, let time = request["at"] as? Double {
                arrivals[record] = time
            }
        }
        let slow = try #require(arrivals["SLOW"])
        let nextObject = try #require(arrivals["z"])
        #expect(nextObject - slow < 0.5)
    }

    @Test func aFailingRecordLosesOnlyItsObject() async throws {
        let harness = try Harness()
        try harness.write("in/good1.txt", "a\nb\n")
        try harness.write("in/bad.txt", "ok\nthis will FAIL\nok\n")
        try harness.write("in/good2.txt", "c\n")
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", "SingleRecord",
            "--max-concurrent", "2",
            "--json",
        ])
        #expect(result.status == 1)
        #expect(harness.files(in: "out") == ["good1.txt.out", "good2.txt.out"])
        #expect(
            result.stderr.contains(
                "bad.txt: record 2 (bytes 3-16): the model answered HTTP 400: \"bad record: the model cannot read FAIL\""
            )
        )
        let describe = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(describe?["TransformJobStatus"] as? String == "Failed")
        #expect((describe?["FailureReason"] as? String)?.hasPrefix("ClientError: 1 of 3 input objects failed.") == true)
    }

    @Test func aModelThatNeverAnswersPingFailsTheJobWithItsLog() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "a\n")
        let result = try await harness.run(
            ["--input", "in/", "--output", "out", "--startup-timeout", "2", "--job-name", "no-ping"],
            environment: ["TEST_NO_PING": "1"]
        )
        #expect(result.status == 1)
        #expect(result.stderr.contains("AlgorithmError: Model container failed to respond to ping."))
        #expect(result.stderr.contains("test model: listening on"))
        #expect(harness.files(in: "out").isEmpty)
        #expect(harness.modelServerPIDs().allSatisfy { !isAlive($0) })
    }

    @Test func aModelThatKeepsCrashingIsReportedWithItsExitStatus() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "1\n2\n3\n")
        try harness.write("in/b.txt", "4\n")
        let result = try await harness.run(
            [
                "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", "SingleRecord",
                "--max-instance-restarts", "0",
            ],
            environment: ["TEST_CRASH_AFTER": "2"]
        )
        #expect(result.status == 1)
        #expect(result.stderr.contains("exited with status 3"))
        #expect(result.stderr.contains("test model: crashing on invocation 3"))
        // b.txt is refused or fails on the dead server, depending on timing; either way it is named.
        #expect(result.stderr.contains("2 of 2 input objects failed"))
        #expect(result.stderr.contains("/in/b.txt: "))
        #expect(harness.files(in: "out").isEmpty)
    }

    @Test func anInvalidRequestRunsNothing() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "a\n")
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--strategy", "MultiRecord", "--max-concurrent", "30",
            "--max-payload-mb", "10",
        ])
        #expect(result.status == 2)
        #expect(
            result.stderr.contains("ValidationException: MaxConcurrentTransforms * MaxPayloadInMB cannot exceed 100 MB")
        )
        #expect(harness.modelServerPIDs().isEmpty)
        let empty = try await harness.run(["--input", "nowhere/", "--output", "out"])
        #expect(empty.status == 2)
        #expect(empty.stderr.contains("No objects found under \"nowhere/\""))
    }

    @Test func requestAndModelFilesWorkAsBoto3BodiesAndFlagsOverride() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "xyz\n")
        try harness.write(
            "model.json",
            #"{"ModelName": "my-model", "PrimaryContainer": {"Image": "\#(Harness.testModel)", "Environment": {"MODEL_FROM_FILE": "yes"}}}"#
        )
        try harness.write(
            "request.json",
            #"""
            {"TransformJobName": "from-file", "ModelName": "my-model",
             "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "in/"}}, "SplitType": "Line"},
             "TransformOutput": {"S3OutputPath": "wrong", "AssembleWith": "Line"},
             "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}
            """#
        )
        let result = try await harness.run([
            "--request", "request.json", "--model", "model.json", "--output", "out", "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.output("out/a.txt.out") == "zyx\n")
        #expect(harness.environments().first?["MODEL_FROM_FILE"] == "yes")
        let describe = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(describe?["TransformJobName"] as? String == "from-file")
        #expect((describe?["TransformOutput"] as? [String: Any])?["S3OutputPath"] as? String == "out")
        try harness.write("other.json", #"{"ModelName": "other", "PrimaryContainer": {"Image": "x"}}"#)
        let wrongModel = try await harness.run(["--request", "request.json", "--model", "other.json"])
        #expect(wrongModel.status == 2)
        #expect(
            wrongModel.stderr.contains(
                "Could not find model \"arn:aws:sagemaker:us-east-1:000000000000:model/my-model\"."
            )
        )
    }

    @Test func aModelThatDoesNotAnswerInTimeIsRetriedThenFailsItsObject() async throws {
        let harness = try Harness()
        try harness.write("in/a.txt", "ok\n")
        try harness.write("in/b.txt", "HANG\n")
        let started = ContinuousClock.now
        let result = try await harness.run([
            "--input", "in/", "--output", "out", "--split-type", "Line", "--invocation-timeout", "1", "--max-retries",
            "1",
        ])
        #expect(result.status == 1)
        #expect(
            result.stderr.contains("no answer within InvocationsTimeoutInSeconds (1 s) after 2 attempt(s)"),
            "\(result.stderr)"
        )
        #expect(harness.files(in: "out") == ["a.txt.out"])
        #expect(ContinuousClock.now - started < .seconds(25))
    }

    @Test func aModelThatClosesEachConnectionStillGetsEveryRecord() async throws {
        let harness = try Harness()
        let lines = (0..<300).map { "record \($0)" }
        try harness.write("in/a.txt", lines.joined(separator: "\n") + "\n")
        let result = try await harness.run(
            [
                "--input", "in/", "--output", "out", "--split-type", "Line", "--strategy", "SingleRecord",
                "--max-concurrent", "4",
            ],
            environment: ["TEST_CLOSE_CONNECTION": "1"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(harness.output("out/a.txt.out") == TestModel.answer(lines: lines))
    }

    @Test func ctrlCStopsTheJobWritesNoOutputAndStopsTheModels() async throws {
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
        while harness.requests().isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!harness.requests().isEmpty)
        kill(process.processIdentifier, SIGINT)
        let result = harness.result(of: process)
        #expect(result.status == 130)
        #expect(result.stderr.contains("Stopped"))
        #expect(harness.files(in: "out").isEmpty)
        #expect(harness.modelServerPIDs().count == 2)
        #expect(harness.modelServerPIDs().allSatisfy { !isAlive($0) })
    }
}
