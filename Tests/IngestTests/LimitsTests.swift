import Foundation
import IngestClient
import Metering
import Testing

/// Usage limits evaluated inside the group commit: exactly-once alerts and `blocked`.
@Suite("Limits and alerts")
struct LimitsTests {
    static let config = """
        store:
          path: data
        ingest:
          socket: tally.sock
        billing:
          period: daily
        meters:
          - { code: api_calls, aggregation: count }
          - { code: tokens, aggregation: sum }
        plans:
          - code: basic
            currency: USD
            prices:
              - { meter: api_calls, model: per_unit, unit_amount: "1.00" }
        default_plan: basic
        limits:
          - { plan: basic, amount: "10", action: warning, notify_at: [50, 80, 100] }
        alerts:
          log: alerts.ndjson
        """

    struct AlertJSON: Decodable, Hashable {
        var id: String
        var customer: String
        var limit_id: String
        var meter: String?
        var used: String
        var limit: String
        var percent: String
        var action: String
        var period_start: String
        var resets_at: String
        var fired_at: String
    }

    func alerts(_ daemon: DaemonHarness, customer: String? = nil) throws -> [AlertJSON] {
        var arguments = ["alerts", "--config", daemon.configPath, "--store", daemon.storePath, "--limit", "100"]
        if let customer { arguments += ["--customer", customer] }
        let result = try daemon.tally(arguments)
        #expect(result.status == 0, "\(result.error)")
        return try result.output.split(separator: "\n").map { try JSONDecoder().decode(AlertJSON.self, from: Data($0.utf8)) }
    }

    @Test("one commit past 50%, 80% and 100% fires three alerts once; a restart fires none again; another period fires again")
    func exactlyOnce() throws {
        let daemon = try DaemonHarness(config: Self.config)
        try daemon.start()
        let batch = (0..<10).map { eventLine(id: "a\($0)", customer: "cus_1") }.joined(separator: "\n") + "\n"
        #expect(try daemon.exchange(batch).allSatisfy { $0 == acceptedLine })
        var fired = try alerts(daemon)
        #expect(fired.count == 3)
        #expect(Set(fired.map(\.percent)) == ["50", "80", "100"])
        #expect(Set(fired.map(\.id)).count == 3)
        let first = try #require(fired.first { $0.percent == "100" })
        #expect(first.customer == "cus_1" && first.limit_id == "plan:basic:amount" && first.meter == nil)
        #expect(first.used == "10" && first.limit == "10" && first.action == "warning")

        // More usage, and a restart: nothing fires again this period.
        #expect(try daemon.exchange(eventLine(id: "a10", customer: "cus_1") + "\n") == [acceptedLine])
        #expect(daemon.terminate() == 0)
        try daemon.start()
        #expect(try daemon.exchange(eventLine(id: "a11", customer: "cus_1") + "\n") == [acceptedLine])
        #expect(try alerts(daemon).count == 3)

        // The previous day is another period: its usage fires its own alerts.
        let yesterday = Timestamp.now().adding(nanoseconds: -86_400_000_000_000).rfc3339
        let late = (0..<6).map { eventLine(id: "y\($0)", customer: "cus_1", extra: #","time":"\#(yesterday)""#) }
        #expect(try daemon.exchange(late.joined(separator: "\n") + "\n").allSatisfy { $0 == acceptedLine })
        fired = try alerts(daemon)
        #expect(fired.count == 4)  // 50% of yesterday's limit
        #expect(fired.filter { $0.percent == "50" }.count == 2)
        #expect(Set(fired.map(\.period_start)).count == 2)
        // Another customer has its own alerts.
        #expect(try daemon.exchange((0..<5).map { eventLine(id: "b\($0)", customer: "cus_2") }.joined(separator: "\n") + "\n")
            .allSatisfy { $0 == acceptedLine })
        #expect(try alerts(daemon, customer: "cus_2").map(\.percent) == ["50"])
        #expect(daemon.terminate() == 0)
    }

    @Test("a disable limit: answers carry blocked:true after the crossing and not before; removing the limit unblocks")
    func blocked() throws {
        let daemon = try DaemonHarness(config: Self.config)
        try daemon.start()
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        let add = try daemon.tally(["limits", "add", "--customer", "cus_b", "--meter", "api_calls", "--quantity", "5",
                                    "--action", "disable", "--id", "cap"] + common)
        #expect(add.status == 0, "\(add.error)")
        let before = try daemon.exchange((0..<3).map { eventLine(id: "x\($0)", customer: "cus_b") }.joined(separator: "\n") + "\n")
        #expect(before == Array(repeating: acceptedLine, count: 3))
        let crossing = try daemon.exchange((3..<6).map { eventLine(id: "x\($0)", customer: "cus_b") }.joined(separator: "\n") + "\n")
        // A blocked answer names the limit, what the period counts against it and when it resets.
        let resets = BillingPeriod.daily.interval(containing: .now()).end.rfc3339
        func blockedLine(_ status: String, used: Int) -> String {
            #"{"status":"\#(status)","blocked":true,"limit":{"id":"cap","meter":"api_calls","used":"\#(used)","limit":"5","resets_at":"\#(resets)"}}"#
        }
        #expect(crossing == Array(repeating: blockedLine("accepted", used: 6), count: 3))
        let after = try daemon.exchange([eventLine(id: "x6", customer: "cus_b"), eventLine(id: "x0", customer: "cus_b"),
                                         eventLine(id: "other", customer: "cus_c")].joined(separator: "\n") + "\n")
        #expect(after == [blockedLine("accepted", used: 7), blockedLine("duplicate", used: 7), acceptedLine])
        let parsed = try IngestResponse.parse(after[0])
        #expect(parsed.blocked)
        let fired = try alerts(daemon, customer: "cus_b")
        #expect(fired.contains { $0.limit_id == "cap" && $0.percent == "100" && $0.action == "disable" && $0.meter == "api_calls" })

        let list = try daemon.tally(["limits", "list", "--customer", "cus_b", "--json"] + common)
        #expect(list.output.contains(#"{"id":"cap","scope":{"customer":"cus_b"},"meter":"api_calls","quantity":"5","action":"disable","notify_at":[100],"source":"stored"}"#))
        #expect(list.output.contains(#""id":"plan:basic:amount""#))
        let remove = try daemon.tally(["limits", "remove", "cap"] + common)
        #expect(remove.status == 0)
        #expect(try daemon.exchange(eventLine(id: "x7", customer: "cus_b") + "\n") == [acceptedLine])
        let again = try daemon.tally(["limits", "remove", "cap"] + common)
        #expect(again.status != 0)
        #expect(again.error.contains("no stored limit"))
        let configLimit = try daemon.tally(["limits", "remove", "plan:basic:amount"] + common)
        #expect(configLimit.error.contains("from the config"))
        #expect(daemon.terminate() == 0)
    }

    @Test("limits add refuses bad input with what to do")
    func badLimits() throws {
        let daemon = try DaemonHarness(config: Self.config)
        try daemon.start()
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        let cases: [([String], String)] = [
            (["--customer", "c", "--amount=-5", "--action", "warning"], "above 0"),
            (["--customer", "c", "--plan", "basic", "--amount", "5", "--action", "warning"], "exactly one of --customer and --plan"),
            (["--customer", "c", "--meter", "nope", "--quantity", "5", "--action", "warning"], "no meter 'nope'"),
            (["--customer", "c", "--amount", "5", "--action", "stop"], "not an action"),
            (["--customer", "c", "--amount", "5", "--action", "warning", "--notify-at", "80,50"], "must increase"),
            (["--plan", "gold", "--amount", "5", "--action", "warning"], "no plan 'gold'"),
        ]
        for (arguments, message) in cases {
            let result = try daemon.tally(["limits", "add"] + arguments + common)
            #expect(result.status != 0)
            #expect(result.error.contains(message), "\(arguments): \(result.error)")
        }
        #expect(daemon.terminate() == 0)
    }
}
