import Foundation
import Metering
import Testing

@testable import Storage

@Suite("Event aggregator")
struct EventAggregatorTests {
    /// Meters of every aggregation, codes of different lengths (the key orders "z" before "aa"), a
    /// filter, and a two-property group_by.
    static let meters = [
        Meter(code: "calls", aggregation: .count),
        Meter(code: "tokens", aggregation: .sum, groupBy: ["model", "region"]),
        Meter(code: "z", aggregation: .max),
        Meter(code: "aa", aggregation: .min),
        Meter(code: "seats", aggregation: .latest),
        Meter(code: "users", aggregation: .uniqueCount, property: "user"),
        Meter(code: "paid", aggregation: .sum, filter: ["billable": "true"]),
    ]

    static let period = BillingPeriod.monthly.interval(containing: now)

    static func text(_ key: String, _ value: String) -> UsageEvent.Property { .init(key: key, value: .string(value)) }

    /// Events over three commits for three customers: duplicates, unknown meters, filtered-out
    /// events, events of the previous period, events without a time, long group values.
    static func commits() -> [[PendingEvent]] {
        let inPeriod = period.start.adding(nanoseconds: 3_600_000_000_000)
        let before = period.start.adding(nanoseconds: -1)
        var commits: [[PendingEvent]] = []
        for commit in 0..<3 {
            var events: [PendingEvent] = []
            for customer in ["cus_b", "cus_a", "c"] {
                let id = "\(commit)-\(customer)"
                events.append(pending("calls-\(id)", customer: customer))
                events.append(pending("calls-\(id)", customer: customer))                        // a duplicate
                events.append(pending("old-\(id)", customer: customer, time: before))             // the previous period
                events.append(pending("nope-\(id)", customer: customer, meter: "nope"))          // no such meter
                events.append(pending("tok-\(id)", customer: customer, meter: "tokens", value: ExactDecimal("1.25")!,
                                      properties: [text("model", commit == 1 ? "large" : "small"), text("region", "eu")]))
                events.append(pending("tok2-\(id)", customer: customer, meter: "tokens", value: 2,
                                      properties: [text("model", "small")]))                       // region missing: ""
                events.append(pending("long-\(id)", customer: customer, meter: "tokens", value: 1,
                                      properties: [text("model", String(repeating: "m\(commit)", count: 300))]))
                events.append(pending("z-\(id)", customer: customer, meter: "z", value: ExactDecimal(commit * 7 % 5)))
                events.append(pending("aa-\(id)", customer: customer, meter: "aa", value: ExactDecimal(10 - commit)))
                events.append(pending("seats-\(id)", customer: customer, meter: "seats", value: ExactDecimal(commit + 3),
                                      time: inPeriod.adding(nanoseconds: Int64(2 - commit))))  // later commits, earlier times
                for (index, user) in ["u\(commit)", "u1", "u\(commit * 2)"].enumerated() {
                    events.append(pending("users-\(id)-\(index)", customer: customer, meter: "users", properties: [text("user", user)]))
                }
                events.append(pending("anon-\(id)", customer: customer, meter: "users"))           // no user: counted, not unique
                events.append(pending("paid-\(id)", customer: customer, meter: "paid", value: 5,
                                      properties: [.init(key: "billable", value: .bool(true))]))
                events.append(pending("free-\(id)", customer: customer, meter: "paid", value: 6,
                                      properties: [.init(key: "billable", value: .bool(false))]))
            }
            commits.append(events)
        }
        return commits
    }

    static func storedUsage(_ store: TallyStore) throws -> [String: [UsageRecord]] {
        var usage: [String: [UsageRecord]] = [:]
        try store.forEachUsage(periodStart: period.start) { usage[$0, default: []].append($1) }
        return usage
    }

    static func aggregate(_ store: TallyStore, meters: [Meter]) throws -> EventAggregator {
        var aggregator = EventAggregator(meters: meters, period: period, store: store)
        try store.forEachEvent { aggregator.add($0); return true }
        return aggregator
    }

    @Test("under the store's meters, re-aggregating the events gives the stored aggregates, in the store's order")
    func sameAsStore() throws {
        let temporary = try TemporaryStore(meters: Self.meters)
        for commit in Self.commits() { _ = try temporary.writer.record(commit) }
        let stored = try Self.storedUsage(temporary.store)
        let aggregator = try Self.aggregate(temporary.store, meters: Self.meters)
        let usage = aggregator.usageByCustomer()
        #expect(usage == stored)
        #expect(Set(usage.keys) == ["cus_a", "cus_b", "c"])
        for customer in usage.keys {
            #expect(aggregator.usage(customer: customer) == (try temporary.store.usage(customer: customer, periodStart: Self.period.start)))
        }
        #expect(aggregator.usage(customer: "nobody").isEmpty)

        // The values the semantics imply, for one customer.
        let records = try #require(usage["cus_a"])
        let meters = records.map(\.meter)
        #expect(meters.firstIndex(of: "z")! < meters.firstIndex(of: "aa")!)   // shorter codes first, as in the key
        func quantity(_ meter: String, _ group: [GroupValue] = []) -> ExactDecimal? {
            records.first { $0.meter == meter && $0.group == group }?.quantity
        }
        #expect(quantity("calls") == 3)
        #expect(quantity("tokens", [.init(property: "model", value: "small"), .init(property: "region", value: "eu")]) == ExactDecimal("2.5"))
        #expect(quantity("tokens", [.init(property: "model", value: "small"), .init(property: "region", value: "")]) == 6)
        #expect(quantity("z") == 4)
        #expect(quantity("aa") == 8)
        #expect(quantity("seats") == 3)            // the value at the latest time, which arrived first
        #expect(quantity("users") == 4)            // u0, u1, u2, u4
        #expect(records.first { $0.meter == "users" }?.eventCount == 12)
        #expect(quantity("paid") == 15)
        #expect(records.filter { $0.meter == "tokens" }.count == 6)  // 2 short groups + large + 3 long (hashed) groups
        #expect(aggregator.eventsInPeriod == 3 * 3 * 14)   // per commit and customer: 15 stored, 1 in the previous period
        #expect(aggregator.eventsCounted == 3 * 3 * 12)    // less the unknown meter and the filtered-out event
        #expect(aggregator.overflowingEvents == 0)
    }

    @Test("a corrected meter: another filter and group_by change the quantities; another period counts its own events")
    func correctedMeter() throws {
        let temporary = try TemporaryStore(meters: Self.meters)
        for commit in Self.commits() { _ = try temporary.writer.record(commit) }
        var corrected = Self.meters
        corrected[1] = Meter(code: "tokens", aggregation: .sum)                 // no group_by
        corrected[6] = Meter(code: "paid", aggregation: .sum)                   // no filter
        corrected.append(Meter(code: "nope", aggregation: .count))              // a meter that was missing
        let usage = try Self.aggregate(temporary.store, meters: corrected).usageByCustomer()
        let records = try #require(usage["c"])
        #expect(records.first { $0.meter == "tokens" }?.group == [])
        #expect(records.first { $0.meter == "tokens" }?.quantity == ExactDecimal("12.75"))   // 3 × (1.25 + 2 + 1)
        #expect(records.first { $0.meter == "paid" }?.quantity == 33)                      // 3 × (5 + 6)
        #expect(records.first { $0.meter == "nope" }?.quantity == 3)

        let previous = BillingPeriod.monthly.interval(containing: Self.period.start.adding(nanoseconds: -1))
        var older = EventAggregator(meters: Self.meters, period: previous)
        try temporary.store.forEachEvent { older.add($0); return true }
        #expect(older.usageByCustomer().mapValues { $0.map(\.meter) } == ["c": ["calls"], "cus_a": ["calls"], "cus_b": ["calls"]])
        #expect(older.usage(customer: "c").first?.quantity == 3)
    }

    @Test("an event that would overflow its aggregate is not counted, as ingest would have rejected it")
    func overflow() throws {
        let huge = ExactDecimal("100000000000000000000000000000000000000")!   // 10^38: twice does not fit
        var aggregator = EventAggregator(meters: [Meter(code: "big", aggregation: .sum)], period: Self.period)
        for id in ["a", "b", "c"] {
            aggregator.add(UsageEvent(id: id, customer: "c", meter: "big", value: id == "c" ? 1 : huge), receivedAt: now)
        }
        #expect(aggregator.overflowingEvents == 1)
        #expect(aggregator.eventsCounted == 2)
        #expect(aggregator.usage(customer: "c") == [UsageRecord(meter: "big", group: [], quantity: try huge.adding(1), eventCount: 2)])
    }
}
