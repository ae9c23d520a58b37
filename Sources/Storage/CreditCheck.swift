import Credits
import LMDB
import Metering

/// Credits burn down inside the group commit: for every customer the commit touched that has
/// grants, the period's amount is rated again and covered by the grants (`CreditAllocation`), and
/// the applications that changed are written in the same transaction as the usage. So a balance
/// read after an answer always reflects the answered events, and a crash loses or doubles nothing:
/// the applications are a function of the committed usage, recomputed from it.
extension StoreWriter {
    /// Accounts kept at most (a commit rebuilds a dropped one from LMDB): about 1 KiB each.
    static let maximumCreditAccounts = 250_000

    /// Forgets every account (made again from the store as commits touch them) and makes every
    /// credit line stale: grants or plans changed, or a rollback undid what lines had rated. The
    /// accounts stay alive until the commit ends, for the credit changes it still holds.
    func dropCreditAccounts() {
        if !creditAccounts.isEmpty { retiredCreditAccounts.append(creditAccounts) }
        creditAccounts = [:]
        creditGeneration += 1
    }

    /// The credit step for one customer's period touched by the commit: its amount rated again and
    /// covered by its grants, the changed applications written, its balance limits judged. Returns
    /// the period's credits, which know the customer's limits in the period (so the usage-limit
    /// step need not look them up again); nil for a customer without grants.
    ///
    /// `credited`: what the commit's events changed of the period's amount through its rows'
    /// credit lines, and their period.
    ///
    /// `records`: set when the period's rows had to be read as records (the folder keeps too many
    /// aggregates to keep them whole), for the usage-limit step to reuse.
    func applyCredits(customer: String, period: PeriodInterval, change credited: CreditChange?, grants: [String: [CreditGrant]],
                      evaluator: any LimitEvaluator,
                      now: Timestamp, into result: inout LimitCommitResult, transaction: borrowing WriteTransaction,
                      records: inout [UsageRecord]?) throws -> PeriodCredits? {
        guard let creditApplied = store.creditApplied else { return nil }
        let credits: PeriodCredits
        var change = ExactDecimal.zero
        if let credited, credited.period.generation == creditGeneration {
            credits = credited.period
            change = credited.amount
        } else {
            let account: CreditAccount
            if let known = creditAccounts[customer] {
                account = known
            } else {
                guard let customerGrants = grants[customer], !customerGrants.isEmpty else { return nil }
                // The log holds every earlier commit's changes, and this commit made none for the
                // customer yet (accounts are dropped only before the credit step, `evaluateLimits`).
                account = CreditAccount(customer: customer, grants: customerGrants,
                                        applications: try TallyStore.applications(of: customer, in: transaction, creditApplied,
                                                                                  log: store.creditLog),
                                        generation: creditGeneration)
                creditAccounts[customer] = account
            }
            credits = account.period(startingAt: period.start)
        }
        let account = credits.account
        if !credits.isSetUp {
            let pricing = evaluator.pricing(customer: customer, period: period)
            let inCurrency = pricing.map { pricing in account.grants.indices.filter { account.grants[$0].currency == pricing.currency } } ?? []
            credits.setUp(pricing: pricing, inCurrency: inCurrency, limits: evaluator.limits(for: customer, in: period))
        }
        guard let pricing = credits.pricing else { return credits }
        let amount: ExactDecimal
        if let kept = credits.amount(changedBy: change) {
            amount = kept
        } else {
            UsageKey.prefix(customer: customer, periodStart: period.start, into: &creditPrefix)
            switch try folder.periodRows(prefix: creditPrefix, transaction: transaction) {
            case .complete(let rows):
                amount = credits.attachLines(to: rows, pricing: pricing)
            case .records(let found):
                records = found
                amount = evaluator.amount(customer: customer, period: period, usage: found)?.amount ?? .zero
            }
        }
        let earlier: [ExactDecimal]
        if let known = credits.earlierCovered {
            earlier = known
        } else {
            earlier = account.earlier(than: credits)
            credits.earlierCovered = earlier
        }
        // Into the writer's scratch array, then copied into the period's: no allocation per customer.
        CreditAllocation.allocate(amount: amount, terms: account.terms, order: credits.inCurrency, earlier: earlier, current: credits.applied,
                                  now: now, into: &creditCovered)
        checkBalance(credits, period: period, earlier: earlier, covered: creditCovered, amount: amount, now: now, into: &result)
        guard creditCovered != credits.applied || !credits.strayRows.isEmpty else { return credits }
        for grant in credits.strayRows {
            creditLog.log(key: TallyStore.applicationKey(customer: customer, periodStart: period.start, grant: grant), amount: .zero)
        }
        credits.strayRows.removeAll()
        for index in creditCovered.indices where creditCovered[index] != credits.applied[index] {
            TallyStore.applicationKey(customer: customer, periodStart: period.start, grant: account.grants[index].id, into: &creditKey)
            creditLog.log(key: creditKey, amount: creditCovered[index] > .zero ? creditCovered[index] : .zero)
            credits.applied[index] = creditCovered[index]
        }
        account.appliedChanged(in: credits)
        return credits
    }

    /// Balance limits of the customer crossed after this commit, and `credits_depleted` when nothing
    /// is left while usage goes on: each fires once per grant set (its `fired` key holds a hash of
    /// the grants' ids and amounts, so a top-up re-arms it); `disable` ones block the customer.
    private func checkBalance(_ credits: PeriodCredits, period: PeriodInterval, earlier: [ExactDecimal],
                              covered: [ExactDecimal], amount: ExactDecimal, now: Timestamp, into result: inout LimitCommitResult) {
        guard !credits.inCurrency.isEmpty else { return }
        let account = credits.account
        let (balance, granted) = CreditAllocation.balance(terms: account.terms, order: credits.inCurrency, applied: { index in
            (try? earlier[index].adding(covered[index])) ?? earlier[index]
        }, now: now)
        var coveredTotal = ExactDecimal.zero
        for index in credits.inCurrency { coveredTotal = (try? coveredTotal.adding(covered[index])) ?? coveredTotal }
        let customer = account.customer
        var crossed: [UsageLimit] = []
        for (index, threshold) in credits.balanceThresholds {
            guard BalanceThreshold.isCrossed(threshold, balance: balance, granted: granted) else { continue }
            let limit = credits.limits[index]
            if limit.action == .disable, result.blocked[customer].map({ limit.id < $0.id }) ?? true {
                result.blocked[customer] = BlockingLimit(id: limit.id, meter: nil, used: balance, limit: limit.threshold.value, resetsAt: period.end)
            }
            crossed.append(limit)
        }
        if balance.isZero, amount > coveredTotal {
            crossed.append(UsageLimit(id: UsageLimit.creditsDepletedID, scope: .customer(customer), threshold: .balanceBelow(.zero), action: .warning))
        }
        // Crossings are rare (most fire once): the grant set's hash for their `fired` keys is made only for them.
        guard !crossed.isEmpty else { return }
        let grantSet = grantSetHash(credits.inCurrency.map { account.grants[$0] })
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
