import Foundation
import Logging
import ObjectStorage
import TransformEngine
import TransformSpec

/// The SageMaker operations Batchform answers, over JSON bodies (AWS JSON 1.1). Creates check
/// everything they can before they return; the job itself then runs on the executor.
struct SageMakerAPI: Sendable {
    let store: JobStore
    let executor: JobExecutor
    let settings: ServerSettings
    /// The server's own log, for job events.
    var events = Logger(label: "batchform.serve")
    /// ARNs for the caller's region; set per request by `call`.
    var arns = ResourceARN.standard

    static let operations = [
        "CreateModel", "DescribeModel", "ListModels", "DeleteModel", "CreateTransformJob", "DescribeTransformJob",
        "ListTransformJobs", "StopTransformJob",
    ]

    /// Answers `X-Amz-Target: SageMaker.<operation>` with the response body, or throws an `APIError`.
    func call(_ operation: String, body: Data, region: String?) async throws(APIError) -> Data {
        var api = self
        api.arns = ResourceARN(region: region ?? ResourceARN.defaultRegion, account: settings.accountID)
        return try await api.call(operation, body: body)
    }

    private func call(_ operation: String, body: Data) async throws(APIError) -> Data {
        var decoder = RequestDecoder()
        func decode<T: Decodable>(_ body: Data) throws -> T { try decoder.decode(T.self, from: body) }
        do {
            switch operation {
            case "CreateModel": return try encode(try await createModel(decode(body)))
            case "DescribeModel": return try encode(try await describeModel(decode(body)))
            case "ListModels": return try encode(try await listModels(decode(body)))
            case "DeleteModel": return try encode(try await deleteModel(decode(body)))
            case "CreateTransformJob": return try encode(try await createTransformJob(decode(body)))
            case "DescribeTransformJob": return try encode(try await describeTransformJob(decode(body)))
            case "ListTransformJobs": return try encode(try await listTransformJobs(decode(body)))
            case "StopTransformJob": return try encode(try await stopTransformJob(decode(body)))
            default:
                throw APIError(
                    "UnknownOperationException",
                    "Batchform does not implement SageMaker.\(operation). It answers: \(Self.operations.joined(separator: ", "))."
                )
            }
        } catch let error as APIError {
            throw APIError(error.type, decoder.restoringValues(in: error.message), status: error.statusCode)
        } catch let error as ValidationException {
            throw .validation(decoder.restoringValues(in: error.message))
        } catch let error as DecodingError {
            throw APIError(
                "SerializationException",
                "The request body does not match the \(operation) shape: \(describe(error))"
            )
        } catch {
            throw .internalFailure("\(error)")
        }
    }

    // MARK: Models

    private func createModel(_ request: CreateModelRequest) async throws -> CreateModelResponse {
        let model = try ModelDefinition(validating: request)
        let policy = LocationPolicy(settings: settings)
        try policy.check(model.modelDataURL, member: "PrimaryContainer.ModelDataUrl")
        try policy.checkSubmitDirectory(in: model.environment, member: "PrimaryContainer.Environment")
        let stored = StoredModel(request: request, name: model.name, created: Date().timeIntervalSince1970)
        guard try await store.insert(model: stored) else {
            throw APIError.validation("Cannot create already existing model \"\(arns.model(model.name))\".")
        }
        return CreateModelResponse(ModelArn: arns.model(model.name))
    }

    private func describeModel(_ request: ModelNameRequest) async throws -> DescribeModelResponse {
        let name = try request.validatedName()
        guard let model = try await store.model(named: name) else { throw APIError.modelNotFound(name, arns) }
        return DescribeModelResponse(request: model.request, name: model.name, creationTime: model.created, arns: arns)
    }

    private func deleteModel(_ request: ModelNameRequest) async throws -> EmptyResponse {
        let name = try request.validatedName()
        guard try await store.deleteModel(named: name) else { throw APIError.modelNotFound(name, arns) }
        return EmptyResponse()
    }

    private func listModels(_ request: ListModelsRequest) async throws -> ListModelsResponse {
        try request.validate()
        var models = try await store.models().filter { model in
            (request.NameContains.map { model.name.localizedCaseInsensitiveContains($0) } ?? true)
                && (request.CreationTimeAfter.map { model.created > $0 } ?? true)
                && (request.CreationTimeBefore.map { model.created < $0 } ?? true)
        }
        models.sort { a, b in
            request.SortBy == "Name" ? a.name.lowercased() < b.name.lowercased() : a.created < b.created
        }
        if request.SortOrder != "Ascending" { models.reverse() }
        let (page, next) = try Page.of(models, token: request.NextToken, maxResults: request.MaxResults)
        return ListModelsResponse(
            Models: page.map { ModelSummary(name: $0.name, creationTime: $0.created, arns: arns) },
            NextToken: next
        )
    }

    // MARK: Transform jobs

    private func createTransformJob(_ request: CreateTransformJobRequest) async throws -> CreateTransformJobResponse {
        let configuration = try TransformJobConfiguration(validating: request)
        guard let model = try await store.model(named: configuration.modelName) else {
            throw APIError.modelNotFound(configuration.modelName, arns)
        }
        let definition = try ModelDefinition(validating: model.request)
        let policy = LocationPolicy(settings: settings)
        try policy.check(configuration.inputURI, member: "TransformInput.DataSource.S3DataSource.S3Uri")
        try policy.check(configuration.outputPath, member: "TransformOutput.S3OutputPath")
        try policy.checkSubmitDirectory(in: configuration.environment, member: "Environment")
        try policy.check(
            configuration.environment[EngineSettings.recordErrorsOutputName],
            member: "Environment \(EngineSettings.recordErrorsOutputName)"
        )
        if try await store.job(named: configuration.name) != nil { throw duplicate(configuration.name) }

        // The inputs are listed now, as SageMaker does, so an empty or unreadable input is the
        // caller's error rather than a job that fails later.
        let options = RunOptions(
            logDirectory: settings.logDirectory(of: configuration.name),
            startupTimeout: settings.startupTimeout,
            workingDirectory: settings.workingDirectory,
            s3: settings.s3,
            confinement: settings.confinement
        )
        let check = TransformJob(
            model: definition,
            configuration: configuration,
            options: options,
            logger: .init(label: "create")
        )
        do {
            _ = try await check.plan()
        } catch let error as ValidationException {
            throw error
        } catch {
            throw ValidationException("\(error)")
        }
        let now = Date().timeIntervalSince1970
        let job = StoredJob(
            name: configuration.name,
            request: request,
            model: model.request,
            status: .InProgress,
            created: now,
            modified: now
        )
        guard try await store.insert(job: job) else { throw duplicate(configuration.name) }
        try await store.appendLog(
            job: configuration.name,
            "CreateTransformJob: queued (model \(definition.name), image \(definition.image))."
        )
        events.info(
            "job created",
            metadata: [
                "job": "\(configuration.name)", "model": "\(definition.name)",
                "instances": "\(configuration.instanceCount)",
            ]
        )
        await executor.enqueue(configuration.name)
        return CreateTransformJobResponse(TransformJobArn: arns.transformJob(configuration.name))
    }

    private func duplicate(_ name: String) -> APIError {
        .resourceInUse(
            "Transform job names must be unique within an AWS account and region, and a transform job with this name "
                + "already exists (\(arns.transformJob(name)))."
        )
    }

    private func describeTransformJob(_ request: TransformJobNameRequest) async throws -> DescribeTransformJobResponse {
        let name = try request.validatedName()
        guard let job = try await store.job(named: name) else { throw APIError.jobNotFound(name, arns) }
        var response = DescribeTransformJobResponse(
            request: job.request,
            arn: arns.transformJob(job.name),
            status: job.status,
            failureReason: job.failureReason,
            creationTime: job.created,
            startTime: job.started,
            endTime: job.ended
        )
        if let progress = await executor.progress(of: job.name) ?? job.progress {
            response.BatchformProgress = Self.progress(progress, of: job)
        }
        return response
    }

    static func progress(_ snapshot: JobProgress.Snapshot, of job: StoredJob) -> BatchformProgress {
        BatchformProgress(
            snapshot,
            elapsedSeconds: (job.ended ?? Date().timeIntervalSince1970) - (job.started ?? job.created)
        )
    }

    private func listTransformJobs(_ request: ListTransformJobsRequest) async throws -> ListTransformJobsResponse {
        try request.validate()
        var jobs = try await store.jobs().filter { job in
            (request.NameContains.map { job.name.localizedCaseInsensitiveContains($0) } ?? true)
                && (request.StatusEquals.map { job.status.rawValue == $0 } ?? true)
                && (request.CreationTimeAfter.map { job.created > $0 } ?? true)
                && (request.CreationTimeBefore.map { job.created < $0 } ?? true)
                && (request.LastModifiedTimeAfter.map { job.modified > $0 } ?? true)
                && (request.LastModifiedTimeBefore.map { job.modified < $0 } ?? true)
        }
        jobs.sort { a, b in
            switch request.SortBy {
            case "Name": a.name.lowercased() < b.name.lowercased()
            case "Status": (a.status.rawValue, a.created) < (b.status.rawValue, b.created)
            default: a.created < b.created
            }
        }
        if request.SortOrder != "Ascending" { jobs.reverse() }
        let (page, next) = try Page.of(jobs, token: request.NextToken, maxResults: request.MaxResults)
        let summaries = page.map {
            TransformJobSummary(
                name: $0.name,
                status: $0.status,
                creationTime: $0.created,
                endTime: $0.ended,
                lastModifiedTime: $0.modified,
                failureReason: $0.failureReason,
                arns: arns
            )
        }
        return ListTransformJobsResponse(TransformJobSummaries: summaries, NextToken: next)
    }

    private func stopTransformJob(_ request: TransformJobNameRequest) async throws -> EmptyResponse {
        let name = try request.validatedName()
        guard let job = try await store.job(named: name) else { throw APIError.jobNotFound(name, arns) }
        switch job.status {
        case .InProgress:
            if try await !executor.stop(job.name) {
                // Between the store and the executor (it has just ended): nothing left to stop.
                try await store.setStatus(
                    of: job.name,
                    to: .Stopped,
                    from: [.InProgress],
                    ended: Date().timeIntervalSince1970
                )
            }
        case .Stopping, .Stopped:
            break
        case .Completed, .Failed:
            throw APIError.validation(
                "The transform job \(arns.transformJob(job.name)) has already ended (\(job.status.rawValue)); "
                    + "only InProgress jobs can be stopped."
            )
        }
        return EmptyResponse()
    }

    // MARK: JSON

    private func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return try encoder.encode(value)
    }

    private func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")) must be \(type)."
        case .dataCorrupted(let context):
            return context.debugDescription
        case .keyNotFound(let key, _):
            return "\(key.stringValue) is missing."
        @unknown default:
            return "\(error)"
        }
    }
}

struct EmptyResponse: Codable {}

/// One page of a sorted list; the token is the offset of the next page, as moto does it.
enum Page {
    static func of<T>(_ items: [T], token: String?, maxResults: Int?) throws(APIError) -> ([T], String?) {
        var start = 0
        if let token {
            guard let offset = Int(token), (0...items.count).contains(offset) else {
                throw .validation("Invalid pagination token because \"\(token)\".")
            }
            start = offset
        }
        let end = min(items.count, start + (maxResults ?? 10))
        return (Array(items[start..<end]), end < items.count ? String(end) : nil)
    }
}
