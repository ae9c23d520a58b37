import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Usage over time through the real daemon: the CLI and the HTTP API answer the same windows for
/// the same store, CSV has its content type, the cross-customer route pages through every
/// customer once, and errors carry their codes.
@Suite("Usage over time, end to end")
struct UsageOverTimeTests {
    static let key = "test-key"
    static let digest = "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef"  // sha256("test-key")

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("CLI and HTTP give the same JSON and CSV; the meter route pages through every customer once; errors have codes")
    func cliAndHTTPAgree() throws {
        let port = try freePort()
        let daemon = try DaemonHarness(config: DaemonHarness.defaultConfig + """

            http:
              api_keys_sha256: ["\(Self.digest)"]
            """)
        try daemon.start(extraArguments: ["--http", "127.0.0.1:\(port)"])
        #expect(daemon.waitForHTTP(port: port) == 200)

        // Events over the last three UTC days, every 37 minutes, on seven customers.
        let dayLength: Int64 = 86_400
        let today = Int64(Date().timeIntervalSince1970) / dayLength * dayLength
        let start = today - 3 * dayLength
        var lines = ""
        var callsByCustomer: [String: Int] = [:]
        for index in 0..<110 {
            let customer = "cus_\(index % 7)"
            let time = Date(timeIntervalSince1970: TimeInterval(start + Int64(index) * 37 * 60))
            let stamp = ISO8601DateFormatter().string(from: time)
            if index % 3 == 0 {
                lines += #"{"id":"t\#(index)","customer":"\#(customer)","meter":"tokens","value":\#(index % 11),"time":"\#(stamp)","properties":{"model":"\#(index % 2 == 0 ? "small" : "large")","billable":true}}"# + "\n"
            } else {
                lines += #"{"id":"c\#(index)","customer":"\#(customer)","meter":"api_calls","time":"\#(stamp)"}"# + "\n"
                callsByCustomer[customer, default: 0] += 1
            }
        }
        try lines.write(toFile: daemon.directory + "/events.ndjson", atomically: true, encoding: .utf8)
        let sent = try daemon.tally(["send", "--config", daemon.configPath, daemon.directory + "/events.ndjson"])
        #expect(sent.status == 0, "\(sent.error)")

        let from = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(start)))
        let to = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(today + dayLength)))
        for (window, zone, fromText, toText) in [("hour", "UTC", from, to), ("day", "Europe/Berlin", String(from.prefix(10)), String(to.prefix(10)))] {
            let cli = try daemon.tally(["usage", "--config", daemon.configPath, "--customer", "cus_1", "--from", fromText, "--to", toText,
                                        "--window", window, "--tz", zone, "--json"])
            #expect(cli.status == 0, "\(cli.error)")
            let query = "from=\(fromText)&to=\(toText)&window=\(window)&tz=\(zone)".replacingOccurrences(of: "+", with: "%2B")
            let http = try httpExchange(port: port, method: "GET", path: "/v1/customers/cus_1/usage?\(query)", key: Self.key)
            #expect(http.status == 200)
            #expect(http.head.contains("content-type: application/json"))
            #expect(http.body == cli.output.trimmingCharacters(in: .newlines))
            let body = try Self.json(http.body)
            #expect(body["window"] as? String == window)
            #expect(body["tz"] as? String == zone)
            let meters = try #require(body["meters"] as? [[String: Any]])
            let calls = try #require(meters.first { $0["meter"] as? String == "api_calls" })
            #expect(calls["total"] as? String == String(callsByCustomer["cus_1"]!))
            let windows = try #require(calls["windows"] as? [[String: Any]])
            let summed = windows.compactMap { Int($0["quantity"] as? String ?? "") }.reduce(0, +)
            #expect(summed == callsByCustomer["cus_1"]!)

            let cliCSV = try daemon.tally(["usage", "--config", daemon.configPath, "--customer", "cus_1", "--from", fromText, "--to", toText,
                                           "--window", window, "--tz", zone, "--meter", "tokens", "--group-by", "model", "--csv"])
            #expect(cliCSV.status == 0, "\(cliCSV.error)")
            let csv = try httpExchange(port: port, method: "GET", path: "/v1/customers/cus_1/usage?\(query)&meter=tokens&group_by=model",
                                       key: Self.key, headers: ["Accept: text/csv"])
            #expect(csv.status == 200)
            #expect(csv.head.contains("content-type: text/csv"))
            #expect(csv.body == cliCSV.output)
            #expect(csv.body.hasPrefix("meter,customer,group,start,end,quantity\ntokens,cus_1,model=large,"))
        }

        // Without window, the period JSON is as it was.
        let period = try Self.json(try httpRequest(port: port, method: "GET", path: "/v1/customers/cus_1/usage", key: Self.key).body)
        #expect(period["period"] != nil && period["window"] == nil)

        // One meter across customers, two per page: every customer with calls, once, in order.
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let path = "/v1/meters/api_calls/usage?from=\(from)&to=\(to)&window=day&limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try httpRequest(port: port, method: "GET", path: path, key: Self.key)
            #expect(page.status == 200, "\(page.body)")
            let body = try Self.json(page.body)
            let series = try #require(body["meters"] as? [[String: Any]])
            #expect(series.count <= 2)
            seen += series.compactMap { $0["customer"] as? String }
            cursor = body["next_cursor"] as? String
            #expect((body["has_more"] as? Bool) == (cursor != nil))
            pages += 1
        } while cursor != nil && pages < 10
        #expect(seen == callsByCustomer.keys.sorted())
        #expect(pages == 4)
        let filtered = try Self.json(try httpRequest(port: port, method: "GET",
            path: "/v1/meters/api_calls/usage?from=\(from)&to=\(to)&window=day&customer=cus_3&customer=cus_5&customer=nobody", key: Self.key).body)
        #expect((filtered["meters"] as? [[String: Any]])?.compactMap { $0["customer"] as? String } == ["cus_3", "cus_5", "nobody"])

        // Errors, with their codes.
        for (path, status, code) in [
            ("/v1/customers/cus_1/usage?from=\(from)&to=\(to)&window=week", 400, "invalid_window"),
            ("/v1/customers/cus_1/usage?from=2026-01-01T00:10:00Z&to=\(to)&window=hour", 400, "unaligned_time"),
            ("/v1/customers/cus_1/usage?from=\(to)&to=\(from)&window=hour", 400, "invalid_range"),
            ("/v1/customers/cus_1/usage?from=\(from)&to=\(to)&window=day&tz=Mars/Olympus", 400, "unknown_time_zone"),
            ("/v1/customers/cus_1/usage?from=2020-01-01&to=2026-01-01&window=hour", 400, "too_many_windows"),
            ("/v1/customers/cus_1/usage?from=\(from)&to=\(to)&window=day&meter=nope", 404, "unknown_meter"),
            ("/v1/customers/cus_1/usage?from=\(from)&to=\(to)&window=day&meter=api_calls&group_by=model", 400, "unknown_group_by"),
            ("/v1/meters/nope/usage?from=\(from)&to=\(to)&window=day", 404, "unknown_meter"),
            ("/v1/meters/api_calls/usage?from=\(from)&to=\(to)&window=day&cursor=zz", 400, "invalid_parameter"),
            ("/v1/meters/api_calls/usage?from=\(from)&to=\(to)&window=day&limit=500", 400, "invalid_parameter"),
        ] {
            let answer = try httpRequest(port: port, method: "GET", path: path, key: Self.key)
            #expect(answer.status == status, "\(path): \(answer.body)")
            let error = try Self.json(answer.body)["error"] as? [String: Any]
            #expect(error?["code"] as? String == code, "\(path)")
        }
        let cliError = try daemon.tally(["usage", "--config", daemon.configPath, "--customer", "cus_1", "--from", "2026-01-01T00:10:00Z",
                                         "--to", "2026-01-02", "--window", "hour"])
        #expect(cliError.status == 1)
        #expect(cliError.error.contains("is not on an hour edge in UTC; the nearest edges are 2026-01-01T00:00:00Z and 2026-01-01T01:00:00Z"))
        #expect(daemon.terminate() == 0)
    }
}
