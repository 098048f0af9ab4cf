import AWSSigV4
import Foundation
import ObjectStorage
import Testing

/// Where endpoint, region and credentials come from, in the AWS tools' order.
struct S3ConfigurationTests {
    let home: String

    init() throws {
        home = NSTemporaryDirectory() + "batchform-aws-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        try """
        [default]
        aws_access_key_id = DEFAULTKEY
        aws_secret_access_key = default-secret
        # a comment
        [team]
        aws_access_key_id = TEAMKEY
        aws_secret_access_key = team-secret
        aws_session_token = team-token
        """.write(toFile: home + "/.aws/credentials", atomically: true, encoding: .utf8)
        try """
        [default]
        region = eu-west-1
        [profile team]
        region = ap-south-1
        endpoint_url = http://127.0.0.1:9000
        s3 =
          addressing_style = path
        """.write(toFile: home + "/.aws/config", atomically: true, encoding: .utf8)
    }

    func resolve(_ environment: [String: String], _ options: S3Options = S3Options()) throws -> S3Configuration {
        try S3Configuration.resolve(options, environment: ["HOME": home].merging(environment) { $1 })
    }

    @Test func theDefaultProfileAndAwsAsEndpoint() throws {
        let configuration = try resolve([:])
        #expect(configuration.credentials.accessKeyId == "DEFAULTKEY" && configuration.credentials.sessionToken == nil)
        #expect(configuration.region == "eu-west-1" && configuration.endpoint == nil)
    }

    @Test func aNamedProfileGivesKeysTokenRegionAndEndpoint() throws {
        let configuration = try resolve(["AWS_PROFILE": "team"])
        #expect(configuration.credentials.accessKeyId == "TEAMKEY")
        #expect(configuration.credentials.sessionToken == "team-token")
        #expect(configuration.region == "ap-south-1")
        #expect(configuration.endpoint?.absoluteString == "http://127.0.0.1:9000")
    }

    @Test func environmentWinsOverTheProfileAndFlagsWinOverBoth() throws {
        let environment = [
            "AWS_PROFILE": "team", "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret",
            "AWS_SESSION_TOKEN": "env-token", "AWS_DEFAULT_REGION": "us-west-1",
            "AWS_ENDPOINT_URL": "http://localhost:1",
        ]
        let fromEnvironment = try resolve(environment)
        #expect(
            fromEnvironment.credentials
                == .init(accessKeyId: "ENVKEY", secretAccessKey: "env-secret", sessionToken: "env-token")
        )
        #expect(
            fromEnvironment.region == "us-west-1" && fromEnvironment.endpoint?.absoluteString == "http://localhost:1"
        )
        let specific = try resolve(
            environment.merging(["AWS_REGION": "us-west-2", "AWS_ENDPOINT_URL_S3": "http://localhost:2"]) { $1 }
        )
        #expect(specific.region == "us-west-2" && specific.endpoint?.absoluteString == "http://localhost:2")
        let flags = try resolve(environment, S3Options(endpoint: "https://minio.example:9443", region: "local"))
        #expect(flags.region == "local" && flags.endpoint?.absoluteString == "https://minio.example:9443")
    }

    @Test func missingOrHalfCredentialsAndBadEndpointsAreExplained() {
        #expect(throws: StorageError.self) { try resolve(["AWS_ACCESS_KEY_ID": "ONLYKEY"]) }
        #expect(throws: StorageError.self) { try resolve(["AWS_PROFILE": "absent"]) }
        #expect(throws: StorageError.self) { try resolve(["AWS_ENDPOINT_URL": "ftp://example"]) }
        do {
            _ = try S3Configuration.resolve(S3Options(), environment: ["HOME": "/nonexistent"])
            Issue.record("resolved without any credentials")
        } catch {
            #expect(
                error.message.hasPrefix(
                    "No AWS credentials for s3:// locations: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                )
            )
        }
    }
}
