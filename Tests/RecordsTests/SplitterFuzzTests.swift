import Foundation
import NIOCore
import ObjectStorage
import Records
import Testing
import TransformSpec

/// Seeded generator (SplitMix64), so a failing case can be replayed from its seed.
struct FuzzRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Flips, cuts, repeats and drops spans, and sets bytes to ones the framings care about.
    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...6, using: &self) {
            guard !bytes.isEmpty else { break }
            let at = Int.random(in: 0..<bytes.count, using: &self)
            switch Int.random(in: 0..<5, using: &self) {
            case 0: bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &self))
            case 1: bytes[at] = [0, 0xff, 0x0a, 0x0d, 0x22, 0x2c, 0xd7, 0x0a, 0x3e].randomElement(using: &self)!
            case 2: bytes.removeSubrange(at...)
            case 3:
                let end = min(bytes.count, at + Int.random(in: 1...64, using: &self))
                bytes.insert(contentsOf: bytes[at..<end], at: Int.random(in: 0...bytes.count, using: &self))
            default: bytes[at] = UInt8.random(in: 0...255, using: &self)
            }
        }
        return bytes
    }
}

/// Random and mutated inputs to every splitter (RecordIO, TFRecord, Line with and without CSV
/// quoting, None) and to gzip: each must end with batches or a `RecordError`, never a crash, and
/// within the test's time limit. Seed and count: BATCHFORM_FUZZ_SEED, BATCHFORM_FUZZ_COUNT.
@Suite struct SplitterFuzzTests {
    static var seed: UInt64 { ProcessInfo.processInfo.environment["BATCHFORM_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_261_202 }
    static var count: Int { ProcessInfo.processInfo.environment["BATCHFORM_FUZZ_COUNT"].flatMap { Int($0) } ?? 20000 }

    static let recordIOSeed: [UInt8] = (0..<20).flatMap { recordIO(Array(repeating: UInt8($0), count: $0 * 3)) }
        + recordIO([1, 2, 3], flag: 1) + recordIO([4], flag: 2) + recordIO([5], flag: 3)
    static let tfRecordSeed: [UInt8] = (0..<20).flatMap { tfRecord(Array(repeating: UInt8($0), count: $0 * 5)) }
    static let csvSeed = Array(
        "a,b,c\n1,\"two, with comma\",3\n\"multi\nline\",5,6\n\"\"\"quoted\"\"\",8,9\r\n10,11,12\n".utf8
    )

    enum Target: CaseIterable { case recordIO, tfRecord, line, csv, none, gzipCSV, gzipRecordIO }

    /// Runs the splitter to the end; returns how many records it framed.
    static func split(_ bytes: [UInt8], _ target: Target, limit: Int) async throws -> Int {
        var source: any ByteStream = MemoryStream(bytes, chunk: 97)
        if target == .gzipCSV || target == .gzipRecordIO {
            source = try GzipStream(AnyByteStream(source), name: "fuzz.gz")
        }
        let split: SplitType =
            switch target {
            case .recordIO, .gzipRecordIO: .recordIO
            case .tfRecord: .tfRecord
            case .line, .csv, .gzipCSV: .line
            case .none: .none
            }
        var batcher = MiniBatcher(
            source: source, splitType: split, strategy: limit % 2 == 0 ? .multiRecord : .singleRecord,
            maxPayloadBytes: limit, objectName: "fuzz", csvQuoting: target == .csv || target == .gzipCSV
        )
        var records = 0
        while let batch = try await batcher.next() {
            records += batch.recordCount
            #expect(batch.payload.readableBytes <= max(limit, 1) || batch.recordCount == 1)
        }
        return records
    }

    @Test(.timeLimit(.minutes(2)))
    func randomAndMutatedInputsNeverCrashASplitter() async throws {
        var random = FuzzRandom(state: Self.seed)
        let gzippedCSV = try gzip(Self.csvSeed)
        let gzippedRecordIO = try gzip(Self.recordIOSeed)
        let deadline = ContinuousClock.now + .seconds(40)
        var cases = 0
        var refused = 0
        while cases < Self.count, ContinuousClock.now < deadline {
            cases += 1
            let target = Target.allCases[cases % Target.allCases.count]
            let seed: [UInt8] =
                switch target {
                case .recordIO: Self.recordIOSeed
                case .tfRecord: Self.tfRecordSeed
                case .line, .csv, .none: Self.csvSeed
                case .gzipCSV: gzippedCSV
                case .gzipRecordIO: gzippedRecordIO
                }
            let input =
                cases % 8 == 0
                ? (0..<Int.random(in: 0...600, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                : random.mutate(seed)
            let limit = [1, 16, 64, 1 << 20].randomElement(using: &random)!
            do {
                _ = try await Self.split(input, target, limit: limit)
            } catch is RecordError {
                refused += 1
            }
        }
        print("splitter fuzz: seed \(Self.seed), \(cases) cases, \(refused) refused with a RecordError")
        #expect(cases >= 200)
    }
}
