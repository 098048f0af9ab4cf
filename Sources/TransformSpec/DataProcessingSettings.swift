/// How the first line of each CSV object is treated, chosen by the job's Environment
/// `BATCHFORM_CSV_HEADER` (the API shape stays SageMaker's).
public enum CSVHeaderMode: String, Sendable {
    /// The first line is data, as SageMaker treats it.
    case none
    /// The first line is dropped.
    case skip
    /// The first line is sent at the top of every mini-batch, so pandas-based handlers see column names.
    case `repeat`
}

/// The record formats DataProcessing understands.
public enum RecordFormat: Sendable {
    case csv, json, jsonLines

    public init?(contentType: String?) {
        switch contentType?.split(separator: ";").first.map({ String($0).trimmingSpaces.lowercased() }) {
        case "text/csv": self = .csv
        case "application/json": self = .json
        case "application/jsonlines", "application/x-jsonlines", "application/jsonl": self = .jsonLines
        default: return nil
        }
    }
}

/// A job's DataProcessing (InputFilter, JoinSource, OutputFilter) and CSV settings, checked as
/// SageMaker checks them before anything runs (§3.1 format rules, the JSONPath subset), together
/// with the Batchform settings of the job Environment (`BATCHFORM_CSV_HEADER`, `BATCHFORM_CSV_SPLIT`).
public struct DataProcessingSettings: Sendable {
    public var inputFilter: JSONPath
    public var outputFilter: JSONPath
    public var joinsInput: Bool
    public var header: CSVHeaderMode
    /// Line records split on newlines outside quotes (RFC 4180) rather than on every newline.
    public var csvQuoting: Bool
    public var inputFormat: RecordFormat?
    public var outputFormat: RecordFormat?

    /// No filtering, no join, no header: requests and outputs pass through untouched.
    public var changesRequests: Bool { !inputFilter.isRoot || header == .repeat }
    public var changesOutputs: Bool { joinsInput || !outputFilter.isRoot || header == .repeat }

    init(
        inputFilter inputFilterText: String,
        outputFilter outputFilterText: String,
        joinsInput: Bool,
        contentType: String?,
        accept: String?,
        splitType: SplitType,
        assembleWith: AssemblyType,
        environment: [String: String]
    ) throws(ValidationException) {
        inputFilter = try JSONPath(inputFilterText)
        outputFilter = try JSONPath(outputFilterText)
        self.joinsInput = joinsInput
        inputFormat = RecordFormat(contentType: contentType)
        outputFormat = RecordFormat(contentType: accept ?? contentType)

        let headerSetting = environment["BATCHFORM_CSV_HEADER"] ?? "none"
        guard let header = CSVHeaderMode(rawValue: headerSetting) else {
            throw ValidationException("BATCHFORM_CSV_HEADER must be none, skip or repeat, not '\(headerSetting)'.")
        }
        self.header = header
        let splitSetting = environment["BATCHFORM_CSV_SPLIT"] ?? "rfc4180"
        guard splitSetting == "rfc4180" || splitSetting == "newline" else {
            throw ValidationException("BATCHFORM_CSV_SPLIT must be rfc4180 or newline, not '\(splitSetting)'.")
        }
        csvQuoting = inputFormat == .csv && splitType == .line && splitSetting == "rfc4180"

        if header != .none, inputFormat != .csv || splitType != .line {
            throw ValidationException(
                "BATCHFORM_CSV_HEADER=\(header.rawValue) needs ContentType text/csv and SplitType Line."
            )
        }
        guard !inputFilter.isRoot || !outputFilter.isRoot || joinsInput else { return }
        let formats = "text/csv, application/json or application/jsonlines"
        guard let inputFormat else {
            throw ValidationException("DataProcessing needs ContentType \(formats); it is '\(contentType ?? "unset")'.")
        }
        guard let outputFormat else {
            throw ValidationException("DataProcessing needs Accept \(formats); it is '\(accept ?? "unset")'.")
        }
        for format in [inputFormat, outputFormat] where format != .json {
            guard splitType == .line, assembleWith == .line else {
                throw ValidationException(
                    "With DataProcessing and text/csv or application/jsonlines, set both SplitType and AssembleWith to Line."
                )
            }
        }
        if splitType == .line, assembleWith != .line {
            throw ValidationException("With DataProcessing and SplitType Line, set AssembleWith to Line.")
        }
        for (path, name) in [(inputFilter, "InputFilter"), (outputFilter, "OutputFilter")]
        where !path.isIndexOnly
            && (inputFormat == .csv || (name == "OutputFilter" && outputFormat == .csv && !joinsInput))
        {
            throw ValidationException(
                "\(name) \(path): for CSV data each row is taken as a JSON array, so only index based JSONPaths can be applied, e.g. $[0], $[1:]."
            )
        }
    }
}
