public import ByteStreams
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// How far one archive may expand.
public struct ArchiveLimits: Sendable {
    /// Bytes of regular files written, in all (`BATCHFORM_MAX_MODEL_BYTES`).
    public var maxBytes: Int64
    public var maxEntries: Int

    public init(maxBytes: Int64 = 100 << 30, maxEntries: Int = 1_000_000) {
        self.maxBytes = maxBytes
        self.maxEntries = maxEntries
    }
}

/// A streaming extractor of (gzip-decompressed) tar archives: ustar, GNU long names, GNU base-256
/// sizes and pax records. Nothing it writes can land outside `root`, whatever the entries say:
/// - every path is walked from a handle on `root`, one component at a time, never following a
///   symlink (`openat` with `O_NOFOLLOW`), and an entry whose path goes through a symlink the
///   archive made earlier is refused;
/// - a symlink may only point inside the folder, counted from where it sits, and only up
///   through real folders (`..` before any name), so no chain of links leads out;
/// - a hard link may only name a regular file this archive already wrote;
/// - sizes are checked before any arithmetic, and the total is capped by `ArchiveLimits`.
/// Every refusal names the archive, the entry and the reason.
public struct TarArchive {
    let name: String
    let limits: ArchiveLimits

    public init(name: String, limits: ArchiveLimits = ArchiveLimits()) {
        self.name = name
        self.limits = limits
    }

    /// What the archive has made so far, by path relative to the root.
    private enum Made { case file, folder, symlink }

    public func extract(from stream: some ByteStream, into root: String) async throws {
        let rootHandle = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootHandle >= 0 else { throw failure("cannot open the folder \(root): \(lastError())") }
        defer { close(rootHandle) }
        var reader = ExactReader(stream, archive: name)
        var made: [String: Made] = [:]
        var pending = PendingNames()
        var written: Int64 = 0
        var entries = 0
        while let header = try await reader.read(512) {
            let bytes = Array(header.readableBytesView)
            if bytes.allSatisfy({ $0 == 0 }) { break }
            entries += 1
            guard entries <= limits.maxEntries else {
                throw failure("it has more than \(limits.maxEntries) entries, more than a model archive may hold.")
            }
            guard Self.checksumMatches(bytes) else {
                throw failure(
                    "entry \(entries) has a header whose checksum does not match: this is not a tar archive, or it is damaged."
                )
            }
            let type = bytes[156]
            let entryName = pending.path ?? Self.joinedName(bytes)
            guard let storedSize = pending.size ?? Self.number(bytes[124..<136]) else {
                throw refusal(entryName, "its size field is not a number that fits in 64 bits.")
            }
            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "g"):
                // Metadata for the next entry: small by nature, so it is read whole, but bounded.
                guard storedSize <= 1 << 20 else {
                    throw refusal(
                        entryName,
                        "its \(Character(UnicodeScalar(type))) metadata is \(storedSize) bytes (at most 1 MiB)."
                    )
                }
                let size = Int(storedSize)
                guard let data = try await reader.read(Self.padded(size)) else { throw truncated() }
                let content = Array(data.readableBytesView.prefix(size))
                switch type {
                case UInt8(ascii: "L"): pending.longName = Self.string(content[...])
                case UInt8(ascii: "K"): pending.longLink = Self.string(content[...])
                case UInt8(ascii: "x"): try pending.readPax(content, entry: entries, archive: self)
                default: break  // global pax records carry nothing we use
                }
                continue
            default:
                break
            }
            let linkName = pending.link ?? Self.string(bytes[157..<257])
            pending = PendingNames()
            let isRegularFile = type == UInt8(ascii: "0") || type == 0 || type == UInt8(ascii: "7")
            let remaining = limits.maxBytes - written
            guard storedSize <= remaining else {
                throw refusal(
                    entryName,
                    "it is \(storedSize) bytes, and the archive may expand to at most \(limits.maxBytes) bytes in all "
                        + "(BATCHFORM_MAX_MODEL_BYTES); \(written) are already written."
                )
            }
            let size = Int(storedSize)
            let padded = Self.padded(size)
            guard let components = try entryComponents(entryName) else {
                try await reader.skip(padded)  // the root itself ("./"): SageMaker SDK archives start with it
                continue
            }
            let path = components.joined(separator: "/")
            let leaf = components.last!
            switch type {
            case _ where isRegularFile:
                let parent = try openFolder(components.dropLast(), in: rootHandle, made: &made, entry: entryName)
                defer { close(parent) }
                try removeForReplacement(leaf, in: parent, path: path, made: &made, entry: entryName)
                let mode = mode_t(Self.number(bytes[100..<108]).map { Int($0 & 0o777) } ?? 0o644) | 0o600
                let file = openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
                guard file >= 0 else { throw refusal(entryName, "cannot create it: \(lastError()).") }
                defer { close(file) }
                try await copy(size, from: &reader, to: file, entry: entryName)
                try await reader.skip(padded - size)
                written += storedSize
                made[path] = .file
            case UInt8(ascii: "5"):
                let folder = try openFolder(components[...], in: rootHandle, made: &made, entry: entryName)
                close(folder)
                try await reader.skip(padded)
            case UInt8(ascii: "2"):
                try checkSymlinkTarget(linkName, from: components.count - 1, entry: entryName)
                let parent = try openFolder(components.dropLast(), in: rootHandle, made: &made, entry: entryName)
                defer { close(parent) }
                try removeForReplacement(leaf, in: parent, path: path, made: &made, entry: entryName)
                guard symlinkat(linkName, parent, leaf) == 0 else {
                    throw refusal(entryName, "cannot create the link: \(lastError()).")
                }
                made[path] = .symlink
                try await reader.skip(padded)
            case UInt8(ascii: "1"):
                let targetComponents = (try? entryComponents(linkName)) ?? nil
                guard let targetComponents, made[targetComponents.joined(separator: "/")] == .file else {
                    throw refusal(
                        entryName,
                        "it is a hard link to \"\(linkName)\", which is not a file this archive has already written."
                    )
                }
                let targetParent = try openFolder(
                    targetComponents.dropLast(),
                    in: rootHandle,
                    made: &made,
                    entry: entryName
                )
                defer { close(targetParent) }
                let parent = try openFolder(components.dropLast(), in: rootHandle, made: &made, entry: entryName)
                defer { close(parent) }
                try removeForReplacement(leaf, in: parent, path: path, made: &made, entry: entryName)
                guard linkat(targetParent, targetComponents.last!, parent, leaf, 0) == 0 else {
                    throw refusal(entryName, "cannot create the hard link to \"\(linkName)\": \(lastError()).")
                }
                made[path] = .file
                try await reader.skip(padded)
            default:
                // Devices, FIFOs and the like are not model data.
                try await reader.skip(padded)
            }
        }
    }

    // MARK: Paths

    /// The entry's path as components, nil for the root itself. Absolute paths and `..` are refused.
    func entryComponents(_ path: String) throws -> [String]? {
        if path.hasPrefix("/") && path != "/" {
            throw refusal(
                path,
                "it is an absolute path. Re-create the archive with relative paths (tar -czf model.tar.gz -C model_dir .)."
            )
        }
        let components = path.split(separator: "/").filter { $0 != "." }.map(String.init)
        if components.contains("..") {
            throw refusal(path, "its path has a .. component, which could lead outside the model folder.")
        }
        return components.isEmpty ? nil : components
    }

    /// A link's target, from a link at `depth` folders below the root, must stay inside, and may
    /// climb only through the real folders above the link (all `..` before any name).
    func checkSymlinkTarget(_ target: String, from depth: Int, entry: String) throws {
        guard !target.isEmpty, !target.hasPrefix("/") else {
            throw refusal(
                entry,
                "it is a link to \"\(target)\"; links must be relative and point inside the model folder."
            )
        }
        let parts = target.split(separator: "/").filter { $0 != "." }
        let climbs = parts.prefix { $0 == ".." }.count
        guard climbs <= depth, !parts.dropFirst(climbs).contains("..") else {
            throw refusal(
                entry,
                "it is a link to \"\(target)\", which points outside the model folder, or climbs through a name that may itself be a link."
            )
        }
    }

    /// Opens the folder at `components` below the root, creating what is missing, never following a link.
    private func openFolder(
        _ components: ArraySlice<String>,
        in root: Int32,
        made: inout [String: Made],
        entry: String
    ) throws -> Int32 {
        var handle = dup(root)
        var walked: [String] = []
        for component in components {
            walked.append(component)
            let path = walked.joined(separator: "/")
            if made[path] == .symlink {
                close(handle)
                throw refusal(entry, "its path goes through \"\(path)\", a link this archive made earlier.")
            }
            var next = openat(handle, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0, errno == ENOENT {
                if mkdirat(handle, component, 0o755) != 0, errno != EEXIST {
                    let reason = lastError()
                    close(handle)
                    throw refusal(entry, "cannot create the folder \"\(path)\": \(reason).")
                }
                next = openat(handle, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            let reason = errno == ELOOP || errno == ENOTDIR ? "it is a link or a file, not a folder" : lastError()
            close(handle)
            guard next >= 0 else { throw refusal(entry, "its path goes through \"\(path)\": \(reason).") }
            made[path] = .folder
            handle = next
        }
        return handle
    }

    /// A later entry may replace an earlier file or link of the same name, never a folder.
    private func removeForReplacement(
        _ leaf: String,
        in parent: Int32,
        path: String,
        made: inout [String: Made],
        entry: String
    ) throws {
        var status = stat()
        guard fstatat(parent, leaf, &status, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        guard (status.st_mode & S_IFMT) != S_IFDIR else {
            throw refusal(entry, "a folder of that name is already there.")
        }
        guard unlinkat(parent, leaf, 0) == 0 else {
            throw refusal(entry, "cannot replace the earlier entry: \(lastError()).")
        }
        made[path] = nil
    }

    private func copy(
        _ size: Int,
        from reader: inout ExactReader<some ByteStream>,
        to file: Int32,
        entry: String
    ) async throws {
        var remaining = size
        while remaining > 0 {
            guard let chunk = try await reader.read(min(remaining, 1 << 20)) else { throw truncated() }
            try chunk.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let count = Glibc.write(file, bytes.baseAddress! + offset, bytes.count - offset)
                    if count < 0, errno == EINTR { continue }
                    guard count > 0 else { throw refusal(entry, "writing it failed: \(lastError()).") }
                    offset += count
                }
            }
            remaining -= chunk.readableBytes
        }
    }

    // MARK: Headers

    static func padded(_ size: Int) -> Int { (size + 511) & ~511 }

    static func checksumMatches(_ header: [UInt8]) -> Bool {
        guard let stored = number(header[148..<156]) else { return false }
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let value = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        return stored == unsigned || stored == signed
    }

    /// An octal field (NUL- or space-terminated), or GNU base-256 (high bit set); nil when it
    /// holds something else, is negative, or does not fit in 63 bits.
    static func number(_ field: ArraySlice<UInt8>) -> Int64? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            guard first & 0x40 == 0 else { return nil }  // negative
            var value = Int64(first & 0x3f)
            for byte in field.dropFirst() {
                guard value <= (Int64.max >> 8) else { return nil }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        let digits = field.drop { $0 == UInt8(ascii: " ") }.prefix { $0 != 0 && $0 != UInt8(ascii: " ") }
        var value: Int64 = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(digit), value <= (Int64.max >> 3) else { return nil }
            value = value << 3 | Int64(digit - UInt8(ascii: "0"))
        }
        return value
    }

    static func joinedName(_ header: [UInt8]) -> String {
        let name = string(header[0..<100])
        let isUstar = header[257..<262].elementsEqual("ustar".utf8)
        let prefix = isUstar ? string(header[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    // MARK: Errors

    func refusal(_ entry: String, _ reason: String) -> RuntimeError {
        RuntimeError(.unsafeArchive, "\(name): refusing the entry \"\(entry)\": \(reason)")
    }

    func failure(_ reason: String) -> RuntimeError {
        RuntimeError(.unsafeArchive, "\(name): \(reason)")
    }

    func truncated() -> RuntimeError { failure("the archive ends in the middle of an entry; it is truncated.") }
}

private func lastError() -> String { String(cString: strerror(errno)) }

/// GNU long names and pax records that apply to the next entry.
private struct PendingNames {
    var longName: String?
    var longLink: String?
    var paxPath: String?
    var paxLink: String?
    var size: Int64?

    var path: String? { paxPath ?? longName }
    var link: String? { paxLink ?? longLink }

    /// Records are `<length> <key>=<value>\n`, the length counting the whole record.
    mutating func readPax(_ content: [UInt8], entry: Int, archive: TarArchive) throws {
        var position = 0
        while position < content.count {
            let digits = content[position...].prefix { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            guard !digits.isEmpty, digits.count < 8, position + digits.count < content.count,
                content[position + digits.count] == UInt8(ascii: " "),
                let length = Int(String(decoding: digits, as: UTF8.self)), length > digits.count + 1,
                position + length <= content.count, content[position + length - 1] == UInt8(ascii: "\n")
            else {
                if content[position...].allSatisfy({ $0 == 0 }) { return }
                throw archive.failure("entry \(entry) has a malformed pax record at byte \(position).")
            }
            let record = content[(position + digits.count + 1)..<(position + length - 1)]
            position += length
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let key = String(decoding: record[..<equals], as: UTF8.self)
            let value = String(decoding: record[(equals + 1)...], as: UTF8.self)
            switch key {
            case "path": paxPath = value
            case "linkpath": paxLink = value
            case "size":
                guard let size = Int64(value), size >= 0 else {
                    throw archive.failure(
                        "entry \(entry) has the pax size \"\(value)\", which is not a size that fits in 64 bits."
                    )
                }
                self.size = size
            default: continue
            }
        }
    }
}

/// Reads exact byte counts from a stream.
struct ExactReader<Source: ByteStream> {
    private var source: Source
    private let archive: String
    private var buffer = ByteBuffer()
    private var ended = false

    init(_ source: Source, archive: String) {
        self.source = source
        self.archive = archive
    }

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
            throw RuntimeError(
                .unsafeArchive,
                "\(archive): the archive ends in the middle of an entry; it is truncated."
            )
        }
        return buffer.readSlice(length: count)
    }

    mutating func skip(_ count: Int) async throws {
        var remaining = count
        while remaining > 0 {
            guard let chunk = try await read(min(remaining, 1 << 20)) else {
                throw RuntimeError(
                    .unsafeArchive,
                    "\(archive): the archive ends in the middle of an entry; it is truncated."
                )
            }
            remaining -= chunk.readableBytes
        }
    }
}
