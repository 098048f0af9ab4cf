/// One CSV record (RFC 4180) as fields: what InputFilter and OutputFilter index into, and how a
/// joined row is written back.
public enum CSVRow {
    /// Splits one record (without its line terminator) into fields. Strict, like SageMaker's
    /// parser: a `"` inside an unquoted field, or text after a closing quote, is an error.
    public static func parse(_ bytes: some Collection<UInt8>) throws(RecordError) -> [String] {
        let bytes = Array(bytes)
        var fields: [String] = []
        var index = 0
        while true {
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                var field: [UInt8] = []
                index += 1
                while true {
                    guard index < bytes.count else {
                        throw RecordError.csv("extraneous or missing \" in quoted-field", near: bytes)
                    }
                    if bytes[index] == UInt8(ascii: "\"") {
                        if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") {
                            field.append(UInt8(ascii: "\""))
                            index += 2
                            continue
                        }
                        index += 1
                        break
                    }
                    field.append(bytes[index])
                    index += 1
                }
                fields.append(String(decoding: field, as: UTF8.self))
                guard index == bytes.count || bytes[index] == UInt8(ascii: ",") else {
                    throw RecordError.csv("extraneous or missing \" in quoted-field", near: bytes)
                }
            } else {
                let start = index
                while index < bytes.count, bytes[index] != UInt8(ascii: ",") {
                    if bytes[index] == UInt8(ascii: "\"") {
                        throw RecordError.csv("bare \" in non quoted field", near: bytes)
                    }
                    index += 1
                }
                fields.append(String(decoding: bytes[start..<index], as: UTF8.self))
            }
            if index == bytes.count { return fields }
            index += 1  // the comma
        }
    }

    /// Writes fields as one record, quoting those that need it.
    public static func serialize(_ fields: [String]) -> String {
        var row = ""
        for (index, field) in fields.enumerated() {
            if index > 0 { row += "," }
            if field.utf8.contains(where: {
                $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13
            }) {
                row += "\"" + field.replacingAll("\"", with: "\"\"") + "\""
            } else {
                row += field
            }
        }
        return row
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self { if character == target { result += replacement } else { result.append(character) } }
        return result
    }
}
