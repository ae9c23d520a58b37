public import Metering
public import Storage
public import TallyConfiguration

/// Pages of the customers Tally knows (the store's directory and the config's customers), each
/// with its plan: what `GET /v1/customers` and `tally customers list` show.
public struct CustomerListing: Sendable {
    /// One customer of a page.
    public struct Row: Sendable, Hashable {
        public var id: String
        /// The plan pricing the period asked about, nil when none applies.
        public var plan: String?
        public var source: PlanResolver.Source
    }

    public let config: TallyConfig
    public let store: TallyStore

    public init(config: TallyConfig, store: TallyStore) {
        self.config = config
        self.store = store
    }

    /// Customer ids the config knows: its `customers` list and its customer limits.
    public var configCustomers: [String] {
        config.customers.map(\.customer) + config.limits.compactMap { limit in
            if case .customer(let customer) = limit.scope { customer } else { nil }
        }
    }

    /// Whether Tally knows `customer`: usage in some period, a plan assignment (config or stored), or
    /// a limit of its own in the config (the store's directory holds the stored ones).
    public func knows(_ customer: String) throws(StoreError) -> Bool {
        if config.customers.contains(where: { $0.customer == customer }) { return true }
        if config.limits.contains(where: { $0.scope == .customer(customer) }) { return true }
        return try store.knowsCustomer(customer)
    }

    /// Up to `limit` customers after the id `after` (its bytes; exclusive) whose id starts with
    /// `prefix` and, with `plan`, whose plan in `period` it is; and whether more match.
    public func page(after: [UInt8]?, prefix: String = "", plan: String? = nil, limit: Int,
                     period: PeriodInterval) throws(StoreError) -> (rows: [Row], hasMore: Bool) {
        let additional = configCustomers
        var rows: [Row] = []
        var position = after
        while true {
            // With a plan filter, read ahead in larger chunks: most customers may not match.
            let chunk = plan == nil ? limit : max(limit, 256)
            let page = try store.customers(after: position, prefix: prefix, limit: chunk, additional: additional)
            let resolver = PlanResolver(config: config, storedAssignments: try store.planAssignments(customers: page.customers))
            for id in page.customers {
                let current = resolver.plan(for: id, in: period)?.code
                if let plan, current != plan { continue }
                if rows.count == limit { return (rows, true) }
                rows.append(Row(id: id, plan: current, source: resolver.source(for: id, in: period)))
            }
            guard page.hasMore, let last = page.customers.last else { return (rows, false) }
            // Without a filter the chunk was the page, and more follow.
            if plan == nil { return (rows, true) }
            position = Array(last.utf8)
        }
    }
}
