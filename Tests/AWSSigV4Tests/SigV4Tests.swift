import Foundation
import Testing

@testable import AWSSigV4

/// AWS's published S3 examples ("Examples: Signature Calculations in AWS Signature Version 4").
struct PublishedExampleTests {
    let signer = SigV4Signer(
        credentials: AWSCredentials(
            accessKeyId: "AKIAIOSFODNN7EXAMPLE",
            secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        ),
        region: "us-east-1",
        service: "s3"
    )
    let date = SigV4Signer.date(fromTimestamp: "20130524T000000Z")!
    let host = ("Host", "examplebucket.s3.amazonaws.com")

    func authorization(_ request: SigV4Request, payloadHash: String = SigV4Signer.emptyPayloadHash) -> String? {
        signer.signingHeaders(for: request, payloadHash: payloadHash, date: date).first { $0.name == "Authorization" }?
            .value
    }

    @Test func getObjectWithRange() {
        let request = SigV4Request(method: "GET", path: "/test.txt", headers: [host, ("Range", "bytes=0-9")])
        #expect(
            authorization(request)
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
    }

    @Test func putObject() {
        let body = Data("Welcome to Amazon S3.".utf8)
        let request = SigV4Request(
            method: "PUT",
            path: "/test%24file.text",
            headers: [host, ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")]
        )
        let hash = SigV4Signer.sha256Hex(body)
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        #expect(
            authorization(request, payloadHash: hash)?.hasSuffix(
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ) == true
        )
    }

    @Test func getBucketLifecycle() {
        let request = SigV4Request(
            method: "GET",
            path: "/",
            query: SigV4Request.queryItems("lifecycle"),
            headers: [host]
        )
        #expect(
            authorization(request)?.hasSuffix(
                "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
            ) == true
        )
    }

    @Test func listObjects() {
        let request = SigV4Request(
            method: "GET",
            path: "/",
            query: SigV4Request.queryItems("max-keys=2&prefix=J"),
            headers: [host]
        )
        #expect(
            authorization(request)?.hasSuffix(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ) == true
        )
    }
}

/// Requests signed by botocore (scripts/generate-sigv4-vectors.py): we must produce the same
/// canonical request and Authorization header, and accept what botocore signed.
struct BotocoreVectorTests {
    struct Vector: Decodable, CustomTestStringConvertible {
        var description: String
        var accessKeyId: String
        var secretAccessKey: String
        var sessionToken: String?
        var service: String
        var region: String
        var method: String
        var path: String
        var query: String
        var headers: [[String]]
        var payloadHash: String
        var signedHeaders: [String]
        var timestamp: String
        var authorization: String
        var canonicalRequest: String

        var testDescription: String { description }
        var signer: SigV4Signer {
            SigV4Signer(
                credentials: AWSCredentials(
                    accessKeyId: accessKeyId,
                    secretAccessKey: secretAccessKey,
                    sessionToken: sessionToken
                ),
                region: region,
                service: service
            )
        }
        var request: SigV4Request {
            SigV4Request(
                method: method,
                path: path,
                query: SigV4Request.queryItems(query),
                headers: headers.map { ($0[0], $0[1]) }
            )
        }
        var date: Date { SigV4Signer.date(fromTimestamp: timestamp)! }
    }

    static let vectors: [Vector] = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "botocore-vectors.json"
        )
        struct File: Decodable { var cases: [Vector] }
        return try! JSONDecoder().decode(File.self, from: Data(contentsOf: file)).cases
    }()

    @Test(arguments: vectors) func signsAsBotocoreDoes(_ vector: Vector) {
        let added = vector.signer.signingHeaders(
            for: vector.request,
            payloadHash: vector.payloadHash,
            date: vector.date
        )
        var signed = vector.request
        signed.headers += added.filter { $0.name != "Authorization" }
        let names = SigV4Signer.canonicalHeaderNames(signed.headers)
        #expect(names == vector.signedHeaders)
        #expect(
            SigV4Signer.canonicalRequest(
                signed,
                signedHeaders: names,
                payloadHash: vector.payloadHash,
                service: vector.service
            )
                == vector.canonicalRequest
        )
        #expect(added.first { $0.name == "Authorization" }?.value == vector.authorization)
    }

    func signedByBotocore(_ vector: Vector) -> SigV4Request {
        var request = vector.request
        request.headers += [("X-Amz-Date", vector.timestamp), ("Authorization", vector.authorization)]
        if vector.service == "s3" { request.headers.append(("X-Amz-Content-SHA256", vector.payloadHash)) }
        if let token = vector.sessionToken { request.headers.append(("X-Amz-Security-Token", token)) }
        return request
    }

    @Test(arguments: vectors) func verifiesWhatBotocoreSigned(_ vector: Vector) throws {
        let verifier = SigV4Verifier(service: vector.service)
        let credentials = vector.signer.credentials
        let accepted = try verifier.verify(signedByBotocore(vector), payloadHash: vector.payloadHash, now: vector.date)
        {
            $0 == credentials.accessKeyId ? credentials : nil
        }
        #expect(accepted == vector.accessKeyId)
    }

    @Test func refusesTamperingUnknownKeysAndOldSignatures() throws {
        let vector = Self.vectors.first { $0.service == "sagemaker" }!
        let verifier = SigV4Verifier(service: vector.service)
        let credentials = vector.signer.credentials
        let lookup: (String) -> AWSCredentials? = { $0 == credentials.accessKeyId ? credentials : nil }
        func code(
            _ request: SigV4Request,
            hash: String? = nil,
            now: Date? = nil,
            lookup: (String) -> AWSCredentials?
        ) -> SigV4Error.Code? {
            do {
                _ = try verifier.verify(
                    request,
                    payloadHash: hash ?? vector.payloadHash,
                    now: now ?? vector.date,
                    secret: lookup
                )
                return nil
            } catch { return error.code }
        }
        let good = signedByBotocore(vector)
        #expect(code(good, lookup: lookup) == nil)
        var retargeted = good
        retargeted.headers = retargeted.headers.map {
            $0.name == "X-Amz-Target" ? ($0.name, "SageMaker.StopTransformJob") : $0
        }
        #expect(code(retargeted, lookup: lookup) == .SignatureDoesNotMatch)
        #expect(code(good, hash: SigV4Signer.sha256Hex(Data("{}".utf8)), lookup: lookup) == .SignatureDoesNotMatch)
        #expect(code(good, lookup: { _ in nil }) == .InvalidClientTokenId)
        #expect(code(good, now: vector.date.addingTimeInterval(16 * 60), lookup: lookup) == .InvalidSignatureException)
        let wrongSecret: (String) -> AWSCredentials? = {
            AWSCredentials(accessKeyId: $0, secretAccessKey: "not-the-secret")
        }
        #expect(code(good, lookup: wrongSecret) == .SignatureDoesNotMatch)
        var unsigned = good
        unsigned.headers.removeAll { $0.name == "Authorization" }
        #expect(code(unsigned, lookup: lookup) == .MissingAuthenticationToken)
    }
}
