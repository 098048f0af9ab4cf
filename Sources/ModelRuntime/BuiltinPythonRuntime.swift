import Foundation
public import ObjectStorage

#if canImport(Glibc)
import Glibc
#endif

/// Runs SageMaker `inference.py` handlers with Batchform's built-in server
/// (`python -m batchform_serve serve`, from the repository's `python/` folder), using the
/// job's Python: `BATCHFORM_PYTHON` or `python3`.
public struct BuiltinPythonRuntime: ModelRuntime {
    public static let image = "batchform/python"

    /// Repository names of the SageMaker framework inference images whose serving stack the
    /// built-in server stands in for, matched in any registry, region or tag, with the framework
    /// whose default handlers each gets (`BATCHFORM_FRAMEWORK` for the server).
    static let frameworkRepositories: [String: String] = [
        "sagemaker-scikit-learn": "sklearn", "pytorch-inference": "pytorch", "sagemaker-xgboost": "xgboost",
        "xgboost-inference": "xgboost", "huggingface-pytorch-inference": "huggingface",
        "huggingface-tensorflow-inference": "huggingface",
    ]

    let python: String
    let packageDirectory: String
    /// sklearn, xgboost, pytorch or huggingface: whose default handlers the server uses.
    let framework: String

    /// True for `batchform/python` and framework image URIs such as
    /// `683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3`.
    public static func serves(image: String) -> Bool { framework(of: image) != nil }

    /// The framework an image stands for; `batchform/python` gets scikit-learn's defaults.
    static func framework(of image: String) -> String? {
        if image == Self.image { return "sklearn" }
        let withoutDigest = image.split(separator: "@").first.map(String.init) ?? image
        let lastPart = withoutDigest.split(separator: "/").last.map(String.init) ?? withoutDigest
        let repository = lastPart.split(separator: ":").first.map(String.init) ?? lastPart
        return frameworkRepositories[repository]
    }

    public init(image: String = BuiltinPythonRuntime.image) throws(RuntimeError) {
        try self.init(image: image, environment: ProcessInfo.processInfo.environment)
    }

    init(image: String = BuiltinPythonRuntime.image, environment: [String: String]) throws(RuntimeError) {
        framework = Self.framework(of: image) ?? "sklearn"
        let pythonName = environment["BATCHFORM_PYTHON"] ?? "python3"
        guard let python = Self.findExecutable(pythonName, path: environment["PATH"] ?? "/usr/bin:/bin") else {
            throw RuntimeError(
                .launchFailed,
                "The built-in model server needs Python 3: \(pythonName) was not found. Install python3 "
                    + "or set BATCHFORM_PYTHON to the interpreter that has your model's packages."
            )
        }
        guard let package = Self.findPackage(environment: environment) else {
            throw RuntimeError(
                .launchFailed,
                "The built-in model server's package (python/batchform_serve) was not found next to the "
                    + "batchform binary. Set BATCHFORM_PYTHON_PACKAGE_DIR to the folder that holds batchform_serve."
            )
        }
        self.python = python
        self.packageDirectory = package
    }

    public func launch(_ launch: InstanceLaunch) async throws -> any ModelInstance {
        var launch = launch
        let inherited = ProcessInfo.processInfo.environment["PYTHONPATH"].map { ":" + $0 } ?? ""
        launch.environment["PYTHONPATH"] = packageDirectory + inherited
        launch.environment["PYTHONUNBUFFERED"] = "1"
        launch.environment["BATCHFORM_FRAMEWORK"] = framework
        // The server refuses BATCHFORM_PRELOAD_MODEL on GPU types unless told otherwise.
        launch.environment["BATCHFORM_INSTANCE_TYPE"] = launch.instanceType
        return try await LocalExecutableRuntime(command: [python, "-m", "batchform_serve"]).launch(launch)
    }

    static func findExecutable(_ name: String, path: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    /// `BATCHFORM_PYTHON_PACKAGE_DIR`, else a `python/` or `share/batchform/python/` folder holding
    /// `batchform_serve` in a folder above the running binary (the repository, for a binary built
    /// in `.build/`; the prefix, for one installed by scripts/install).
    static func findPackage(environment: [String: String]) -> String? {
        if let explicit = environment["BATCHFORM_PYTHON_PACKAGE_DIR"] { return explicit }
        guard var folder = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            return nil
        }
        while folder.count > 1 {
            folder = String(folder[..<(folder.lastIndex(of: "/") ?? folder.startIndex)])
            // A checkout (python/ beside .build/), or an installed prefix (share/batchform/python).
            for candidate in [folder + "/python", folder + "/share/batchform/python"]
            where FileManager.default.fileExists(atPath: candidate + "/batchform_serve/__init__.py") {
                return candidate
            }
        }
        return nil
    }
}

/// The SageMaker SDK sends user code as `SAGEMAKER_SUBMIT_DIRECTORY`: a `.tar.gz` URI
/// (`s3://.../sourcedir.tar.gz` or `file://...`), a local folder, or `/opt/ml/model/code`
/// (the model's own `code/`). Archives are fetched and unpacked safely so the model server
/// always sees a local folder.
public enum SubmitDirectory {
    public static func localize(
        _ environment: [String: String],
        modelDirectory: String,
        stores: ObjectStores,
        scratch: String,
        workingDirectory: String,
        limits: ArchiveLimits
    ) async throws -> [String: String] {
        guard let value = environment["SAGEMAKER_SUBMIT_DIRECTORY"], !value.isEmpty else { return environment }
        var environment = environment
        if value == "/opt/ml/model/code" {
            environment["SAGEMAKER_SUBMIT_DIRECTORY"] = modelDirectory + "/code"
            return environment
        }
        let uri = try ObjectURI(parsing: value, workingDirectory: workingDirectory)
        guard value.hasSuffix(".tar.gz") else {
            if case .file(let path) = uri {
                try stores.local.confinement.check(path, "Environment SAGEMAKER_SUBMIT_DIRECTORY")
            }
            return environment
        }
        environment["SAGEMAKER_SUBMIT_DIRECTORY"] = try await ModelArtifacts.unpack(
            uri,
            stores: stores,
            into: scratch + "/code",
            limits: limits
        )
        return environment
    }
}
