import Crypto
package import TallyConfiguration
import Metering
import Hummingbird

/// Checks `Authorization: Bearer <key>` against the configured SHA-256 digests of the API keys.
///
/// The key is hashed once and compared with every configured digest in constant time (no early
/// exit on the first differing byte, nor on the first match), so timing tells nothing about the keys.
package struct APIKeyAuthenticator: Sendable {
    /// One accepted key: its digest (32 bytes), its name and what it may do.
    package struct Entry: Sendable {
        package var digest: [UInt8]
        package var name: String
        package var scopes: Set<APIScope>
    }

    /// The configured keys; malformed entries are dropped.
    package let entries: [Entry]

    /// The keys of `http.api_keys_sha256` (full access) and `http.api_keys`.
    package init(config: HTTPSettings) {
        self.init(hexDigests: config.apiKeySHA256, keys: config.apiKeys)
    }

    /// - Parameter hexDigests: lowercase (or uppercase) hex SHA-256 digests, as in `http.api_keys_sha256` (full access).
    init(hexDigests: [String], keys: [APIKey] = []) {
        var entries: [Entry] = []
        for (index, text) in hexDigests.enumerated() {
            if let digest = Self.bytes(fromHex: text) { entries.append(Entry(digest: digest, name: "api_keys_sha256[\(index)]", scopes: [.admin])) }
        }
        for key in keys {
            if let digest = Self.bytes(fromHex: key.sha256) { entries.append(Entry(digest: digest, name: key.name, scopes: key.scopes)) }
        }
        self.entries = entries
    }

    var digests: [[UInt8]] { entries.map(\.digest) }

    /// Whether `key`'s SHA-256 is one of the configured digests.
    func accepts(key: String) -> Bool { match(key: key) != nil }

    /// The configured key whose digest is `key`'s SHA-256, found without an early exit.
    package func match(key: String) -> Entry? {
        let digest = Array(SHA256.hash(data: Array(key.utf8)))
        var found = -1
        for (index, candidate) in entries.enumerated() {
            var difference: UInt8 = 0
            for byte in 0..<32 { difference |= candidate.digest[byte] ^ digest[byte] }
            // All ones when difference is 0, else 0, without a branch.
            let equal = Int(truncatingIfNeeded: (UInt16(difference) &- 1) >> 8 & 1)
            let mask = 0 &- equal
            found = (index & mask) | (found & ~mask)
        }
        return found >= 0 ? entries[found] : nil
    }

    /// Lowercase hex SHA-256 of `key`: what goes into `http.api_keys_sha256`.
    static func hexDigest(of key: String) -> String {
        SHA256.hash(data: Array(key.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    static func bytes(fromHex text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Who may call what: every request but `GET /healthz` and `GET /openapi.json` needs a bearer
/// credential. An API key needs the route's scope (`ingest`: `POST /v1/events`; `read`: every
/// `GET`; `admin`: everything), else 403 `forbidden`; an unknown or missing key is 401. A portal
/// token (``PortalToken``, as the bearer or as `?token=`) reads its own customer's usage, estimate,
/// limits and entitlements and nothing else.
struct AuthenticationMiddleware<Context: RequestContext>: RouterMiddleware {
    let authenticator: APIKeyAuthenticator
    /// The portal tokens' signing secret; nil: portal tokens are refused.
    let portalSecret: [UInt8]?
    /// Paths that authenticate their own requests (the dashboard's session cookies).
    var exemptPrefixes: [String] = []

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if request.method == .get, path == "/healthz" || path == "/openapi.json" { return try await next(request, context) }
        if exemptPrefixes.owns(path) { return try await next(request, context) }
        var credential: String?
        if let header = request.headers[.authorization] {
            let prefix = "bearer "
            guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix else {
                throw HTTPAPIError(status: 401, code: .missingAPIKey, message: "the Authorization header must be 'Bearer <key>'")
            }
            credential = String(header.dropFirst(prefix.count)).trimmingSpaces()
        } else if let token = request.uri.queryParameters["token"], token.hasPrefix(PortalToken.prefix) {
            credential = String(token)
        }
        guard let credential else {
            throw HTTPAPIError(status: 401, code: .missingAPIKey,
                               message: "this route needs an API key: send the header 'Authorization: Bearer <key>'")
        }
        if credential.hasPrefix(PortalToken.prefix) {
            try checkPortalToken(credential, request: request)
            return try await next(request, context)
        }
        guard !authenticator.entries.isEmpty else {
            throw HTTPAPIError(status: 401, code: .invalidAPIKey,
                               message: "no API keys are configured: add the SHA-256 of a key to http.api_keys (or http.api_keys_sha256) in the config and restart")
        }
        guard let key = authenticator.match(key: credential) else {
            throw HTTPAPIError(status: 401, code: .invalidAPIKey,
                               message: "the API key is not valid: its SHA-256 is not in http.api_keys or http.api_keys_sha256")
        }
        let needed = Self.scope(method: request.method, path: path)
        guard key.scopes.contains(.admin) || key.scopes.contains(needed) else {
            let has = key.scopes.map(\.rawValue).sorted().joined(separator: ", ")
            throw HTTPAPIError(status: 403, code: .forbidden,
                               message: "the API key \"\(key.name)\" has the scopes [\(has)]; \(request.method.rawValue) \(path) needs \(needed.rawValue) (or admin): use a key with that scope")
        }
        return try await next(request, context)
    }

    /// The scope a request needs: `ingest` to post events, `read` for every GET, `admin` otherwise.
    static func scope(method: HTTPRequest.Method, path: String) -> APIScope {
        if method == .post, path == "/v1/events" { return .ingest }
        return method == .get ? .read : .admin
    }

    /// A portal token may GET its customer's usage, estimate, limits and entitlements.
    private func checkPortalToken(_ text: String, request: Request) throws {
        guard let portalSecret else {
            throw HTTPAPIError(status: 401, code: .invalidToken, message: "portal tokens are not enabled on this server (no http.portal_secret_env secret)")
        }
        let token: PortalToken
        do {
            token = try PortalToken.verify(text, secret: portalSecret, now: .now())
        } catch .expired {
            throw HTTPAPIError(status: 401, code: .tokenExpired, message: "the portal token has expired; ask for a new one")
        } catch {
            throw HTTPAPIError(status: 401, code: .invalidToken, message: "the portal token is not valid (malformed, changed, or signed with another secret)")
        }
        let segments = request.uri.path.split(separator: "/", omittingEmptySubsequences: false)
        // "", "v1", "customers", {id}, what…
        let readable = ["usage", "estimate", "limits", "entitlements"]
        guard request.method == .get, segments.count >= 5, segments[1] == "v1", segments[2] == "customers",
              readable.contains(String(segments[4])), segments[4] == "entitlements" ? segments.count == 6 : segments.count == 5
        else {
            throw HTTPAPIError(status: 403, code: .forbidden,
                               message: "a portal token reads only GET /v1/customers/{its customer}/usage, /estimate, /limits and /entitlements/{meter}")
        }
        guard segments[3].removingPercentEncoding == token.customer else {
            throw HTTPAPIError(status: 403, code: .forbidden, message: "this portal token is for another customer")
        }
    }
}
