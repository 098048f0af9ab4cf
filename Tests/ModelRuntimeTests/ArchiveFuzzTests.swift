import Foundation
import FuzzSupport
import ModelRuntime
import Testing

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
                for (index, byte) in String(format: "%06o", sum).utf8.enumerated() {
                    bytes[offset + 148 + index] = byte
                }
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
        while cases < FuzzSettings.count(default: 1500), ContinuousClock.now < deadline {
            cases += 1
            let input: [UInt8]
            if cases % 10 == 0 {
                input = random.bytes(upTo: 3000)
            } else {
                let mutated = random.mutate(
                    seeds[cases % seeds.count],
                    interesting: [0, 0x80, 0xff, 0x30, 0x37, 0x39, 0x2f, 0x2e, 0x22, 0x0a],
                    maxSpan: 600
                )
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
