import Foundation
import ObjectStorage
import Testing
import TransformSpec

@testable import TransformEngine

@Suite struct TransformPlanTests {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "plan-\(UUID().uuidString)"
        for file in ["data/in/a.csv", "data/in/sub/b.csv", "data/in2/c.csv", "data/input.csv", "data/in/.hidden",
            "data/.secret/d.csv"]
        {
            let path = "\(root)/\(file)"
            try FileManager.default.createDirectory(
                atPath: String(path[..<path.lastIndex(of: "/")!]), withIntermediateDirectories: true
            )
            FileManager.default.createFile(atPath: path, contents: Data("x\n".utf8))
        }
    }

    func plan(
        _ input: String, type: String = "S3Prefix", output: String = "out", stores: ObjectStores = ObjectStores()
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
            for: try TransformJobConfiguration(validating: request), stores: stores, workingDirectory: root
        )
        return Dictionary(uniqueKeysWithValues: plan.objects.map {
            (String($0.input.uri.description.dropFirst(root.count + 1)), String($0.output.description.dropFirst(root.count + 1)))
        })
    }

    @Test func aFolderPrefixNamesOutputsRelativeToIt() async throws {
        #expect(try await plan("data/in/") == ["data/in/a.csv": "out/a.csv.out", "data/in/sub/b.csv": "out/sub/b.csv.out"])
    }

    @Test func aPrefixIsARawStringPrefixAsInS3() async throws {
        // "data/in" also matches in2/ and input.csv; outputs are relative to "data/".
        #expect(
            try await plan("data/in")
                == [
                    "data/in/a.csv": "out/in/a.csv.out", "data/in/sub/b.csv": "out/in/sub/b.csv.out",
                    "data/in2/c.csv": "out/in2/c.csv.out", "data/input.csv": "out/input.csv.out",
                ]
        )
    }

    @Test func aPrefixNamingOneFileGivesItsBasename() async throws {
        #expect(try await plan("file://\(root)/data/input.csv", output: "out/") == ["data/input.csv": "out/input.csv.out"])
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
        FileManager.default.createFile(atPath: manifest, contents: Data(body.utf8))
        #expect(
            try await plan("list.manifest", type: "ManifestFile")
                == ["data/in/a.csv": "out/in/a.csv.out", "data/in2/c.csv": "out/in2/c.csv.out"]
        )
    }

    @Test func aManifestEntryThatDoesNotExistIsNamed() async throws {
        let manifest = "\(root)/bad.manifest"
        FileManager.default.createFile(atPath: manifest, contents: Data(#"[{"prefix": "data/"}, "missing.csv"]"#.utf8))
        await #expect {
            _ = try await plan("bad.manifest", type: "ManifestFile")
        } throws: { error in
            (error as? ValidationException)?.message.contains("missing.csv, which does not exist") == true
        }
    }

    @Test func aManifestKeyThatWouldWriteOutsideTheOutputPathIsRefused() async throws {
        let manifest = "\(root)/escape.manifest"
        let body = #"[{"prefix": "\#(root)/data/in/"}, "../in2/c.csv"]"#
        FileManager.default.createFile(atPath: manifest, contents: Data(body.utf8))
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
            (error as? StorageError)?.message.hasPrefix("No AWS credentials for s3:// locations: set AWS_ACCESS_KEY_ID") == true
        }
    }
}
