public import Crypto
import Foundation
public import Metering

/// A customer portal token: read access to one customer's usage, estimate, limits and
/// entitlements until it expires, signed with HMAC-SHA256 (the secret in the environment variable
/// `http.portal_secret_env` names).
///
/// The text is `tp1.<payload>.<signature>`, both parts base64url without padding: the payload is a
/// version byte (1), the expiry (seconds since the epoch, i64 big-endian) and the customer id's
/// bytes; the signature is the HMAC of `tp1.<payload>`. Nothing in it is secret; changing any
/// byte breaks the signature.
///
/// ```swift
/// let token = PortalToken(customer: "cus_42", expiresAt: .now().adding(nanoseconds: 3_600_000_000_000))
/// let text = token.signed(secret: secret)
/// try PortalToken.verify(text, secret: secret, now: .now())   // the token, or PortalTokenError
/// ```
public struct PortalToken: Sendable, Hashable {
    /// The one customer the token reads.
    public var customer: String
    /// When it stops working (whole seconds).
    public var expiresAt: Timestamp

    /// The prefix of every portal token: how a bearer credential is told from an API key.
    public static let prefix = "tp1."
    /// The shortest and longest lifetimes a token may be minted with.
    public static let ttlRange: ClosedRange<Int64> = 60 * Timestamp.nanosecondsPerSecond...(30 * 86_400 * Timestamp.nanosecondsPerSecond)
    /// The lifetime when none is asked for: an hour.
    public static let defaultTTL: Int64 = 3_600 * Timestamp.nanosecondsPerSecond

    public init(customer: String, expiresAt: Timestamp) {
        self.customer = customer
        self.expiresAt = Timestamp(nanosecondsSinceEpoch: expiresAt.nanosecondsSinceEpoch / Timestamp.nanosecondsPerSecond * Timestamp.nanosecondsPerSecond)
    }

    /// The token's text, signed with `secret`.
    public func signed(secret: [UInt8]) -> String {
        var payload: [UInt8] = [1]
        let seconds = UInt64(bitPattern: expiresAt.nanosecondsSinceEpoch / Timestamp.nanosecondsPerSecond)
        for shift in stride(from: 56, through: 0, by: -8) { payload.append(UInt8(truncatingIfNeeded: seconds >> UInt64(shift))) }
        payload.append(contentsOf: customer.utf8)
        let signedPart = Self.prefix + Self.base64URL(payload)
        return signedPart + "." + Self.base64URL(Self.signature(signedPart, secret: secret))
    }

    /// The token `text` stands for, when its signature is `secret`'s and it has not expired at `now`.
    public static func verify(_ text: String, secret: [UInt8], now: Timestamp) throws(PortalTokenError) -> PortalToken {
        guard !secret.isEmpty, text.hasPrefix(prefix), text.utf8.count <= 1024 else { throw .invalid }
        let parts = text.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = fromBase64URL(String(parts[0])), let signature = fromBase64URL(String(parts[1])) else {
            throw .invalid
        }
        let signedPart = prefix + String(parts[0])
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Array(signedPart.utf8), using: SymmetricKey(data: secret)) else {
            throw .invalid
        }
        guard payload.count > 9, payload[0] == 1 else { throw .invalid }
        var seconds: UInt64 = 0
        for byte in payload[1..<9] { seconds = seconds << 8 | UInt64(byte) }
        let customerBytes = payload[9...]
        guard let customer = String(validating: customerBytes, as: UTF8.self), customerBytes.count <= 255 else { throw .invalid }
        let (expiry, overflow) = Int64(bitPattern: seconds).multipliedReportingOverflow(by: Timestamp.nanosecondsPerSecond)
        guard !overflow else { throw .invalid }
        let token = PortalToken(customer: customer, expiresAt: Timestamp(nanosecondsSinceEpoch: expiry))
        guard now < token.expiresAt else { throw .expired }
        return token
    }

    static func signature(_ text: String, secret: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: secret)))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func fromBase64URL(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0.isBase64URLDigit }) else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map { Array($0) }
    }

    /// The secret in the environment variable `name`; nil when it is unset or empty.
    public static func secret(fromEnvironmentVariable name: String?) -> [UInt8]? {
        guard let name, let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return Array(value.utf8)
    }
}

/// Why a portal token was refused.
public enum PortalTokenError: Error, Sendable, Hashable {
    /// Malformed, tampered with, or signed with another secret: 401 `invalid_token`.
    case invalid
    /// Past its expiry: 401 `token_expired`.
    case expired
}

extension UInt8 {
    fileprivate var isBase64URLDigit: Bool {
        switch self {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"): true
        default: false
        }
    }
}
