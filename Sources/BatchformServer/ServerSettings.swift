public import AWSSigV4
public import Foundation
public import ObjectStorage
import TransformSpec

/// How `batchform serve` runs: where it listens, where it keeps state, who may call it, and
/// which local folders its jobs may use.
public struct ServerSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 8070
    /// Holds `batchform.db` and each job's model server logs.
    public var dataDirectory: String
    /// Access keys that may call the API, by key id. Empty: requests are not verified, which is
    /// allowed only on a loopback address.
    public var credentials: [String: AWSCredentials] = [:]
    public var maxRunningJobs = 1
    public var startupTimeout: Duration = .seconds(300)
    public var s3 = S3Options()
    /// Resolves relative paths in requests.
    public var workingDirectory: String
    /// Local folders jobs may read and write (inputs, outputs, model data); `s3://` is not limited.
    public var localRoots: [String]
    /// Larger request bodies are refused (413): SageMaker's requests are a few KB.
    public var maxRequestBytes = 1 << 20

    public init(dataDirectory: String, workingDirectory: String, localRoots: [String]) {
        self.dataDirectory = ObjectURI.absolute(dataDirectory, in: workingDirectory)
        self.workingDirectory = workingDirectory
        self.localRoots = localRoots.map { ObjectURI.absolute($0, in: workingDirectory) }
    }

    var databasePath: String { dataDirectory + "/batchform.db" }

    func logDirectory(of job: String) -> String { "\(dataDirectory)/jobs/\(job.lowercased())/logs" }

    var isLoopback: Bool { ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") }

    /// Reads access keys from an AWS-style credentials file: every section with
    /// `aws_access_key_id` and `aws_secret_access_key` is one key that may call the server.
    public static func credentials(fromFile path: String) throws -> [String: AWSCredentials] {
        guard let sections = AWSConfigFile.sections(in: path) else {
            throw ValidationException("Cannot read the credentials file \(path).")
        }
        var keys: [String: AWSCredentials] = [:]
        for (_, section) in sections {
            guard let id = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] else { continue }
            keys[id] = AWSCredentials(accessKeyId: id, secretAccessKey: secret)
        }
        guard !keys.isEmpty else {
            throw ValidationException(
                "The credentials file \(path) holds no key: give each key a [section] with aws_access_key_id and aws_secret_access_key."
            )
        }
        return keys
    }
}

/// Keeps a job to the locations it names: local paths only inside the allowed folders.
struct LocationPolicy: Sendable {
    let settings: ServerSettings

    func check(_ location: String?, member: String) throws(ValidationException) {
        guard let location else { return }
        let uri: ObjectURI
        do {
            uri = try ObjectURI(parsing: location, workingDirectory: settings.workingDirectory)
        } catch {
            throw ValidationException("\(member) \(location): \(error.message)")
        }
        guard case .file(let path) = uri else { return }
        let inside = settings.localRoots.contains { root in
            path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
        }
        guard inside else {
            throw ValidationException(
                "\(member) \(location) is outside the local folders this server may use "
                    + "(\(settings.localRoots.joined(separator: ", "))). Use an s3:// location, or start the server "
                    + "with --allow-local-path naming a folder that holds it."
            )
        }
    }
}
