import ByteStreams
import ModelRuntime
import NIOCore
import ObjectStorage
import Records
import TransformSpec

/// The per-object pipeline: read the object (through gzip when asked), split it into records,
/// pack them into mini-batches and put each through InputFilter and the CSV header rule.
struct ObjectBatches {
    private var batcher: MiniBatcher
    private let processor: DataProcessor
    private let tail: TailSplit?
    private let maxPayloadBytes: Int
    /// Where the next batch starts in the object.
    private var consumed: Int64 = 0

    /// The job's last bytes in smaller batches, so every slot has one and no instance idles at
    /// the end: once fewer full batches remain than there are slots, the rest is cut into about
    /// one batch per slot (never below `smallestBatch`, never above MaxPayloadInMB). The answers
    /// are the same records in the same order, so outputs are byte-identical.
    struct TailSplit: Sendable {
        /// `InstanceCount × MaxConcurrentTransforms`.
        var slots: Int
        /// The object's size, then the bytes of the plan's objects after it.
        var objectBytes: Int64
        var bytesAfter: Int64

        static let smallestBatch = 1 << 20
    }

    init(
        _ object: PlannedObject,
        store: any ObjectStore,
        configuration: TransformJobConfiguration,
        parameters: ResolvedParameters,
        processor: DataProcessor,
        tail: TailSplit? = nil
    ) async throws {
        let stream: any ByteStream
        var startOffset: Int64 = 0
        if let range = object.range {
            var lines = LineRangeStream(
                try await store.openReader(object.input.uri, from: LineRangeStream.readOffset(for: range)),
                range: range
            )
            startOffset = try await lines.skipToFirstLine()
            stream = lines
        } else {
            stream = try await openRecordStream(store, object.input.uri, compression: configuration.compression)
        }
        batcher = MiniBatcher(
            source: stream,
            splitType: configuration.splitType,
            strategy: parameters.batchStrategy,
            maxPayloadBytes: MiniBatcher.payloadBytes(megabytes: parameters.maxPayloadInMB),
            objectName: object.input.uri.description,
            csvQuoting: processor.settings.csvQuoting,
            header: processor.settings.header,
            startingAt: startOffset
        )
        self.processor = processor
        maxPayloadBytes = MiniBatcher.payloadBytes(megabytes: parameters.maxPayloadInMB)
        // Only where batches are whole records and sizes are known: not SingleRecord, not one
        // request per object, not gzip (its size is not the bytes the records take).
        let splittable =
            parameters.batchStrategy == .multiRecord && configuration.splitType != .none
            && configuration.compression == .none
        self.tail = splittable ? tail : nil
    }

    /// The next batch to send, nil at the end of the object.
    mutating func next() async throws -> OutgoingBatch? {
        if let tail {
            let remaining = max(0, tail.objectBytes - consumed) + tail.bytesAfter
            if remaining < Int64(tail.slots) * Int64(maxPayloadBytes) {
                batcher.preferredPayloadBytes = max(TailSplit.smallestBatch, Int(remaining / Int64(tail.slots)))
            }
        }
        guard let batch = try await batcher.next() else { return nil }
        consumed = batch.byteOffset + Int64(batch.payload.readableBytes)
        let header = batcher.header
        return OutgoingBatch(batch: batch, body: try processor.request(for: batch, header: header), header: header)
    }
}

/// A mini-batch and the body that goes to the model for it.
struct OutgoingBatch: Sendable {
    var batch: MiniBatch
    var body: ByteBuffer
    /// The object's CSV header line, when `BATCHFORM_CSV_HEADER` set one aside.
    var header: ByteBuffer?
    var info: BatchInfo { batch.info }
}

/// Where a batch sits in its object, for ordering, progress and messages.
struct BatchInfo: Sendable {
    var sequenceNumber: Int
    var firstRecord: Int
    var recordCount: Int
    var byteOffset: Int64
    var bytes: Int

    /// "records 1-120 (bytes 0-4095)", as failure messages name a batch.
    var recordsDescription: String {
        let records =
            recordCount == 1 ? "record \(firstRecord + 1)" : "records \(firstRecord + 1)-\(firstRecord + recordCount)"
        return "\(records) (bytes \(byteOffset)-\(byteOffset + Int64(bytes) - 1))"
    }
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
