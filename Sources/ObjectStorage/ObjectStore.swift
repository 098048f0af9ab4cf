public import ByteStreams
public import NIOCore

/// Where an object lives. Local data is addressed by absolute path; `s3://` has its own case so
/// that the engine can name a location in messages without knowing how it is read.
public enum ObjectURI: Sendable, Hashable, CustomStringConvertible {
    case file(path: String)
    case s3(bucket: String, key: String)

    /// Parses a plain path (relative to the working directory), a `file://` URI or an `s3://` URI.
    public init(parsing text: String, workingDirectory: String) throws(StorageError) {
        if text.hasPrefix("s3://") {
            let rest = text.dropFirst("s3://".count)
            let bucket = rest.prefix { $0 != "/" }
            guard !bucket.isEmpty else { throw StorageError(.invalidURI, "\(text) names no bucket.") }
            self = .s3(bucket: String(bucket), key: String(rest.dropFirst(bucket.count + 1)))
        } else if text.hasPrefix("file://") {
            self = .file(path: Self.absolute(String(text.dropFirst("file://".count)), in: workingDirectory))
        } else if text.contains("://") {
            throw StorageError(.invalidURI, "\(text) is not a path, file:// or s3:// URI.")
        } else {
            self = .file(path: Self.absolute(text, in: workingDirectory))
        }
    }

    /// Keeps a trailing `/`: for a prefix it is meaningful (SageMaker's raw prefix semantics).
    public static func absolute(_ path: String, in directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : (directory.hasSuffix("/") ? directory : directory + "/") + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        let trailing = joined.hasSuffix("/") && !parts.isEmpty ? "/" : ""
        return "/" + parts.joined(separator: "/") + trailing
    }

    /// The location of `relativePath` below this one, treated as a folder.
    public func appending(_ relativePath: String) -> ObjectURI {
        switch self {
        case .file(let path): return .file(path: path.hasSuffix("/") ? path + relativePath : path + "/" + relativePath)
        case .s3(let bucket, let key):
            let folder = key.isEmpty || key.hasSuffix("/") ? key : key + "/"
            return .s3(bucket: bucket, key: folder + relativePath)
        }
    }

    /// The location as the store sees it: a local path with repeated `/` folded (the file system
    /// treats `a//b` as `a/b`); an S3 key as it is (S3 does not).
    public var canonical: ObjectURI {
        guard case .file(let path) = self else { return self }
        var folded = ""
        for character in path where !(character == "/" && folded.hasSuffix("/")) { folded.append(character) }
        return .file(path: folded)
    }

    public var description: String {
        switch self {
        case .file(let path): return path
        case .s3(let bucket, let key): return "s3://\(bucket)/\(key)"
        }
    }
}

/// SageMaker's output naming (reference §2.9): the part of a listed key that names its output,
/// `<S3OutputPath>/<relative key>.out`. The prefix names a folder when it ends with `/` or when the
/// key continues after it with `/` (the SDK's `upload_data` returns `s3://bucket/prefix` without
/// one); otherwise it names one object or part of a name, and the base is the prefix cut back to
/// its last `/`. One function for S3 keys and local paths alike.
public func outputRelativeKey(of key: String, listedUnder prefix: String) -> String {
    let base: Substring
    if prefix.isEmpty || prefix.hasSuffix("/") {
        base = Substring(prefix)
    } else if key.hasPrefix(prefix + "/") {
        base = Substring(prefix + "/")
    } else {
        base = prefix.lastIndex(of: "/").map { prefix[...$0] } ?? ""
    }
    precondition(key.hasPrefix(base), "a listed key starts with its prefix")
    return String(key.dropFirst(base.count))
}

/// One input object found by listing: where it is, and its key relative to the listing's base,
/// which names its output (`<relativeKey>.out`) and keeps sub-folders.
public struct ListedObject: Sendable, Hashable {
    public var uri: ObjectURI
    public var relativeKey: String
    public var size: Int64?
    /// What changes when the content does (S3's ETag), where the store knows it.
    public var etag: String?

    public init(uri: ObjectURI, relativeKey: String, size: Int64?, etag: String? = nil) {
        self.uri = uri
        self.relativeKey = relativeKey
        self.size = size
        self.etag = etag
    }
}

/// An object being written. Nothing is visible at the destination until `commit`; `abort` (or
/// never committing) leaves no trace, so an `.out` only ever appears complete.
public protocol ObjectWriter {
    mutating func write(_ bytes: ByteBuffer) async throws
    mutating func commit() async throws
    mutating func abort() async
}

public protocol ObjectStore: Sendable {
    /// Every object whose key starts with the raw `prefix` string, sorted by key, with keys
    /// relative to the prefix as `outputRelativeKey` says (SageMaker's output naming rule).
    func list(prefix: ObjectURI) async throws -> [ListedObject]
    func info(_ uri: ObjectURI) async throws -> ListedObject
    func openReader(_ uri: ObjectURI) async throws -> any ByteStream
    func readAll(_ uri: ObjectURI, upTo limit: Int) async throws -> ByteBuffer
    func openWriter(_ uri: ObjectURI) async throws -> any ObjectWriter
    /// Clears what a killed earlier run's writers left for these outputs.
    func removeAbandonedTemporaries(for outputs: [ObjectURI]) async
    /// The object's bytes from `offset` to its end: a work unit's byte range.
    func openReader(_ uri: ObjectURI, from offset: Int64) async throws -> any ByteStream
    /// Removes an object; one that is already gone is not an error.
    func delete(_ uri: ObjectURI) async throws
    /// Puts one object together at `destination` from parts appended in order, visible only once
    /// committed: how a split input's units become its one `.out`, part by part as they finish.
    func openComposer(_ destination: ObjectURI) async throws -> any ObjectComposer
}

/// An object being put together from parts (other objects of the same store), in order.
public protocol ObjectComposer {
    mutating func append(_ part: ObjectURI) async throws
    /// Makes the object visible; returns how it was put together.
    mutating func commit() async throws -> ComposeSummary
    mutating func abort() async
}

/// How an object was put together from parts.
public struct ComposeSummary: Sendable, CustomStringConvertible {
    public var parts = 0
    public var bytes: Int64 = 0
    /// Parts (or their tails) the store copied server-side (S3's UploadPartCopy).
    public var copiedParts = 0
    /// Bytes that went through this process.
    public var streamedBytes: Int64 = 0

    public init() {}

    public var description: String {
        "\(bytes) bytes from \(parts) part(s), \(copiedParts) copied server-side (UploadPartCopy)"
    }
}

/// Concatenation: each part streamed, in order, into one writer that commits at the end.
struct StreamingComposer: ObjectComposer {
    let store: any ObjectStore
    var writer: any ObjectWriter
    var summary = ComposeSummary()

    mutating func append(_ part: ObjectURI) async throws {
        var reader = try await store.openReader(part)
        var buffer = ByteBuffer()
        while try await reader.read(into: &buffer, maxBytes: 1 << 20) > 0 {
            summary.bytes += Int64(buffer.readableBytes)
            try await writer.write(buffer)
            buffer.clear()
        }
        summary.parts += 1
        summary.streamedBytes = summary.bytes
    }

    mutating func commit() async throws -> ComposeSummary {
        try await writer.commit()
        return summary
    }

    mutating func abort() async { await writer.abort() }
}

extension ObjectStore {
    public func removeAbandonedTemporaries(for outputs: [ObjectURI]) async {}

    public func openComposer(_ destination: ObjectURI) async throws -> any ObjectComposer {
        StreamingComposer(store: self, writer: try await openWriter(destination))
    }

    /// `parts`, in order, as one object at `destination`.
    public func compose(_ parts: [ObjectURI], into destination: ObjectURI) async throws -> ComposeSummary {
        var composer = try await openComposer(destination)
        do {
            for part in parts { try await composer.append(part) }
            return try await composer.commit()
        } catch {
            await composer.abort()
            throw error
        }
    }
}
