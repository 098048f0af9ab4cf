import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TransformEngine
import TransformSpec

/// A model as CreateModel stored it.
struct StoredModel: Sendable {
    var request: CreateModelRequest
    var name: String
    var created: Double
}

/// A transform job's row: its request, the model it was created with, and where it stands.
struct StoredJob: Sendable {
    var name: String
    var request: CreateTransformJobRequest
    /// The model as it was at CreateTransformJob: deleting the model later does not change the job.
    var model: CreateModelRequest
    var status: TransformJobStatus
    var failureReason: String?
    var created: Double
    var started: Double?
    var ended: Double?
    var modified: Double
    /// The last progress written (at the end, and every few seconds while running).
    var progress: JobProgress.Snapshot?
}

/// Where one input object of a job stands. `committing` is written just before the `.out` is
/// committed, so after a crash the output's existence decides whether it was.
enum ObjectState: String, Sendable {
    /// Planned, not started (for the console); `running` once its first batch is read.
    case pending, running
    case committing, completed, failed
}

struct StoredObject: Sendable {
    var input: String
    var output: String
    var state: ObjectState
}

/// The server's state in one SQLite file: models, jobs, per-object status and job logs.
/// SQLite blocks (a busy lock waits up to 5 s), so every call runs on threads for blocking work,
/// never on the async threads. Writes are serialized on one connection; reads use
/// another, which WAL mode never blocks behind a writer, so Describe answers while a write waits.
/// Engine log lines are gathered and written in batches. WAL keeps every committed write across
/// a killed process.
final class JobStore: Sendable {
    private let writer: Mutex<SQLiteConnection>
    private let reader: Mutex<SQLiteConnection>
    private let pendingLogs = Mutex<[(job: String, time: Double, line: String)]>([])
    private let encoder = JSONEncoder()
    private let decoder = JSONDecoder()

    /// Writes wait on one connection, so one thread serves them; reads have threads of their
    /// own, so writers held up by a lock (up to the 5 s busy timeout) never keep reads waiting.
    /// Both live as long as the process.
    private static let writeThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()
    private static let readThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    init(path: String) throws {
        let connection = try SQLiteConnection(path: path)
        try connection.execute(
            """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            CREATE TABLE IF NOT EXISTS models (
                name TEXT PRIMARY KEY COLLATE NOCASE, request TEXT NOT NULL, created REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS jobs (
                name TEXT PRIMARY KEY COLLATE NOCASE, request TEXT NOT NULL, model TEXT NOT NULL,
                status TEXT NOT NULL, failure_reason TEXT, created REAL NOT NULL, started REAL, ended REAL,
                modified REAL NOT NULL, progress TEXT);
            CREATE TABLE IF NOT EXISTS objects (
                job TEXT NOT NULL COLLATE NOCASE, input TEXT NOT NULL, output TEXT NOT NULL, state TEXT NOT NULL,
                reason TEXT, PRIMARY KEY (job, input));
            CREATE TABLE IF NOT EXISTS logs (
                id INTEGER PRIMARY KEY, job TEXT NOT NULL COLLATE NOCASE, time REAL NOT NULL, line TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS logs_by_job ON logs (job, id);
            CREATE TABLE IF NOT EXISTS runs (job TEXT PRIMARY KEY COLLATE NOCASE, unfinished INTEGER NOT NULL);
            """
        )
        self.writer = Mutex(connection)
        self.reader = Mutex(try SQLiteConnection(path: path))
    }

    /// A write finishes even when its caller is cancelled (a stopped job still records that it
    /// stopped): the future is awaited, not the cancellable task.
    @discardableResult
    private func write<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await Self.writeThreads.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
            try self.writer.withLock { try body($0) }
        }.get()
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await Self.readThreads.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
            try self.reader.withLock { try body($0) }
        }.get()
    }

    private func json(_ value: some Encodable) throws -> SQLiteValue {
        .text(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    private func decode<T: Decodable>(_ type: T.Type, _ value: SQLiteValue) throws -> T {
        try decoder.decode(type, from: Data((value.text ?? "").utf8))
    }

    // MARK: Models

    /// False when a model of that name exists.
    func insert(model: StoredModel) async throws -> Bool {
        try await write { db in
            try db.query(
                "INSERT INTO models (name, request, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING name",
                [.text(model.name), try self.json(model.request), .real(model.created)]
            ).count == 1
        }
    }

    func model(named name: String) async throws -> StoredModel? {
        try await read { db in
            try db.query("SELECT name, request, created FROM models WHERE name = ?", [.text(name)]).first
        }.map(storedModel)
    }

    func models() async throws -> [StoredModel] {
        try await read { db in try db.query("SELECT name, request, created FROM models") }.map(storedModel)
    }

    /// False when there was no such model.
    func deleteModel(named name: String) async throws -> Bool {
        try await write { db in
            try db.query("DELETE FROM models WHERE name = ? RETURNING name", [.text(name)]).count == 1
        }
    }

    private func storedModel(_ row: [SQLiteValue]) throws -> StoredModel {
        StoredModel(
            request: try self.decode(CreateModelRequest.self, row[1]),
            name: row[0].text ?? "",
            created: row[2].real ?? 0
        )
    }

    // MARK: Jobs

    private static let jobColumns =
        "name, request, model, status, failure_reason, created, started, ended, modified, progress"

    /// False when a job of that name exists (jobs are never deleted, as in SageMaker).
    func insert(job: StoredJob) async throws -> Bool {
        try await write { db in
            try db.query(
                "INSERT INTO jobs (\(Self.jobColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING name",
                [
                    .text(job.name), try self.json(job.request), try self.json(job.model), .text(job.status.rawValue),
                    job.failureReason.map(SQLiteValue.text) ?? .null, .real(job.created), .null, .null,
                    .real(job.modified), .null,
                ]
            ).count == 1
        }
    }

    func job(named name: String) async throws -> StoredJob? {
        try await read { db in
            try db.query("SELECT \(Self.jobColumns) FROM jobs WHERE name = ?", [.text(name)]).first
        }.map(storedJob)
    }

    func jobs() async throws -> [StoredJob] {
        try await read { db in try db.query("SELECT \(Self.jobColumns) FROM jobs") }.map(storedJob)
    }

    func jobs(withStatus statuses: [TransformJobStatus]) async throws -> [StoredJob] {
        try await jobs().filter { statuses.contains($0.status) }.sorted { $0.created < $1.created }
    }

    /// Changes a job's status; `from` guards against overwriting a status another path set.
    @discardableResult
    func setStatus(
        of name: String,
        to status: TransformJobStatus,
        from expected: [TransformJobStatus]? = nil,
        failureReason: String? = nil,
        started: Double? = nil,
        ended: Double? = nil
    ) async throws -> Bool {
        try await write { db in
            var sql = """
                UPDATE jobs SET status = ?, failure_reason = coalesce(?, failure_reason), started = coalesce(started, ?),
                ended = coalesce(?, ended), modified = ? WHERE name = ?
                """
            var parameters: [SQLiteValue] = [
                .text(status.rawValue), failureReason.map(SQLiteValue.text) ?? .null,
                started.map(SQLiteValue.real) ?? .null,
                ended.map(SQLiteValue.real) ?? .null, .real(Date().timeIntervalSince1970), .text(name),
            ]
            if let expected {
                sql += " AND status IN (\(expected.map { _ in "?" }.joined(separator: ", ")))"
                parameters += expected.map { .text($0.rawValue) }
            }
            return try db.query(sql + " RETURNING name", parameters).count == 1
        }
    }

    func setProgress(of name: String, _ progress: JobProgress.Snapshot) async throws {
        try await write { db in
            try db.query("UPDATE jobs SET progress = ? WHERE name = ?", [try self.json(progress), .text(name)])
        }
    }

    private func storedJob(_ row: [SQLiteValue]) throws -> StoredJob {
        StoredJob(
            name: row[0].text ?? "",
            request: try self.decode(CreateTransformJobRequest.self, row[1]),
            model: try self.decode(CreateModelRequest.self, row[2]),
            status: TransformJobStatus(rawValue: row[3].text ?? "") ?? .Failed,
            failureReason: row[4].text,
            created: row[5].real ?? 0,
            started: row[6].real,
            ended: row[7].real,
            modified: row[8].real ?? 0,
            progress: row[9] == .null ? nil : try? self.decode(JobProgress.Snapshot.self, row[9])
        )
    }

    // MARK: Objects

    func setObject(job: String, input: String, output: String, state: ObjectState, reason: String? = nil) async throws {
        try await write { db in
            try db.query(
                """
                INSERT INTO objects (job, input, output, state, reason) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (job, input) DO UPDATE SET state = excluded.state, reason = excluded.reason
                """,
                [.text(job), .text(input), .text(output), .text(state.rawValue), reason.map(SQLiteValue.text) ?? .null]
            )
        }
    }

    /// Records a plan's objects as pending; objects an earlier run recorded keep their state.
    func planObjects(job: String, _ objects: [(input: String, output: String)]) async throws {
        try await write { db in
            try db.execute("BEGIN")
            do {
                for object in objects {
                    try db.query(
                        "INSERT INTO objects (job, input, output, state) VALUES (?, ?, ?, ?) ON CONFLICT (job, input) DO NOTHING",
                        [.text(job), .text(object.input), .text(object.output), .text(ObjectState.pending.rawValue)]
                    )
                }
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
        }
    }

    func setObjectState(job: String, input: String, state: ObjectState, reason: String? = nil) async throws {
        try await write { db in
            try db.query(
                "UPDATE objects SET state = ?, reason = ? WHERE job = ? AND input = ?",
                [.text(state.rawValue), reason.map(SQLiteValue.text) ?? .null, .text(job), .text(input)]
            )
        }
    }

    func objects(of job: String) async throws -> [StoredObject] {
        try await read { db in
            try db.query("SELECT input, output, state FROM objects WHERE job = ?", [.text(job)])
        }.map {
            StoredObject(
                input: $0[0].text ?? "",
                output: $0[1].text ?? "",
                state: ObjectState(rawValue: $0[2].text ?? "") ?? .failed
            )
        }
    }

    /// Forgets objects that did not complete, so a rerun starts them over.
    func clearUnfinishedObjects(of job: String) async throws {
        try await write { db in
            try db.query(
                "DELETE FROM objects WHERE job = ? AND state != ?",
                [.text(job), .text(ObjectState.completed.rawValue)]
            )
        }
    }

    // MARK: Logs

    func appendLog(job: String, _ line: String, time: Double = Date().timeIntervalSince1970) async throws {
        enqueueLog(job: job, line, time: time)
        try await flushLogs()
    }

    /// Holds a log line for the next batch; no I/O, so a log handler can call it anywhere.
    func enqueueLog(job: String, _ line: String, time: Double = Date().timeIntervalSince1970) {
        pendingLogs.withLock { $0.append((job, time, line)) }
    }

    /// Writes the lines held so far in one transaction.
    func flushLogs() async throws {
        let batch = pendingLogs.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        guard !batch.isEmpty else { return }
        try await write { db in
            try db.execute("BEGIN")
            do {
                for entry in batch {
                    try db.query(
                        "INSERT INTO logs (job, time, line) VALUES (?, ?, ?)",
                        [.text(entry.job), .real(entry.time), .text(entry.line)]
                    )
                }
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
        }
    }

    func logs(of job: String) async throws -> [(time: Double, line: String)] {
        try await flushLogs()
        return try await read { db in
            try db.query("SELECT time, line FROM logs WHERE job = ? ORDER BY id", [.text(job)])
        }.map { ($0[0].real ?? 0, $0[1].text ?? "") }
    }

    // MARK: Runs

    /// Counts a run of the job that has started; `endRun` clears the count. A count left over at
    /// start-up is a run the server died in.
    func beginRun(of job: String) async throws {
        try await write { db in
            try db.query(
                "INSERT INTO runs (job, unfinished) VALUES (?, 1) ON CONFLICT (job) DO UPDATE SET unfinished = unfinished + 1",
                [.text(job)]
            )
        }
    }

    func endRun(of job: String) async throws {
        try await write { db in try db.query("DELETE FROM runs WHERE job = ?", [.text(job)]) }
    }

    func unfinishedRuns(of job: String) async throws -> Int {
        try await read { db in
            try db.query("SELECT unfinished FROM runs WHERE job = ?", [.text(job)]).first?[0].integer.map { Int($0) }
                ?? 0
        }
    }
}
