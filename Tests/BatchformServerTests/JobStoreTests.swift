import AWSSigV4
import Foundation
import Testing
import TransformEngine
import TransformSpec

@testable import BatchformServer

@Suite struct JobStoreTests {
    let directory = NSTemporaryDirectory() + "batchform-store-\(UUID().uuidString)"
    var path: String { directory + "/batchform.db" }

    init() throws { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }

    private func job(_ name: String, created: Double = 1) -> StoredJob {
        var request = CreateTransformJobRequest()
        request.TransformJobName = name
        request.ModelName = "m"
        return StoredJob(
            name: name,
            request: request,
            model: CreateModelRequest(ModelName: "m"),
            status: .InProgress,
            created: created,
            modified: created
        )
    }

    @Test func modelsAreUniqueByNameIgnoringCase() async throws {
        let store = try JobStore(path: path)
        let model = StoredModel(request: CreateModelRequest(ModelName: "Model-A"), name: "Model-A", created: 5)
        #expect(try await store.insert(model: model))
        #expect(try await !store.insert(model: model))
        #expect(try await store.model(named: "model-a")?.request.ModelName == "Model-A")
        #expect(try await store.deleteModel(named: "MODEL-A"))
        #expect(try await !store.deleteModel(named: "Model-A"))
        #expect(try await store.models().isEmpty)
    }

    @Test func statusChangesHonourTheExpectedStatus() async throws {
        let store = try JobStore(path: path)
        #expect(try await store.insert(job: job("j")))
        #expect(try await !store.insert(job: job("J")))
        #expect(try await store.setStatus(of: "j", to: .InProgress, started: 10))
        #expect(try await store.setStatus(of: "j", to: .InProgress, started: 20))
        #expect(try await store.job(named: "j")?.started == 10)  // a resumed job keeps its first start time
        #expect(try await store.setStatus(of: "j", to: .Completed, from: [.InProgress], ended: 30))
        #expect(try await !store.setStatus(of: "j", to: .Stopped, from: [.InProgress]))
        let stored = try #require(try await store.job(named: "j"))
        #expect(stored.status == .Completed && stored.ended == 30)
    }

    @Test func everythingSurvivesReopeningTheFile() async throws {
        do {
            let store = try JobStore(path: path)
            _ = try await store.insert(job: job("kept"))
            try await store.setObject(job: "kept", input: "/in/a", output: "/out/a.out", state: .committing)
            try await store.setObject(job: "kept", input: "/in/b", output: "/out/b.out", state: .committing)
            try await store.setObjectState(job: "kept", input: "/in/b", state: .completed)
            try await store.appendLog(job: "kept", "first", time: 1)
            try await store.appendLog(job: "kept", "second", time: 2)
            var progress = JobProgress.Snapshot()
            progress.recordsProcessed = 42
            try await store.setProgress(of: "kept", progress)
        }
        let reopened = try JobStore(path: path)
        let objects = try await reopened.objects(of: "kept").sorted { $0.input < $1.input }
        #expect(objects.map(\.state) == [.committing, .completed])
        #expect(objects.map(\.output) == ["/out/a.out", "/out/b.out"])
        #expect(try await reopened.logs(of: "kept").map(\.line) == ["first", "second"])
        #expect(try await reopened.job(named: "kept")?.progress?.recordsProcessed == 42)
        try await reopened.clearUnfinishedObjects(of: "kept")
        #expect(try await reopened.objects(of: "kept").map(\.input) == ["/in/b"])
    }
}

@Suite struct ServerPieceTests {
    @Test func pagesCarryTheOffsetOfTheNextPage() async throws {
        let items = Array(0..<7)
        let first = try Page.of(items, token: nil, maxResults: 3)
        #expect(first.0 == [0, 1, 2] && first.1 == "3")
        let last = try Page.of(items, token: "6", maxResults: 3)
        #expect(last.0 == [6] && last.1 == nil)
        #expect(try Page.of(items, token: nil, maxResults: nil).0.count == 7)
        #expect(throws: APIError.self) { try Page.of(items, token: "8", maxResults: 3) }
        #expect(throws: APIError.self) { try Page.of(items, token: "abc", maxResults: 3) }
    }

    @Test func localLocationsMustBeInsideAnAllowedFolder() async throws {
        let policy = LocationPolicy(
            settings: ServerSettings(dataDirectory: "d", workingDirectory: "/srv", localRoots: ["/srv/data"])
        )
        try policy.check("/srv/data/in/", member: "input")
        try policy.check("file:///srv/data", member: "input")
        try policy.check("data/in", member: "input")  // relative to the working directory
        try policy.check("s3://bucket/anything", member: "input")
        for outside in ["/srv/data-other/x", "/etc/passwd", "/srv/data/../secret", "file:///srv"] {
            #expect(throws: ValidationException.self) { try policy.check(outside, member: "input") }
        }
    }

    @Test func listeningBeyondLoopbackNeedsCredentials() async throws {
        var settings = ServerSettings(dataDirectory: "d", workingDirectory: "/", localRoots: ["/"])
        try BatchformServer.check(settings)
        settings.host = "0.0.0.0"
        #expect(throws: ValidationException.self) { try BatchformServer.check(settings) }
        settings.credentials = ["k": .init(accessKeyId: "k", secretAccessKey: "s")]
        try BatchformServer.check(settings)
    }

    @Test func metricsCountAJobOnceWhileAndAfterItRuns() {
        let metrics = ServerMetrics()
        let progress = JobProgress()
        metrics.jobStarted(progress)
        #expect(
            metrics.render(jobsByStatus: ["InProgress": 1]).contains(
                "batchform_transform_jobs{status=\"InProgress\"} 1"
            )
        )
        metrics.jobEnded(progress)
        metrics.jobEnded(progress)
        let text = metrics.render(jobsByStatus: [:])
        #expect(text.contains("batchform_records_processed_total 0"))
        #expect(text.contains("batchform_invocation_duration_seconds_bucket{le=\"+Inf\"} 0"))
    }

    @Test func latencyBucketsAreCumulativeInTheExposition() {
        var histogram = LatencyHistogram()
        for seconds in [0.001, 0.02, 0.02, 7.0, 1000.0] { histogram.observe(seconds: seconds) }
        #expect(histogram.count == 5)
        #expect(histogram.counts[0] == 1 && histogram.counts[2] == 2 && histogram.counts.last == 1)
    }
}
