import Foundation
import Metering
import Testing

/// Events in over the socket → statements out of `tally rate`, with the amounts the prices imply.
@Suite("Rating end to end")
struct RatingEndToEndTests {
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
              - meter: api_calls
                model: graduated
                tiers:
                  - { up_to: 5, unit_amount: "7.00" }
                  - { up_to: 10, unit_amount: "6.50" }
                  - { up_to: inf, unit_amount: "6.00" }
              - { meter: storage_gb, model: per_unit, unit_amount: "0.10", free_units: 5 }
              - meter: tokens
                model: package
                package_size: 1000
                package_amount: "0.02"
                dimensions: { model: { large: { package_amount: "0.06" } } }
          - code: yen
            currency: JPY
            prices:
              - { meter: api_calls, model: volume, tiers: [{ up_to: 5, unit_amount: "100.5" }, { up_to: inf, unit_amount: "90.25" }] }
        default_plan: starter
        customers:
          - { id: cus_config, plan: yen }
        """

    @Test("statements carry the expected totals; a re-run is byte-identical; set-plan and config assignments apply")
    func statements() throws {
        let daemon = try DaemonHarness(config: Self.config)
        try daemon.start()
        var lines: [String] = []
        for index in 0..<6 { lines.append(eventLine(id: "a\(index)", customer: "cus_a")) }       // graduated: 5×7 + 1×6.50 = 41.50
        lines.append(eventLine(id: "s1", customer: "cus_a", meter: "storage_gb", value: "\"12.25\""))  // (12.25−5)×0.10 = 0.725 → 0.73
        lines.append(eventLine(id: "t1", customer: "cus_a", meter: "tokens", value: "1500", extra: #","properties":{"model":"small"}"#)) // 2 × 0.02
        lines.append(eventLine(id: "t2", customer: "cus_a", meter: "tokens", value: "100", extra: #","properties":{"model":"large"}"#))  // 1 × 0.06
        for index in 0..<25 { lines.append(eventLine(id: "b\(index)", customer: "cus_b")) }       // 157.50, then on plan yen
        for index in 0..<6 { lines.append(eventLine(id: "c\(index)", customer: "cus_config")) }  // volume 6 × 90.25 = 541.5 → 542 JPY
        let responses = try daemon.exchange(lines.joined(separator: "\n") + "\n")
        #expect(responses.allSatisfy { $0 == acceptedLine })
        let period = BillingPeriod.monthly.interval(containing: .now()).label
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]

        // Before any assignment cus_b is on the default plan.
        let first = try daemon.tally(["rate", "--period", period] + common)
        #expect(first.status == 0, "\(first.error)")
        let statements = first.output.split(separator: "\n").map(String.init)
        #expect(statements.count == 4)  // cus_a, cus_b, cus_config, then the summary
        let cusA = try #require(statements.first { $0.contains(#""customer":"cus_a""#) })
        #expect(cusA.contains(#""totals":[{"currency":"USD","exact_amount":"42.325","amount":"42.33"}]"#))
        #expect(cusA.contains(#""tiers":[{"tier":1,"quantity":"5","unit_amount":"7","flat_amount":"0","amount":"35"},{"tier":2,"quantity":"1","unit_amount":"6.5","flat_amount":"0","amount":"6.5"}],"exact_amount":"41.5","amount":"41.50""#))
        #expect(cusA.contains(#""group":{"model":"large"},"aggregation":"sum","quantity":"100","model":"package""#))
        let cusB = try #require(statements.first { $0.contains(#""customer":"cus_b""#) })
        #expect(cusB.contains(#""amount":"157.50"}]"#))
        let cusConfig = try #require(statements.first { $0.contains(#""customer":"cus_config""#) })
        #expect(cusConfig.contains(#""plan":"yen","currency":"JPY""#))
        #expect(cusConfig.contains(#""totals":[{"currency":"JPY","exact_amount":"541.5","amount":"542"}]"#))
        #expect(statements.last?.contains(#""customers":3"#) == true)

        // The same data gives byte-identical output, to stdout and to files.
        #expect(try daemon.tally(["rate", "--period", period] + common).output == first.output)
        let outA = daemon.directory + "/run-a", outB = daemon.directory + "/run-b"
        #expect(try daemon.tally(["rate", "--period", period, "--out", outA] + common).status == 0)
        #expect(try daemon.tally(["rate", "--period", period, "--out", outB] + common).status == 0)
        #expect(try String(contentsOfFile: outA + "/statements.json", encoding: .utf8) + String(contentsOfFile: outA + "/summary.json", encoding: .utf8) == first.output)
        for file in ["statements.json", "summary.json"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: outA + "/" + file))
            let b = try Data(contentsOf: URL(fileURLWithPath: outB + "/" + file))
            #expect(a == b, "\(file)")
        }
        let csv = try daemon.tally(["rate", "--period", period, "--customer", "cus_a", "--format", "csv"] + common)
        #expect(csv.output.hasPrefix("customer,period,plan,currency,meter,group,aggregation,quantity,model,exact_amount,amount\n"))
        #expect(csv.output.contains("cus_a,\(period),starter,USD,storage_gb,,max,12.25,per_unit,0.725,0.73"))

        // A plan assigned in the store takes precedence; an unknown plan is refused.
        let assign = try daemon.tally(["customers", "set-plan", "cus_b", "yen", "--from", "2020-01-01"] + common)
        #expect(assign.status == 0, "\(assign.error)")
        let unknown = try daemon.tally(["customers", "set-plan", "cus_b", "gold"] + common)
        #expect(unknown.status != 0)
        #expect(unknown.error.contains("no plan 'gold'"))
        let after = try daemon.tally(["rate", "--period", period, "--customer", "cus_b"] + common)
        #expect(after.output.contains(#""totals":[{"currency":"JPY","exact_amount":"2256.25","amount":"2256"}]"#))
        let list = try daemon.tally(["customers", "list", "--json"] + common)
        #expect(list.output.contains(#"{"customer":"cus_b","plan":"yen","source":"assigned"}"#))
        #expect(list.output.contains(#"{"customer":"cus_config","plan":"yen","source":"config"}"#))
        #expect(list.output.contains(#"{"customer":"cus_a","plan":"starter","source":"default_plan"}"#))
        #expect(daemon.terminate() == 0)
    }

    @Test("estimate reflects every acknowledged event, with run-rate projections for sums and counts")
    func estimate() throws {
        let daemon = try DaemonHarness(config: Self.config)
        try daemon.start()
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        for batch in 0..<3 {
            let lines = (0..<4).map { eventLine(id: "e\(batch)-\($0)", customer: "cus_e") }
            #expect(try daemon.exchange(lines.joined(separator: "\n") + "\n").allSatisfy { $0 == acceptedLine })
            let result = try daemon.tally(["estimate", "--customer", "cus_e", "--json"] + common)
            #expect(result.status == 0, "\(result.error)")
            struct EstimateJSON: Decodable {
                struct Line: Decodable { var meter: String; var quantity: String; var amount: String; var projected_amount: String }
                var currency: String?
                var lines: [Line]
                var total: String
                var projected_total: String
            }
            let estimate = try JSONDecoder().decode(EstimateJSON.self, from: Data(result.output.utf8))
            let calls = try #require(estimate.lines.first { $0.meter == "api_calls" })
            #expect(calls.quantity == String(4 * (batch + 1)))
            #expect(estimate.currency == "USD")
            // The projection of a count is at least what has been used.
            #expect(ExactDecimal(calls.projected_amount)! >= ExactDecimal(calls.amount)!)
        }
        #expect(daemon.terminate() == 0)
    }

    @Test("tally quote: the brief's examples and a bad price")
    func quote() throws {
        let daemon = try DaemonHarness(config: Self.config)
        let tiers = #"{"model":"volume","tiers":[{"up_to":5,"unit_amount":"7"},{"up_to":10,"unit_amount":"6.5"},{"up_to":"inf","unit_amount":"6"}]}"#
        let volume = try daemon.tally(["quote", "--price", tiers, "--quantity", "6"])
        #expect(volume.output.hasPrefix(#"{"quantity":"6","currency":"USD","amount":"39.00","exact_amount":"39","lines":["#))
        let pricePath = daemon.directory + "/price.yaml"
        try "model: per_unit\nunit_amount: \"10.00\"\ntransform: { divide_by: 60, round: up }\n".write(toFile: pricePath, atomically: true, encoding: .utf8)
        let file = try daemon.tally(["quote", "--price", pricePath, "--quantity", "150"])
        #expect(file.output.contains(#""amount":"30.00""#))
        let bad = try daemon.tally(["quote", "--price", #"{"model":"graduated","tiers":[{"up_to":10,"unit_amount":"1"},{"up_to":5,"unit_amount":"1"}]}"#, "--quantity", "1"])
        #expect(bad.status == 1)
        #expect(bad.error.contains("up_to"))
    }
}
