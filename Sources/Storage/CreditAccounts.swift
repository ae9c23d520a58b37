import Credits
import Metering

/// The writer's view of one customer's credits, kept between group commits so that the credit
/// step of a touched customer is arithmetic on arrays (its period reached through the commit's
/// `CreditChange`, or by the customer's name): its grants in burn order, and per period what each
/// grant covers there (one amount per grant, 0 where none).
///
/// Built from `credit_grants` and `credit_applied` (with `credit_log`) the first time a commit touches the customer,
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
        let period = PeriodCredits(start: start, account: self, grantCount: grants.count)
        // A new period covers nothing yet: what the later ones have before them is unchanged.
        period.hasLater = place < periods.endIndex
        for before in periods[..<place] { before.hasLater = true }
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

    /// `period`'s applications changed: the periods after it cover what is left after them.
    func appliedChanged(in period: PeriodCredits) {
        guard period.hasLater else { return }
        for other in periods where other.start > period.start { other.earlierCovered = nil }
    }
}

/// One period of a `CreditAccount`: what each grant covers in it, and what the credit step keeps
/// to price the period again cheaply. Everything a commit's credit step reads for the period is
/// here, in one object, so that it costs one fetch from memory rather than one per piece.
final class PeriodCredits: UsageFolder.CompleteRowsWatcher {
    // What every commit reads comes first (one cache line), what setting up reads after.
    /// The account's generation (read without reading the account).
    let generation: UInt64
    /// Unretained: the account holds its periods, and a period is used only while its account
    /// is the writer's (`CreditLine`, `StoreWriter.retiredCreditAccounts`).
    unowned(unsafe) let account: CreditAccount
    /// Per grant of the account, what it covers in the period.
    var applied: [ExactDecimal]
    let start: Timestamp
    /// Grant ids of stored rows the account's grants do not explain: deleted with the next change.
    var strayRows: [String] = []
    /// Whether the account has a later period (which covers on top of this one's applications).
    var hasLater = false
    /// Per grant, what the periods before this one cover; nil: not known (summed again).
    var earlierCovered: [ExactDecimal]?

    /// Set on the period's first evaluation (settings changes drop the whole account).
    private(set) var isSetUp = false
    /// Nil: the customer has no plan in the period (nothing to cover).
    private(set) var pricing: (any PeriodPricing)?
    /// The grants in the plan's currency (indexes into the account's grants), in burn order.
    private(set) var inCurrency: [Int] = []
    /// Every limit of the customer in the period (balance ones included).
    private(set) var limits: [UsageLimit] = []
    /// The balance limits' thresholds, with each limit's index in `limits`.
    private(set) var balanceThresholds: [(limit: Int, threshold: UsageLimit.Threshold)] = []
    /// Whether some limit watches usage (not the balance): the usage-limit step has work.
    private(set) var hasUsageLimits = false

    /// The period's amount as the rows' credit lines last rated it; nil: not known (made again
    /// from every row). The rows tell the period when they change (`rowsChanged`).
    private var keptAmount: ExactDecimal?

    init(start: Timestamp, account: CreditAccount, grantCount: Int) {
        self.start = start
        self.account = account
        generation = account.generation
        applied = [ExactDecimal](repeating: .zero, count: grantCount)
    }

    /// What the credit step needs of the period's plan and limits, found once.
    func setUp(pricing: (any PeriodPricing)?, inCurrency: [Int], limits: [UsageLimit]) {
        self.pricing = pricing
        self.inCurrency = inCurrency
        self.limits = limits
        balanceThresholds = limits.indices.filter { limits[$0].threshold.isBalance }.map { ($0, limits[$0].threshold) }
        hasUsageLimits = limits.contains { !$0.threshold.isBalance }
        isSetUp = true
    }

    /// The period's amount, when the rows' credit lines still tell it: the amount they last told
    /// and what the commit's events changed of it through them. Nil when the rows are no longer the
    /// ones the lines were made for (a row joined, the folder stopped keeping them whole).
    func amount(changedBy change: ExactDecimal) -> ExactDecimal? {
        guard let keptAmount else { return nil }
        let amount = (try? keptAmount.adding(change)) ?? keptAmount
        self.keptAmount = amount
        return amount
    }

    /// The period's amount from every row (kept whole by the folder), each given a credit line
    /// that rates it from now on, as the fold changes it: the sum `pricing` makes of the rows.
    func attachLines(to rows: UsageFolder.CompleteRows, pricing: any PeriodPricing) -> ExactDecimal {
        var priced = Set<String>()
        var total = ExactDecimal.zero
        for entry in rows.entries {
            guard let meter = UsageFolder.meter(of: entry.key) else { continue }
            let rating = pricing.lineRating(meter: meter, group: entry.state.group)
            if rating != nil { priced.insert(meter) }
            let line = CreditLine(period: self, rating: rating, quantity: entry.state.quantity)
            entry.creditLine = line
            if let amount = line.amount { total = (try? total.adding(amount)) ?? total }
        }
        for (meter, amount) in pricing.zeroQuantityAmounts where !priced.contains(meter) {
            total = (try? total.adding(amount)) ?? total
        }
        rows.watcher = self
        keptAmount = total
        return total
    }

    /// The period's amount is read from records, or from every row, from now on.
    func rowsChanged() {
        keptAmount = nil
    }
}

/// A period row's amount as the credit step last rated it, kept on the row's folder entry so that
/// the fold rates the row again while it is hot, and hands the change of the period's amount to the
/// commit (`CreditChange`). Valid while its account is: `generation` is the writer's when the
/// account was made (`StoreWriter.dropCreditAccounts` starts a new one).
final class CreditLine {
    /// Unretained: read only while `generation` is the writer's, when the writer's table of
    /// accounts holds its account (reading it costs the fold no reference counting per event).
    unowned(unsafe) let period: PeriodCredits
    let generation: UInt64
    let rating: LineRating?
    private(set) var amount: ExactDecimal?

    init(period: PeriodCredits, rating: LineRating?, quantity: ExactDecimal) {
        self.period = period
        generation = period.generation
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
