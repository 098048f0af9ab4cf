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

    public static let maxInstanceRestartsName = "BATCHFORM_MAX_INSTANCE_RESTARTS"
    public static let gpusPerInstanceName = "BATCHFORM_GPUS_PER_INSTANCE"
    public static let defaultMaxInstanceRestarts = 3

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
    }
}
