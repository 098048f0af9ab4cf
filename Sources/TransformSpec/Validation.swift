/// A request that breaks the API's constraints. `message` is SageMaker's own text, so what a user
/// sees here is what the AWS service would have said (and what boto3 shows as ValidationException).
public struct ValidationException: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// The member constraints that failed, when the error comes from them: for a front end that
    /// names its own inputs (the CLI names the flag the value came from).
    public var violations: [ConstraintViolation]

    public init(_ message: String, violations: [ConstraintViolation] = []) {
        self.message = message
        self.violations = violations
    }

    public var description: String { message }
}

/// One failed member constraint: where, what was given, and what is allowed.
public struct ConstraintViolation: Sendable, Equatable, CustomStringConvertible {
    /// The member path as SageMaker spells it, e.g. `transformInput.splitType`.
    public var path: String
    /// The value as given; nil when it was missing.
    public var value: String?
    /// SageMaker's words, e.g. `must have value less than or equal to 100`.
    public var constraint: String
    /// The allowed values of an enum member.
    public var allowed: [String]?

    /// SageMaker's text for it.
    public var description: String {
        "Value \(value.map { "'\($0)'" } ?? "null") at '\(path)' failed to satisfy constraint: Member \(constraint)"
    }
}

/// Collects constraint violations with the member path in lowerCamelCase, as the service reports
/// them: `1 validation error detected: Value 'x' at 'transformJobName' failed to satisfy
/// constraint: Member must satisfy regular expression pattern: ...`.
struct ConstraintChecker {
    private(set) var violations: [ConstraintViolation] = []

    mutating func fail(_ value: String?, at path: String, _ constraint: String, allowed: [String]? = nil) {
        violations.append(ConstraintViolation(path: path, value: value, constraint: constraint, allowed: allowed))
    }

    mutating func required<T>(_ value: T?, at path: String) {
        if value == nil { fail(nil, at: path, "must not be null") }
    }

    mutating func string(
        _ value: String?,
        at path: String,
        min: Int = 0,
        max: Int? = nil,
        pattern: String? = nil,
        oneOf allowed: [String]? = nil
    ) {
        guard let value else { return }
        if value.count < min {
            fail(value, at: path, "must have length greater than or equal to \(min)")
        }
        if let max, value.count > max {
            fail(value, at: path, "must have length less than or equal to \(max)")
        }
        if let pattern, !Self.matches(value, pattern) {
            fail(value, at: path, "must satisfy regular expression pattern: \(pattern)")
        }
        if let allowed, !allowed.contains(value) {
            fail(value, at: path, "must satisfy enum value set: [\(allowed.joined(separator: ", "))]", allowed: allowed)
        }
    }

    mutating func integer(_ value: Int?, at path: String, min: Int? = nil, max: Int? = nil) {
        guard let value else { return }
        if let min, value < min { fail(String(value), at: path, "must have value greater than or equal to \(min)") }
        if let max, value > max { fail(String(value), at: path, "must have value less than or equal to \(max)") }
    }

    mutating func map(
        _ value: [String: String]?,
        at path: String,
        maxEntries: Int,
        keyMax: Int,
        keyPattern: String,
        valueMax: Int
    ) {
        guard let value else { return }
        if value.count > maxEntries {
            fail("{...}", at: path, "must have length less than or equal to \(maxEntries)")
        }
        for (key, entry) in value.sorted(by: { $0.key < $1.key }) {
            string(key, at: "\(path).key", max: keyMax, pattern: keyPattern)
            string(entry, at: "\(path).value", max: valueMax)
        }
    }

    /// Whole-string match, as the API's patterns are anchored by the service.
    static func matches(_ value: String, _ pattern: String) -> Bool {
        guard let regex = try? Regex(pattern) else { return false }
        return (try? regex.wholeMatch(in: value)) != nil
    }

    func result() -> ValidationException? {
        switch violations.count {
        case 0: return nil
        case 1: return ValidationException("1 validation error detected: \(violations[0])", violations: violations)
        default:
            return ValidationException(
                "\(violations.count) validation errors detected: \(violations.map(\.description).joined(separator: "; "))",
                violations: violations
            )
        }
    }
}

enum Patterns {
    static let jobName = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    static let modelName = "[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"
    static let s3Uri = "(https|s3)://([^/]+)/?(.*)"
    static let kmsKeyId = "[a-zA-Z0-9:/_-]*"
    static let environmentKey = "[a-zA-Z_][a-zA-Z0-9_]{0,1023}"
    static let modelEnvironmentKey = "[a-zA-Z_][a-zA-Z0-9_]*"
    static let tag = "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)"
    static let experimentName = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}"
    static let amiVersion = "[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*"
    static let image = "[\\S]+"
}

/// Batchform runs on local data too: where the API takes an `s3://` URI, a plain path or a
/// `file://` URI is accepted as well. The API's own pattern applies to `s3://` and `https://`.
func checkLocation(_ value: String?, at path: String, _ checker: inout ConstraintChecker) {
    guard let value else { return }
    if value.hasPrefix("s3://") || value.hasPrefix("https://") {
        checker.string(value, at: path, max: 1024, pattern: Patterns.s3Uri)
    } else {
        checker.string(value, at: path, min: 1, max: 1024)
    }
}

func checkTags(_ tags: [Tag]?, at path: String, _ checker: inout ConstraintChecker) {
    guard let tags else { return }
    if tags.count > 50 { checker.fail("[...]", at: path, "must have length less than or equal to 50") }
    for (index, tag) in tags.enumerated() {
        checker.required(tag.Key, at: "\(path).\(index + 1).member.key")
        checker.required(tag.Value, at: "\(path).\(index + 1).member.value")
        checker.string(tag.Key, at: "\(path).\(index + 1).member.key", min: 1, max: 128, pattern: Patterns.tag)
        checker.string(tag.Value, at: "\(path).\(index + 1).member.value", max: 256, pattern: Patterns.tag)
    }
}
