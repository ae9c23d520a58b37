public import TallyConfiguration
public import Metering

/// Which limits apply to a customer: its own (config and stored), then its plan's as defaults.
///
/// A customer's own limit on a target (the amount, or one meter) replaces its plan's limit on the
/// same target. Stored limits (`tally limits add`) come after the config's; ids are unique across both.
public struct LimitPolicy: Sendable {
    private let byCustomer: [String: [UsageLimit]]
    private let byPlan: [String: [UsageLimit]]

    public init(config: TallyConfig, storedLimits: [UsageLimit]) {
        var byCustomer: [String: [UsageLimit]] = [:]
        var byPlan: [String: [UsageLimit]] = [:]
        for limit in config.limits + storedLimits {
            switch limit.scope {
            case .customer(let customer): byCustomer[customer, default: []].append(limit)
            case .plan(let plan): byPlan[plan, default: []].append(limit)
            }
        }
        self.byCustomer = byCustomer
        self.byPlan = byPlan
    }

    /// Whether any limit exists at all (when none, ingest skips evaluation entirely).
    public var isEmpty: Bool { byCustomer.isEmpty && byPlan.isEmpty }

    /// The limits that apply to `customer` on `plan` (nil: no plan).
    public func limits(for customer: String, plan: String?) -> [UsageLimit] {
        let own = byCustomer[customer] ?? []
        if own.isEmpty { return plan.flatMap { byPlan[$0] } ?? [] }
        let targets = Set(own.map(\.threshold.target))
        let defaults = plan.flatMap { byPlan[$0] }?.filter { !targets.contains($0.threshold.target) } ?? []
        return own + defaults
    }
}
