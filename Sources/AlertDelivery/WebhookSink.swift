import AsyncHTTPClient
import Crypto
public import Foundation
import Logging
import Metering
import Storage

/// POSTs each alert to one URL, in order, one at a time, retried by the delivery loop until a 2xx.
final class WebhookSink: AlertSink {
    /// How long one attempt may take, connecting included.
    static let attemptTimeout: Int64 = 10
    /// At most this much of a response body is read (and ignored).
    static let maximumResponseBody = 64 * 1024

    let name: String
    let url: String
    let secret: String?
    let client: HTTPClient
    let logger: Logger

    init(name: String, url: String, secret: String?, client: HTTPClient, logger: Logger) {
        self.name = name
        self.url = url
        self.secret = secret
        self.client = client
        self.logger = logger
    }

    func start(cursor: UInt64, store: TallyStore) async throws(DeliveryFailure) -> UInt64 { cursor }

    func deliver(_ alerts: [Alert], delivered: (_ count: Int, _ through: UInt64) -> Void) async throws(DeliveryFailure) {
        for alert in alerts {
            try await post(alert)
            delivered(1, alert.sequence)
        }
    }

    private func post(_ alert: Alert) async throws(DeliveryFailure) {
        if Task.isCancelled { throw DeliveryFailure("shutting down") }
        let body = Array(alert.json.utf8)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Tally-Alert-Id", value: alert.id)
        if let secret {
            let timestamp = Int(Timestamp.now().nanosecondsSinceEpoch / Timestamp.nanosecondsPerSecond)
            let signature = AlertDispatcher.signature(secret: secret, timestamp: timestamp, body: body)
            request.headers.add(name: "Tally-Signature", value: "t=\(timestamp),v1=\(signature)")
        }
        request.body = .bytes(body)
        let status: UInt
        do {
            let response = try await client.execute(request, timeout: .seconds(Self.attemptTimeout), logger: logger)
            status = response.status.code
            // Read the (ignored) answer so the connection can be reused; a huge one just closes it.
            _ = try? await response.body.collect(upTo: Self.maximumResponseBody)
        } catch {
            throw DeliveryFailure("POST \(url) failed: \(error)")
        }
        guard (200..<300).contains(status) else {
            throw DeliveryFailure("POST \(url) answered HTTP \(status); retrying until it answers 2xx")
        }
    }
}

extension AlertDispatcher {
    /// The `v1` value of the `Tally-Signature` header (Stripe's scheme): lowercase hex
    /// HMAC-SHA256 of `"<timestamp>.<body>"` keyed with the UTF-8 bytes of `secret`.
    ///
    /// A receiver splits `Tally-Signature: t=<timestamp>,v1=<hex>`, recomputes this over the raw
    /// request body, compares in constant time, and rejects timestamps too far from its clock:
    /// ```swift
    /// let expected = AlertDispatcher.signature(secret: secret, timestamp: t, body: rawBody)
    /// ```
    public static func signature(secret: String, timestamp: Int, body: some DataProtocol) -> String {
        var message = Array("\(timestamp).".utf8)
        message.append(contentsOf: body)
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in code {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
