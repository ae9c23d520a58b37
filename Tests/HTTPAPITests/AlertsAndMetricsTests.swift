import Foundation
import HTTPAPI
import Metering
import Storage
import Testing

@Suite("Alerts and metrics routes")
struct AlertsAndMetricsTests {
    /// Five calls of cus_42 cross its limit's five steps (20…100%): five alerts, oldest first 20%.
    static func fireFiveAlerts(_ server: TestServer) async throws {
        for index in 1...5 { _ = try await server.postEvents([event("al\(index)")]) }
        // Another customer's alert, fired last (its amount limit of 2 at 100%).
        _ = try await server.postEvents([event("o1", customer: "cus_amount"), event("o2", customer: "cus_amount")])
    }

    @Test("GET alerts lists fired alerts newest first, page by page")
    func pages() async throws {
        try await withTestServer { server in
            try await Self.fireFiveAlerts(server)
            let all = try await server.get("/v1/alerts").object()
            #expect(all["page"] as? Int == 1)
            #expect(all["limit"] as? Int == 50)
            let everything = try #require(all["alerts"] as? [[String: Any]])
            #expect(everything.map { $0["customer"] as? String } == ["cus_amount"] + Array(repeating: "cus_42", count: 5))

            let stored = try server.store.recentAlerts(customer: "cus_42", limit: 100)
            var percents: [String] = []
            var seen: [String] = []
            for page in 1...4 {
                let response = try await server.get("/v1/alerts?customer=cus_42&limit=2&page=\(page)")
                #expect(response.status == 200)
                let object = try response.object()
                #expect(object["page"] as? Int == page)
                #expect(object["limit"] as? Int == 2)
                let alerts = try #require(object["alerts"] as? [[String: Any]])
                #expect(alerts.count == [2, 2, 1, 0][page - 1])
                percents += alerts.compactMap { $0["percent"] as? String }
                seen += alerts.compactMap { $0["id"] as? String }
            }
            #expect(percents == ["100", "80", "60", "40", "20"])
            #expect(seen == stored.map(\.id))
            // Each alert is the Alert.json object.
            let first = try await server.get("/v1/alerts?customer=cus_42&limit=1").body
            let cursor = ListCursor.encode(withUnsafeBytes(of: stored[0].sequence.bigEndian) { Array($0) })
            #expect(first == #"{"data":["# + stored[0].json + #"],"has_more":true,"next_cursor":""# + cursor + #"","alerts":["# + stored[0].json + #"],"page":1,"limit":1}"#)
            let keys = try #require((try JSONSerialization.jsonObject(with: Data(stored[0].json.utf8)) as? [String: Any])?.keys)
            #expect(Set(keys) == ["id", "customer", "limit_id", "meter", "used", "limit", "percent", "action", "period_start", "resets_at", "fired_at"])
        }
    }

    @Test("since keeps alerts fired at or after it; an unknown customer has none")
    func since() async throws {
        try await withTestServer { server in
            try await Self.fireFiveAlerts(server)
            let future = Timestamp.now().adding(nanoseconds: 3_600 * Timestamp.nanosecondsPerSecond).rfc3339
            let none = try await server.get("/v1/alerts?since=\(future)").object()
            #expect((none["alerts"] as? [Any])?.count == 0)
            let past = try await server.get("/v1/alerts?since=2020-01-01T00:00:00Z").object()
            #expect((past["alerts"] as? [Any])?.count == 6)
            let nobody = try await server.get("/v1/alerts?customer=cus_nobody").object()
            #expect((nobody["alerts"] as? [Any])?.count == 0)
        }
    }

    @Test("Out-of-range limit or page is 422; malformed parameters are 400",
          arguments: [("limit=101", 422), ("limit=0", 422), ("limit=-1", 422), ("page=0", 422), ("page=-3", 422),
                      ("limit=ten", 400), ("page=1.5", 400), ("since=yesterday", 400), ("limit=99999999999999999999", 400)])
    func badParameters(query: String, status: Int) async throws {
        try await withTestServer { server in
            let response = try await server.get("/v1/alerts?\(query)")
            #expect(response.status == status)
            #expect(try response.errorCode() == (status == 422 ? "out_of_range" : "invalid_parameter"))
        }
    }

    @Test("limit=100 and a far page are fine")
    func edges() async throws {
        try await withTestServer { server in
            #expect(try await server.get("/v1/alerts?limit=100").status == 200)
            let far = try await server.get("/v1/alerts?limit=100&page=999999999999999").object()
            #expect((far["alerts"] as? [Any])?.count == 0)
        }
    }

    @Test("GET /metrics is Prometheus text with the store's size, read at scrape time, and request counts")
    func metrics() async throws {
        try await withTestServer { server in
            let before = try await server.get("/metrics")
            #expect(before.status == 200)
            #expect(before.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(before.body.contains("tally_store_events 0.0\n"))
            _ = try await server.postEvents([event("g1", customer: "cus_g"), event("g1", customer: "cus_g"), event("g2", customer: "cus_g", meter: "x")])
            let after = try await server.get("/metrics").body
            #expect(after.contains("# TYPE tally_store_events gauge"))
            #expect(after.contains("tally_store_events 1.0\n"))
            #expect(after.contains("tally_store_identities 1.0\n"))
            #expect(after.contains(#"tally_http_events_total{status="accepted"} 1"#))
            #expect(after.contains(#"tally_http_events_total{status="duplicate"} 1"#))
            #expect(after.contains(#"tally_http_events_total{status="rejected"} 1"#))
            #expect(after.contains(#"tally_http_requests_total{method="POST",route="/v1/events",status="200"} 1"#), "\(after)")
            #expect(after.contains("tally_http_request_duration_seconds_bucket"))
            #expect(after.contains("tally_store_map_size_bytes"))
            _ = try await server.get("/v1/customers/cus_g/usage")
            _ = try await server.get("/v1/nothing")
            let routes = try await server.get("/metrics").body
            #expect(routes.contains(#"tally_http_requests_total{method="GET",route="/v1/customers/{customer}/usage",status="200"} 1"#), "\(routes)")
            #expect(routes.contains(#"tally_http_requests_total{method="GET",route="unmatched",status="404"} 1"#))
        }
    }
}
