// The shapes of the API operations around CreateTransformJob and CreateModel: Describe, List,
// Stop and Delete, as `../reference/api-shapes/` gives them, with their server-side checks.

public struct CreateModelResponse: Codable, Sendable {
    public var ModelArn: String
    public init(ModelArn: String) { self.ModelArn = ModelArn }
}

public struct CreateTransformJobResponse: Codable, Sendable {
    public var TransformJobArn: String
    public init(TransformJobArn: String) { self.TransformJobArn = TransformJobArn }
}

/// DescribeTransformJob and StopTransformJob take only the job's name.
public struct TransformJobNameRequest: Codable, Sendable {
    public var TransformJobName: String?
    public init(TransformJobName: String? = nil) { self.TransformJobName = TransformJobName }

    public func validatedName() throws(ValidationException) -> String {
        var checker = ConstraintChecker()
        checker.required(TransformJobName, at: "transformJobName")
        checker.string(TransformJobName, at: "transformJobName", min: 1, max: 63, pattern: Patterns.jobName)
        if let error = checker.result() { throw error }
        return TransformJobName ?? ""
    }
}

/// DescribeModel and DeleteModel take only the model's name.
public struct ModelNameRequest: Codable, Sendable {
    public var ModelName: String?
    public init(ModelName: String? = nil) { self.ModelName = ModelName }

    public func validatedName() throws(ValidationException) -> String {
        var checker = ConstraintChecker()
        checker.required(ModelName, at: "modelName")
        checker.string(ModelName, at: "modelName", max: 63, pattern: Patterns.modelName)
        if let error = checker.result() { throw error }
        return ModelName ?? ""
    }
}

public struct DescribeModelResponse: Codable, Sendable {
    public var ModelName: String
    public var PrimaryContainer: ContainerDefinition?
    public var Containers: [ContainerDefinition]?
    public var ExecutionRoleArn: String?
    public var EnableNetworkIsolation: Bool?
    public var CreationTime: Double
    public var ModelArn: String

    public init(request: CreateModelRequest, name: String, creationTime: Double, arns: ResourceARN) {
        self.ModelName = name
        self.PrimaryContainer = request.PrimaryContainer
        self.Containers = request.Containers
        self.ExecutionRoleArn = request.ExecutionRoleArn
        self.EnableNetworkIsolation = request.EnableNetworkIsolation ?? false
        self.CreationTime = creationTime
        self.ModelArn = arns.model(name)
    }
}

/// The members List operations share: sorting, paging and the name and time filters.
public struct ListTransformJobsRequest: Codable, Sendable {
    public var CreationTimeAfter: Double?
    public var CreationTimeBefore: Double?
    public var LastModifiedTimeAfter: Double?
    public var LastModifiedTimeBefore: Double?
    public var NameContains: String?
    public var StatusEquals: String?
    public var SortBy: String?
    public var SortOrder: String?
    public var NextToken: String?
    public var MaxResults: Int?
    public init() {}

    public func validate() throws(ValidationException) {
        var checker = ConstraintChecker()
        checker.string(NameContains, at: "nameContains", max: 63, pattern: "[a-zA-Z0-9\\-]+")
        checker.string(
            StatusEquals,
            at: "statusEquals",
            oneOf: ["InProgress", "Completed", "Failed", "Stopping", "Stopped"]
        )
        checker.string(SortBy, at: "sortBy", oneOf: ["Name", "CreationTime", "Status"])
        checker.string(SortOrder, at: "sortOrder", oneOf: ["Ascending", "Descending"])
        checker.string(NextToken, at: "nextToken", max: 8192)
        checker.integer(MaxResults, at: "maxResults", min: 1, max: 100)
        if let error = checker.result() { throw error }
    }
}

public struct TransformJobSummary: Codable, Sendable {
    public var TransformJobName: String
    public var TransformJobArn: String
    public var CreationTime: Double
    public var TransformEndTime: Double?
    public var LastModifiedTime: Double?
    public var TransformJobStatus: TransformJobStatus
    public var FailureReason: String?

    public init(
        name: String,
        status: TransformJobStatus,
        creationTime: Double,
        endTime: Double?,
        lastModifiedTime: Double?,
        failureReason: String?,
        arns: ResourceARN
    ) {
        self.TransformJobName = name
        self.TransformJobArn = arns.transformJob(name)
        self.CreationTime = creationTime
        self.TransformEndTime = endTime
        self.LastModifiedTime = lastModifiedTime
        self.TransformJobStatus = status
        self.FailureReason = failureReason.map { String($0.prefix(1024)) }
    }
}

public struct ListTransformJobsResponse: Codable, Sendable {
    public var TransformJobSummaries: [TransformJobSummary]
    public var NextToken: String?
    public init(TransformJobSummaries: [TransformJobSummary], NextToken: String?) {
        self.TransformJobSummaries = TransformJobSummaries
        self.NextToken = NextToken
    }
}

public struct ListModelsRequest: Codable, Sendable {
    public var SortBy: String?
    public var SortOrder: String?
    public var NextToken: String?
    public var MaxResults: Int?
    public var NameContains: String?
    public var CreationTimeBefore: Double?
    public var CreationTimeAfter: Double?
    public init() {}

    public func validate() throws(ValidationException) {
        var checker = ConstraintChecker()
        checker.string(NameContains, at: "nameContains", max: 63, pattern: "[a-zA-Z0-9-]+")
        checker.string(SortBy, at: "sortBy", oneOf: ["Name", "CreationTime"])
        checker.string(SortOrder, at: "sortOrder", oneOf: ["Ascending", "Descending"])
        checker.string(NextToken, at: "nextToken", max: 8192)
        checker.integer(MaxResults, at: "maxResults", min: 1, max: 100)
        if let error = checker.result() { throw error }
    }
}

public struct ModelSummary: Codable, Sendable {
    public var ModelName: String
    public var ModelArn: String
    public var CreationTime: Double
    public init(name: String, creationTime: Double, arns: ResourceARN) {
        self.ModelName = name
        self.ModelArn = arns.model(name)
        self.CreationTime = creationTime
    }
}

public struct ListModelsResponse: Codable, Sendable {
    public var Models: [ModelSummary]
    public var NextToken: String?
    public init(Models: [ModelSummary], NextToken: String?) {
        self.Models = Models
        self.NextToken = NextToken
    }
}

/// Batchform's addition to DescribeTransformJob: how far the job is. Clients that do not know
/// the member ignore it.
public struct BatchformProgress: Codable, Sendable, Equatable {
    public struct Instance: Codable, Sendable, Equatable {
        public var Name: String
        public var State: String
        public var Invocations: Int
        /// The cluster node a worker runs on (`--executor slurm`); absent for local instances.
        public var Node: String?
        public init(Name: String, State: String, Invocations: Int, Node: String? = nil) {
            self.Name = Name
            self.State = State
            self.Invocations = Invocations
            self.Node = Node
        }
    }

    public var Phase: String
    public var ObjectsTotal: Int
    public var ObjectsCompleted: Int
    public var ObjectsFailed: Int
    /// Of ObjectsCompleted, those an earlier run of the job had finished (after a server restart).
    public var ObjectsResumed: Int
    public var RecordsProcessed: Int
    public var RecordsFailed: Int
    /// Known once every object has been read to its end.
    public var RecordsTotal: Int?
    public var BytesProcessed: Int64
    public var BytesTotal: Int64
    public var BytesPerSecond: Double
    public var Instances: [Instance]

    public init(
        Phase: String,
        ObjectsTotal: Int,
        ObjectsCompleted: Int,
        ObjectsFailed: Int,
        ObjectsResumed: Int,
        RecordsProcessed: Int,
        RecordsFailed: Int,
        RecordsTotal: Int?,
        BytesProcessed: Int64,
        BytesTotal: Int64,
        BytesPerSecond: Double,
        Instances: [Instance]
    ) {
        self.Phase = Phase
        self.ObjectsTotal = ObjectsTotal
        self.ObjectsCompleted = ObjectsCompleted
        self.ObjectsFailed = ObjectsFailed
        self.ObjectsResumed = ObjectsResumed
        self.RecordsProcessed = RecordsProcessed
        self.RecordsFailed = RecordsFailed
        self.RecordsTotal = RecordsTotal
        self.BytesProcessed = BytesProcessed
        self.BytesTotal = BytesTotal
        self.BytesPerSecond = BytesPerSecond
        self.Instances = Instances
    }
}
