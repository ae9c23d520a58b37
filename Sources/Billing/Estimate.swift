public import TallyConfiguration
public import Metering
public import Rating
public import Storage

/// A customer's cost so far in the current period, and where the period is heading.
public struct Estimate: Sendable {
    /// One meter (and group): quantity and amount so far, and the amount at the period's end.
    public struct Line: Sendable {
        public var meter: String
        public var group: [GroupValue]
        public var quantity: ExactDecimal
        public var amount: ExactDecimal
        public var projectedAmount: ExactDecimal
    }

    public var customer: String
    public var period: PeriodInterval
    public var plan: String?
    public var currency: Currency?
    public var lines: [Line]
    public var total: ExactDecimal
    public var projectedTotal: ExactDecimal
    /// What prepaid credits cover of `total`, and what is left of them (`CreditPosition`).
    public var credits: CreditPosition = .none
    /// `total` less the credits applied, never below zero.
    public var amountDue: ExactDecimal { credits.due(total) }
    /// `projectedTotal` less the credits applied and the balance left, never below zero.
    public var projectedAmountDue: ExactDecimal { credits.projectedDue(projectedTotal) }
}

/// Estimates reflect every acknowledged event: they read the aggregates that the group commit
/// updated before acknowledging.
public struct Estimator: Sendable {
    private let builder: StatementBuilder
    private let resolver: PlanResolver

    public init(config: TallyConfig, resolver: PlanResolver) {
        builder = StatementBuilder(config: config)
        self.resolver = resolver
    }

    /// The estimate of `customer` at `now`.
    ///
    /// Projection: sums and counts grow with time, so their end-of-period quantity is the run rate
    /// (quantity × period length ÷ elapsed time); a maximum, minimum, latest value or unique count
    /// is projected as it stands. Each projected quantity is rated like a real one.
    public func estimate(customer: String, store: TallyStore, at now: Timestamp = .now()) throws -> Estimate {
        let period = resolver.config.billing.period.interval(containing: now)
        let usage = try store.usage(customer: customer, periodStart: period.start)
        let plan = resolver.plan(for: customer, in: period)
        let statement = try builder.statement(customer: customer, period: period, plan: plan, usage: usage)
        let ratio = Self.runRate(period: period, now: now)
        var lines: [Estimate.Line] = []
        var projectedTotal: ExactDecimal = 0
        for line in statement.lines {
            var projected = line.amount
            if let ratio, builder.isCumulative(line.meter), line.model != "unpriced",
               let price = plan?.price(forMeter: line.meter),
               let quantity = try? line.quantity.multiplied(by: ratio).rounded(scale: 12, rule: .halfEven),
               quantity != line.quantity {
                projected = try builder.line(meter: line.meter, group: line.group, quantity: quantity, price: price,
                                             currency: statement.currency).amount
            }
            projectedTotal = try projectedTotal.adding(projected)
            lines.append(Estimate.Line(meter: line.meter, group: line.group, quantity: line.quantity, amount: line.amount, projectedAmount: projected))
        }
        let credits = try CreditPosition(customer: customer, period: period, amount: statement.total, currency: plan?.currency,
                                         store: store, now: now)
        return Estimate(customer: customer, period: period, plan: plan?.code, currency: statement.currency, lines: lines,
                        total: statement.total, projectedTotal: projectedTotal, credits: credits)
    }

    /// Period length ÷ elapsed time, to 9 decimal places; nil before a whole second has passed.
    static func runRate(period: PeriodInterval, now: Timestamp) -> ExactDecimal? {
        let second: Int64 = 1_000_000_000
        let elapsed = (now.nanosecondsSinceEpoch - period.start.nanosecondsSinceEpoch) / second
        let length = (period.end.nanosecondsSinceEpoch - period.start.nanosecondsSinceEpoch) / second
        guard elapsed > 0, elapsed < length else { return nil }
        return try? ExactDecimal(Int(length)).divided(by: ExactDecimal(Int(elapsed)), scale: 9, rounding: .halfEven)
    }
}
