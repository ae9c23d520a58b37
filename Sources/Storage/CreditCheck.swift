import Credits
import LMDB
import Metering

/// Credits burn down inside the group commit: for every customer the commit touched that has
/// grants, the period's amount is rated again and covered by the grants (`CreditAllocation`), and
/// the applications that changed are written in the same transaction as the usage. So a balance
/// read after an answer always reflects the answered events, and a crash loses or doubles nothing:
/// the applications are a function of the committed usage, recomputed from it.
extension StoreWriter {
    func applyCredits(touched: [TouchedCustomer: PeriodInterval], grants: [String: [CreditGrant]], evaluator: any LimitEvaluator,
                      into result: inout LimitCommitResult, transaction: borrowing WriteTransaction,
                      usage: (TouchedCustomer, PeriodInterval) throws -> [UsageRecord]) throws {
        guard let creditApplied = store.creditApplied else { return }
        let now = Timestamp.now()
        for (touchedCustomer, period) in touched {
            let customer = touchedCustomer.customer
            guard let customerGrants = grants[customer], !customerGrants.isEmpty else { continue }
            guard let (amount, currency) = evaluator.amount(customer: customer, period: period, usage: try usage(touchedCustomer, period)) else { continue }
            let applications = try result.creditApplications[customer] ?? creditApplicationCache[customer]
                ?? TallyStore.applications(of: customer, in: transaction, creditApplied)
            let (earlier, current, _) = applications.around(periodStart: period.start)
            let inCurrency = customerGrants.filter { $0.currency == currency }
            let covered = CreditAllocation.allocate(amount: amount, grants: inCurrency, earlier: earlier, current: current, now: now)
            checkBalance(customer: customer, period: period, grants: inCurrency, earlier: earlier, covered: covered, amount: amount,
                         evaluator: evaluator, now: now, into: &result)
            guard covered != current else {
                if creditApplicationCache[customer] == nil { result.creditApplications[customer] = applications }
                continue
            }
            for grant in current.keys where covered[grant] == nil {
                _ = try transaction.delete(creditApplied, key: TallyStore.applicationKey(customer: customer, periodStart: period.start, grant: grant))
            }
            var value: [UInt8] = []
            for (grant, amount) in covered where current[grant] != amount {
                value.removeAll(keepingCapacity: true)
                value.appendDecimal(amount)
                _ = try transaction.put(creditApplied, key: TallyStore.applicationKey(customer: customer, periodStart: period.start, grant: grant), value: value)
            }
            result.creditApplications[customer] = applications.filter { $0.periodStart != period.start }
                + covered.sorted { $0.key < $1.key }.map { CreditApplication(periodStart: period.start, grant: $0.key, amount: $0.value) }
        }
    }

    /// Balance limits of the customer crossed after this commit, and `credits_depleted` when nothing
    /// is left while usage goes on: each fires once per grant set (its `fired` key holds a hash of
    /// the grants' ids and amounts, so a top-up re-arms it); `disable` ones block the customer.
    private func checkBalance(customer: String, period: PeriodInterval, grants: [CreditGrant], earlier: [String: ExactDecimal],
                              covered: [String: ExactDecimal], amount: ExactDecimal, evaluator: any LimitEvaluator, now: Timestamp,
                              into result: inout LimitCommitResult) {
        guard !grants.isEmpty else { return }
        let applied = earlier.merging(covered) { (try? $0.adding($1)) ?? $0 }
        let balance = CreditAllocation.balance(grants: grants, applied: applied, now: now)
        let granted = BalanceThreshold.granted(grants, now: now)
        var crossed: [UsageLimit] = []
        for limit in evaluator.limits(for: customer, in: period) where limit.threshold.isBalance {
            guard BalanceThreshold.isCrossed(limit.threshold, balance: balance, granted: granted) else { continue }
            if limit.action == .disable, result.blocked[customer].map({ limit.id < $0.id }) ?? true {
                result.blocked[customer] = BlockingLimit(id: limit.id, meter: nil, used: balance, limit: limit.threshold.value, resetsAt: period.end)
            }
            crossed.append(limit)
        }
        if balance.isZero, amount > CreditAllocation.total(covered) {
            crossed.append(UsageLimit(id: UsageLimit.creditsDepletedID, scope: .customer(customer), threshold: .balanceBelow(.zero), action: .warning))
        }
        // Crossings are rare (most fire once): the grant set's hash for their `fired` keys is made only for them.
        guard !crossed.isEmpty else { return }
        let grantSet = grantSetHash(grants)
        let percent = BalanceThreshold.percent(balance: balance, granted: granted)
        for limit in crossed {
            result.balanceCrossings.append(LimitCrossing(customer: customer, period: period, limit: limit, percent: percent, used: balance,
                                                         firedKey: Self.balanceFiredKey(customer: customer, limit: limit, grantSet: grantSet)))
        }
    }

    /// A keyed hash of the grants' ids and amounts, in id order.
    private func grantSetHash(_ grants: [CreditGrant]) -> Hash128 {
        var bytes: [UInt8] = []
        for grant in grants.sorted(by: { $0.id < $1.id }) {
            bytes.appendShortString(grant.id)
            bytes.appendDecimal(grant.amount)
        }
        return store.hashKeys.hash(bytes)
    }

    /// `fired` keys of balance alerts: Int64.min where a usage alert has its period (no period: a
    /// balance runs across periods) ‖ customer ‖ limit id ‖ threshold ‖ the grant set's hash.
    static func balanceFiredKey(customer: String, limit: UsageLimit, grantSet: Hash128) -> [UInt8] {
        var key: [UInt8] = []
        key.appendOrdered(.min)
        key.appendShortString(customer)
        key.appendShortString(limit.id)
        key.appendDecimal(limit.threshold.value)
        key.appendBigEndian(grantSet.high)
        key.appendBigEndian(grantSet.low)
        return key
    }
}
