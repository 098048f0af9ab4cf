import ObjectStorage
public import TransformEngine
public import TransformSpec

/// A piece of a job that one worker runs: a whole input object, or a byte range of one whose
/// records can be found from any offset (`SplitType=Line`, uncompressed, not CSV quote-aware,
/// no header set aside). Its output goes to a part beside the final `.out`'s folder.
public struct WorkUnit: Codable, Sendable, Hashable {
    public var id: Int
    /// The object's index in the plan, and the unit's index among the object's units.
    public var object: Int
    public var part: Int
    public var input: String
    public var size: Int64?
    /// `[start, end)` of the object's bytes; nil for the whole object.
    public var start: Int64?
    public var end: Int64?

    public var range: Range<Int64>? { start.flatMap { start in end.map { start..<$0 } } }
}

/// How a plan becomes work units.
public enum WorkUnitPlanner {
    /// Why an object runs as one unit though it is larger than a unit; nil where it can be split.
    public static func reasonNotSplittable(_ configuration: TransformJobConfiguration) -> String? {
        if configuration.splitType != .line { return "SplitType is \(configuration.splitType.rawValue), not Line" }
        if configuration.compression != .none { return "it is gzip-compressed" }
        if configuration.dataProcessing.csvQuoting {
            return "CSV records are split quote-aware (set BATCHFORM_CSV_SPLIT=newline where no field holds a newline)"
        }
        if configuration.dataProcessing.header != .none { return "BATCHFORM_CSV_HEADER sets a header aside" }
        return nil
    }

    /// The units of `objects`, in plan order; each object's units tile it.
    public static func units(
        of objects: [PlannedObject],
        unitBytes: Int64,
        splittable: Bool
    ) -> [WorkUnit] {
        var units: [WorkUnit] = []
        for (index, object) in objects.enumerated() {
            let size = object.input.size
            guard splittable, let size, size > unitBytes else {
                units.append(
                    WorkUnit(id: units.count, object: index, part: 0, input: object.input.uri.description, size: size)
                )
                continue
            }
            var start: Int64 = 0
            var part = 0
            while start < size {
                let end = min(size, start + unitBytes)
                units.append(
                    WorkUnit(
                        id: units.count,
                        object: index,
                        part: part,
                        input: object.input.uri.description,
                        size: size,
                        start: start,
                        end: end
                    )
                )
                start = end
                part += 1
            }
        }
        return units
    }
}
