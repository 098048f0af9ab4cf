import Foundation
import Logging
import Synchronization
import TransformEngine
import TransformSpec

#if canImport(Glibc)
import Glibc
#endif

/// On a terminal: a bar with percent done by bytes, throughput and an ETA, rewritten in place.
/// Off a terminal: a plain line every 10 s.
struct ProgressReporter: Sendable {
    let progress: JobProgress
    let isTerminal = isatty(STDERR_FILENO) == 1

    func run() async {
        let interval: Duration = isTerminal ? .milliseconds(250) : .seconds(10)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            let line = describe()
            FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    func describe() -> String {
        let now = progress.snapshot
        let elapsed = (ContinuousClock.now - progress.started).seconds
        return Self.line(now, elapsed: elapsed, bar: isTerminal)
    }

    static func line(_ now: JobProgress.Snapshot, elapsed: Double, bar: Bool) -> String {
        let estimate = JobProgress.Estimate(now, elapsedSeconds: elapsed)
        var parts: [String] = []
        if now.phase != "transforming" && estimate.fractionDone != 1 {
            parts.append(now.phase)
        } else if let fraction = estimate.fractionDone {
            let percent = String(format: "%3.0f%%", fraction * 100)
            parts.append(bar ? Self.bar(fraction) + " " + percent : percent.trimmingCharacters(in: .whitespaces))
        }
        let finished = now.objectsCompleted + now.objectsFailed + now.objectsStopped
        parts.append(
            "objects \(finished)/\(now.objectsTotal)" + (now.objectsFailed > 0 ? " (\(now.objectsFailed) failed)" : "")
        )
        parts.append("\(Units.count(now.recordsProcessed)) records")
        parts.append(Units.bytes(now.bytesProcessed) + (now.bytesTotal > 0 ? " of " + Units.bytes(now.bytesTotal) : ""))
        parts.append(Units.bytes(Int64(estimate.bytesPerSecond)) + "/s")
        if let left = estimate.secondsLeft, left > 0, now.phase == "transforming" {
            parts.append("ETA " + Units.duration(left))
        }
        return parts.joined(separator: ", ")
    }

    static func bar(_ fraction: Double, width: Int = 24) -> String {
        let filled = max(0, min(width, Int((fraction * Double(width)).rounded(.down))))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }
}

/// The job's last lines: its status once, what was done, where the outputs and logs are, and
/// which objects failed or were stopped, with their reasons.
enum Summary {
    static func lines(
        _ result: TransformJobResult,
        _ snapshot: JobProgress.Snapshot,
        elapsed: Double,
        output: String,
        logs: String
    ) -> [String] {
        var lines = ["\(result.status.rawValue)"]
        var objects = "  objects:    \(snapshot.objectsCompleted) of \(snapshot.objectsTotal) completed"
        var notDone: [String] = []
        if snapshot.objectsFailed > 0 { notDone.append("\(snapshot.objectsFailed) failed") }
        if snapshot.objectsStopped > 0 { notDone.append("\(snapshot.objectsStopped) stopped") }
        if snapshot.objectsSkipped > 0 { notDone.append("\(snapshot.objectsSkipped) done by an earlier run") }
        if !notDone.isEmpty { objects += " (" + notDone.joined(separator: ", ") + ")" }
        lines.append(objects)
        let rate = elapsed > 0 ? Double(snapshot.bytesProcessed) / elapsed : 0
        lines.append(
            "  records:    \(Units.count(snapshot.recordsProcessed)), \(Units.bytes(snapshot.bytesProcessed)) in "
                + "\(Units.duration(elapsed)) (\(Units.bytes(Int64(rate)))/s)"
        )
        lines.append("  outputs:    \(output)")
        lines.append("  logs:       \(logs)")
        if !result.failedObjects.isEmpty {
            lines.append("Failed objects (\(result.failedObjects.count)):")
            for failed in result.failedObjects.prefix(5) { lines.append("  \(failed.object): \(failed.reason)") }
            if result.failedObjects.count > 5 { lines.append("  ... and \(result.failedObjects.count - 5) more") }
        }
        if let report = result.recordErrorsReport {
            lines.append("Records failed: \(snapshot.recordsFailed) (each isolated; report: \(report))")
        }
        if result.status == .Stopped, snapshot.objectsStopped > 0 {
            lines.append(
                "Stopped: \(snapshot.objectsStopped) object(s) were interrupted and wrote no .out; run the job again to do them."
            )
        }
        return lines
    }
}

/// Numbers in units that fit.
enum Units {
    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(max(0, count))
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0
            ? "\(Int(value)) B"
            : String(format: value < 10 ? "%.2f %@" : value < 100 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }

    static func count(_ value: Int) -> String {
        let digits = String(value)
        var grouped = ""
        for (index, digit) in digits.reversed().enumerated() {
            if index > 0, index % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        return String(grouped.reversed())
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3600 { return "\(whole / 60)m\(String(format: "%02d", whole % 60))s" }
        return "\(whole / 3600)h\(String(format: "%02d", whole / 60 % 60))m"
    }
}

/// The engine's log lines to the job's `batchform.log`, and to the terminal with `--verbose`.
struct JobLogFile: MetadataLogHandler {
    final class Sink: Sendable {
        let handle: Mutex<FileHandle?>
        let echo: Bool

        init(path: String, echo: Bool) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            let handle = FileHandle(forWritingAtPath: path)
            handle?.seekToEndOfFile()
            self.handle = Mutex(handle)
            self.echo = echo
        }

        func write(_ line: String) {
            let data = Data((line + "\n").utf8)
            handle.withLock { $0?.write(data) }
            if echo { FileHandle.standardError.write(data) }
        }
    }

    let sink: Sink
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .info

    func log(event: LogEvent) {
        let time = Date().formatted(.iso8601)
        let level = event.level == .info ? "" : "\(event.level.rawValue.uppercased()): "
        sink.write("\(time) \(level)\(event.message)")
    }
}

/// `serve --log-format json`: one JSON object per line on stderr (time, level, message, and the
/// event's metadata such as `job`), for log shippers.
struct JSONLineLogHandler: MetadataLogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .info

    func log(event: LogEvent) {
        var object: [String: String] = [
            "time": Date().formatted(.iso8601), "level": event.level.rawValue, "message": "\(event.message)",
            "logger": label,
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = "\(value)"
        }
        guard
            let line = try? JSONSerialization.data(
                withJSONObject: object,
                options: [.sortedKeys, .withoutEscapingSlashes]
            )
        else {
            return
        }
        FileHandle.standardError.write(line + Data("\n".utf8))
    }
}

/// The metadata subscript every log handler here has the same way.
protocol MetadataLogHandler: LogHandler {}

extension MetadataLogHandler {
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}
