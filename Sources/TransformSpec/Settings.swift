/// `BATCHFORM_*` settings that are numbers: checked where they enter, so no later arithmetic on
/// them can overflow.
public enum NumericSetting {
    /// The value of `name` in `environment`, or `defaultValue` when unset; a value that is not a
    /// whole number in `range` is refused with a message that says what is allowed.
    public static func integer(
        _ name: String,
        in environment: [String: String],
        default defaultValue: Int64,
        range: ClosedRange<Int64>
    ) throws(ValidationException) -> Int64 {
        guard let text = environment[name] else { return defaultValue }
        guard let value = Int64(text), range.contains(value) else {
            throw ValidationException(
                "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'."
            )
        }
        return value
    }

    /// The model archive's expansion cap: the operator's (process environment) limit, lowered but
    /// never raised by the job's own Environment.
    public static func maxModelBytes(
        process: [String: String],
        job: [String: String]
    ) throws(ValidationException) -> Int64 {
        let range: ClosedRange<Int64> = 1...(1 << 50)
        let operatorLimit = try integer(maxModelBytesName, in: process, default: defaultMaxModelBytes, range: range)
        let jobLimit = try integer(maxModelBytesName, in: job, default: operatorLimit, range: range)
        return min(operatorLimit, jobLimit)
    }

    public static let maxModelBytesName = "BATCHFORM_MAX_MODEL_BYTES"
    public static let defaultMaxModelBytes: Int64 = 100 << 30
}

/// The engine's `BATCHFORM_*` settings of a job's Environment (the model's, with the job's on top).
public struct EngineSettings: Sendable, Equatable {
    /// How often one instance's model server is started again after it dies.
    public var maxInstanceRestarts: Int
    /// GPUs each local instance gets; nil splits the machine's GPUs round-robin.
    public var gpusPerInstance: Int?
    /// How many records of the whole job may fail before the job fails; 0 is SageMaker's
    /// behaviour (a failed batch fails its object, nothing is isolated).
    public var maxRecordErrors: Int
    /// Where the failed records are reported (a path, `file://` or `s3://` URI of one JSON Lines
    /// object); nil: `record-errors.jsonl` in the job's log folder.
    public var recordErrorsOutput: String?
    /// A failed record's answer in the `.out`, so the output stays aligned with the input; nil
    /// leaves the record out.
    public var recordErrorPlaceholder: String?

    /// Whether failed batches are narrowed down to their bad records.
    public var isolatesRecords: Bool { maxRecordErrors > 0 }

    public static let maxInstanceRestartsName = "BATCHFORM_MAX_INSTANCE_RESTARTS"
    public static let gpusPerInstanceName = "BATCHFORM_GPUS_PER_INSTANCE"
    public static let defaultMaxInstanceRestarts = 3
    public static let maxRecordErrorsName = "BATCHFORM_MAX_RECORD_ERRORS"
    public static let recordErrorsOutputName = "BATCHFORM_RECORD_ERRORS_OUTPUT"
    public static let recordErrorPlaceholderName = "BATCHFORM_RECORD_ERROR_PLACEHOLDER"

    public init(environment: [String: String]) throws(ValidationException) {
        maxInstanceRestarts = Int(
            try NumericSetting.integer(
                Self.maxInstanceRestartsName,
                in: environment,
                default: Int64(Self.defaultMaxInstanceRestarts),
                range: 0...1000
            )
        )
        gpusPerInstance =
            environment[Self.gpusPerInstanceName] == nil
            ? nil
            : Int(try NumericSetting.integer(Self.gpusPerInstanceName, in: environment, default: 1, range: 1...64))
        maxRecordErrors = Int(
            try NumericSetting.integer(Self.maxRecordErrorsName, in: environment, default: 0, range: 0...(1 << 40))
        )
        recordErrorsOutput = environment[Self.recordErrorsOutputName].flatMap { $0.isEmpty ? nil : $0 }
        recordErrorPlaceholder = environment[Self.recordErrorPlaceholderName]
        if recordErrorsOutput != nil || recordErrorPlaceholder != nil, maxRecordErrors == 0 {
            let given = recordErrorsOutput != nil ? Self.recordErrorsOutputName : Self.recordErrorPlaceholderName
            throw ValidationException(
                "\(given) is set but \(Self.maxRecordErrorsName) is 0, so no record is isolated: "
                    + "set \(Self.maxRecordErrorsName) (--max-record-errors) to how many records may fail."
            )
        }
    }
}

/// The `BATCHFORM_*` settings of a job that runs on a cluster executor, from the coordinator's
/// environment with the job's Environment taking precedence.
public struct ClusterSettings: Sendable, Equatable {
    /// How large a byte range of a splittable input one work unit is.
    public var unitBytes: Int64
    /// How many workers may be asked for beyond `InstanceCount`, as others are lost.
    public var maxWorkerReplacements: Int
    /// How long a worker may go without a heartbeat before its units are leased to others.
    public var leaseTimeoutSeconds: Int
    /// How long the job waits for its first worker before failing with the scheduler's reason.
    public var workerStartTimeoutSeconds: Int

    public static let unitMBName = "BATCHFORM_UNIT_MB"
    public static let maxWorkerReplacementsName = "BATCHFORM_MAX_WORKER_REPLACEMENTS"
    public static let leaseTimeoutName = "BATCHFORM_LEASE_TIMEOUT_SECONDS"
    public static let workerStartTimeoutName = "BATCHFORM_WORKER_START_TIMEOUT_SECONDS"
    public static let defaultUnitMB: Int64 = 64

    public init(environment: [String: String], instanceCount: Int) throws(ValidationException) {
        unitBytes =
            try NumericSetting.integer(
                Self.unitMBName,
                in: environment,
                default: Self.defaultUnitMB,
                range: 1...1_048_576
            )
            << 20
        maxWorkerReplacements = Int(
            try NumericSetting.integer(
                Self.maxWorkerReplacementsName,
                in: environment,
                default: Int64(instanceCount),
                range: 0...10_000
            )
        )
        leaseTimeoutSeconds = Int(
            try NumericSetting.integer(Self.leaseTimeoutName, in: environment, default: 15, range: 2...3600)
        )
        workerStartTimeoutSeconds = Int(
            try NumericSetting.integer(Self.workerStartTimeoutName, in: environment, default: 600, range: 5...86_400)
        )
    }
}
