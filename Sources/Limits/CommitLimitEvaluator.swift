import Billing
import Rating
public import TallyConfiguration
public import Metering
public import Storage

/// Evaluates usage limits inside the ingest writer's group commits (see `LimitEvaluator`).
///
/// Amount limits rate the customer's whole period so far with its plan, as `tally estimate` does,
/// and compare the statement total (the sum of lines rounded once each); quantity limits compare
/// the meter's quantity summed over its groups. Used on the writer thread only.
public final class CommitLimitEvaluator: LimitEvaluator {
    private let config: TallyConfig
    private var policy: LimitPolicy
    private var resolver: PlanResolver
    /// The last amount computed, reused by the other limits of the same customer and period.
    private var lastAmount: (customer: String, periodStart: Timestamp, usage: [UsageRecord], amount: ExactDecimal)?

    public init(config: TallyConfig) {
        self.config = config
        policy = LimitPolicy(config: config, storedLimits: [])
        resolver = PlanResolver(config: config, storedAssignments: [:])
    }

    public var hasLimits: Bool { !policy.isEmpty }

    public func reload(storedLimits: [UsageLimit], planAssignments: [String: [PlanAssignment]]) {
        policy = LimitPolicy(config: config, storedLimits: storedLimits)
        resolver = PlanResolver(config: config, storedAssignments: planAssignments)
        lastAmount = nil
    }

    public func limits(for customer: String, in period: PeriodInterval) -> [UsageLimit] {
        guard !policy.isEmpty else { return [] }
        return policy.limits(for: customer, plan: resolver.plan(for: customer, in: period)?.code)
    }

    public func used(by limit: UsageLimit, customer: String, period: PeriodInterval, usage: [UsageRecord]) -> ExactDecimal {
        switch limit.threshold {
        case .quantity(let meter, _):
            var total: ExactDecimal = 0
            for record in usage where record.meter == meter {
                total = (try? total.adding(record.quantity)) ?? total
            }
            return total
        case .amount:
            if let last = lastAmount, last.customer == customer, last.periodStart == period.start, last.usage == usage {
                return last.amount
            }
            let amount = resolver.plan(for: customer, in: period).map { amountSoFar(plan: $0, usage: usage) } ?? 0
            lastAmount = (customer, period.start, usage, amount)
            return amount
        case .balanceBelow, .balancePercentBelow:
            // Balance limits watch credits, not usage: the group commit's credit step judges them.
            return .zero
        }
    }

    public func amount(customer: String, period: PeriodInterval, usage: [UsageRecord]) -> (amount: ExactDecimal, currency: String)? {
        guard let plan = resolver.plan(for: customer, in: period) else { return nil }
        if let last = lastAmount, last.customer == customer, last.periodStart == period.start, last.usage == usage {
            return (last.amount, plan.currency)
        }
        let amount = amountSoFar(plan: plan, usage: usage)
        lastAmount = (customer, period.start, usage, amount)
        return (amount, plan.currency)
    }

    /// The statement total of `usage` under `plan` (each line rounded once, as `StatementBuilder`
    /// does it), computed without building the statement: this runs for every touched customer
    /// of every group commit.
    func amountSoFar(plan: Plan, usage: [UsageRecord]) -> ExactDecimal {
        let table = priceTable(plan)
        var total: ExactDecimal = 0
        // Only meters that cost something at quantity 0 need remembering (most plans have none).
        var pricedWithUsage = Set<String>()
        for record in usage {
            guard let price = table.prices[record.meter] else { continue }
            if !table.zeroQuantityAmounts.isEmpty { pricedWithUsage.insert(record.meter) }
            let effective = record.group.isEmpty || price.dimensions.isEmpty ? price
                : price.price(forGroup: Dictionary(record.group.map { ($0.property, $0.value) }, uniquingKeysWith: { first, _ in first }))
            guard let rating = try? Rater.rate(effective, quantity: record.quantity) else { continue }
            let amount = table.currency.map { Rater.round(rating.exactAmount, currency: $0, mode: config.billing.rounding) } ?? rating.exactAmount
            total = (try? total.adding(amount)) ?? total
        }
        for (meter, amount) in table.zeroQuantityAmounts where !pricedWithUsage.contains(meter) {
            total = (try? total.adding(amount)) ?? total
        }
        return total
    }

    private struct PriceTable {
        var prices: [String: Price]
        var currency: Currency?
        /// What each priced meter costs at quantity 0 (flat fees, first-tier flat amounts, minimums).
        var zeroQuantityAmounts: [(String, ExactDecimal)]
    }

    private var priceTables: [String: PriceTable] = [:]

    private func priceTable(_ plan: Plan) -> PriceTable {
        if let table = priceTables[plan.code] { return table }
        let currency = Currency.named(plan.currency)
        var prices: [String: Price] = [:]
        var zero: [(String, ExactDecimal)] = []
        for price in plan.prices {
            guard let meter = price.meter, prices[meter] == nil else { continue }
            prices[meter] = price
            if let rating = try? Rater.rate(price, quantity: 0), !rating.exactAmount.isZero {
                zero.append((meter, currency.map { Rater.round(rating.exactAmount, currency: $0, mode: config.billing.rounding) } ?? rating.exactAmount))
            }
        }
        let table = PriceTable(prices: prices, currency: currency, zeroQuantityAmounts: zero)
        priceTables[plan.code] = table
        return table
    }
}
