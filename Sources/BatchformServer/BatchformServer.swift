import AWSSigV4
import Foundation
import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
import ObjectStorage
import ServiceLifecycle
public import TransformSpec
import UnixSignals

/// `batchform serve`: the SageMaker API over HTTP, a job store in `--data-dir`, and the jobs
/// running on this machine through the same engine as `batchform transform`.
public enum BatchformServer {
    /// Refuses settings that would expose the API unauthenticated, or that name nothing usable.
    public static func check(_ settings: ServerSettings) throws(ValidationException) {
        if settings.credentials.isEmpty && !settings.isLoopback {
            throw ValidationException(
                "Refusing to listen on \(settings.host) without credentials: anyone who can reach it could run jobs. "
                    + "Give --credentials FILE or BATCHFORM_ACCESS_KEY_ID and BATCHFORM_SECRET_ACCESS_KEY, or listen on 127.0.0.1."
            )
        }
        if settings.maxRunningJobs < 1 { throw ValidationException("--max-running-jobs must be at least 1.") }
        try ResourceARN.checkAccount(settings.accountID)
    }

    /// Serves until SIGINT or SIGTERM. Running jobs' model servers are then stopped and the jobs
    /// stay InProgress: the next start of the server resumes them.
    public static func run(_ settings: ServerSettings, logger: Logger) async throws {
        try check(settings)
        try FileManager.default.createDirectory(atPath: settings.dataDirectory, withIntermediateDirectories: true)
        let store = try JobStore(path: settings.databasePath)
        let metrics = ServerMetrics()
        let executor = JobExecutor(store: store, settings: settings, metrics: metrics, events: logger)
        let crashRecord = settings.dataDirectory + "/crash-signal"
        try await executor.resumeInterruptedJobs(crashSignal: CrashRecord.take(at: crashRecord))
        CrashRecord.install(at: crashRecord)
        let router = makeRouter(store: store, executor: executor, metrics: metrics, settings: settings, logger: logger)

        var app = Application(
            router: router,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "Batchform"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? settings.port
                // Tests and scripts wait for this line (port 0 picks a free port).
                FileHandle.standardOutput.write(
                    Data("Batchform API listening on http://\(settings.host):\(port)\n".utf8)
                )
            },
            logger: logger
        )
        app.logger.logLevel = .warning
        if settings.credentials.isEmpty {
            logger.warning("No credentials configured: requests are not verified (allowed on loopback only).")
        }
        // On SIGTERM/SIGINT the group shuts its services down last first: the HTTP server stops
        // accepting requests, then the executor lets running jobs reach a resumable state and
        // stops their model servers.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: executor), .init(service: app)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            await executor.shutdown()
            throw error
        }
        logger.info("stopped")
    }

    /// The API's routes: SigV4 verification, `POST /` for SageMaker's operations, `/healthz`,
    /// `/metrics` and `/jobs/NAME/logs`. Apart from `run` so tests can drive it in process.
    static func makeRouter(
        store: JobStore,
        executor: JobExecutor,
        metrics: ServerMetrics,
        settings: ServerSettings,
        logger: Logger
    ) -> Router<BasicRequestContext> {
        let api = SageMakerAPI(store: store, executor: executor, settings: settings, events: logger)
        let logs = CloudWatchLogs(store: store, settings: settings, timeline: LogTimeline())
        let router = Router()
        router.add(
            middleware: SigV4Authentication(credentials: settings.credentials, maxBodyBytes: settings.maxRequestBytes)
        )
        router.post("/") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: settings.maxRequestBytes)
            let target = request.headers[HTTPField.Name("X-Amz-Target")!] ?? ""
            if target.hasPrefix(CloudWatchLogs.targetPrefix) {
                do throws(APIError) {
                    let operation = String(target.dropFirst(CloudWatchLogs.targetPrefix.count))
                    return AWSJSON.response(try await logs.call(operation, body: Data(body.readableBytesView)))
                } catch {
                    return AWSJSON.error(error)
                }
            }
            guard target.hasPrefix("SageMaker.") else {
                return AWSJSON.error(
                    APIError(
                        "UnknownOperationException",
                        "X-Amz-Target must name a SageMaker operation (SageMaker.<Operation>) or a "
                            + "CloudWatch Logs one (\(CloudWatchLogs.targetPrefix)<Operation>)."
                    )
                )
            }
            do throws(APIError) {
                let region = request.headers[.authorization].flatMap(SigV4Request.region(ofAuthorization:))
                return AWSJSON.response(
                    try await api.call(
                        String(target.dropFirst("SageMaker.".count)),
                        body: Data(body.readableBytesView),
                        region: region
                    )
                )
            } catch {
                if error.statusCode >= 500 { logger.error("\(target) failed: \(error.message)") }
                return AWSJSON.error(error)
            }
        }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/metrics") { _, _ -> Response in
            var counts: [String: Int] = [:]
            for job in try await store.jobs() { counts[job.status.rawValue, default: 0] += 1 }
            return .text(metrics.render(jobsByStatus: counts), contentType: "text/plain; version=0.0.4")
        }
        router.get("/jobs/:name/logs") { _, context -> Response in
            let name = try context.parameters.require("name")
            guard let job = try await store.job(named: name) else {
                return .text("Could not find transform job \"\(name)\".\n", status: .notFound)
            }
            return .text(
                await JobLogs.render(job: job.name, store: store, logDirectory: settings.logDirectory(of: job.name))
            )
        }
        Console(
            store: store,
            executor: executor,
            api: api,
            settings: settings,
            sessions: ConsoleSessions(credentials: settings.credentials)
        ).addRoutes(to: router)
        router.get("/jobs/:name/record-errors") { _, context -> Response in
            let name = try context.parameters.require("name")
            guard let job = try await store.job(named: name) else {
                return .text("Could not find transform job \"\(name)\".\n", status: .notFound)
            }
            return await RecordErrorsReport.response(for: job, settings: settings)
        }
        return router
    }
}

/// Verifies every request's SigV4 signature against the configured keys; `/healthz` and
/// `/metrics` are open, as they name no job or data and probes cannot sign.
struct SigV4Authentication<Context: RequestContext>: RouterMiddleware {
    let credentials: [String: AWSCredentials]
    let maxBodyBytes: Int

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        // The console signs its users in with a session of its own.
        if credentials.isEmpty || ["/healthz", "/metrics"].contains(request.uri.path)
            || request.uri.path == "/console" || request.uri.path.hasPrefix("/console/")
        {
            return try await next(request, context)
        }
        var request = request
        let body = try await request.collectBody(upTo: maxBodyBytes)
        var headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
        if let authority = request.head.authority, !headers.contains(where: { $0.name == "host" }) {
            headers.append((name: "host", value: authority))
        }
        let signed = SigV4Request(
            method: request.method.rawValue,
            path: request.uri.path,
            query: SigV4Request.queryItems(request.uri.query ?? ""),
            headers: headers
        )
        do {
            // CloudWatch Logs calls are signed for the service `logs`, the rest for `sagemaker`.
            let target = request.headers[HTTPField.Name("X-Amz-Target")!] ?? ""
            let service = target.hasPrefix(CloudWatchLogs.targetPrefix) ? "logs" : "sagemaker"
            _ = try SigV4Verifier(service: service).verify(
                signed,
                payloadHash: SigV4Signer.sha256Hex(body.readableBytesView)
            ) { credentials[$0] }
        } catch {
            return AWSJSON.error(Self.apiError(error))
        }
        return try await next(request, context)
    }

    /// The error types SageMaker's endpoint answers with for each kind of refusal.
    static func apiError(_ error: SigV4Error) -> APIError {
        switch error.code {
        case .MissingAuthenticationToken: APIError("MissingAuthenticationTokenException", error.message, status: 403)
        case .IncompleteSignature: APIError("IncompleteSignatureException", error.message, status: 403)
        case .InvalidClientTokenId: APIError("UnrecognizedClientException", error.message, status: 403)
        case .SignatureDoesNotMatch, .InvalidSignatureException:
            APIError("InvalidSignatureException", error.message, status: 403)
        }
    }
}

/// Responses in the AWS JSON 1.1 protocol.
enum AWSJSON {
    static let contentType = "application/x-amz-json-1.1"

    static func response(_ body: Data, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: contentType, HTTPField.Name("x-amzn-RequestId")!: UUID().uuidString.lowercased()],
            body: .init(byteBuffer: ByteBuffer(bytes: body))
        )
    }

    static func error(_ error: APIError) -> Response {
        let body =
            (try? JSONSerialization.data(withJSONObject: ["__type": error.type, "message": error.message])) ?? Data()
        return response(body, status: error.status)
    }
}

extension Response {
    static func text(
        _ text: String,
        status: HTTPResponse.Status = .ok,
        contentType: String = "text/plain; charset=utf-8"
    ) -> Response {
        Response(
            status: status,
            headers: [.contentType: contentType],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}

/// A job's logs: the engine's lines from the store, then each model server instance's output.
enum JobLogs {
    static func render(job: String, store: JobStore, logDirectory: String) async -> String {
        var text = ""
        for entry in (try? await store.logs(of: job)) ?? [] {
            let time = Date(timeIntervalSince1970: entry.time).formatted(.iso8601)
            text += "\(time) [batchform] \(entry.line)\n"
        }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: logDirectory)) ?? []).filter {
            $0.hasSuffix(".log")
        }
        for file in files.sorted() {
            guard let contents = FileManager.default.contents(atPath: "\(logDirectory)/\(file)") else { continue }
            text += "==> \(file.dropLast(4)) <==\n" + String(decoding: contents, as: UTF8.self)
            if !text.hasSuffix("\n") { text += "\n" }
        }
        return text
    }
}

/// `GET /jobs/NAME/record-errors`: the job's record-errors report, from where the job wrote it
/// (`BATCHFORM_RECORD_ERRORS_OUTPUT`, else `record-errors.jsonl` in the job's data).
enum RecordErrorsReport {
    static func response(for job: StoredJob, settings: ServerSettings) async -> Response {
        let environment = (job.model.PrimaryContainer?.Environment ?? [:])
            .merging(job.request.Environment ?? [:]) { $1 }
        let location =
            environment[EngineSettings.recordErrorsOutputName]
            ?? settings.logDirectory(of: job.name) + "/record-errors.jsonl"
        do {
            let uri = try ObjectURI(parsing: location, workingDirectory: settings.workingDirectory)
            let stores = ObjectStores(s3: settings.s3, confinement: settings.confinement)
            let report = try await stores.store(for: uri).readAll(uri, upTo: 1 << 30)
            return .text(String(buffer: report))
        } catch {
            let why =
                (Int(environment[EngineSettings.maxRecordErrorsName] ?? "0") ?? 0) > 0
                ? "it is written as the job ends, and \(location) cannot be read now: \(error)"
                : "the job did not set \(EngineSettings.maxRecordErrorsName), so no record was isolated"
            return .text("No record-errors report for transform job \"\(job.name)\": \(why).\n", status: .notFound)
        }
    }
}
