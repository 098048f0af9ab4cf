import Foundation
import TransformSpec

/// Decodes a request body into its shape. A number too large for an integer member (`1e30`,
/// `99999999999999999999`) is valid JSON, so it must get the member's range error, not "not valid
/// JSON": such numbers are pinned to the largest (or smallest) integer, the shape's constraint check
/// then names the member and its limit, and `restoringValues(in:)` puts the value as sent back
/// into that message.
struct RequestDecoder {
    /// The numbers that were pinned, by member path as the constraint messages spell it.
    private(set) var pinned: [String: String] = [:]

    mutating func decode<T: Decodable>(_ type: T.Type, from body: Data) throws -> T {
        // A request with no input may come with an empty body (AWS JSON 1.1).
        let body = body.isEmpty ? Data("{}".utf8) : body
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch DecodingError.dataCorrupted(let context) {
            guard let tree = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else {
                throw DecodingError.dataCorrupted(context)
            }
            var found: [String: String] = [:]
            let pinnedTree = Self.pin(tree, path: [], into: &found)
            if let fraction = Self.firstFraction(in: tree, path: []) {
                throw APIError(
                    "SerializationException",
                    "Value '\(fraction.value)' at '\(fraction.path)' is not a whole number; this member takes an integer."
                )
            }
            pinned = found
            let repaired = try JSONSerialization.data(withJSONObject: pinnedTree, options: [.fragmentsAllowed])
            return try JSONDecoder().decode(T.self, from: repaired)
        }
    }

    /// The constraint message with each pinned number shown as it was sent.
    func restoringValues(in message: String) -> String {
        var message = message
        for (path, original) in pinned {
            for extreme in [String(Int.max), String(Int.min)] {
                message = message.replacingOccurrences(
                    of: "Value '\(extreme)' at '\(path)'",
                    with: "Value '\(original)' at '\(path)'"
                )
            }
        }
        return message
    }

    private static func pin(_ value: Any, path: [String], into found: inout [String: String]) -> Any {
        switch value {
        case let object as [String: Any]:
            return object.reduce(into: [String: Any]()) { result, entry in
                result[entry.key] = pin(entry.value, path: path + [entry.key], into: &found)
            }
        case let array as [Any]:
            return array.enumerated().map { pin($0.element, path: path + ["member"], into: &found) }
        case let number as NSNumber:
            let double = number.doubleValue
            guard double.rounded() == double, abs(double) >= 9.223372036854775807e18 else { return number }
            found[memberPath(path)] = number.stringValue
            return double > 0 ? Int.max : Int.min
        default:
            return value
        }
    }

    private static func firstFraction(in value: Any, path: [String]) -> (path: String, value: String)? {
        switch value {
        case let object as [String: Any]:
            for key in object.keys.sorted() {
                if let found = firstFraction(in: object[key]!, path: path + [key]) { return found }
            }
            return nil
        case let array as [Any]:
            for element in array {
                if let found = firstFraction(in: element, path: path + ["member"]) { return found }
            }
            return nil
        case let number as NSNumber:
            // Timestamps are the only fractional members, and they never fail to decode.
            let double = number.doubleValue
            return double.rounded() != double && abs(double) < 1e15 && isIntegerMember(path)
                ? (memberPath(path), number.stringValue) : nil
        default:
            return nil
        }
    }

    /// Members whose shape is an integer: what a fraction would break.
    private static func isIntegerMember(_ path: [String]) -> Bool {
        guard let last = path.last else { return false }
        return !last.hasPrefix("Creation") && !last.hasPrefix("LastModified") && !last.hasSuffix("Time")
            && !last.hasSuffix("Before") && !last.hasSuffix("After")
    }

    /// `TransformResources.InstanceCount` as `transformResources.instanceCount`.
    private static func memberPath(_ path: [String]) -> String {
        path.map { $0.prefix(1).lowercased() + $0.dropFirst() }.joined(separator: ".")
    }
}
