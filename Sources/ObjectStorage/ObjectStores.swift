/// Picks the store for a location. The one place that knows which schemes exist.
public struct ObjectStores: Sendable {
    public let local = LocalFileStore()

    public init() {}

    public func store(for uri: ObjectURI) throws(StorageError) -> any ObjectStore {
        switch uri {
        case .file: return local
        case .s3:
            throw StorageError(
                .notSupported,
                "\(uri): s3:// locations are not supported yet by this Batchform build. Use a local path or file:// URI."
            )
        }
    }
}
