import Foundation
import ObjectStorage
import Testing
import TransformSpec

@testable import TransformEngine

@Suite struct TransformPlanTests {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "plan-\(UUID().uuidString)"
        for file in [
            "data/in/a.csv", "data/in/sub/b.csv", "data/in2/c.csv", "data/input.csv", "data/in/.hidden",
            "data/.secret/d.csv",
        ] {
            let path = "\(root)/\(file)"
            try FileManager.default.createDirectory(
                atPath: String(path[..<path.lastIndex(of: "/")!]),
                withIntermediateDirectories: true
            )
            _ = FileManager.default.createFile(atPath: path, contents: Data("x\n".utf8))
        }
    }

    func plan(
        _ input: String,
        type: String = "S3Prefix",
        output: String = "out",
        stores: ObjectStores = ObjectStores()
    ) async throws -> [String: String] {
        var request = CreateTransformJobRequest()
        request.TransformJobName = "job"
        request.ModelName = "model"
        var transformInput = TransformInput()
        transformInput.DataSource = .init(S3DataSource: .init(S3DataType: type, S3Uri: input))
        request.TransformInput = transformInput
        var transformOutput = TransformOutput()
        transformOutput.S3OutputPath = output
        request.TransformOutput = transformOutput
        var resources = TransformResources()
        resources.InstanceType = "ml.m5.large"
        resources.InstanceCount = 1
        request.TransformResources = resources
        let plan = try await TransformPlan.make(
            for: try TransformJobConfiguration(validating: request),
            stores: stores,
            workingDirectory: root
        )
        return Dictionary(
            uniqueKeysWithValues: plan.objects.map {
                (
                    String($0.input.uri.description.dropFirst(root.count + 1)),
                    String($0.output.description.dropFirst(root.count + 1))
                )
            }
        )
    }

    @Test func aFolderPrefixNamesOutputsRelativeToIt() async throws {
        #expect(
            try await plan("data/in/") == ["data/in/a.csv": "out/a.csv.out", "data/in/sub/b.csv": "out/sub/b.csv.out"]
        )
    }

    @Test func aPrefixIsARawStringPrefixAsInS3() async throws {
        // "data/in" also matches in2/ and input.csv. Keys that continue with "/" are inside the
        // folder it names (SageMaker's rule, reference §2.9); the others are relative to "data/".
        #expect(
            try await plan("data/in")
                == [
                    "data/in/a.csv": "out/a.csv.out", "data/in/sub/b.csv": "out/sub/b.csv.out",
                    "data/in2/c.csv": "out/in2/c.csv.out", "data/input.csv": "out/input.csv.out",
                ]
        )
    }

    /// The reference's examples of §2.9, for S3 keys; local paths go through the same function.
    @Test(arguments: [
        ("in", "in/a.csv", "a.csv"),
        ("in", "in/sub/b.csv", "sub/b.csv"),
        ("in/", "in/a.csv", "a.csv"),
        ("in/a.csv", "in/a.csv", "a.csv"),
        ("data/data_a", "data/data_a1.csv", "data_a1.csv"),
        ("data/data_a", "data/data_a_more/x.csv", "data_a_more/x.csv"),
        ("batch_input", "batch_input/iris_test.tfrecords", "iris_test.tfrecords"),
        ("prefix", "prefix/part-0.csv", "part-0.csv"),
        ("", "top.csv", "top.csv"),
        ("in/", "in//abs.csv", "/abs.csv"),
    ])
    func outputNamesFollowTheReference(_ prefix: String, _ key: String, _ relative: String) {
        #expect(outputRelativeKey(of: key, listedUnder: prefix) == relative)
    }

    @Test func aFolderGivenWithoutASlashNamesOutputsInsideIt() async throws {
        #expect(try await plan("data/in/sub") == ["data/in/sub/b.csv": "out/b.csv.out"])
    }

    /// S3 keys `in/abs.csv` and `in//abs.csv` are two objects, but one local file: refused, naming both.
    @Test func inputsWithOneLocalOutputAreRefusedNamingBoth() throws {
        func planned(_ key: String, _ relative: String) -> PlannedObject {
            PlannedObject(
                input: ListedObject(uri: .s3(bucket: "b", key: key), relativeKey: relative, size: 1),
                output: ObjectURI.file(path: "/tmp/out").appending(relative + ".out")
            )
        }
        #expect {
            try TransformPlan.refuseCollidingOutputs([
                planned("in/abs.csv", "abs.csv"), planned("in//abs.csv", "/abs.csv"),
            ])
        } throws: { error in
            let message = (error as? ValidationException)?.message ?? ""
            return message.contains("s3://b/in/abs.csv") && message.contains("s3://b/in//abs.csv")
                && message.contains("/tmp/out/abs.csv.out")
        }
        // On S3 the two outputs are two keys, as in SageMaker.
        let onS3 = ["abs.csv", "/abs.csv"].map {
            PlannedObject(
                input: ListedObject(uri: .s3(bucket: "b", key: "in/" + $0), relativeKey: $0, size: 1),
                output: ObjectURI.s3(bucket: "b", key: "out").appending($0 + ".out")
            )
        }
        try TransformPlan.refuseCollidingOutputs(onS3)
    }

    @Test func aManifestListingAKeyTwiceIsRefused() async throws {
        let manifest = root + "/twice.manifest"
        try Data(#"[{"prefix": "\#(root)/data/in/"}, "a.csv", "sub/b.csv", "a.csv"]"#.utf8).write(
            to: URL(fileURLWithPath: manifest)
        )
        await #expect {
            _ = try await plan(manifest, type: "ManifestFile")
        } throws: { error in
            (error as? ValidationException)?.message.contains("lists the input \(root)/data/in/a.csv twice") == true
        }
    }

    /// A server job's stores are confined: a manifest inside an allowed folder cannot read `/etc/`.
    @Test func aConfinedManifestCannotReachOutsideItsFolders() async throws {
        let manifest = root + "/data/etc.manifest"
        try Data(#"[{"prefix": "/etc/"}, "passwd"]"#.utf8).write(to: URL(fileURLWithPath: manifest))
        let confined = ObjectStores(confinement: LocalConfinement(allowing: [root + "/data"]))
        await #expect {
            _ = try await plan(manifest, type: "ManifestFile", output: "data/out/", stores: confined)
        } throws: { error in
            "\(error)".contains("its prefix /etc/ is outside") && "\(error)".contains("outside the local folders")
        }
    }

    /// A link inside an allowed input folder that leads out of it is refused, not followed.
    @Test func aConfinedInputCannotFollowALinkOut() async throws {
        try FileManager.default.createSymbolicLink(atPath: root + "/data/in/escape", withDestinationPath: "/etc")
        let confined = ObjectStores(confinement: LocalConfinement(allowing: [root + "/data"]))
        await #expect {
            _ = try await plan("data/in/", output: "data/out/", stores: confined)
        } throws: { error in
            "\(error)".contains("\(root)/data/in/escape") && "\(error)".contains("outside the local folders")
        }
    }

    @Test func aPrefixNamingOneFileGivesItsBasename() async throws {
        #expect(
            try await plan("file://\(root)/data/input.csv", output: "out/") == ["data/input.csv": "out/input.csv.out"]
        )
    }

    @Test func hiddenFilesAndFoldersAreSkipped() async throws {
        let planned = try await plan("data/")
        #expect(!planned.keys.contains { $0.contains("/.") })
        #expect(planned.count == 4)
    }

    @Test func noInputsIsAValidationError() async throws {
        await #expect {
            _ = try await plan("data/nothing/")
        } throws: { error in
            (error as? ValidationException)?.message.hasPrefix("No objects found under \"data/nothing/\"") == true
        }
    }

    @Test func aManifestListsPrefixPlusEachKey() async throws {
        let manifest = "\(root)/list.manifest"
        let body = #"[{"prefix": "\#(root)/data/"}, "in/a.csv", "in2/c.csv"]"#
        _ = FileManager.default.createFile(atPath: manifest, contents: Data(body.utf8))
        #expect(
            try await plan("list.manifest", type: "ManifestFile")
                == ["data/in/a.csv": "out/in/a.csv.out", "data/in2/c.csv": "out/in2/c.csv.out"]
        )
    }

    @Test func aManifestEntryThatDoesNotExistIsNamed() async throws {
        let manifest = "\(root)/bad.manifest"
        _ = FileManager.default.createFile(
            atPath: manifest,
            contents: Data(#"[{"prefix": "data/"}, "missing.csv"]"#.utf8)
        )
        await #expect {
            _ = try await plan("bad.manifest", type: "ManifestFile")
        } throws: { error in
            (error as? ValidationException)?.message.contains("missing.csv, which does not exist") == true
        }
    }

    @Test func aManifestKeyThatWouldWriteOutsideTheOutputPathIsRefused() async throws {
        let manifest = "\(root)/escape.manifest"
        let body = #"[{"prefix": "\#(root)/data/in/"}, "../in2/c.csv"]"#
        _ = FileManager.default.createFile(atPath: manifest, contents: Data(body.utf8))
        await #expect {
            _ = try await plan("escape.manifest", type: "ManifestFile")
        } throws: { error in
            (error as? ValidationException)?.message.contains("would put its output outside S3OutputPath") == true
        }
    }

    @Test func s3WithoutCredentialsSaysWhereTheyAreLookedFor() async throws {
        await #expect {
            _ = try await plan("s3://bucket/in/", stores: ObjectStores(environment: ["HOME": "/nonexistent"]))
        } throws: { error in
            (error as? StorageError)?.message.hasPrefix("No AWS credentials for s3:// locations: set AWS_ACCESS_KEY_ID")
                == true
        }
    }
}

/// The ETA is the bytes left at the rate so far; a count of files would climb while one big file runs.
@Suite struct ProgressEstimateTests {
    func snapshot(objects: Int, done: Int, bytes: Int64, of total: Int64) -> JobProgress.Snapshot {
        var snapshot = JobProgress.Snapshot()
        snapshot.objectsTotal = objects
        snapshot.objectsCompleted = done
        snapshot.bytesProcessed = bytes
        snapshot.bytesTotal = total
        snapshot.phase = "transforming"
        return snapshot
    }

    @Test func theETAIsTheBytesLeftAtTheRateSoFar() {
        let estimate = JobProgress.Estimate(snapshot(objects: 1, done: 0, bytes: 250, of: 1000), elapsedSeconds: 10)
        #expect(estimate.fractionDone == 0.25)
        #expect(estimate.bytesPerSecond == 25)
        #expect(estimate.secondsLeft == 30)
    }

    @Test func oneBigObjectStillCountsDown() {
        // One file of one: by files the job would stay at 0 % until the end.
        let early = JobProgress.Estimate(snapshot(objects: 1, done: 0, bytes: 100, of: 1000), elapsedSeconds: 2)
        let later = JobProgress.Estimate(snapshot(objects: 1, done: 0, bytes: 900, of: 1000), elapsedSeconds: 18)
        #expect(early.secondsLeft == 18)
        #expect(later.secondsLeft! < early.secondsLeft!)
        #expect(abs(later.secondsLeft! - 2) < 1e-9)
    }

    @Test func doneIsDoneAndUnknownIsUnknown() {
        let done = JobProgress.Estimate(snapshot(objects: 2, done: 2, bytes: 2000, of: 1000), elapsedSeconds: 5)
        #expect(done.fractionDone == 1 && done.secondsLeft == 0)
        // Gzip inputs read more bytes than they list: never past 99.9 % before the end.
        let gzip = JobProgress.Estimate(snapshot(objects: 2, done: 1, bytes: 5000, of: 1000), elapsedSeconds: 5)
        #expect(gzip.fractionDone == 0.999)
        let nothing = JobProgress.Estimate(JobProgress.Snapshot(), elapsedSeconds: 0)
        #expect(nothing.fractionDone == nil && nothing.secondsLeft == nil)
        let byRecords = JobProgress.Estimate(
            snapshot(objects: 0, done: 0, bytes: 0, of: 0),
            elapsedSeconds: 4,
            recordsTotal: 10
        )
        #expect(byRecords.fractionDone == 0)
    }

    @Test func anOlderSavedSnapshotStillDecodes() throws {
        let saved = #"{"objectsTotal": 3, "objectsCompleted": 1, "phase": "transforming"}"#
        let snapshot = try JSONDecoder().decode(JobProgress.Snapshot.self, from: Data(saved.utf8))
        #expect(snapshot.objectsTotal == 3 && snapshot.objectsStopped == 0 && snapshot.bytesTotal == 0)
    }
}
