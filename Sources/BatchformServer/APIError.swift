import TransformSpec

/// An error as the AWS JSON 1.1 protocol sends it: `{"__type": ..., "message": ...}` with a status.
struct APIError: Error, Sendable {
    var type: String
    var message: String
    var status: Int

    init(_ type: String, _ message: String, status: Int = 400) {
        self.type = type
        self.message = message
        self.status = status
    }

    static func validation(_ message: String) -> APIError { APIError("ValidationException", message) }

    static func validation(_ error: ValidationException) -> APIError { validation(error.message) }

    static func resourceInUse(_ message: String) -> APIError { APIError("ResourceInUse", message) }

    /// SageMaker answers unknown names with ValidationException (botocore's waiter relies on it).
    static func jobNotFound(_ name: String, _ arns: ResourceARN) -> APIError {
        validation("Could not find transform job \"\(arns.transformJob(name))\".")
    }

    static func modelNotFound(_ name: String, _ arns: ResourceARN) -> APIError {
        validation("Could not find model \"\(arns.model(name))\".")
    }

    static func internalFailure(_ message: String) -> APIError { APIError("InternalFailure", message, status: 500) }
}
