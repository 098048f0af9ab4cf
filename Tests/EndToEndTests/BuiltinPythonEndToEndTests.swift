import Foundation
import Testing

/// The built-in model server with a real scikit-learn model. Needs BATCHFORM_PYTHON pointing at
/// an interpreter with scikit-learn (scripts/test sets it to .venv); skipped, saying so, without.
@Suite(.serialized, .enabled(if: RequiredPart.enabled(BuiltinPython.available), BuiltinPython.reason))
struct BuiltinPythonEndToEndTests {
    /// Fails in CI when the part this suite needs is missing (it would otherwise skip).
    @Test func thePartThisSuiteNeedsIsHere() {
        #expect(BuiltinPython.available, BuiltinPython.reason)
    }

    let harness: Harness
    let example = Harness.packageRoot + "/examples/sklearn-regression"

    init() throws {
        harness = try Harness()
        try BuiltinPython.run([example + "/train.py", harness.root + "/build"])
    }

    @Test func inferencePyInModelTarGzMatchesDirectPredictions() async throws {
        let result = try await harness.run(
            [
                "--image", "batchform/python", "--model-data", "build/model.tar.gz", "--verbose",
                "--model-env", "SAGEMAKER_MODEL_SERVER_WORKERS=2", "--input", "build/input/", "--output",
                "build/output",
                "--content-type", "text/csv", "--accept", "text/csv", "--split-type", "Line", "--strategy",
                "MultiRecord",
                "--max-payload-mb", "1", "--max-concurrent", "2", "--instance-count", "2",
            ],
            environment: ["BATCHFORM_PYTHON": BuiltinPython.interpreter]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            try BuiltinPython.run([example + "/check.py", harness.root + "/build"]).contains("OK: 6000 predictions")
        )
        #expect(
            result.stderr.contains(
                "[sagemaker logs]: MaxConcurrentTransforms=2, MaxPayloadInMB=1, BatchStrategy=MULTI_RECORD"
            )
        )
    }

    /// What the SageMaker SDK sends by default: the model archive holds only the model; the code
    /// is a separate sourcedir.tar.gz (starting with a "/" entry) named by SAGEMAKER_SUBMIT_DIRECTORY,
    /// and the image is the framework's URI.
    @Test func sdkStyleSourceDirAndFrameworkImageWork() async throws {
        try BuiltinPython.run([
            "-c",
            """
            import tarfile
            with tarfile.open('\(harness.root)/model-only.tar.gz', 'w:gz') as t:
                t.add('\(harness.root)/build/model/model.joblib', arcname='model.joblib')
            with tarfile.open('\(harness.root)/sourcedir.tar.gz', 'w:gz') as t:
                root = tarfile.TarInfo('/'); root.type = tarfile.DIRTYPE; t.addfile(root)
                t.add('\(example)/code/inference.py', arcname='inference.py')
            """,
        ])
        let result = try await harness.run(
            [
                "--image", "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                "--model-data", "model-only.tar.gz", "--model-env", "SAGEMAKER_PROGRAM=inference.py",
                "--model-env", "SAGEMAKER_SUBMIT_DIRECTORY=file://\(harness.root)/sourcedir.tar.gz",
                "--model-env", "SAGEMAKER_MODEL_SERVER_WORKERS=1", "--input", "build/input/", "--output",
                "build/output",
                "--content-type", "text/csv", "--split-type", "Line",
            ],
            environment: ["BATCHFORM_PYTHON": BuiltinPython.interpreter]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            try BuiltinPython.run([example + "/check.py", harness.root + "/build"]).contains("OK: 6000 predictions")
        )
    }

    @Test func aHandlerErrorReachesTheFailureReason() async throws {
        try harness.write("bad/rows.csv", "0.1,0.2\nnot,a,number\n")
        let result = try await harness.run(
            [
                "--image", "batchform/python", "--model-data", "build/model.tar.gz",
                "--model-env", "SAGEMAKER_MODEL_SERVER_WORKERS=1", "--input", "bad/", "--output", "bad-out",
                "--content-type", "text/csv", "--split-type", "Line", "--strategy", "SingleRecord", "--max-retries",
                "0",
            ],
            environment: ["BATCHFORM_PYTHON": BuiltinPython.interpreter]
        )
        #expect(result.status == 1)
        #expect(result.stderr.contains("rows.csv: record 1 (bytes 0-6): the model answered HTTP 500: \"ValueError:"))
        #expect(harness.files(in: "bad-out").isEmpty)
    }
}

enum BuiltinPython {
    static let interpreter = ProcessInfo.processInfo.environment["BATCHFORM_PYTHON"] ?? ""

    static let available: Bool = {
        guard !interpreter.isEmpty else { return false }
        return (try? run(["-c", "import sklearn, joblib, numpy"])) != nil
    }()

    static let reason: Comment =
        "BATCHFORM_PYTHON must name a Python with scikit-learn (./scripts/test sets up .venv and sets it)"

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: interpreter)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "python \(arguments) failed"])
        }
        return String(decoding: data, as: UTF8.self)
    }
}
