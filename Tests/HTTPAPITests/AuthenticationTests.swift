import HTTPAPI
import Hummingbird
import Testing

@Suite("Authentication, health and unknown routes")
struct AuthenticationTests {
    /// Every route that needs a key, with a body where it takes one.
    static let protectedRoutes: [(HTTPRequest.Method, String, String?)] = [
        (.post, "/v1/events", "[]"),
        (.get, "/v1/customers/cus_42/usage", nil),
        (.get, "/v1/customers/cus_42/estimate", nil),
        (.get, "/v1/customers/cus_42/limits", nil),
        (.post, "/v1/customers/cus_42/limits", #"{"amount":"5","action":"warning"}"#),
        (.delete, "/v1/customers/cus_42/limits/cus_42-calls", nil),
        (.get, "/v1/customers/cus_42/entitlements/api_calls", nil),
        (.get, "/v1/alerts", nil),
        (.get, "/metrics", nil),
        (.get, "/v1/no/such/route", nil),
    ]

    @Test("GET /healthz answers without a key")
    func healthWithoutKey() async throws {
        try await withTestServer { server in
            let response = try await server.get("/healthz", key: nil)
            #expect(response.status == 200)
            #expect(response.body == #"{"status":"ok"}"#)
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }

    @Test("Every other route answers 401 missing_api_key without a key, and changes nothing")
    func missingKey() async throws {
        try await withTestServer { server in
            for (method, path, body) in Self.protectedRoutes {
                let response = try await server.send(method, path, body: body, key: nil)
                #expect(response.status == 401, "\(method) \(path)")
                #expect(try response.errorCode() == "missing_api_key", "\(method) \(path)")
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            }
            // Neither the POSTed limit nor the DELETE took effect.
            let limits = try await server.get("/v1/customers/cus_42/limits")
            #expect(limits.status == 200)
            #expect(try server.store.storedLimits().isEmpty)
            #expect(limits.body.contains(#""id":"cus_42-calls""#))
        }
    }

    @Test("A wrong key, a key for another scheme and an empty bearer are refused")
    func wrongKey() async throws {
        try await withTestServer { server in
            for (method, path, body) in Self.protectedRoutes {
                let response = try await server.send(method, path, body: body, key: "test-key-2")
                #expect(response.status == 401, "\(method) \(path)")
                #expect(try response.errorCode() == "invalid_api_key", "\(method) \(path)")
            }
            var headers: HTTPFields = [.authorization: "Basic dGVzdC1rZXktMQ=="]
            var response = try await server.client.execute(.init("/v1/alerts", method: .get, headers: headers))
            #expect(response.status.code == 401)
            headers = [.authorization: "Bearer "]
            response = try await server.client.execute(.init("/v1/alerts", method: .get, headers: headers))
            #expect(response.status.code == 401)
            // The scheme is case-insensitive, as HTTP says.
            headers = [.authorization: "bearer \(testAPIKey)"]
            response = try await server.client.execute(.init("/v1/alerts", method: .get, headers: headers))
            #expect(response.status.code == 200)
        }
    }

    @Test("Without configured keys every protected route is refused, and the message says what to configure")
    func noKeysConfigured() async throws {
        try await withTestServer(config: testConfig(apiKeys: [])) { server in
            let response = try await server.get("/v1/alerts")
            #expect(response.status == 401)
            #expect(try response.errorCode() == "invalid_api_key")
            #expect(response.body.contains("http.api_keys_sha256"))
            #expect(try await server.get("/healthz", key: nil).status == 200)
        }
    }

    @Test("Configured digests in upper case are accepted too; malformed ones are ignored")
    func digestCase() async throws {
        try await withTestServer(config: testConfig(apiKeys: ["not-hex", testAPIKeyDigest.uppercased()])) { server in
            let accepted = try await server.get("/v1/alerts")
            #expect(accepted.status == 200)
            let refused = try await server.get("/v1/alerts", key: "not-hex")
            #expect(refused.status == 401)
        }
    }

    @Test("Unknown routes and methods answer 404 not_found in the JSON error shape")
    func unknownRoute() async throws {
        try await withTestServer { server in
            for (method, path) in [(HTTPRequest.Method.get, "/v1/nothing"), (.get, "/"), (.put, "/v1/events"),
                                   (.get, "/v1/customers/cus_42/nothing"), (.post, "/v1/alerts")] {
                let response = try await server.send(method, path)
                #expect(response.status == 404, "\(method) \(path)")
                #expect(try response.errorCode() == "not_found", "\(method) \(path)")
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            }
        }
    }
}
