public import Metering

/// How a period's amount is covered by a customer's grants: a pure function of the amount, the
/// grants, what earlier periods took of each, what this period's grants covered so far, and now.
///
/// Grants that are no longer active (expired, voided) keep what they covered while they were, and
/// cover nothing more; active grants cover the rest in ``CreditGrant/burnOrder``, each up to what
/// earlier periods left of it. The total covered never passes the amount: when the amount falls (a
/// `latest` meter, a volume tier), the applications follow it, the last in order giving back first.
/// Applying it again at the same `now` changes nothing, so a read computes what a commit stored.
public enum CreditAllocation {
    /// The amount each grant covers in the period (only grants that cover something).
    ///
    /// - Parameters:
    ///   - amount: the period's amount so far, rated as `tally estimate` rates it.
    ///   - grants: the customer's grants in the period's currency.
    ///   - earlier: per grant id, what periods before this one took of it.
    ///   - current: per grant id, what this period's last commit stored.
    ///   - now: the moment of the commit (or of the read).
    public static func allocate(amount: ExactDecimal, grants: [CreditGrant], earlier: [String: ExactDecimal],
                                current: [String: ExactDecimal], now: Timestamp) -> [String: ExactDecimal] {
        let ordered = grants.sorted(by: CreditGrant.burnOrder)
        var covers: [ExactDecimal] = []
        allocate(amount: amount, terms: ordered.map(\.terms), order: Array(ordered.indices), earlier: ordered.map { earlier[$0.id] ?? .zero },
                 current: ordered.map { current[$0.id] ?? .zero }, now: now, into: &covers)
        var covered: [String: ExactDecimal] = [:]
        for (grant, take) in zip(ordered, covers) where take > .zero { covered[grant.id] = take }
        return covered
    }

    /// ``allocate(amount:grants:earlier:current:now:)`` over arrays, for the group commit, which
    /// keeps each customer's grants in burn order: `terms`, `earlier`, `current` and `covered` hold
    /// one entry per grant (amounts 0 where none); `order` lists the grants that may cover the
    /// period (those in its currency), in ``CreditGrant/burnOrder``. `covered` is overwritten (its
    /// storage reused).
    public static func allocate(amount: ExactDecimal, terms: [CreditTerms], order: [Int], earlier: [ExactDecimal],
                                current: [ExactDecimal], now: Timestamp, into covered: inout [ExactDecimal]) {
        var budget = amount.isNegative ? ExactDecimal.zero : amount
        if covered.count == terms.count {
            for index in covered.indices { covered[index] = .zero }
        } else {
            covered = [ExactDecimal](repeating: .zero, count: terms.count)
        }
        // What inactive grants covered stays covered first: that usage came before they stopped.
        for index in order where !terms[index].isActive(at: now) {
            let stored = current[index]
            guard stored > .zero else { continue }
            let take = min(stored, budget)
            guard take > .zero else { continue }
            covered[index] = take
            budget = (try? budget.subtracting(take)) ?? .zero
        }
        for index in order where terms[index].isActive(at: now) {
            guard budget > .zero else { break }
            let left = (try? terms[index].amount.subtracting(earlier[index])) ?? .zero
            let take = min(left.isNegative ? .zero : left, budget)
            guard take > .zero else { continue }
            covered[index] = take
            budget = (try? budget.subtracting(take)) ?? .zero
        }
    }

    /// What is left over the grants active at `now`, after every period's applications.
    public static func balance(grants: [CreditGrant], applied: [String: ExactDecimal], now: Timestamp) -> ExactDecimal {
        balance(terms: grants.map(\.terms), order: Array(grants.indices), applied: { applied[grants[$0].id] ?? .zero }, now: now).balance
    }

    /// ``balance(grants:applied:now:)`` over the group commit's arrays (see
    /// ``allocate(amount:terms:order:earlier:current:now:into:)``), with what the active grants
    /// granted in all (what `balance_percent_below` is a share of): `applied(i)` is what every
    /// period took of grant `i`.
    public static func balance(terms: [CreditTerms], order: [Int], applied: (Int) -> ExactDecimal,
                               now: Timestamp) -> (balance: ExactDecimal, granted: ExactDecimal) {
        var balance = ExactDecimal.zero
        var granted = ExactDecimal.zero
        for index in order where terms[index].isActive(at: now) {
            granted = (try? granted.adding(terms[index].amount)) ?? granted
            let left = (try? terms[index].amount.subtracting(applied(index))) ?? .zero
            if left > .zero { balance = (try? balance.adding(left)) ?? balance }
        }
        return (balance, granted)
    }

    /// The sum of the covered amounts.
    public static func total(_ covered: [String: ExactDecimal]) -> ExactDecimal {
        covered.values.reduce(ExactDecimal.zero) { (try? $0.adding($1)) ?? $0 }
    }
}
