import Foundation
public import Logging
public import ModelRuntime
import NIOCore
public import ObjectStorage
import Records
import Synchronization
public import TransformSpec

/// How a job ended.
public struct TransformJobResult: Sendable {
    public var status: TransformJobStatus
    public var failureReason: String?
    /// Epoch seconds, as Describe reports them.
    public var startTime: Double
    public var endTime: Double
    /// Each failed object and why, in input order.
    public var failedObjects: [(object: String, reason: String)]
    public var parameters: ResolvedParameters?
}

/// Settings of a run that are not part of the SageMaker request.
public struct RunOptions: Sendable {
    public var logDirectory: String
    public var startupTimeout: Duration
    public var workingDirectory: String
    /// Endpoint and region for `s3://` locations where the command line gives them.
    public var s3: S3Options
    /// The local folders the job may touch (a server's `--allow-local-path`); the CLI's is unconfined.
    public var confinement: LocalConfinement = .unconfined
    /// Inputs (by URI) whose `.out` an earlier run of this job committed: they are not read again.
    public var completedInputs: Set<String> = []
    /// Told as each object ends; `.committing` comes before the commit, so a record of it
    /// survives a crash that happens during the commit.
    public var objectEvents: (@Sendable (ObjectEvent) async -> Void)?

    public init(
        logDirectory: String,
        startupTimeout: Duration,
        workingDirectory: String,
        s3: S3Options = S3Options(),
        confinement: LocalConfinement = .unconfined
    ) {
        self.logDirectory = logDirectory
        self.startupTimeout = startupTimeout
        self.workingDirectory = workingDirectory
        self.s3 = s3
        self.confinement = confinement
    }
}

/// What happened to one input object (named by its URI) and its `.out`.
public struct ObjectEvent: Sendable {
    public enum Kind: Sendable {
        case committing, completed
        case failed(reason: String)
    }

    public var input: String
    public var output: String
    public var kind: Kind
}

/// Runs one batch transform job: start the instances, stream every input object through them,
/// write each `.out` whole or not at all, stop the instances however the job ends.
public struct TransformJob: Sendable {
    public let model: ModelDefinition
    public let configuration: TransformJobConfiguration
    public let options: RunOptions
    public let progress = JobProgress()
    private let stores: ObjectStores
    private let logger: Logger

    public init(model: ModelDefinition, configuration: TransformJobConfiguration, options: RunOptions, logger: Logger) {
        self.model = model
        self.configuration = configuration
        self.options = options
        self.stores = ObjectStores(s3: options.s3, confinement: options.confinement)
        var logger = logger
        logger[metadataKey: "job"] = .string(configuration.name)
        self.logger = logger
    }

    /// Lists the inputs; a `ValidationException` here means nothing was started.
    public func plan() async throws -> TransformPlan {
        try await TransformPlan.make(for: configuration, stores: stores, workingDirectory: options.workingDirectory)
    }

    /// Runs the plan. Cancelling the calling task stops the job: status Stopped, no new `.out`.
    public func run(_ plan: TransformPlan) async -> TransformJobResult {
        let started = Date().timeIntervalSince1970
        let pending = plan.objects.filter { !options.completedInputs.contains($0.input.uri.description) }
        progress.update {
            $0.objectsTotal = plan.objects.count
            $0.objectsSkipped = plan.objects.count - pending.count
            $0.objectsCompleted = $0.objectsSkipped
            $0.bytesTotal = pending.reduce(0) { $0 + ($1.input.size ?? 0) }
        }
        if pending.count < plan.objects.count {
            logger.info(
                "Resuming: \(plan.objects.count - pending.count) of \(plan.objects.count) objects were completed by an earlier run."
            )
        }
        await stores.local.removeAbandonedTemporaries(for: pending.map(\.output))
        let scratch = NSTemporaryDirectory() + "batchform-\(configuration.name)-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var instances: [any ModelInstance] = []
        let client = ModelClient(maxConnectionsPerInstance: 64)
        func finish(
            _ status: TransformJobStatus,
            _ reason: String?,
            _ failed: [(String, String)] = [],
            _ parameters: ResolvedParameters? = nil
        ) async -> TransformJobResult {
            // Stopping must finish even when the job's task was cancelled.
            await Task.detached { [instances] in
                await withDiscardingTaskGroup { group in
                    for instance in instances { group.addTask { await instance.stop() } }
                }
                await client.shutdown()
            }.value
            progress.update { snapshot in
                snapshot.phase = status.rawValue
                for index in snapshot.instances.indices { snapshot.instances[index].state = "stopped" }
            }
            return TransformJobResult(
                status: status,
                failureReason: reason,
                startTime: started,
                endTime: Date().timeIntervalSince1970,
                failedObjects: failed,
                parameters: parameters
            )
        }
        do {
            progress.update { $0.phase = "starting model servers" }
            try FileManager.default.createDirectory(atPath: options.logDirectory, withIntermediateDirectories: true)
            let modelData = try model.modelDataURL.map {
                try ObjectURI(parsing: $0, workingDirectory: options.workingDirectory)
            }
            let jobEnvironment = model.environment.merging(configuration.environment) { $1 }
            let limits = ArchiveLimits(
                maxBytes: try NumericSetting.maxModelBytes(
                    process: ProcessInfo.processInfo.environment,
                    job: jobEnvironment
                )
            )
            let modelDirectory = try await ModelArtifacts.prepare(
                modelData: modelData,
                stores: stores,
                scratch: scratch,
                limits: limits
            )
            let runtime = try ModelRuntimes.runtime(for: model.image, workingDirectory: options.workingDirectory)
            let environment = try await SubmitDirectory.localize(
                InstanceEnvironment.build(model: model, job: configuration, modelDirectory: modelDirectory),
                modelDirectory: modelDirectory,
                stores: stores,
                scratch: scratch,
                workingDirectory: options.workingDirectory,
                limits: limits
            )
            for index in 0..<configuration.instanceCount {
                let launch = InstanceLaunch(
                    index: index,
                    jobName: configuration.name,
                    modelDirectory: modelDirectory,
                    environment: environment,
                    logFile: "\(options.logDirectory)/instance-\(index + 1).log",
                    instanceType: configuration.instanceType
                )
                let instance = try await runtime.launch(launch)
                instances.append(instance)
                progress.setInstance(index, name: instance.name, state: "starting")
            }
            try await withThrowingTaskGroup { group in
                for (index, instance) in instances.enumerated() {
                    group.addTask {
                        try await HealthCheck.waitUntilHealthy(
                            instance,
                            client: client,
                            startupTimeout: options.startupTimeout
                        )
                        progress.setInstance(index, name: instance.name, state: "serving")
                    }
                }
                try await group.waitForAll()
            }
            let parameters = ResolvedParameters(
                job: configuration,
                container: try await client.executionParameters(instances[0])
            )
            logger.info("[sagemaker logs]: \(parameters)")
            progress.update { $0.phase = "transforming" }
            let processor = DataProcessor(configuration.dataProcessing, splitType: configuration.splitType)
            let failures = try await transform(
                TransformPlan(objects: pending),
                on: instances,
                client: client,
                parameters: parameters,
                processor: processor
            )
            try Task.checkCancellation()
            if failures.isEmpty { return await finish(.Completed, nil, [], parameters) }
            return await finish(
                .Failed,
                failureReason(failures, of: pending.count, instances: instances),
                failures,
                parameters
            )
        } catch is CancellationError {
            return await finish(.Stopped, nil)
        } catch {
            if Task.isCancelled { return await finish(.Stopped, nil) }
            return await finish(.Failed, "\(error)")
        }
    }

    private func failureReason(
        _ failures: [(String, String)],
        of objectCount: Int,
        instances: [any ModelInstance]
    ) -> String {
        let kind = failures.contains { $0.1.contains("HTTP 4") } ? "ClientError" : "AlgorithmError"
        var reason =
            "\(kind): \(failures.count) of \(objectCount) input objects failed. "
            + failures.map { "\($0.0): \($0.1)" }.joined(separator: " ")
        for instance in instances {
            if let ended = instance.exitDescription() {
                reason +=
                    " The model server \(instance.name) \(ended)." + HealthCheck.logTail(instance.logFile, lines: 5)
            }
        }
        return reason
    }

    // MARK: - Scheduling

    /// Hands objects to whichever instance has a free slot; returns the failed objects.
    private func transform(
        _ plan: TransformPlan,
        on instances: [any ModelInstance],
        client: ModelClient,
        parameters: ResolvedParameters,
        processor: DataProcessor
    ) async throws -> [(String, String)] {
        let queue = ObjectQueue(plan.objects)
        let failures = Mutex<[Int: (String, String)]>([:])
        let record: @Sendable (Int, String, String) -> Void = { index, object, reason in
            failures.withLock { $0[index] = (object, reason) }
        }
        try await withThrowingDiscardingTaskGroup { group in
            for instance in instances {
                let lane = Lane(instance: instance, maxConcurrentTransforms: parameters.maxConcurrentTransforms)
                group.addTask {
                    try await withThrowingDiscardingTaskGroup { laneGroup in
                        // An instance whose server has died takes no more objects; others finish them.
                        while instance.exitDescription() == nil {
                            try await lane.acquireSlot()
                            guard let (index, object) = queue.next() else {
                                lane.releaseUnusedSlot()
                                return
                            }
                            try await dispatch(
                                object,
                                index: index,
                                lane: lane,
                                client: client,
                                parameters: parameters,
                                processor: processor,
                                group: &laneGroup,
                                recordFailure: record
                            )
                        }
                    }
                }
            }
        }
        let unprocessed = queue.remaining()
        for (index, object) in unprocessed {
            record(index, object.input.uri.description, "not processed: every model server had stopped.")
        }
        progress.update { $0.objectsFailed += unprocessed.count }
        return failures.withLock { $0.sorted { $0.key < $1.key }.map(\.value) }
    }

    /// Reads, splits and sends one object's mini-batches (each taking a lane slot); a sibling
    /// task assembles the answers in order. Called holding one slot, which the first batch uses.
    private func dispatch(
        _ object: PlannedObject,
        index: Int,
        lane: Lane,
        client: ModelClient,
        parameters: ResolvedParameters,
        processor: DataProcessor,
        group: inout ThrowingDiscardingTaskGroup<any Error>,
        recordFailure: @escaping @Sendable (Int, String, String) -> Void
    ) async throws {
        let (events, sink) = AsyncStream<AssemblyEvent>.makeStream()
        let abandoned = AbandonFlag()
        let assembler = ObjectAssembler(
            object: object,
            store: try stores.store(for: object.output),
            lane: lane,
            assembleWithLine: configuration.assembleWith == .line,
            progress: progress
        )
        let (input, output, objectEvents) = (
            object.input.uri.description, object.output.description, options.objectEvents
        )
        let report: @Sendable (ObjectEvent.Kind) async -> Void = {
            await objectEvents?(ObjectEvent(input: input, output: output, kind: $0))
        }
        group.addTask {
            if let reason = await assembler.assemble(
                events,
                abandoned: abandoned,
                beforeCommit: { await report(.committing) }
            ) {
                if Task.isCancelled {
                    // Interrupted by a stop, not failed: a resumed run does it again.
                    progress.update { $0.objectsStopped += 1 }
                    return
                }
                recordFailure(index, input, reason)
                progress.update { $0.objectsFailed += 1 }
                await report(.failed(reason: reason))
            } else {
                progress.update { $0.objectsCompleted += 1 }
                await report(.completed)
            }
        }
        var dispatched = 0
        var holdingSlot = true
        do {
            let stream = try await openRecordStream(
                try stores.store(for: object.input.uri),
                object.input.uri,
                compression: configuration.compression
            )
            var batcher = MiniBatcher(
                source: stream,
                splitType: configuration.splitType,
                strategy: parameters.batchStrategy,
                maxPayloadBytes: MiniBatcher.payloadBytes(megabytes: parameters.maxPayloadInMB),
                objectName: object.input.uri.description,
                csvQuoting: processor.settings.csvQuoting,
                header: processor.settings.header
            )
            while let batch = try await batcher.next() {
                let (body, header) = (try processor.request(for: batch, header: batcher.header), batcher.header)
                if !holdingSlot { try await lane.acquireSlot() }
                holdingSlot = false
                if abandoned.isSet {
                    lane.releaseUnusedSlot()
                    break
                }
                dispatched += 1
                let (configuration, instance, progress) = (self.configuration, lane.instance, self.progress)
                group.addTask {
                    let answer: Result<ByteBuffer, any Error>
                    let sent = ContinuousClock.now
                    do {
                        let response = try await client.invoke(
                            instance,
                            body: body,
                            contentType: configuration.contentType,
                            accept: configuration.accept,
                            timeout: .seconds(configuration.invocationTimeoutSeconds),
                            maxRetries: configuration.invocationMaxRetries
                        )
                        answer = .success(try processor.output(response, for: batch, header: header))
                    } catch {
                        answer = .failure(error)
                    }
                    lane.requests.release()
                    let elapsed = ContinuousClock.now - sent
                    progress.update { snapshot in
                        snapshot.invocationLatency.observe(seconds: elapsed.seconds)
                        if case .failure(let error) = answer, !(error is CancellationError) {
                            snapshot.modelErrors += 1
                            snapshot.recordsFailed += batch.recordCount
                        }
                        if let slot = snapshot.instances.firstIndex(where: { $0.name == instance.name }) {
                            snapshot.instances[slot].invocations += 1
                        }
                    }
                    sink.yield(.answer(batch.info, answer))
                }
            }
            if holdingSlot { lane.releaseUnusedSlot() }
            sink.yield(.dispatched(count: dispatched))
        } catch {
            if holdingSlot { lane.releaseUnusedSlot() }
            sink.yield(.readFailed(error, dispatched: dispatched))
            if error is CancellationError { throw error }
        }
    }
}

/// A model instance and the slots for sending it batches. A slot is two permits: one of
/// `requests` (`MaxConcurrentTransforms`), given back as soon as the answer arrives, and one of
/// `unwritten`, given back once the answer is written in order (or dropped). So an answer that
/// arrives early, waiting for an earlier one, does not keep the instance idle (it did at the end
/// of every object), and the answers waiting to be put in order stay bounded.
final class Lane: Sendable {
    let instance: any ModelInstance
    let requests: AsyncSemaphore
    let unwritten: AsyncSemaphore

    init(instance: any ModelInstance, maxConcurrentTransforms: Int) {
        self.instance = instance
        requests = AsyncSemaphore(permits: maxConcurrentTransforms)
        unwritten = AsyncSemaphore(permits: 2 * maxConcurrentTransforms)
    }

    func acquireSlot() async throws {
        try await unwritten.acquire()
        do {
            try await requests.acquire()
        } catch {
            unwritten.release()
            throw error
        }
    }

    /// For a slot taken but no batch sent with it.
    func releaseUnusedSlot() {
        requests.release()
        unwritten.release()
    }
}

/// Set once an object has failed, so its remaining batches are not sent.
final class AbandonFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

/// The objects not yet handed out, in input order.
final class ObjectQueue: Sendable {
    private let objects: [PlannedObject]
    private let cursor = Mutex(0)

    init(_ objects: [PlannedObject]) { self.objects = objects }

    func next() -> (Int, PlannedObject)? {
        cursor.withLock { cursor in
            guard cursor < objects.count else { return nil }
            defer { cursor += 1 }
            return (cursor, objects[cursor])
        }
    }

    func remaining() -> [(Int, PlannedObject)] {
        cursor.withLock { cursor in
            defer { cursor = objects.count }
            return (cursor..<objects.count).map { ($0, objects[$0]) }
        }
    }
}

struct BatchInfo: Sendable {
    var sequenceNumber: Int
    var firstRecord: Int
    var recordCount: Int
    var byteOffset: Int64
    var bytes: Int
}

extension MiniBatch {
    var info: BatchInfo {
        BatchInfo(
            sequenceNumber: sequenceNumber,
            firstRecord: firstRecord,
            recordCount: recordCount,
            byteOffset: byteOffset,
            bytes: payload.readableBytes
        )
    }
}

enum AssemblyEvent: Sendable {
    case answer(BatchInfo, Result<ByteBuffer, any Error>)
    case dispatched(count: Int)
    case readFailed(any Error, dispatched: Int)
}

extension Duration {
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
