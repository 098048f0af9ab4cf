import ByteStreams
import Foundation
import ModelRuntime
import NIOCore
import ObjectStorage
import Records
import Testing
import TransformSpec

/// Writes tar archives byte by byte, so a test can say exactly what a hostile header holds.
struct TarBuilder {
    var bytes: [UInt8] = []

    enum Kind: UInt8 {
        case file = 0x30
        case hardLink = 0x31
        case symlink = 0x32
        case folder = 0x35
        case pax = 0x78
        case gnuLongName = 0x4c
    }

    /// `sizeField` replaces the octal size (for base-256 or garbage); `data` follows, padded.
    mutating func add(
        _ name: String,
        _ kind: Kind = .file,
        data: [UInt8] = [],
        link: String = "",
        sizeField: [UInt8]? = nil,
        declaredSize: Int? = nil
    ) {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { header[offset + index] = byte }
        }
        put(name, at: 0, width: 100)
        put("0000644", at: 100, width: 8)
        put("0000000", at: 108, width: 8)
        put("0000000", at: 116, width: 8)
        if let sizeField {
            for (index, byte) in sizeField.prefix(12).enumerated() { header[124 + index] = byte }
        } else {
            put(String(format: "%011o", declaredSize ?? data.count), at: 124, width: 12)
        }
        put("00000000000", at: 136, width: 12)
        header[156] = kind.rawValue
        put(link, at: 157, width: 100)
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        for index in 148..<156 { header[index] = 0x20 }
        let sum = header.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o", sum), at: 148, width: 6)
        header[154] = 0
        bytes += header + data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }

    /// A pax header whose records apply to the next entry.
    mutating func addPax(_ records: [(String, String)]) {
        var content: [UInt8] = []
        for (key, value) in records {
            let body = " \(key)=\(value)\n"
            var length = body.utf8.count + 1
            while String(length).count + body.utf8.count != length { length += 1 }
            content += Array((String(length) + body).utf8)
        }
        add("PaxHeaders/entry", .pax, data: content)
    }

    mutating func finish() { bytes += [UInt8](repeating: 0, count: 1024) }
}

/// Bytes in memory as a stream.
struct MemoryBytes: ByteStream {
    var bytes: [UInt8]
    var position = 0

    mutating func read(into buffer: inout ByteBuffer, maxBytes: Int) async throws -> Int {
        let count = min(maxBytes, bytes.count - position, 64 * 1024)
        buffer.writeBytes(bytes[position..<position + count])
        position += count
        return count
    }
}

/// A scratch folder holding `inside/` (where archives are unpacked) and `outside/`, which must
/// stay empty whatever an archive says.
struct ExtractionScratch {
    let root = NSTemporaryDirectory() + "archive-\(UUID().uuidString.prefix(8))"
    var inside: String { root + "/inside" }
    var outside: String { root + "/outside" }

    init() throws {
        try FileManager.default.createDirectory(atPath: root + "/inside", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/outside", withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: root + "/outside/secret.txt"))
    }

    func extract(_ tar: [UInt8], limits: ArchiveLimits = ArchiveLimits()) async throws {
        try await TarArchive(name: "model.tar.gz", limits: limits).extract(from: MemoryBytes(bytes: tar), into: inside)
    }

    /// Everything below the scratch root that is not below `inside/`, plus the planted secret.
    func filesOutside() -> [String] {
        let all = FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []
        return all.filter { !$0.hasPrefix("inside") && $0 != "outside" && $0 != "outside/secret.txt" }.sorted()
    }

    func secretIsIntact() -> Bool {
        FileManager.default.contents(atPath: outside + "/secret.txt") == Data("secret".utf8)
    }

    /// No link inside resolves to anything outside `inside/`.
    func linksStayInside() -> Bool {
        let resolvedInside = URL(fileURLWithPath: inside).resolvingSymlinksInPath().path
        let all = FileManager.default.enumerator(atPath: inside)?.allObjects as? [String] ?? []
        return all.allSatisfy { relative in
            let resolved = URL(fileURLWithPath: inside + "/" + relative).resolvingSymlinksInPath().path
            return resolved == resolvedInside || resolved.hasPrefix(resolvedInside + "/")
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

func expectRefusal(
    _ scratch: ExtractionScratch,
    _ tar: [UInt8],
    limits: ArchiveLimits = ArchiveLimits(),
    naming entry: String,
    sourceLocation: SourceLocation = #_sourceLocation
) async {
    do {
        try await scratch.extract(tar, limits: limits)
        Issue.record("the archive was unpacked; expected a refusal naming \(entry)", sourceLocation: sourceLocation)
    } catch let error as RuntimeError {
        #expect(error.code == .unsafeArchive, sourceLocation: sourceLocation)
        #expect(error.message.contains(entry), "\(error.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
    #expect(
        scratch.filesOutside().isEmpty,
        "written outside: \(scratch.filesOutside())",
        sourceLocation: sourceLocation
    )
    #expect(scratch.secretIsIntact(), sourceLocation: sourceLocation)
    #expect(scratch.linksStayInside(), sourceLocation: sourceLocation)
}

@Suite struct ArchiveTests {
    @Test func unpacksFilesFoldersLinksAndTheSDKsRootEntry() async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add("./", .folder)
        tar.add("./model.joblib", data: Array("weights".utf8))
        tar.add("./code/inference.py", data: Array("def model_fn(d): pass".utf8))
        tar.add("./code/link.py", .symlink, link: "inference.py")
        tar.add("./code/up.txt", .symlink, link: "../model.joblib")
        tar.add("./copy.joblib", .hardLink, link: "./model.joblib")
        tar.addPax([("path", "nested/deep/" + String(repeating: "n", count: 120) + ".txt")])
        tar.add("ignored-short-name", data: Array("long name".utf8))
        tar.finish()
        try await scratch.extract(tar.bytes)
        let root = scratch.inside
        #expect(FileManager.default.contents(atPath: root + "/model.joblib") == Data("weights".utf8))
        #expect(FileManager.default.contents(atPath: root + "/code/link.py") == Data("def model_fn(d): pass".utf8))
        #expect(FileManager.default.contents(atPath: root + "/code/up.txt") == Data("weights".utf8))
        #expect(FileManager.default.contents(atPath: root + "/copy.joblib") == Data("weights".utf8))
        let long = root + "/nested/deep/" + String(repeating: "n", count: 120) + ".txt"
        #expect(FileManager.default.contents(atPath: long) == Data("long name".utf8))
    }

    /// The defect: each link looks harmless alone (`a -> .`, `a/b -> ..`), but the chain leads out.
    @Test func aChainOfLinksCannotLeadOut() async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add("a", .symlink, link: ".")
        tar.add("a/b", .symlink, link: "..")
        tar.add("a/b/outside/planted.txt", data: Array("pwned".utf8))
        tar.finish()
        await expectRefusal(scratch, tar.bytes, naming: "a/b")
    }

    @Test func aFileCannotBeWrittenThroughAnEarlierLink() async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add("sub/", .folder)
        tar.add("sub/up", .symlink, link: "..")
        tar.add("sub/up/x.txt", data: Array("x".utf8))
        tar.finish()
        await expectRefusal(scratch, tar.bytes, naming: "sub/up/x.txt")
    }

    @Test(arguments: [
        ("root", "/"),
        ("etc", "/etc/passwd"),
        ("up", "../outside"),
        ("deep/up", "../../outside"),
        ("sideways", "sub/../../outside"),
    ])
    func linksThatPointOutAreRefused(_ name: String, _ target: String) async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add(name, .symlink, link: target)
        tar.finish()
        await expectRefusal(scratch, tar.bytes, naming: name)
    }

    /// A hard link to a file outside (or not yet written) would expose it inside an allowed folder.
    @Test(arguments: ["../outside/secret.txt", "/etc/passwd", "not-written-yet.txt", "folder"])
    func hardLinksOnlyToFilesAlreadyExtracted(_ target: String) async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add("folder/", .folder)
        tar.add("copy", .hardLink, link: target)
        tar.finish()
        await expectRefusal(scratch, tar.bytes, naming: "copy")
    }

    /// A file swapped for a link after it was written is no longer a file a hard link may name.
    @Test func aHardLinkCannotNameAFileThatBecameALink() async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add("a/b/f", data: Array("x".utf8))
        tar.add("a/b/f", .symlink, link: "../..")
        tar.add("g", .hardLink, link: "a/b/f")
        tar.finish()
        await expectRefusal(scratch, tar.bytes, naming: "g")
    }

    @Test(arguments: ["../escape.txt", "/etc/escape.txt", "code/../../escape.txt"])
    func pathsThatEscapeAreRefused(_ name: String) async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add(name, data: Array("x".utf8))
        tar.finish()
        await expectRefusal(scratch, tar.bytes, naming: name)
    }

    /// A pax size of Int64.max crashed the extractor with "arithmetic overflow".
    @Test(arguments: ["9223372036854775807", "99999999999999999999", "-1"])
    func aHugePaxSizeIsRefused(_ size: String) async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.addPax([("size", size)])
        tar.add("weights.bin", data: Array("x".utf8))
        tar.finish()
        await expectRefusal(scratch, tar.bytes, naming: size)
    }

    /// GNU base-256 sizes: the largest positive one, and one wider than 64 bits.
    @Test(arguments: [
        [0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] as [UInt8],
        [0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] as [UInt8],
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] as [UInt8],
    ])
    func aHugeBase256SizeIsRefused(_ field: [UInt8]) async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add("weights.bin", sizeField: field)
        tar.finish()
        await expectRefusal(scratch, tar.bytes, naming: "weights.bin")
    }

    @Test func theTotalExpansionIsCapped() async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add("one.bin", data: [UInt8](repeating: 1, count: 600))
        tar.add("two.bin", data: [UInt8](repeating: 2, count: 600))
        tar.finish()
        await expectRefusal(scratch, tar.bytes, limits: ArchiveLimits(maxBytes: 1000), naming: "two.bin")
        #expect(FileManager.default.fileExists(atPath: scratch.inside + "/one.bin"))
    }

    @Test func theEntryCountIsCapped() async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        for index in 0..<5 { tar.add("f\(index)", data: [1]) }
        tar.finish()
        do {
            try await scratch.extract(tar.bytes, limits: ArchiveLimits(maxEntries: 4))
            Issue.record("five entries passed a cap of four")
        } catch let error as RuntimeError {
            #expect(error.message.contains("more than 4 entries"))
        }
    }

    @Test func aDamagedHeaderIsNotATarArchive() async throws {
        let scratch = try ExtractionScratch()
        defer { scratch.remove() }
        var tar = TarBuilder()
        tar.add("model.bin", data: [1, 2, 3])
        tar.bytes[10] ^= 0xff
        tar.finish()
        await expectRefusal(scratch, tar.bytes, naming: "checksum")
    }

    @Test func theSettingCapsTheModelSize() throws {
        #expect(try NumericSetting.maxModelBytes(process: [:], job: [:]) == 100 << 30)
        #expect(try NumericSetting.maxModelBytes(process: ["BATCHFORM_MAX_MODEL_BYTES": "1000"], job: [:]) == 1000)
        // A job may lower the operator's limit, never raise it.
        #expect(
            try NumericSetting.maxModelBytes(
                process: ["BATCHFORM_MAX_MODEL_BYTES": "1000"],
                job: ["BATCHFORM_MAX_MODEL_BYTES": "9000"]
            ) == 1000
        )
        #expect(try NumericSetting.maxModelBytes(process: [:], job: ["BATCHFORM_MAX_MODEL_BYTES": "10"]) == 10)
        #expect(throws: (any Error).self) {
            try NumericSetting.maxModelBytes(process: ["BATCHFORM_MAX_MODEL_BYTES": "1e30"], job: [:])
        }
        #expect(throws: (any Error).self) {
            try NumericSetting.maxModelBytes(process: ["BATCHFORM_MAX_MODEL_BYTES": "-5"], job: [:])
        }
    }
}
