public import Foundation
public import Metering
public import Storage

/// A windowed usage query: one customer's meters, or one meter across customers, split into
/// hour, day or month windows in a time zone. The one engine behind `tally usage --window`,
/// `GET /v1/customers/{id}/usage?window=` and `GET /v1/meters/{meter}/usage`.
///
/// ```swift
/// let plan = try WindowPlan(from: from, to: to, window: .day, timeZone: try WindowPlan.timeZone("Europe/Berlin"))
/// let result = try UsageQuery(plan: plan, meters: [meter], groupBy: []).run(store: store, customers: .only(["cus_42"]))
/// print(UsageQueryFormat.json(result))
/// ```
///
/// Windows are exact: each is the sum (or max, min, latest, distinct count) of the quarter-hour
/// buckets inside it, with whole UTC days read from the day buckets.
public struct UsageQuery: Sendable {
    public let plan: WindowPlan
    public let meters: [Meter]
    /// Group-by properties: each must be among every queried meter's `group_by`; empty: one series per meter.
    public let groupBy: [String]

    /// Checks that every meter has every `groupBy` property.
    public init(plan: WindowPlan, meters: [Meter], groupBy: [String]) throws(UsageQueryError) {
        for meter in meters {
            for property in groupBy where !meter.groupBy.contains(property) {
                let known = meter.groupBy.isEmpty ? "it has no group_by" : "its group_by is \(meter.groupBy.joined(separator: ", "))"
                throw UsageQueryError(.unknownGroupBy, "meter '\(meter.code)' cannot be grouped by '\(property)': \(known)")
            }
        }
        self.plan = plan
        self.meters = meters
        self.groupBy = groupBy
    }

    /// The configured meter named `code`, or an error listing the meters.
    public static func meter(_ code: String, in meters: [Meter]) throws(UsageQueryError) -> Meter {
        guard let meter = meters.first(where: { $0.code == code }) else {
            throw UsageQueryError(.unknownMeter, "no meter '\(code)' in the config; use one of: \(meters.map(\.code).joined(separator: ", "))")
        }
        return meter
    }

    /// Runs the query for `customers`. With `.only`, every customer and meter has a series (all
    /// windows "0" without usage) unless grouping found no group; with `.all`, only customers with
    /// usage in the range appear.
    public func run(store: TallyStore, customers: BucketCustomers) throws(StoreError) -> UsageQueryResult {
        let (days, quarters) = plan.pieces()
        let ranges = days.map { BucketRange(resolution: .day, from: $0.from, to: $0.to) }
            + quarters.map { BucketRange(resolution: .quarterHour, from: $0.from, to: $0.to) }
        var cursor: [UInt8]?
        var order: [String] = []
        var listed = Set<String>()
        var byCustomer: [String: [UsageSeries]] = [:]
        let keepEmpty = if case .only = customers { true } else { false }
        for meter in meters {
            let result = try store.readBuckets(meter: meter.code, customers: customers, ranges: ranges,
                                               uniqueValues: meter.aggregation == .uniqueCount) { customer, buckets in
                byCustomer[customer, default: []].append(contentsOf: self.series(of: meter, customer: customer, buckets: buckets, keepEmpty: keepEmpty))
            }
            for customer in result.customers where listed.insert(customer).inserted { order.append(customer) }
            cursor = result.last
        }
        let series = order.flatMap { byCustomer[$0] ?? [] }
        return UsageQueryResult(plan: plan, series: series, nextCursor: cursor.map(Self.encodeCursor))
    }

    /// One meter's series for one customer: one per distinct value of the group-by properties.
    func series(of meter: Meter, customer: String, buckets: [StoredBucket], keepEmpty: Bool) -> [UsageSeries] {
        var groups: [[GroupValue]: [WindowAccumulator]] = [:]
        var order: [[GroupValue]] = []
        if groupBy.isEmpty {
            // One series: no grouping to look up per bucket.
            var windows = Array(repeating: WindowAccumulator(), count: plan.count)
            for bucket in buckets {
                if let window = plan.windowIndex(of: bucket.start) { windows[window].add(bucket, aggregation: meter.aggregation) }
            }
            if !buckets.isEmpty || keepEmpty {
                groups[[]] = windows
                order.append([])
            }
        }
        for bucket in buckets where !groupBy.isEmpty {
            guard let window = plan.windowIndex(of: bucket.start) else { continue }
            let group = groupBy.map { property in
                GroupValue(property: property, value: bucket.group.first { $0.property == property }?.value ?? "")
            }
            if groups[group] == nil {
                groups[group] = Array(repeating: WindowAccumulator(), count: plan.count)
                order.append(group)
            }
            groups[group]![window].add(bucket, aggregation: meter.aggregation)
        }
        order.sort { $0.lexicographicallyPrecedes($1) { ($0.property, $0.value) < ($1.property, $1.value) } }
        return order.map { group in
            let windows = groups[group]!
            var total = WindowAccumulator()
            for window in windows { total.merge(window, aggregation: meter.aggregation) }
            return UsageSeries(meter: meter.code, aggregation: meter.aggregation, customer: customer, group: group,
                               quantities: windows.map { $0.quantity(meter.aggregation) }, total: total.quantity(meter.aggregation))
        }
    }

    /// The opaque text of a customer cursor (its key position, as every list cursor is written).
    static func encodeCursor(_ bytes: [UInt8]) -> String { ListCursor.encode(bytes) }

    /// The key position a cursor names; nil when the text is not one.
    public static func decodeCursor(_ text: String) -> [UInt8]? { ListCursor.decode(text) }
}

/// One meter's usage over the windows for one customer and group.
public struct UsageSeries: Sendable, Hashable {
    public var meter: String
    public var aggregation: Aggregation
    public var customer: String
    /// The group-by values of the series (empty without group-by).
    public var group: [GroupValue]
    /// One quantity per window, in order ("0" for a window without events).
    public var quantities: [ExactDecimal]
    /// The aggregation over the whole range (for `unique_count`, distinct values over the range).
    public var total: ExactDecimal
}

/// What a query found: its windows and series; `nextCursor` when more customers follow.
public struct UsageQueryResult: Sendable {
    public var plan: WindowPlan
    public var series: [UsageSeries]
    public var nextCursor: String?
}

/// One window's aggregate being built from buckets.
struct WindowAccumulator: Sendable {
    var eventCount: UInt64 = 0
    var quantity: ExactDecimal = 0
    var latestTime: Int64 = .min
    var values: Set<[UInt8]> = []

    mutating func add(_ bucket: StoredBucket, aggregation: Aggregation) {
        guard bucket.eventCount > 0 else { return }
        combine(count: bucket.eventCount, quantity: bucket.quantity, latestTime: bucket.latestTime, aggregation: aggregation)
        if aggregation == .uniqueCount { values.formUnion(bucket.uniqueValues) }
    }

    mutating func merge(_ other: WindowAccumulator, aggregation: Aggregation) {
        guard other.eventCount > 0 else { return }
        combine(count: other.eventCount, quantity: other.quantity, latestTime: other.latestTime, aggregation: aggregation)
        if aggregation == .uniqueCount { values.formUnion(other.values) }
    }

    private mutating func combine(count: UInt64, quantity other: ExactDecimal, latestTime time: Int64, aggregation: Aggregation) {
        let first = eventCount == 0
        eventCount += count
        switch aggregation {
        case .count, .uniqueCount:
            break
        case .sum:
            // Bucket sums already fit the period's sum, which holds them all (overflow is rejected at ingest).
            quantity = (try? quantity.adding(other)) ?? quantity
        case .max:
            quantity = first ? other : Swift.max(quantity, other)
        case .min:
            quantity = first ? other : Swift.min(quantity, other)
        case .latest:
            if first || time >= latestTime {
                quantity = other
                latestTime = time
            }
        }
    }

    func quantity(_ aggregation: Aggregation) -> ExactDecimal {
        switch aggregation {
        case .count: ExactDecimal(Int(truncatingIfNeeded: eventCount))
        case .uniqueCount: ExactDecimal(values.count)
        default: eventCount == 0 ? 0 : quantity
        }
    }
}
