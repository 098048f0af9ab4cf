/// Just enough XML for S3's responses: elements, text and the five predefined entities plus
/// numeric references. No namespaces (S3 puts one default namespace on the root), no DTDs.
struct XMLNode: Sendable {
    var name: String
    var text = ""
    var children: [XMLNode] = []

    /// The first child named `name`.
    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }
    func children(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }
    /// The text of the first child named `name`.
    subscript(_ name: String) -> String? { child(name)?.text }

    /// Parses a document; nil if it is not well-formed enough to read.
    static func parse(_ bytes: some Collection<UInt8>) -> XMLNode? {
        var parser = Parser(bytes: Array(bytes))
        return parser.document()
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func document() -> XMLNode? {
            var stack: [XMLNode] = []
            while index < bytes.count {
                if bytes[index] != UInt8(ascii: "<") {
                    let start = index
                    while index < bytes.count, bytes[index] != UInt8(ascii: "<") { index += 1 }
                    if !stack.isEmpty { stack[stack.count - 1].text += Self.unescaped(bytes[start..<index]) }
                    continue
                }
                guard let close = bytes[index...].firstIndex(of: UInt8(ascii: ">")) else { return nil }
                let tag = bytes[(index + 1)..<close]
                index = close + 1
                guard let first = tag.first else { return nil }
                if first == UInt8(ascii: "?") || first == UInt8(ascii: "!") { continue }
                if first == UInt8(ascii: "/") {
                    guard let finished = stack.popLast() else { return nil }
                    if stack.isEmpty { return finished }
                    stack[stack.count - 1].children.append(finished)
                    continue
                }
                let selfClosing = tag.last == UInt8(ascii: "/")
                let nameEnd =
                    tag.firstIndex {
                        $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\n")
                            || $0 == UInt8(ascii: "\t")
                    } ?? tag.endIndex
                let element = XMLNode(name: String(decoding: tag[tag.startIndex..<nameEnd], as: UTF8.self))
                if selfClosing {
                    if stack.isEmpty { return element }
                    stack[stack.count - 1].children.append(element)
                } else {
                    stack.append(element)
                }
            }
            return nil
        }

        static func unescaped(_ raw: ArraySlice<UInt8>) -> String {
            let text = String(decoding: raw, as: UTF8.self)
            guard text.contains("&") else { return text }
            var result = ""
            var rest = Substring(text)
            while let amp = rest.firstIndex(of: "&") {
                result += rest[..<amp]
                guard let semicolon = rest[amp...].firstIndex(of: ";") else { break }
                let entity = rest[rest.index(after: amp)..<semicolon]
                switch entity {
                case "amp": result += "&"
                case "lt": result += "<"
                case "gt": result += ">"
                case "quot": result += "\""
                case "apos": result += "'"
                default:
                    let number =
                        entity.hasPrefix("#x")
                        ? UInt32(entity.dropFirst(2), radix: 16)
                        : entity.hasPrefix("#") ? UInt32(entity.dropFirst()) : nil
                    if let number, let scalar = Unicode.Scalar(number) {
                        result.unicodeScalars.append(scalar)
                    } else {
                        result += "&\(entity);"
                    }
                }
                rest = rest[rest.index(after: semicolon)...]
            }
            return result + rest
        }
    }
}

extension String {
    /// Escapes text for an XML element body.
    var xmlEscaped: String {
        var escaped = ""
        for character in self {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
