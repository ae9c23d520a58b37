import Foundation
import LMDB
import Logging
import Metering
import Testing

@testable import Storage

/// The usage log: commits log their aggregates, later commits fold them into `usage`; every reader
/// sees the same usage at every step, and a crash (the writer dropped without its final fold)
/// loses and doubles nothing.
@Suite("Usage log and folding")
struct UsageLogTests {
    static let meters = [
        Meter(code: "calls", aggregation: .count),
        Meter(code: "tokens", aggregation: .sum, groupBy: ["model"]),
        Meter(code: "peak", aggregation: .max),
        Meter(code: "last", aggregation: .latest),
    ]
    /// Folds after a handful of entries, a few rows per commit, so a test sees many passes.
    static let eager = UsageFoldPolicy(minimumLoggedEntries: 8, maximumRecords: 5, minimumSliceSize: 3, retainedAggregates: 6)

    struct Model {
        var quantities: [String: ExactDecimal] = [:]
        var counts: [String: UInt64] = [:]
        var latestTime: [String: Int64] = [:]
    }

    static func key(_ customer: String, _ meter: String, _ model: String?) -> String {
        "\(customer)|\(meter)|\(model ?? "")"
    }

    /// The usage of every customer as the store reports it, keyed like `key`.
    static func reported(_ store: TallyStore, customers: Int, period: PeriodInterval) throws -> [String: (ExactDecimal, UInt64)] {
        var result: [String: (ExactDecimal, UInt64)] = [:]
        for index in 0..<customers {
            for record in try store.usage(customer: "c\(index)", periodStart: period.start) {
                let model = record.group.first?.value
                result[key("c\(index)", record.meter, model)] = (record.quantity, record.eventCount)
            }
        }
        return result
    }

    static func open(_ path: String, access: TallyStore.Access = .readWrite) throws -> TallyStore {
        try TallyStore(path: path, configuration: .init(meters: meters, billingPeriod: .monthly, initialMapSize: 1 << 22),
                       access: access, logger: Logger(label: "test"))
    }

    /// Eager folding that keeps every folded aggregate in memory (they go clean, then dirty again).
    static let eagerRetaining = UsageFoldPolicy(minimumLoggedEntries: 8, maximumRecords: 5, minimumSliceSize: 3, retainedAggregates: 10_000)

    /// Eager folding that keeps some folded aggregates: customers' rows are kept whole in memory
    /// and dropped again as their entries leave the table.
    static let eagerRetainingSome = UsageFoldPolicy(minimumLoggedEntries: 8, maximumRecords: 5, minimumSliceSize: 3, retainedAggregates: 40)

    @Test("random commits with eager folding: per-customer reads, the period scan and a second reader agree with a model after every commit",
          arguments: [eager, eagerRetainingSome, eagerRetaining])
    func agreesWithModel(policy: UsageFoldPolicy) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-log-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try Self.open(path)
        let writer = try StoreWriter(store: store, usageFolding: policy)
        // A limit on every customer: the commit reads each touched customer's usage (kept in memory
        // after the first read) and must hand the evaluator exactly what the model holds.
        let evaluator = RecordingEvaluator()
        writer.limitEvaluator = evaluator
        let period = BillingPeriod.monthly.interval(containing: now)
        var generator = SystemRandomNumberGenerator()
        var model = Model()
        var eventNumber = 0
        let customers = 12
        for _ in 0..<150 {
            var batch: [PendingEvent] = []
            for _ in 0..<(1 + Int(generator.next() % 9)) {
                eventNumber += 1
                let customer = "c\(generator.next() % UInt64(customers))"
                let meter = Self.meters[Int(generator.next() % UInt64(Self.meters.count))].code
                let value = ExactDecimal(Int(generator.next() % 50))
                let model_ = meter == "tokens" ? (generator.next() % 2 == 0 ? "small" : "large") : nil
                let time = Timestamp(nanosecondsSinceEpoch: period.start.nanosecondsSinceEpoch + Int64(eventNumber) * 1_000_000_000)
                let properties: [UsageEvent.Property] = model_.map { [.init(key: "model", value: .string($0))] } ?? []
                batch.append(pending("e\(eventNumber)", customer: customer, meter: meter, value: value, time: time, properties: properties))
                let key = Self.key(customer, meter, model_)
                model.counts[key, default: 0] += 1
                switch meter {
                case "calls": model.quantities[key] = ExactDecimal(Int(model.counts[key]!))
                case "tokens": model.quantities[key] = try (model.quantities[key] ?? 0).adding(value)
                case "peak": model.quantities[key] = max(model.quantities[key] ?? value, value)
                default:
                    if time.nanosecondsSinceEpoch >= (model.latestTime[key] ?? .min) {
                        model.latestTime[key] = time.nanosecondsSinceEpoch
                        model.quantities[key] = value
                    }
                }
            }
            evaluator.seen.removeAll()
            #expect(try writer.record(batch).allSatisfy { $0 == .accepted })
            let expected = model.quantities.mapValues { $0 }
            let touched = Set(batch.map(\.event.customer))
            #expect(Set(evaluator.seen.keys) == touched)
            for (customer, usage) in evaluator.seen {
                var handed: [String: ExactDecimal] = [:]
                for record in usage { handed[Self.key(customer, record.meter, record.group.first?.value)] = record.quantity }
                #expect(handed == expected.filter { $0.key.hasPrefix(customer + "|") }, "the usage the commit read for \(customer)")
                #expect(usage.map(\.eventCount).reduce(0, +) == model.counts.filter { $0.key.hasPrefix(customer + "|") }.values.reduce(0, +))
            }
            let seen = try Self.reported(store, customers: customers, period: period)
            #expect(seen.mapValues(\.0) == expected)
            #expect(seen.mapValues(\.1) == model.counts)
            // The period scan (rating runs) sees the same.
            var scanned: [String: ExactDecimal] = [:]
            try store.forEachUsage(periodStart: period.start) { customer, record in
                scanned[Self.key(customer, record.meter, record.group.first?.value)] = record.quantity
            }
            #expect(scanned == expected)
            #expect(try store.statistics().aggregates == expected.count)
        }
        // A reader in another process's shoes (its own environment handle) sees the same, mid-pass.
        let reader = try Self.open(path, access: .readOnly)
        #expect(try Self.reported(reader, customers: customers, period: period).mapValues(\.0) == model.quantities)
        #expect(try reader.periodsWithUsage(customer: "c0") == (model.counts.keys.contains { $0.hasPrefix("c0|") } ? [period.start] : []))
        // The final fold leaves the log empty and `usage` complete.
        try writer.foldLoggedUsage()
        let logEntries = try store.environment.read { _ in try store.environment.statistics(store.usageLog!).entries }
        #expect(logEntries == 0)
        #expect(try store.environment.read { _ in try store.environment.statistics(store.usage).entries } == model.quantities.count)
        #expect(try Self.reported(store, customers: customers, period: period).mapValues(\.0) == model.quantities)
    }

    @Test("a writer dropped without its final fold (a crash): the next writer reads the log back and goes on exactly")
    func crashKeepsTheLog() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-log-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let period = BillingPeriod.monthly.interval(containing: now)
        do {
            let store = try Self.open(path)
            let writer = try StoreWriter(store: store, usageFolding: Self.eager)
            for commit in 0..<7 {
                _ = try writer.record((0..<5).map { pending("a\(commit)-\($0)", customer: "c\($0)", meter: "tokens", value: 2) })
            }
            // Mid-pass or not, something is still logged: that is what a crash leaves.
            let logEntries = try store.environment.read { _ in try store.environment.statistics(store.usageLog!).entries }
            #expect(logEntries > 0)
        }
        let store = try Self.open(path)
        let writer = try StoreWriter(store: store, usageFolding: Self.eager)
        for index in 0..<5 {
            #expect(try store.usage(customer: "c\(index)", periodStart: period.start).first?.quantity == 14)
        }
        // Resending counts nothing; new events fold on top of the logged state.
        #expect(try writer.record((0..<5).map { pending("a0-\($0)", customer: "c\($0)", meter: "tokens", value: 2) })
            .allSatisfy { $0 == .duplicate })
        _ = try writer.record((0..<5).map { pending("b-\($0)", customer: "c\($0)", meter: "tokens", value: 1) })
        try writer.foldLoggedUsage()
        for index in 0..<5 {
            let record = try store.usage(customer: "c\(index)", periodStart: period.start).first
            #expect(record?.quantity == 15)
            #expect(record?.eventCount == 8)
        }
    }

    @Test("a record's entries are found by prefix, and a damaged record is refused")
    func recordCodec() throws {
        let entries: [(key: [UInt8], value: [UInt8])] = [([1, 2], [9]), ([1, 3, 0], []), ([2], [7, 7])]
        var buffer: [UInt8] = []
        UsageLogRecord.encode(entries, family: .periodUsage, into: &buffer)
        try buffer.withUnsafeBytes { bytes in
            let view = try #require(UsageLogView(bytes))
            #expect(view.count == 3)
            #expect(view.lowerBound(family: .periodUsage, prefix: [1]) == 0)
            #expect(view.lowerBound(family: .periodUsage, prefix: [1, 3]) == 1)
            #expect(view.lowerBound(family: .periodUsage, prefix: [2]) == 2)
            #expect(view.lowerBound(family: .periodUsage, prefix: [3]) == 3)
            #expect(Array(try #require(view.entry(2)).value) == [7, 7])
        }
        #expect([UInt8]([2, 0, 0, 0, 0]).withUnsafeBytes { UsageLogView($0) } == nil)
        // An offset past the end makes the entry nil, not a crash.
        var damaged = buffer
        damaged[5] = 0xFF
        damaged.withUnsafeBytes { bytes in
            #expect(UsageLogView(bytes)?.entry(0) == nil)
        }
    }
}

/// A limit on every customer, recording the usage the group commit hands it for each.
private final class RecordingEvaluator: LimitEvaluator {
    var seen: [String: [UsageRecord]] = [:]
    var hasLimits: Bool { true }
    func reload(storedLimits: [UsageLimit], planAssignments: [String: [PlanAssignment]]) {}
    func limits(for customer: String, in period: PeriodInterval) -> [UsageLimit] {
        [UsageLimit(id: "watch", scope: .customer(customer), threshold: .quantity(meter: "calls", 1_000_000), action: .warning)]
    }
    func used(by limit: UsageLimit, customer: String, period: PeriodInterval, usage: [UsageRecord]) -> ExactDecimal {
        seen[customer] = usage
        return .zero
    }
    func amount(customer: String, period: PeriodInterval, usage: [UsageRecord]) -> (amount: ExactDecimal, currency: String)? { nil }
    func pricing(customer: String, period: PeriodInterval) -> (any PeriodPricing)? { nil }
}
