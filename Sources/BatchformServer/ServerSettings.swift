public import AWSSigV4
public import Cluster
import Foundation
public import ObjectStorage
import TransformSpec

#if canImport(Glibc)
import Glibc
#endif

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
    /// `--executor slurm`: each job's workers, made anew per job; nil runs jobs on this machine.
    public var clusterExecutor: (@Sendable () -> any WorkerExecutor)?
    /// What each worker node runs, and where they reach the coordinator (`--executor slurm`).
    public var workerCommand: [String] = []
    public var coordinatorAddress = CoordinatorAddress()
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

    /// The allowed folders, as every job's local store enforces them.
    var confinement: LocalConfinement { LocalConfinement(allowing: localRoots) }

    var databasePath: String { dataDirectory + "/batchform.db" }

    func logDirectory(of job: String) -> String { "\(dataDirectory)/jobs/\(job.lowercased())/logs" }

    /// The account ID in ARNs (`--account-id`).
    public var accountID = ResourceARN.defaultAccount

    /// Whether every address `host` resolves to is a loopback one: a name is looked up, never
    /// judged by its spelling (`127.0.0.1.nip.io` is a public name).
    var isLoopback: Bool { LoopbackAddress.allLoopback(host) }

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

/// Keeps a job to the locations it names: local paths only inside the allowed folders, decided
/// by the same `LocalConfinement` the job's stores use while it runs.
struct LocationPolicy: Sendable {
    let settings: ServerSettings

    func check(_ location: String?, member: String) throws(ValidationException) {
        guard let location else { return }
        do {
            let uri = try ObjectURI(parsing: location, workingDirectory: settings.workingDirectory)
            guard case .file(let path) = uri else { return }
            try settings.confinement.check(path, member)
        } catch {
            throw ValidationException(
                error.code == .invalidURI ? "\(member) \(location): \(error.message)" : error.message
            )
        }
    }

    /// Code the SDK submits (`SAGEMAKER_SUBMIT_DIRECTORY`), in a model's or a job's Environment.
    /// `/opt/ml/...` is the container's own path, not one of this machine's.
    func checkSubmitDirectory(in environment: [String: String], member: String) throws(ValidationException) {
        guard let submitDirectory = environment["SAGEMAKER_SUBMIT_DIRECTORY"], !submitDirectory.hasPrefix("/opt/ml/")
        else {
            return
        }
        try check(submitDirectory, member: "\(member) SAGEMAKER_SUBMIT_DIRECTORY")
    }
}

/// Resolves a listening address the way the server will bind it.
enum LoopbackAddress {
    static func allLoopback(_ host: String) -> Bool {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &results) == 0, let first = results else { return false }
        defer { freeaddrinfo(first) }
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            guard let address = entry.pointee.ai_addr else { return false }
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                let ipv4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                guard UInt32(bigEndian: ipv4) >> 24 == 127 else { return false }
            case AF_INET6:
                let ipv6 = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                let bytes = withUnsafeBytes(of: ipv6) { Array($0) }
                let isLoopback = bytes.dropLast().allSatisfy { $0 == 0 } && bytes.last == 1
                let isMappedIPv4Loopback =
                    bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127
                guard isLoopback || isMappedIPv4Loopback else { return false }
            default:
                return false
            }
            cursor = entry.pointee.ai_next
        }
        return true
    }
}
