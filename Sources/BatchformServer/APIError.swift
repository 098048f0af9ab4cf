import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TransformSpec

/// An error as the AWS JSON 1.1 protocol sends it: `{"__type": ..., "message": ...}` with a status.
/// The one place SageMaker's error types are chosen; a Hummingbird `HTTPResponseError`, so a
/// route may simply throw it.
struct APIError: Error, Sendable, HTTPResponseError {
    var type: String
    var message: String
    var statusCode: Int

    init(_ type: String, _ message: String, status: Int = 400) {
        self.type = type
        self.message = message
        self.statusCode = status
    }

    var status: HTTPResponse.Status { .init(code: statusCode) }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        AWSJSON.error(self)
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
