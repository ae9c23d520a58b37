import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Prepaid credits through the real daemon (issue 14): grants burn down in the group commit, the
/// estimate and balance reflect every answered event, in a three-decimal currency (KWD).
@Suite("Credits through the daemon")
struct CreditsDaemonTests {
    static let adminKey = "dash-admin-key"
    static let readKey = "dash-read-key"
    static let ingestKey = "dash-ingest-key"

    static func config(period: String = "monthly") -> String {
        """
        store:
          path: data
        ingest:
          socket: tally.sock
          commit_max_events: 8192
          commit_max_delay: 2ms
        billing:
          period: \(period)
        meters:
          - { code: api_calls, aggregation: count }
          - { code: seats, aggregation: latest }
        plans:
          - code: basic
            currency: KWD
            prices:
              - { meter: api_calls, model: per_unit, unit_amount: "1.250" }
              - { meter: seats, model: per_unit, unit_amount: "1" }
        default_plan: basic
        limits:
          - { id: low, plan: basic, balance_below: "5", action: warning }
          - { id: prepaid-only, customer: c2, balance_percent_below: 50, action: disable }
        http:
          api_keys:
            - { name: operator, sha256: "28079b76acf7d3b6c0b737099ed0c8469c41f0ed30e855f97b44443bdd1b0831", scopes: [admin] }
            - { name: viewer, sha256: "29d1ab5238367a8bd6d155acf287d791e7416a1d1cab641378eb660807effe9b", scopes: [read] }
            - { name: producer, sha256: "92f96b8f641a4bbfdbc79c38e974afd166f8b2fde1e1eea35ce7efc35d0bc43b", scopes: [ingest] }
        """
    }

    private static func daemon(period: String = "monthly", http: Bool = false) throws -> (DaemonHarness, Int) {
        let daemon = try DaemonHarness(config: config(period: period))
        let port = try freePort()
        try daemon.start(extraArguments: http ? ["--http", "127.0.0.1:\(port)"] : [])
        if http { guard daemon.waitForHTTP(port: port) == 200 else { throw HarnessError("no HTTP:\n\(daemon.log())") } }
        return (daemon, port)
    }

    private static func calls(_ range: Range<Int>, customer: String = "c1", time: String? = nil) -> String {
        range.map { eventLine(id: "e\($0)", customer: customer, extra: time.map { #","time":"\#($0)""# } ?? "") + "\n" }.joined()
    }

    private static func json(_ daemon: DaemonHarness, _ arguments: [String]) throws -> [String: Any] {
        let result = try daemon.tally(arguments + ["--config", daemon.configPath, "--store", daemon.storePath, "--json"])
        guard result.status == 0 else { throw HarnessError("tally \(arguments): \(result.error)") }
        return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
    }

    private static func estimate(_ daemon: DaemonHarness, _ customer: String = "c1") throws -> [String: Any] {
        try json(daemon, ["estimate", "--customer", customer])
    }

    private static func grant(_ daemon: DaemonHarness, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        try daemon.tally(["credits", "grant", "--config", daemon.configPath, "--store", daemon.storePath] + arguments)
    }

    @Test("10.000 granted: usage of 3.750 leaves 6.250 and nothing due; usage of 11.250 takes it all and leaves 1.250 due")
    func burnDown() throws {
        let (daemon, _) = try Self.daemon()
        #expect(try Self.grant(daemon, ["--customer", "c1", "--amount", "10.000", "--id", "g1"]).status == 0)
        #expect(try daemon.exchange(Self.calls(0..<3)).allSatisfy { $0 == acceptedLine })
        var estimate = try Self.estimate(daemon)
        #expect(estimate["total"] as? String == "3.750" && estimate["credits_applied"] as? String == "3.750")
        #expect(estimate["amount_due"] as? String == "0.000")
        #expect(try Self.json(daemon, ["credits", "list", "--customer", "c1"])["balance"] as? String == "6.250")
        #expect(try daemon.exchange(Self.calls(3..<9)).allSatisfy { $0 == acceptedLine })
        estimate = try Self.estimate(daemon)
        #expect(estimate["total"] as? String == "11.250" && estimate["credits_applied"] as? String == "10.000")
        #expect(estimate["amount_due"] as? String == "1.250")
        let list = try Self.json(daemon, ["credits", "list", "--customer", "c1"])
        #expect(list["balance"] as? String == "0.000" && list["amount_due"] as? String == "1.250")
        let rows = try #require(list["data"] as? [[String: Any]])
        #expect(rows.count == 1 && rows[0]["status"] as? String == "depleted" && rows[0]["remaining"] as? String == "0.000")
        // What the commit stored is what the read computes: voided now, the grant keeps what it covered.
        #expect(try daemon.tally(["credits", "void", "g1", "--config", daemon.configPath, "--store", daemon.storePath]).status == 0)
        #expect(try Self.estimate(daemon)["credits_applied"] as? String == "10.000")
        // More usage after the void is not covered.
        #expect(try daemon.exchange(Self.calls(9..<10)).allSatisfy { $0 == acceptedLine })
        #expect(try Self.estimate(daemon)["amount_due"] as? String == "2.500")
        let ledger = try Self.json(daemon, ["credits", "ledger", "--customer", "c1"])
        let types = (ledger["entries"] as? [[String: Any]] ?? []).map { $0["type"] as? String ?? "" }
        #expect(types == ["grant", "void", "application"], "\(ledger)")
        #expect(daemon.terminate() == 0)
    }

    @Test("grants in order of priority and expiry; a grant expiring mid-period keeps what it covered; a latest meter falling gives credits back")
    func orderExpiryAndFalls() throws {
        let (daemon, _) = try Self.daemon()
        let soon = Date().addingTimeInterval(4)
        let expires = ISO8601DateFormatter().string(from: soon)
        #expect(try Self.grant(daemon, ["--customer", "c1", "--amount", "5", "--id", "a", "--expires", expires]).status == 0)
        #expect(try Self.grant(daemon, ["--customer", "c1", "--amount", "5", "--id", "b", "--priority", "1"]).status == 0)
        #expect(try Self.grant(daemon, ["--customer", "c1", "--amount", "5", "--id", "z", "--priority", "2"]).status == 0)
        let seat = { (id: String, value: Int) in eventLine(id: id, customer: "c1", meter: "seats", value: String(value)) + "\n" }
        #expect(try daemon.exchange(seat("s1", 8)) == [acceptedLine])
        var list = try Self.json(daemon, ["credits", "list", "--customer", "c1"])
        #expect(Self.applied(list) == ["a": "5.000", "b": "3.000", "z": "0.000"], "a first (it expires), then b by priority")
        #expect(try daemon.exchange(seat("s2", 4)) == [acceptedLine])
        list = try Self.json(daemon, ["credits", "list", "--customer", "c1"])
        #expect(Self.applied(list) == ["a": "4.000", "b": "0.000", "z": "0.000"], "the amount fell to 4.000: b gave back first, then a")
        #expect(list["balance"] as? String == "11.000")
        while Date() < soon.addingTimeInterval(0.3) { usleep(100_000) }
        #expect(try daemon.exchange(seat("s3", 9)) == [acceptedLine])
        list = try Self.json(daemon, ["credits", "list", "--customer", "c1"])
        #expect(Self.applied(list) == ["a": "4.000", "b": "5.000", "z": "0.000"], "expired a keeps its 4.000, b covers the rest")
        #expect(list["balance"] as? String == "5.000" && list["amount_due"] as? String == "0.000")
        #expect(((list["data"] as? [[String: Any]]) ?? []).first { $0["id"] as? String == "a" }?["status"] as? String == "expired")
        #expect(daemon.terminate() == 0)
    }

    static func applied(_ list: [String: Any]) -> [String: String] {
        var result: [String: String] = [:]
        for row in list["data"] as? [[String: Any]] ?? [] {
            if let id = row["id"] as? String { result[id] = row["applied_this_period"] as? String }
        }
        return result
    }

    @Test("a closed period keeps its applications; the next period takes what it left")
    func periodCloseFreezes() throws {
        let (daemon, _) = try Self.daemon(period: "daily")
        let yesterday = Date().addingTimeInterval(-86_400)
        let day = ISO8601DateFormatter.string(from: yesterday, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
        #expect(try Self.grant(daemon, ["--customer", "c1", "--amount", "10", "--id", "g", "--effective", day]).status == 0)
        #expect(try daemon.exchange(Self.calls(0..<4, time: day + "T12:00:00Z")).allSatisfy { $0 == acceptedLine })
        #expect(try daemon.tally(["period", "close", day, "--config", daemon.configPath, "--store", daemon.storePath]).status == 0)
        #expect(try daemon.exchange(Self.calls(4..<12)).allSatisfy { $0 == acceptedLine })
        let estimate = try Self.estimate(daemon)
        #expect(estimate["total"] as? String == "10.000" && estimate["credits_applied"] as? String == "5.000" && estimate["amount_due"] as? String == "5.000")
        let ledger = try Self.json(daemon, ["credits", "ledger", "--customer", "c1"])
        let applications = (ledger["entries"] as? [[String: Any]] ?? []).filter { $0["type"] as? String == "application" }
        #expect(applications.map { $0["amount"] as? String } == ["5.000", "5.000"])
        #expect(applications.map { $0["final"] as? Bool } == [true, false])
        // A late event for the closed day is refused, so its applications never change.
        #expect(rejectionCode(try daemon.exchange(Self.calls(90..<91, time: day + "T13:00:00Z"))[0]) == "period_closed")
        #expect(try Self.json(daemon, ["credits", "list", "--customer", "c1"])["balance"] as? String == "0.000")

        // The closed day's statement shows the credits and what is due; a second run is byte-identical.
        var outputs: [String] = []
        for run in 0..<2 {
            let directory = daemon.directory + "/rate-\(run)"
            let rated = try daemon.tally(["rate", "--period", day, "--out", directory, "--config", daemon.configPath, "--store", daemon.storePath])
            #expect(rated.status == 0, "\(rated.error)")
            outputs.append((try? String(contentsOfFile: directory + "/statements.json", encoding: .utf8)) ?? "")
            let summary = (try? String(contentsOfFile: directory + "/summary.json", encoding: .utf8)) ?? ""
            #expect(summary.contains(#""credits":[{"currency":"KWD","applied":"5.000","amount_due":"0.000"}]"#), "\(summary)")
        }
        #expect(outputs[0].contains(#""credits":[{"grant":"g","amount":"5.000"}],"amount_due":"0.000""#), "\(outputs[0])")
        #expect(outputs[0] == outputs[1] && !outputs[0].isEmpty)
        #expect(daemon.terminate() == 0)
    }

    @Test("SIGKILL between commits: after a restart and a resend, the credits equal what the events alone give")
    func crash() throws {
        let (daemon, _) = try Self.daemon()
        #expect(try Self.grant(daemon, ["--customer", "c1", "--amount", "100", "--id", "big"]).status == 0)
        #expect(try daemon.exchange(Self.calls(0..<30)).allSatisfy { $0 == acceptedLine })
        let connection = try daemon.connect()
        try connection.sendAll(Array(Self.calls(30..<60).utf8))
        usleep(20_000)
        daemon.killHard()
        try daemon.start()
        let answers = try daemon.exchange(Self.calls(0..<60))
        #expect(answers.allSatisfy { $0 == acceptedLine || $0 == duplicateLine })
        #expect(answers.filter { $0 == duplicateLine }.count >= 30)
        var estimate = try Self.estimate(daemon)
        #expect(estimate["total"] as? String == "75.000" && estimate["credits_applied"] as? String == "75.000")
        // Voided, the grant keeps exactly what the commits stored: the same 75.000, never counted twice.
        #expect(try daemon.tally(["credits", "void", "big", "--config", daemon.configPath, "--store", daemon.storePath]).status == 0)
        estimate = try Self.estimate(daemon)
        #expect(estimate["credits_applied"] as? String == "75.000" && estimate["amount_due"] as? String == "0.000")
        #expect(daemon.terminate() == 0)
    }

    @Test("idempotent ids, bad amounts, and every credits route's scope over HTTP")
    func http() throws {
        let (daemon, port) = try Self.daemon(http: true)
        #expect(try daemon.exchange(Self.calls(0..<2)).allSatisfy { $0 == acceptedLine })
        let body = #"{"amount":"20.500","id":"top-up","reason":"prepaid","priority":1}"#
        let created = try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/credits", key: Self.adminKey, body: body)
        #expect(created.status == 201 && created.body.contains(#""amount":"20.500""#) && created.body.contains(#""currency":"KWD""#))
        let again = try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/credits", key: Self.adminKey, body: body)
        #expect(again.status == 200 && again.body == created.body)
        let other = try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/credits", key: Self.adminKey,
                                    body: #"{"amount":"21","id":"top-up"}"#)
        #expect(other.status == 409 && other.body.contains("idempotency_conflict"))
        for (bad, code) in [(#"{"amount":"1.2345"}"#, "invalid_amount"), (#"{"amount":"0"}"#, "invalid_amount"), (#"{"id":"x"}"#, "missing_field"),
                            (#"{"amount":"5","color":"red"}"#, "invalid_field"), (#"{"amount":"5","expires_at":"soon"}"#, "invalid_field")] {
            let answer = try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/credits", key: Self.adminKey, body: bad)
            #expect(answer.status == 422 && answer.body.contains(code), "\(bad): \(answer)")
        }
        #expect(try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/credits", key: Self.readKey, body: body).status == 403)
        #expect(try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/credits", key: Self.ingestKey, body: body).status == 403)
        #expect(try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/credits", body: body).status == 401)
        let list = try httpRequest(port: port, method: "GET", path: "/v1/customers/c1/credits", key: Self.readKey)
        #expect(list.status == 200 && list.body.contains(#""balance":"18.000""#) && list.body.contains(#""credits_applied":"2.500""#))
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers/c1/credits", key: Self.ingestKey).status == 403)
        let ledger = try httpRequest(port: port, method: "GET", path: "/v1/customers/c1/credits/ledger", key: Self.readKey)
        #expect(ledger.status == 200 && ledger.body.contains(#""type":"grant""#) && ledger.body.contains(#""type":"application""#))
        let state = try httpRequest(port: port, method: "GET", path: "/v1/customers/c1", key: Self.readKey)
        #expect(state.body.contains(#""balance":"18.000""#) && state.body.contains(#""amount_due":"0.000""#))
        let entitlement = try httpRequest(port: port, method: "GET", path: "/v1/customers/c1/entitlements/api_calls", key: Self.readKey)
        #expect(entitlement.body.contains(#""balance":"18.000""#))
        let estimate = try httpRequest(port: port, method: "GET", path: "/v1/customers/c1/estimate", key: Self.readKey)
        #expect(estimate.body.contains(#""credits_applied":"2.500","amount_due":"0.000""#))
        #expect(try httpRequest(port: port, method: "DELETE", path: "/v1/customers/c1/credits/top-up", key: Self.readKey).status == 403)
        #expect(try httpRequest(port: port, method: "DELETE", path: "/v1/customers/c2/credits/top-up", key: Self.adminKey).status == 404)
        let voided = try httpRequest(port: port, method: "DELETE", path: "/v1/customers/c1/credits/top-up", key: Self.adminKey)
        #expect(voided.status == 200 && !voided.body.contains(#""voided_at":null"#))
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers/c1/credits", key: Self.readKey).body.contains(#""balance":"0.000""#))

        // Balance limits over HTTP.
        let limit = try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/limits", key: Self.adminKey,
                                    body: #"{"balance_below":"3","action":"warning"}"#)
        #expect(limit.status == 201 && limit.body.contains(#""balance_below":"3""#) && limit.body.contains(#""id":"customer:c1:balance_below""#), "\(limit)")
        let mixed = try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/limits", key: Self.adminKey,
                                    body: #"{"balance_below":"3","amount":"5","action":"warning"}"#)
        #expect(mixed.status == 422, "\(mixed)")
        let tooMuch = try httpRequest(port: port, method: "POST", path: "/v1/customers/c1/limits", key: Self.adminKey,
                                      body: #"{"balance_percent_below":101,"action":"warning"}"#)
        #expect(tooMuch.status == 422, "\(tooMuch)")
        #expect(daemon.terminate() == 0)
    }

    /// The alerts of `customer` (newest first), as `tally alerts` prints them: one JSON object a line.
    private static func alerts(_ daemon: DaemonHarness, customer: String) throws -> [[String: Any]] {
        let result = try daemon.tally(["alerts", "--customer", customer, "--config", daemon.configPath, "--store", daemon.storePath])
        return result.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test("balance alerts fire once per grant set, across a restart; credits_depleted when usage goes on; a disable balance limit blocks")
    func balanceAlerts() throws {
        let (daemon, _) = try Self.daemon()
        #expect(try Self.grant(daemon, ["--customer", "c1", "--amount", "10", "--id", "first"]).status == 0)
        #expect(try daemon.exchange(Self.calls(0..<3)).allSatisfy { $0 == acceptedLine })      // 3.750 used, 6.250 left
        #expect(try Self.alerts(daemon, customer: "c1").isEmpty)
        #expect(try daemon.exchange(Self.calls(3..<5)).allSatisfy { $0 == acceptedLine })      // 3.750 left: below 5
        var alerts = try Self.alerts(daemon, customer: "c1")
        #expect(alerts.map { $0["limit_id"] as? String } == ["low"])
        #expect(alerts.first?["used"] as? String == "3.75" && alerts.first?["limit"] as? String == "5" && alerts.first?["percent"] as? String == "37")
        #expect(try daemon.exchange(Self.calls(5..<6)).allSatisfy { $0 == acceptedLine })      // still below: no second alert
        #expect(try Self.alerts(daemon, customer: "c1").count == 1)
        // Past the credits: credits_depleted, once, also after a restart.
        #expect(try daemon.exchange(Self.calls(6..<9)).allSatisfy { $0 == acceptedLine })      // 11.250 used
        alerts = try Self.alerts(daemon, customer: "c1")
        #expect(alerts.map { $0["limit_id"] as? String } == ["credits_depleted", "low"])
        #expect(daemon.terminate() == 0)
        try daemon.start()
        #expect(try daemon.exchange(Self.calls(9..<11)).allSatisfy { $0 == acceptedLine })
        #expect(try Self.alerts(daemon, customer: "c1").count == 2)
        // A top-up is a new grant set: the alerts re-arm. 20 granted in all, 13.750 used: 6.250 left.
        #expect(try Self.grant(daemon, ["--customer", "c1", "--amount", "10", "--id", "second"]).status == 0)
        #expect(try daemon.exchange(Self.calls(11..<12)).allSatisfy { $0 == acceptedLine })    // 5.000 left: not below 5
        #expect(try Self.alerts(daemon, customer: "c1").count == 2)
        #expect(try daemon.exchange(Self.calls(12..<13)).allSatisfy { $0 == acceptedLine })    // 3.750 left
        #expect(try Self.alerts(daemon, customer: "c1").map { $0["limit_id"] as? String } == ["low", "credits_depleted", "low"])

        // c2 is prepaid-only: below half of its credits, its events are answered blocked.
        #expect(try Self.grant(daemon, ["--customer", "c2", "--amount", "4", "--id", "c2-credits"]).status == 0)
        #expect(try daemon.exchange(Self.calls(100..<101, customer: "c2")) == [acceptedLine])   // 2.750 left of 4
        let blocked = try daemon.exchange(Self.calls(101..<102, customer: "c2"))             // 1.500 left: below 2
        #expect(blocked.count == 1 && blocked[0].contains(#""blocked":true"#) && blocked[0].contains(#""id":"prepaid-only""#), "\(blocked)")
        // The plan's balance_below 5 applies to c2 too (another target than its own limit): it fired at 2.750.
        #expect(try Self.alerts(daemon, customer: "c2").map { $0["limit_id"] as? String } == ["prepaid-only", "low"])
        let state = try daemon.tally(["limits", "list", "--customer", "c2", "--json", "--config", daemon.configPath, "--store", daemon.storePath])
        #expect(state.output.contains(#""balance_percent_below":"50""#), "\(state.output)")
        #expect(daemon.terminate() == 0)
    }
}
