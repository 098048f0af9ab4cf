import AWSSigV4
import Foundation
import Synchronization

/// Console sign-ins: a random token per session, kept here only (so sign-out revokes it), with an
/// expiry and a token of its own for the forms that change something (cross-site requests).
final class ConsoleSessions: Sendable {
    struct Session: Sendable {
        var accessKeyID: String
        var expires: Date
        var formToken: String
    }

    static let cookieName = "batchform_session"
    static let lifetime: TimeInterval = 12 * 3600

    private let credentials: [String: AWSCredentials]
    private let sessions = Mutex<[String: Session]>([:])
    /// The form token when no sign-in is needed (a server without keys, on loopback).
    let openFormToken = ConsoleSessions.randomToken()

    init(credentials: [String: AWSCredentials]) { self.credentials = credentials }

    /// A server started without keys listens on loopback only and needs no sign-in.
    var signInNeeded: Bool { !credentials.isEmpty }

    /// A new session's token, when the key and its secret match the API's keys.
    func signIn(accessKeyID: String, secret: String) -> String? {
        guard let known = credentials[accessKeyID],
            constantTimeEqual(Array(known.secretAccessKey.utf8), Array(secret.utf8))
        else { return nil }
        let token = Self.randomToken()
        sessions.withLock { sessions in
            sessions = sessions.filter { $0.value.expires > Date() }
            sessions[token] = Session(
                accessKeyID: accessKeyID,
                expires: Date().addingTimeInterval(Self.lifetime),
                formToken: Self.randomToken()
            )
        }
        return token
    }

    func signOut(_ token: String) { _ = sessions.withLock { $0.removeValue(forKey: token) } }

    /// The live session a `Cookie` header names.
    func session(cookieHeader: String?) -> Session? {
        guard let token = Self.token(in: cookieHeader) else { return nil }
        return sessions.withLock { sessions in
            guard let session = sessions[token], session.expires > Date() else {
                sessions.removeValue(forKey: token)
                return nil
            }
            return session
        }
    }

    static func token(in cookieHeader: String?) -> String? {
        for pair in (cookieHeader ?? "").split(separator: ";") {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == cookieName { return String(parts[1]) }
        }
        return nil
    }

    static func randomToken() -> String {
        (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
