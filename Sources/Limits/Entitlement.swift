public import Billing
public import Metering
public import TallyConfiguration
public import Storage

/// One meter's entitlement for a customer this period: what `GET /v1/customers/{id}/entitlements/{meter}`
/// answers and the dashboard shows.
///
/// `used` is the meter's quantity this period summed over its groups; `limit` the applicable
/// quantity limit on the meter (the lowest `disable` one, else the lowest one; nil when none);
/// `hasAccess` is false once a `disable` limit on the meter or on the amount is reached, judged
/// exactly as ingest judges `"blocked":true`.
public struct Entitlement: Sendable, Hashable {
    public var hasAccess: Bool
    public var used: ExactDecimal
    public var limit: ExactDecimal?
    /// What is left under `limit`, never below zero; nil without a limit.
    public var remaining: ExactDecimal?
    /// When the period ends and `used` starts again from zero.
    public var resetsAt: Timestamp

    /// The entitlement of `customer` to `meter` in `period`, from its `usage` there and the limits
    /// `evaluator` has for it.
    public init(customer: String, meter: String, period: PeriodInterval, usage: [UsageRecord],
                evaluator: CommitLimitEvaluator, credits: CreditPosition = .none) throws(DecimalOverflow) {
        let limits = evaluator.limits(for: customer, in: period)
        var used: ExactDecimal = 0
        for record in usage where record.meter == meter { used = try used.adding(record.quantity) }
        let onMeter = limits.filter { $0.threshold.meter == meter && !$0.threshold.isBalance }
        let lowest = { (candidates: [UsageLimit]) in candidates.min { $0.threshold.value < $1.threshold.value } }
        let applicable = lowest(onMeter.filter { $0.action == .disable }) ?? lowest(onMeter)
        var hasAccess = true
        for limit in limits where limit.action == .disable && (limit.threshold.meter == meter || limit.threshold.meter == nil) {
            if Self.reached(limit, customer: customer, period: period, usage: usage, evaluator: evaluator, credits: credits) {
                hasAccess = false
            }
        }
        var remaining: ExactDecimal?
        if let applicable {
            let left = try applicable.threshold.value.subtracting(used)
            remaining = left.isNegative ? ExactDecimal.zero : left
        }
        self.hasAccess = hasAccess
        self.used = used
        limit = applicable?.threshold.value
        self.remaining = remaining
        resetsAt = period.end
    }

    /// Whether a `disable` limit of the customer (on any meter or on the amount) is reached: what
    /// makes ingest answer its events `"blocked":true`.
    public static func isBlocked(customer: String, period: PeriodInterval, usage: [UsageRecord], evaluator: CommitLimitEvaluator,
                                 credits: CreditPosition = .none) -> Bool {
        evaluator.limits(for: customer, in: period).contains { limit in
            limit.action == .disable && reached(limit, customer: customer, period: period, usage: usage, evaluator: evaluator, credits: credits)
        }
    }

    /// Whether `limit` is at or past its value (a usage limit) or crossed (a balance limit).
    public static func reached(_ limit: UsageLimit, customer: String, period: PeriodInterval, usage: [UsageRecord],
                               evaluator: CommitLimitEvaluator, credits: CreditPosition) -> Bool {
        if limit.threshold.isBalance { return credits.crosses(limit.threshold) }
        return evaluator.used(by: limit, customer: customer, period: period, usage: usage) >= limit.threshold.value
    }
}

extension CommitLimitEvaluator {
    /// An evaluator loaded with the stored limits and `customer`'s plan assignments, as the ingest
    /// writer has them for that customer.
    public static func forCustomer(_ customer: String, config: TallyConfig, store: TallyStore) throws(StoreError) -> CommitLimitEvaluator {
        let evaluator = CommitLimitEvaluator(config: config)
        evaluator.reload(storedLimits: try store.storedLimits(),
                         planAssignments: [customer: try store.planAssignments(customer: customer)])
        return evaluator
    }
}
