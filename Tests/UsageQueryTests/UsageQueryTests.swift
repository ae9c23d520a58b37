import Foundation
import Logging
import Metering
import Storage
import Testing
import UsageQuery

/// Usage over time: windows computed from the stored buckets equal windows computed from the raw
/// events, for every aggregation, window length and time zone (DST and +05:30 included), with the
/// log unfolded, mid-fold and folded.
@Suite("Usage over time")
struct UsageQueryTests {
    static let meters = [
        Meter(code: "calls", aggregation: .count),
        Meter(code: "tokens", aggregation: .sum, groupBy: ["model", "region"]),
        Meter(code: "peak", aggregation: .max),
        Meter(code: "low", aggregation: .min),
        Meter(code: "last", aggregation: .latest),
        Meter(code: "users", aggregation: .uniqueCount, property: "user"),
    ]
    static let eager = UsageFoldPolicy(minimumLoggedEntries: 16, maximumRecords: 6, minimumSliceSize: 5, retainedAggregates: 40)

    struct Sent {
        var customer: String
        var meter: String
        var value: ExactDecimal
        var time: Int64
        var properties: [String: String]
    }

    final class Fixture {
        let path: String
        let store: TallyStore
        let writer: StoreWriter
        var sent: [Sent] = []

        init(policy: UsageFoldPolicy = UsageQueryTests.eager) throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-query-\(UUID().uuidString.prefix(8))").path
            store = try TallyStore(path: path, configuration: .init(meters: UsageQueryTests.meters, billingPeriod: .monthly, initialMapSize: 1 << 24),
                                   access: .readWrite, logger: Logger(label: "test"))
            writer = try StoreWriter(store: store, usageFolding: policy)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        func send(_ events: [Sent]) throws {
            let pending = events.enumerated().map { index, event in
                PendingEvent(event: UsageEvent(id: "e\(sent.count + index)", customer: event.customer, meter: event.meter, value: event.value,
                                               time: Timestamp(nanosecondsSinceEpoch: event.time),
                                               properties: event.properties.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: .string($0.value)) }),
                             receivedAt: Timestamp.now())
            }
            #expect(try writer.record(pending).allSatisfy { $0 == .accepted })
            sent += events
        }
    }

    static func time(_ text: String) -> Int64 { Timestamp.parseRFC3339(text)!.nanosecondsSinceEpoch }

    /// Random events from 2026-03-27 to 2026-04-03 (a month edge, Europe's spring DST change) and
    /// around 2026-10-24…11-02 (Europe's and America's autumn changes), at distinct seconds.
    static func randomEvents(count: Int, customers: Int, seed: UInt64) -> [Sent] {
        var random = SplitMix(seed: seed)
        let spans = [(time("2026-03-27T00:00:00Z"), Int64(7 * 86_400)), (time("2026-10-24T00:00:00Z"), Int64(9 * 86_400))]
        var usedSeconds = Set<Int64>()
        return (0..<count).map { _ in
            let span = spans[Int(random.next() % 2)]
            var second = Int64(random.next() % UInt64(span.1))
            while !usedSeconds.insert(second + span.0 / 1_000_000_000).inserted { second = (second + 1) % span.1 }
            let meter = meters[Int(random.next() % UInt64(meters.count))]
            var properties: [String: String] = [:]
            if meter.code == "tokens" {
                properties["model"] = ["small", "large"][Int(random.next() % 2)]
                properties["region"] = ["eu", "us"][Int(random.next() % 2)]
            }
            if meter.code == "users" { properties["user"] = "u\(random.next() % 6)" }
            return Sent(customer: "c\(random.next() % UInt64(customers))", meter: meter.code,
                        value: ExactDecimal(Int(random.next() % 200) - 50),
                        time: span.0 + second * 1_000_000_000, properties: properties)
        }
    }

    /// The expected quantity of `meter` over `[from, to)`, straight from the events.
    static func expected(_ events: [Sent], meter: Meter, from: Int64, to: Int64) -> ExactDecimal {
        let inside = events.filter { $0.meter == meter.code && $0.time >= from && $0.time < to }
        guard !inside.isEmpty else { return 0 }
        switch meter.aggregation {
        case .count: return ExactDecimal(inside.count)
        case .sum: return inside.reduce(ExactDecimal(0)) { try! $0.adding($1.value) }
        case .max: return inside.map(\.value).max()!
        case .min: return inside.map(\.value).min()!
        case .latest: return inside.max { $0.time < $1.time }!.value
        case .uniqueCount: return ExactDecimal(Set(inside.compactMap { $0.properties["user"] }).count)
        }
    }

    /// Checks every window and total of `result` against the events.
    static func check(_ result: UsageQueryResult, against events: [Sent], groupBy: [String] = [],
                      sourceLocation: SourceLocation = #_sourceLocation) {
        let edges = result.plan.edges
        for series in result.series {
            let meter = meters.first { $0.code == series.meter }!
            let mine = events.filter { event in
                event.customer == series.customer
                    && series.group.allSatisfy { event.properties[$0.property, default: ""] == $0.value }
            }
            #expect(series.quantities.count == edges.count - 1, sourceLocation: sourceLocation)
            for (index, quantity) in series.quantities.enumerated() {
                #expect(quantity == expected(mine, meter: meter, from: edges[index], to: edges[index + 1]),
                        "\(series.meter) \(series.customer) \(series.group) window \(index)", sourceLocation: sourceLocation)
            }
            #expect(series.total == expected(mine, meter: meter, from: edges.first!, to: edges.last!),
                    "\(series.meter) \(series.customer) total", sourceLocation: sourceLocation)
        }
    }

    static func plan(_ from: String, _ to: String, _ window: UsageWindow, _ zone: String = "UTC") throws -> WindowPlan {
        let timeZone = try WindowPlan.timeZone(zone)
        return try WindowPlan(from: try WindowPlan.parseTime(from, name: "from", in: timeZone),
                              to: try WindowPlan.parseTime(to, name: "to", in: timeZone), window: window, timeZone: timeZone)
    }

    static let plans: [(String, String, UsageWindow, String)] = [
        ("2026-03-27", "2026-04-04", .hour, "UTC"),
        ("2026-03-27", "2026-04-04", .day, "UTC"),
        ("2026-03-01", "2026-12-01", .month, "UTC"),
        ("2026-03-28", "2026-04-03", .day, "Europe/Berlin"),
        ("2026-03-28", "2026-03-31", .hour, "Europe/Berlin"),
        ("2026-10-24", "2026-11-03", .day, "America/New_York"),
        ("2026-10-24", "2026-10-27", .day, "Europe/Berlin"),
        ("2026-03-01", "2026-12-01", .month, "Asia/Kolkata"),
        ("2026-03-27", "2026-04-04", .day, "Asia/Kolkata"),
    ]

    @Test("every window and total equals the events', for every aggregation, zone and window, as commits log and fold")
    func windowsEqualEvents() throws {
        let fixture = try Fixture()
        let events = Self.randomEvents(count: 1_200, customers: 3, seed: 7)
        for chunk in stride(from: 0, to: events.count, by: 40) {
            try fixture.send(Array(events[chunk..<min(events.count, chunk + 40)]))
            if chunk % 400 == 0 {
                // Mid-stream: some states only in the log, some folded.
                let result = try UsageQuery(plan: try Self.plan("2026-03-27", "2026-04-04", .day), meters: Self.meters, groupBy: [])
                    .run(store: fixture.store, customers: .only(["c0", "c1", "c2"]))
                Self.check(result, against: fixture.sent)
            }
        }
        for folded in [false, true] {
            if folded { try fixture.writer.foldLoggedUsage() }
            for (from, to, window, zone) in Self.plans {
                let result = try UsageQuery(plan: try Self.plan(from, to, window, zone), meters: Self.meters, groupBy: [])
                    .run(store: fixture.store, customers: .only(["c0", "c1", "c2", "nobody"]))
                #expect(result.series.count == 4 * Self.meters.count, "one series per customer and meter, \(zone) \(window)")
                Self.check(result, against: fixture.sent)
            }
        }
    }

    @Test("group_by splits a meter by one or both of its properties; a meter filter queries one meter")
    func groupBy() throws {
        let fixture = try Fixture()
        try fixture.send(Self.randomEvents(count: 600, customers: 2, seed: 11))
        let tokens = [Self.meters[1]]
        for groupBy in [["model"], ["region"], ["model", "region"]] {
            let result = try UsageQuery(plan: try Self.plan("2026-03-27", "2026-04-04", .day), meters: tokens, groupBy: groupBy)
                .run(store: fixture.store, customers: .only(["c0", "c1"]))
            #expect(result.series.allSatisfy { $0.meter == "tokens" && $0.group.map(\.property) == groupBy })
            let expectedSeries = groupBy.count == 2 ? 8 : 4
            #expect(result.series.count == expectedSeries)
            Self.check(result, against: fixture.sent)
        }
        #expect(throws: UsageQueryError.self) {
            try UsageQuery(plan: try Self.plan("2026-03-27", "2026-04-04", .day), meters: [Self.meters[0]], groupBy: ["model"])
        }
    }

    @Test("dense events: many per series and quarter-hour, across quarter and day edges, small commits, evictions: windows equal the events")
    func denseQuarterHours() throws {
        // Each period entry links its current buckets: this covers following a link (same
        // quarter-hour), replacing it (the next quarter or day) and a link to an evicted entry.
        let fixture = try Fixture()
        var random = SplitMix(seed: 11)
        var events: [Sent] = []
        for (start, seconds) in [(Self.time("2026-03-30T09:50:00Z"), 1_800), (Self.time("2026-03-30T23:50:00Z"), 1_200)] {
            for second in 0..<seconds where random.next() % 3 != 0 {
                let meter = Self.meters[Int(random.next() % 5)]  // no unique_count: it never follows links
                var properties: [String: String] = [:]
                if meter.code == "tokens" {
                    properties["model"] = ["small", "large"][Int(random.next() % 2)]
                    properties["region"] = "eu"
                }
                events.append(Sent(customer: "c\(random.next() % 3)", meter: meter.code, value: ExactDecimal(Int(random.next() % 90) - 20),
                                   time: start + Int64(second) * 1_000_000_000, properties: properties))
            }
        }
        for chunk in stride(from: 0, to: events.count, by: 7) {
            try fixture.send(Array(events[chunk..<min(events.count, chunk + 7)]))
        }
        for folded in [false, true] {
            if folded { try fixture.writer.foldLoggedUsage() }
            for window in [UsageWindow.hour, .day] {
                let result = try UsageQuery(plan: try Self.plan("2026-03-30", "2026-04-01", window), meters: Self.meters, groupBy: [])
                    .run(store: fixture.store, customers: .only(["c0", "c1", "c2"]))
                Self.check(result, against: fixture.sent)
            }
        }
    }

    @Test("a store configured without buckets (the benchmark's switch) counts the period and no windows")
    func withoutBuckets() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-query-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var configuration = TallyStore.Configuration(meters: Self.meters, billingPeriod: .monthly, initialMapSize: 1 << 24)
        configuration.writesUsageBuckets = false
        let store = try TallyStore(path: path, configuration: configuration, access: .readWrite, logger: Logger(label: "test"))
        let writer = try StoreWriter(store: store, usageFolding: Self.eager)
        let pending = (0..<30).map { index in
            PendingEvent(event: UsageEvent(id: "e\(index)", customer: "c0", meter: "calls", value: 1,
                                           time: Timestamp(nanosecondsSinceEpoch: Self.time("2026-03-30T10:00:00Z") + Int64(index) * 1_000_000_000)),
                         receivedAt: Timestamp.now())
        }
        #expect(try writer.record(pending).allSatisfy { $0 == .accepted })
        let march = BillingPeriod.monthly.interval(containing: Timestamp(nanosecondsSinceEpoch: Self.time("2026-03-30T10:00:00Z")))
        #expect(try store.usage(customer: "c0", periodStart: march.start).first { $0.meter == "calls" }?.quantity == 30)
        let result = try UsageQuery(plan: try Self.plan("2026-03-30", "2026-03-31", .day), meters: [Self.meters[0]], groupBy: [])
            .run(store: store, customers: .only(["c0"]))
        #expect(result.series.first?.total == 0)
    }

    @Test("sum and count over the windows of a period equal the period aggregate")
    func windowsSumToThePeriod() throws {
        let fixture = try Fixture()
        try fixture.send(Self.randomEvents(count: 800, customers: 2, seed: 3))
        let april = BillingPeriod.monthly.interval(containing: Timestamp(nanosecondsSinceEpoch: Self.time("2026-04-01T12:00:00Z")))
        let result = try UsageQuery(plan: try Self.plan("2026-04-01", "2026-05-01", .hour), meters: [Self.meters[0], Self.meters[1]], groupBy: [])
            .run(store: fixture.store, customers: .only(["c0", "c1"]))
        for customer in ["c0", "c1"] {
            let period = try fixture.store.usage(customer: customer, periodStart: april.start)
            for meter in ["calls", "tokens"] {
                let series = result.series.first { $0.customer == customer && $0.meter == meter }!
                let sum = series.quantities.reduce(ExactDecimal(0)) { try! $0.adding($1) }
                let stored = period.filter { $0.meter == meter }.reduce(ExactDecimal(0)) { try! $0.adding($1.quantity) }
                #expect(sum == stored, "\(customer) \(meter)")
                #expect(series.total == stored)
            }
        }
    }

    @Test("DST: a Europe/Berlin day is 23 hours in March and 25 in October, a New York day 23 and 25; Kolkata months start at 18:30Z")
    func timeZoneEdges() throws {
        func lengths(_ plan: WindowPlan) -> [Int64] {
            zip(plan.edges, plan.edges.dropFirst()).map { ($1 - $0) / Timestamp.nanosecondsPerHour }
        }
        #expect(lengths(try Self.plan("2026-03-28", "2026-03-31", .day, "Europe/Berlin")) == [24, 23, 24])
        #expect(lengths(try Self.plan("2026-10-24", "2026-10-27", .day, "Europe/Berlin")) == [24, 25, 24])
        #expect(lengths(try Self.plan("2026-03-07", "2026-03-10", .day, "America/New_York")) == [24, 23, 24])
        #expect(lengths(try Self.plan("2026-10-31", "2026-11-03", .day, "America/New_York")) == [24, 25, 24])
        let kolkata = try Self.plan("2026-03-01", "2026-05-01", .month, "Asia/Kolkata")
        #expect(kolkata.edges.map { WindowPlan.format(Timestamp(nanosecondsSinceEpoch: $0), in: TimeZone(identifier: "UTC")!) }
            == ["2026-02-28T18:30:00Z", "2026-03-31T18:30:00Z", "2026-04-30T18:30:00Z"])
        #expect(WindowPlan.format(Timestamp(nanosecondsSinceEpoch: kolkata.edges[0]), in: kolkata.timeZone) == "2026-03-01T00:00:00+05:30")
        // Events either side of Kolkata's month edge land in their own month.
        let fixture = try Fixture()
        try fixture.send([
            Sent(customer: "k", meter: "calls", value: 1, time: Self.time("2026-03-31T18:29:59Z"), properties: [:]),
            Sent(customer: "k", meter: "calls", value: 1, time: Self.time("2026-03-31T18:30:00Z"), properties: [:]),
            Sent(customer: "k", meter: "calls", value: 1, time: Self.time("2026-03-31T18:45:00Z"), properties: [:]),
        ])
        let result = try UsageQuery(plan: kolkata, meters: [Self.meters[0]], groupBy: []).run(store: fixture.store, customers: .only(["k"]))
        #expect(result.series[0].quantities == [1, 2])
    }

    @Test("errors: unaligned from, to before from, unknown meter, unknown zone, too many windows, not a time, not a window")
    func errors() throws {
        func failure(_ body: () throws -> Void) -> UsageQueryError? {
            do {
                try body()
                return nil
            } catch {
                return error as? UsageQueryError
            }
        }
        let unaligned = failure { _ = try Self.plan("2026-03-05T10:20:00Z", "2026-03-06", .day) }
        #expect(unaligned?.code == .unalignedTime)
        #expect(unaligned?.message == "from 2026-03-05T10:20:00Z is not on a day edge in UTC; the nearest edges are 2026-03-05T00:00:00Z and 2026-03-06T00:00:00Z")
        let berlin = failure { _ = try Self.plan("2026-03-05T00:00:00Z", "2026-03-07T00:00:00Z", .day, "Europe/Berlin") }
        #expect(berlin?.message == "from 2026-03-05T01:00:00+01:00 is not on a day edge in Europe/Berlin; the nearest edges are 2026-03-05T00:00:00+01:00 and 2026-03-06T00:00:00+01:00")
        let backwards = failure { _ = try Self.plan("2026-03-06", "2026-03-05", .day) }
        #expect(backwards?.code == .invalidRange)
        #expect(backwards?.message == "to (2026-03-05T00:00:00Z) must be after from (2026-03-06T00:00:00Z); to is exclusive")
        #expect(failure { _ = try Self.plan("2026-03-06", "2026-03-06", .day) }?.code == .invalidRange)
        let meter = failure { _ = try UsageQuery.meter("nope", in: Self.meters) }
        #expect(meter?.code == .unknownMeter)
        #expect(meter?.message == "no meter 'nope' in the config; use one of: calls, tokens, peak, low, last, users")
        let zone = failure { _ = try WindowPlan.timeZone("Mars/Olympus") }
        #expect(zone?.code == .unknownTimeZone)
        #expect(zone?.message.hasPrefix("time zone 'Mars/Olympus' is not an IANA time zone") == true)
        let many = failure { _ = try Self.plan("2025-01-01", "2026-03-01", .hour) }
        #expect(many?.code == .tooManyWindows)
        #expect(many?.message == "the range holds 10176 hour windows; a query may have at most 10000: narrow the range or use a longer window")
        #expect((try? Self.plan("2025-01-01", "2026-02-21T16:00:00Z", .hour))?.count == 10_000)
        #expect(failure { _ = try Self.plan("yesterday", "2026-03-06", .day) }?.code == .invalidTime)
        #expect(failure { _ = try Self.plan("2026-02-30", "2026-03-06", .day) }?.code == .invalidTime)
        #expect(failure { _ = try UsageWindow.parse("week") }?.message == "window 'week' is not a window: use hour, day or month")
    }

    @Test("across customers: pages in key order return every customer with usage once, and only those")
    func paging() throws {
        let fixture = try Fixture()
        var events: [Sent] = []
        for customer in 0..<23 where customer % 4 != 3 {
            events.append(Sent(customer: "cus_\(customer)", meter: "calls", value: 1, time: Self.time("2026-03-28T10:00:00Z") + Int64(customer), properties: [:]))
        }
        events.append(Sent(customer: "only_tokens", meter: "tokens", value: 5, time: Self.time("2026-03-28T10:00:00Z"), properties: ["model": "a", "region": "eu"]))
        try fixture.send(events)
        let query = try UsageQuery(plan: try Self.plan("2026-03-28", "2026-03-29", .hour), meters: [Self.meters[0]], groupBy: [])
        for folded in [false, true] {
            if folded { try fixture.writer.foldLoggedUsage() }
            var seen: [String] = []
            var cursor: [UInt8]?
            var pages = 0
            repeat {
                let page = try query.run(store: fixture.store, customers: .all(after: cursor, limit: 5))
                seen += page.series.map(\.customer)
                #expect(page.series.count <= 5)
                cursor = page.nextCursor.flatMap(UsageQuery.decodeCursor)
                pages += 1
                Self.check(page, against: fixture.sent)
            } while cursor != nil && pages < 20
            let expected = events.filter { $0.meter == "calls" }.map(\.customer)
            #expect(seen.sorted() == expected.sorted(), "folded: \(folded)")
            #expect(Set(seen).count == seen.count)
            #expect(pages == 4)
        }
    }
}

/// A small seeded generator, so a failing case can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
