import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Alerts delivered from the durable outbox, and the HTTP API, through the real daemon.
@Suite("Alert delivery and HTTP through the daemon", .serialized)
struct AlertsAndHTTPTests {
    static func config(webhookPort: Int, secretVariable: String) -> String {
        """
        store:
          path: data
        ingest:
          socket: tally.sock
        meters:
          - { code: api_calls, aggregation: count }
        plans:
          - code: basic
            currency: USD
            prices:
              - { meter: api_calls, model: per_unit, unit_amount: "0.5" }
        default_plan: basic
        limits:
          - { customer: cus_w, meter: api_calls, quantity: 3, action: warning }
        alerts:
          log: alerts.ndjson
          webhooks:
            - { url: "http://127.0.0.1:\(webhookPort)/hooks/tally", secret_env: \(secretVariable) }
        http:
          api_keys_sha256: ["6c0d7c4e1d3f0f6f0e5a1a1b4c9f6d2f4a9e8b7c6d5e4f3a2b1c0d9e8f7a6b5c"]
        """
    }

    @Test("SIGKILL after the commit, before the webhook delivered: after restart it is delivered with the same id, fired once")
    func webhookAfterCrash() throws {
        let receiver = try LoopbackReceiver(status: 500)
        defer { receiver.stop() }
        let variable = "TALLY_TEST_SECRET_\(UUID().uuidString.prefix(8))"
        setenv(variable, "whsec_test", 1)
        let daemon = try DaemonHarness(config: Self.config(webhookPort: receiver.port, secretVariable: variable))
        try daemon.start()
        let lines = (0..<3).map { eventLine(id: "w\($0)", customer: "cus_w") }
        #expect(try daemon.exchange(lines.joined(separator: "\n") + "\n").allSatisfy { $0 == acceptedLine })
        // The receiver fails: the dispatcher keeps retrying. Kill the daemon mid-retry.
        #expect(receiver.wait { $0.count >= 1 })
        daemon.killHard()
        let attempted = try #require(receiver.received.first)
        #expect(attempted.headers["tally-signature"]?.hasPrefix("t=") == true)
        #expect(attempted.headers["tally-signature"]?.contains(",v1=") == true)

        receiver.setStatus(200)
        try daemon.start()
        #expect(receiver.wait { $0.contains { $0.status == 200 } })
        let delivered = try #require(receiver.received.first { $0.status == 200 })
        struct Payload: Decodable { var id: String; var customer: String; var percent: String }
        let payload = try JSONDecoder().decode(Payload.self, from: Data(delivered.body.utf8))
        let first = try JSONDecoder().decode(Payload.self, from: Data(attempted.body.utf8))
        #expect(payload.id == first.id)
        #expect(delivered.headers["tally-alert-id"] == payload.id)
        #expect(payload.customer == "cus_w" && payload.percent == "100")

        // Fired once: one alert in the store and one line in the alert log, whatever was retried.
        let alerts = try daemon.tally(["alerts", "--config", daemon.configPath, "--store", daemon.storePath])
        #expect(alerts.output.split(separator: "\n").count == 1)
        #expect(try daemon.exchange(eventLine(id: "w3", customer: "cus_w") + "\n") == [acceptedLine])
        let log = try String(contentsOfFile: daemon.directory + "/alerts.ndjson", encoding: .utf8)
        #expect(log.split(separator: "\n").count == 1)
        #expect(log.contains(payload.id))
        #expect(daemon.terminate() == 0)
    }

    @Test("tally serve --http: events in, usage and entitlements out, keys required")
    func httpAPI() throws {
        // The config holds the SHA-256 of the key, as `printf %s test-key | sha256sum` prints it.
        let key = "test-key"
        let digest = "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef"  // sha256("test-key")
        let port = try freePort()
        let config = Self.config(webhookPort: 9, secretVariable: "UNSET_\(UUID().uuidString.prefix(6))")
            .replacingOccurrences(of: "6c0d7c4e1d3f0f6f0e5a1a1b4c9f6d2f4a9e8b7c6d5e4f3a2b1c0d9e8f7a6b5c", with: digest)
            .replacingOccurrences(of: "          webhooks:\n            - { url: \"http://127.0.0.1:9/hooks/tally\", secret_env: ", with: "          webhooks: []\n#")
        let daemon = try DaemonHarness(config: config)
        try daemon.start(extraArguments: ["--http", "127.0.0.1:\(port)"])
        #expect(daemon.waitForHTTP(port: port) == 200)
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers/cus_h/usage").status == 401)
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers/cus_h/usage", key: "wrong").status == 401)
        let posted = try httpRequest(port: port, method: "POST", path: "/v1/events", key: key, body: """
            [{"id":"h1","customer":"cus_h","meter":"api_calls"},{"id":"h1","customer":"cus_h","meter":"api_calls"},{"id":"h2","customer":"cus_h","meter":"nope"}]
            """)
        #expect(posted.status == 200)
        #expect(posted.body.contains(#"{"status":"accepted"},{"status":"duplicate"},{"status":"rejected","error":{"code":"unknown_meter""#))
        // The socket and HTTP share one writer: the same identity is a duplicate on the socket.
        #expect(try daemon.exchange(eventLine(id: "h1", customer: "cus_h") + "\n") == [duplicateLine])
        let usage = try httpRequest(port: port, method: "GET", path: "/v1/customers/cus_h/usage", key: key)
        #expect(usage.status == 200)
        #expect(usage.body.contains(#""quantity":"1""#))
        let entitlement = try httpRequest(port: port, method: "GET", path: "/v1/customers/cus_h/entitlements/api_calls", key: key)
        #expect(entitlement.status == 200)
        #expect(entitlement.body.contains(#""has_access":true"#))
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers/cus_h/entitlements/nope", key: key).status == 404)
        let metrics = try httpRequest(port: port, method: "GET", path: "/metrics", key: key)
        #expect(metrics.body.contains("tally_events_total"))
        #expect(daemon.terminate() == 0)
    }
}
