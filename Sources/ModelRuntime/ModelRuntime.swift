import Foundation
public import TransformSpec

#if canImport(Glibc)
import Glibc
#endif

/// What one model server instance needs to start.
public struct InstanceLaunch: Sendable {
    public var index: Int
    public var jobName: String
    public var modelDirectory: String
    /// The contract environment (see `InstanceEnvironment`), without the port, which the runtime picks.
    public var environment: [String: String]
    public var logFile: String
    /// TransformResources.InstanceType: a GPU type gets the machine's GPUs where the runtime can pass them.
    public var instanceType: String
    /// The devices this instance may use (`GPUAssignment`); nil leaves the choice to the runtime.
    public var gpus: [String]?
    /// 0 for the first start; each restart of a model server that died counts one up.
    public var restart = 0

    public init(
        index: Int,
        jobName: String,
        modelDirectory: String,
        environment: [String: String],
        logFile: String,
        instanceType: String = "ml.m5.large",
        gpus: [String]? = nil
    ) {
        self.index = index
        self.jobName = jobName
        self.modelDirectory = modelDirectory
        self.environment = environment
        self.logFile = logFile
        self.instanceType = instanceType
        self.gpus = gpus
    }
}

/// A running model server: where to reach it, whether it is still alive, how to stop it.
public protocol ModelInstance: Sendable {
    var name: String { get }
    var baseURL: String { get }
    var logFile: String { get }
    /// Why the server is no longer running ("exited with status 3"), nil while it runs.
    func exitDescription() -> String?
    func stop() async
}

/// Starts model servers of one kind. Adding a kind (the built-in Python server, a container
/// engine) is a new conforming type and a case in `ModelRuntimes.runtime(for:)`, nothing more.
public protocol ModelRuntime: Sendable {
    func launch(_ launch: InstanceLaunch) async throws -> any ModelInstance
}

public enum ModelRuntimes {
    /// The runtime for a model's `Image`.
    public static func runtime(for image: String, workingDirectory: String) throws(RuntimeError) -> any ModelRuntime {
        if BuiltinPythonRuntime.serves(image: image) { return try BuiltinPythonRuntime(image: image) }
        let path = image.hasPrefix("file://") ? String(image.dropFirst("file://".count)) : image
        if path.hasPrefix("/") || path.hasPrefix("./") || path.hasPrefix("../") || image.hasPrefix("file://")
            || FileManager.default.fileExists(atPath: workingDirectory + "/" + path)
        {
            let absolute = path.hasPrefix("/") ? path : workingDirectory + "/" + path
            guard access(absolute, X_OK) == 0 else {
                throw RuntimeError(
                    .unsupportedImage,
                    "Image \(image): \(absolute) is not an executable file. Make it executable (chmod +x) "
                        + "or fix the path; it is started as `\(absolute) serve`."
                )
            }
            return LocalExecutableRuntime(command: [absolute])
        }
        return try ContainerRuntime(image: image, engine: ContainerEngine.find())
    }
}

/// Runs a local command as `<command...> serve`, the way SageMaker runs a container.
public struct LocalExecutableRuntime: ModelRuntime {
    /// The executable and any arguments before `serve`.
    public let command: [String]

    public init(command: [String]) { self.command = command }

    public func launch(_ launch: InstanceLaunch) async throws -> any ModelInstance {
        let port = try LoopbackPort.free()
        var environment = ProcessInfo.processInfo.environment
        environment.merge(launch.environment) { _, contract in contract }
        environment["SAGEMAKER_BIND_TO_PORT"] = String(port)
        if let gpus = launch.gpus { environment["CUDA_VISIBLE_DEVICES"] = gpus.joined(separator: ",") }
        let process = try ChildProcess(
            executable: command[0],
            arguments: Array(command.dropFirst()) + ["serve"],
            environment: environment,
            logFile: launch.logFile,
            appendingToLog: launch.restart > 0
        )
        return LocalProcessInstance(
            name: "\(launch.jobName)-\(launch.index + 1)",
            baseURL: "http://127.0.0.1:\(port)",
            logFile: launch.logFile,
            process: process
        )
    }
}

struct LocalProcessInstance: ModelInstance {
    let name: String
    let baseURL: String
    let logFile: String
    let process: ChildProcess

    func exitDescription() -> String? { process.exitStatus().map(ChildProcess.describe(exitStatus:)) }
    func stop() async { await process.stop() }
}

/// The environment every instance gets, layered as SageMaker layers it: the Model's Environment,
/// the job's Environment on top (the job wins), then the platform's own variables. The three
/// batch parameters are set only where the request set them.
public enum InstanceEnvironment {
    public static func build(
        model: ModelDefinition,
        job: TransformJobConfiguration,
        modelDirectory: String
    )
        -> [String: String]
    {
        var environment = model.environment
        environment.merge(job.environment) { _, jobValue in jobValue }
        environment["SM_MODEL_DIR"] = modelDirectory
        environment["SAGEMAKER_BATCH"] = "true"
        if let payload = job.requestedMaxPayloadInMB { environment["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = String(payload) }
        if let strategy = job.requestedBatchStrategy {
            environment["SAGEMAKER_BATCH_STRATEGY"] = strategy.environmentValue
        }
        if let concurrency = job.requestedMaxConcurrentTransforms {
            environment["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = String(concurrency)
        }
        return environment
    }
}

enum LoopbackPort {
    /// A port the kernel just handed out on 127.0.0.1; the server binds it right after.
    static func free() throws(RuntimeError) -> Int {
        let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketDescriptor >= 0 else {
            throw RuntimeError(.launchFailed, "Cannot open a socket to find a free port.")
        }
        defer { close(socketDescriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(socketDescriptor, socketAddress, length) == 0
                    && getsockname(socketDescriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw RuntimeError(.launchFailed, "Cannot find a free loopback port.") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
