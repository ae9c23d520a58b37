import Credits
import Metering

/// The writer's view of one customer's credits, kept between group commits so that the credit
/// step of a touched customer costs one lookup of its name and arithmetic on arrays: its grants in
/// burn order, and per period what each grant covers there (one amount per grant, 0 where none).
///
/// Built from `credit_grants` and `credit_applied` the first time a commit touches the customer,
/// dropped when the settings change (a grant, a void, a limit, a plan). Only the writer writes
/// `credit_applied`, so between those the account is what the store holds: a commit changes the
/// account as it writes, and a commit that did not land drops every account (`StoreWriter.record`).
final class CreditAccount {
    let customer: String
    /// The writer's credit generation when the account was made (see `CreditLine`).
    let generation: UInt64
    /// The customer's grants, in ``CreditGrant/burnOrder``.
    let grants: [CreditGrant]
    /// Their terms, in the same order.
    let terms: [CreditTerms]
    /// Every period with applications, or evaluated since, by start.
    private(set) var periods: [PeriodCredits] = []
    /// The period found last (the next commit almost always wants it again).
    private var lastPeriod: PeriodCredits?
    /// One 0 per grant, shared by every period that has no earlier one.
    private let zeros: [ExactDecimal]

    init(customer: String, grants: [CreditGrant], applications: [CreditApplication], generation: UInt64) {
        self.customer = customer
        self.generation = generation
        self.grants = grants.sorted(by: CreditGrant.burnOrder)
        terms = self.grants.map(\.terms)
        zeros = [ExactDecimal](repeating: .zero, count: grants.count)
        let index = Dictionary(self.grants.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        for application in applications {
            let period = self.period(startingAt: application.periodStart)
            if let grant = index[application.grant], application.amount > .zero {
                period.applied[grant] = application.amount
            } else {
                // A row no grant explains (or that covers nothing): deleted with the period's next change.
                period.strayRows.append(application.grant)
            }
        }
    }

    /// The period starting at `start`, added (covering nothing) when the account has none.
    func period(startingAt start: Timestamp) -> PeriodCredits {
        if let lastPeriod, lastPeriod.start == start { return lastPeriod }
        let period = find(start)
        lastPeriod = period
        return period
    }

    private func find(_ start: Timestamp) -> PeriodCredits {
        // Nearly always the newest period.
        var place = periods.endIndex
        while place > periods.startIndex {
            let candidate = periods[place - 1]
            if candidate.start == start { return candidate }
            if candidate.start < start { break }
            place -= 1
        }
        let period = PeriodCredits(start: start, grantCount: grants.count)
        periods.insert(period, at: place)
        return period
    }

    /// Per grant, what the periods before `period` cover.
    func earlier(than period: PeriodCredits) -> [ExactDecimal] {
        guard let first = periods.first, first.start < period.start else { return zeros }
        var earlier = zeros
        for other in periods {
            guard other.start < period.start else { break }
            let covered = other.applied
            for index in earlier.indices where !covered[index].isZero {
                earlier[index] = (try? earlier[index].adding(covered[index])) ?? earlier[index]
            }
        }
        return earlier
    }
}

/// One period of a `CreditAccount`: what each grant covers in it, and what the credit step keeps
/// to price the period again cheaply.
final class PeriodCredits {
    let start: Timestamp
    /// Per grant of the account, what it covers in the period.
    var applied: [ExactDecimal]
    /// Grant ids of stored rows the account's grants do not explain: deleted with the next change.
    var strayRows: [String] = []

    /// Set on the period's first evaluation (settings changes drop the whole account).
    var setup: Setup?
    /// The period rows whose credit lines `keptAmount` sums, while the folder keeps them whole.
    private(set) var rows: UsageFolder.CompleteRows?
    /// `rows.version` when the lines were made: a row that joined since has none.
    private var rowsVersion = -1
    /// The period's amount as the rows' credit lines last rated it; nil: not known (made again
    /// from every row).
    private var keptAmount: ExactDecimal?

    final class Setup {
        /// Nil: the customer has no plan in the period (nothing to cover).
        let pricing: (any PeriodPricing)?
        /// The grants in the plan's currency (indexes into the account's grants), in burn order.
        let inCurrency: [Int]
        /// Every limit of the customer in the period (balance ones included).
        let limits: [UsageLimit]
        /// The balance limits' thresholds, with each limit's index in `limits`.
        let balanceThresholds: [(limit: Int, threshold: UsageLimit.Threshold)]
        /// Whether some limit watches usage (not the balance): the usage-limit step has work.
        let hasUsageLimits: Bool

        init(pricing: (any PeriodPricing)?, inCurrency: [Int], limits: [UsageLimit]) {
            self.pricing = pricing
            self.inCurrency = inCurrency
            self.limits = limits
            balanceThresholds = limits.indices.filter { limits[$0].threshold.isBalance }.map { ($0, limits[$0].threshold) }
            hasUsageLimits = limits.contains { !$0.threshold.isBalance }
        }
    }

    init(start: Timestamp, grantCount: Int) {
        self.start = start
        applied = [ExactDecimal](repeating: .zero, count: grantCount)
    }

    /// The period's amount, when the rows' credit lines still tell it: the amount they last told
    /// and what the commit's events changed of it through them. Nil when the rows are no longer the
    /// ones the lines were made for (a row joined, the folder stopped keeping them whole).
    func amount(changedBy change: ExactDecimal) -> ExactDecimal? {
        guard let rows, rows.isLive, rowsVersion == rows.version, let keptAmount else { return nil }
        let amount = (try? keptAmount.adding(change)) ?? keptAmount
        self.keptAmount = amount
        return amount
    }

    /// The period's amount from every row (kept whole by the folder), each given a credit line
    /// that rates it from now on, as the fold changes it: the sum `pricing` makes of the rows.
    func attachLines(to rows: UsageFolder.CompleteRows, pricing: any PeriodPricing, account: CreditAccount) -> ExactDecimal {
        var priced = Set<String>()
        var total = ExactDecimal.zero
        for entry in rows.entries {
            guard let meter = UsageFolder.meter(of: entry.key) else { continue }
            let rating = pricing.lineRating(meter: meter, group: entry.state.group)
            if rating != nil { priced.insert(meter) }
            let line = CreditLine(account: account, rating: rating, quantity: entry.state.quantity)
            entry.creditLine = line
            if let amount = line.amount { total = (try? total.adding(amount)) ?? total }
        }
        for (meter, amount) in pricing.zeroQuantityAmounts where !priced.contains(meter) {
            total = (try? total.adding(amount)) ?? total
        }
        self.rows = rows
        rowsVersion = rows.version
        keptAmount = total
        return total
    }

    /// The period's amount is read from records from now on (see `UsageFolder.PeriodRows`).
    func forgetRows() {
        rows = nil
        keptAmount = nil
    }
}

/// A period row's amount as the credit step last rated it, kept on the row's folder entry so that
/// the fold rates the row again while it is hot, and hands the change of the period's amount to the
/// commit (`CreditChange`). Valid while its account is: `generation` is the writer's when the
/// account was made (`StoreWriter.dropCreditAccounts` starts a new one).
final class CreditLine {
    /// Unretained: read only while `generation` is the writer's, when the writer's table of
    /// accounts holds it (reading it costs the fold no reference counting per event).
    unowned(unsafe) let account: CreditAccount
    let generation: UInt64
    let rating: LineRating?
    private(set) var amount: ExactDecimal?

    init(account: CreditAccount, rating: LineRating?, quantity: ExactDecimal) {
        self.account = account
        generation = account.generation
        self.rating = rating
        amount = rating?.amount(quantity)
    }

    /// Rates the row at its new `quantity`; returns what that changes of the period's amount.
    func rerate(_ quantity: ExactDecimal) -> ExactDecimal {
        guard let rating else { return .zero }
        let old = amount ?? .zero
        amount = rating.amount(quantity)
        return (try? (amount ?? .zero).subtracting(old)) ?? .zero
    }
}
