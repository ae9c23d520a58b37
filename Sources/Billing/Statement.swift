public import TallyConfiguration
public import Metering
public import Rating
public import Storage

/// One priced line of a statement: a meter (and group) with its quantity and amount.
public struct StatementLine: Sendable {
    public var meter: String
    public var group: [GroupValue]
    /// The meter's aggregation, or "unknown" for usage of a meter the config no longer has.
    public var aggregation: String
    public var quantity: ExactDecimal
    /// The price model (`per_unit`, `graduated`, …), or `unpriced` when the plan has no price for the meter.
    public var model: String
    /// The breakdown by tier (and minimum/maximum adjustment); empty when unpriced.
    public var rating: Rating?
    /// The amount before rounding.
    public var exactAmount: ExactDecimal
    /// The amount rounded once, to the currency's minor unit.
    public var amount: ExactDecimal
}

/// What one customer owes for one period.
public struct Statement: Sendable {
    public var customer: String
    public var period: PeriodInterval
    public var plan: String?
    public var currency: Currency?
    public var lines: [StatementLine]
    /// The sum of the lines' exact amounts.
    public var exactTotal: ExactDecimal
    /// The sum of the lines' rounded amounts: what an invoice shows.
    public var total: ExactDecimal
    /// What each prepaid credit grant covers of `total` (in burn order; empty without credits).
    public var credits: [StatementCredit] = []

    /// The credits applied, added up.
    public var creditsApplied: ExactDecimal { credits.reduce(ExactDecimal.zero) { (try? $0.adding($1.amount)) ?? $0 } }
    /// `total` less the credits applied, never below zero.
    public var amountDue: ExactDecimal {
        let left = (try? total.subtracting(creditsApplied)) ?? total
        return left.isNegative ? .zero : left
    }
}

/// One grant's part of a statement.
public struct StatementCredit: Sendable, Hashable {
    public var grant: String
    public var amount: ExactDecimal
}

/// Builds statements from usage and a plan: pure, deterministic.
public struct StatementBuilder: Sendable {
    private let meters: [String: Meter]
    private let rounding: RoundingMode

    public init(config: TallyConfig) {
        meters = Dictionary(config.meters.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
        rounding = config.billing.rounding
    }

    /// The statement of `customer` for `period`: one line per price of the plan and group of usage
    /// (a price without usage is rated at quantity 0, so flat fees and first-tier flat amounts
    /// appear), then unpriced usage. `usage` is in store order (meter, then group).
    public func statement(customer: String, period: PeriodInterval, plan: Plan?, usage: [UsageRecord]) throws(DecimalOverflow) -> Statement {
        let currency = plan.flatMap { Currency.named($0.currency) }
        var lines: [StatementLine] = []
        var priced = Set<String>()
        for price in plan?.prices ?? [] {
            if let meter = price.meter { priced.insert(meter) }
            let records = price.meter.map { code in usage.filter { $0.meter == code } } ?? []
            if records.isEmpty {
                lines.append(try line(meter: price.meter ?? "", group: [], quantity: 0, price: price, currency: currency))
            }
            for record in records {
                lines.append(try line(meter: record.meter, group: record.group, quantity: record.quantity, price: price, currency: currency))
            }
        }
        for record in usage where !priced.contains(record.meter) {
            lines.append(StatementLine(
                meter: record.meter, group: record.group, aggregation: aggregationName(record.meter),
                quantity: record.quantity, model: "unpriced", rating: nil, exactAmount: 0, amount: 0))
        }
        var exactTotal: ExactDecimal = 0
        var total: ExactDecimal = 0
        for line in lines {
            exactTotal = try exactTotal.adding(line.exactAmount)
            total = try total.adding(line.amount)
        }
        return Statement(customer: customer, period: period, plan: plan?.code, currency: currency,
                         lines: lines, exactTotal: exactTotal, total: total)
    }

    /// Rates one quantity under `price` for a group, rounding once to the currency.
    public func line(meter: String, group: [GroupValue], quantity: ExactDecimal, price: Price, currency: Currency?) throws(DecimalOverflow) -> StatementLine {
        let groupValues = Dictionary(group.map { ($0.property, $0.value) }, uniquingKeysWith: { first, _ in first })
        let effective = group.isEmpty ? price : price.price(forGroup: groupValues)
        let rating = try Rater.rate(effective, quantity: quantity)
        let amount = currency.map { Rater.round(rating.exactAmount, currency: $0, mode: rounding) } ?? rating.exactAmount
        return StatementLine(
            meter: meter, group: group, aggregation: aggregationName(meter), quantity: quantity,
            model: effective.model.name, rating: rating, exactAmount: rating.exactAmount, amount: amount)
    }

    private func aggregationName(_ meter: String) -> String {
        meters[meter]?.aggregation.rawValue ?? (meter.isEmpty ? "none" : "unknown")
    }

    /// Whether the meter's quantity grows with time, so that a run rate projects it.
    func isCumulative(_ meter: String) -> Bool {
        switch meters[meter]?.aggregation {
        case .sum, .count: true
        default: false
        }
    }
}
