public import Metering

/// Folds events into usage aggregates for one period in memory, exactly as ingest folds them into
/// the store, without writing anything.
///
/// The re-aggregation of `tally rerate`: the same meter lookup and filter, `group_by` (an absent
/// property groups as ""), folding and `unique_count` (distinct property texts per customer, meter
/// and group) as `StoreWriter`, counting only events whose time (their own, or when they were
/// received) is in the period. Under the meters the daemon ran with, events added in commit order
/// give the stored aggregates, in the store's order. An event whose value would overflow its
/// aggregate is not counted, as ingest would have rejected it (see ``overflowingEvents``).
///
/// ```swift
/// var aggregator = EventAggregator(meters: config.meters, period: period, store: store)
/// try store.forEachEvent { aggregator.add($0); return true }
/// let usage = aggregator.usageByCustomer()
/// ```
public struct EventAggregator: Sendable {
    /// The period whose events count.
    public let period: PeriodInterval
    /// Events added whose time is in ``period``.
    public private(set) var eventsInPeriod = 0
    /// Events in ``period`` folded into an aggregate (a configured meter whose filter they pass).
    public private(set) var eventsCounted = 0
    /// Events in ``period`` not counted because their value would overflow the aggregate.
    public private(set) var overflowingEvents = 0

    private let meters: [String: Meter]
    private let hashKeys: HashKeys
    /// Usage key (the store's bytes) → index into `entries`.
    private var positions: [[UInt8]: Int] = [:]
    private var entries: [Entry] = []
    private var keyBuffer: [UInt8] = []

    private struct Entry: Sendable {
        var key: [UInt8]
        var customer: String
        var meter: String
        var state: AggregateState
        /// For `unique_count`: the property texts seen so far.
        var uniqueValues: Set<String> = []
    }

    /// An empty aggregation of `period` under `meters` (the first meter of a duplicated code wins, as in the store).
    ///
    /// `store` only matters for a group whose values are too long for an LMDB key: the store orders
    /// such a group by a hash under its own keys, and passing it reproduces that order. Without it a
    /// fixed hash key is used.
    public init(meters: [Meter], period: PeriodInterval, store: TallyStore? = nil) {
        self.period = period
        self.meters = Dictionary(meters.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
        hashKeys = store?.hashKeys ?? HashKeys(first: (0, 0), second: (0, 0))
    }

    /// Folds one stored event (in commit order: `latest` gives ties to the later event).
    public mutating func add(_ stored: StoredEvent) {
        add(stored.event, receivedAt: stored.receivedAt)
    }

    /// Folds one event received at `receivedAt`; events outside ``period`` are ignored.
    public mutating func add(_ event: UsageEvent, receivedAt: Timestamp) {
        let time = event.time ?? receivedAt
        guard period.contains(time) else { return }
        eventsInPeriod += 1
        guard let meter = meters[event.meter], meter.matches(event) else { return }
        let group = meter.groupBy.map { GroupValue(property: $0, value: event.property($0)?.text ?? "") }
        UsageKey.make(customer: event.customer, periodStart: period.start, meter: meter.code, group: group,
                      hashKeys: hashKeys, into: &keyBuffer)
        let position = positions[keyBuffer]
        var state: AggregateState
        if let position {
            state = entries[position].state
        } else {
            state = AggregateState()
            state.group = group
        }
        do {
            try state.fold(event.value, time: time.nanosecondsSinceEpoch, aggregation: meter.aggregation)
        } catch {
            overflowingEvents += 1
            return
        }
        let index: Int
        if let position {
            index = position
        } else {
            index = entries.count
            positions[keyBuffer] = index
            entries.append(Entry(key: keyBuffer, customer: event.customer, meter: meter.code, state: state))
        }
        if meter.aggregation == .uniqueCount, let property = meter.property, let value = event.property(property),
           entries[index].uniqueValues.insert(value.text).inserted {
            state.countNewValue()
        }
        entries[index].state = state
        eventsCounted += 1
    }

    /// The aggregates of every customer with counted events; each customer's records are in the
    /// store's order (the usage key's: meter, then group), as `TallyStore.usage(customer:periodStart:)` gives them.
    public func usageByCustomer() -> [String: [UsageRecord]] {
        var result: [String: [UsageRecord]] = [:]
        for entry in entries.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            result[entry.customer, default: []].append(Self.record(entry))
        }
        return result
    }

    /// The aggregates of `customer`, in the store's order; empty when it has no counted events.
    public func usage(customer: String) -> [UsageRecord] {
        entries.filter { $0.customer == customer }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
            .map(Self.record)
    }

    private static func record(_ entry: Entry) -> UsageRecord {
        UsageRecord(meter: entry.meter, group: entry.state.group, quantity: entry.state.quantity, eventCount: entry.state.eventCount)
    }
}
