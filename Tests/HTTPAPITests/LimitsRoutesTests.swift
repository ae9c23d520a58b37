import HTTPAPI
import Metering
import Storage
import Testing

@Suite("Limit routes")
struct LimitsRoutesTests {
    @Test("GET limits lists the customer's own limits, then its plan's, with their source")
    func list() async throws {
        try await withTestServer { server in
            let response = try await server.get("/v1/customers/cus_42/limits")
            #expect(response.status == 200)
            // The list convention's keys, then the keys this route had before it (the same page).
            let limits = #"["#
                + #"{"id":"cus_42-calls","scope":{"customer":"cus_42"},"meter":"api_calls","quantity":"5","action":"disable","notify_at":[20,40,60,80,100],"source":"config"},"#
                + #"{"id":"starter-spend","scope":{"plan":"starter"},"meter":null,"amount":"100","action":"warning","notify_at":[50,100],"source":"config"}]"#
            #expect(response.body == #"{"data":"# + limits + #","has_more":false,"next_cursor":null,"customer":"cus_42","limits":"# + limits + "}")
            // cus_amount's own amount limit replaces the plan's amount limit.
            let amount = try await server.get("/v1/customers/cus_amount/limits").object()
            let ids = try #require(amount["limits"] as? [[String: Any]]).map { $0["id"] as? String }
            #expect(ids == ["cus_amount-spend"])
            let unknown = try await server.get("/v1/customers/cus_nobody/limits")
            #expect(unknown.status == 404)
            #expect(try unknown.errorCode() == "unknown_customer")
        }
    }

    @Test("POST limits stores a customer limit (201), which GET lists and ingest enforces")
    func add() async throws {
        try await withTestServer { server in
            let created = try await server.post("/v1/customers/cus_new/limits",
                                                #"{"id":"new-calls","meter":"api_calls","quantity":2,"action":"disable","notify_at":[50,100]}"#)
            #expect(created.status == 201)
            #expect(created.body == #"{"id":"new-calls","scope":{"customer":"cus_new"},"meter":"api_calls","quantity":"2","action":"disable","notify_at":[50,100],"source":"stored"}"#)
            #expect(try server.store.storedLimits() == [
                UsageLimit(id: "new-calls", scope: .customer("cus_new"), threshold: .quantity(meter: "api_calls", ExactDecimal("2")!),
                           action: .disable, notifyAt: [50, 100]),
            ])
            // A limit makes the customer known.
            let listed = try await server.get("/v1/customers/cus_new/limits").object()
            let limits = try #require(listed["limits"] as? [[String: Any]])
            #expect(limits.map { $0["id"] as? String } == ["new-calls", "starter-spend"])
            #expect(limits.map { $0["source"] as? String } == ["stored", "config"])
            // Ingest picks it up: the second call blocks the customer.
            let first = try await server.postEvents([event("n1", customer: "cus_new")])
            #expect(first.map { $0["blocked"] as? Bool } == [nil])
            let second = try await server.postEvents([event("n2", customer: "cus_new")])
            #expect(second.map { $0["blocked"] as? Bool } == [true])
            let entitlement = try await server.get("/v1/customers/cus_new/entitlements/api_calls").object()
            #expect(entitlement["has_access"] as? Bool == false)
            #expect(entitlement["limit"] as? String == "2")
        }
    }

    @Test("Without an id the limit gets the derived one; notify_at defaults to [100]; a decimal string amount is exact")
    func derivedID() async throws {
        try await withTestServer { server in
            let created = try await server.post("/v1/customers/cus_d/limits", #"{"amount":"0.000000000001","action":"warning"}"#)
            #expect(created.status == 201)
            #expect(created.body == #"{"id":"customer:cus_d:amount","scope":{"customer":"cus_d"},"meter":null,"amount":"0.000000000001","action":"warning","notify_at":[100],"source":"stored"}"#)
            let again = try await server.post("/v1/customers/cus_d/limits", #"{"amount":"5","action":"disable"}"#)
            #expect(again.status == 422)
            #expect(try again.errorCode() == "limit_exists")
        }
    }

    @Test("An id that a config or stored limit has is 422 limit_exists")
    func existingID() async throws {
        try await withTestServer { server in
            for id in ["cus_42-calls", "starter-spend"] {
                let response = try await server.post("/v1/customers/cus_x/limits", #"{"id":"\#(id)","amount":"5","action":"warning"}"#)
                #expect(response.status == 422)
                #expect(try response.errorCode() == "limit_exists")
            }
            #expect(try await server.post("/v1/customers/cus_x/limits", #"{"id":"mine","amount":"5","action":"warning"}"#).status == 201)
            let other = try await server.post("/v1/customers/cus_y/limits", #"{"id":"mine","amount":"7","action":"warning"}"#)
            #expect(other.status == 422)
            #expect(try other.errorCode() == "limit_exists")
            #expect(try server.store.storedLimits().count == 1)
        }
    }

    @Test("Invalid limit bodies are 422 with a code, malformed JSON 400, and nothing is stored",
          arguments: [
              (#"{"amount":"5","meter":"api_calls","quantity":3,"action":"warning"}"#, "invalid_field"),
              (#"{"action":"warning"}"#, "missing_field"),
              (#"{"meter":"api_calls","action":"warning"}"#, "missing_field"),
              (#"{"quantity":3,"action":"warning"}"#, "missing_field"),
              (#"{"meter":"gpu","quantity":3,"action":"warning"}"#, "unknown_meter"),
              (#"{"meter":7,"quantity":3,"action":"warning"}"#, "invalid_field"),
              (#"{"amount":"-5","action":"warning"}"#, "invalid_value"),
              (#"{"amount":0,"action":"warning"}"#, "invalid_value"),
              (#"{"amount":"five","action":"warning"}"#, "invalid_value"),
              (#"{"amount":true,"action":"warning"}"#, "invalid_value"),
              (#"{"amount":"0.0000000000001","action":"warning"}"#, "invalid_value"),
              (#"{"amount":"5"}"#, "missing_field"),
              (#"{"amount":"5","action":"block"}"#, "invalid_field"),
              (#"{"amount":"5","action":"warning","notify_at":[80,50]}"#, "invalid_field"),
              (#"{"amount":"5","action":"warning","notify_at":[]}"#, "invalid_field"),
              (#"{"amount":"5","action":"warning","notify_at":[0]}"#, "invalid_field"),
              (#"{"amount":"5","action":"warning","notify_at":[50.5]}"#, "invalid_field"),
              (#"{"amount":"5","action":"warning","notify_at":"100"}"#, "invalid_field"),
              (#"{"amount":"5","action":"warning","id":""}"#, "invalid_field"),
              (#"{"amount":"5","action":"warning","id":3}"#, "invalid_field"),
              (#"{"amount":"5","action":"warning","colour":"red"}"#, "invalid_field"),
              (#"{"amount":"5","amount":"6","action":"warning"}"#, "invalid_field"),
          ])
    func invalid(body: String, code: String) async throws {
        try await withTestServer { server in
            let response = try await server.post("/v1/customers/cus_v/limits", body)
            #expect(response.status == 422)
            #expect(try response.errorCode() == code)
            #expect(try server.store.storedLimits().isEmpty)
        }
    }

    @Test("Malformed limit JSON is 400")
    func malformed() async throws {
        try await withTestServer { server in
            for body in [#"{"amount":"5","action":"warning""#, "", #"{"amount":5.,"action":"warning"}"#, "[1]", #""x""#] {
                let response = try await server.post("/v1/customers/cus_v/limits", body)
                #expect(response.status == 400, "\(body)")
                #expect(["invalid_json", "invalid_body"].contains(try response.errorCode()), "\(body)")
            }
            #expect(try server.store.storedLimits().isEmpty)
        }
    }

    @Test("DELETE removes a stored customer limit; a second DELETE is 404; config limits are 422")
    func delete() async throws {
        try await withTestServer { server in
            #expect(try await server.post("/v1/customers/cus_42/limits", #"{"id":"temp","amount":"9","action":"warning"}"#).status == 201)
            let removed = try await server.delete("/v1/customers/cus_42/limits/temp")
            #expect(removed.status == 200)
            #expect(try removed.object()["id"] as? String == "temp")
            #expect(try server.store.storedLimits().isEmpty)
            let again = try await server.delete("/v1/customers/cus_42/limits/temp")
            #expect(again.status == 404)
            #expect(try again.errorCode() == "unknown_limit")

            for id in ["cus_42-calls", "starter-spend"] {
                let config = try await server.delete("/v1/customers/cus_42/limits/\(id)")
                #expect(config.status == 422, "\(id)")
                #expect(try config.errorCode() == "config_limit")
                #expect(config.body.contains("config"))
            }
            // Another customer's limit is not this customer's.
            #expect(try await server.post("/v1/customers/cus_other/limits", #"{"id":"theirs","amount":"9","action":"warning"}"#).status == 201)
            let foreign = try await server.delete("/v1/customers/cus_42/limits/theirs")
            #expect(foreign.status == 404)
            #expect(try server.store.storedLimits().map(\.id) == ["theirs"])
            // Ids are percent-decoded.
            #expect(try await server.post("/v1/customers/cus_42/limits", #"{"id":"a/b c","amount":"9","action":"warning"}"#).status == 201)
            #expect(try await server.delete("/v1/customers/cus_42/limits/a%2Fb%20c").status == 200)
        }
    }

    @Test("A stored plan limit cannot be deleted through one customer")
    func planLimit() async throws {
        try await withTestServer { server in
            try server.store.addLimit(UsageLimit(id: "plan-calls", scope: .plan("starter"),
                                                 threshold: .quantity(meter: "tokens", ExactDecimal("10")!), action: .warning))
            let response = try await server.delete("/v1/customers/cus_42/limits/plan-calls")
            #expect(response.status == 422)
            #expect(try response.errorCode() == "plan_limit")
            #expect(try server.store.storedLimits().count == 1)
        }
    }
}
