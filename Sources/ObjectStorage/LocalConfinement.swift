import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Which local folders a job may touch. The one place that decides: every local path a job reads
/// or writes (inputs, manifests and their entries, outputs, model data, submitted code) is checked
/// here after its symlinks are resolved. A server job is confined to `--allow-local-path`; the
/// CLI acts for the user who runs it and is not confined.
public struct LocalConfinement: Sendable, Hashable {
    /// Real paths (symlinks resolved) of the allowed folders; nil means anywhere.
    public let roots: [String]?

    public static let unconfined = LocalConfinement(roots: nil)

    /// `folders` are absolute paths; each is resolved once, so a root given through a symlink works.
    public init(allowing folders: [String]) {
        self.init(roots: folders.map { Self.resolve($0) })
    }

    private init(roots: [String]?) { self.roots = roots }

    public var isConfined: Bool { roots != nil }

    /// Throws unless `path`, with every symlink in it followed, lies inside an allowed folder.
    /// Returns the resolved path. A path that does not exist yet is resolved through its deepest
    /// existing ancestor.
    @discardableResult
    public func check(_ path: String, _ what: String) throws(StorageError) -> String {
        guard isConfined else { return path }  // no realpath per file for the CLI's listings
        let resolved = Self.resolve(path)
        try checkResolved(resolved, given: path, what)
        return resolved
    }

    /// The same check for a file or folder already open: the kernel's own name for it, so no
    /// symlink swapped in between a check and the open can slip past.
    public func check(descriptor: Int32, path: String, _ what: String) throws(StorageError) {
        guard isConfined else { return }
        guard let actual = Self.path(of: descriptor) else {
            throw StorageError(.accessDenied, "\(what) \(path): cannot tell where it really is, so it is not used.")
        }
        try checkResolved(actual, given: path, what)
    }

    private func checkResolved(_ resolved: String, given path: String, _ what: String) throws(StorageError) {
        guard let roots else { return }
        if roots.contains(where: { Self.isInside(resolved, $0) }) { return }
        let via = resolved == path || resolved + "/" == path ? "" : " (it resolves to \(resolved))"
        throw StorageError(
            .accessDenied,
            "\(what) \(path)\(via) is outside the local folders this server may use (\(roots.joined(separator: ", "))). "
                + "Use an s3:// location, or start the server with --allow-local-path naming a folder that holds it."
        )
    }

    static func isInside(_ path: String, _ root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root + "/")
    }

    /// `realpath` of the deepest existing ancestor, with the rest appended as given.
    static func resolve(_ path: String) -> String {
        var existing = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        var rest: [Substring] = []
        while true {
            if let real = realpath(existing, nil) {
                defer { free(real) }
                let base = String(cString: real)
                guard !rest.isEmpty else { return base }
                return (base == "/" ? "" : base) + "/" + rest.reversed().joined(separator: "/")
            }
            guard let slash = existing.lastIndex(of: "/"), existing != "/" else { return path }
            rest.append(existing[existing.index(after: slash)...])
            existing = slash == existing.startIndex ? "/" : String(existing[..<slash])
        }
    }

    /// What the kernel calls an open descriptor (`/proc/self/fd/N`).
    static func path(of descriptor: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(descriptor)", &buffer, Int(PATH_MAX))
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
