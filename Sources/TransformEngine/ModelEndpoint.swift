import Logging
import ModelRuntime
import NIOCore
import Synchronization

/// One instance as the scheduler sees it: it answers batches, may die, and can be started again.
/// The engine runs real model servers through `ServerEndpoint`; its tests use in-process fakes.
protocol ModelEndpoint: Sendable {
    var name: String { get }
    var logFile: String { get }
    /// Sends one batch once. Throws `RuntimeError` (see `RuntimeError.isRetryable`) or `CancellationError`.
    func invoke(_ body: ByteBuffer) async throws -> ByteBuffer
    /// Why the model server is no longer running ("exited with status 3"), nil while it runs.
    func exitDescription() -> String?
    /// Starts the model server again, with the same settings, and waits for its healthy `/ping`.
    func restart() async throws
    func stop() async
}

/// A model server process (or container) started by a `ModelRuntime`.
final class ServerEndpoint: ModelEndpoint {
    let name: String
    let logFile: String
    private let runtime: any ModelRuntime
    private let client: ModelClient
    private let request: Request
    private let current: Mutex<(instance: any ModelInstance, launch: InstanceLaunch)>

    /// How batches are posted: the same for every instance of a job.
    struct Request: Sendable {
        var contentType: String?
        var accept: String?
        var timeout: Duration
        var startupTimeout: Duration
    }

    init(
        instance: any ModelInstance,
        launch: InstanceLaunch,
        runtime: any ModelRuntime,
        client: ModelClient,
        request: Request
    ) {
        name = instance.name
        logFile = instance.logFile
        self.runtime = runtime
        self.client = client
        self.request = request
        current = Mutex((instance, launch))
    }

    var instance: any ModelInstance { current.withLock { $0.instance } }

    func invoke(_ body: ByteBuffer) async throws -> ByteBuffer {
        try await client.invoke(
            instance,
            body: body,
            contentType: request.contentType,
            accept: request.accept,
            timeout: request.timeout
        )
    }

    func exitDescription() -> String? { instance.exitDescription() }

    func restart() async throws {
        let (previous, launch) = current.withLock { current in
            current.launch.restart += 1
            return (current.instance, current.launch)
        }
        await previous.stop()
        let instance = try await runtime.launch(launch)
        current.withLock { $0.instance = instance }
        do {
            try await HealthCheck.waitUntilHealthy(instance, client: client, startupTimeout: request.startupTimeout)
        } catch {
            await instance.stop()
            throw error
        }
    }

    func stop() async { await instance.stop() }
}
