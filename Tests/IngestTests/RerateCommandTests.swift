import Foundation
import Metering
import Testing

/// Events in over the socket → `tally rerate` against `tally rate`, under the same config, a price
/// change and a corrected meter.
@Suite("Rerate end to end")
struct RerateCommandTests {
    static let config = """
        store:
          path: data
        ingest:
          socket: tally.sock
        meters:
          - { code: api_calls, aggregation: count }
          - { code: storage_gb, aggregation: max }
          - { code: tokens, aggregation: sum, group_by: [model] }
        plans:
          - code: starter
            currency: USD
            prices:
              - { meter: api_calls, model: per_unit, unit_amount: "0.25" }
              - { meter: storage_gb, model: per_unit, unit_amount: "0.10", free_units: 5 }
              - meter: tokens
                model: package
                package_size: 1000
                package_amount: "0.02"
                dimensions: { model: { large: { package_amount: "0.06" } } }
          - code: yen
            currency: JPY
            prices:
              - { meter: api_calls, model: per_unit, unit_amount: "10.5" }
        default_plan: starter
        customers:
          - { id: cus_config, plan: yen }
        """

    /// One customer's line of `tally rerate --json`.
    struct CustomerJSON: Decodable {
        struct Line: Decodable, Equatable {
            var meter: String
            var group: [String: String]
            var original_quantity: String
            var quantity: String
            var original_amount: String
            var amount: String
            var difference: String
        }
        var customer: String
        var currency: String?
        var original_total: String
        var total: String
        var difference: String
        var lines: [Line]

        func line(_ meter: String, _ group: [String: String] = [:]) -> Line? {
            lines.first { $0.meter == meter && $0.group == group }
        }
    }

    struct SummaryJSON: Decodable {
        struct Summary: Decodable {
            struct Total: Decodable, Equatable { var currency: String; var original: String; var rerated: String; var difference: String }
            var customers: Int
            var changed: Int
            var totals: [Total]
        }
        var summary: Summary
    }

    /// A daemon with the events of the current period (and one of the previous period) ingested.
    static func ingested() throws -> (daemon: DaemonHarness, period: String) {
        let daemon = try DaemonHarness(config: config)
        try daemon.start()
        let period = BillingPeriod.monthly.interval(containing: .now())
        var lines: [String] = []
        for index in 0..<6 { lines.append(eventLine(id: "a\(index)", customer: "cus_a")) }        // 6 × 0.25 = 1.50
        lines.append(eventLine(id: "s1", customer: "cus_a", meter: "storage_gb", value: "\"12.25\""))  // 7.25 × 0.10 = 0.725 → 0.73
        lines.append(eventLine(id: "t1", customer: "cus_a", meter: "tokens", value: "1500",
                               extra: #","properties":{"model":"small","billable":"true"}"#))   // 2 packages × 0.02 = 0.04
        lines.append(eventLine(id: "t2", customer: "cus_a", meter: "tokens", value: "100",
                               extra: #","properties":{"model":"large","billable":"false"}"#))  // 1 package × 0.06
        // The previous period's last second (within the 35-day dedup window): counted in neither run.
        lines.append(eventLine(id: "old", customer: "cus_a", extra: #","time":"\#(period.start.adding(nanoseconds: -1_000_000_000).rfc3339)""#))
        for index in 0..<25 { lines.append(eventLine(id: "b\(index)", customer: "cus_b")) }       // 6.25
        for index in 0..<6 { lines.append(eventLine(id: "c\(index)", customer: "cus_config")) }  // 6 × 10.5 = 63 JPY
        let responses = try daemon.exchange(lines.joined(separator: "\n") + "\n")
        #expect(responses.count == lines.count && responses.allSatisfy { $0 == acceptedLine }, "\(responses)")
        return (daemon, period.label)
    }

    static func decode(_ output: String) throws -> (customers: [CustomerJSON], summary: SummaryJSON.Summary) {
        let lines = output.split(separator: "\n").map { Data($0.utf8) }
        let customers = try lines.dropLast().map { try JSONDecoder().decode(CustomerJSON.self, from: $0) }
        let summary = try JSONDecoder().decode(SummaryJSON.self, from: try #require(lines.last)).summary
        return (customers, summary)
    }

    /// Writes a copy of the config with `change` applied and returns its path.
    static func variant(_ daemon: DaemonHarness, _ name: String, _ change: (String) -> String) throws -> String {
        let path = daemon.directory + "/" + name
        let changed = change(config)
        #expect(changed != config)
        try changed.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("the same config: no differences, and the statements are those of tally rate")
    func sameConfig() throws {
        let (daemon, period) = try Self.ingested()
        let common = ["--config", daemon.configPath, "--store", daemon.storePath, "--original-config", daemon.configPath]
        let rate = try daemon.tally(["rate", "--period", period, "--config", daemon.configPath, "--store", daemon.storePath])
        #expect(rate.status == 0, "\(rate.error)")
        let statements = rate.output.split(separator: "\n").dropLast().map(String.init)   // without the summary
        #expect(statements.count == 3)

        let rerate = try daemon.tally(["rerate", "--period", period, "--json"] + common)
        #expect(rerate.status == 0, "\(rerate.error)")
        let lines = rerate.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        for (line, statement) in zip(lines, statements) {
            #expect(line.contains(#","statement":"# + statement + #","original_total":"#))
        }
        let (customers, summary) = try Self.decode(rerate.output)
        #expect(customers.map(\.customer) == ["cus_a", "cus_b", "cus_config"])
        for customer in customers {
            #expect(customer.difference == (customer.currency == "JPY" ? "0" : "0.00"))
            #expect(customer.total == customer.original_total)
            #expect(customer.lines.allSatisfy { $0.quantity == $0.original_quantity && $0.amount == $0.original_amount && ExactDecimal($0.difference) == 0 })
        }
        #expect(customers[0].total == "2.33")
        #expect(customers[0].line("tokens", ["model": "small"])?.quantity == "1500")
        #expect(summary.customers == 3 && summary.changed == 0)
        #expect(summary.totals == [.init(currency: "JPY", original: "63", rerated: "63", difference: "0"),
                                   .init(currency: "USD", original: "8.58", rerated: "8.58", difference: "0.00")])

        let text = try daemon.tally(["rerate", "--period", period] + common)
        #expect(text.status == 0, "\(text.error)")
        #expect(text.output.contains("re-rated from 40 events under"))   // the previous period's event is not read
        #expect(text.output.contains("cus_a  starter  USD  2.33 → 2.33  (unchanged)\n"))
        #expect(text.output.contains("3 customers, 0 changed\n"))
        #expect(daemon.terminate() == 0)
    }

    @Test("a price change: the new totals and differences, exact; only changed lines in the text")
    func priceChange() throws {
        let (daemon, period) = try Self.ingested()
        let repriced = try Self.variant(daemon, "repriced.yaml") {
            $0.replacingOccurrences(of: #"{ meter: api_calls, model: per_unit, unit_amount: "0.25" }"#,
                                    with: #"{ meter: api_calls, model: per_unit, unit_amount: "0.3" }"#)
        }
        let common = ["--config", repriced, "--store", daemon.storePath, "--original-config", daemon.configPath]
        let rerate = try daemon.tally(["rerate", "--period", period, "--json"] + common)
        #expect(rerate.status == 0, "\(rerate.error)")
        let (customers, summary) = try Self.decode(rerate.output)
        #expect(customers.map(\.customer) == ["cus_a", "cus_b", "cus_config"])
        let cusA = customers[0]
        #expect([cusA.original_total, cusA.total, cusA.difference] == ["2.33", "2.63", "0.30"])
        #expect(cusA.line("api_calls") == .init(meter: "api_calls", group: [:], original_quantity: "6", quantity: "6",
                                                original_amount: "1.50", amount: "1.80", difference: "0.30"))
        #expect(cusA.line("storage_gb")?.difference == "0.00")
        #expect(cusA.line("tokens", ["model": "large"])?.amount == "0.06")
        #expect([customers[1].original_total, customers[1].total, customers[1].difference] == ["6.25", "7.50", "1.25"])
        #expect([customers[2].currency, customers[2].total, customers[2].difference] == ["JPY", "63", "0"])
        #expect(summary.customers == 3 && summary.changed == 2)
        #expect(summary.totals == [.init(currency: "JPY", original: "63", rerated: "63", difference: "0"),
                                   .init(currency: "USD", original: "8.58", rerated: "10.13", difference: "1.55")])
        // The re-rated statement is what `tally rate` prints under the new config.
        let rate = try daemon.tally(["rate", "--period", period, "--customer", "cus_b", "--config", repriced, "--store", daemon.storePath])
        #expect(rerate.output.contains(#""statement":"# + rate.output.split(separator: "\n")[0] + ","))

        let text = try daemon.tally(["rerate", "--period", period] + common)
        #expect(text.status == 0, "\(text.error)")
        let output = text.output.split(separator: "\n").map(String.init)
        #expect(output.contains("cus_a  starter  USD  2.33 → 2.63  (+0.30)"))
        #expect(output.contains { $0.hasPrefix("  api_calls") && $0.contains("6") && $0.contains("1.50 → 1.80") && $0.hasSuffix("+0.30") })
        #expect(!output.contains { $0.hasPrefix("  storage_gb") })   // unchanged lines are not listed
        #expect(output.contains("cus_config  yen  JPY  63 → 63  (unchanged)"))
        #expect(output.contains("3 customers, 2 changed"))
        #expect(output.contains { $0.hasPrefix("USD") && $0.contains("8.58") && $0.contains("10.13") && $0.hasSuffix("+1.55") })

        let one = try daemon.tally(["rerate", "--period", period, "--customer", "cus_b", "--json"] + common)
        let (only, oneSummary) = try Self.decode(one.output)
        #expect(only.map(\.customer) == ["cus_b"])
        #expect(oneSummary.totals == [.init(currency: "USD", original: "6.25", rerated: "7.50", difference: "1.25")])
        #expect(daemon.terminate() == 0)
    }

    @Test("a corrected meter: a filter drops events, so a line's quantity and amount fall to 0")
    func correctedMeter() throws {
        let (daemon, period) = try Self.ingested()
        let corrected = try Self.variant(daemon, "corrected.yaml") {
            $0.replacingOccurrences(of: "{ code: tokens, aggregation: sum, group_by: [model] }",
                                    with: #"{ code: tokens, aggregation: sum, group_by: [model], filter: { billable: "true" } }"#)
        }
        let rerate = try daemon.tally(["rerate", "--period", period, "--customer", "cus_a", "--json",
                                       "--config", corrected, "--store", daemon.storePath, "--original-config", daemon.configPath])
        #expect(rerate.status == 0, "\(rerate.error)")
        let (customers, summary) = try Self.decode(rerate.output)
        let cusA = try #require(customers.first)
        #expect(cusA.line("tokens", ["model": "small"])?.difference == "0.00")
        #expect(cusA.line("tokens", ["model": "large"]) == .init(meter: "tokens", group: ["model": "large"], original_quantity: "100",
                                                                quantity: "0", original_amount: "0.06", amount: "0.00", difference: "-0.06"))
        #expect([cusA.original_total, cusA.total, cusA.difference] == ["2.33", "2.27", "-0.06"])
        #expect(summary.changed == 1)

        // Without group_by the tokens are one line: 1600 → 2 packages at the default 0.02.
        let ungrouped = try Self.variant(daemon, "ungrouped.yaml") {
            $0.replacingOccurrences(of: "{ code: tokens, aggregation: sum, group_by: [model] }", with: "{ code: tokens, aggregation: sum }")
                .replacingOccurrences(of: #"dimensions: { model: { large: { package_amount: "0.06" } } }"#, with: "")
        }
        let merged = try daemon.tally(["rerate", "--period", period, "--customer", "cus_a", "--json",
                                       "--config", ungrouped, "--store", daemon.storePath, "--original-config", daemon.configPath])
        let mergedA = try #require(try Self.decode(merged.output).customers.first)
        #expect(mergedA.line("tokens")?.quantity == "1600" && mergedA.line("tokens")?.amount == "0.04")
        #expect(mergedA.line("tokens", ["model": "small"])?.quantity == "0")
        #expect(mergedA.difference == "-0.06")
        #expect(daemon.terminate() == 0)
    }

    @Test("unhappy paths: a bad period, a missing original config, an unknown customer, another period rule")
    func unhappy() throws {
        let (daemon, period) = try Self.ingested()
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        let badPeriod = try daemon.tally(["rerate", "--period", "2026-13", "--original-config", daemon.configPath] + common)
        #expect(badPeriod.status == 1)
        #expect(badPeriod.error.contains("'2026-13' is not a period"))
        #expect(badPeriod.output.isEmpty)

        let missing = try daemon.tally(["rerate", "--period", period, "--original-config", daemon.directory + "/gone.yaml"] + common)
        #expect(missing.status == 1)
        #expect(missing.error.contains("no config file at \(daemon.directory)/gone.yaml"))
        #expect(missing.error.contains("--original-config"))
        // The default is config/tally.yaml, relative to where tally runs: not there in the test's directory.
        let defaulted = try daemon.tally(["rerate", "--period", period] + common)
        #expect(defaulted.status == 1 && defaulted.error.contains("config/tally.yaml"))

        let unknown = try daemon.tally(["rerate", "--period", period, "--customer", "cus_nobody", "--original-config", daemon.configPath] + common)
        #expect(unknown.status == 1)
        #expect(unknown.error.contains("customer 'cus_nobody' has no usage, no events and no plan assignment in period \(period)"))

        let weekly = try Self.variant(daemon, "weekly.yaml") { $0.replacingOccurrences(of: "ingest:\n", with: "billing: { period: weekly }\ningest:\n") }
        let mismatch = try daemon.tally(["rerate", "--period", BillingPeriod.weekly.interval(containing: .now()).label,
                                         "--config", weekly, "--store", daemon.storePath, "--original-config", daemon.configPath])
        #expect(mismatch.status == 1)
        #expect(mismatch.error.contains("give both configs the same billing.period"), "\(mismatch.error)")
        #expect(daemon.terminate() == 0)
    }
}
