import Billing
import Foundation
public import Logging
public import Metering
public import Rating
public import Storage
public import TallyConfiguration
import Synchronization
import UsageQuery

/// Figures over every customer of the current period, computed off the request path: the
/// overview's customers with usage and top ten by amount, each meter's top customers and its
/// daily total across customers.
///
/// At 100,000 customers these take seconds to gather (every usage row of the period, a rating per
/// customer, every day bucket of each meter), so pages read the latest finished snapshot and show
/// when it was taken. A read of a snapshot older than 5 s (or ten times as long as the last one
/// took, whichever is longer) starts a new one on a background thread; only one runs at a time.
public final class DashboardSnapshot: Sendable {
    /// One customer's amount so far in the period.
    public struct Ranked: Sendable, Hashable {
        public var customer: String
        public var plan: String?
        public var currency: Currency?
        public var amount: ExactDecimal
    }

    /// One customer's quantity of a meter in the period (over its groups).
    public struct MeterRanked: Sendable, Hashable {
        public var customer: String
        public var quantity: ExactDecimal
    }

    /// What one pass over the store found.
    public struct Figures: Sendable {
        public var takenAt: Timestamp
        /// How long the pass took, in nanoseconds.
        public var duration: Int64
        public var period: PeriodInterval
        public var customersWithUsage: Int
        /// The ten highest amounts so far, highest first (ties by id).
        public var topByAmount: [Ranked]
        /// Per meter, the ten customers with the highest quantity.
        public var topByMeter: [String: [MeterRanked]]
        /// Per meter, one quantity per UTC day of the period, across customers (`sum` and `count`
        /// added, `max`/`min` the extreme, `latest` and `unique_count` each customer's value added).
        public var meterDays: [String: [ExactDecimal]]
        /// The starts of the period's UTC days, for `meterDays`.
        public var dayStarts: [Timestamp]
    }

    private struct State {
        var figures: Figures?
        var running = false
    }

    private let config: TallyConfig
    private let store: TallyStore
    private let logger: Logger
    private let state = Mutex(State())

    public init(config: TallyConfig, store: TallyStore, logger: Logger) {
        self.config = config
        self.store = store
        self.logger = logger
    }

    /// The latest snapshot (nil before the first finished); starts a new one when it is stale.
    public func latest(now: Timestamp = .now()) -> Figures? {
        let (figures, start) = state.withLock { state -> (Figures?, Bool) in
            let age = state.figures.map { now.nanosecondsSinceEpoch - $0.takenAt.nanosecondsSinceEpoch }
            let stale = state.figures.map { age! >= max(5 * Timestamp.nanosecondsPerSecond, 10 * $0.duration) } ?? true
            let start = stale && !state.running
            if start { state.running = true }
            return (state.figures, start)
        }
        if start {
            Thread.detachNewThread { [self] in
                let fresh = try? compute()
                state.withLock { state in
                    if let fresh { state.figures = fresh }
                    state.running = false
                }
            }
        }
        return figures
    }

    /// Takes a snapshot now, on the calling thread, and keeps it.
    @discardableResult
    public func refresh() throws -> Figures {
        let figures = try compute()
        state.withLock { $0.figures = figures }
        return figures
    }

    private func compute() throws -> Figures {
        let started = Timestamp.now()
        let period = config.billing.period.interval(containing: started)
        var usage: [String: [UsageRecord]] = [:]
        try store.forEachUsage(periodStart: period.start) { customer, record in
            usage[customer, default: []].append(record)
        }
        let resolver = try PlanResolver(config: config, store: store)
        let builder = StatementBuilder(config: config)
        var ranked: [Ranked] = []
        ranked.reserveCapacity(usage.count)
        var byMeter: [String: [MeterRanked]] = [:]
        for (customer, records) in usage {
            let plan = resolver.plan(for: customer, in: period)
            if let statement = try? builder.statement(customer: customer, period: period, plan: plan, usage: records) {
                ranked.append(Ranked(customer: customer, plan: plan?.code, currency: statement.currency, amount: statement.total))
            }
            var quantities: [String: ExactDecimal] = [:]
            for record in records {
                quantities[record.meter] = (try? quantities[record.meter, default: .zero].adding(record.quantity)) ?? quantities[record.meter]
            }
            for (meter, quantity) in quantities { byMeter[meter, default: []].append(MeterRanked(customer: customer, quantity: quantity)) }
        }
        let top = ranked.sorted { $0.amount != $1.amount ? $0.amount > $1.amount : $0.customer < $1.customer }.prefix(10)
        var topByMeter: [String: [MeterRanked]] = [:]
        for (meter, rows) in byMeter {
            topByMeter[meter] = Array(rows.sorted { $0.quantity != $1.quantity ? $0.quantity > $1.quantity : $0.customer < $1.customer }.prefix(10))
        }
        let (days, starts) = try meterDays(period: period)
        let finished = Timestamp.now()
        let figures = Figures(takenAt: finished, duration: finished.nanosecondsSinceEpoch - started.nanosecondsSinceEpoch, period: period,
                              customersWithUsage: usage.count, topByAmount: Array(top), topByMeter: topByMeter,
                              meterDays: days, dayStarts: starts)
        logger.debug("dashboard snapshot taken", metadata: ["customers": "\(usage.count)", "ms": "\(figures.duration / 1_000_000)"])
        return figures
    }

    /// Each meter's daily quantities over the period, across customers, from the day buckets.
    private func meterDays(period: PeriodInterval) throws -> ([String: [ExactDecimal]], [Timestamp]) {
        let plan = try WindowPlan(from: period.start, to: period.end, window: .day, timeZone: try WindowPlan.timeZone("UTC"))
        var result: [String: [ExactDecimal]] = [:]
        for meter in config.meters {
            let query = try UsageQuery(plan: plan, meters: [meter], groupBy: [])
            var totals: [ExactDecimal]?
            var after: [UInt8]?
            repeat {
                let page = try query.run(store: store, customers: .all(after: after, limit: 2_000))
                for series in page.series {
                    guard var current = totals else {
                        totals = series.quantities
                        continue
                    }
                    for (index, quantity) in series.quantities.enumerated() {
                        current[index] = Self.combine(current[index], quantity, aggregation: meter.aggregation)
                    }
                    totals = current
                }
                after = page.nextCursor.flatMap(UsageQuery.decodeCursor)
            } while after != nil
            result[meter.code] = totals ?? Array(repeating: .zero, count: plan.count)
        }
        return (result, plan.edges.dropLast().map { Timestamp(nanosecondsSinceEpoch: $0) })
    }

    static func combine(_ a: ExactDecimal, _ b: ExactDecimal, aggregation: Aggregation) -> ExactDecimal {
        switch aggregation {
        case .max: max(a, b)
        case .min: a.isZero ? b : b.isZero ? a : min(a, b)
        default: (try? a.adding(b)) ?? a
        }
    }
}
