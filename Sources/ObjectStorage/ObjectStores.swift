/// Picks the store for a location. The one place that knows which schemes exist.
public struct ObjectStores: Sendable {
    public let local = LocalFileStore()
    public let s3: S3Store

    public init(s3 options: S3Options = S3Options()) {
        s3 = S3Store(options: options)
    }

    public func store(for uri: ObjectURI) throws(StorageError) -> any ObjectStore {
        switch uri {
        case .file: return local
        case .s3: return s3
        }
    }
}
