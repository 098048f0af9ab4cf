import Foundation
import Synchronization
import TransformSpec

/// Enough of CloudWatch Logs for the SageMaker SDK's `logs=True` and the AWS CLI: each job's
/// model server logs as the streams `<JobName>/instance-<n>` of the log group
/// `/aws/sagemaker/TransformJobs` (`X-Amz-Target: Logs_20140328.<operation>`).
struct CloudWatchLogs: Sendable {
    static let logGroup = "/aws/sagemaker/TransformJobs"
    static let targetPrefix = "Logs_20140328."
    static let operations = ["DescribeLogStreams", "GetLogEvents", "FilterLogEvents"]

    let store: JobStore
    let settings: ServerSettings
    let timeline: LogTimeline

    func call(_ operation: String, body: Data) async throws(APIError) -> Data {
        do {
            let request = try JSONSerialization.jsonObject(with: body.isEmpty ? Data("{}".utf8) : body)
            guard let request = request as? [String: Any] else {
                throw APIError("SerializationException", "The request body must be a JSON object.")
            }
            let answer: [String: Any]
            switch operation {
            case "DescribeLogStreams": answer = try await describeLogStreams(request)
            case "GetLogEvents": answer = try await getLogEvents(request)
            case "FilterLogEvents": answer = try await filterLogEvents(request)
            default:
                throw APIError(
                    "UnknownOperationException",
                    "Batchform does not implement Logs.\(operation). It answers: \(Self.operations.joined(separator: ", "))."
                )
            }
            return try JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys])
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError("SerializationException", "The request body is not JSON: \(error)")
        }
    }

    // MARK: Streams

    /// One instance's model server log.
    struct Stream {
        var name: String
        var path: String
    }

    private func checkGroup(_ request: [String: Any]) throws(APIError) {
        guard let group = request["logGroupName"] as? String else {
            throw APIError("InvalidParameterException", "logGroupName is required.")
        }
        guard group == Self.logGroup else {
            throw APIError("ResourceNotFoundException", "The specified log group does not exist.")
        }
    }

    /// Every job's instance logs, named as SageMaker names transform job streams, sorted by name.
    private func streams(prefix: String) async throws -> [Stream] {
        var found: [Stream] = []
        for job in try await store.jobs() {
            guard prefix.isEmpty || "\(job.name)/".hasPrefix(prefix) || prefix.hasPrefix("\(job.name)/") else {
                continue
            }
            let folder = settings.logDirectory(of: job.name)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            for name in names where name.hasPrefix("instance-") && name.hasSuffix(".log") {
                let stream = "\(job.name)/\(name.dropLast(".log".count))"
                if stream.hasPrefix(prefix) { found.append(Stream(name: stream, path: "\(folder)/\(name)")) }
            }
        }
        return found.sorted { $0.name < $1.name }
    }

    private func stream(named name: String?) async throws -> Stream {
        guard let name else { throw APIError("InvalidParameterException", "logStreamName is required.") }
        guard let stream = try await streams(prefix: name).first(where: { $0.name == name }) else {
            throw APIError("ResourceNotFoundException", "The specified log stream does not exist.")
        }
        return stream
    }

    private func describeLogStreams(_ request: [String: Any]) async throws -> [String: Any] {
        try checkGroup(request)
        var all = try await streams(prefix: request["logStreamNamePrefix"] as? String ?? "")
        let events = all.map { timeline.events(of: $0) }
        if request["orderBy"] as? String == "LastEventTime" {
            let last = Dictionary(uniqueKeysWithValues: zip(all.map(\.name), events.map { $0.last?.timestamp ?? 0 }))
            all.sort { (last[$0.name] ?? 0, $0.name) < (last[$1.name] ?? 0, $1.name) }
        }
        if request["descending"] as? Bool == true { all.reverse() }
        let limit = max(1, min(request["limit"] as? Int ?? 50, 50))
        let start = Self.position(request["nextToken"]) ?? 0
        let page = all.dropFirst(start).prefix(limit)
        var answer: [String: Any] = [
            "logStreams": page.map { stream -> [String: Any] in
                let lines = timeline.events(of: stream)
                let size = (try? FileManager.default.attributesOfItem(atPath: stream.path)[.size] as? Int) ?? 0
                var entry: [String: Any] = [
                    "logStreamName": stream.name, "storedBytes": size,
                    "arn": "arn:aws:logs:\(ResourceARN.defaultRegion):\(settings.accountID):log-group:"
                        + "\(Self.logGroup):log-stream:\(stream.name)",
                    "creationTime": lines.first?.timestamp ?? 0,
                ]
                if let first = lines.first, let last = lines.last {
                    entry["firstEventTimestamp"] = first.timestamp
                    entry["lastEventTimestamp"] = last.timestamp
                    entry["lastIngestionTime"] = last.timestamp
                }
                return entry
            }
        ]
        // Only while more streams follow: the SDK asks again without the token while one is given.
        if start + page.count < all.count { answer["nextToken"] = "s/\(start + page.count)" }
        return answer
    }

    // MARK: Events

    private func getLogEvents(_ request: [String: Any]) async throws -> [String: Any] {
        try checkGroup(request)
        let stream = try await stream(named: request["logStreamName"] as? String)
        let events = timeline.events(of: stream).filter(Self.timeFilter(request))
        let limit = max(1, min(request["limit"] as? Int ?? 10_000, 10_000))
        let token = request["nextToken"] as? String
        let range: Range<Int>
        if let token, let position = Self.position(token) {
            let at = min(position, events.count)
            range = token.hasPrefix("b/") ? max(0, at - limit)..<at : at..<min(events.count, at + limit)
        } else if request["startFromHead"] as? Bool == true {
            range = 0..<min(events.count, limit)
        } else {
            range = max(0, events.count - limit)..<events.count
        }
        return [
            "events": events[range].map {
                ["timestamp": $0.timestamp, "message": $0.message, "ingestionTime": $0.timestamp]
            },
            // At the end of the stream the forward token stays the same, as CloudWatch's does.
            "nextForwardToken": "f/\(String(format: "%020d", range.upperBound))",
            "nextBackwardToken": "b/\(String(format: "%020d", range.lowerBound))",
        ]
    }

    private func filterLogEvents(_ request: [String: Any]) async throws -> [String: Any] {
        try checkGroup(request)
        var chosen = try await streams(prefix: request["logStreamNamePrefix"] as? String ?? "")
        if let names = request["logStreamNames"] as? [String] {
            chosen = chosen.filter { names.contains($0.name) }
            if chosen.isEmpty {
                throw APIError("ResourceNotFoundException", "The specified log stream does not exist.")
            }
        }
        let terms = Self.terms(of: request["filterPattern"] as? String ?? "")
        let inTime = Self.timeFilter(request)
        var matches: [(stream: String, index: Int, event: LogTimeline.Event)] = []
        for stream in chosen {
            for (index, event) in timeline.events(of: stream).enumerated()
            where inTime(event) && terms.allSatisfy({ event.message.contains($0) }) {
                matches.append((stream.name, index, event))
            }
        }
        matches.sort { ($0.event.timestamp, $0.stream, $0.index) < ($1.event.timestamp, $1.stream, $1.index) }
        let limit = max(1, min(request["limit"] as? Int ?? 10_000, 10_000))
        let start = Self.position(request["nextToken"]) ?? 0
        let page = matches.dropFirst(start).prefix(limit)
        var answer: [String: Any] = [
            "events": page.map {
                [
                    "logStreamName": $0.stream, "timestamp": $0.event.timestamp, "message": $0.event.message,
                    "ingestionTime": $0.event.timestamp, "eventId": "\($0.stream)/\($0.index)",
                ]
            },
            "searchedLogStreams": chosen.map { ["logStreamName": $0.name, "searchedCompletely": true] },
        ]
        if start + page.count < matches.count { answer["nextToken"] = "e/\(start + page.count)" }
        return answer
    }

    /// The plain terms of a filter pattern (`ERROR`, `"model loaded"`): every one must appear.
    static func terms(of pattern: String) -> [String] {
        var terms: [String] = []
        var rest = Substring(pattern)
        while let first = rest.first(where: { $0 != " " }) {
            rest = rest.drop { $0 == " " }
            if first == "\"", let end = rest.dropFirst().firstIndex(of: "\"") {
                terms.append(String(rest[rest.index(after: rest.startIndex)..<end]))
                rest = rest[rest.index(after: end)...]
            } else {
                let word = rest.prefix { $0 != " " }
                terms.append(String(word))
                rest = rest.dropFirst(word.count)
            }
        }
        return terms.filter { !$0.isEmpty }
    }

    static func timeFilter(_ request: [String: Any]) -> (LogTimeline.Event) -> Bool {
        let start = (request["startTime"] as? NSNumber)?.int64Value ?? 0
        let end = (request["endTime"] as? NSNumber)?.int64Value ?? .max
        return { $0.timestamp >= start && $0.timestamp <= end }
    }

    /// The position a token (`f/…`, `b/…`, `s/…`, `e/…`) stands for.
    static func position(_ token: Any?) -> Int? {
        guard let token = token as? String, token.count > 2 else { return nil }
        return Int(token.dropFirst(2))
    }
}

/// When each log line was first seen, so events keep one timestamp however often they are read.
/// The model servers write their logs themselves, without times; a line first seen now was
/// written by the log file's last change.
final class LogTimeline: Sendable {
    struct Event {
        var timestamp: Int64
        var message: String
    }

    private let seen = Mutex<[String: [Int64]]>([:])

    func events(of stream: CloudWatchLogs.Stream) -> [Event] {
        guard let data = FileManager.default.contents(atPath: stream.path) else { return [] }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }  // a line is complete once its newline is written
        let modified =
            (try? FileManager.default.attributesOfItem(atPath: stream.path)[.modificationDate] as? Date)
            ?? Date()
        let now = Int64((min(modified, Date()).timeIntervalSince1970 * 1000).rounded(.down))
        let times = seen.withLock { seen in
            var times = seen[stream.name] ?? []
            if times.count > lines.count { times = [] }  // the log was started afresh (a new run of the job)
            while times.count < lines.count { times.append(max(now, times.last ?? 0)) }
            seen[stream.name] = times
            return times
        }
        return zip(times, lines).map { Event(timestamp: $0, message: String($1)) }
    }
}
