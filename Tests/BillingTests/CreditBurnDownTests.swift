import Credits
import Foundation
import Limits
import Logging
import Metering
import Storage
import TallyConfiguration
import Testing

@testable import Billing

/// The group commit's credit step keeps each customer's account and each period row's amount
/// between commits, and rates a row again as the fold changes it. Whatever path the commits take
/// (many small ones, failed ones sent again, a settings change between them), what it stores must
/// be what one commit of the same events stores on a fresh store, and what a read recomputes.
@Suite("Credit burn-down across commits")
struct CreditBurnDownTests {
    static let yaml = """
        billing:
          period: monthly
        meters:
          - { code: calls, aggregation: count }
          - { code: tokens, aggregation: sum }
          - { code: seats, aggregation: latest }
          - { code: region_calls, aggregation: count, group_by: [region] }
        plans:
          - code: basic
            currency: USD
            prices:
              - { meter: calls, model: per_unit, unit_amount: "0.013" }
              - { meter: tokens, model: per_unit, unit_amount: "0.0007", free_units: "5" }
              - { meter: seats, model: graduated, tiers: [{ up_to: "2", unit_amount: "1.5" }, { up_to: inf, unit_amount: "0.75", flat_amount: "0.10" }] }
              - { meter: region_calls, model: flat, amount: "0.40" }
        default_plan: basic
        limits:
          - { plan: basic, balance_below: "2", action: warning }
        """

    static let customers = (0..<24).map { "cus_\($0)" }

    private struct Run {
        let store: TallyStore
        let writer: StoreWriter
        let directory: String
    }

    private static func open(_ config: TallyConfig) throws -> Run {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-burn-\(UUID().uuidString.prefix(8))").path
        let store = try TallyStore(path: directory, configuration: .init(meters: config.meters, billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "test"))
        let writer = try StoreWriter(store: store)
        writer.limitEvaluator = CommitLimitEvaluator(config: config)
        return Run(store: store, writer: writer, directory: directory)
    }

    private static func grant(_ store: TallyStore, _ customer: String, id: String, amount: String, priority: Int = 0, at now: Timestamp) throws {
        let grant = CreditGrant(id: id, customer: customer, amount: ExactDecimal(amount)!, currency: "USD", priority: priority,
                                effectiveAt: now, grantedAt: now)
        _ = try store.grantCredits(grant, comparingEffectiveAt: false)
    }

    /// Seeded events over the customers and meters: counts, sums, a `latest` that rises and falls,
    /// and a grouped meter whose groups appear over time (rows joining a customer's period).
    private static func events(count: Int, seed: UInt64, at now: Timestamp) -> [PendingEvent] {
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        return (0..<count).map { index in
            let customer = customers[next(customers.count)]
            let time = Timestamp(nanosecondsSinceEpoch: now.nanosecondsSinceEpoch - Int64(count - index) * 1_000_000)
            let event: UsageEvent = switch next(4) {
            case 0: UsageEvent(id: "e\(index)", customer: customer, meter: "calls", time: time)
            case 1: UsageEvent(id: "e\(index)", customer: customer, meter: "tokens", value: ExactDecimal(next(900)), time: time)
            case 2: UsageEvent(id: "e\(index)", customer: customer, meter: "seats", value: ExactDecimal(next(5)), time: time)
            default: UsageEvent(id: "e\(index)", customer: customer, meter: "region_calls", time: time,
                                properties: [.init(key: "region", value: .string("r\(next(3))"))])
            }
            return PendingEvent(event: event, receivedAt: time)
        }
    }

    @Test("many commits, failed ones sent again and a grant between them store what one commit stores, and what a read recomputes")
    func pathIndependent() throws {
        let config = try ConfigLoader.parse(yaml: Self.yaml, fileName: "test.yaml")
        let now = Timestamp.now()
        let events = Self.events(count: 6_000, seed: 7, at: now)
        let stepped = try Self.open(config)
        let whole = try Self.open(config)
        defer {
            try? FileManager.default.removeItem(atPath: stepped.directory)
            try? FileManager.default.removeItem(atPath: whole.directory)
        }
        for run in [stepped, whole] {
            for (index, customer) in Self.customers.enumerated() {
                // Small grants for half, so that they run out and the second grant (lower priority) takes over.
                try Self.grant(run.store, customer, id: "first", amount: index % 2 == 0 ? "\(3 + index % 5).25" : "\(90 + index).25", at: now)
                if index % 3 == 0 { try Self.grant(run.store, customer, id: "second", amount: "4", priority: 1, at: now) }
            }
        }
        // The stepped store: commits of 1 to 200 events; every seventh and the last fail after their
        // credit step (the replicated log refuses them) and are sent again; halfway, a top-up changes
        // the settings.
        var offset = 0
        var commit = 0
        var failures = 0
        while offset < events.count {
            let size = offset + 600 >= events.count ? events.count - offset : min(events.count - offset, 1 + (commit * 37) % 200)
            let batch = Array(events[offset..<(offset + size)])
            commit += 1
            // The last one too: no later commit rewrites what it changed.
            if commit % 7 == 0 || offset + size == events.count {
                stepped.writer.replicate = { _ throws(StoreError) -> UInt64 in throw StoreError(.unavailable, "refused by the test") }
                #expect(throws: StoreError.self) { try stepped.writer.record(batch) }
                failures += 1
                stepped.writer.replicate = nil
            }
            #expect(try stepped.writer.record(batch).allSatisfy { $0 == .accepted })
            offset += size
            if offset >= events.count / 2, commit % 7 == 3 {
                try Self.grant(stepped.store, "cus_5", id: "top-up", amount: "2.50", at: now)
                try Self.grant(whole.store, "cus_5", id: "top-up", amount: "2.50", at: now)
            }
        }
        #expect(failures > 5)
        #expect(try whole.writer.record(events).allSatisfy { $0 == .accepted })

        let period = config.billing.period.interval(containing: now)
        let steppedApplied = try stepped.store.creditApplications(periodStart: period.start)
        let wholeApplied = try whole.store.creditApplications(periodStart: period.start)
        #expect(steppedApplied == wholeApplied)
        #expect(steppedApplied.count == Self.customers.count)
        // A read recomputes what the commits stored, from the usage alone.
        let estimator = Estimator(config: config, resolver: try PlanResolver(config: config, store: stepped.store))
        var depleted = 0
        for customer in Self.customers {
            let estimate = try estimator.estimate(customer: customer, store: stepped.store)
            #expect(estimate.credits.byGrant == (steppedApplied[customer] ?? [:]), "\(customer)")
            #expect(estimate.credits.applied == CreditAllocation.total(steppedApplied[customer] ?? [:]))
            if estimate.credits.balance.isZero { depleted += 1 }
        }
        #expect(depleted > 0 && depleted < Self.customers.count, "some customers run out, some do not: \(depleted)")
    }
}
