import Foundation
import Logging
import TallyConfiguration
import Metering
import Rating
import Storage
import Testing

@testable import Billing

let november = BillingPeriod.monthly.interval(label: "2026-11")!

func config(_ yaml: String) throws -> TallyConfig {
    try ConfigLoader.parse(yaml: yaml, fileName: "test.yaml")
}

let pricedConfig = """
    meters:
      - { code: calls, aggregation: count }
      - { code: peak, aggregation: max }
      - { code: other, aggregation: sum }
      - { code: platform, aggregation: count }
    plans:
      - code: basic
        currency: USD
        prices:
          - { meter: calls, model: per_unit, unit_amount: "0.015" }
          - { meter: peak, model: per_unit, unit_amount: "1", minimum: "3" }
          - { meter: platform, model: flat, amount: "9.99" }
    default_plan: basic
    """

@Suite("Statements")
struct StatementTests {
    @Test("lines per price, flat fees without usage, minimum adjustment, unpriced usage; rounding once per line")
    func statement() throws {
        let config = try config(pricedConfig)
        let builder = StatementBuilder(config: config)
        let usage = [
            UsageRecord(meter: "calls", group: [], quantity: 3, eventCount: 3),          // 0.045 → 0.05 (half away from zero)
            UsageRecord(meter: "other", group: [], quantity: 7, eventCount: 2),
        ]
        let statement = try builder.statement(customer: "c", period: november, plan: config.plans.first, usage: usage)
        #expect(statement.lines.map(\.meter) == ["calls", "peak", "platform", "other"])
        #expect(statement.lines[0].exactAmount == ExactDecimal("0.045"))
        #expect(statement.lines[0].amount == ExactDecimal("0.05"))
        #expect(statement.lines[1].quantity == 0)
        #expect(statement.lines[1].exactAmount == 3)            // the minimum applies at zero usage
        #expect(statement.lines[2].model == "flat")
        #expect(statement.lines[2].amount == ExactDecimal("9.99"))
        #expect(statement.lines[3].model == "unpriced")
        #expect(statement.exactTotal == ExactDecimal("13.035"))
        #expect(statement.total == ExactDecimal("13.04"))
        #expect(statement.currency?.code == "USD")
    }

    @Test("half_even rounding from the config")
    func halfEven() throws {
        let config = try config(pricedConfig + "\nbilling: { rounding: half_even }\n")
        let line = try StatementBuilder(config: config).line(
            meter: "calls", group: [], quantity: 3, price: config.plans[0].prices[0], currency: Currency.named("USD"))
        #expect(line.amount == ExactDecimal("0.04"))  // 0.045 → 0.04 under half-even
    }

    @Test("no plan: usage lines are unpriced and there is no currency")
    func noPlan() throws {
        let config = try config("meters: [{ code: calls, aggregation: count }]")
        let statement = try StatementBuilder(config: config).statement(
            customer: "c", period: november, plan: nil, usage: [UsageRecord(meter: "calls", group: [], quantity: 2, eventCount: 2)])
        #expect(statement.currency == nil)
        #expect(statement.total == 0)
        #expect(StatementFormat.json(statement).contains(#""plan":null,"currency":null"#))
    }

    @Test("CSV fields with commas and quotes are quoted")
    func csvQuoting() {
        #expect(StatementFormat.csvField("plain") == "plain")
        #expect(StatementFormat.csvField("a,b") == "\"a,b\"")
        #expect(StatementFormat.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
    }
}

@Suite("Estimates and plans")
struct EstimateTests {
    @Test("run rate: period length over elapsed whole seconds")
    func runRate() {
        let start = november.start
        let tenDays = start.adding(nanoseconds: 10 * 86_400 * 1_000_000_000)
        #expect(Estimator.runRate(period: november, now: tenDays) == 3)   // November has 30 days
        #expect(Estimator.runRate(period: november, now: start) == nil)
        #expect(Estimator.runRate(period: november, now: november.end) == nil)
    }

    @Test("an estimate projects counts at their run rate and maxima as they stand")
    func projection() throws {
        let config = try config(pricedConfig)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-billing-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try TallyStore(path: directory, configuration: .init(meters: config.meters, billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "test"))
        let writer = try StoreWriter(store: store)
        let day = Timestamp(nanosecondsSinceEpoch: november.start.nanosecondsSinceEpoch + 86_400_000_000_000)
        let events = (0..<4).map {
            PendingEvent(event: UsageEvent(id: "c\($0)", customer: "c", meter: "calls", time: day), receivedAt: day)
        } + [PendingEvent(event: UsageEvent(id: "p", customer: "c", meter: "peak", value: 5, time: day), receivedAt: day)]
        #expect(try writer.record(events).allSatisfy { $0 == .accepted })
        let tenDays = november.start.adding(nanoseconds: 10 * 86_400 * 1_000_000_000)
        let estimate = try Estimator(config: config, resolver: try PlanResolver(config: config, store: store))
            .estimate(customer: "c", store: store, at: tenDays)
        let calls = try #require(estimate.lines.first { $0.meter == "calls" })
        #expect(calls.amount == ExactDecimal("0.06"))            // 4 × 0.015
        #expect(calls.projectedAmount == ExactDecimal("0.18"))   // 12 × 0.015
        let peak = try #require(estimate.lines.first { $0.meter == "peak" })
        #expect(peak.amount == 5 && peak.projectedAmount == 5)
        #expect(estimate.total == ExactDecimal("15.05"))         // 0.06 + 5 + 9.99
        #expect(estimate.projectedTotal == ExactDecimal("15.17"))
    }

    @Test("plan resolution: stored assignment before the period's end, then config, then default_plan")
    func resolver() throws {
        let config = try config(pricedConfig + """

            customers: [{ id: fixed, plan: basic }]
            """ + "\n").withExtraPlan()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-plans-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try TallyStore(path: directory, configuration: .init(meters: config.meters, billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "test"))
        try store.setPlan(customer: "moved", plan: "extra", from: november.start.adding(nanoseconds: 5 * 86_400_000_000_000))
        try store.setPlan(customer: "later", plan: "extra", from: november.end)
        let resolver = try PlanResolver(config: config, store: store)
        #expect(resolver.plan(for: "moved", in: november)?.code == "extra")   // a change during the period prices all of it
        #expect(resolver.plan(for: "later", in: november)?.code == "basic")   // starts next period
        #expect(resolver.plan(for: "fixed", in: november)?.code == "basic")
        #expect(resolver.plan(for: "anyone", in: november)?.code == "basic")
        #expect(Set(resolver.assignedCustomers) == ["moved", "later", "fixed"])
    }
}

extension TallyConfig {
    func withExtraPlan() -> TallyConfig {
        var copy = self
        copy.plans.append(Plan(code: "extra", currency: "EUR", prices: []))
        return copy
    }
}
