public import Foundation

/// Why a signed request was refused, in the terms AWS uses (`code` is AWS's error code).
public struct SigV4Error: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case MissingAuthenticationToken, IncompleteSignature, InvalidClientTokenId, SignatureDoesNotMatch
        case InvalidSignatureException
    }

    public var code: Code
    public var message: String
    /// The underlying error, where one led to this.
    public var cause: (any Error & Sendable)?
    /// Where it was thrown (`Module/File.swift:line`), for bug reports; not part of the message.
    public var location: String

    public init(
        _ code: Code,
        _ message: String,
        cause: (any Error & Sendable)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.location = "\(file):\(line)"
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// Checks an incoming request's `Authorization` header by signing it again with the secret of
/// the access key it names.
public struct SigV4Verifier: Sendable {
    public var service: String
    /// How far the request's `x-amz-date` may be from now (AWS allows 15 minutes).
    public var allowedSkew: TimeInterval

    public init(service: String, allowedSkew: TimeInterval = 15 * 60) {
        self.service = service
        self.allowedSkew = allowedSkew
    }

    /// Returns the verified credentials' access key id. `secret` looks up a key id's credentials.
    public func verify(
        _ request: SigV4Request,
        payloadHash: String,
        now: Date = Date(),
        secret: (String) -> AWSCredentials?
    ) throws(SigV4Error) -> String {
        func header(_ name: String) -> String? { request.headers.first { $0.name.lowercased() == name }?.value }
        guard let authorization = header("authorization") else {
            throw SigV4Error(.MissingAuthenticationToken, "Request is missing Authentication Token")
        }
        guard authorization.hasPrefix(SigV4Signer.algorithm + " ") else {
            throw SigV4Error(.IncompleteSignature, "Authorization header must use \(SigV4Signer.algorithm).")
        }
        let fields = SigV4Request.authorizationFields(authorization)
        guard let credential = fields["Credential"], let signedHeaders = fields["SignedHeaders"],
            let signature = fields["Signature"]
        else {
            throw SigV4Error(
                .IncompleteSignature,
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."
            )
        }
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard scope.count == 5, scope[4] == "aws4_request" else {
            throw SigV4Error(
                .IncompleteSignature,
                "Credential must have the form <key>/<date>/<region>/<service>/aws4_request."
            )
        }
        guard let stamp = header("x-amz-date"), let date = SigV4Signer.date(fromTimestamp: stamp) else {
            throw SigV4Error(.IncompleteSignature, "Signed requests need an x-amz-date header (YYYYMMDDTHHMMSSZ).")
        }
        guard abs(date.timeIntervalSince(now)) <= allowedSkew else {
            throw SigV4Error(
                .InvalidSignatureException,
                "Signature expired: \(stamp) is more than 15 minutes from the server's time."
            )
        }
        guard let credentials = secret(scope[0]) else {
            throw SigV4Error(.InvalidClientTokenId, "The security token included in the request is invalid.")
        }
        guard scope[1] == SigV4Signer.timestamp(date).prefix(8), scope[3] == service else {
            throw SigV4Error(
                .SignatureDoesNotMatch,
                "Credential scope \(scope[1...3].joined(separator: "/")) does not match the request."
            )
        }
        let signer = SigV4Signer(credentials: credentials, region: scope[2], service: service)
        let names = signedHeaders.split(separator: ";").map { String($0) }
        guard names.contains("host") else {
            throw SigV4Error(.SignatureDoesNotMatch, "The host header must be signed.")
        }
        let expected = signer.signature(request, signedHeaders: names, payloadHash: payloadHash, date: date)
        guard constantTimeEqual(expected, signature) else {
            throw SigV4Error(
                .SignatureDoesNotMatch,
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
            )
        }
        return scope[0]
    }

    private func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

extension SigV4Request {
    /// `Credential=…, SignedHeaders=…, Signature=…` of an `AWS4-HMAC-SHA256` Authorization header.
    static func authorizationFields(_ authorization: String) -> [String: String] {
        var fields: [String: String] = [:]
        for part in authorization.dropFirst(SigV4Signer.algorithm.count + 1).split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        return fields
    }

    /// The region a request was signed for (its credential scope), when it is one a region name
    /// can be: lowercase letters, digits and dashes.
    public static func region(ofAuthorization authorization: String) -> String? {
        guard authorization.hasPrefix(SigV4Signer.algorithm + " "),
            let credential = authorizationFields(authorization)["Credential"]
        else { return nil }
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false)
        guard scope.count == 5, let region = scope.dropFirst(2).first, (1...32).contains(region.count),
            region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") })
        else { return nil }
        return String(region)
    }
}
