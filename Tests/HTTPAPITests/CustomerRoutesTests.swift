import Billing
import Foundation
import HTTPAPI
import Metering
import Storage
import Testing

@Suite("Usage, estimate and entitlement routes")
struct CustomerRoutesTests {
    @Test("GET usage has the shape of `tally usage --json` and reflects every acknowledged event")
    func usage() async throws {
        try await withTestServer { server in
            _ = try await server.postEvents([
                event("u1", customer: "cus_u"), event("u2", customer: "cus_u"),
                event("u3", customer: "cus_u", meter: "tokens", value: "0.1", properties: #"{"model":"small"}"#),
                event("u4", customer: "cus_u", meter: "tokens", value: "0.2", properties: #"{"model":"large"}"#),
            ])
            let response = try await server.get("/v1/customers/cus_u/usage")
            #expect(response.status == 200)
            let period = server.config.billing.period.interval(containing: .now())
            let records = try server.store.usage(customer: "cus_u", periodStart: period.start)
            #expect(response.body == UsageReport(config: server.config, customer: "cus_u", period: period, records: records).json)
            let object = try response.object()
            #expect(object["customer"] as? String == "cus_u")
            let bounds = try #require(object["period"] as? [String: String])
            #expect(bounds == ["start": period.start.rfc3339, "end": period.end.rfc3339])
            let meters = try #require(object["meters"] as? [[String: Any]])
            #expect(meters.map { $0["meter"] as? String } == ["api_calls", "tokens", "tokens", "storage_gb"])
            #expect(meters.map { $0["quantity"] as? String } == ["2", "0.2", "0.1", "0"] || meters.map { $0["quantity"] as? String } == ["2", "0.1", "0.2", "0"])
            #expect(meters.map { $0["aggregation"] as? String } == ["count", "sum", "sum", "max"])
            #expect(meters[3]["group"] as? [String: String] == [:])
            let groups = Set(meters[1...2].compactMap { ($0["group"] as? [String: String])?["model"] })
            #expect(groups == ["small", "large"])
        }
    }

    @Test("GET usage?period= reads that period; a malformed period is 400; an unknown customer 404")
    func usagePeriods() async throws {
        try await withTestServer { server in
            _ = try await server.postEvents([event("p1", customer: "cus_p")])
            let past = try await server.get("/v1/customers/cus_p/usage?period=2020-01")
            #expect(past.status == 200)
            let object = try past.object()
            #expect((object["period"] as? [String: String])?["start"] == "2020-01-01T00:00:00Z")
            #expect((object["period"] as? [String: String])?["end"] == "2020-02-01T00:00:00Z")
            let quantities = try #require(object["meters"] as? [[String: Any]]).map { $0["quantity"] as? String }
            #expect(quantities == ["0", "0", "0"])
            let label = server.config.billing.period.interval(containing: .now()).label
            let current = try await server.get("/v1/customers/cus_p/usage?period=\(label)").object()
            #expect((current["meters"] as? [[String: Any]])?.first?["quantity"] as? String == "1")

            for bad in ["2026-13", "11-2026", "last"] {
                let response = try await server.get("/v1/customers/cus_p/usage?period=\(bad)")
                #expect(response.status == 400, "\(bad)")
                #expect(try response.errorCode() == "invalid_parameter")
            }
            let unknown = try await server.get("/v1/customers/cus_nobody/usage")
            #expect(unknown.status == 404)
            #expect(try unknown.errorCode() == "unknown_customer")
            // A customer with a plan in the config, or a limit of its own, is known before any usage.
            #expect(try await server.get("/v1/customers/cus_42/usage").status == 200)
            #expect(try await server.get("/v1/customers/cus_amount/usage").status == 200)
            let tooLong = try await server.get("/v1/customers/" + String(repeating: "c", count: 256) + "/usage")
            #expect(tooLong.status == 400)
        }
    }

    @Test("Customer ids in the path are percent-decoded")
    func percentEncodedCustomer() async throws {
        try await withTestServer { server in
            _ = try await server.postEvents([event("s1", customer: "team/a b")])
            let response = try await server.get("/v1/customers/team%2Fa%20b/usage")
            #expect(response.status == 200)
            #expect(try response.object()["customer"] as? String == "team/a b")
        }
    }

    @Test("GET estimate is StatementFormat.json of the estimate, and reflects every acknowledged event")
    func estimate() async throws {
        try await withTestServer { server in
            _ = try await server.postEvents((1...3).map { event("x\($0)", customer: "cus_e") }
                + [event("t1", customer: "cus_e", meter: "tokens", value: "1500", properties: #"{"model":"small"}"#)])
            let response = try await server.get("/v1/customers/cus_e/estimate")
            #expect(response.status == 200)
            let object = try response.object()
            #expect(object["customer"] as? String == "cus_e")
            #expect(object["currency"] as? String == "USD")
            #expect(object["total"] as? String == "4.50")            // 3 × 1 + 1500 × 0.001
            let lines = try #require(object["lines"] as? [[String: Any]])
            #expect(lines.map { $0["meter"] as? String } == ["api_calls", "tokens"])
            #expect(lines.map { $0["amount"] as? String } == ["3.00", "1.50"])
            // The credits fields came with issue 14: without grants nothing is applied and all is due.
            #expect(Set(object.keys) == ["customer", "period", "currency", "lines", "total", "projected_total",
                                         "credits_applied", "amount_due", "projected_amount_due"])
            #expect(object["credits_applied"] as? String == "0.00" && object["amount_due"] as? String == object["total"] as? String)
            let direct = try Estimator(config: server.config, resolver: PlanResolver(config: server.config, store: server.store))
                .estimate(customer: "cus_e", store: server.store)
            #expect(direct.total == ExactDecimal("4.5")!)
            #expect(response.body.hasPrefix(String(StatementFormat.json(direct).prefix(while: { $0 != "[" }))))

            let unknown = try await server.get("/v1/customers/cus_nobody/estimate")
            #expect(unknown.status == 404)
            #expect(try unknown.errorCode() == "unknown_customer")
        }
    }

    @Test("Entitlements: used sums the groups, limit and remaining follow the quantity limit, access ends at a disable limit")
    func entitlements() async throws {
        try await withTestServer { server in
            _ = try await server.postEvents((1...3).map { event("a\($0)") })
            let resetsAt = server.config.billing.period.interval(containing: .now()).end.rfc3339
            var response = try await server.get("/v1/customers/cus_42/entitlements/api_calls")
            #expect(response.status == 200)
            // `balance` (prepaid credits left) came with issue 14.
            #expect(response.body == #"{"has_access":true,"used":"3","limit":"5","remaining":"2","resets_at":"\#(resetsAt)","balance":"0.00"}"#)

            _ = try await server.postEvents((4...6).map { event("a\($0)") })
            response = try await server.get("/v1/customers/cus_42/entitlements/api_calls")
            #expect(response.body == #"{"has_access":false,"used":"6","limit":"5","remaining":"0","resets_at":"\#(resetsAt)","balance":"0.00"}"#)

            // No quantity limit on tokens: limit and remaining are null; access follows the amount limits only.
            _ = try await server.postEvents([
                event("t1", meter: "tokens", value: "0.5", properties: #"{"model":"a"}"#),
                event("t2", meter: "tokens", value: "0.25", properties: #"{"model":"b"}"#),
            ])
            response = try await server.get("/v1/customers/cus_42/entitlements/tokens")
            #expect(response.body == #"{"has_access":true,"used":"0.75","limit":null,"remaining":null,"resets_at":"\#(resetsAt)","balance":"0.00"}"#)
            response = try await server.get("/v1/customers/cus_42/entitlements/storage_gb")
            #expect(try response.object()["used"] as? String == "0")
        }
    }

    @Test("An amount disable limit ends access on every meter once the amount reaches it")
    func amountLimit() async throws {
        try await withTestServer { server in
            _ = try await server.postEvents([event("m1", customer: "cus_amount")])
            #expect(try await server.get("/v1/customers/cus_amount/entitlements/tokens").object()["has_access"] as? Bool == true)
            let results = try await server.postEvents([event("m2", customer: "cus_amount")])
            #expect(results.first?["blocked"] as? Bool == true)
            for meter in ["api_calls", "tokens"] {
                let object = try await server.get("/v1/customers/cus_amount/entitlements/\(meter)").object()
                #expect(object["has_access"] as? Bool == false, "\(meter)")
            }
        }
    }

    @Test("Entitlements of an unknown meter or customer are 404")
    func entitlementErrors() async throws {
        try await withTestServer { server in
            let meter = try await server.get("/v1/customers/cus_42/entitlements/gpu_hours")
            #expect(meter.status == 404)
            #expect(try meter.errorCode() == "unknown_meter")
            let customer = try await server.get("/v1/customers/cus_nobody/entitlements/api_calls")
            #expect(customer.status == 404)
            #expect(try customer.errorCode() == "unknown_customer")
        }
    }
}
