import Foundation

/// The AWS shared config format: `[section]` headers and `key = value` lines, `#`/`;` comments.
/// Indented lines belong to a nested block (`s3 =` settings), which is not read.
public enum AWSConfigFile {
    public static func section(_ wanted: String, in path: String) -> [String: String]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var current: String?
        var found: [String: String]?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if current == wanted { found = found ?? [:] }
                continue
            }
            guard current == wanted, rawLine.first?.isWhitespace != true, let equals = line.firstIndex(of: "=") else {
                continue
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            found?[key] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        return found
    }

    /// Every `[section]` of the file with its keys; nil when the file cannot be read.
    public static func sections(in path: String) -> [String: [String: String]]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let names = text.split(whereSeparator: \.isNewline).compactMap { rawLine -> String? in
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("["), line.hasSuffix("]") else { return nil }
            return line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
        }
        return Dictionary(names.map { ($0, section($0, in: path) ?? [:]) }) { first, _ in first }
    }
}
