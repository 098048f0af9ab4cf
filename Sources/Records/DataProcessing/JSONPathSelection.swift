public import TransformSpec

/// Applying InputFilter and OutputFilter paths (parsed and checked in TransformSpec) to records.
extension JSONPath {
    /// What the path selects in `value`. Errors name the step that does not fit the record.
    public func select(_ value: JSONValue) throws(RecordError) -> JSONValue {
        var current = value
        for step in steps {
            switch step {
            case .names(let names):
                guard case .object(let members) = current else {
                    throw RecordError(
                        .badJSONPath,
                        "\(text) selects key '\(names[0])', but the record is not a JSON object"
                    )
                }
                if names.count == 1 {
                    guard let found = members.first(where: { $0.key == names[0] }) else {
                        throw RecordError(
                            .badJSONPath,
                            "\(text) selects key '\(names[0])', which the record does not have"
                        )
                    }
                    current = found.value
                } else {
                    current = .object(names.compactMap { name in members.first { $0.key == name } })
                }
            case .wildcard:
                switch current {
                case .object(let members): current = .array(members.map(\.value))
                case .array: break
                default: throw RecordError(.badJSONPath, "\(text) uses *, but the record has no children there")
                }
            case .indexes(let selectors):
                guard case .array(let items) = current else {
                    throw RecordError(.badJSONPath, "\(text) selects by index, but the record is not an array")
                }
                if selectors.count == 1, case .index(let index) = selectors[0] {
                    current = items[try position(index, count: items.count)]
                    continue
                }
                var picked: [JSONValue] = []
                for selector in selectors {
                    switch selector {
                    case .index(let index): picked.append(items[try position(index, count: items.count)])
                    case .slice(let start, let end):
                        let from = Self.clamp(start ?? 0, items.count)
                        let to = Self.clamp(end ?? items.count, items.count)
                        if from < to { picked += items[from..<to] }
                    }
                }
                current = .array(picked)
            }
        }
        return current
    }

    private func position(_ index: Int, count: Int) throws(RecordError) -> Int {
        let position = index < 0 ? count + index : index
        guard position >= 0 && position < count else {
            throw RecordError(
                .badJSONPath,
                "\(text) selects index \(index), but the record has only \(count) element\(count == 1 ? "" : "s")"
            )
        }
        return position
    }

    private static func clamp(_ bound: Int, _ count: Int) -> Int {
        bound < 0 ? max(0, count + bound) : min(bound, count)
    }

}
