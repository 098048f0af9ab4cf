import Foundation

/// A small, fast, seeded generator (SplitMix64), so a failing fuzz case can be run again from its seed.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` random bytes.
    public mutating func bytes(upTo count: Int) -> [UInt8] {
        (0..<Int.random(in: 0...count, using: &self)).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// Random edits of a valid input: flipped bytes, cut tails, repeated and dropped spans, and
    /// bytes set to `interesting` values (the ones the parser under test cares about).
    public mutating func mutate(_ input: [UInt8], interesting: [UInt8], maxSpan: Int) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...8, using: &self) {
            guard !bytes.isEmpty else { break }
            let at = Int.random(in: 0..<bytes.count, using: &self)
            switch Int.random(in: 0..<6, using: &self) {
            case 0: bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &self))
            case 1: bytes[at] = interesting.randomElement(using: &self)!
            case 2: bytes.removeSubrange(at...)
            case 3:
                let end = min(bytes.count, at + Int.random(in: 1...maxSpan, using: &self))
                bytes.insert(contentsOf: bytes[at..<end], at: Int.random(in: 0...bytes.count, using: &self))
            case 4: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...maxSpan, using: &self)))
            default: bytes[at] = UInt8.random(in: 0...255, using: &self)
            }
        }
        return bytes
    }
}

/// The fuzz tests' seed and count are fixed so CI is repeatable; set BATCHFORM_FUZZ_SEED and
/// BATCHFORM_FUZZ_COUNT to explore further. Each test also stops after `budget`.
public enum FuzzSettings {
    public static var seed: UInt64 {
        ProcessInfo.processInfo.environment["BATCHFORM_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_261_202
    }
    public static func count(default value: Int) -> Int {
        ProcessInfo.processInfo.environment["BATCHFORM_FUZZ_COUNT"].flatMap { Int($0) } ?? value
    }
    public static let budget: Duration = .seconds(40)
}
