internal import Foundation
internal import StrataCommon
internal import Synchronization

/// Who may call the catalog: nobody is asked (`none`), a static bearer token (`token`), or bearer tokens issued at
/// `/v1/oauth/tokens` for configured client credentials (`oauth2`). Tokens are random; every comparison is constant
/// time.
final class IcebergAuth: Sendable {
    enum Verdict: Equatable {
        case allowed
        case missing
        case invalid
        case expired
    }

    let mode: IcebergFrontEnd.AuthMode
    private let staticToken: [UInt8]?
    private let clients: [(id: [UInt8], secret: [UInt8])]
    let lifetimeSeconds: Int64
    /// Issued tokens by their SHA-256, with their expiry (wall milliseconds). Bounded: expired ones go first.
    private let issued = Mutex<[[UInt8]: Int64]>([:])
    private let maxIssued = 100_000

    init(_ configuration: IcebergFrontEnd.Configuration) {
        mode = configuration.auth
        staticToken = configuration.token.isEmpty ? nil : Array(configuration.token.utf8)
        clients = configuration.clients.map { pair in
            let colon = pair.firstIndex(of: ":")!
            return (Array(pair[..<colon].utf8), Array(pair[pair.index(after: colon)...].utf8))
        }
        lifetimeSeconds = Int64(configuration.tokenLifetime.components.seconds)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let x = SHA256.hash(a)
        let y = SHA256.hash(b)
        var difference: UInt8 = 0
        for index in 0..<x.count { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    static var nowMilliseconds: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The verdict on a request's `Authorization` header.
    func check(authorization: String?) -> Verdict {
        guard mode != .none else { return .allowed }
        guard let authorization, authorization.lowercased().hasPrefix("bearer ") else { return .missing }
        let token = Array(authorization.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces).utf8)
        if let staticToken, Self.constantTimeEqual(token, staticToken) { return .allowed }
        guard mode == .oauth2 else { return .invalid }
        let digest = SHA256.hash(token)
        guard let expiry = issued.withLock({ $0[digest] }) else { return .invalid }
        return expiry > Self.nowMilliseconds ? .allowed : .expired
    }

    enum TokenOutcome {
        case issued(token: String, expiresIn: Int64)
        case invalidClient
        case unsupportedGrant(String)
        case invalidRequest(String)
    }

    /// `POST /v1/oauth/tokens`: client credentials from the form body (pyiceberg) or HTTP Basic (DuckDB).
    func issue(form: [String: String], authorization: String?) -> TokenOutcome {
        let grant = form["grant_type"] ?? ""
        guard grant == "client_credentials" else {
            if grant.isEmpty { return .invalidRequest("grant_type is missing") }
            return .unsupportedGrant(grant)
        }
        var id = form["client_id"]
        var secret = form["client_secret"]
        if let authorization, authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces))
        {
            let text = String(decoding: decoded, as: UTF8.self)
            if let colon = text.firstIndex(of: ":") {
                id = String(text[..<colon]).removingPercentEncoding ?? String(text[..<colon])
                let rawSecret = String(text[text.index(after: colon)...])
                secret = rawSecret.removingPercentEncoding ?? rawSecret
            }
        }
        switch mode {
        case .none:
            break
        case .token:
            return .invalidClient
        case .oauth2:
            guard let id, let secret else { return .invalidClient }
            let idBytes = Array(id.utf8)
            let secretBytes = Array(secret.utf8)
            var matched = false
            for client in clients {
                let idMatches = Self.constantTimeEqual(idBytes, client.id)
                let secretMatches = Self.constantTimeEqual(secretBytes, client.secret)
                if idMatches && secretMatches { matched = true }
            }
            guard matched else { return .invalidClient }
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        let token = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let now = Self.nowMilliseconds
        let expiry = now + lifetimeSeconds * 1000
        issued.withLock { tokens in
            if tokens.count >= maxIssued {
                // Tokens expired for a whole lifetime are forgotten (a client with one gets 401, not 419).
                tokens = tokens.filter { $0.value > now - lifetimeSeconds * 1000 }
                if tokens.count >= maxIssued, let oldest = tokens.min(by: { $0.value < $1.value }) {
                    tokens[oldest.key] = nil
                }
            }
            tokens[SHA256.hash(Array(token.utf8))] = expiry
        }
        return .issued(token: token, expiresIn: lifetimeSeconds)
    }
}
