public import Credits
public import Metering
public import Storage

/// A customer's credits as of now for one period: what its grants cover of the period's amount, and
/// what is left over the active grants. Computed from the stored grants and applications exactly
/// as the group commit computes it (`CreditAllocation`), so a read between two commits agrees with
/// what the next one would store.
public struct CreditPosition: Sendable, Hashable {
    /// The amount the grants cover in the period.
    public var applied: ExactDecimal
    /// Remaining over the grants active now, after every period's applications.
    public var balance: ExactDecimal
    /// Per grant id, what it covers in the period (only grants that cover something).
    public var byGrant: [String: ExactDecimal]
    /// What the grants active now granted in all (what `balance_percent_below` is a share of).
    public var granted: ExactDecimal = .zero

    public static let none = CreditPosition(applied: .zero, balance: .zero, byGrant: [:])

    /// The position of `customer` in `period`, whose amount so far is `amount` in `currency`.
    public init(customer: String, period: PeriodInterval, amount: ExactDecimal, currency: String?, store: TallyStore,
                now: Timestamp = .now()) throws(StoreError) {
        let grants = try store.creditGrants(customer: customer).filter { $0.currency == currency }
        guard !grants.isEmpty else {
            self = .none
            return
        }
        let (earlier, current, later) = try store.creditApplications(customer: customer).around(periodStart: period.start)
        let covered = CreditAllocation.allocate(amount: amount, grants: grants, earlier: earlier, current: current, now: now)
        var applied = earlier
        for (grant, value) in covered.merging(later, uniquingKeysWith: { (try? $0.adding($1)) ?? $0 }) {
            applied[grant] = (try? applied[grant, default: .zero].adding(value)) ?? applied[grant]
        }
        self.init(applied: CreditAllocation.total(covered), balance: CreditAllocation.balance(grants: grants, applied: applied, now: now),
                  byGrant: covered)
        granted = BalanceThreshold.granted(grants, now: now)
    }

    /// Whether a balance limit's threshold is crossed now.
    public func crosses(_ threshold: UsageLimit.Threshold) -> Bool {
        BalanceThreshold.isCrossed(threshold, balance: balance, granted: granted)
    }

    public init(applied: ExactDecimal, balance: ExactDecimal, byGrant: [String: ExactDecimal]) {
        self.applied = applied
        self.balance = balance
        self.byGrant = byGrant
    }

    /// `total` less what the credits cover, never below zero.
    public func due(_ total: ExactDecimal) -> ExactDecimal {
        let left = (try? total.subtracting(applied)) ?? total
        return left.isNegative ? .zero : left
    }

    /// `projected` less what the credits cover now and what is left of them, never below zero.
    public func projectedDue(_ projected: ExactDecimal) -> ExactDecimal {
        let covered = (try? applied.adding(balance)) ?? applied
        let left = (try? projected.subtracting(covered)) ?? projected
        return left.isNegative ? .zero : left
    }
}
