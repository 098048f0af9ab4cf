import Crypto
public import Foundation

/// The parts of an HTTP request that Signature Version 4 covers. The path is as sent on the wire
/// (already percent-encoded); query items are raw and encoded here; header names in any case.
public struct SigV4Request: Sendable {
    public var method: String
    public var path: String
    public var query: [(name: String, value: String)]
    public var headers: [(name: String, value: String)]

    public init(
        method: String,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)]
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
    }

    /// Splits a raw query string (`a=1&b=%2F`) into decoded items.
    public static func queryItems(_ rawQuery: String) -> [(name: String, value: String)] {
        rawQuery.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in String(text).removingPercentEncoding ?? String(text) }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }
}

/// AWS Signature Version 4 (`AWS4-HMAC-SHA256`), as specified in the AWS General Reference: the
/// one computation shared by the client (signing) and the API server (verifying).
public struct SigV4Signer: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash S3 accepts instead of hashing the body (the body still travels over TCP's
    /// checksums, and S3 verifies Content-MD5 where it is sent).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let emptyPayloadHash = sha256Hex(Data())

    public var credentials: AWSCredentials
    public var region: String
    public var service: String

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to add so that `request` is signed at `date`: `x-amz-date`,
    /// `x-amz-content-sha256` (S3 only), `x-amz-security-token` when the credentials have one, and
    /// `Authorization`. `request.headers` must already hold `host` and every header to sign.
    public func signingHeaders(
        for request: SigV4Request,
        payloadHash: String,
        date: Date
    ) -> [(name: String, value: String)] {
        var added: [(name: String, value: String)] = [("x-amz-date", Self.timestamp(date))]
        if service == "s3" { added.append(("x-amz-content-sha256", payloadHash)) }
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        var signed = request
        signed.headers += added
        let signedHeaders = Self.canonicalHeaderNames(signed.headers)
        let signature = self.signature(signed, signedHeaders: signedHeaders, payloadHash: payloadHash, date: date)
        let scope = Self.scope(date: date, region: region, service: service)
        added.append(
            (
                "Authorization",
                "\(Self.algorithm) Credential=\(credentials.accessKeyId)/\(scope), SignedHeaders=\(signedHeaders.joined(separator: ";")), Signature=\(signature)"
            )
        )
        return added
    }

    /// The hex signature of `request` over the named headers (lower-case, sorted).
    public func signature(_ request: SigV4Request, signedHeaders: [String], payloadHash: String, date: Date) -> String {
        let canonical = Self.canonicalRequest(
            request,
            signedHeaders: signedHeaders,
            payloadHash: payloadHash,
            service: service
        )
        let scope = Self.scope(date: date, region: region, service: service)
        let stringToSign = [Self.algorithm, Self.timestamp(date), scope, Self.sha256Hex(Data(canonical.utf8))].joined(
            separator: "\n"
        )
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: signingKey(date: date)))
    }

    func signingKey(date: Date) -> SymmetricKey {
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [Self.day(date), region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    static func canonicalRequest(
        _ request: SigV4Request,
        signedHeaders: [String],
        payloadHash: String,
        service: String
    ) -> String {
        // S3 signs the path exactly as sent; every other service signs it normalized and encoded again.
        let path = request.path.isEmpty ? "/" : request.path
        let canonicalPath = service == "s3" ? path : uriEncode(normalized(path), keepSlash: true)
        let encodedQuery: [(name: String, value: String)] = request.query.map {
            (uriEncode($0.name, keepSlash: false), uriEncode($0.value, keepSlash: false))
        }
        let query = encodedQuery.sorted { $0.name == $1.name ? $0.value < $1.value : $0.name < $1.name }
            .map { $0.name + "=" + $0.value }.joined(separator: "&")
        var values: [String: [String]] = [:]
        for header in request.headers { values[header.name.lowercased(), default: []].append(trimmed(header.value)) }
        let headerLines = signedHeaders.map { "\($0):\((values[$0] ?? []).joined(separator: ","))\n" }.joined()
        return [request.method, canonicalPath, query, headerLines, signedHeaders.joined(separator: ";"), payloadHash]
            .joined(separator: "\n")
    }

    /// Headers that proxies may add or change are left unsigned, as botocore leaves them.
    static let unsignedHeaders: Set<String> = [
        "authorization", "expect", "transfer-encoding", "user-agent", "x-amzn-trace-id",
    ]

    static func canonicalHeaderNames(_ headers: [(name: String, value: String)]) -> [String] {
        Array(Set(headers.map { $0.name.lowercased() }).subtracting(unsignedHeaders)).sorted()
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters (and `/` where asked).
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var encoded = ""
        encoded.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                encoded.append("/")
            default:
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return encoded
    }

    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        let joined = "/" + parts.joined(separator: "/")
        return path.hasSuffix("/") && joined != "/" ? joined + "/" : joined
    }

    static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    public static func sha256Hex(_ data: some DataProtocol) -> String { hex(SHA256.hash(data: data)) }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var characters: [UInt8] = []
        for byte in bytes { characters += [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]] }
        return String(decoding: characters, as: UTF8.self)
    }

    static func scope(date: Date, region: String, service: String) -> String {
        "\(day(date))/\(region)/\(service)/aws4_request"
    }

    /// `YYYYMMDD'T'HHMMSS'Z'` in UTC.
    public static func timestamp(_ date: Date) -> String {
        let c = utcComponents(date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    static func day(_ date: Date) -> String { String(timestamp(date).prefix(8)) }

    static func utcComponents(_ date: Date) -> DateComponents {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    }

    /// Parses `YYYYMMDD'T'HHMMSS'Z'`.
    public static func date(fromTimestamp text: String) -> Date? {
        let digits = Array(text.utf8)
        guard digits.count == 16, digits[8] == UInt8(ascii: "T"), digits[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: digits[range], as: UTF8.self)) }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8), let hour = number(9..<11),
            let minute = number(11..<13), let second = number(13..<15)
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(
            from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        )
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
