import Credits
public import TallyConfiguration
public import Metering
public import Rating
public import Storage

/// What a batch rating run produced.
public struct RatingRunSummary: Sendable {
    public var period: PeriodInterval
    public var closed: Bool
    public var customers: Int
    public var lines: Int
    /// Usage rows (customer, meter, group aggregates) read.
    public var usageRows: Int
    /// Totals per currency, sorted by currency code: the exact sum and the sum of rounded statements.
    public var totals: [(currency: String, exactAmount: ExactDecimal, amount: ExactDecimal)]
    /// Per currency, the prepaid credits applied and the amount due after them; empty when the
    /// store has no credit grants.
    public var credits: [(currency: String, applied: ExactDecimal, amountDue: ExactDecimal)] = []

    /// One summary of several runs over disjoint sets of customers (a cluster's partitions): counts
    /// and per-currency sums added, exactly; closed only when every part is.
    public static func merged(_ parts: [RatingRunSummary], period: PeriodInterval) throws -> RatingRunSummary {
        var totals: [String: (exact: ExactDecimal, amount: ExactDecimal)] = [:]
        var credits: [String: (applied: ExactDecimal, due: ExactDecimal)] = [:]
        var merged = RatingRunSummary(period: period, closed: !parts.isEmpty && parts.allSatisfy(\.closed), customers: 0, lines: 0, usageRows: 0, totals: [])
        for part in parts {
            merged.customers += part.customers
            merged.lines += part.lines
            merged.usageRows += part.usageRows
            for total in part.totals {
                let current = totals[total.currency] ?? (0, 0)
                totals[total.currency] = (try current.exact.adding(total.exactAmount), try current.amount.adding(total.amount))
            }
            for credit in part.credits {
                let current = credits[credit.currency] ?? (0, 0)
                credits[credit.currency] = (try current.applied.adding(credit.applied), try current.due.adding(credit.amountDue))
            }
        }
        merged.totals = totals.keys.sorted().map { ($0, totals[$0]!.exact, totals[$0]!.amount) }
        merged.credits = credits.keys.sorted().map { ($0, credits[$0]!.applied, credits[$0]!.due) }
        return merged
    }
}

/// A batch rating run (DESIGN §7): a statement for every customer with a plan or usage in a period.
///
/// Deterministic: customers in byte order of their ids, lines in plan order then store order, no
/// clock in the output, so the same data gives byte-identical statements.
public struct RatingRun: Sendable {
    public let config: TallyConfig
    public let period: PeriodInterval

    public init(config: TallyConfig, period: PeriodInterval) {
        self.config = config
        self.period = period
    }

    /// Rates every customer (or only `customer`) from the store's aggregates, handing each statement to `emit` in order.
    public func run(store: TallyStore, customer only: String? = nil, progress: (Int, Int) -> Void = { _, _ in },
                    emit: (Statement) throws -> Void) throws -> RatingRunSummary {
        var usageByCustomer: [String: [UsageRecord]] = [:]
        if let only {
            usageByCustomer[only] = try store.usage(customer: only, periodStart: period.start)
        } else {
            try store.forEachUsage(periodStart: period.start) { customer, record in
                usageByCustomer[customer, default: []].append(record)
            }
        }
        return try run(store: store, usage: usageByCustomer, customer: only, progress: progress, emit: emit)
    }

    /// Rates every customer (or only `customer`) from `usage` instead of the store's aggregates: the
    /// usage of each customer in the period, records in store order (meter, then group), as
    /// `EventAggregator` gives them. The store still supplies plan assignments and whether the period is closed.
    public func run(store: TallyStore, usage: [String: [UsageRecord]], customer only: String? = nil,
                    progress: (Int, Int) -> Void = { _, _ in },
                    emit: (Statement) throws -> Void) throws -> RatingRunSummary {
        let resolver = try PlanResolver(config: config, store: store)
        let builder = StatementBuilder(config: config)
        let customers: Set<String>
        if let only {
            customers = [only]
        } else {
            var all = Set(usage.keys)
            for customer in resolver.assignedCustomers where resolver.plan(for: customer, in: period) != nil {
                all.insert(customer)
            }
            customers = all
        }
        let ordered = customers.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let grants = try store.allCreditGrants()
        let applied = grants.isEmpty ? [:] : try store.creditApplications(periodStart: period.start)
        var credits: [String: (applied: ExactDecimal, due: ExactDecimal)] = [:]
        var totals: [String: (exact: ExactDecimal, amount: ExactDecimal)] = [:]
        var lines = 0
        var rows = 0
        for (index, customer) in ordered.enumerated() {
            let records = usage[customer] ?? []
            rows += records.count
            var statement = try builder.statement(customer: customer, period: period,
                                                  plan: resolver.plan(for: customer, in: period),
                                                  usage: records)
            if let stored = applied[customer], let customerGrants = grants[customer] {
                statement.credits = Self.credits(stored, grants: customerGrants, total: statement.total)
            }
            if let currency = statement.currency?.code {
                let current = totals[currency] ?? (0, 0)
                totals[currency] = (try current.exact.adding(statement.exactTotal), try current.amount.adding(statement.total))
                if !grants.isEmpty {
                    let sums = credits[currency] ?? (0, 0)
                    credits[currency] = (try sums.applied.adding(statement.creditsApplied), try sums.due.adding(statement.amountDue))
                }
            }
            lines += statement.lines.count
            try emit(statement)
            progress(index + 1, ordered.count)
        }
        return RatingRunSummary(
            period: period, closed: try store.isClosed(periodStart: period.start), customers: ordered.count, lines: lines,
            usageRows: rows,
            totals: totals.keys.sorted().map { ($0, totals[$0]!.exact, totals[$0]!.amount) },
            credits: credits.keys.sorted().map { ($0, credits[$0]!.applied, credits[$0]!.due) })
    }

    /// A statement's credits: what the group commits stored for the period (frozen once it is
    /// closed), in burn order, capped at `total` (a re-rated total may be lower), the last grant
    /// giving back first. Deterministic: no clock.
    static func credits(_ stored: [String: ExactDecimal], grants: [CreditGrant], total: ExactDecimal) -> [StatementCredit] {
        var budget = total.isNegative ? ExactDecimal.zero : total
        var result: [StatementCredit] = []
        for grant in grants.sorted(by: CreditGrant.burnOrder) {
            guard let amount = stored[grant.id], amount > .zero, budget > .zero else { continue }
            let take = min(amount, budget)
            result.append(StatementCredit(grant: grant.id, amount: take))
            budget = (try? budget.subtracting(take)) ?? .zero
        }
        return result
    }
}
