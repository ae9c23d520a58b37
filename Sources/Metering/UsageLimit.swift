/// A usage limit (DESIGN §6): a threshold on a period's amount or on one meter's quantity, per
/// customer or per plan (a default for the plan's customers), with warning steps.
public struct UsageLimit: Sendable, Hashable {
    /// Who the limit applies to.
    public enum Scope: Sendable, Hashable {
        /// One customer.
        case customer(String)
        /// Every customer on the plan, unless the customer has its own limit on the same target.
        case plan(String)
    }

    /// What the limit measures.
    public enum Threshold: Sendable, Hashable {
        /// The period's amount so far, in the plan's currency (`amount: "500"`).
        case amount(ExactDecimal)
        /// One meter's quantity in the period (`meter: api_calls, quantity: 1000000`).
        case quantity(meter: String, ExactDecimal)

        /// The limit's value.
        public var value: ExactDecimal {
            switch self {
            case .amount(let value), .quantity(_, let value): value
            }
        }

        /// The meter, or nil for an amount limit.
        public var meter: String? {
            if case .quantity(let meter, _) = self { return meter }
            return nil
        }
    }

    /// What crossing 100% does.
    public enum Action: String, Sendable, Hashable, CaseIterable {
        /// Alerts only.
        case warning
        /// Alerts, and ingest answers the customer's events with `"blocked":true` until the period
        /// resets or the limit is raised or removed.
        case disable
    }

    /// Stable and unique: from the config's `id`, derived from scope and target, or given to `tally limits add`.
    public var id: String
    public var scope: Scope
    public var threshold: Threshold
    public var action: Action
    /// Percent steps that each fire one alert per period, ascending (default `[100]`).
    public var notifyAt: [Int]

    public init(id: String, scope: Scope, threshold: Threshold, action: Action, notifyAt: [Int] = [100]) {
        self.id = id
        self.scope = scope
        self.threshold = threshold
        self.action = action
        self.notifyAt = notifyAt
    }

    /// The id a limit gets when the config names none: `plan:starter:amount`, `customer:cus_42:api_calls`.
    public static func derivedID(scope: Scope, threshold: Threshold) -> String {
        let owner = switch scope {
        case .customer(let customer): "customer:\(customer)"
        case .plan(let plan): "plan:\(plan)"
        }
        return owner + ":" + (threshold.meter ?? "amount")
    }
}
