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

    public func pricing(customer: String, period: PeriodInterval) -> (any PeriodPricing)? {
        resolver.plan(for: customer, in: period).map(planPricing)
    }

    /// The statement total of `usage` under `plan` (each line rounded once, as `StatementBuilder`
    /// does it), computed without building the statement: this runs for every touched customer
    /// of every group commit.
    func amountSoFar(plan: Plan, usage: [UsageRecord]) -> ExactDecimal {
        let table = planPricing(plan).table
        var total: ExactDecimal = 0
        // Only meters that cost something at quantity 0 need remembering (most plans have none).
        var pricedWithUsage = Set<String>()
        for record in usage {
            guard let price = table.prices[record.meter] else { continue }
            if !table.zeroQuantityAmounts.isEmpty { pricedWithUsage.insert(record.meter) }
            let effective = Self.effectivePrice(price, group: record.group)
            guard let amount = Self.lineAmount(effective, quantity: record.quantity, currency: table.currency, rounding: config.billing.rounding)
            else { continue }
            total = (try? total.adding(amount)) ?? total
        }
        for (meter, amount) in table.zeroQuantityAmounts where !pricedWithUsage.contains(meter) {
            total = (try? total.adding(amount)) ?? total
        }
        return total
    }

    /// The price a row of `group` pays: the dimension's own, when the price has dimensions.
    static func effectivePrice(_ price: Price, group: [GroupValue]) -> Price {
        group.isEmpty || price.dimensions.isEmpty ? price
            : price.price(forGroup: Dictionary(group.map { ($0.property, $0.value) }, uniquingKeysWith: { first, _ in first }))
    }

    /// A statement line's amount: rated, then rounded once to the currency (when it is known).
    static func lineAmount(_ price: Price, quantity: ExactDecimal, currency: Currency?, rounding: RoundingMode) -> ExactDecimal? {
        guard let amount = try? Rater.exactAmount(price, quantity: quantity) else { return nil }
        return currency.map { Rater.round(amount, currency: $0, mode: rounding) } ?? amount
    }

    /// `PeriodPricing` of one plan, over its price table.
    private final class PlanPricing: PeriodPricing {
        let table: PriceTable
        let currency: String
        let rounding: RoundingMode

        init(table: PriceTable, currencyCode: String, rounding: RoundingMode) {
            self.table = table
            currency = currencyCode
            self.rounding = rounding
        }

        var zeroQuantityAmounts: [(meter: String, amount: ExactDecimal)] { table.zeroQuantityAmounts }

        func lineRating(meter: String, group: [GroupValue]) -> LineRating? {
            guard let price = table.prices[meter] else { return nil }
            let effective = CommitLimitEvaluator.effectivePrice(price, group: group)
            let currency = table.currency
            let rounding = rounding
            return LineRating { quantity in CommitLimitEvaluator.lineAmount(effective, quantity: quantity, currency: currency, rounding: rounding) }
        }
    }

    private struct PriceTable {
        var prices: [String: Price]
        var currency: Currency?
        /// What each priced meter costs at quantity 0 (flat fees, first-tier flat amounts, minimums).
        var zeroQuantityAmounts: [(meter: String, amount: ExactDecimal)]
    }

    /// Each plan's prices, made once (plans come from the config).
    private var planPricings: [String: PlanPricing] = [:]

    private func planPricing(_ plan: Plan) -> PlanPricing {
        if let pricing = planPricings[plan.code] { return pricing }
        let currency = Currency.named(plan.currency)
        var prices: [String: Price] = [:]
        var zero: [(meter: String, amount: ExactDecimal)] = []
        for price in plan.prices {
            guard let meter = price.meter, prices[meter] == nil else { continue }
            prices[meter] = price
            if let amount = Self.lineAmount(price, quantity: 0, currency: currency, rounding: config.billing.rounding), !amount.isZero {
                zero.append((meter, amount))
            }
        }
        let pricing = PlanPricing(table: PriceTable(prices: prices, currency: currency, zeroQuantityAmounts: zero),
                                  currencyCode: plan.currency, rounding: config.billing.rounding)
        planPricings[plan.code] = pricing
        return pricing
    }
}
