import Crypto
import Foundation
import Metering

/// The dashboard's signed cookies and form tokens.
///
/// A session is `tally_session=v1.<key name>.<r|a>.<expires>.<nonce>.<signature>` (the name in
/// base64url, the signature an HMAC-SHA256 over the rest), HttpOnly, SameSite=Strict, with an
/// expiry inside the signed text and as `Max-Age`. Every state-changing form carries the
/// session's CSRF token, an HMAC of its nonce, so a form posted from elsewhere is refused even if
/// a browser sent the cookie. The sign-in form's token is bound the same way to a short-lived
/// `tally_signin` cookie. The key is never stored: the session names the key, and each request
/// checks that the configuration still has a key of that name with that scope.
struct SessionSigner: Sendable {
    static let cookieName = "tally_session"
    static let signInCookieName = "tally_signin"
    /// How long a session lasts: 12 hours.
    static let lifetimeSeconds: Int64 = 12 * 3_600
    /// How long a sign-in form stays good: 10 minutes.
    static let signInLifetimeSeconds: Int64 = 600

    struct Session: Sendable, Hashable {
        var keyName: String
        var admin: Bool
        var expiresAt: Int64
        var nonce: String
    }

    private let secret: [UInt8]

    /// Signs with `secret` (32 bytes or more).
    init(secret: [UInt8]) {
        self.secret = secret
    }

    /// A secret derived from the portal secret (so sessions survive a restart), else random (so
    /// they end with the process).
    static func secret(portalSecret: [UInt8]?) -> [UInt8] {
        if let portalSecret {
            return Array(HMAC<SHA256>.authenticationCode(for: Array("tally-dashboard-session".utf8), using: SymmetricKey(data: portalSecret)))
        }
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    static func nonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return base64URL((0..<18).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    func newSession(keyName: String, admin: Bool, now: Timestamp) -> Session {
        Session(keyName: keyName, admin: admin, expiresAt: Self.seconds(now) + Self.lifetimeSeconds, nonce: Self.nonce())
    }

    /// The cookie's value for `session`.
    func cookieValue(_ session: Session) -> String {
        let text = "v1.\(Self.base64URL(Array(session.keyName.utf8))).\(session.admin ? "a" : "r").\(session.expiresAt).\(session.nonce)"
        return text + "." + signature(text)
    }

    /// The session a cookie value holds, when its signature is right and it has not expired.
    func session(fromCookie value: String, now: Timestamp) -> Session? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "v1" else { return nil }
        let text = parts[0..<5].joined(separator: ".")
        guard Self.constantTimeEqual(Array(signature(text).utf8), Array(parts[5].utf8)) else { return nil }
        guard let nameBytes = Self.fromBase64URL(String(parts[1])), let name = String(validating: nameBytes, as: UTF8.self),
              parts[2] == "a" || parts[2] == "r", let expires = Int64(parts[3]), expires > Self.seconds(now)
        else { return nil }
        return Session(keyName: name, admin: parts[2] == "a", expiresAt: expires, nonce: String(parts[4]))
    }

    /// The form token of a session (or of a sign-in form) with `nonce`.
    func csrfToken(nonce: String) -> String {
        signature("csrf." + nonce)
    }

    /// Whether `token` is the form token for `nonce`.
    func checkCSRF(_ token: String?, nonce: String) -> Bool {
        guard let token else { return false }
        return Self.constantTimeEqual(Array(csrfToken(nonce: nonce).utf8), Array(token.utf8))
    }

    /// A signed sign-in cookie value: `<nonce>.<expires>.<signature>`.
    func signInCookieValue(nonce: String, now: Timestamp) -> String {
        let text = "\(nonce).\(Self.seconds(now) + Self.signInLifetimeSeconds)"
        return text + "." + signature("signin." + text)
    }

    /// The nonce of a sign-in cookie that is signed and not expired.
    func signInNonce(fromCookie value: String, now: Timestamp) -> String? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let expires = Int64(parts[1]), expires > Self.seconds(now) else { return nil }
        let text = "\(parts[0]).\(parts[1])"
        guard Self.constantTimeEqual(Array(signature("signin." + text).utf8), Array(parts[2].utf8)) else { return nil }
        return String(parts[0])
    }

    private func signature(_ text: String) -> String {
        Self.base64URL(Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: secret))))
    }

    static func seconds(_ time: Timestamp) -> Int64 { time.nanosecondsSinceEpoch / Timestamp.nanosecondsPerSecond }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func fromBase64URL(_ text: String) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}

/// Cookies of a request's `Cookie` header, by name (the first of a repeated name wins).
func cookies(_ header: String?) -> [String: String] {
    var found: [String: String] = [:]
    for pair in (header ?? "").split(separator: ";") {
        let parts = pair.split(separator: "=", maxSplits: 1)
        guard parts.count == 2 else { continue }
        let name = parts[0].trimmingCharacters(in: .whitespaces)
        if found[name] == nil { found[name] = parts[1].trimmingCharacters(in: .whitespaces) }
    }
    return found
}

/// The fields of an `application/x-www-form-urlencoded` body (the first of a repeated name wins).
func formFields(_ body: [UInt8]) -> [String: String] {
    var fields: [String: String] = [:]
    for pair in body.split(separator: UInt8(ascii: "&")) {
        let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
        let name = decodeFormComponent(parts[0])
        let value = parts.count > 1 ? decodeFormComponent(parts[1]) : ""
        if let name, let value, fields[name] == nil { fields[name] = value }
    }
    return fields
}

/// `+` as a space and `%XX` escapes; nil when the bytes are not UTF-8 after decoding.
private func decodeFormComponent(_ bytes: ArraySlice<UInt8>) -> String? {
    var out: [UInt8] = []
    var index = bytes.startIndex
    while index < bytes.endIndex {
        let byte = bytes[index]
        if byte == UInt8(ascii: "+") {
            out.append(UInt8(ascii: " "))
        } else if byte == UInt8(ascii: "%"), index + 2 < bytes.endIndex,
                  let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) {
            out.append(high << 4 | low)
            index += 2
        } else {
            out.append(byte)
        }
        index += 1
    }
    return String(validating: out, as: UTF8.self)
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
