import AWSSigV4
import ArgumentParser
import BatchformClient
import BatchformServer
import Foundation
import TransformEngine
import TransformSpec

#if canImport(Glibc)
import Glibc
#endif

/// Thin client verbs against a running `batchform serve`: each maps to one API call.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "List, describe, watch, stop and read the logs of jobs on a running `batchform serve`.",
        subcommands: [List.self, Describe.self, Watch.self, Stop.self, Logs.self, Errors.self]
    )

    struct Connection: ParsableArguments {
        @Option(help: "The server's URL (default: BATCHFORM_ENDPOINT_URL, else http://127.0.0.1:8070).")
        var endpoint: String?
        @Option(help: "An AWS-style credentials file whose first key signs the calls (as for serve --credentials).")
        var credentials: String?

        /// Signs with --credentials, else BATCHFORM_ACCESS_KEY_ID / BATCHFORM_SECRET_ACCESS_KEY, else
        /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. With none, calls go unsigned (a server started
        /// without keys accepts them), and a refusal says what to set.
        func client() throws -> BatchformClient {
            let environment = ProcessInfo.processInfo.environment
            let url = endpoint ?? environment["BATCHFORM_ENDPOINT_URL"] ?? "http://127.0.0.1:8070"
            var keys: AWSCredentials?
            if let credentials {
                do {
                    keys = try ServerSettings.credentials(fromFile: credentials).sorted { $0.key < $1.key }.first?.value
                } catch let error as ValidationException {
                    FileHandle.standardError.write(Data("batchform jobs: \(error.message)\n".utf8))
                    throw ExitCode(2)
                }
            } else {
                keys =
                    [
                        ("BATCHFORM_ACCESS_KEY_ID", "BATCHFORM_SECRET_ACCESS_KEY"),
                        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
                    ]
                    .lazy.compactMap { pair -> AWSCredentials? in
                        guard let id = environment[pair.0], let secret = environment[pair.1] else { return nil }
                        return AWSCredentials(accessKeyId: id, secretAccessKey: secret)
                    }.first
            }
            return BatchformClient(endpoint: url, credentials: keys)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Jobs, newest first.")
        @OptionGroup var connection: Connection
        @Option(help: "Only jobs with this status.") var status: String?
        @Option(help: "Only jobs whose name contains this.") var nameContains: String?

        func run() async throws {
            let client = try connection.client()
            var request = ListTransformJobsRequest()
            request.StatusEquals = status
            request.NameContains = nameContains
            request.MaxResults = 100
            print("NAME".padding(toLength: 40, withPad: " ", startingAt: 0) + " STATUS      CREATED")
            repeat {
                let page = try await client.report { [request] in
                    try await $0.call("ListTransformJobs", request, answer: ListTransformJobsResponse.self)
                }
                for job in page.TransformJobSummaries {
                    let created = Date(timeIntervalSince1970: job.CreationTime).formatted(.iso8601)
                    print(
                        job.TransformJobName.padding(toLength: 40, withPad: " ", startingAt: 0) + " "
                            + job.TransformJobStatus.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0) + " "
                            + created
                    )
                }
                request.NextToken = page.NextToken
            } while request.NextToken != nil
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "DescribeTransformJob, as JSON (with BatchformProgress)."
        )
        @OptionGroup var connection: Connection
        @Argument(help: "The job's name.") var name: String

        func run() async throws {
            let request = TransformJobNameRequest(TransformJobName: name)
            let body = try await connection.client().report { try await $0.call("DescribeTransformJob", request) }
            let object = try JSONSerialization.jsonObject(with: body)
            let pretty = try JSONSerialization.data(
                withJSONObject: object,
                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            )
            print(String(decoding: pretty, as: UTF8.self))
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a job's progress until it ends; exits 0 Completed, 1 Failed, 130 Stopped."
        )
        @OptionGroup var connection: Connection
        @Argument(help: "The job's name.") var name: String
        @Option(help: "Seconds between updates.") var interval: Double = 1

        func run() async throws {
            let client = try connection.client()
            let isTerminal = isatty(STDERR_FILENO) == 1
            while true {
                let request = TransformJobNameRequest(TransformJobName: name)
                let body = try await client.report { try await $0.call("DescribeTransformJob", request) }
                let described = try JSONDecoder().decode(WatchedJob.self, from: body)
                let line = described.line(bar: isTerminal)
                let status = described.TransformJobStatus
                let ended = ["Completed", "Failed", "Stopped"].contains(status)
                FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
                if ended {
                    if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
                    if let reason = described.FailureReason {
                        FileHandle.standardError.write(Data("FailureReason: \(reason)\n".utf8))
                    }
                    if status == "Completed" { return }
                    throw ExitCode(status == "Stopped" ? 130 : 1)
                }
                try await Task.sleep(for: .seconds(max(0.1, interval)))
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "StopTransformJob: no .out is written for unfinished objects."
        )
        @OptionGroup var connection: Connection
        @Argument(help: "The job's name.") var name: String

        func run() async throws {
            let request = TransformJobNameRequest(TransformJobName: name)
            _ = try await connection.client().report { try await $0.call("StopTransformJob", request) }
            print("Stopping \(name).")
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The job's log: the engine's lines, then each model server's output."
        )
        @OptionGroup var connection: Connection
        @Argument(help: "The job's name.") var name: String

        func run() async throws {
            let path = "/jobs/\(name)/logs"
            print(try await connection.client().report { try await $0.get(path) }, terminator: "")
        }
    }
}

extension JobsCommand {
    struct Errors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The job's record-errors report: one JSON line per record that failed alone."
        )
        @OptionGroup var connection: Connection
        @Argument(help: "The job's name.") var name: String

        func run() async throws {
            let path = "/jobs/\(name)/record-errors"
            print(try await connection.client().report { try await $0.get(path) }, terminator: "")
        }
    }
}

/// What `jobs watch` reads of Describe: the status and Batchform's progress member.
struct WatchedJob: Decodable {
    struct Progress: Decodable {
        var Phase: String
        var ObjectsTotal: Int
        var ObjectsCompleted: Int
        var ObjectsFailed: Int
        var RecordsProcessed: Int
        var BytesProcessed: Int64
        var BytesTotal: Int64
        var BytesPerSecond: Double
    }

    var TransformJobName: String
    var TransformJobStatus: String
    var FailureReason: String?
    var BatchformProgress: Progress?

    func line(bar: Bool) -> String {
        guard let progress = BatchformProgress else { return "\(TransformJobName): \(TransformJobStatus)" }
        var snapshot = JobProgress.Snapshot()
        snapshot.phase = progress.Phase
        snapshot.objectsTotal = progress.ObjectsTotal
        snapshot.objectsCompleted = progress.ObjectsCompleted
        snapshot.objectsFailed = progress.ObjectsFailed
        snapshot.recordsProcessed = progress.RecordsProcessed
        snapshot.bytesProcessed = progress.BytesProcessed
        snapshot.bytesTotal = progress.BytesTotal
        let elapsed = progress.BytesPerSecond > 0 ? Double(progress.BytesProcessed) / progress.BytesPerSecond : 0
        return "\(TransformJobName) \(TransformJobStatus): "
            + ProgressReporter.line(snapshot, elapsed: elapsed, bar: bar)
    }
}

/// The CLI's face of the client: what went wrong on stderr, and the exit status.
extension BatchformClient {
    func report<T>(_ body: (BatchformClient) async throws -> T) async throws -> T {
        do {
            return try await body(self)
        } catch let error as BatchformClientError {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            guard error.code == .needsCredentials else { throw ExitCode(1) }
            FileHandle.standardError.write(
                Data(
                    ("This server needs keys: export BATCHFORM_ACCESS_KEY_ID and BATCHFORM_SECRET_ACCESS_KEY (or "
                        + "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or pass --credentials FILE.\n").utf8
                )
            )
            throw ExitCode(2)
        }
    }
}
