import Foundation
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
    case committing, completed, failed
}

struct StoredObject: Sendable {
    var input: String
    var output: String
    var state: ObjectState
}

/// The server's state in one SQLite file: models, jobs, per-object status and job logs.
/// Calls are short and serialized on one connection; WAL mode keeps every committed write
/// across a killed process.
final class JobStore: Sendable {
    private let connection: Mutex<SQLiteConnection>
    private let encoder = JSONEncoder()
    private let decoder = JSONDecoder()

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
        self.connection = Mutex(connection)
    }

    @discardableResult
    private func run<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try connection.withLock { try body($0) }
    }

    private func json(_ value: some Encodable) throws -> SQLiteValue {
        .text(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    private func decode<T: Decodable>(_ type: T.Type, _ value: SQLiteValue) throws -> T {
        try decoder.decode(type, from: Data((value.text ?? "").utf8))
    }

    // MARK: Models

    /// False when a model of that name exists.
    func insert(model: StoredModel) throws -> Bool {
        try run { db in
            try db.query(
                "INSERT INTO models (name, request, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING name",
                [.text(model.name), try json(model.request), .real(model.created)]
            ).count == 1
        }
    }

    func model(named name: String) throws -> StoredModel? {
        try run { db in
            try db.query("SELECT name, request, created FROM models WHERE name = ?", [.text(name)]).first
        }.map(storedModel)
    }

    func models() throws -> [StoredModel] {
        try run { db in try db.query("SELECT name, request, created FROM models") }.map(storedModel)
    }

    /// False when there was no such model.
    func deleteModel(named name: String) throws -> Bool {
        try run { db in
            try db.query("DELETE FROM models WHERE name = ? RETURNING name", [.text(name)]).count == 1
        }
    }

    private func storedModel(_ row: [SQLiteValue]) throws -> StoredModel {
        StoredModel(
            request: try decode(CreateModelRequest.self, row[1]),
            name: row[0].text ?? "",
            created: row[2].real ?? 0
        )
    }

    // MARK: Jobs

    private static let jobColumns =
        "name, request, model, status, failure_reason, created, started, ended, modified, progress"

    /// False when a job of that name exists (jobs are never deleted, as in SageMaker).
    func insert(job: StoredJob) throws -> Bool {
        try run { db in
            try db.query(
                "INSERT INTO jobs (\(Self.jobColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING name",
                [
                    .text(job.name), try json(job.request), try json(job.model), .text(job.status.rawValue),
                    job.failureReason.map(SQLiteValue.text) ?? .null, .real(job.created), .null, .null,
                    .real(job.modified), .null,
                ]
            ).count == 1
        }
    }

    func job(named name: String) throws -> StoredJob? {
        try run { db in
            try db.query("SELECT \(Self.jobColumns) FROM jobs WHERE name = ?", [.text(name)]).first
        }.map(storedJob)
    }

    func jobs() throws -> [StoredJob] {
        try run { db in try db.query("SELECT \(Self.jobColumns) FROM jobs") }.map(storedJob)
    }

    func jobs(withStatus statuses: [TransformJobStatus]) throws -> [StoredJob] {
        try jobs().filter { statuses.contains($0.status) }.sorted { $0.created < $1.created }
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
    ) throws -> Bool {
        try run { db in
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

    func setProgress(of name: String, _ progress: JobProgress.Snapshot) throws {
        try run { db in
            try db.query("UPDATE jobs SET progress = ? WHERE name = ?", [try json(progress), .text(name)])
        }
    }

    private func storedJob(_ row: [SQLiteValue]) throws -> StoredJob {
        StoredJob(
            name: row[0].text ?? "",
            request: try decode(CreateTransformJobRequest.self, row[1]),
            model: try decode(CreateModelRequest.self, row[2]),
            status: TransformJobStatus(rawValue: row[3].text ?? "") ?? .Failed,
            failureReason: row[4].text,
            created: row[5].real ?? 0,
            started: row[6].real,
            ended: row[7].real,
            modified: row[8].real ?? 0,
            progress: row[9] == .null ? nil : try? decode(JobProgress.Snapshot.self, row[9])
        )
    }

    // MARK: Objects

    func setObject(job: String, input: String, output: String, state: ObjectState, reason: String? = nil) throws {
        try run { db in
            try db.query(
                """
                INSERT INTO objects (job, input, output, state, reason) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (job, input) DO UPDATE SET state = excluded.state, reason = excluded.reason
                """,
                [.text(job), .text(input), .text(output), .text(state.rawValue), reason.map(SQLiteValue.text) ?? .null]
            )
        }
    }

    func setObjectState(job: String, input: String, state: ObjectState, reason: String? = nil) throws {
        try run { db in
            try db.query(
                "UPDATE objects SET state = ?, reason = ? WHERE job = ? AND input = ?",
                [.text(state.rawValue), reason.map(SQLiteValue.text) ?? .null, .text(job), .text(input)]
            )
        }
    }

    func objects(of job: String) throws -> [StoredObject] {
        try run { db in
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
    func clearUnfinishedObjects(of job: String) throws {
        try run { db in
            try db.query(
                "DELETE FROM objects WHERE job = ? AND state != ?",
                [.text(job), .text(ObjectState.completed.rawValue)]
            )
        }
    }

    // MARK: Logs

    func appendLog(job: String, _ line: String, time: Double = Date().timeIntervalSince1970) throws {
        try run { db in
            try db.query("INSERT INTO logs (job, time, line) VALUES (?, ?, ?)", [.text(job), .real(time), .text(line)])
        }
    }

    func logs(of job: String) throws -> [(time: Double, line: String)] {
        try run { db in
            try db.query("SELECT time, line FROM logs WHERE job = ? ORDER BY id", [.text(job)])
        }.map { ($0[0].real ?? 0, $0[1].text ?? "") }
    }

    // MARK: Runs

    /// Counts a run of the job that has started; `endRun` clears the count. A count left over at
    /// start-up is a run the server died in.
    func beginRun(of job: String) throws {
        try run { db in
            try db.query(
                "INSERT INTO runs (job, unfinished) VALUES (?, 1) ON CONFLICT (job) DO UPDATE SET unfinished = unfinished + 1",
                [.text(job)]
            )
        }
    }

    func endRun(of job: String) throws {
        try run { db in try db.query("DELETE FROM runs WHERE job = ?", [.text(job)]) }
    }

    func unfinishedRuns(of job: String) throws -> Int {
        try run { db in
            try db.query("SELECT unfinished FROM runs WHERE job = ?", [.text(job)]).first?[0].integer.map { Int($0) }
                ?? 0
        }
    }
}
