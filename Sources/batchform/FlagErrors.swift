import Foundation
import TransformSpec

/// Validation errors in the words the user typed: a constraint that failed on a value given by a
/// flag names the flag and the value, and suggests the right spelling. Values from `--request`
/// and `--model` files keep SageMaker's wording, as the API's do.
enum FlagErrors {
    /// The request member each `batchform transform` flag sets.
    static let flagOfMember: [String: String] = [
        "transformJobName": "--job-name",
        "transformInput.dataSource.s3DataSource.s3Uri": "--input",
        "transformInput.contentType": "--content-type",
        "transformInput.splitType": "--split-type",
        "transformInput.compressionType": "--compression",
        "transformOutput.s3OutputPath": "--output",
        "transformOutput.accept": "--accept",
        "transformOutput.assembleWith": "--assemble-with",
        "batchStrategy": "--strategy",
        "maxPayloadInMB": "--max-payload-mb",
        "maxConcurrentTransforms": "--max-concurrent",
        "transformResources.instanceCount": "--instance-count",
        "transformResources.instanceType": "--instance-type",
        "dataProcessing.inputFilter": "--input-filter",
        "dataProcessing.outputFilter": "--output-filter",
        "dataProcessing.joinSource": "--join-source",
        "modelClientConfig.invocationsTimeoutInSeconds": "--invocation-timeout",
        "modelClientConfig.invocationsMaxRetries": "--max-retries",
        "environment.key": "--env",
        "environment.value": "--env",
        "environment": "--env",
        "primaryContainer.image": "--image",
        "primaryContainer.modelDataUrl": "--model-data",
        "primaryContainer.environment.key": "--model-env",
        "primaryContainer.environment.value": "--model-env",
        "primaryContainer.environment": "--model-env",
    ]

    /// The message for `error`, given which flags the user set; nil when no violation came from a flag.
    static func message(for error: ValidationException, flagsGiven: Set<String>) -> String? {
        var lines: [String] = []
        var fromFiles: [ConstraintViolation] = []
        for violation in error.violations {
            if let flag = flagOfMember[violation.path], flagsGiven.contains(flag) {
                lines.append(describe(violation, flag: flag))
            } else {
                fromFiles.append(violation)
            }
        }
        guard !lines.isEmpty else { return nil }
        if !fromFiles.isEmpty {
            let count = fromFiles.count
            lines.append(
                "\(count) validation error\(count == 1 ? "" : "s") detected: "
                    + fromFiles.map(\.description).joined(separator: "; ")
            )
        }
        return lines.joined(separator: "\n")
    }

    /// `--split-type: 'line' is not one of None, Line, RecordIO, TFRecord (did you mean Line?)`
    static func describe(_ violation: ConstraintViolation, flag: String) -> String {
        let value = violation.value.map { "'\($0)'" } ?? "no value"
        if let allowed = violation.allowed {
            let hint =
                violation.value.flatMap { suggestion(for: $0, among: allowed) }.map { " (did you mean \($0)?)" } ?? ""
            return "\(flag): \(value) is not one of \(allowed.joined(separator: ", "))\(hint)"
        }
        let constraint = violation.constraint
            .replacingOccurrences(of: "must have value less than or equal to ", with: "must be at most ")
            .replacingOccurrences(of: "must have value greater than or equal to ", with: "must be at least ")
            .replacingOccurrences(
                of: "must have length less than or equal to ",
                with: "must be at most this many characters: "
            )
            .replacingOccurrences(
                of: "must have length greater than or equal to ",
                with: "must be at least this many characters: "
            )
        return "\(flag): \(value) \(constraint)"
    }

    /// The allowed value the user most likely meant: the same but for case, the only one it begins,
    /// else one within two edits.
    static func suggestion(for value: String, among allowed: [String]) -> String? {
        if let sameButCase = allowed.first(where: { $0.lowercased() == value.lowercased() }) { return sameButCase }
        let starting = allowed.filter { !value.isEmpty && $0.lowercased().hasPrefix(value.lowercased()) }
        if starting.count == 1 { return starting[0] }
        let scored = allowed.map { ($0, editDistance($0.lowercased(), value.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 2 else { return nil }
        return best.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
