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
                      usageOf: (_ prefix: [UInt8]) throws -> [UsageRecord]) throws {
        guard let creditApplied = store.creditApplied else { return }
        let now = Timestamp.now()
        var prefix: [UInt8] = []
        for (touchedCustomer, period) in touched {
            let customer = touchedCustomer.customer
            guard let customerGrants = grants[customer], !customerGrants.isEmpty else { continue }
            UsageKey.prefix(customer: customer, periodStart: period.start, into: &prefix)
            guard let (amount, currency) = evaluator.amount(customer: customer, period: period, usage: try usageOf(prefix)) else { continue }
            let applications = try result.creditApplications[customer] ?? creditApplicationCache[customer]
                ?? TallyStore.applications(of: customer, in: transaction, creditApplied)
            var earlier: [String: ExactDecimal] = [:]
            var current: [String: ExactDecimal] = [:]
            for application in applications where application.periodStart < period.start {
                earlier[application.grant] = (try? earlier[application.grant, default: .zero].adding(application.amount)) ?? earlier[application.grant]
            }
            for application in applications where application.periodStart == period.start { current[application.grant] = application.amount }
            let covered = CreditAllocation.allocate(amount: amount, grants: customerGrants.filter { $0.currency == currency },
                                                    earlier: earlier, current: current, now: now)
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
}
