import Foundation
import TransformEngine
import TransformSpec

/// The console's HTML. Every value that comes from a job (names, settings, log lines, failure
/// reasons) goes through `escape`, so markup in them is shown as text.
enum ConsolePages {
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func document(title: String, page: String, body: String, signOut: Bool, attributes: String = "") -> String {
        let header =
            signOut
            ? "<form method=\"post\" action=\"/console/logout\"><button type=\"submit\">Sign out</button></form>" : ""
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Batchform</title><link rel="stylesheet" href="/console/app.css">
            <script src="/console/app.js" defer></script></head>
            <body data-page="\(page)"\(attributes)><header><a class="brand" href="/console/">Batchform</a>\(header)</header>
            <main>\(body)</main></body></html>
            """
    }

    static func signIn(error: String?) -> String {
        let message = error.map { "<p class=\"error\" role=\"alert\">\(escape($0))</p>" } ?? ""
        return document(
            title: "Sign in",
            page: "sign-in",
            body: """
                <h1>Sign in</h1>\(message)
                <form method="post" action="/console/login" class="sign-in">
                <label>Access key ID <input name="access_key_id" autocomplete="username" required></label>
                <label>Secret access key <input name="secret_access_key" type="password" autocomplete="current-password" required></label>
                <button type="submit">Sign in</button></form>
                <p class="hint">Use a key the server was started with (--credentials, or BATCHFORM_ACCESS_KEY_ID and BATCHFORM_SECRET_ACCESS_KEY).</p>
                """,
            signOut: false
        )
    }

    static func notFound(_ name: String) -> String {
        document(
            title: "Not found",
            page: "missing",
            body:
                "<h1>No such job</h1><p>There is no transform job named \(escape(name)).</p><p><a href=\"/console/\">All jobs</a></p>",
            signOut: true
        )
    }

    // MARK: Jobs list

    static func jobs(_ rows: [Console.JobRow], access: Console.Access) -> String {
        let running = rows.contains { $0.status == "InProgress" || $0.status == "Stopping" }
        let body =
            rows.isEmpty
            ? "<p class=\"empty\">No transform jobs yet. Create one with boto3, the SageMaker SDK or <code>batchform</code>.</p>"
            : rows.map(jobRow).joined()
        return document(
            title: "Transform jobs",
            page: "jobs",
            body: """
                <h1>Transform jobs</h1>
                <table id="jobs"><thead><tr><th>Name</th><th>Status</th><th>Progress</th><th>Created</th><th>Duration</th></tr></thead>
                <tbody>\(body)</tbody></table>
                """,
            signOut: access.signedIn,
            attributes: running ? " data-refresh=\"2\"" : ""
        )
    }

    static func jobRow(_ row: Console.JobRow) -> String {
        let link = "/console/jobs/\(Console.pathComponent(row.name))"
        return """
            <tr class="job" data-job="\(escape(row.name))"><td><a href="\(link)">\(escape(row.name))</a></td>
            <td>\(status(row.status))</td><td>\(progress(row))</td>
            <td><time datetime="\(isoTime(row.created))">\(displayTime(row.created))</time></td>
            <td>\(duration(row.duration))</td></tr>
            """
    }

    static func status(_ status: String, id: String? = nil) -> String {
        "<span\(id.map { " id=\"\($0)\"" } ?? "") class=\"status status-\(escape(status))\">\(escape(status))</span>"
    }

    /// A bar and the counts while a job runs; the counts alone once it has ended.
    static func progress(_ row: Console.JobRow) -> String {
        guard let snapshot = row.progress, let estimate = row.estimate else { return "" }
        var parts = [
            "\(count(snapshot.recordsProcessed)) records",
            "\(snapshot.objectsCompleted) of \(snapshot.objectsTotal) objects",
        ]
        if snapshot.recordsFailed > 0 { parts.append("\(count(snapshot.recordsFailed)) records failed") }
        let active = row.status == "InProgress"
        if active {
            parts.append("\(bytes(estimate.bytesPerSecond))/s")
            if let left = estimate.secondsLeft { parts.append("ETA \(duration(left))") }
        }
        let bar =
            active
            ? "<progress max=\"1\" value=\"\(estimate.fractionDone ?? 0)\" aria-label=\"progress\"></progress> " : ""
        return bar + "<span class=\"detail\">\(escape(parts.joined(separator: " · ")))</span>"
    }

    // MARK: Job page

    static func job(_ detail: Console.JobDetail, access: Console.Access) -> String {
        let row = detail.row
        let path = "/console/jobs/\(Console.pathComponent(row.name))"
        let active = row.status == "InProgress"
        let stop =
            active
            ? """
            <form method="post" action="\(path)/stop" class="stop" data-confirm="Stop the job \(escape(row.name))? Objects not yet written get no .out.">
            <input type="hidden" name="form_token" value="\(escape(access.formToken))">
            <button type="submit" id="stop">Stop job</button></form>
            """ : ""
        let failure =
            detail.failureReason.map { "<h2>Failure reason</h2><pre id=\"failure\">\(escape($0))</pre>" } ?? ""
        let snapshot = row.progress
        let recordErrors = """
            <p id="record-errors">Records failed: <span id="records-failed">\(snapshot?.recordsFailed ?? 0)</span> \
            (isolated record errors: <span id="record-error-count">\(snapshot?.recordErrors ?? 0)</span>)</p>
            """
        let objects = detail.objects.map { object in
            """
            <tr><td>\(escape(object.input))</td><td><span class="state state-\(objectState(object.state))">\(objectState(object.state))</span></td>\
            <td>\(escape(object.output))</td></tr>
            """
        }.joined()
        let instances = (snapshot?.instances ?? []).map { instance in
            "<tr><td>\(escape(instance.name))</td><td>\(escape(instance.state))</td><td>\(instance.invocations)</td></tr>"
        }.joined()
        let logs = detail.logLines.map(escape).joined(separator: "\n")
        return document(
            title: row.name,
            page: "job",
            body: """
                <p><a href="/console/">All jobs</a></p>
                <h1 id="job-name">\(escape(row.name))</h1>
                <p>\(status(row.status, id: "status")) <span id="progress-cell">\(progress(row))</span></p>
                \(stop)\(failure)
                <h2>Throughput</h2><canvas id="throughput" width="640" height="120" aria-label="throughput over time"></canvas>
                \(recordErrors)
                <h2>Objects</h2><table id="objects"><thead><tr><th>Input</th><th>State</th><th>Output</th></tr></thead>
                <tbody>\(objects)</tbody></table>
                <h2>Instances</h2><table id="instances"><thead><tr><th>Instance</th><th>State</th><th>Invocations</th></tr></thead>
                <tbody>\(instances)</tbody></table>
                <h2>Settings</h2><dl id="settings">\(settings(detail.request))</dl>
                <h2>Logs</h2><pre id="logs">\(logs)</pre>
                """,
            signOut: access.signedIn,
            attributes: " data-job=\"\(escape(row.name))\" data-status=\"\(escape(row.status))\""
        )
    }

    static func settings(_ request: CreateTransformJobRequest) -> String {
        let input = request.TransformInput
        let output = request.TransformOutput
        let entries: [(String, String?)] = [
            ("ModelName", request.ModelName),
            ("Input", input?.DataSource?.S3DataSource?.S3Uri),
            ("S3DataType", input?.DataSource?.S3DataSource?.S3DataType),
            ("ContentType", input?.ContentType),
            ("SplitType", input?.SplitType),
            ("CompressionType", input?.CompressionType),
            ("S3OutputPath", output?.S3OutputPath),
            ("Accept", output?.Accept),
            ("AssembleWith", output?.AssembleWith),
            ("BatchStrategy", request.BatchStrategy),
            ("MaxPayloadInMB", request.MaxPayloadInMB.map(String.init)),
            ("MaxConcurrentTransforms", request.MaxConcurrentTransforms.map(String.init)),
            ("InstanceType", request.TransformResources?.InstanceType),
            ("InstanceCount", request.TransformResources?.InstanceCount.map(String.init)),
            ("InputFilter", request.DataProcessing?.InputFilter),
            ("OutputFilter", request.DataProcessing?.OutputFilter),
            ("JoinSource", request.DataProcessing?.JoinSource),
            (
                "Environment",
                request.Environment.map {
                    $0.keys.sorted().map { "\($0)=\(request.Environment![$0]!)" }.joined(separator: " ")
                }
            ),
        ]
        return entries.compactMap { name, value in
            value.map { "<dt>\(escape(name))</dt><dd>\(escape($0))</dd>" }
        }.joined()
    }

    /// The console's words for an object's state.
    static func objectState(_ state: ObjectState) -> String {
        switch state {
        case .pending: "pending"
        case .running, .committing: "running"
        case .completed: "done"
        case .failed: "failed"
        }
    }

    // MARK: Units

    static func count(_ value: Int) -> String { value.formatted(.number) }

    static func bytes(_ value: Double) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var amount = value
        var unit = 0
        while amount >= 1024, unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(amount)) B" : String(format: "%.1f %@", amount, units[unit])
    }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total) s" }
        if total < 3600 { return "\(total / 60) min \(total % 60) s" }
        return "\(total / 3600) h \(total % 3600 / 60) min"
    }

    static func isoTime(_ epoch: Double) -> String { Date(timeIntervalSince1970: epoch).formatted(.iso8601) }

    static func displayTime(_ epoch: Double) -> String {
        isoTime(epoch).replacingOccurrences(of: "T", with: " ")
    }
}
