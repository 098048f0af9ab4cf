public import NIOCore
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Local files behind the `ObjectStore` protocol, with S3's semantics: a prefix is a raw string
/// prefix over paths, hidden files and folders are skipped (they are never data, and Batchform's
/// own temporary outputs are hidden), and writes become visible only on commit (rename).
public struct LocalFileStore: ObjectStore {
    public init() {}

    public func list(prefix: ObjectURI) async throws -> [ListedObject] {
        guard case .file(let path) = prefix else { throw StorageError(.notSupported, "\(prefix) is not a local path.") }
        let slash = path.lastIndex(of: "/")!
        let root = String(path[...slash])
        let remainder = String(path[path.index(after: slash)...])
        var found: [ListedObject] = []
        walk(root: root, relative: "", remainder: remainder, into: &found)
        return found.sorted { $0.relativeKey.utf8.lexicographicallyPrecedes($1.relativeKey.utf8) }
    }

    private func walk(root: String, relative: String, remainder: String, into found: inout [ListedObject]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root + relative) else { return }
        for name in names where !name.hasPrefix(".") {
            let key = relative + name
            var status = stat()
            guard stat(root + key, &status) == 0 else { continue }
            if (status.st_mode & S_IFMT) == S_IFDIR {
                let folder = key + "/"
                if folder.hasPrefix(remainder) || remainder.hasPrefix(folder) {
                    walk(root: root, relative: folder, remainder: remainder, into: &found)
                }
            } else if (status.st_mode & S_IFMT) == S_IFREG, key.hasPrefix(remainder) {
                found.append(ListedObject(uri: .file(path: root + key), relativeKey: key, size: Int64(status.st_size)))
            }
        }
    }

    public func info(_ uri: ObjectURI) async throws -> ListedObject {
        let path = try Self.path(of: uri)
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw StorageError(.notFound, "\(path) does not exist or is not a regular file.")
        }
        return ListedObject(uri: uri, relativeKey: String(path.split(separator: "/").last ?? ""), size: Int64(status.st_size))
    }

    public func openReader(_ uri: ObjectURI) async throws -> any ByteStream {
        try LocalFileReader(path: Self.path(of: uri))
    }

    public func readAll(_ uri: ObjectURI, upTo limit: Int) async throws -> ByteBuffer {
        let reader = try LocalFileReader(path: Self.path(of: uri))
        var buffer = ByteBuffer()
        while try await reader.read(into: &buffer, maxBytes: 1 << 20) > 0 {
            if buffer.readableBytes > limit {
                throw StorageError(.tooLarge, "\(uri) is larger than \(limit) bytes.")
            }
        }
        return buffer
    }

    public func openWriter(_ uri: ObjectURI) async throws -> any ObjectWriter {
        try LocalFileWriter(path: Self.path(of: uri))
    }

    static func path(of uri: ObjectURI) throws(StorageError) -> String {
        guard case .file(let path) = uri else { throw StorageError(.notSupported, "\(uri) is not a local path.") }
        return path
    }
}

/// Reads a file with `pread` straight into the caller's buffer. Reads of local files are short
/// (page cache or one disk request), so they run on the calling task rather than hopping threads.
final class LocalFileReader: ByteStream {
    private let descriptor: Int32
    private let path: String
    private var offset: Int64 = 0

    init(path: String) throws(StorageError) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StorageError(.notFound, "Cannot open \(path): \(String(cString: strerror(errno))).")
        }
    }

    deinit { close(descriptor) }

    func read(into buffer: inout ByteBuffer, maxBytes: Int) async throws -> Int {
        let (descriptor, offset, path) = (self.descriptor, self.offset, self.path)
        let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maxBytes) { target in
            while true {
                let result = pread(descriptor, target.baseAddress, maxBytes, off_t(offset))
                if result >= 0 { return result }
                if errno != EINTR {
                    throw StorageError(.readFailed, "Reading \(path) at byte \(offset) failed: \(String(cString: strerror(errno))).")
                }
            }
        }
        self.offset += Int64(count)
        return count
    }
}

/// Writes to a hidden temporary file beside the destination; `commit` syncs and renames it into
/// place, so the destination name only ever holds a complete object.
final class LocalFileWriter: ObjectWriter {
    private let destination: String
    private let temporary: String
    private var descriptor: Int32

    init(path: String) throws(StorageError) {
        destination = path
        let slash = path.lastIndex(of: "/")!
        let directory = String(path[..<slash])
        let name = path[path.index(after: slash)...]
        temporary = "\(directory)/.\(name).batchform-\(UInt32.random(in: 0...UInt32.max)).tmp"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StorageError(.writeFailed, "Cannot create the output folder \(directory): \(error).")
        }
        descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StorageError(.writeFailed, "Cannot create \(temporary): \(String(cString: strerror(errno))).")
        }
    }

    deinit {
        // A writer dropped without commit (a failed or cancelled object) leaves nothing behind.
        if descriptor >= 0 {
            close(descriptor)
            unlink(temporary)
        }
    }

    /// Small answers (SingleRecord) are gathered into one write per `flushBytes`, not a syscall each.
    private var pending = ByteBuffer()
    private static let flushBytes = 1 << 20

    func write(_ bytes: ByteBuffer) async throws {
        if pending.readableBytes + bytes.readableBytes < Self.flushBytes {
            pending.writeImmutableBuffer(bytes)
            return
        }
        try flush()
        try writeThrough(bytes)
    }

    private func flush() throws {
        guard pending.readableBytes > 0 else { return }
        try writeThrough(pending)
        pending.clear()
    }

    private func writeThrough(_ bytes: ByteBuffer) throws {
        let (descriptor, destination) = (self.descriptor, self.destination)
        try bytes.withUnsafeReadableBytes { source in
            var written = 0
            while written < source.count {
                let result = Glibc.write(descriptor, source.baseAddress! + written, source.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw StorageError(.writeFailed, "Writing \(destination) failed: \(String(cString: strerror(errno))).")
                }
                written += result
            }
        }
    }

    func commit() async throws {
        defer { descriptor = -1 }
        do {
            try flush()
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        guard fsync(descriptor) == 0, close(descriptor) == 0, rename(temporary, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw StorageError(.writeFailed, "Finishing \(destination) failed: \(reason).")
        }
    }

    func abort() async {
        guard descriptor >= 0 else { return }
        close(descriptor)
        unlink(temporary)
        descriptor = -1
    }
}
