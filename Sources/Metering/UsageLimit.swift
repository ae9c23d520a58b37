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
        /// The customer's prepaid credit balance below this money amount (`balance_below: "20"`).
        case balanceBelow(ExactDecimal)
        /// The balance below this percentage of what its active grants granted (`balance_percent_below: 10`).
        case balancePercentBelow(ExactDecimal)

        /// The limit's value.
        public var value: ExactDecimal {
            switch self {
            case .amount(let value), .quantity(_, let value), .balanceBelow(let value), .balancePercentBelow(let value): value
            }
        }

        /// Whether the limit watches the credit balance rather than usage.
        public var isBalance: Bool {
            switch self {
            case .balanceBelow, .balancePercentBelow: true
            case .amount, .quantity: false
            }
        }

        /// `amount`, the meter's code, `balance_below` or `balance_percent_below`: what the limit is
        /// on (a customer's own limit overrides its plan's on the same target).
        public var target: String {
            switch self {
            case .amount: "amount"
            case .quantity(let meter, _): meter
            case .balanceBelow: "balance_below"
            case .balancePercentBelow: "balance_percent_below"
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

    /// The `limit_id` of the alert fired, once per grant set, when a customer's credits are used up
    /// while its usage goes on.
    public static let creditsDepletedID = "credits_depleted"

    /// The id a limit gets when the config names none: `plan:starter:amount`, `customer:cus_42:api_calls`.
    public static func derivedID(scope: Scope, threshold: Threshold) -> String {
        let owner = switch scope {
        case .customer(let customer): "customer:\(customer)"
        case .plan(let plan): "plan:\(plan)"
        }
        return owner + ":" + threshold.target
    }
}
