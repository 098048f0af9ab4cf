public import ByteStreams
import Foundation
public import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Local files behind the `ObjectStore` protocol, with S3's semantics: a prefix is a raw string
/// prefix over paths, hidden files and folders are skipped (they are never data, and Batchform's
/// own temporary outputs are hidden), and writes become visible only on commit (rename).
public struct LocalFileStore: ObjectStore {
    /// Where this store may read and write; every path is checked after its symlinks are resolved.
    public let confinement: LocalConfinement

    public init(confinement: LocalConfinement = .unconfined) { self.confinement = confinement }

    public func list(prefix: ObjectURI) async throws -> [ListedObject] {
        let path = try Self.path(of: prefix)
        let slash = path.lastIndex(of: "/")!
        let root = String(path[...slash])
        let remainder = String(path[path.index(after: slash)...])
        try confinement.check(root, "The input folder")
        var found: [ListedObject] = []
        try walk(root: root, relative: "", remainder: remainder, prefix: path, into: &found)
        return found.sorted { $0.uri.description.utf8.lexicographicallyPrecedes($1.uri.description.utf8) }
    }

    private func walk(
        root: String,
        relative: String,
        remainder: String,
        prefix: String,
        into found: inout [ListedObject]
    ) throws(StorageError) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root + relative) else { return }
        for name in names where !name.hasPrefix(".") {
            let key = relative + name
            var status = stat()
            guard stat(root + key, &status) == 0 else { continue }
            let isFolder = (status.st_mode & S_IFMT) == S_IFDIR
            let matches =
                isFolder ? (key + "/").hasPrefix(remainder) || remainder.hasPrefix(key + "/") : key.hasPrefix(remainder)
            guard matches, isFolder || (status.st_mode & S_IFMT) == S_IFREG else { continue }
            // A link inside the input that leads out of the allowed folders is refused, not skipped:
            // the job would otherwise quietly miss data.
            try confinement.check(root + key, "The input")
            if isFolder {
                try walk(root: root, relative: key + "/", remainder: remainder, prefix: prefix, into: &found)
            } else {
                let path = root + key
                found.append(
                    ListedObject(
                        uri: .file(path: path),
                        relativeKey: outputRelativeKey(of: path, listedUnder: prefix),
                        size: Int64(status.st_size)
                    )
                )
            }
        }
    }

    public func info(_ uri: ObjectURI) async throws -> ListedObject {
        let path = try Self.path(of: uri)
        try confinement.check(path, "The object")
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw StorageError(.notFound, "\(path) does not exist or is not a regular file.")
        }
        return ListedObject(
            uri: uri,
            relativeKey: String(path.split(separator: "/").last ?? ""),
            size: Int64(status.st_size)
        )
    }

    public func openReader(_ uri: ObjectURI) async throws -> any ByteStream {
        try LocalFileReader(path: Self.path(of: uri), confinement: confinement)
    }

    public func openReader(_ uri: ObjectURI, from offset: Int64) async throws -> any ByteStream {
        try LocalFileReader(path: Self.path(of: uri), confinement: confinement, offset: offset)
    }

    public func delete(_ uri: ObjectURI) async throws {
        let path = try Self.path(of: uri)
        try confinement.check(path, "The object")
        guard unlink(path) == 0 || errno == ENOENT else {
            throw StorageError(.writeFailed, "Cannot remove \(path): \(String(cString: strerror(errno))).")
        }
    }

    public func readAll(_ uri: ObjectURI, upTo limit: Int) async throws -> ByteBuffer {
        let reader = try LocalFileReader(path: Self.path(of: uri), confinement: confinement)
        var buffer = ByteBuffer()
        while try await reader.read(into: &buffer, maxBytes: 1 << 20) > 0 {
            if buffer.readableBytes > limit {
                throw StorageError(.tooLarge, "\(uri) is larger than \(limit) bytes.")
            }
        }
        return buffer
    }

    public func openWriter(_ uri: ObjectURI) async throws -> any ObjectWriter {
        try LocalFileWriter(path: Self.path(of: uri), confinement: confinement)
    }

    /// Removes the temporary files an earlier, killed run left beside these outputs
    /// (`.<name>.batchform-<n>.tmp`, hidden, so never listed as data).
    public func removeAbandonedTemporaries(for outputs: [ObjectURI]) async {
        var namesByFolder: [String: Set<String>] = [:]
        for case .file(let path) in outputs {
            let slash = path.lastIndex(of: "/")!
            namesByFolder[String(path[..<slash]), default: []].insert(String(path[path.index(after: slash)...]))
        }
        for (folder, names) in namesByFolder {
            guard (try? confinement.check(folder, "The output folder")) != nil,
                let entries = try? FileManager.default.contentsOfDirectory(atPath: folder)
            else { continue }
            for entry in entries where entry.hasPrefix(".") && entry.hasSuffix(".tmp") {
                guard let marker = entry.range(of: ".batchform-", options: .backwards) else { continue }
                if names.contains(String(entry[entry.index(after: entry.startIndex)..<marker.lowerBound])) {
                    unlink(folder + "/" + entry)
                }
            }
        }
    }

    static func path(of uri: ObjectURI) throws(StorageError) -> String {
        guard case .file(let path) = uri else { throw StorageError(.notSupported, "\(uri) is not a local path.") }
        return path
    }
}

/// The threads local reads, writes and syncs block on, so a slow disk stalls only them and never
/// the cooperative pool the HTTP server and the scheduler run on.
enum LocalFileIO {
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    /// The address of a buffer's writable bytes, handed to a pool thread. Valid because the one
    /// caller keeps the buffer borrowed (inout) until the blocking call has returned.
    struct WritableBytes: @unchecked Sendable {
        let address: UnsafeMutableRawPointer
    }
}

/// Reads a file with `pread` on a `LocalFileIO` thread, straight into the caller's buffer (no copy).
final class LocalFileReader: ByteStream {
    private let descriptor: Int32
    private let path: String
    private var offset: Int64

    init(path: String, confinement: LocalConfinement, offset: Int64 = 0) throws(StorageError) {
        self.path = path
        self.offset = offset
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StorageError(.notFound, "Cannot open \(path): \(String(cString: strerror(errno))).")
        }
        // On a refusal, deinit closes the descriptor (every stored property is set by now).
        try confinement.check(descriptor: descriptor, path: path, "The object")
    }

    deinit { close(descriptor) }

    func read(into buffer: inout ByteBuffer, maxBytes: Int) async throws -> Int {
        let (descriptor, offset, path) = (self.descriptor, self.offset, self.path)
        buffer.reserveCapacity(minimumWritableBytes: maxBytes)
        let target = buffer.withUnsafeMutableWritableBytes { LocalFileIO.WritableBytes(address: $0.baseAddress!) }
        let count = try await LocalFileIO.pool.runIfActive { () throws -> Int in
            while true {
                let result = pread(descriptor, target.address, maxBytes, off_t(offset))
                if result >= 0 { return result }
                if errno != EINTR {
                    throw StorageError(
                        .readFailed,
                        "Reading \(path) at byte \(offset) failed: \(String(cString: strerror(errno)))."
                    )
                }
            }
        }
        buffer.moveWriterIndex(forwardBy: count)
        self.offset += Int64(count)
        return count
    }
}

/// Writes to a hidden temporary file beside the destination; `commit` syncs and renames it into
/// place, so the destination name only ever holds a complete object. Everything is created
/// relative to a handle on the destination folder: no symlink is followed below the deepest
/// folder that already existed, and that folder is checked where it really is.
final class LocalFileWriter: ObjectWriter {
    private let destination: String
    private let name: String
    private let temporaryName: String
    private let folder: Int32
    private var descriptor: Int32

    init(path: String, confinement: LocalConfinement) throws(StorageError) {
        destination = path
        let slash = path.lastIndex(of: "/")!
        name = String(path[path.index(after: slash)...])
        guard !name.isEmpty else { throw StorageError(.writeFailed, "The output \(path) names a folder, not a file.") }
        temporaryName = ".\(name).batchform-\(UInt32.random(in: 0...UInt32.max)).tmp"
        folder = try Self.openFolder(creating: String(path[..<slash]), confinement: confinement)
        descriptor = openat(folder, temporaryName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            // deinit closes `folder`: every stored property is set by now.
            throw StorageError(
                .writeFailed,
                "Cannot create a temporary file beside \(path): \(String(cString: strerror(errno)))."
            )
        }
    }

    /// Opens `path` as a folder, creating what is missing one component at a time, each opened
    /// without following a symlink.
    static func openFolder(creating path: String, confinement: LocalConfinement) throws(StorageError) -> Int32 {
        let components = path.split(separator: "/").map(String.init)
        var existing = components.count
        var handle: Int32 = -1
        while existing >= 0 {
            handle = open("/" + components[..<existing].joined(separator: "/"), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if handle >= 0 { break }
            guard errno == ENOENT, existing > 0 else {
                throw StorageError(
                    .writeFailed,
                    "Cannot open the output folder \(path): \(String(cString: strerror(errno)))."
                )
            }
            existing -= 1
        }
        do {
            try confinement.check(descriptor: handle, path: path, "The output folder")
        } catch {
            close(handle)
            throw error
        }
        for component in components[existing...] {
            if mkdirat(handle, component, 0o755) != 0, errno != EEXIST {
                let reason = String(cString: strerror(errno))
                close(handle)
                throw StorageError(.writeFailed, "Cannot create the output folder \(path): \(reason).")
            }
            let next = openat(handle, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let reason = String(cString: strerror(errno))
            close(handle)
            guard next >= 0 else {
                throw StorageError(
                    .writeFailed,
                    "Cannot create the output folder \(path) (at \(component)): \(reason)."
                )
            }
            handle = next
        }
        return handle
    }

    deinit {
        // A writer dropped without commit (a failed or cancelled object) leaves nothing behind.
        if descriptor >= 0 {
            close(descriptor)
            unlinkat(folder, temporaryName, 0)
        }
        close(folder)
    }

    /// Small answers (SingleRecord) are gathered into one write per `flushBytes`, not a syscall each.
    private var pending = ByteBuffer()
    private static let flushBytes = 1 << 20

    func write(_ bytes: ByteBuffer) async throws {
        if pending.readableBytes + bytes.readableBytes < Self.flushBytes {
            pending.writeImmutableBuffer(bytes)
            return
        }
        try await flush()
        try await writeThrough(bytes)
    }

    private func flush() async throws {
        guard pending.readableBytes > 0 else { return }
        try await writeThrough(pending)
        pending.clear()
    }

    private func writeThrough(_ bytes: ByteBuffer) async throws {
        let (descriptor, destination) = (self.descriptor, self.destination)
        try await LocalFileIO.pool.runIfActive { try Self.writeAll(bytes, to: descriptor, destination: destination) }
    }

    private static func writeAll(_ bytes: ByteBuffer, to descriptor: Int32, destination: String) throws {
        try bytes.withUnsafeReadableBytes { source in
            var written = 0
            while written < source.count {
                let result = Glibc.write(descriptor, source.baseAddress! + written, source.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw StorageError(
                        .writeFailed,
                        "Writing \(destination) failed: \(String(cString: strerror(errno)))."
                    )
                }
                written += result
            }
        }
    }

    /// `renameat` replaces whatever holds the name, a symlink included, and never writes through it.
    func commit() async throws {
        defer { descriptor = -1 }
        do {
            try await flush()
        } catch {
            close(descriptor)
            unlinkat(folder, temporaryName, 0)
            throw error
        }
        let (descriptor, folder, temporaryName, name, destination) =
            (self.descriptor, self.folder, self.temporaryName, self.name, self.destination)
        // fsync waits for the disk: the longest block of all.
        try await LocalFileIO.pool.runIfActive { () throws in
            let synced = fsync(descriptor) == 0
            let closed = close(descriptor) == 0
            guard synced, closed, renameat(folder, temporaryName, folder, name) == 0 else {
                let reason = String(cString: strerror(errno))
                unlinkat(folder, temporaryName, 0)
                throw StorageError(.writeFailed, "Finishing \(destination) failed: \(reason).")
            }
        }
    }

    func abort() async {
        guard descriptor >= 0 else { return }
        close(descriptor)
        unlinkat(folder, temporaryName, 0)
        descriptor = -1
    }
}
