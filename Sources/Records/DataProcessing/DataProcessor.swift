public import NIOCore
public import TransformSpec

/// SageMaker's DataProcessing (InputFilter → model → JoinSource=Input → OutputFilter) plus CSV
/// header handling, applied per mini-batch, with settings TransformSpec has already checked.
/// When none of it is asked for, `request` and `output` hand back the very buffers they were
/// given: the zero-copy path is untouched.
public struct DataProcessor: Sendable {
    public let settings: DataProcessingSettings
    /// How the batches' records are framed, to find their boundaries.
    public let framing: RecordFraming

    var inputFilter: JSONPath { settings.inputFilter }
    var outputFilter: JSONPath { settings.outputFilter }
    var joinsInput: Bool { settings.joinsInput }
    var header: CSVHeaderMode { settings.header }
    var inputFormat: RecordFormat? { settings.inputFormat }
    var outputFormat: RecordFormat? { settings.outputFormat }
    public var changesRequests: Bool { settings.changesRequests }
    public var changesOutputs: Bool { settings.changesOutputs }

    public init(_ settings: DataProcessingSettings, splitType: SplitType) {
        self.settings = settings
        framing = RecordFraming(splitType: splitType, csvQuoting: settings.csvQuoting)
    }

    /// The body to send for `batch`: its records through InputFilter, under the header when it repeats.
    public func request(for batch: MiniBatch, header headerLine: ByteBuffer?) throws -> ByteBuffer {
        guard changesRequests else { return batch.payload }
        var body = ByteBuffer()
        if header == .repeat, let headerLine {
            body.writeString(try filteredInput(Array(headerLine.readableBytesView), record: "the header"))
            body.writeString("\n")
        }
        let records = try records(of: batch)
        for (index, record) in records.enumerated() {
            body.writeString(try filteredInput(record, record: "record \(batch.firstRecord + index + 1)"))
            if records.count > 1 || batch.payload.readableBytesView.last == UInt8(ascii: "\n") {
                body.writeString("\n")
            }
        }
        return body
    }

    private func filteredInput(_ record: [UInt8], record name: String) throws -> String {
        if inputFilter.isRoot { return String(decoding: record, as: UTF8.self) }
        do {
            return try serialize(inputFilter.select(value(of: record, as: inputFormat)), as: inputFormat)
        } catch {
            throw RecordError(.dataProcessing, "\(name): InputFilter: \(error)")
        }
    }

    /// The output for `batch`: the model's answer split into one per input record, joined onto
    /// the input when asked, through OutputFilter, one line each. With a repeated header, the
    /// first batch's output starts with one header line.
    public func output(_ answer: ByteBuffer, for batch: MiniBatch, header headerLine: ByteBuffer?) throws -> ByteBuffer
    {
        guard changesOutputs else { return answer }
        let inputs = try records(of: batch)
        var answers = try splitAnswer(answer, expected: inputs.count)
        var modelHeader: [UInt8]?
        if header == .repeat, outputFormat == .csv, answers.count == inputs.count + 1 {
            modelHeader = answers.removeFirst()
        }
        guard answers.count == inputs.count else {
            throw RecordError(
                .dataProcessing,
                "the model answered \(answers.count) record\(answers.count == 1 ? "" : "s") for \(inputs.count) input records; "
                    + "with JoinSource or OutputFilter each input record needs exactly one answer in the Accept format."
            )
        }
        var out = ByteBuffer()
        if header == .repeat, batch.sequenceNumber == 0 {
            if joinsInput, let headerLine {
                let columns = try modelHeader.map { try CSVRow.parse($0) } ?? ["SageMakerOutput"]
                let joined = JSONValue.array(
                    try CSVRow.parse(Array(headerLine.readableBytesView)).map(JSONValue.string)
                        + columns.map(JSONValue.string)
                )
                out.writeString(try serialize(outputFilter.select(joined), as: .csv) + "\n")
            } else if let modelHeader {
                out.writeBytes(modelHeader)
                out.writeString("\n")
            }
        }
        for (index, (input, answer)) in zip(inputs, answers).enumerated() {
            do {
                let result = try outputFormatValue(answer)
                let joined = joinsInput ? try join(input: value(of: input, as: inputFormat), output: result) : result
                out.writeString(
                    try serialize(outputFilter.select(joined), as: joinsInput ? inputFormat : outputFormat) + "\n"
                )
            } catch {
                throw RecordError(.dataProcessing, "record \(batch.firstRecord + index + 1): \(error)")
            }
        }
        return out
    }

    private func outputFormatValue(_ bytes: [UInt8]) throws -> JSONValue {
        try value(of: bytes, as: outputFormat)
    }

    /// CSV: the answer's fields appended to the input row. JSON: the answer under
    /// `SageMakerOutput` in the input object, or beside `SageMakerInput` when the input is not one.
    func join(input: JSONValue, output: JSONValue) -> JSONValue {
        if inputFormat == .csv, case .array(let fields) = input {
            if case .array(let answerFields) = output { return .array(fields + answerFields) }
            return .array(fields + [output])
        }
        if case .object(var members) = input {
            members.removeAll { $0.key == "SageMakerOutput" }
            members.append(("SageMakerOutput", output))
            return .object(members)
        }
        return .object([("SageMakerInput", input), ("SageMakerOutput", output)])
    }

    func value(of record: [UInt8], as format: RecordFormat?) throws -> JSONValue {
        switch format {
        case .csv: return .array(try CSVRow.parse(record).map(JSONValue.string))
        case .json, .jsonLines: return try JSONValue.parse(record)
        case nil: return .string(String(decoding: record, as: UTF8.self))
        }
    }

    func serialize(_ value: JSONValue, as format: RecordFormat?) -> String {
        guard format == .csv || format == nil else { return value.serialized }
        func field(_ value: JSONValue) -> String {
            if case .string(let text) = value { return text }
            return value.serialized
        }
        if case .array(let items) = value { return CSVRow.serialize(items.map(field)) }
        return CSVRow.serialize([field(value)])
    }

    /// The records of a batch as sent by the batcher, without line terminators.
    func records(of batch: MiniBatch) throws -> [[UInt8]] {
        var records: [[UInt8]] = []
        try batch.payload.withUnsafeReadableBytes { bytes in
            var position = 0
            while position < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[position...])
                guard
                    case .record(let record) = try framing.scan(
                        rest,
                        atEnd: true,
                        streamOffset: batch.byteOffset + Int64(position)
                    )
                else { break }
                records.append(Array(rest[record.singlePayload]))
                position += record.length
            }
        }
        return records.isEmpty ? [[]] : records
    }

    /// One answer per record, as the Accept format delimits them.
    func splitAnswer(_ answer: ByteBuffer, expected: Int) throws -> [[UInt8]] {
        switch outputFormat {
        case .json:
            let values = try JSONValue.parseSequence(answer.readableBytesView)
            if values.count == 1, expected > 1, case .array(let items) = values[0], items.count == expected {
                return items.map { Array($0.serialized.utf8) }
            }
            return values.map { Array($0.serialized.utf8) }
        case .csv, .jsonLines, nil:
            let lineFraming = RecordFraming(splitType: .line, csvQuoting: outputFormat == .csv)
            var lines: [[UInt8]] = []
            try answer.withUnsafeReadableBytes { bytes in
                var position = 0
                while position < bytes.count {
                    let rest = UnsafeRawBufferPointer(rebasing: bytes[position...])
                    guard
                        case .record(let record) = try lineFraming.scan(
                            rest,
                            atEnd: true,
                            streamOffset: Int64(position)
                        )
                    else { break }
                    let line = Array(rest[record.singlePayload])
                    if !(outputFormat == .jsonLines && line.allSatisfy { $0 == 0x20 || $0 == 0x09 }) {
                        lines.append(line)
                    }
                    position += record.length
                }
            }
            return lines
        }
    }
}
