import AWSSigV4
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TransformSpec

/// Thin client verbs against a running `batchform serve`: each maps to one API call.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "List, describe, stop and read the logs of jobs on a running `batchform serve`.",
        subcommands: [List.self, Describe.self, Stop.self, Logs.self]
    )

    struct Connection: ParsableArguments {
        @Option(help: "The server's URL (default: BATCHFORM_ENDPOINT_URL, else http://127.0.0.1:8070).")
        var endpoint: String?

        /// Signs with BATCHFORM_ACCESS_KEY_ID / BATCHFORM_SECRET_ACCESS_KEY, else AWS_ACCESS_KEY_ID /
        /// AWS_SECRET_ACCESS_KEY; a server without keys accepts any.
        func client() -> APIClient {
            let environment = ProcessInfo.processInfo.environment
            let url = endpoint ?? environment["BATCHFORM_ENDPOINT_URL"] ?? "http://127.0.0.1:8070"
            let credentials =
                [("BATCHFORM_ACCESS_KEY_ID", "BATCHFORM_SECRET_ACCESS_KEY"), ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
                .lazy.compactMap { pair -> AWSCredentials? in
                    guard let id = environment[pair.0], let secret = environment[pair.1] else { return nil }
                    return AWSCredentials(accessKeyId: id, secretAccessKey: secret)
                }.first ?? AWSCredentials(accessKeyId: "batchform", secretAccessKey: "batchform")
            return APIClient(endpoint: url.hasSuffix("/") ? String(url.dropLast()) : url, credentials: credentials)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Jobs, newest first.")
        @OptionGroup var connection: Connection
        @Option(help: "Only jobs with this status.") var status: String?
        @Option(help: "Only jobs whose name contains this.") var nameContains: String?

        func run() async throws {
            let client = connection.client()
            var request = ListTransformJobsRequest()
            request.StatusEquals = status
            request.NameContains = nameContains
            request.MaxResults = 100
            print("NAME".padding(toLength: 40, withPad: " ", startingAt: 0) + " STATUS      CREATED")
            repeat {
                let page = try await client.call("ListTransformJobs", request, answer: ListTransformJobsResponse.self)
                for job in page.TransformJobSummaries {
                    let created = Date(timeIntervalSince1970: job.CreationTime).formatted(.iso8601)
                    print(
                        job.TransformJobName.padding(toLength: 40, withPad: " ", startingAt: 0) + " "
                            + job.TransformJobStatus.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0) + " " + created
                    )
                }
                request.NextToken = page.NextToken
            } while request.NextToken != nil
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "DescribeTransformJob, as JSON (with BatchformProgress).")
        @OptionGroup var connection: Connection
        @Argument(help: "The job's name.") var name: String

        func run() async throws {
            let body = try await connection.client().call("DescribeTransformJob", TransformJobNameRequest(TransformJobName: name))
            let object = try JSONSerialization.jsonObject(with: body)
            let pretty = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: pretty, as: UTF8.self))
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "StopTransformJob: no .out is written for unfinished objects.")
        @OptionGroup var connection: Connection
        @Argument(help: "The job's name.") var name: String

        func run() async throws {
            _ = try await connection.client().call("StopTransformJob", TransformJobNameRequest(TransformJobName: name))
            print("Stopping \(name).")
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The job's log: the engine's lines, then each model server's output.")
        @OptionGroup var connection: Connection
        @Argument(help: "The job's name.") var name: String

        func run() async throws {
            print(try await connection.client().get("/jobs/\(name)/logs"), terminator: "")
        }
    }
}

/// Signed AWS JSON 1.1 calls to a Batchform server.
struct APIClient {
    let endpoint: String
    let credentials: AWSCredentials

    func call<Answer: Decodable>(_ operation: String, _ body: some Encodable, answer: Answer.Type) async throws -> Answer {
        try JSONDecoder().decode(Answer.self, from: try await call(operation, body))
    }

    func call(_ operation: String, _ body: some Encodable) async throws -> Data {
        let payload = try JSONEncoder().encode(body)
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "SageMaker.\(operation)")]
        return try await send("POST", path: "/", headers: headers, body: payload)
    }

    func get(_ path: String) async throws -> String {
        String(decoding: try await send("GET", path: path, headers: [], body: Data()), as: UTF8.self)
    }

    private func send(_ method: String, path: String, headers: [(String, String)], body: Data) async throws -> Data {
        guard let url = URL(string: endpoint + path), let host = url.host else {
            throw ValidationException("\(endpoint) is not a server URL such as http://127.0.0.1:8070.")
        }
        let authority = url.port.map { "\(host):\($0)" } ?? host
        let unsigned = [(name: "host", value: authority)] + headers.map { (name: $0.0, value: $0.1) }
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "sagemaker")
        let signing = signer.signingHeaders(
            for: SigV4Request(method: method, path: path, headers: unsigned), payloadHash: SigV4Signer.sha256Hex(body), date: Date()
        )
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .init(rawValue: method)
        for header in unsigned + signing { request.headers.add(name: header.name, value: header.value) }
        if !body.isEmpty { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        } catch {
            throw ValidationException("Cannot reach a Batchform server at \(endpoint): \(error). Is `batchform serve` running?")
        }
        let answer = Data(try await response.body.collect(upTo: 256 << 20).readableBytesView)
        guard (200..<300).contains(response.status.code) else {
            let error = (try? JSONSerialization.jsonObject(with: answer)) as? [String: Any]
            let type = error?["__type"] as? String ?? "HTTP \(response.status.code)"
            let message = error?["message"] as? String ?? String(decoding: answer, as: UTF8.self)
            FileHandle.standardError.write(Data("\(type): \(message)\n".utf8))
            throw ExitCode(1)
        }
        return answer
    }
}
