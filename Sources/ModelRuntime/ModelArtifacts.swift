import Foundation
import NIOCore
public import ObjectStorage
import Records

#if canImport(Glibc)
    import Glibc
#endif

/// Puts a model's `ModelDataUrl` where its server can read it: a directory is used as it is; a
/// `.tar.gz` is unpacked into a fresh directory, refusing any entry that would land outside it.
public enum ModelArtifacts {
    /// Returns the model directory. `scratch` is a fresh folder the caller removes afterwards.
    public static func prepare(modelData: ObjectURI?, stores: ObjectStores, scratch: String) async throws -> String {
        guard let modelData else {
            let empty = scratch + "/model"
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            return empty
        }
        if case .file(let path) = modelData {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw RuntimeError(.modelDataNotFound, "Could not find model data at \(path).")
            }
            if isDirectory.boolValue { return path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path }
        }
        if case .s3 = modelData, let etag = try await stores.store(for: modelData).info(modelData).etag {
            return try await cachedUnpack(modelData, etag: etag, stores: stores)
        }
        return try await unpack(modelData, stores: stores, into: scratch + "/model")
    }

    /// Remote archives are unpacked once per content (ETag) into `$BATCHFORM_CACHE_DIR/models`
    /// (default `~/.cache/batchform/models`), so the next job with the same model downloads nothing.
    /// A folder appears there only complete: it is unpacked beside it and renamed into place.
    static func cachedUnpack(_ archive: ObjectURI, etag: String, stores: ObjectStores) async throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let cacheRoot = environment["BATCHFORM_CACHE_DIR"] ?? (NSHomeDirectory() + "/.cache/batchform")
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: a stable name, not a security boundary
        for byte in "\(archive)\n\(etag)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let target = "\(cacheRoot)/models/\(String(hash, radix: 16))"
        if FileManager.default.fileExists(atPath: target) { return target }
        let partial = "\(target).partial-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: partial) }
        _ = try await unpack(archive, stores: stores, into: partial)
        // Another job may have finished the same model first; either copy is complete.
        if rename(partial, target) != 0, !FileManager.default.fileExists(atPath: target) {
            throw RuntimeError(.modelDataNotFound, "Could not place the unpacked \(archive) in \(target): \(String(cString: strerror(errno))).")
        }
        return target
    }

    /// Unpacks a `.tar.gz` into a fresh folder `target`; returns `target`.
    public static func unpack(_ archive: ObjectURI, stores: ObjectStores, into target: String) async throws -> String {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let compressed = try await stores.store(for: archive).openReader(archive)
        try await TarArchive.extract(
            from: GzipStream(AnyByteStream(compressed), name: archive.description), into: target,
            name: archive.description
        )
        return target
    }
}

/// A streaming reader of (gzip-decompressed) tar archives: ustar, GNU long names and pax paths.
public enum TarArchive {
    public static func extract(from stream: some ByteStream, into root: String, name: String) async throws {
        var reader = ExactReader(stream)
        var longName: String?
        var longLink: String?
        var paxPath: String?
        var paxLink: String?
        var paxSize: Int?
        while let header = try await reader.read(512) {
            let bytes = Array(header.readableBytesView)
            if bytes.allSatisfy({ $0 == 0 }) { break }
            let type = bytes[156]
            let size = paxSize ?? octal(bytes[124..<136])
            let storedName = longName ?? paxPath ?? joinedName(bytes)
            let storedLink = longLink ?? paxLink ?? string(bytes[157..<257])
            let padded = (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"):
                guard let data = try await reader.read(padded) else { throw truncated(name) }
                let content = Array(data.readableBytesView.prefix(size))
                if type == UInt8(ascii: "L") { longName = string(content[...]) }
                if type == UInt8(ascii: "K") { longLink = string(content[...]) }
                if type == UInt8(ascii: "x") {
                    let records = paxRecords(content)
                    paxPath = records["path"]
                    paxLink = records["linkpath"]
                    paxSize = records["size"].flatMap { Int($0) }
                }
                continue
            default:
                break
            }
            longName = nil
            longLink = nil
            paxPath = nil
            paxLink = nil
            paxSize = nil
            guard let relative = try safeRelativePath(storedName, archive: name) else {
                // The root itself ("/", "./"): SageMaker SDK archives start with it.
                try await reader.skip(padded)
                continue
            }
            let destination = root + "/" + relative
            let parent = String(destination[..<destination.lastIndex(of: "/")!])
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                try await writeFile(destination, size: size, padded: padded, mode: octal(bytes[100..<108]), from: &reader, name)
            case UInt8(ascii: "5"):
                try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
                try await reader.skip(padded)
            case UInt8(ascii: "2"):
                let resolved = storedLink.hasPrefix("/") ? nil : normalized(parent.dropFirst(root.count + 1) + "/" + storedLink)
                guard resolved != nil else { throw escapes(storedName, link: storedLink, name) }
                unlink(destination)
                guard symlink(storedLink, destination) == 0 else { throw failed(destination, name) }
                try await reader.skip(padded)
            case UInt8(ascii: "1"):
                guard let target = try safeRelativePath(storedLink, archive: name) else { throw escapes(storedName, link: storedLink, name) }
                unlink(destination)
                guard link(root + "/" + target, destination) == 0 else { throw failed(destination, name) }
                try await reader.skip(padded)
            default:
                // Devices, FIFOs and the like are not model data.
                try await reader.skip(padded)
            }
        }
    }

    /// The entry's path inside the root, nil for the root itself; throws for paths that escape.
    static func safeRelativePath(_ path: String, archive: String) throws -> String? {
        if path == "/" || path == "./" || path == "." || path.isEmpty { return nil }
        guard !path.hasPrefix("/"), let relative = normalized(Substring(path)) else {
            throw RuntimeError(
                .unsafeArchive,
                "\(archive): refusing the entry \"\(path)\": it would be written outside the model directory. "
                    + "Re-create the archive with relative paths (tar -czf model.tar.gz -C model_dir .)."
            )
        }
        return relative.isEmpty ? nil : relative
    }

    /// Resolves `.` and `..`; nil if the path climbs above its start.
    static func normalized(_ path: Substring) -> String? {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                guard parts.popLast() != nil else { return nil }
                continue
            }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }

    private static func writeFile(
        _ path: String, size: Int, padded: Int, mode: Int, from reader: inout ExactReader<some ByteStream>, _ name: String
    ) async throws {
        unlink(path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode_t(mode & 0o777 | 0o600))
        guard descriptor >= 0 else { throw failed(path, name) }
        defer { close(descriptor) }
        var remaining = size
        while remaining > 0 {
            guard let chunk = try await reader.read(min(remaining, 1 << 20)) else { throw truncated(name) }
            let written = chunk.withUnsafeReadableBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            guard written == chunk.readableBytes else { throw failed(path, name) }
            remaining -= chunk.readableBytes
        }
        try await reader.skip(padded - size)
    }

    private static func joinedName(_ header: [UInt8]) -> String {
        let name = string(header[0..<100])
        let isUstar = header[257..<262].elementsEqual("ustar".utf8)
        let prefix = isUstar ? string(header[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    private static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    private static func octal(_ bytes: ArraySlice<UInt8>) -> Int {
        if let first = bytes.first, first & 0x80 != 0 {
            // GNU base-256 for sizes over 8 GB.
            return bytes.dropFirst().reduce(Int(first & 0x7f)) { $0 << 8 | Int($1) }
        }
        let digits = bytes.filter { (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }
        return digits.reduce(0) { $0 * 8 + Int($1 - UInt8(ascii: "0")) }
    }

    private static func paxRecords(_ content: [UInt8]) -> [String: String] {
        var records: [String: String] = [:]
        for line in String(decoding: content, as: UTF8.self).split(separator: "\n") {
            guard let space = line.firstIndex(of: " "), let equals = line.firstIndex(of: "=") else { continue }
            records[String(line[line.index(after: space)..<equals])] = String(line[line.index(after: equals)...])
        }
        return records
    }

    private static func truncated(_ name: String) -> RuntimeError {
        RuntimeError(.unsafeArchive, "\(name): the archive ends in the middle of an entry; it is truncated.")
    }

    private static func escapes(_ entry: String, link: String, _ name: String) -> RuntimeError {
        RuntimeError(
            .unsafeArchive,
            "\(name): refusing the link \"\(entry)\" -> \"\(link)\": it points outside the model directory."
        )
    }

    private static func failed(_ path: String, _ name: String) -> RuntimeError {
        RuntimeError(.unsafeArchive, "\(name): cannot create \(path): \(String(cString: strerror(errno))).")
    }
}

/// Reads exact byte counts from a stream.
struct ExactReader<Source: ByteStream> {
    private var source: Source
    private var buffer = ByteBuffer()
    private var ended = false

    init(_ source: Source) { self.source = source }

    /// Exactly `count` bytes, or nil at a clean end of stream.
    mutating func read(_ count: Int) async throws -> ByteBuffer? {
        while buffer.readableBytes < count, !ended {
            buffer.discardReadBytes()
            if try await source.read(into: &buffer, maxBytes: max(count - buffer.readableBytes, 256 * 1024)) == 0 {
                ended = true
            }
        }
        if buffer.readableBytes == 0, count > 0 { return nil }
        guard buffer.readableBytes >= count else {
            throw RuntimeError(.unsafeArchive, "the archive ends in the middle of an entry; it is truncated.")
        }
        return buffer.readSlice(length: count)
    }

    mutating func skip(_ count: Int) async throws {
        var remaining = count
        while remaining > 0 {
            guard let chunk = try await read(min(remaining, 1 << 20)) else { return }
            remaining -= chunk.readableBytes
        }
    }
}
