public import AWSSigV4
public import Foundation

/// What the command line says about S3; anything unset comes from the environment and profile.
public struct S3Options: Sendable, Hashable {
    public var endpoint: String?
    public var region: String?

    public init(endpoint: String? = nil, region: String? = nil) {
        self.endpoint = endpoint
        self.region = region
    }
}

/// Where S3 is and who we are to it, found the way the AWS CLI and SDKs find it.
public struct S3Configuration: Sendable {
    /// A custom endpoint (MinIO, moto, R2, ...), or nil for AWS itself.
    public var endpoint: URL?
    public var region: String
    public var credentials: AWSCredentials
    /// Says where the credentials came from, for error messages.
    public var credentialSource: String

    public init(endpoint: URL?, region: String, credentials: AWSCredentials, credentialSource: String) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.credentialSource = credentialSource
    }

    /// Flags first, then `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_REGION` /
    /// `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`,
    /// then the profile (`AWS_PROFILE`, default `default`) in `~/.aws/credentials` and
    /// `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`).
    public static func resolve(
        _ options: S3Options,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(StorageError) -> S3Configuration {
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let home = env("HOME") ?? NSHomeDirectory()
        let profileName = env("AWS_PROFILE") ?? env("AWS_DEFAULT_PROFILE") ?? "default"
        let explicitProfile = env("AWS_PROFILE") != nil || env("AWS_DEFAULT_PROFILE") != nil
        let credentialsFile = env("AWS_SHARED_CREDENTIALS_FILE") ?? home + "/.aws/credentials"
        let configFile = env("AWS_CONFIG_FILE") ?? home + "/.aws/config"
        let fromCredentialsFile = AWSConfigFile.section(profileName, in: credentialsFile)
        let fromConfigFile = AWSConfigFile.section(
            profileName == "default" ? "default" : "profile \(profileName)",
            in: configFile
        )
        let profile = (fromConfigFile ?? [:]).merging(fromCredentialsFile ?? [:]) { $1 }
        if explicitProfile, fromCredentialsFile == nil, fromConfigFile == nil, env("AWS_ACCESS_KEY_ID") == nil {
            throw StorageError(
                .credentials,
                "The AWS profile '\(profileName)' (from AWS_PROFILE) is in neither \(credentialsFile) nor \(configFile). "
                    + "Add it there, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
            )
        }

        let credentials: AWSCredentials
        let source: String
        if let key = env("AWS_ACCESS_KEY_ID") {
            guard let secret = env("AWS_SECRET_ACCESS_KEY") else {
                throw StorageError(.credentials, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not. Set both.")
            }
            credentials = AWSCredentials(
                accessKeyId: key,
                secretAccessKey: secret,
                sessionToken: env("AWS_SESSION_TOKEN")
            )
            source = "AWS_ACCESS_KEY_ID"
        } else if let key = profile["aws_access_key_id"], let secret = profile["aws_secret_access_key"] {
            credentials = AWSCredentials(
                accessKeyId: key,
                secretAccessKey: secret,
                sessionToken: profile["aws_session_token"]
            )
            source = "profile '\(profileName)'"
        } else {
            throw StorageError(
                .credentials,
                "No AWS credentials for s3:// locations: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    + "or AWS_PROFILE naming a profile in \(credentialsFile) with aws_access_key_id and aws_secret_access_key."
            )
        }

        let region =
            options.region ?? env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ?? profile["region"] ?? "us-east-1"
        let endpointText =
            options.endpoint ?? env("AWS_ENDPOINT_URL_S3") ?? env("AWS_ENDPOINT_URL") ?? profile["endpoint_url"]
        var endpoint: URL?
        if let endpointText {
            guard let url = URL(string: endpointText), let scheme = url.scheme, scheme == "http" || scheme == "https",
                url.host != nil
            else {
                throw StorageError(.invalidURI, "The S3 endpoint '\(endpointText)' is not an http:// or https:// URL.")
            }
            endpoint = url
        }
        return S3Configuration(endpoint: endpoint, region: region, credentials: credentials, credentialSource: source)
    }
}
