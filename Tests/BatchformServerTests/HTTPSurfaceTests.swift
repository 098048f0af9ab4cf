import AWSSigV4
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TransformEngine
import TransformSpec

@testable import BatchformServer

/// The SageMaker API and its SigV4 middleware, in process: every action's success and error
/// shapes, and each way a signature is refused.
@Suite struct HTTPSurfaceTests {
    static let key = AWSCredentials(accessKeyId: "AKIDHTTPTEST", secretAccessKey: "http-test-secret")

    struct Fixture {
        let root = NSTemporaryDirectory() + "http-\(UUID().uuidString.prefix(8))"
        let settings: ServerSettings
        let store: JobStore
        let executor: JobExecutor
        let app: Application<RouterResponder<BasicRequestContext>>

        init(signed: Bool) throws {
            try FileManager.default.createDirectory(atPath: root + "/in", withIntermediateDirectories: true)
            try Data("a\nb\n".utf8).write(to: URL(fileURLWithPath: root + "/in/a.txt"))
            var settings = ServerSettings(dataDirectory: root + "/data", workingDirectory: root, localRoots: [root])
            if signed { settings.credentials = [HTTPSurfaceTests.key.accessKeyId: HTTPSurfaceTests.key] }
            settings.maxRequestBytes = 4096
            self.settings = settings
            try FileManager.default.createDirectory(atPath: settings.dataDirectory, withIntermediateDirectories: true)
            store = try JobStore(path: settings.databasePath)
            executor = JobExecutor(store: store, settings: settings, metrics: ServerMetrics())
            let router = BatchformServer.makeRouter(
                store: store,
                executor: executor,
                metrics: ServerMetrics(),
                settings: settings,
                logger: Logger(label: "test")
            )
            app = Application(router: router)
        }
    }

    /// A SageMaker call as boto3 makes it, signed with `credentials` at `date` when given.
    static func call(
        _ client: some TestClientProtocol,
        _ operation: String,
        _ body: String,
        credentials: AWSCredentials? = nil,
        date: Date = Date(),
        region: String = "us-east-1"
    ) async throws -> (status: Int, json: [String: Any]) {
        var fields: [(String, String)] = [
            ("host", "localhost"), ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "SageMaker.\(operation)"),
        ]
        if let credentials {
            let signer = SigV4Signer(credentials: credentials, region: region, service: "sagemaker")
            fields += signer.signingHeaders(
                for: SigV4Request(method: "POST", path: "/", headers: fields.map { (name: $0.0, value: $0.1) }),
                payloadHash: SigV4Signer.sha256Hex(Data(body.utf8)),
                date: date
            ).map { ($0.name, $0.value) }
        }
        var headers = HTTPFields()
        for (name, value) in fields { headers[HTTPField.Name(name)!] = value }
        return try await client.execute(uri: "/", method: .post, headers: headers, body: ByteBuffer(string: body)) {
            response in
            let json =
                (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any]
            return (Int(response.status.code), json ?? [:])
        }
    }

    static let model = #"{"ModelName": "m", "PrimaryContainer": {"Image": "/bin/true"}}"#

    @Test func everyModelActionAnswersItsShape() async throws {
        let fixture = try Fixture(signed: false)
        try await fixture.app.test(.router) { client in
            let created = try await Self.call(client, "CreateModel", Self.model)
            #expect(created.status == 200)
            #expect(created.json["ModelArn"] as? String == "arn:aws:sagemaker:us-east-1:000000000000:model/m")
            let duplicate = try await Self.call(client, "CreateModel", Self.model)
            #expect(duplicate.status == 400 && duplicate.json["__type"] as? String == "ValidationException")
            let described = try await Self.call(client, "DescribeModel", #"{"ModelName": "M"}"#)
            #expect(described.status == 200 && described.json["ModelName"] as? String == "m")
            let listed = try await Self.call(client, "ListModels", "")
            #expect((listed.json["Models"] as? [[String: Any]])?.count == 1)
            let deleted = try await Self.call(client, "DeleteModel", #"{"ModelName": "m"}"#)
            #expect(deleted.status == 200)
            let gone = try await Self.call(client, "DescribeModel", #"{"ModelName": "m"}"#)
            #expect(gone.status == 400)
            #expect(
                gone.json["message"] as? String
                    == #"Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/m"."#
            )
        }
    }

    @Test func everyJobActionAnswersItsShape() async throws {
        let fixture = try Fixture(signed: false)
        try await fixture.app.test(.router) { client in
            _ = try await Self.call(client, "CreateModel", Self.model)
            let job = """
                {"TransformJobName": "j1", "ModelName": "m",
                 "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "\(fixture.root)/in/"}}},
                 "TransformOutput": {"S3OutputPath": "\(fixture.root)/out"},
                 "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}
                """
            let created = try await Self.call(client, "CreateTransformJob", job)
            #expect(created.status == 200, "\(created.json)")
            #expect(
                created.json["TransformJobArn"] as? String
                    == "arn:aws:sagemaker:us-east-1:000000000000:transform-job/j1"
            )
            let again = try await Self.call(client, "CreateTransformJob", job)
            #expect(again.json["__type"] as? String == "ResourceInUse")
            let described = try await Self.call(client, "DescribeTransformJob", #"{"TransformJobName": "j1"}"#)
            #expect(described.status == 200 && described.json["TransformJobName"] as? String == "j1")
            #expect(
                ["InProgress", "Completed", "Failed"].contains(described.json["TransformJobStatus"] as? String ?? "")
            )
            let listed = try await Self.call(client, "ListTransformJobs", #"{"MaxResults": 10}"#)
            #expect((listed.json["TransformJobSummaries"] as? [[String: Any]])?.count == 1)
            let tooMany = try await Self.call(client, "ListTransformJobs", #"{"MaxResults": 101}"#)
            #expect(tooMany.status == 400 && (tooMany.json["message"] as? String)?.contains("maxResults") == true)
            let missing = try await Self.call(client, "DescribeTransformJob", #"{"TransformJobName": "nope"}"#)
            #expect(missing.status == 400 && missing.json["__type"] as? String == "ValidationException")
            let stopMissing = try await Self.call(client, "StopTransformJob", #"{"TransformJobName": "nope"}"#)
            #expect(stopMissing.status == 400)
            let noModel = try await Self.call(
                client,
                "CreateTransformJob",
                job.replacingOccurrences(of: #""m""#, with: #""x""#)
            )
            #expect((noModel.json["message"] as? String)?.hasPrefix("Could not find model") == true)
            let invalid = try await Self.call(client, "CreateTransformJob", #"{"TransformJobName": "bad name"}"#)
            #expect((invalid.json["message"] as? String)?.contains("validation error") == true)
            let range = try await Self.call(
                client,
                "CreateTransformJob",
                job.replacingOccurrences(of: #""InstanceCount": 1"#, with: #""InstanceCount": 1e30"#)
            )
            #expect(
                (range.json["message"] as? String)?.contains("Value '1e+30' at 'transformResources.instanceCount'")
                    == true,
                "\(range.json)"
            )
            let unknown = try await Self.call(client, "CreateEndpoint", "{}")
            #expect(unknown.json["__type"] as? String == "UnknownOperationException")
            let garbled = try await Self.call(client, "DescribeTransformJob", "{not json")
            #expect(garbled.json["__type"] as? String == "SerializationException")
        }
        await fixture.executor.shutdown()
    }

    @Test func signaturesAreVerified() async throws {
        let fixture = try Fixture(signed: true)
        try await fixture.app.test(.router) { client in
            let good = try await Self.call(client, "ListModels", "{}", credentials: Self.key)
            #expect(good.status == 200, "\(good.json)")
            let wrongSecret = AWSCredentials(accessKeyId: Self.key.accessKeyId, secretAccessKey: "wrong")
            let bad = try await Self.call(client, "ListModels", "{}", credentials: wrongSecret)
            #expect(bad.status == 403 && bad.json["__type"] as? String == "InvalidSignatureException")
            let stranger = AWSCredentials(accessKeyId: "AKIDUNKNOWN", secretAccessKey: "x")
            let unknown = try await Self.call(client, "ListModels", "{}", credentials: stranger)
            #expect(unknown.status == 403 && unknown.json["__type"] as? String == "UnrecognizedClientException")
            let stale = try await Self.call(client, "ListModels", "{}", credentials: Self.key, date: Date() - 3600)
            #expect(stale.status == 403 && (stale.json["message"] as? String)?.contains("Signature expired") == true)
            let unsigned = try await Self.call(client, "ListModels", "{}")
            #expect(
                unsigned.status == 403 && unsigned.json["__type"] as? String == "MissingAuthenticationTokenException"
            )
            let large = try await Self.call(
                client,
                "ListModels",
                #"{"NameContains": ""# + String(repeating: "x", count: 5000) + #""}"#,
                credentials: Self.key
            )
            #expect(large.status == 413)
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }
}
