import Foundation
import Testing

/// Examples 2 and 3 (example 1 is BuiltinPythonEndToEndTests): each example's own train.py and
/// check.py around a transform through the built-in model server, with smaller batches than the
/// examples use so that every file spans several requests.
@Suite(.serialized, .enabled(if: RequiredPart.enabled(BuiltinPython.available), BuiltinPython.reason))
struct BundledExamplesEndToEndTests {
    let environment = ["BATCHFORM_PYTHON": BuiltinPython.interpreter]

    @Test func jsonLinesImagesAreClassifiedOneLinePerRecordInOrder() async throws {
        let harness = try Harness()
        let example = Harness.packageRoot + "/examples/digits-jsonlines"
        try BuiltinPython.run([example + "/train.py", harness.root + "/build"])
        let result = try await harness.run(
            [
                "--image", "batchform/python", "--model-data", "build/model.tar.gz",
                "--model-env", "SAGEMAKER_MODEL_SERVER_WORKERS=2",
                "--input", "build/input/", "--output", "build/output",
                "--content-type", "application/jsonlines", "--accept", "application/jsonlines",
                "--split-type", "Line", "--strategy", "SingleRecord", "--assemble-with", "Line", "--max-concurrent",
                "4",
            ],
            environment: environment
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try BuiltinPython.run([example + "/check.py", harness.root + "/build"]).contains("OK: 360 labels"))
    }

    @Test func aPcaJobsOutputFeedsAClusteringJob() async throws {
        let harness = try Harness()
        let example = Harness.packageRoot + "/examples/pca-then-kmeans"
        try BuiltinPython.run([example + "/train.py", harness.root + "/build"])
        let common = [
            "--content-type", "text/csv", "--accept", "text/csv", "--split-type", "Line", "--strategy", "MultiRecord",
            "--max-payload-mb", "1", "--assemble-with", "Line", "--model-env", "SAGEMAKER_MODEL_SERVER_WORKERS=1",
        ]
        let reduce = try await harness.run(
            ["--image", "batchform/python", "--model-data", "build/pca.tar.gz"]
                + ["--input", "build/input/", "--output", "build/components"] + common,
            environment: environment
        )
        #expect(reduce.status == 0, "\(reduce.stderr)")
        let cluster = try await harness.run(
            ["--image", "batchform/python", "--model-data", "build/kmeans.tar.gz"]
                + ["--input", "build/components/", "--output", "build/clusters"] + common,
            environment: environment
        )
        #expect(cluster.status == 0, "\(cluster.stderr)")
        #expect(try BuiltinPython.run([example + "/check.py", harness.root + "/build"]).contains("OK: 20000 rows"))
    }
}
