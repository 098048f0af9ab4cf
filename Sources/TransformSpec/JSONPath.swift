/// SageMaker's JSONPath subset for InputFilter and OutputFilter: `$`, `.name`, `*`,
/// `['a','b']`, `[i,j]` (negative counts from the end), one `[a:b]` slice (end exclusive, as
/// JavaScript's slice and Jayway JsonPath), indexes combined with one slice (`[0,5:]`).
/// Every step but the last selects one child; the last may select several.
public struct JSONPath: Sendable, Equatable, CustomStringConvertible {
    public enum Selector: Sendable, Equatable {
        case index(Int)
        case slice(start: Int?, end: Int?)
    }

    public enum Step: Sendable, Equatable {
        case names([String])
        case wildcard
        case indexes([Selector])
    }

    public let text: String
    public let steps: [Step]

    public var description: String { text }
    /// `$` selects the whole record: no filtering at all.
    public var isRoot: Bool { steps.isEmpty }
    /// Index-only paths are the only ones that apply to CSV rows.
    public var isIndexOnly: Bool { steps.allSatisfy { if case .indexes = $0 { return true } else { return false } } }

    public static let root = try! JSONPath("$")

    public init(_ text: String) throws(ValidationException) {
        self.text = text
        var scanner = Scanner(text: Array(text.unicodeScalars))
        scanner.skipSpaces()
        guard scanner.take("$") else { throw Self.invalid(text, "a path must start with $") }
        var steps: [Step] = []
        while true {
            scanner.skipSpaces()
            guard let next = scanner.peek else { break }
            if next == "." {
                scanner.index += 1
                if scanner.peek == "[" { continue }  // `$.a.['b','c']`, as the SageMaker docs write it
                if scanner.take("*") {
                    steps.append(.wildcard)
                    continue
                }
                let name = scanner.takeWhile { $0 != "." && $0 != "[" && $0 != " " }
                guard !name.isEmpty else { throw Self.invalid(text, "a '.' must be followed by a name or *") }
                steps.append(.names([name]))
            } else if next == "[" {
                scanner.index += 1
                steps.append(try Self.bracket(&scanner, text: text))
            } else {
                throw Self.invalid(text, "unexpected '\(next)' at position \(scanner.index)")
            }
        }
        for step in steps.dropLast() {
            switch step {
            case .names(let names) where names.count == 1: continue
            case .indexes(let selectors)
            where selectors.count == 1 && { if case .index = selectors[0] { return true } else { return false } }():
                continue
            default:
                throw Self.invalid(
                    text,
                    "only the last step may select several children (nested children inside a multi-select are not supported)"
                )
            }
        }
        self.steps = steps
    }

    private static func bracket(_ scanner: inout Scanner, text: String) throws(ValidationException) -> Step {
        let start = scanner.index
        let inside = scanner.takeWhile { $0 != "]" }
        guard scanner.take("]") else { throw Self.invalid(text, "a '[' is not closed") }
        let body = inside.trimmingSpaces
        if body == "*" { return .wildcard }
        let items = body.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
        if items.allSatisfy({
            $0.count >= 2 && ($0.hasPrefix("'") && $0.hasSuffix("'") || $0.hasPrefix("\"") && $0.hasSuffix("\""))
        }) {
            let names = items.map { String($0.dropFirst().dropLast()) }
            if names.contains(where: { $0.contains(".") }) {
                throw Self.invalid(text, "nested children inside a multi-select are not supported")
            }
            return .names(names)
        }
        var selectors: [Selector] = []
        for item in items {
            if let colon = item.firstIndex(of: ":") {
                let (from, to) = (
                    String(item[..<colon]).trimmingSpaces, String(item[item.index(after: colon)...]).trimmingSpaces
                )
                guard from.isEmpty || Int(from) != nil, to.isEmpty || Int(to) != nil else {
                    throw Self.invalid(text, "'\(item)' at position \(start) is not a slice like [1:5]")
                }
                selectors.append(.slice(start: Int(from), end: Int(to)))
            } else if let index = Int(item) {
                selectors.append(.index(index))
            } else {
                throw Self.invalid(text, "'[\(inside)]' is neither quoted names, indexes, a slice nor *")
            }
        }
        if selectors.filter({ if case .slice = $0 { return true } else { return false } }).count > 1 {
            // SageMaker's own words for this case.
            throw ValidationException(
                "Invalid JsonPath: \(text): only single range filters of format (eg: [1:5]) are supported. Format [\(inside)] is not supported"
            )
        }
        return .indexes(selectors)
    }

    /// A path outside SageMaker's subset.
    private static func invalid(_ path: String, _ problem: String) -> ValidationException {
        ValidationException(
            "Invalid JsonPath: \(path): \(problem). Supported: $, .name, *, ['a','b'], [i,j] (negative counts from the end), one [a:b] slice."
        )
    }

    struct Scanner {
        let text: [Unicode.Scalar]
        var index = 0
        var peek: Unicode.Scalar? { index < text.count ? text[index] : nil }
        mutating func skipSpaces() { while peek == " " { index += 1 } }
        mutating func take(_ scalar: Unicode.Scalar) -> Bool {
            guard peek == scalar else { return false }
            index += 1
            return true
        }
        mutating func takeWhile(_ predicate: (Unicode.Scalar) -> Bool) -> String {
            var taken = String.UnicodeScalarView()
            while let next = peek, predicate(next) {
                taken.append(next)
                index += 1
            }
            return String(taken)
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while scalars.first == " " { scalars.removeFirst() }
        while scalars.last == " " { scalars.removeLast() }
        return String(scalars)
    }
}
