import Foundation
import ModelRuntime
import Testing

/// A small, fast, seeded generator, so a failing case can be run again from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random edits of a valid input: flipped bytes, cut tails, repeated and dropped spans, and bytes
/// set to the values parsers care about (0, 0x80, 0xff, digits, `/`, `.`).
enum Mutation {
    static func apply(to input: [UInt8], using random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...8, using: &random) {
            guard !bytes.isEmpty else { break }
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0: bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
            case 1: bytes[at] = [0, 0x80, 0xff, 0x30, 0x37, 0x39, 0x2f, 0x2e, 0x22, 0x0a].randomElement(using: &random)!
            case 2: bytes.removeSubrange(at...)
            case 3:
                let end = min(bytes.count, at + Int.random(in: 1...600, using: &random))
                bytes.insert(contentsOf: bytes[at..<end], at: Int.random(in: 0...bytes.count, using: &random))
            case 4: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...600, using: &random)))
            default: bytes[at] = UInt8.random(in: 0...255, using: &random)
            }
        }
        return bytes
    }
}

/// The seed and count are fixed so CI is repeatable; set BATCHFORM_FUZZ_SEED and
/// BATCHFORM_FUZZ_COUNT to explore further.
enum FuzzSettings {
    static var seed: UInt64 { ProcessInfo.processInfo.environment["BATCHFORM_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_261_202 }
    static var count: Int { ProcessInfo.processInfo.environment["BATCHFORM_FUZZ_COUNT"].flatMap { Int($0) } ?? 1500 }
    /// Each fuzz test stops after this long even if its count is not reached.
    static let budget: Duration = .seconds(40)
}

@Suite struct ArchiveFuzzTests {
    /// Valid archives with every kind of entry, as the mutations' starting points.
    static func seeds() -> [[UInt8]] {
        var plain = TarBuilder()
        plain.add("./", .folder)
        plain.add("./model.bin", data: Array(repeating: 7, count: 700))
        plain.add("./code/inference.py", data: Array("def model_fn(d): pass\n".utf8))
        plain.finish()
        var links = TarBuilder()
        links.add("dir/", .folder)
        links.add("dir/file", data: Array("x".utf8))
        links.add("dir/link", .symlink, link: "file")
        links.add("dir/up", .symlink, link: "..")
        links.add("hard", .hardLink, link: "dir/file")
        links.finish()
        var pax = TarBuilder()
        pax.addPax([("path", "long/" + String(repeating: "p", count: 150)), ("size", "3")])
        pax.add("short", data: [1, 2, 3])
        pax.add("././LongLink", .gnuLongName, data: Array(("gnu/" + String(repeating: "g", count: 130)).utf8))
        pax.add("cut", data: [4])
        pax.finish()
        return [plain.bytes, links.bytes, pax.bytes]
    }

    /// Recomputes the checksum of every block that looks like a ustar header.
    static func fixingChecksums(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        var offset = 0
        while offset + 512 <= bytes.count {
            if bytes[(offset + 257)..<(offset + 262)].elementsEqual("ustar".utf8) {
                for index in 148..<156 { bytes[offset + index] = 0x20 }
                let sum = bytes[offset..<(offset + 512)].reduce(0) { $0 + Int($1) }
                for (index, byte) in String(format: "%06o", sum).utf8.enumerated() { bytes[offset + 148 + index] = byte }
                bytes[offset + 154] = 0
            }
            offset += 512
        }
        return bytes
    }

    /// Random and mutated archives: no crash, no hang (time-limited), and nothing written outside
    /// the folder, whatever the bytes.
    @Test(.timeLimit(.minutes(2)))
    func randomAndMutatedArchivesStayInTheirFolder() async throws {
        var random = SplitMix64(seed: FuzzSettings.seed)
        let seeds = Self.seeds()
        let deadline = ContinuousClock.now + FuzzSettings.budget
        var cases = 0
        var refused = 0
        while cases < FuzzSettings.count, ContinuousClock.now < deadline {
            cases += 1
            let input: [UInt8]
            if cases % 10 == 0 {
                input = (0..<Int.random(in: 0...3000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                let mutated = Mutation.apply(to: seeds[cases % seeds.count], using: &random)
                // Half the cases get valid checksums again, so the mutations reach past the header check.
                input = cases % 2 == 0 ? Self.fixingChecksums(mutated) : mutated
            }
            let scratch = try ExtractionScratch()
            do {
                try await scratch.extract(input, limits: ArchiveLimits(maxBytes: 1 << 20, maxEntries: 200))
            } catch is RuntimeError {
                refused += 1
            }
            let outside = scratch.filesOutside()
            #expect(outside.isEmpty, "case \(cases) (seed \(FuzzSettings.seed)) wrote \(outside)")
            #expect(scratch.secretIsIntact(), "case \(cases) (seed \(FuzzSettings.seed))")
            #expect(scratch.linksStayInside(), "case \(cases) (seed \(FuzzSettings.seed)) left a link that leads out")
            scratch.remove()
        }
        print("archive fuzz: seed \(FuzzSettings.seed), \(cases) cases, \(refused) refused")
        #expect(cases >= 200, "the fuzz ran only \(cases) cases in its time budget")
    }
}
