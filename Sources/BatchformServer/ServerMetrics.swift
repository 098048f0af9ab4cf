import Foundation
import Synchronization
import TransformEngine

/// Process-wide counters for `GET /metrics`: ended jobs' totals plus the live counters of the
/// running ones, read under one lock so a job moving from one to the other is counted once.
final class ServerMetrics: Sendable {
    private struct State {
        var ended = Totals()
        var running: [ObjectIdentifier: JobProgress] = [:]
    }

    private struct Totals {
        var records = 0
        var bytes: Int64 = 0
        var modelErrors = 0
        var recordErrors = 0
        var latency = LatencyHistogram()

        mutating func add(_ snapshot: JobProgress.Snapshot) {
            records += snapshot.recordsProcessed
            bytes += snapshot.bytesProcessed
            modelErrors += snapshot.modelErrors
            recordErrors += snapshot.recordErrors
            latency.add(snapshot.invocationLatency)
        }
    }

    private let state = Mutex(State())

    func jobStarted(_ progress: JobProgress) {
        state.withLock { $0.running[ObjectIdentifier(progress)] = progress }
    }

    func jobEnded(_ progress: JobProgress) {
        state.withLock { state in
            guard state.running.removeValue(forKey: ObjectIdentifier(progress)) != nil else { return }
            state.ended.add(progress.snapshot)
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    func render(jobsByStatus: [String: Int]) -> String {
        let totals = state.withLock { state in
            state.running.values.reduce(into: state.ended) { $0.add($1.snapshot) }
        }
        var text = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { text += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        metric(
            "batchform_transform_jobs",
            "gauge",
            "Transform jobs by status.",
            ["InProgress", "Completed", "Failed", "Stopping", "Stopped"].map {
                ("{status=\"\($0)\"}", "\(jobsByStatus[$0] ?? 0)")
            }
        )
        metric(
            "batchform_records_processed_total",
            "counter",
            "Records whose answers were written.",
            [("", "\(totals.records)")]
        )
        metric(
            "batchform_bytes_processed_total",
            "counter",
            "Input bytes sent to models and answered.",
            [("", "\(totals.bytes)")]
        )
        metric(
            "batchform_model_errors_total",
            "counter",
            "Invocations that failed after their retries.",
            [("", "\(totals.modelErrors)")]
        )
        metric(
            "batchform_record_errors_total",
            "counter",
            "Records that failed alone, isolated from their batches (BATCHFORM_MAX_RECORD_ERRORS).",
            [("", "\(totals.recordErrors)")]
        )
        var cumulative = 0
        var buckets: [(String, String)] = []
        for (index, bound) in LatencyHistogram.bounds.enumerated() {
            cumulative += totals.latency.counts[index]
            buckets.append(("{le=\"\(bound)\"}", "\(cumulative)"))
        }
        buckets.append(("{le=\"+Inf\"}", "\(totals.latency.count)"))
        text += "# HELP batchform_invocation_duration_seconds Time from sending a mini-batch to its answer.\n"
        text += "# TYPE batchform_invocation_duration_seconds histogram\n"
        for (labels, value) in buckets { text += "batchform_invocation_duration_seconds_bucket\(labels) \(value)\n" }
        text += "batchform_invocation_duration_seconds_sum \(totals.latency.sum)\n"
        text += "batchform_invocation_duration_seconds_count \(totals.latency.count)\n"
        return text
    }
}
