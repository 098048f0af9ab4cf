import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TransformEngine
import TransformSpec

/// The web console at `/console/`: a jobs list, a page per job, sign-in with the API's keys.
/// Pages are rendered here with every value escaped; `app.js` (served here too, nothing from
/// outside) refreshes them and draws the throughput chart. No route under `/console/` answers
/// with a job's name or data without a session.
struct Console: Sendable {
    let store: JobStore
    let executor: JobExecutor
    let api: SageMakerAPI
    let settings: ServerSettings
    let sessions: ConsoleSessions

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/console/app.js") { _, _ in Self.asset(ConsoleAssets.script, type: "text/javascript") }
        router.get("/console/app.css") { _, _ in Self.asset(ConsoleAssets.style, type: "text/css") }
        router.get("/console/") { request, _ -> Response in
            guard let access = access(request) else { return Self.page(ConsolePages.signIn(error: nil)) }
            return Self.page(ConsolePages.jobs(try await jobRows(), access: access))
        }
        router.post("/console/login") { request, _ -> Response in
            var request = request
            let form = Self.form(try await request.collectBody(upTo: 64 * 1024))
            guard
                let token = sessions.signIn(
                    accessKeyID: form["access_key_id"] ?? "",
                    secret: form["secret_access_key"] ?? ""
                )
            else {
                return Self.page(
                    ConsolePages.signIn(error: "That access key and secret do not match a key of this server."),
                    status: .unauthorized
                )
            }
            var response = Self.redirect("/console/")
            response.headers[.setCookie] =
                "\(ConsoleSessions.cookieName)=\(token); Path=/console; HttpOnly; SameSite=Strict; "
                + "Max-Age=\(Int(ConsoleSessions.lifetime))"
            return response
        }
        router.post("/console/logout") { request, _ -> Response in
            if let token = ConsoleSessions.token(in: request.headers[.cookie]) { sessions.signOut(token) }
            var response = Self.redirect("/console/")
            response.headers[.setCookie] =
                "\(ConsoleSessions.cookieName)=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
            return response
        }
        router.get("/console/jobs/:name") { request, context -> Response in
            guard let access = access(request) else { return Self.redirect("/console/") }
            let name = try context.parameters.require("name")
            guard let detail = try await detail(of: name) else {
                return Self.page(ConsolePages.notFound(name), status: .notFound)
            }
            return Self.page(ConsolePages.job(detail, access: access))
        }
        router.post("/console/jobs/:name/stop") { request, context -> Response in
            guard let access = access(request) else { return Self.refusal(.unauthorized, "Sign in first.") }
            var request = request
            let form = Self.form(try await request.collectBody(upTo: 64 * 1024))
            // A form from another site carries neither this origin nor the session's form token.
            guard Self.sameOrigin(request), form["form_token"] == access.formToken else {
                return Self.refusal(.forbidden, "This request did not come from the console's own page.")
            }
            let name = try context.parameters.require("name")
            let body = try JSONEncoder().encode(["TransformJobName": name])
            do throws(APIError) {
                _ = try await api.call("StopTransformJob", body: body, region: nil)
            } catch {
                return Self.refusal(.badRequest, error.message)
            }
            return Self.redirect("/console/jobs/\(Self.pathComponent(name))")
        }
        router.get("/console/api/jobs") { request, _ -> Response in
            guard access(request) != nil else { return Self.refusal(.unauthorized, "Sign in first.") }
            return Self.json(try await jobRows().map(\.json))
        }
        router.get("/console/api/jobs/:name") { request, context -> Response in
            guard access(request) != nil else { return Self.refusal(.unauthorized, "Sign in first.") }
            guard let detail = try await detail(of: try context.parameters.require("name")) else {
                return Self.refusal(.notFound, "No such job.")
            }
            return Self.json(detail.json)
        }
    }

    /// Who may see the console: a signed-in session, or anyone where the server has no keys.
    struct Access {
        var formToken: String
        var signedIn: Bool
    }

    private func access(_ request: Request) -> Access? {
        guard sessions.signInNeeded else { return Access(formToken: sessions.openFormToken, signedIn: false) }
        return sessions.session(cookieHeader: request.headers[.cookie]).map {
            Access(formToken: $0.formToken, signedIn: true)
        }
    }

    // MARK: Data

    struct JobRow {
        var name: String
        var status: String
        var created: Double
        var started: Double?
        var ended: Double?
        var progress: JobProgress.Snapshot?

        var duration: Double { (ended ?? Date().timeIntervalSince1970) - (started ?? created) }
        var estimate: JobProgress.Estimate? {
            progress.map { JobProgress.Estimate($0, elapsedSeconds: duration) }
        }

        var json: [String: Any] {
            var entry: [String: Any] = [
                "name": name, "status": status, "created": created, "duration": duration,
            ]
            if let progress, let estimate {
                entry["recordsProcessed"] = progress.recordsProcessed
                entry["recordsFailed"] = progress.recordsFailed
                entry["objectsCompleted"] = progress.objectsCompleted
                entry["objectsTotal"] = progress.objectsTotal
                entry["bytesProcessed"] = progress.bytesProcessed
                entry["bytesTotal"] = progress.bytesTotal
                entry["bytesPerSecond"] = estimate.bytesPerSecond
                entry["fractionDone"] = estimate.fractionDone ?? NSNull()
                entry["secondsLeft"] = estimate.secondsLeft ?? NSNull()
                entry["phase"] = progress.phase
            }
            return entry
        }
    }

    private func jobRows() async throws -> [JobRow] {
        var rows: [JobRow] = []
        for job in try await store.jobs() {
            rows.append(await row(of: job))
        }
        return rows.sorted { ($0.created, $0.name) > ($1.created, $1.name) }
    }

    /// A job as the list shows it, with the live progress of a running one.
    private func row(of job: StoredJob) async -> JobRow {
        JobRow(
            name: job.name,
            status: job.status.rawValue,
            created: job.created,
            started: job.started,
            ended: job.ended,
            progress: await executor.progress(of: job.name) ?? job.progress
        )
    }

    struct JobDetail {
        var row: JobRow
        var request: CreateTransformJobRequest
        var failureReason: String?
        var objects: [StoredObject]
        var logLines: [String]

        var json: [String: Any] {
            var entry = row.json
            entry["failureReason"] = failureReason ?? NSNull()
            entry["objects"] = objects.map {
                ["input": $0.input, "output": $0.output, "state": ConsolePages.objectState($0.state)]
            }
            entry["instances"] = (row.progress?.instances ?? []).map {
                ["name": $0.name, "state": $0.state, "invocations": $0.invocations, "inFlight": $0.inFlight]
            }
            entry["logs"] = logLines
            entry["recordErrors"] = row.progress?.recordErrors ?? 0
            return entry
        }
    }

    private func detail(of name: String) async throws -> JobDetail? {
        guard let job = try await store.job(named: name) else { return nil }
        let logs = await JobLogs.render(job: job.name, store: store, logDirectory: settings.logDirectory(of: job.name))
        return JobDetail(
            row: await row(of: job),
            request: job.request,
            failureReason: job.failureReason,
            objects: try await store.objects(of: job.name).sorted { $0.input < $1.input },
            logLines: logs.split(separator: "\n").suffix(300).map(String.init)
        )
    }

    // MARK: Responses

    /// Sent with every console response.
    static let hardening: [(String, String)] = [
        (
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]

    static func respond(_ body: String, type: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        for (name, value) in hardening { headers[HTTPField.Name(name)!] = value }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func page(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        respond(html, type: "text/html; charset=utf-8", status: status)
    }

    static func asset(_ text: String, type: String) -> Response { respond(text, type: "\(type); charset=utf-8") }

    static func json(_ value: Any) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data("{}".utf8)
        return respond(String(decoding: data, as: UTF8.self), type: "application/json")
    }

    static func refusal(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var response = json(["message": message])
        response.status = status
        return response
    }

    static func redirect(_ location: String) -> Response {
        var response = respond("", type: "text/plain", status: .seeOther)
        response.headers[.location] = location
        return response
    }

    /// A form's fields (`application/x-www-form-urlencoded`).
    static func form(_ body: ByteBuffer) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if let name = parts.first { fields[name] = parts.count > 1 ? parts[1] : "" }
        }
        return fields
    }

    /// True unless the browser says the request comes from another origin: `Sec-Fetch-Site`
    /// where the browser sends it, else `Origin`.
    static func sameOrigin(_ request: Request) -> Bool {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!] {
            return site == "same-origin" || site == "none"
        }
        guard let origin = request.headers[HTTPField.Name("Origin")!], origin != "null" else { return true }
        guard let host = request.head.authority ?? request.headers[HTTPField.Name("Host")!] else { return false }
        return origin == "http://\(host)" || origin == "https://\(host)"
    }

    static func pathComponent(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.")))
            ?? name
    }
}
