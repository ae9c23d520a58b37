import Foundation
import HTTPAPI
import Metering
import Testing

@Suite("POST /v1/events")
struct EventsRouteTests {
    @Test("Results come in order, as the socket's response objects: accepted, duplicate, rejected")
    func mixedResults() async throws {
        try await withTestServer { server in
            let body = "[" + [
                event("e1", customer: "cus_a"),
                event("e1", customer: "cus_a"),                       // same content: duplicate
                event("e1", customer: "cus_a", value: "2"),           // same identity, other content
                event("e1", customer: "cus_b"),                       // another customer: its own identity
                #"{"id":"e2","customer":"cus_a","meter":"nope"}"#,
                #"{"id":"e3","customer":"cus_a","meter":"api_calls","value":tru}"#,
                "42",
                #"{"id":"e4","customer":"cus_a","meter":"tokens","value":"0.1","properties":{"model":"a]b}\"[{"}}"#,
                #"{"customer":"cus_a","meter":"api_calls"}"#,
            ].joined(separator: " ,\n ") + "]"
            let response = try await server.post("/v1/events", body)
            #expect(response.status == 200)
            let expectedPrefix = #"{"results":[{"status":"accepted"},{"status":"duplicate"},{"status":"rejected","error":{"code":"idempotency_conflict","message":"#
            #expect(response.body.hasPrefix(expectedPrefix), "\(response.body)")
            let results = try #require(try response.object()["results"] as? [[String: Any]])
            #expect(statuses(results) == ["accepted", "duplicate", "rejected", "accepted", "rejected", "rejected", "rejected", "accepted", "rejected"])
            let codes = results.map { ($0["error"] as? [String: Any])?["code"] as? String }
            #expect(codes == [nil, nil, "idempotency_conflict", nil, "unknown_meter", "invalid_json", "invalid_json", nil, "missing_field"])
            let fields = results.map { ($0["error"] as? [String: Any])?["field"] as? String }
            #expect(fields[2] == "id")
            #expect(fields[4] == "meter")
            #expect(fields[8] == "id")
            // Accepted events are counted exactly once.
            let usage = try await server.get("/v1/customers/cus_a/usage")
            #expect(usage.body.contains(#"{"meter":"api_calls","aggregation":"count","group":{},"quantity":"1"}"#), "\(usage.body)")
            #expect(usage.body.contains(#"{"meter":"tokens","aggregation":"sum","group":{"model":"a]b}\"[{"},"quantity":"0.1"}"#), "\(usage.body)")
        }
    }

    @Test("Resending a batch answers duplicate for every event and counts nothing more")
    func resend() async throws {
        try await withTestServer { server in
            let events = (1...10).map { event("r\($0)", customer: "cus_r", meter: "tokens", value: "0.1", properties: #"{"model":"m"}"#) }
            #expect(statuses(try await server.postEvents(events)) == Array(repeating: "accepted", count: 10))
            #expect(statuses(try await server.postEvents(events)) == Array(repeating: "duplicate", count: 10))
            let entitlement = try await server.get("/v1/customers/cus_r/entitlements/tokens").object()
            #expect(entitlement["used"] as? String == "1")
        }
    }

    @Test("An empty array answers no results")
    func emptyArray() async throws {
        try await withTestServer { server in
            let response = try await server.post("/v1/events", " [ ] ")
            #expect(response.status == 200)
            #expect(response.body == #"{"results":[]}"#)
        }
    }

    @Test("A body that is neither an array nor one event object is 400 invalid_body; broken JSON is 400 invalid_json; nothing is recorded")
    func badBodies() async throws {
        try await withTestServer { server in
            for body in ["", "null", "\"[]\""] {
                let response = try await server.post("/v1/events", body)
                #expect(response.status == 400, "\(body)")
                #expect(try response.errorCode() == "invalid_body", "\(body)")
            }
            let broken = [
                "[" + event("x1", customer: "cus_x"),                                  // unterminated
                "[" + event("x2", customer: "cus_x") + ",]",                           // trailing comma
                "[" + event("x3", customer: "cus_x") + ",," + event("x4", customer: "cus_x") + "]",
                "[" + event("x5", customer: "cus_x") + "] []",                         // bytes after
                #"[{"id":"x6","customer":"cus_x","meter":"api_calls"]"#,               // mismatched
                #"[{"id":"x7,"customer":"cus_x","meter":"api_calls"}]"#,                // open string
            ]
            for body in broken {
                let response = try await server.post("/v1/events", body)
                #expect(response.status == 400, "\(body)")
                #expect(try response.errorCode() == "invalid_json", "\(body)")
            }
            #expect(try await server.get("/v1/customers/cus_x/usage").status == 404)
            #expect(try server.store.statistics().events == 0)
        }
    }

    @Test("1000 events are taken; 1001 are refused with 422 too_many_events and none is recorded")
    func eventLimit() async throws {
        try await withTestServer { server in
            let thousand = (1...1000).map { event("k\($0)", customer: "cus_k") }
            let results = try await server.postEvents(thousand)
            #expect(results.count == 1000)
            #expect(Set(statuses(results)) == ["accepted"])
            let tooMany = (1...1001).map { event("m\($0)", customer: "cus_m") }
            let response = try await server.post("/v1/events", "[" + tooMany.joined(separator: ",") + "]")
            #expect(response.status == 422)
            #expect(try response.errorCode() == "too_many_events")
            #expect(try server.store.statistics().events == 1000)
            let used = try await server.get("/v1/customers/cus_k/entitlements/api_calls").object()["used"] as? String
            #expect(used == "1000")
        }
    }

    @Test("An event longer than max_line_bytes is rejected line_too_long; its neighbours are not harmed")
    func longEvent() async throws {
        try await withTestServer(config: testConfig(maxLineBytes: 1024)) { server in
            let long = event("long", customer: "cus_l", properties: #"{"note":""# + String(repeating: "x", count: 1100) + #""}"#)
            let results = try await server.postEvents([event("l1", customer: "cus_l"), long, event("l2", customer: "cus_l")])
            #expect(statuses(results) == ["accepted", "rejected", "accepted"])
            #expect((results[1]["error"] as? [String: Any])?["code"] as? String == "line_too_long")
        }
    }

    @Test("A body larger than 1000 events of max_line_bytes is 413 body_too_large")
    func bodyTooLarge() async throws {
        try await withTestServer(config: testConfig(maxLineBytes: 1024)) { server in
            let padding = String(repeating: " ", count: 1100 * 1024)
            let response = try await server.post("/v1/events", "[" + event("big", customer: "cus_big") + padding + "]")
            #expect(response.status == 413)
            #expect(try response.errorCode() == "body_too_large")
            #expect(try server.store.statistics().events == 0)
        }
    }

    @Test("Events of a customer past a disable limit carry \"blocked\":true, as on the socket")
    func blocked() async throws {
        try await withTestServer { server in
            let first = try await server.post("/v1/events", "[" + (1...4).map { event("b\($0)") }.joined(separator: ",") + "]")
            #expect(first.body == #"{"results":[{"status":"accepted"},{"status":"accepted"},{"status":"accepted"},{"status":"accepted"}]}"#)
            let second = try await server.post("/v1/events", "[" + [event("b5"), event("b5"), event("other", customer: "cus_free")].joined(separator: ",") + "]")
            // The answer names the blocking limit (cus_42's 5 API calls), the usage and when it resets.
            let resets = server.config.billing.period.interval(containing: .now()).end.rfc3339
            let limit = #""limit":{"id":"cus_42-calls","meter":"api_calls","used":"5","limit":"5","resets_at":""# + resets + #""}"#
            #expect(second.body == #"{"results":[{"status":"accepted","blocked":true,"# + limit + #"},{"status":"duplicate","blocked":true,"# + limit + #"},{"status":"accepted"}]}"#)
        }
    }

    @Test("Concurrent requests from several connections are each answered after their commit; usage reflects every accepted event")
    func concurrentPosts() async throws {
        try await withTestServer { server in
            let accepted = try await withThrowingTaskGroup(of: Int.self) { group in
                for client in 0..<4 {
                    group.addTask {
                        try await server.withAnotherClient { connection in
                            var accepted = 0
                            for request in 0..<5 {
                                let events = (0..<50).map { index in
                                    event("c\(client)-\(request)-\(index % 40)", customer: "cus_c", meter: "tokens", value: "0.01",
                                          properties: #"{"model":"m\#(client % 2)"}"#)
                                }
                                let results = try await connection.postEvents(events)
                                accepted += statuses(results).filter { $0 == "accepted" }.count
                            }
                            return accepted
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(accepted == 4 * 5 * 40)
            let entitlement = try await server.get("/v1/customers/cus_c/entitlements/tokens").object()
            #expect(entitlement["used"] as? String == "8")   // 800 × 0.01, summed over both groups
            let usage = try await server.get("/v1/customers/cus_c/usage").object()
            let meters = try #require(usage["meters"] as? [[String: Any]])
            let tokens = meters.filter { $0["meter"] as? String == "tokens" }
            #expect(tokens.map { $0["quantity"] as? String } == ["4", "4"])
        }
    }
}
