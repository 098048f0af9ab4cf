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
