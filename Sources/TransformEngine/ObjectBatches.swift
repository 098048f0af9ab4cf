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

    init(
        _ object: PlannedObject,
        store: any ObjectStore,
        configuration: TransformJobConfiguration,
        parameters: ResolvedParameters,
        processor: DataProcessor
    ) async throws {
        let stream = try await openRecordStream(
            store,
            object.input.uri,
            compression: configuration.compression
        )
        batcher = MiniBatcher(
            source: stream,
            splitType: configuration.splitType,
            strategy: parameters.batchStrategy,
            maxPayloadBytes: MiniBatcher.payloadBytes(megabytes: parameters.maxPayloadInMB),
            objectName: object.input.uri.description,
            csvQuoting: processor.settings.csvQuoting,
            header: processor.settings.header
        )
        self.processor = processor
    }

    /// The next batch to send, nil at the end of the object.
    mutating func next() async throws -> OutgoingBatch? {
        guard let batch = try await batcher.next() else { return nil }
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
