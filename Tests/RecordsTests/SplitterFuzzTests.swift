import ByteStreams
import Foundation
import FuzzSupport
import NIOCore
import Records
import Testing
import TransformSpec

/// Random and mutated inputs to every splitter (RecordIO, TFRecord, Line with and without CSV
/// quoting, None) and to gzip: each must end with batches or a `RecordError`, never a crash, and
/// within the test's time limit. Seed and count: BATCHFORM_FUZZ_SEED, BATCHFORM_FUZZ_COUNT.
@Suite struct SplitterFuzzTests {

    static let recordIOSeed: [UInt8] =
        (0..<20).flatMap { recordIO(Array(repeating: UInt8($0), count: $0 * 3)) }
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
            source: source,
            splitType: split,
            strategy: limit % 2 == 0 ? .multiRecord : .singleRecord,
            maxPayloadBytes: limit,
            objectName: "fuzz",
            csvQuoting: target == .csv || target == .gzipCSV
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
        var random = SplitMix64(seed: FuzzSettings.seed)
        let gzippedCSV = try gzip(Self.csvSeed)
        let gzippedRecordIO = try gzip(Self.recordIOSeed)
        let deadline = ContinuousClock.now + FuzzSettings.budget
        var cases = 0
        var refused = 0
        while cases < FuzzSettings.count(default: 20000), ContinuousClock.now < deadline {
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
                ? random.bytes(upTo: 600)
                : random.mutate(seed, interesting: [0, 0xff, 0x0a, 0x0d, 0x22, 0x2c, 0xd7, 0x3e], maxSpan: 64)
            let limit = [1, 16, 64, 1 << 20].randomElement(using: &random)!
            do {
                _ = try await Self.split(input, target, limit: limit)
            } catch is RecordError {
                refused += 1
            } catch is ByteStreamError {
                refused += 1
            }
        }
        print(
            "splitter fuzz: seed \(FuzzSettings.seed), \(cases) cases, \(refused) refused with a RecordError or ByteStreamError"
        )
        #expect(cases >= 200)
    }
}
