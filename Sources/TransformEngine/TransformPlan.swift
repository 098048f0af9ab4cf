import ByteStreams
import Foundation
import NIOCore
public import ObjectStorage
public import TransformSpec

/// One input object and the output it produces.
public struct PlannedObject: Sendable, Hashable {
    public var input: ListedObject
    public var output: ObjectURI
    /// A work unit's part of the input (a `SplitType=Line` object split across workers): the
    /// records that start inside it. nil is the whole object.
    public var range: Range<Int64>?

    public init(input: ListedObject, output: ObjectURI, range: Range<Int64>? = nil) {
        self.input = input
        self.output = output
        self.range = range
    }
}

/// The job's inputs, in key order, each with its `.out` location:
/// `S3OutputPath/<key relative to the prefix's folder (or the manifest's prefix)>.out`.
public struct TransformPlan: Sendable {
    public var objects: [PlannedObject]

    public init(objects: [PlannedObject]) { self.objects = objects }

    public static func make(
        for job: TransformJobConfiguration,
        stores: ObjectStores,
        workingDirectory: String
    ) async throws -> TransformPlan {
        let inputURI = try ObjectURI(parsing: job.inputURI, workingDirectory: workingDirectory)
        let outputRoot = try ObjectURI(parsing: job.outputPath, workingDirectory: workingDirectory)
        _ = try stores.store(for: outputRoot)
        let inputs: [ListedObject]
        switch job.dataType {
        case .s3Prefix:
            inputs = try await stores.store(for: inputURI).list(prefix: inputURI)
        case .manifestFile:
            inputs = try await manifestEntries(inputURI, stores: stores, workingDirectory: workingDirectory)
        }
        guard !inputs.isEmpty else { throw ValidationException(noInputsMessage(job.inputURI, uri: inputURI)) }
        // A key like `a/../../x` (possible in S3 and in manifests) would name an output outside S3OutputPath.
        if let escaping = inputs.first(where: {
            $0.relativeKey.split(separator: "/").contains { $0 == ".." || $0 == "." }
        }) {
            throw ValidationException(
                "The input \(escaping.uri) has the key \(escaping.relativeKey), whose . or .. segment would put its output "
                    + "outside S3OutputPath \(job.outputPath). Rename the object or leave it out of the input."
            )
        }
        let objects = inputs.map { PlannedObject(input: $0, output: outputRoot.appending($0.relativeKey + ".out")) }
        try refuseCollidingOutputs(objects)
        return TransformPlan(objects: objects)
    }

    /// Two inputs with one output (S3 keys `in/a.csv` and `in//a.csv` written to one local folder,
    /// or a manifest that lists a key twice) would lose one answer: refused before anything runs.
    static func refuseCollidingOutputs(_ objects: [PlannedObject]) throws(ValidationException) {
        var firstInput: [ObjectURI: ObjectURI] = [:]
        for object in objects {
            let output = object.output.canonical
            if let earlier = firstInput.updateValue(object.input.uri, forKey: output) {
                let what =
                    earlier == object.input.uri
                    ? "lists the input \(earlier) twice" : "has the inputs \(earlier) and \(object.input.uri)"
                throw ValidationException(
                    "The job \(what), which would both be written to \(output); one answer would be lost. "
                        + "Rename one of them, or leave it out of the input (or the manifest)."
                )
            }
        }
    }

    /// SageMaker's text for an empty input, with the local equivalent for paths.
    static func noInputsMessage(_ given: String, uri: ObjectURI) -> String {
        if case .s3(let bucket, _) = uri {
            return "No S3 objects found under S3 URL \"\(given)\" given in input data source. Please ensure that "
                + "the bucket exists in the selected region, that objects exist under that S3 "
                + "prefix, and that the role \"batchform\" has \"s3:ListBucket\" permissions on bucket \"\(bucket)\"."
        }
        return "No objects found under \"\(given)\" given in input data source. Please ensure that files exist "
            + "whose paths start with that prefix (it is a raw prefix, as in S3: end a folder with / to read "
            + "everything inside it; hidden files are skipped)."
    }

    /// A manifest: `[{"prefix": "<uri>"}, "relative/key", ...]`; each entry is prefix + key.
    static func manifestEntries(
        _ manifest: ObjectURI,
        stores: ObjectStores,
        workingDirectory: String
    ) async throws -> [ListedObject] {
        let store = try stores.store(for: manifest)
        let bytes = try await store.readAll(manifest, upTo: 64 << 20)
        let problem = "The manifest \(manifest) must be a JSON array: [{\"prefix\": \"<location>/\"}, \"key1\", ...]"
        guard let array = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [Any],
            let head = array.first as? [String: Any], let prefix = head["prefix"] as? String
        else { throw ValidationException(problem + ".") }
        let base = try ObjectURI(parsing: prefix, workingDirectory: workingDirectory)
        let baseStore = try stores.store(for: base)
        if case .file(let path) = base {
            do {
                try stores.local.confinement.check(path, "its prefix")
            } catch {
                throw ValidationException("The manifest \(manifest): \(error.message)")
            }
        }
        var entries: [ListedObject] = []
        for (index, entry) in array.dropFirst().enumerated() {
            guard let key = entry as? String, !key.isEmpty else {
                throw ValidationException(problem + "; entry \(index + 2) is not a non-empty string.")
            }
            let uri = base.appending(key)
            var object: ListedObject
            do {
                object = try await baseStore.info(uri)
            } catch let error as StorageError where error.code == .accessDenied {
                throw ValidationException("The manifest \(manifest) lists \(uri): \(error.message)")
            } catch {
                throw ValidationException("The manifest \(manifest) lists \(uri), which does not exist.")
            }
            object.relativeKey = key
            entries.append(object)
        }
        return entries
    }
}

/// The records of an object, decompressed when the job says so.
func openRecordStream(
    _ store: any ObjectStore,
    _ uri: ObjectURI,
    compression: CompressionType
) async throws
    -> any ByteStream
{
    let raw = try await store.openReader(uri)
    switch compression {
    case .none: return raw
    case .gzip: return try GzipStream(AnyByteStream(raw), name: uri.description)
    }
}
