import Foundation
import HTTPAPI
import Hummingbird
import Metering
import TallyConfiguration
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Scoped API keys (ingest, read, admin), the legacy full-access digests, and customer portal tokens.
@Suite("Scoped keys and portal tokens")
struct ScopesAndTokensTests {
    static let secretVariable = "TALLY_TEST_PORTAL_SECRET"
    static let secret = "portal-secret-for-tests"
    static let keys = ["ingest": "key-ingest", "read": "key-read", "admin": "key-admin"]

    static func config(portal: Bool = true) -> TallyConfig {
        var config = testConfig()
        config.http.apiKeys = keys.map { scope, key in
            APIKey(name: "\(scope)-key", sha256: HTTPAPIServer.apiKeyDigest(of: key), scopes: [APIScope(rawValue: scope)!])
        }
        config.http.portalSecretEnvironmentVariable = portal ? secretVariable : nil
        return config
    }

    /// Every route the server has, with the scope it needs.
    static let routes: [(HTTPRequest.Method, String, String?, APIScope)] = [
        (.get, "/metrics", nil, .read),
        (.post, "/v1/events", #"[{"id":"s1","customer":"cus_42","meter":"api_calls"}]"#, .ingest),
        (.get, "/v1/customers", nil, .read),
        (.get, "/v1/customers/cus_42", nil, .read),
        (.put, "/v1/customers/cus_42/plan", #"{"plan":"starter"}"#, .admin),
        (.get, "/v1/plans", nil, .read),
        (.get, "/v1/plans/starter", nil, .read),
        (.get, "/v1/customers/cus_42/usage", nil, .read),
        (.get, "/v1/customers/cus_42/estimate", nil, .read),
        (.get, "/v1/customers/cus_42/limits", nil, .read),
        (.post, "/v1/customers/cus_42/limits", #"{"amount":"5","action":"warning"}"#, .admin),
        (.delete, "/v1/customers/cus_42/limits/nothing", nil, .admin),
        (.get, "/v1/customers/cus_42/entitlements/api_calls", nil, .read),
        (.get, "/v1/alerts", nil, .read),
        (.get, "/v1/meters/api_calls/usage?from=2026-01-01&to=2026-01-02&window=day", nil, .read),
        (.post, "/v1/customers/cus_42/portal_tokens", nil, .admin),
    ]

    @Test("each scope against every route: 403 forbidden exactly where the scope is missing, 401 without a valid key")
    func scopeTable() async throws {
        setenv(Self.secretVariable, Self.secret, 1)
        try await withTestServer(config: Self.config()) { server in
            for (method, path, body, needed) in Self.routes {
                for (scope, key) in Self.keys {
                    let response = try await server.send(method, path, body: body, key: key)
                    let allowed = scope == "admin" || scope == needed.rawValue
                    if allowed {
                        #expect(response.status != 401 && response.status != 403, "\(scope) \(method) \(path): \(response.status) \(response.body)")
                    } else {
                        #expect(response.status == 403, "\(scope) \(method) \(path): \(response.status)")
                        #expect(try response.errorCode() == "forbidden")
                        #expect(response.body.contains("\(scope)-key") && response.body.contains(needed.rawValue))
                    }
                }
                // The legacy api_keys_sha256 key can do everything.
                let legacy = try await server.send(method, path, body: body, key: testAPIKey)
                #expect(legacy.status != 401 && legacy.status != 403, "legacy \(method) \(path): \(legacy.status)")
                let none = try await server.send(method, path, body: body, key: nil)
                #expect(none.status == 401)
                #expect(try none.errorCode() == "missing_api_key")
                let unknown = try await server.send(method, path, body: body, key: "key-nobody")
                #expect(unknown.status == 401)
                #expect(try unknown.errorCode() == "invalid_api_key")
            }
            // /healthz and /openapi.json need no key.
            #expect(try await server.get("/healthz", key: nil).status == 200)
            let document = try await server.get("/openapi.json", key: nil)
            #expect(document.status == 200)
            #expect(try document.object()["openapi"] as? String == "3.1.0")
        }
    }

    @Test("portal tokens: read their customer's usage, estimate, limits and entitlements, and nothing else")
    func portalTokens() async throws {
        setenv(Self.secretVariable, Self.secret, 1)
        try await withTestServer(config: Self.config()) { server in
            _ = try await server.postEvents([event("p1"), event("p2", customer: "cus_other")])
            let minted = try await server.send(.post, "/v1/customers/cus_42/portal_tokens", body: #"{"ttl":"2h"}"#, key: "key-admin")
            #expect(minted.status == 201, "\(minted.body)")
            let object = try minted.object()
            let token = try #require(object["token"] as? String)
            #expect(object["customer"] as? String == "cus_42")
            let expiresText = try #require(object["expires_at"] as? String)
            let expires = try #require(Timestamp.parseRFC3339(expiresText))
            #expect(abs(expires.nanosecondsSinceEpoch - Timestamp.now().nanosecondsSinceEpoch - 7_200 * Timestamp.nanosecondsPerSecond) < 10 * Timestamp.nanosecondsPerSecond)

            for path in ["/v1/customers/cus_42/usage", "/v1/customers/cus_42/estimate", "/v1/customers/cus_42/limits",
                         "/v1/customers/cus_42/entitlements/api_calls"] {
                #expect(try await server.get(path, key: token).status == 200, "\(path)")
                #expect(try await server.get(path + (path.contains("?") ? "&" : "?") + "token=\(token)", key: nil).status == 200, "\(path)?token=")
            }
            for path in ["/v1/customers/cus_other/usage", "/v1/customers/cus_42", "/v1/customers", "/v1/alerts", "/metrics",
                         "/v1/plans", "/v1/meters/api_calls/usage?from=2026-01-01&to=2026-01-02&window=day"] {
                let response = try await server.get(path, key: token)
                #expect(response.status == 403, "\(path): \(response.status)")
                #expect(try response.errorCode() == "forbidden")
            }
            let post = try await server.post("/v1/customers/cus_42/limits", #"{"amount":"5","action":"warning"}"#, key: token)
            #expect(post.status == 403)
            let events = try await server.post("/v1/events", "[" + event("p3") + "]", key: token)
            #expect(events.status == 403)

            // Tampered: a byte of the payload, or of the signature.
            let parts = token.split(separator: ".").map(String.init)
            func flip(_ text: String) -> String {
                var characters = Array(text)
                characters[characters.count / 2] = characters[characters.count / 2] == "A" ? "B" : "A"
                return String(characters)
            }
            for tampered in ["\(parts[0]).\(flip(parts[1])).\(parts[2])", "\(parts[0]).\(parts[1]).\(flip(parts[2]))", "tp1.garbage", "tp1.."] {
                let response = try await server.get("/v1/customers/cus_42/usage", key: tampered)
                #expect(response.status == 401, "\(tampered)")
                #expect(try response.errorCode() == "invalid_token")
            }
            // Expired, and signed with another secret.
            let expired = PortalToken(customer: "cus_42", expiresAt: Timestamp.now().adding(nanoseconds: -Timestamp.nanosecondsPerSecond))
                .signed(secret: Array(Self.secret.utf8))
            let late = try await server.get("/v1/customers/cus_42/usage", key: expired)
            #expect(late.status == 401)
            #expect(try late.errorCode() == "token_expired")
            let foreign = PortalToken(customer: "cus_42", expiresAt: Timestamp.now().adding(nanoseconds: 3_600 * Timestamp.nanosecondsPerSecond))
                .signed(secret: Array("another secret".utf8))
            #expect(try await server.get("/v1/customers/cus_42/usage", key: foreign).errorCode() == "invalid_token")

            for body in [#"{"ttl":"10s"}"#, #"{"ttl":"31d"}"#, #"{"ttl":5}"#, #"{"other":1}"#] {
                let bad = try await server.send(.post, "/v1/customers/cus_42/portal_tokens", body: body, key: "key-admin")
                #expect(bad.status == 422, "\(body)")
            }
            #expect(try await server.send(.post, "/v1/customers/cus_never/portal_tokens", body: nil, key: "key-admin").status == 404)
        }
    }

    @Test("without a portal secret: minting is 503 portal_disabled and every token is 401")
    func noSecret() async throws {
        try await withTestServer(config: Self.config(portal: false)) { server in
            let minted = try await server.send(.post, "/v1/customers/cus_42/portal_tokens", body: nil, key: "key-admin")
            #expect(minted.status == 503)
            #expect(try minted.errorCode() == "portal_disabled")
            let token = PortalToken(customer: "cus_42", expiresAt: Timestamp.now().adding(nanoseconds: 3_600 * Timestamp.nanosecondsPerSecond))
                .signed(secret: Array(Self.secret.utf8))
            let response = try await server.get("/v1/customers/cus_42/usage", key: token)
            #expect(response.status == 401)
            #expect(try response.errorCode() == "invalid_token")
        }
    }

    @Test("a token round-trips: verify gives back its customer and expiry; unicode ids survive")
    func roundTrip() throws {
        let secret = Array("s".utf8)
        let expiry = Timestamp.now().adding(nanoseconds: 60 * Timestamp.nanosecondsPerSecond)
        for customer in ["cus_42", "équipe/β", String(repeating: "x", count: 255)] {
            let token = PortalToken(customer: customer, expiresAt: expiry)
            #expect(try PortalToken.verify(token.signed(secret: secret), secret: secret, now: .now()) == token)
        }
        #expect(throws: PortalTokenError.invalid) { try PortalToken.verify("not a token", secret: secret, now: .now()) }
    }
}
