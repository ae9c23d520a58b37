import Foundation
import Logging
import Metering
import Rating
import Storage
import Testing

@testable import Billing

/// `pricedConfig` with other prices: calls dearer, the platform fee gone, `other` priced, `peak` with a minimum.
let repricedConfig = """
    meters:
      - { code: calls, aggregation: count }
      - { code: peak, aggregation: max }
      - { code: other, aggregation: sum }
      - { code: platform, aggregation: count }
    plans:
      - code: basic
        currency: USD
        prices:
          - { meter: calls, model: per_unit, unit_amount: "0.02" }
          - { meter: other, model: per_unit, unit_amount: "0.5" }
          - { meter: peak, model: per_unit, unit_amount: "1", minimum: "3" }
      - code: euro
        currency: EUR
        prices:
          - { meter: calls, model: per_unit, unit_amount: "0.01" }
    default_plan: basic
    """

@Suite("Re-rating")
struct RerateTests {
    static func usage(calls: Int, other: Int) -> [UsageRecord] {
        [UsageRecord(meter: "calls", group: [], quantity: ExactDecimal(calls), eventCount: UInt64(calls)),
         UsageRecord(meter: "other", group: [], quantity: ExactDecimal(other), eventCount: 1)]
    }

    static func statement(_ yaml: String, plan: String = "basic", calls: Int = 100, other: Int = 7) throws -> Statement {
        let config = try config(yaml)
        return try StatementBuilder(config: config).statement(
            customer: "c", period: november, plan: config.plans.first { $0.code == plan }, usage: usage(calls: calls, other: other))
    }

    @Test("rating events re-aggregated under the same config gives byte-identical statements and summary")
    func sameConfigSameStatements() throws {
        let config = try config(pricedConfig)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-rerate-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try TallyStore(path: directory, configuration: .init(meters: config.meters, billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "test"))
        let writer = try StoreWriter(store: store)
        let day = november.start.adding(nanoseconds: 86_400_000_000_000)
        var events: [PendingEvent] = []
        for index in 0..<40 {
            let meter = ["calls", "peak", "other", "platform"][index % 4]
            events.append(PendingEvent(event: UsageEvent(id: "e\(index)", customer: "cus_\(index % 3)", meter: meter,
                                                         value: ExactDecimal(index), time: day), receivedAt: day))
        }
        #expect(try writer.record(events).allSatisfy { $0 == .accepted })
        try store.setPlan(customer: "assigned_only", plan: "basic", from: november.start)

        let run = RatingRun(config: config, period: november)
        var fromStore: [String] = []
        let storeSummary = try run.run(store: store) { fromStore.append(StatementFormat.json($0)) }
        var aggregator = EventAggregator(meters: config.meters, period: november, store: store)
        try store.forEachEvent { aggregator.add($0); return true }
        var fromEvents: [String] = []
        let eventSummary = try run.run(store: store, usage: aggregator.usageByCustomer()) { fromEvents.append(StatementFormat.json($0)) }
        #expect(fromStore.count == 4)   // three customers with usage, one with a plan only
        #expect(fromEvents == fromStore)
        #expect(StatementFormat.json(eventSummary) == StatementFormat.json(storeSummary))
        #expect(eventSummary.usageRows == 12)

        var one: [Statement] = []
        _ = try run.run(store: store, usage: aggregator.usageByCustomer(), customer: "cus_1") { one.append($0) }
        #expect(one.map(StatementFormat.json) == fromStore.filter { $0.contains(#""customer":"cus_1""#) })
        let difference = try StatementDifference(original: one[0], rerated: one[0])
        #expect(!difference.isChanged && difference.difference == 0)
        #expect(difference.lines.allSatisfy { !$0.isChanged && $0.difference == 0 })
    }

    @Test("a changed price: matched lines with their amounts before and after, totals and the difference")
    func changedPrice() throws {
        let repriced = pricedConfig.replacingOccurrences(of: #"unit_amount: "0.015""#, with: #"unit_amount: "0.02""#)
        let difference = try StatementDifference(original: try Self.statement(pricedConfig), rerated: try Self.statement(repriced))
        #expect(difference.lines.map(\.meter) == ["calls", "peak", "platform", "other"])
        let calls = difference.lines[0]
        #expect(calls.originalQuantity == 100 && calls.quantity == 100)
        #expect(calls.originalAmount == ExactDecimal("1.5") && calls.amount == 2)
        #expect(calls.difference == ExactDecimal("0.5"))
        #expect(calls.isChanged)
        #expect(difference.lines.dropFirst().allSatisfy { !$0.isChanged && $0.difference == 0 && $0.inOriginal && $0.inRerated })
        #expect(difference.originalTotal == ExactDecimal("14.49"))   // 1.50 + 3 (minimum) + 9.99 + 0
        #expect(difference.total == ExactDecimal("14.99"))
        #expect(difference.difference == ExactDecimal("0.5"))
        #expect(difference.currency?.code == "USD" && !difference.currencyChanged)
        #expect(difference.isChanged)
    }

    @Test("lines on one side only count 0 on the other; an unpriced line becoming priced is matched")
    func addedAndRemovedLines() throws {
        let difference = try StatementDifference(original: try Self.statement(pricedConfig), rerated: try Self.statement(repricedConfig))
        #expect(difference.lines.map(\.meter) == ["calls", "other", "peak", "platform"])
        let other = difference.lines[1]
        #expect(other.inOriginal && other.inRerated)
        #expect(other.originalQuantity == 7 && other.quantity == 7)
        #expect(other.originalAmount == 0 && other.amount == ExactDecimal("3.5"))
        let peak = difference.lines[2]   // matched: both plans price peak at its minimum
        #expect(peak.originalAmount == 3 && peak.amount == 3 && !peak.isChanged)
        let platform = difference.lines[3]
        #expect(platform.inOriginal && !platform.inRerated)
        #expect(platform.originalAmount == ExactDecimal("9.99") && platform.amount == 0)
        #expect(platform.difference == ExactDecimal("-9.99"))
        #expect(platform.isChanged)
        #expect(difference.originalTotal == ExactDecimal("14.49"))
        #expect(difference.total == ExactDecimal("8.5"))             // 2.00 + 3.50 + 3.00
        #expect(difference.difference == ExactDecimal("-5.99"))

        // The other way round the platform line is new: in the re-rated statement only.
        let back = try StatementDifference(original: try Self.statement(repricedConfig), rerated: try Self.statement(pricedConfig))
        let added = try #require(back.lines.first { $0.meter == "platform" })
        #expect(!added.inOriginal && added.inRerated && added.originalQuantity == 0 && added.difference == ExactDecimal("9.99"))
        #expect(back.difference == ExactDecimal("5.99"))
    }

    @Test("lines with the same meter and group are matched in order, the surplus counted alone")
    func repeatedLines() throws {
        func line(_ amount: ExactDecimal) -> StatementLine {
            StatementLine(meter: "", group: [], aggregation: "none", quantity: 0, model: "flat", rating: nil,
                          exactAmount: amount, amount: amount)
        }
        func statement(_ lines: [StatementLine]) throws -> Statement {
            var total = ExactDecimal.zero
            for line in lines { total = try total.adding(line.amount) }
            return Statement(customer: "c", period: november, plan: "p", currency: Currency.named("EUR"),
                             lines: lines, exactTotal: total, total: total)
        }
        let difference = try StatementDifference(original: try statement([line(5), line(7), line(1)]), rerated: try statement([line(6), line(7)]))
        #expect(difference.lines.map(\.originalAmount) == [5, 7, 1])
        #expect(difference.lines.map(\.amount) == [6, 7, 0])
        #expect(difference.lines.map(\.difference) == [1, 0, -1])
        #expect(difference.lines.map(\.inRerated) == [true, true, false])
        #expect(difference.difference == 0)
        #expect(difference.isChanged)   // lines changed although the total did not
    }

    @Test("the summary adds each side in its own currency; a plan in another currency is a change")
    func summary() throws {
        var summary = RerateSummary(period: november)
        try summary.add(StatementDifference(original: try Self.statement(pricedConfig), rerated: try Self.statement(repricedConfig)))
        try summary.add(StatementDifference(original: try Self.statement(pricedConfig, calls: 10, other: 0),
                                            rerated: try Self.statement(pricedConfig, calls: 10, other: 0)))
        let moved = try StatementDifference(original: try Self.statement(pricedConfig, calls: 10),
                                            rerated: try Self.statement(repricedConfig, plan: "euro", calls: 10))
        #expect(moved.currencyChanged && moved.isChanged)
        #expect(moved.currency?.code == "EUR" && moved.originalCurrency?.code == "USD")
        try summary.add(moved)
        #expect(summary.customers == 3 && summary.changed == 2)
        let totals = try summary.totals()
        #expect(totals.map(\.currency) == ["EUR", "USD"])
        #expect(totals[0].original == 0 && totals[0].rerated == ExactDecimal("0.1") && totals[0].difference == ExactDecimal("0.1"))
        // USD: 14.49 + 13.14 + 13.14 originally; 8.50 + 13.14 re-rated.
        #expect(totals[1].original == ExactDecimal("40.77"))
        #expect(totals[1].rerated == ExactDecimal("21.64"))
        #expect(totals[1].difference == ExactDecimal("-19.13"))

        #expect(try StatementFormat.json(summary) == #"{"summary":{"period":{"start":"2026-11-01T00:00:00Z","end":"2026-12-01T00:00:00Z"},"customers":3,"changed":2,"totals":[{"currency":"EUR","original":"0.00","rerated":"0.10","difference":"0.10"},{"currency":"USD","original":"40.77","rerated":"21.64","difference":"-19.13"}]}}"#)
    }

    @Test("the JSON of a difference: the re-rated statement as rate prints it, totals and lines as decimal strings")
    func json() throws {
        let rerated = try Self.statement(repricedConfig)
        let difference = try StatementDifference(original: try Self.statement(pricedConfig), rerated: rerated)
        let text = StatementFormat.json(difference)
        #expect(text.hasPrefix(#"{"customer":"c","period":{"start":"2026-11-01T00:00:00Z","end":"2026-12-01T00:00:00Z"},"currency":"USD","original_currency":"USD","statement":"#
                               + StatementFormat.json(rerated) + #","original_total":"14.49","total":"8.50","difference":"-5.99","lines":["#))
        #expect(text.contains(#"{"meter":"other","group":{},"original_quantity":"7","quantity":"7","original_amount":"0.00","amount":"3.50","difference":"3.50"}"#))
        #expect(text.hasSuffix(#"{"meter":"platform","group":{},"original_quantity":"0","quantity":"0","original_amount":"9.99","amount":"0.00","difference":"-9.99"}]}"#))
        let decoded = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect((decoded?["lines"] as? [Any])?.count == 4)
    }
}
