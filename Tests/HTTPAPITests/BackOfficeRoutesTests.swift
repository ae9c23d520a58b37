import Foundation
import HTTPAPI
import Metering
import Storage
import TallyConfiguration
import Testing

@Suite("Back-office routes: customers, plans, the list convention")
struct BackOfficeRoutesTests {
    @Test("GET /v1/customers lists every known customer in byte order of id, paged, with plan and source")
    func listCustomers() async throws {
        try await withTestServer { server in
            let ids = (0..<23).map { String(format: "cus_%03d", $0) }
            _ = try await server.postEvents(ids.enumerated().map { event("e\($0.offset)", customer: $0.element) })
            try server.store.setPlan(customer: "cus_plan_only", plan: "starter", from: Timestamp(year: 2026, month: 1, day: 1)!)
            // Config customers (cus_42 on starter, cus_amount with a limit) are known without usage.
            let expected = (ids + ["cus_42", "cus_amount", "cus_plan_only"]).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }

            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let path = "/v1/customers?limit=5" + (cursor.map { "&cursor=\($0)" } ?? "")
                let object = try await server.get(path).object()
                let data = try #require(object["data"] as? [[String: Any]])
                #expect(data.count <= 5)
                seen += data.compactMap { $0["id"] as? String }
                let hasMore = try #require(object["has_more"] as? Bool)
                cursor = object["next_cursor"] as? String
                #expect(hasMore == (cursor != nil))
                pages += 1
            } while cursor != nil
            #expect(seen == expected)
            #expect(pages == 6)

            let first = try await server.get("/v1/customers?limit=100").object()
            let rows = try #require(first["data"] as? [[String: Any]])
            let byID = Dictionary(uniqueKeysWithValues: rows.map { ($0["id"] as! String, $0) })
            #expect(byID["cus_42"]?["plan_source"] as? String == "config")
            #expect(byID["cus_plan_only"]?["plan_source"] as? String == "assigned")
            #expect(byID["cus_000"]?["plan_source"] as? String == "default_plan")
            #expect(byID["cus_000"]?["plan"] as? String == "starter")
            #expect(first["has_more"] as? Bool == false)
            #expect(first["next_cursor"] is NSNull)
        }
    }

    @Test("query is an id prefix, plan a filter; bad limits, cursors and plans are 400 with the field")
    func filtersAndErrors() async throws {
        var config = testConfig()
        config.plans.append(Plan(code: "pro", currency: "USD", prices: []))
        try await withTestServer(config: config) { server in
            _ = try await server.postEvents((0..<12).map { event("f\($0)", customer: "team_\($0 % 3)_\($0)") })
            try server.store.setPlan(customer: "team_1_4", plan: "pro", from: Timestamp(year: 2026, month: 1, day: 1)!)
            try server.store.setPlan(customer: "team_2_5", plan: "pro", from: Timestamp(year: 2026, month: 1, day: 1)!)

            let prefixed = try await server.get("/v1/customers?query=team_1").object()
            #expect((prefixed["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["team_1_1", "team_1_10", "team_1_4", "team_1_7"])
            // A plan filter across pages: the cursor of a filtered page continues the filtered list.
            let pro = try await server.get("/v1/customers?plan=pro&limit=1").object()
            #expect((pro["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["team_1_4"])
            #expect(pro["has_more"] as? Bool == true)
            let cursor = try #require(pro["next_cursor"] as? String)
            let next = try await server.get("/v1/customers?plan=pro&limit=1&cursor=\(cursor)").object()
            #expect((next["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["team_2_5"])
            #expect(next["has_more"] as? Bool == false)

            for (path, field) in [("/v1/customers?limit=0", "limit"), ("/v1/customers?limit=101", "limit"),
                                  ("/v1/customers?limit=x", "limit"), ("/v1/customers?cursor=zz", "cursor"),
                                  ("/v1/customers?plan=gold", "plan")] {
                let response = try await server.get(path)
                #expect(response.status == 400, "\(path)")
                let error = try #require(try response.object()["error"] as? [String: Any])
                #expect(error["field"] as? String == field, "\(path)")
                _ = try response.errorCode()
            }
            #expect(try await server.get("/v1/customers?plan=gold").errorCode() == "unknown_plan")
        }
    }

    @Test("GET /v1/customers/{id} is the customer's whole state; 404 for a customer never seen")
    func customerState() async throws {
        try await withTestServer { server in
            _ = try await server.postEvents((1...5).map { event("s\($0)") } + [event("t1", meter: "tokens", value: "1000", properties: #"{"model":"m"}"#)])
            let response = try await server.get("/v1/customers/cus_42")
            #expect(response.status == 200)
            let object = try response.object()
            // `balance` (prepaid credits left) came with issue 14.
            #expect(Set(object.keys) == ["id", "plan", "plan_source", "period", "usage", "estimate", "limits", "entitlements", "balance", "blocked"])
            #expect(object["balance"] as? String == "0.00")
            #expect(object["id"] as? String == "cus_42")
            #expect(object["plan"] as? String == "starter")
            #expect(object["plan_source"] as? String == "config")
            let period = server.config.billing.period.interval(containing: .now())
            #expect(object["period"] as? [String: String] == ["start": period.start.rfc3339, "end": period.end.rfc3339])
            // usage is the `meters` array of /usage, estimate the /estimate object, limits those of /limits.
            let usage = try await server.get("/v1/customers/cus_42/usage").object()
            #expect(NSArray(array: try #require(object["usage"] as? [Any])).isEqual(to: try #require(usage["meters"] as? [Any])))
            let estimate = try await server.get("/v1/customers/cus_42/estimate").object()
            #expect(NSDictionary(dictionary: try #require(object["estimate"] as? [String: Any])).isEqual(to: estimate))
            let limits = try await server.get("/v1/customers/cus_42/limits").object()
            #expect(NSArray(array: try #require(object["limits"] as? [Any])).isEqual(to: try #require(limits["limits"] as? [Any])))
            // Five calls reach the disable limit of 5: blocked, no access to api_calls, access to tokens.
            #expect(object["blocked"] as? Bool == true)
            let entitlements = try #require(object["entitlements"] as? [[String: Any]])
            #expect(entitlements.map { $0["meter"] as? String } == ["api_calls", "tokens", "storage_gb"])
            #expect(entitlements[0]["has_access"] as? Bool == false)
            #expect(entitlements[0]["used"] as? String == "5")
            #expect(entitlements[0]["limit"] as? String == "5")
            #expect(entitlements[0]["remaining"] as? String == "0")
            let single = try await server.get("/v1/customers/cus_42/entitlements/api_calls").object()
            #expect(Set(single.keys) == Set(entitlements[0].keys).subtracting(["meter"]))
            for key in ["used", "limit", "remaining", "resets_at"] {
                #expect(single[key] as? String == entitlements[0][key] as? String, "\(key)")
            }
            #expect(single["has_access"] as? Bool == false)

            _ = try await server.postEvents([event("o1", customer: "cus_other")])
            let other = try await server.get("/v1/customers/cus_other").object()
            #expect(other["blocked"] as? Bool == false)
            #expect(other["plan_source"] as? String == "default_plan")

            let unknown = try await server.get("/v1/customers/cus_never")
            #expect(unknown.status == 404)
            #expect(try unknown.errorCode() == "unknown_customer")
        }
    }

    @Test("PUT /v1/customers/{id}/plan assigns a plan as set-plan does; bad bodies are 4xx with the field")
    func setPlan() async throws {
        var config = testConfig()
        config.plans.append(Plan(code: "pro", currency: "USD", prices: []))
        try await withTestServer(config: config) { server in
            let response = try await server.put("/v1/customers/cus_new/plan", #"{"plan":"pro","from":"2026-01-01"}"#)
            #expect(response.status == 200, "\(response.body)")
            let object = try response.object()
            #expect(object["id"] as? String == "cus_new")
            #expect(object["plan"] as? String == "pro")
            #expect(object["plan_source"] as? String == "assigned")
            #expect((object["assignments"] as? [[String: String]]) == [["from": "2026-01-01T00:00:00Z", "plan": "pro"]])
            #expect(try server.store.planAssignments(customer: "cus_new") == [PlanAssignment(from: Timestamp(year: 2026, month: 1, day: 1)!, plan: "pro")])
            // The customer is known from now on: listed, and its state readable.
            #expect(try await server.get("/v1/customers/cus_new").status == 200)
            let listed = try await server.get("/v1/customers?query=cus_new").object()
            #expect((listed["data"] as? [[String: Any]])?.first?["plan"] as? String == "pro")
            // Without from: from now.
            let now = try await server.put("/v1/customers/cus_new/plan", #"{"plan":"starter"}"#).object()
            #expect(now["plan"] as? String == "starter")
            #expect((now["assignments"] as? [Any])?.count == 2)

            for (body, status, code) in [(#"{"plan":"gold"}"#, 422, "unknown_plan"), (#"{}"#, 422, "missing_field"),
                                         (#"{"plan":1}"#, 422, "invalid_field"), (#"{"plan":"pro","from":"soon"}"#, 422, "invalid_field"),
                                         (#"{"plan":"pro","extra":1}"#, 422, "invalid_field"), ("[]", 400, "invalid_body"),
                                         ("{", 400, "invalid_json")] {
                let bad = try await server.put("/v1/customers/cus_new/plan", body)
                #expect(bad.status == status, "\(body)")
                #expect(try bad.errorCode() == code, "\(body)")
            }
        }
    }

    @Test("GET /v1/plans and /v1/plans/{code}: prices in the shape tally quote --price reads back")
    func plans() async throws {
        var config = testConfig()
        config.plans.append(Plan(code: "pro", currency: "EUR", prices: [
            Price(meter: "api_calls", model: .graduated([Tier(upTo: ExactDecimal("1000")!, unitAmount: 0), Tier(upTo: nil, unitAmount: ExactDecimal("0.002")!, flatAmount: 5)]),
                  minimum: ExactDecimal("10")!),
            Price(meter: "tokens", model: .perUnit(unitAmount: ExactDecimal("0.01")!, freeUnits: 100, transform: .init(divideBy: 1000, round: .up)),
                  dimensions: [PriceDimension(property: "model", value: "large", overrides: PriceOverride(unitAmount: ExactDecimal("0.03")!))]),
            Price(meter: "storage_gb", model: .package(size: 10, amount: ExactDecimal("1.5")!, freeUnits: 0, round: .down), maximum: 100),
        ]))
        let configured = config
        try await withTestServer(config: configured) { server in
            let list = try await server.get("/v1/plans").object()
            let data = try #require(list["data"] as? [[String: Any]])
            #expect(data.map { $0["code"] as? String } == ["starter", "pro"])
            #expect(list["has_more"] as? Bool == false)
            let paged = try await server.get("/v1/plans?limit=1").object()
            #expect(paged["has_more"] as? Bool == true)
            let cursor = try #require(paged["next_cursor"] as? String)
            let second = try await server.get("/v1/plans?limit=1&cursor=\(cursor)").object()
            #expect((second["data"] as? [[String: Any]])?.first?["code"] as? String == "pro")

            let pro = try await server.get("/v1/plans/pro")
            #expect(pro.status == 200)
            let object = try pro.object()
            #expect(object["currency"] as? String == "EUR")
            // Each price, as JSON text, parses back (as `tally quote --price` does) to the same price.
            let prices = try #require(object["prices"] as? [[String: Any]])
            #expect(prices.count == 3)
            for (index, price) in prices.enumerated() {
                let text = String(decoding: try JSONSerialization.data(withJSONObject: price), as: UTF8.self)
                #expect(try PriceParser.parse(text) == configured.plans[1].prices[index], "\(text)")
            }
            let missing = try await server.get("/v1/plans/gold")
            #expect(missing.status == 404)
            #expect(try missing.errorCode() == "unknown_plan")
        }
    }

    @Test("GET alerts pages by cursor, stable while new alerts fire; page= still works")
    func alertCursor() async throws {
        try await withTestServer { server in
            try await AlertsAndMetricsTests.fireFiveAlerts(server)
            let stored = try server.store.recentAlerts(limit: 100)
            var seen: [String] = []
            var cursor: String?
            var first = true
            repeat {
                let path = "/v1/alerts?limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
                let object = try await server.get(path).object()
                seen += try #require(object["data"] as? [[String: Any]]).compactMap { $0["id"] as? String }
                cursor = object["next_cursor"] as? String
                if first {
                    first = false
                    // A new alert fires between pages: it is newer than the cursor, so no page shifts.
                    _ = try await server.post("/v1/customers/cus_late/limits", #"{"meter":"api_calls","quantity":1,"action":"warning"}"#)
                    _ = try await server.postEvents([event("late1", customer: "cus_late")])
                }
            } while cursor != nil
            #expect(seen == stored.map(\.id))
            let bad = try await server.get("/v1/alerts?cursor=00")
            #expect(bad.status == 400)
            #expect(try await server.get("/v1/alerts?cursor=0000000000000001&page=2").status == 400)
        }
    }

    @Test("GET limits follows the list convention and keeps its customer and limits keys")
    func limitsList() async throws {
        try await withTestServer { server in
            for quantity in 1...3 {
                let added = try await server.post("/v1/customers/cus_l/limits", #"{"id":"l\#(quantity)","meter":"tokens","quantity":\#(quantity),"action":"warning"}"#)
                #expect(added.status == 201)
            }
            let all = try await server.get("/v1/customers/cus_l/limits").object()
            let ids = try #require(all["data"] as? [[String: Any]]).compactMap { $0["id"] as? String }
            #expect(ids.count == 4)  // its three and the plan's spend limit
            #expect(all["customer"] as? String == "cus_l")
            #expect((all["limits"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ids)
            var paged: [String] = []
            var cursor: String?
            repeat {
                let object = try await server.get("/v1/customers/cus_l/limits?limit=3" + (cursor.map { "&cursor=\($0)" } ?? "")).object()
                paged += try #require(object["data"] as? [[String: Any]]).compactMap { $0["id"] as? String }
                cursor = object["next_cursor"] as? String
            } while cursor != nil
            #expect(paged == ids)
        }
    }

    @Test("a blocked answer of an amount limit names it with meter null and the amount used")
    func blockedByAmount() async throws {
        try await withTestServer { server in
            let results = try await server.postEvents((1...3).map { event("a\($0)", customer: "cus_amount") })
            // cus_amount is on starter (1 USD a call) with a disable limit of 2 USD.
            for result in results {
                #expect(result["blocked"] as? Bool == true)
                let limit = try #require(result["limit"] as? [String: Any])
                #expect(limit["id"] as? String == "cus_amount-spend")
                #expect(limit["meter"] is NSNull)
                #expect(limit["used"] as? String == "3")
                #expect(limit["limit"] as? String == "2")
                #expect(limit["resets_at"] as? String == server.config.billing.period.interval(containing: .now()).end.rfc3339)
            }
        }
    }
}
