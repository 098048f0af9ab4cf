import Foundation
import NIOCore
import ObjectStorage
import Testing

/// The local store of a server job: every path is checked where it really is, and outputs are
/// never written through a link that leads out of the allowed folders.
@Suite struct LocalConfinementTests {
    let root = NSTemporaryDirectory() + "confined-\(UUID().uuidString.prefix(8))"
    var allowed: String { root + "/allowed" }
    var outside: String { root + "/outside" }
    var store: LocalFileStore { LocalFileStore(confinement: LocalConfinement(allowing: [allowed])) }

    init() throws {
        for folder in [allowed + "/in", outside] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        try Data("secret".utf8).write(to: URL(fileURLWithPath: outside + "/secret.txt"))
        try Data("data".utf8).write(to: URL(fileURLWithPath: allowed + "/in/a.csv"))
    }

    func write(_ path: String, _ text: String) async throws {
        var writer = try await store.openWriter(.file(path: path))
        try await writer.write(ByteBuffer(string: text))
        try await writer.commit()
    }

    @Test func pathsInsideAreUsed() async throws {
        try await write(allowed + "/out/deep/a.csv.out", "answer")
        #expect(FileManager.default.contents(atPath: allowed + "/out/deep/a.csv.out") == Data("answer".utf8))
        #expect(
            Array(try await store.readAll(.file(path: allowed + "/in/a.csv"), upTo: 100).readableBytesView)
                == Array("data".utf8)
        )
    }

    @Test func anOutputFolderThatIsALinkOutIsRefused() async throws {
        try FileManager.default.createSymbolicLink(atPath: allowed + "/out", withDestinationPath: outside)
        await #expect(throws: StorageError.self) { try await write(allowed + "/out/a.csv.out", "answer") }
        await #expect(throws: StorageError.self) { try await write(allowed + "/out/new/a.csv.out", "answer") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside) == ["secret.txt"])
    }

    /// The `.out` name itself being a link out: the commit replaces the link, the file it named is untouched.
    @Test func anOutputThatIsALinkOutIsReplacedNotWrittenThrough() async throws {
        try FileManager.default.createDirectory(atPath: allowed + "/out", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: allowed + "/out/a.csv.out",
            withDestinationPath: outside + "/secret.txt"
        )
        try await write(allowed + "/out/a.csv.out", "answer")
        #expect(FileManager.default.contents(atPath: outside + "/secret.txt") == Data("secret".utf8))
        #expect(FileManager.default.contents(atPath: allowed + "/out/a.csv.out") == Data("answer".utf8))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: allowed + "/out/a.csv.out")) == nil)
    }

    @Test func readingThroughALinkOutIsRefused() async throws {
        try FileManager.default.createSymbolicLink(
            atPath: allowed + "/in/secret.csv",
            withDestinationPath: outside + "/secret.txt"
        )
        await #expect(throws: StorageError.self) {
            _ = try await store.readAll(.file(path: allowed + "/in/secret.csv"), upTo: 100)
        }
        await #expect(throws: StorageError.self) {
            _ = try await store.readAll(.file(path: outside + "/secret.txt"), upTo: 100)
        }
        await #expect(throws: StorageError.self) { _ = try await store.info(.file(path: outside + "/secret.txt")) }
    }

    @Test func theCheckNamesThePathAndWhereItLeads() throws {
        try FileManager.default.createSymbolicLink(atPath: allowed + "/link", withDestinationPath: outside)
        let confinement = LocalConfinement(allowing: [allowed])
        #expect {
            try confinement.check(allowed + "/link/x", "The manifest prefix")
        } throws: { error in
            let message = (error as? StorageError)?.message ?? ""
            return message.hasPrefix("The manifest prefix \(allowed)/link/x (it resolves to ")
                && message.contains("/outside/x")
        }
        #expect(throws: Never.self) { try LocalConfinement.unconfined.check(outside, "anything") }
    }

    @Test func abandonedTemporariesOfAnEarlierRunAreRemoved() async throws {
        try FileManager.default.createDirectory(atPath: allowed + "/out", withIntermediateDirectories: true)
        for name in [".a.csv.out.batchform-123.tmp", ".other.out.batchform-9.tmp", "a.csv.out.keep"] {
            _ = FileManager.default.createFile(atPath: allowed + "/out/" + name, contents: Data())
        }
        await store.removeAbandonedTemporaries(for: [.file(path: allowed + "/out/a.csv.out")])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: allowed + "/out").sorted() == [
                ".other.out.batchform-9.tmp", "a.csv.out.keep",
            ]
        )
    }
}
