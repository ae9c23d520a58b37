import Crypto
import Hummingbird

/// Checks `Authorization: Bearer <key>` against the configured SHA-256 digests of the API keys.
///
/// The key is hashed once and compared with every configured digest in constant time (no early
/// exit on the first differing byte, nor on the first match), so timing tells nothing about the keys.
struct APIKeyAuthenticator: Sendable {
    /// The configured digests, 32 bytes each; malformed entries are dropped.
    let digests: [[UInt8]]

    /// - Parameter hexDigests: lowercase (or uppercase) hex SHA-256 digests, as in `http.api_keys_sha256`.
    init(hexDigests: [String]) {
        digests = hexDigests.compactMap(Self.bytes(fromHex:))
    }

    /// Whether `key`'s SHA-256 is one of the configured digests.
    func accepts(key: String) -> Bool {
        let digest = Array(SHA256.hash(data: Array(key.utf8)))
        var matched: UInt8 = 0
        for candidate in digests {
            var difference: UInt8 = 0
            for index in 0..<32 { difference |= candidate[index] ^ digest[index] }
            // 1 when difference is 0, else 0, without a branch.
            matched |= UInt8(truncatingIfNeeded: (UInt16(difference) &- 1) >> 8) & 1
        }
        return matched == 1
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

/// Answers 401 to every request but `GET /healthz` that lacks a valid bearer key.
struct AuthenticationMiddleware<Context: RequestContext>: RouterMiddleware {
    let authenticator: APIKeyAuthenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/healthz" || request.uri.path == "/openapi.json" { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            throw HTTPAPIError(status: 401, code: .missingAPIKey,
                               message: "this route needs an API key: send the header 'Authorization: Bearer <key>'")
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix else {
            throw HTTPAPIError(status: 401, code: .missingAPIKey,
                               message: "the Authorization header must be 'Bearer <key>'")
        }
        let key = String(header.dropFirst(prefix.count)).trimmingSpaces()
        guard !authenticator.digests.isEmpty else {
            throw HTTPAPIError(status: 401, code: .invalidAPIKey,
                               message: "no API keys are configured: add the SHA-256 of a key to http.api_keys_sha256 in the config and restart")
        }
        guard authenticator.accepts(key: key) else {
            throw HTTPAPIError(status: 401, code: .invalidAPIKey,
                               message: "the API key is not valid: its SHA-256 is not in http.api_keys_sha256")
        }
        return try await next(request, context)
    }
}

extension String {
    /// The text without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return String(text)
    }
}
