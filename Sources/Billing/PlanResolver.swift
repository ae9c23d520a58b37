public import TallyConfiguration
public import Metering
public import Storage

/// Which plan prices a customer's period.
///
/// The rule: the last plan assignment stored with `tally customers set-plan` whose `from` is before
/// the period's end (so a change during a period prices that whole period: no proration); without
/// one, the customer's static assignment in the config; without one, `default_plan`.
public struct PlanResolver: Sendable {
    public let config: TallyConfig
    private let stored: [String: [PlanAssignment]]
    private let plansByCode: [String: Plan]
    private let configured: [String: String]

    /// Loads the stored assignments once, for a whole rating run.
    public init(config: TallyConfig, store: TallyStore) throws(StoreError) {
        var stored: [String: [PlanAssignment]] = [:]
        for entry in try store.allPlanAssignments() { stored[entry.customer] = entry.assignments }
        self.init(config: config, storedAssignments: stored)
    }

    /// Loads only `customer`'s stored assignments: for answering about one customer.
    public init(config: TallyConfig, store: TallyStore, customer: String) throws(StoreError) {
        self.init(config: config, storedAssignments: [customer: try store.planAssignments(customer: customer)])
    }

    /// Uses assignments already read (by the ingest writer, inside its transaction).
    public init(config: TallyConfig, storedAssignments: [String: [PlanAssignment]]) {
        self.config = config
        stored = storedAssignments
        plansByCode = Dictionary(config.plans.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
        configured = Dictionary(config.customers.map { ($0.customer, $0.plan) }, uniquingKeysWith: { first, _ in first })
    }

    /// Customers that have a plan assignment, stored or in the config.
    public var assignedCustomers: [String] {
        Array(Set(stored.keys).union(configured.keys))
    }

    /// Where `customer`'s plan in `period` comes from.
    public enum Source: String, Sendable {
        /// A stored assignment (`tally customers set-plan`, `PUT /v1/customers/{id}/plan`).
        case assigned
        /// The config's `customers` list.
        case config
        /// The config's `default_plan`.
        case defaultPlan = "default_plan"
        /// No plan applies.
        case none
    }

    /// Where the plan that prices `customer`'s `period` comes from (as `plan(for:in:)` decides it).
    public func source(for customer: String, in period: PeriodInterval) -> Source {
        if stored[customer]?.contains(where: { $0.from < period.end }) == true { return .assigned }
        if configured[customer] != nil { return .config }
        return plan(for: customer, in: period) == nil ? .none : .defaultPlan
    }

    /// The plan for `customer` in `period`, or nil when no plan applies.
    public func plan(for customer: String, in period: PeriodInterval) -> Plan? {
        if let assignments = stored[customer], let current = assignments.last(where: { $0.from < period.end }) {
            return plansByCode[current.plan]
        }
        if let code = configured[customer] { return plansByCode[code] }
        return config.defaultPlan.flatMap { plansByCode[$0] }
    }
}
