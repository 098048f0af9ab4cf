import AWSSigV4
import ArgumentParser
import BatchformServer
import Cluster
import Foundation
import Logging
import ObjectStorage
import TransformSpec

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Answer the SageMaker API (boto3, the SageMaker SDK) and run its transform jobs on this machine.",
        discussion: """
            Point a client at it by its endpoint URL, e.g. boto3.client("sagemaker", endpoint_url="http://127.0.0.1:8070"). \
            Requests are verified with SigV4 against --credentials or BATCHFORM_ACCESS_KEY_ID and \
            BATCHFORM_SECRET_ACCESS_KEY; without keys the server listens on loopback only. Jobs, models and logs \
            are kept in --data-dir; a restarted server resumes its unfinished jobs.
            """
    )

    @Option(help: "Address to listen on; anything but loopback needs credentials.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one and prints it).") var port = 8070
    @Option(help: "Where the job database and model server logs are kept.") var dataDir = "./batchform-data"
    @Option(
        help:
            "An AWS-style credentials file: each [section] with aws_access_key_id and aws_secret_access_key may call the API."
    )
    var credentials: String?
    @Option(help: "Jobs running at once; later ones wait, InProgress.") var maxRunningJobs = 1
    @Option(help: "A local folder jobs may read and write (repeatable; default: the current directory).")
    var allowLocalPath: [String] = []
    @Option(help: "Seconds to wait for a model's first healthy /ping.") var startupTimeout = 300
    @Option(
        help: "S3 endpoint URL for s3:// locations (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile, AWS)."
    )
    var s3Endpoint: String?
    @Option(help: "AWS region for s3:// locations.") var region: String?
    @Option(help: "The 12-digit account ID in the ARNs the API answers with.") var accountId = "000000000000"
    @Option(help: "text (default) or json: one JSON object per line, for log shippers.") var logFormat = "text"
    @Option(
        help:
            "Where every API job's instances run: local (this machine) or slurm (one worker per instance on Slurm nodes; sbatch arguments from BATCHFORM_SLURM_ARGS)."
    )
    var executor: ExecutorName = .local

    func run() async throws {
        let workingDirectory = FileManager.default.currentDirectoryPath
        var settings = ServerSettings(
            dataDirectory: dataDir,
            workingDirectory: workingDirectory,
            localRoots: allowLocalPath.isEmpty ? [workingDirectory] : allowLocalPath
        )
        settings.host = host
        settings.port = port
        settings.maxRunningJobs = maxRunningJobs
        settings.accountID = accountId
        settings.startupTimeout = .seconds(startupTimeout)
        settings.s3 = S3Options(endpoint: s3Endpoint, region: region)
        if executor == .slurm {
            let arguments = SlurmExecutor.arguments(
                fromEnvironment: ProcessInfo.processInfo.environment["BATCHFORM_SLURM_ARGS"]
            )
            do {
                _ = try ClusterLaunch.slurm(arguments: arguments)
                settings.coordinatorAddress = try ClusterLaunch.coordinatorAddress()
            } catch let error as ClusterError {
                FileHandle.standardError.write(Data("batchform serve: \(error.message)\n".utf8))
                throw ExitCode(2)
            } catch let error as ValidationException {
                FileHandle.standardError.write(Data("batchform serve: \(error.message)\n".utf8))
                throw ExitCode(2)
            }
            settings.clusterExecutor = { SlurmExecutor(extraArguments: arguments) }
            settings.workerCommand = ClusterLaunch.workerCommand
        }
        do {
            if let credentials { settings.credentials = try ServerSettings.credentials(fromFile: credentials) }
            let environment = ProcessInfo.processInfo.environment
            if let id = environment["BATCHFORM_ACCESS_KEY_ID"], let secret = environment["BATCHFORM_SECRET_ACCESS_KEY"]
            {
                settings.credentials[id] = .init(accessKeyId: id, secretAccessKey: secret)
            }
            try BatchformServer.check(settings)
        } catch let error as ValidationException {
            FileHandle.standardError.write(Data("batchform serve: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
        guard ["text", "json"].contains(logFormat) else {
            FileHandle.standardError.write(
                Data("batchform serve: --log-format must be text or json, not '\(logFormat)'.\n".utf8)
            )
            throw ExitCode(2)
        }
        var logger =
            logFormat == "json"
            ? Logger(label: "batchform.serve") { label in JSONLineLogHandler(label: label) }
            : Logger(label: "batchform.serve")
        logger.logLevel = .info
        try await BatchformServer.run(settings, logger: logger)
    }
}
