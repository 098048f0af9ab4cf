public import Foundation

/// Picks the store for a location. The one place that knows which schemes exist.
public struct ObjectStores: Sendable {
    public let local: LocalFileStore
    public let s3: S3Store

    /// `environment` is where S3 settings and credentials are looked up (the process's by default);
    /// `confinement` keeps local paths inside the allowed folders.
    public init(
        s3 options: S3Options = S3Options(),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        confinement: LocalConfinement = .unconfined
    ) {
        s3 = S3Store(options: options, environment: environment)
        local = LocalFileStore(confinement: confinement)
    }

    public func store(for uri: ObjectURI) throws(StorageError) -> any ObjectStore {
        switch uri {
        case .file: return local
        case .s3: return s3
        }
    }
}
