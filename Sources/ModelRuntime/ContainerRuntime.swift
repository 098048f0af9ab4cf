public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The container engine on this machine: `BATCHFORM_CONTAINER_ENGINE`, else `podman`, else `docker`.
public struct ContainerEngine: Sendable, Equatable {
    public var executable: String
    /// Docker and Podman spell GPU access differently.
    public var isDocker: Bool { (executable as NSString).lastPathComponent.hasPrefix("docker") }

    public init(executable: String) { self.executable = executable }

    /// Nil when there is none; an error when BATCHFORM_CONTAINER_ENGINE names nothing runnable.
    public static func find(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(RuntimeError) -> ContainerEngine? {
        if let chosen = environment["BATCHFORM_CONTAINER_ENGINE"], !chosen.isEmpty {
            guard let path = executablePath(chosen, environment: environment) else {
                throw RuntimeError(
                    .unsupportedImage,
                    "BATCHFORM_CONTAINER_ENGINE is \(chosen), which is not an executable on PATH or a path to one."
                )
            }
            return ContainerEngine(executable: path)
        }
        for name in ["podman", "docker"] {
            if let path = executablePath(name, environment: environment) { return ContainerEngine(executable: path) }
        }
        return nil
    }

    static func executablePath(_ name: String, environment: [String: String]) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let folders = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        return folders.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }
}

/// Runs a container image the way SageMaker does: `<engine> run <image> serve`, the model at
/// /opt/ml/model (read-only), port 8080 published on a free loopback port. The engine's client
/// runs in the foreground as the instance's process, so the container's output is the
/// instance's log and its exit is the instance's exit.
public struct ContainerRuntime: ModelRuntime {
    public let image: String
    public let engine: ContainerEngine

    /// `engine` nil: there is none on this machine, which is reported naming the image.
    public init(image: String, engine: ContainerEngine?) throws(RuntimeError) {
        self.image = image
        guard let engine else {
            throw RuntimeError(
                .unsupportedImage,
                "Image \(image) is a container image, and running it needs Podman or Docker, but neither podman nor docker "
                    + "is on PATH. Install one (apt-get install podman), or set BATCHFORM_CONTAINER_ENGINE to the engine's "
                    + "path. (A model server executable's path, or batchform/python for inference.py models, needs no engine.)"
            )
        }
        self.engine = engine
    }

    /// `batchform-<job>-<instance>`: what `podman ps -a --filter name=batchform-` finds as leftovers.
    public static func containerName(job: String, index: Int) -> String {
        let safe = job.lowercased().map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "-" }
        return "batchform-\(String(safe))-\(index + 1)"
    }

    /// The `run` arguments, after the engine's name. Variables are passed by name (`-e NAME`), so
    /// their values stay out of the process list; the engine reads them from its environment.
    public func runArguments(name: String, port: Int, launch: InstanceLaunch, variables: [String]) -> [String] {
        var arguments = [
            "run", "--name", name, "--init", "-p", "127.0.0.1:\(port):8080",
            "-v", "\(launch.modelDirectory):/opt/ml/model:ro",
        ]
        if let gpus = launch.gpus {
            // This instance's share of the machine's GPUs (GPUAssignment).
            arguments +=
                engine.isDocker
                ? ["--gpus", "device=\(gpus.joined(separator: ","))"]
                : gpus.flatMap { ["--device", "nvidia.com/gpu=\($0)"] }
        } else if GPUAssignment.isGPU(instanceType: launch.instanceType) {
            // Docker's NVIDIA runtime, or Podman's CDI devices (nvidia-ctk cdi generate).
            arguments += engine.isDocker ? ["--gpus", "all"] : ["--device", "nvidia.com/gpu=all"]
        }
        for variable in variables.sorted() { arguments += ["-e", variable] }
        return arguments + [image, "serve"]
    }

    public func launch(_ launch: InstanceLaunch) async throws -> any ModelInstance {
        let name = Self.containerName(job: launch.jobName, index: launch.index)
        // A crashed earlier run of this job may have left its container.
        _ = await EngineCommand.run(engine, ["rm", "-f", name])
        try await ensureImage()
        let port = try LoopbackPort.free()
        var contract = launch.environment
        contract["SAGEMAKER_BIND_TO_PORT"] = "8080"
        contract["SM_MODEL_DIR"] = "/opt/ml/model"
        var environment = ProcessInfo.processInfo.environment
        environment.merge(contract) { _, value in value }
        // The container runs apart from the engine's client, so killing the client (as a `kill -9`
        // of Batchform does) would leave it running: a watcher removes it when Batchform ends.
        let watch = try ChildProcess.whenBatchformEnds(run: [engine.executable, "rm", "-f", name])
        let process: ChildProcess
        do {
            process = try ChildProcess(
                executable: engine.executable,
                arguments: runArguments(name: name, port: port, launch: launch, variables: Array(contract.keys)),
                environment: environment,
                logFile: launch.logFile,
                appendingToLog: launch.restart > 0
            )
        } catch {
            close(watch)
            throw error
        }
        return ContainerInstance(
            name: name,
            baseURL: "http://127.0.0.1:\(port)",
            logFile: launch.logFile,
            process: process,
            engine: engine,
            watch: watch
        )
    }

    /// Uses the local image, else pulls it once.
    private func ensureImage() async throws(RuntimeError) {
        if await EngineCommand.run(engine, ["image", "inspect", image]).status == 0 { return }
        let pull = await EngineCommand.run(engine, ["pull", image])
        guard pull.status == 0 else {
            throw RuntimeError(
                .launchFailed,
                "Image \(image) is not on this machine and `\(engine.executable) pull \(image)` failed: "
                    + "\(pull.output.trimmingCharacters(in: .whitespacesAndNewlines).suffix(500)) "
                    + "Build it here (\(engine.executable) build -t \(image) .) or make its registry reachable."
            )
        }
    }
}

struct ContainerInstance: ModelInstance {
    let name: String
    let baseURL: String
    let logFile: String
    let process: ChildProcess
    let engine: ContainerEngine
    /// Held open while the instance lives; see `ChildProcess.whenBatchformEnds`.
    let watch: Int32

    func exitDescription() -> String? { process.exitStatus().map(ChildProcess.describe(exitStatus:)) }

    /// Stops the container through the engine (its init forwards SIGTERM), then removes it even if
    /// the engine's client had died.
    func stop() async {
        _ = await EngineCommand.run(engine, ["stop", "-t", "5", name])
        await process.stop()
        _ = await EngineCommand.run(engine, ["rm", "-f", name])
        close(watch)
    }
}

/// A short engine command (`rm`, `stop`, `image inspect`, `pull`) and what it printed.
enum EngineCommand {
    static func run(_ engine: ContainerEngine, _ arguments: [String]) async -> (status: Int32, output: String) {
        await ChildProcess.runToEnd(engine.executable, arguments)
    }
}
