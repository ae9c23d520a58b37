import Billing
public import Metering
public import Storage

/// Evaluates usage limits inside the ingest writer's group commits (see `LimitEvaluator`).
///
/// Amount limits rate the customer's whole period so far with its plan, as `tally estimate` does,
/// and compare the statement total (the sum of lines rounded once each); quantity limits compare
/// the meter's quantity summed over its groups. Used on the writer thread only.
public final class CommitLimitEvaluator: LimitEvaluator {
    private let config: TallyConfig
    private let builder: StatementBuilder
    private var policy: LimitPolicy
    private var resolver: PlanResolver
    /// The last amount computed, reused by the other limits of the same customer and period.
    private var lastAmount: (customer: String, periodStart: Timestamp, usage: [UsageRecord], amount: ExactDecimal)?

    public init(config: TallyConfig) {
        self.config = config
        builder = StatementBuilder(config: config)
        policy = LimitPolicy(config: config, storedLimits: [])
        resolver = PlanResolver(config: config, storedAssignments: [:])
    }

    public var hasLimits: Bool { !policy.isEmpty }

    public func reload(storedLimits: [UsageLimit], planAssignments: [String: [PlanAssignment]]) {
        policy = LimitPolicy(config: config, storedLimits: storedLimits)
        resolver = PlanResolver(config: config, storedAssignments: planAssignments)
        lastAmount = nil
    }

    public func limits(for customer: String, in period: PeriodInterval) -> [UsageLimit] {
        guard !policy.isEmpty else { return [] }
        return policy.limits(for: customer, plan: resolver.plan(for: customer, in: period)?.code)
    }

    public func used(by limit: UsageLimit, customer: String, period: PeriodInterval, usage: [UsageRecord]) -> ExactDecimal {
        switch limit.threshold {
        case .quantity(let meter, _):
            var total: ExactDecimal = 0
            for record in usage where record.meter == meter {
                total = (try? total.adding(record.quantity)) ?? total
            }
            return total
        case .amount:
            if let last = lastAmount, last.customer == customer, last.periodStart == period.start, last.usage == usage {
                return last.amount
            }
            let plan = resolver.plan(for: customer, in: period)
            let amount = (try? builder.statement(customer: customer, period: period, plan: plan, usage: usage).total) ?? 0
            lastAmount = (customer, period.start, usage, amount)
            return amount
        }
    }
}
