import ByteStreams
import Foundation
import NIOCore
public import ObjectStorage

#if canImport(Glibc)
import Glibc
#endif

/// Puts a model's `ModelDataUrl` where its server can read it: a directory is used as it is; a
/// `.tar.gz` is unpacked into a fresh directory, refusing any entry that would land outside it.
public enum ModelArtifacts {
    /// Returns the model directory. `scratch` is a fresh folder the caller removes afterwards.
    public static func prepare(
        modelData: ObjectURI?,
        stores: ObjectStores,
        scratch: String,
        limits: ArchiveLimits
    ) async throws -> String {
        guard let modelData else {
            let empty = scratch + "/model"
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            return empty
        }
        if case .file(let path) = modelData {
            try stores.local.confinement.check(path, "ModelDataUrl")
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw RuntimeError(.modelDataNotFound, "Could not find model data at \(path).")
            }
            if isDirectory.boolValue { return path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path }
        }
        if case .s3 = modelData, let etag = try await stores.store(for: modelData).info(modelData).etag {
            return try await cachedUnpack(modelData, etag: etag, stores: stores, limits: limits)
        }
        return try await unpack(modelData, stores: stores, into: scratch + "/model", limits: limits)
    }

    /// Remote archives are unpacked once per content (ETag) into `$BATCHFORM_CACHE_DIR/models`
    /// (default `~/.cache/batchform/models`), so the next job with the same model downloads nothing.
    /// A folder appears there only complete: it is unpacked beside it and renamed into place.
    static func cachedUnpack(
        _ archive: ObjectURI,
        etag: String,
        stores: ObjectStores,
        limits: ArchiveLimits
    ) async throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let cacheRoot = environment["BATCHFORM_CACHE_DIR"] ?? (NSHomeDirectory() + "/.cache/batchform")
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: a stable name, not a security boundary
        for byte in "\(archive)\n\(etag)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let target = "\(cacheRoot)/models/\(String(hash, radix: 16))"
        if FileManager.default.fileExists(atPath: target) { return target }
        let partial = "\(target).partial-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: partial) }
        _ = try await unpack(archive, stores: stores, into: partial, limits: limits)
        // Another job may have finished the same model first; either copy is complete.
        if rename(partial, target) != 0, !FileManager.default.fileExists(atPath: target) {
            throw RuntimeError(
                .modelDataNotFound,
                "Could not place the unpacked \(archive) in \(target): \(String(cString: strerror(errno)))."
            )
        }
        return target
    }

    /// Unpacks a `.tar.gz` (a model, or the SDK's `sourcedir.tar.gz`) into a fresh folder `target`;
    /// returns `target`.
    public static func unpack(
        _ archive: ObjectURI,
        stores: ObjectStores,
        into target: String,
        limits: ArchiveLimits
    ) async throws -> String {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let compressed = try await stores.store(for: archive).openReader(archive)
        try await TarArchive(name: archive.description, limits: limits).extract(
            from: GzipStream(AnyByteStream(compressed), name: archive.description),
            into: target
        )
        return target
    }
}
