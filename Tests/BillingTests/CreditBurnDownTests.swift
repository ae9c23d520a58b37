import Credits
import Foundation
import Limits
import Logging
import Metering
import TallyConfiguration
import Testing

@testable import Billing
@testable import Storage

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

    private static func open(_ config: TallyConfig, creditLogFoldEvery: Int = 32) throws -> Run {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-burn-\(UUID().uuidString.prefix(8))").path
        let store = try TallyStore(path: directory, configuration: .init(meters: config.meters, billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "test"))
        let writer = try StoreWriter(store: store, creditLogFoldEvery: creditLogFoldEvery)
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

    @Test("many commits, failed ones sent again and a grant between them store what one commit stores, and what a read recomputes",
          arguments: [3, 32])
    func pathIndependent(creditLogFoldEvery: Int) throws {
        let config = try ConfigLoader.parse(yaml: Self.yaml, fileName: "test.yaml")
        let now = Timestamp.now()
        let events = Self.events(count: 6_000, seed: 7, at: now)
        let stepped = try Self.open(config, creditLogFoldEvery: creditLogFoldEvery)
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

    private static func logRecords(_ store: TallyStore) throws -> Int {
        try store.readStore("test") { transaction in try transaction.statistics(store.creditLog!).entries }
    }

    /// `credit_applied` itself, without the log: grant id → amount for one customer.
    private static func foldedRows(_ store: TallyStore, _ customer: String) throws -> [String: ExactDecimal] {
        try store.readStore("test") { transaction in
            var rows: [String: ExactDecimal] = [:]
            let prefix = TallyStore.customerPrefix(customer)
            for entry in try transaction.entries(store.creditApplied!, prefix: prefix) {
                rows[String(decoding: entry.key[(prefix.count + 8)...], as: UTF8.self)] = entry.value.withUnsafeBytes { ExactDecimal(encoded: $0) }
            }
            return rows
        }
    }

    private static func applied(_ store: TallyStore, _ customer: String) throws -> [String: ExactDecimal] {
        Dictionary(try store.creditApplications(customer: customer).map { ($0.grant, $0.amount) }, uniquingKeysWith: { $1 })
    }

    @Test("the credit log: reads see logged applications before a fold, a fold moves the newest into credit_applied and empties the log, a deleted row stays deleted, a reopened writer goes on counting")
    func creditLog() throws {
        // Without the flat price, which is due at no usage: seats 0 and no calls cover nothing.
        let config = try ConfigLoader.parse(yaml: Self.yaml.replacingOccurrences(of: "      - { meter: region_calls, model: flat, amount: \"0.40\" }\n", with: ""),
                                            fileName: "test.yaml")
        let now = Timestamp.now()
        var run = try Self.open(config, creditLogFoldEvery: 3)
        defer { try? FileManager.default.removeItem(atPath: run.directory) }
        try Self.grant(run.store, "cus_0", id: "first", amount: "100", at: now)
        func seats(_ id: String, _ value: Int) -> PendingEvent {
            PendingEvent(event: UsageEvent(id: id, customer: "cus_0", meter: "seats", value: ExactDecimal(value), time: now), receivedAt: now)
        }
        func calls(_ id: String) -> PendingEvent {
            PendingEvent(event: UsageEvent(id: id, customer: "cus_0", meter: "calls", time: now), receivedAt: now)
        }

        func estimated() throws -> [String: ExactDecimal] {
            try Estimator(config: config, resolver: try PlanResolver(config: config, store: run.store))
                .estimate(customer: "cus_0", store: run.store).credits.byGrant
        }
        // seats 3 → 2 × 1.5 + 0.75 + 0.10 = 3.85
        _ = try run.writer.record([seats("s1", 3)])
        #expect(try Self.logRecords(run.store) == 1)
        #expect(try Self.foldedRows(run.store, "cus_0").isEmpty)
        #expect(try Self.applied(run.store, "cus_0") == ["first": ExactDecimal("3.85")!])
        // seats 0: nothing to cover, the row is deleted (logged empty).
        _ = try run.writer.record([seats("s2", 0)])
        #expect(try Self.logRecords(run.store) == 2)
        #expect(try Self.applied(run.store, "cus_0").isEmpty)
        #expect(try run.store.creditApplications(periodStart: config.billing.period.interval(containing: now).start)["cus_0"] == nil)
        // The third record folds: the newest value (deleted) wins over the first record's.
        _ = try run.writer.record([seats("s3", 0)])
        _ = try run.writer.record([calls("c1"), calls("c2")])
        // s3 changed nothing (no record); c1 and c2 make the third record, which folds.
        let twoCalls = try estimated()
        #expect(twoCalls["first"]! > .zero)
        #expect(try Self.logRecords(run.store) == 0)
        #expect(try Self.foldedRows(run.store, "cus_0") == twoCalls)
        #expect(try Self.applied(run.store, "cus_0") == twoCalls)

        // Logged but not folded when the writer goes away: a new writer reads it back and counts it.
        _ = try run.writer.record([calls("c3")])
        #expect(try Self.logRecords(run.store) == 1)
        let store = run.store
        run = Run(store: store, writer: try StoreWriter(store: store, creditLogFoldEvery: 3), directory: run.directory)
        run.writer.limitEvaluator = CommitLimitEvaluator(config: config)
        #expect(try Self.applied(run.store, "cus_0") == estimated())
        _ = try run.writer.record([calls("c4")])
        #expect(try Self.logRecords(run.store) == 2)
        #expect(try Self.foldedRows(run.store, "cus_0") == twoCalls)
        _ = try run.writer.record([calls("c5"), calls("c6")])
        #expect(try Self.logRecords(run.store) == 0)
        let sixCalls = try estimated()
        #expect(sixCalls["first"]! > twoCalls["first"]!)
        #expect(try Self.foldedRows(run.store, "cus_0") == sixCalls)
        #expect(try Self.applied(run.store, "cus_0") == sixCalls)
    }
}
