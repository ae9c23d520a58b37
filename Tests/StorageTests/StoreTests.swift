import Foundation
import LMDB
import Logging
import Metering
import Testing

@testable import Storage

/// A temporary store, removed when the value goes away.
final class TemporaryStore {
    let path: String
    let store: TallyStore
    let writer: StoreWriter

    init(meters: [Meter] = TemporaryStore.meters, mapSize: Int = 1 << 20) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-store-\(UUID().uuidString.prefix(8))").path
        store = try TallyStore(path: path, configuration: .init(meters: meters, billingPeriod: .monthly, initialMapSize: mapSize),
                               access: .readWrite, logger: Logger(label: "test"))
        writer = try StoreWriter(store: store)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    static let meters = [
        Meter(code: "calls", aggregation: .count),
        Meter(code: "tokens", aggregation: .sum, groupBy: ["model"]),
        Meter(code: "peak", aggregation: .max),
        Meter(code: "users", aggregation: .uniqueCount, property: "user"),
        Meter(code: "paid", aggregation: .sum, filter: ["billable": "true"]),
    ]
}

let now = Timestamp.now()

func pending(_ id: String, customer: String = "c1", meter: String = "calls", value: ExactDecimal = 1,
             time: Timestamp? = nil, properties: [UsageEvent.Property] = []) -> PendingEvent {
    PendingEvent(event: UsageEvent(id: id, customer: customer, meter: meter, value: value, time: time, properties: properties),
                 receivedAt: now)
}

@Suite("Store")
struct StoreTests {
    @Test("accepted, duplicate and conflict, within one commit and across commits")
    func outcomes() throws {
        let temporary = try TemporaryStore()
        let first = try temporary.writer.record([
            pending("a"), pending("a"), pending("a", value: 2), pending("a", customer: "c2"),
        ])
        #expect(first[0] == .accepted)
        #expect(first[1] == .duplicate)
        guard case .rejected(let conflict) = first[2] else { Issue.record("expected a conflict"); return }
        #expect(conflict.code == .idempotencyConflict)
        #expect(first[3] == .accepted)
        let second = try temporary.writer.record([pending("a"), pending("a", value: 3), pending("b")])
        #expect(second[0] == .duplicate)
        guard case .rejected(let again) = second[1] else { Issue.record("expected a conflict"); return }
        #expect(again.code == .idempotencyConflict)
        #expect(second[2] == .accepted)
        let period = BillingPeriod.monthly.interval(containing: now)
        let usage = try temporary.store.usage(customer: "c1", periodStart: period.start)
        #expect(usage.first { $0.meter == "calls" }?.quantity == 2)
        #expect(try temporary.store.statistics().events == 3)
        #expect(try temporary.store.statistics().identities == 3)
    }

    @Test("identities survive reopening: the index is rebuilt from LMDB")
    func reopen() throws {
        let path: String
        do {
            let temporary = try TemporaryStore()
            path = temporary.path
            _ = try temporary.writer.record((0..<1000).map { pending("e\($0)") })
            // Keep the directory: copy it before the temporary store removes it.
            try FileManager.default.copyItem(atPath: path, toPath: path + "-copy")
        }
        defer { try? FileManager.default.removeItem(atPath: path + "-copy") }
        let store = try TallyStore(path: path + "-copy", configuration: .init(meters: TemporaryStore.meters, billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "test"))
        let writer = try StoreWriter(store: store)
        #expect(writer.identityCount == 1000)
        let outcomes = try writer.record((0..<1000).map { pending("e\($0)") } + [pending("new")])
        #expect(outcomes.dropLast().allSatisfy { $0 == .duplicate })
        #expect(outcomes.last == .accepted)
    }

    @Test("aggregations: exact sums by group, max, unique_count, filter")
    func aggregations() throws {
        let temporary = try TemporaryStore()
        var events: [PendingEvent] = []
        for index in 0..<10 {
            events.append(pending("t\(index)", meter: "tokens", value: ExactDecimal("0.1")!,
                                  properties: [.init(key: "model", value: .string("small"))]))
        }
        events.append(pending("t-large", meter: "tokens", value: 7, properties: [.init(key: "model", value: .string("large"))]))
        events.append(pending("t-none", meter: "tokens", value: 2))
        events += [pending("p1", meter: "peak", value: 3), pending("p2", meter: "peak", value: ExactDecimal("9.75")!), pending("p3", meter: "peak", value: 4)]
        for (index, user) in ["u1", "u2", "u1"].enumerated() {
            events.append(pending("u\(index)", meter: "users", properties: [.init(key: "user", value: .string(user))]))
        }
        events.append(pending("u-none", meter: "users"))
        events.append(pending("paid1", meter: "paid", value: 5, properties: [.init(key: "billable", value: .bool(true))]))
        events.append(pending("paid2", meter: "paid", value: 6, properties: [.init(key: "billable", value: .bool(false))]))
        events.append(pending("paid3", meter: "paid", value: 7))
        #expect(try temporary.writer.record(events).allSatisfy { $0 == .accepted })
        // A second commit folds into the stored aggregates.
        _ = try temporary.writer.record([
            pending("u9", meter: "users", properties: [.init(key: "user", value: .string("u3"))]),
            pending("u10", meter: "users", properties: [.init(key: "user", value: .string("u2"))]),
            pending("t99", meter: "tokens", value: ExactDecimal("0.5")!, properties: [.init(key: "model", value: .string("small"))]),
        ])
        let usage = try temporary.store.usage(customer: "c1", periodStart: BillingPeriod.monthly.interval(containing: now).start)
        func quantity(_ meter: String, _ group: [GroupValue] = []) -> ExactDecimal? {
            usage.first { $0.meter == meter && $0.group == group }?.quantity
        }
        #expect(quantity("tokens", [GroupValue(property: "model", value: "small")]) == ExactDecimal("1.5"))
        #expect(quantity("tokens", [GroupValue(property: "model", value: "large")]) == 7)
        #expect(quantity("tokens", [GroupValue(property: "model", value: "")]) == 2)
        #expect(quantity("peak") == ExactDecimal("9.75"))
        #expect(quantity("users") == 3)
        #expect(quantity("paid") == 5)
        #expect(usage.first { $0.meter == "paid" }?.eventCount == 1)
    }

    @Test("the store grows its map instead of failing")
    func mapGrowth() throws {
        let temporary = try TemporaryStore(mapSize: 256 * 1024)
        for round in 0..<20 {
            let outcomes = try temporary.writer.record((0..<2000).map {
                pending("r\(round)-\($0)", customer: "customer-\($0 % 50)", meter: "tokens", value: ExactDecimal($0),
                        properties: [.init(key: "model", value: .string(String(repeating: "m", count: 40)))])
            })
            #expect(outcomes.allSatisfy { $0 == .accepted })
        }
        #expect(try temporary.store.statistics().events == 40_000)
        #expect(try temporary.store.statistics().mapSize > 256 * 1024)
    }

    @Test("a second writer on the same store is refused; readers are not")
    func writerLock() throws {
        let temporary = try TemporaryStore()
        #expect(throws: StoreError.self) {
            _ = try TallyStore(path: temporary.path, configuration: .init(meters: [], billingPeriod: .monthly),
                               access: .readWrite, logger: Logger(label: "test"))
        }
        let reader = try TallyStore(path: temporary.path, configuration: .init(meters: [], billingPeriod: .monthly),
                                    access: .readOnly, logger: Logger(label: "test"))
        #expect(try reader.statistics().events == 0)
    }

    @Test("opening a missing store read-only says what to do")
    func missingStore() {
        do {
            _ = try TallyStore(path: "/nonexistent/tally-store", configuration: .init(meters: [], billingPeriod: .monthly),
                               access: .readOnly, logger: Logger(label: "test"))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.message.contains("tally serve"))
        }
    }
}

@Suite("Store encodings")
struct EncodingTests {
    @Test("events round-trip through the binary format; content excludes identity and arrival")
    func eventCodec() throws {
        let event = UsageEvent(id: "evt_é", customer: "cus_42", meter: "tokens", value: ExactDecimal("12.345")!,
                               time: Timestamp(nanosecondsSinceEpoch: 1_700_000_000_123_456_789),
                               properties: [.init(key: "a", value: .bool(true)), .init(key: "b", value: .number(ExactDecimal("-1.5")!)),
                                            .init(key: "c", value: .string(String(repeating: "x", count: 1000)))])
        var buffer: [UInt8] = []
        let contentStart = EventCodec.encode(event, receivedAt: now, into: &buffer)
        let decoded = try #require(buffer.withUnsafeBytes { EventCodec.decode($0, sequence: 7) })
        #expect(decoded.event == event)
        #expect(decoded.receivedAt == now)
        #expect(decoded.sequence == 7)
        var other = event
        other.id = "another"
        other.customer = "another"
        var otherBuffer: [UInt8] = []
        let otherStart = EventCodec.encode(other, receivedAt: Timestamp(nanosecondsSinceEpoch: 5), into: &otherBuffer)
        #expect(Array(buffer[contentStart...]) == Array(otherBuffer[otherStart...]))
        // Damaged bytes are refused, not misread.
        #expect(buffer.dropLast().withUnsafeBytes { EventCodec.decode(UnsafeRawBufferPointer(rebasing: $0[...]), sequence: 1) } == nil)
        #expect([UInt8]([9, 9, 9]).withUnsafeBytes { EventCodec.decode($0, sequence: 1) } == nil)
    }

    @Test("aggregate states round-trip and fold every aggregation")
    func aggregateState() throws {
        var state = AggregateState()
        state.group = [GroupValue(property: "region", value: "eu")]
        try state.fold(5, time: 10, aggregation: .sum)
        try state.fold(ExactDecimal("0.25")!, time: 5, aggregation: .sum)
        #expect(state.quantity == ExactDecimal("5.25"))
        var buffer: [UInt8] = []
        state.encode(into: &buffer)
        #expect(buffer.withUnsafeBytes { AggregateState(decoding: $0) } == state)
        var latest = AggregateState()
        try latest.fold(1, time: 20, aggregation: .latest)
        try latest.fold(2, time: 10, aggregation: .latest)
        #expect(latest.quantity == 1)
        try latest.fold(3, time: 20, aggregation: .latest)
        #expect(latest.quantity == 3)  // a tie goes to the later arrival
        var minimum = AggregateState()
        for value in [4, 2, 9] { try minimum.fold(ExactDecimal(value), time: 0, aggregation: .min) }
        #expect(minimum.quantity == 2)
        var count = AggregateState()
        for _ in 0..<3 { try count.fold(100, time: 0, aggregation: .count) }
        #expect(count.quantity == 3)
    }

    @Test("the identity index finds every identity, across growth and 64-bit collisions")
    func identityIndex() {
        let index = IdentityIndex(minimumCapacity: 16)
        var identities: [Hash128] = []
        var generator = SystemRandomNumberGenerator()
        for stamp in 0..<200_000 {
            let identity = Hash128(high: generator.next(), low: generator.next())
            identities.append(identity)
            index.insert(identity, stamp: UInt64(stamp))
        }
        // Two identities sharing their low half (the slot key) are both found.
        let twin = Hash128(high: identities[0].high &+ 1, low: identities[0].low)
        index.insert(twin, stamp: 999_999)
        #expect(index.count == 200_001)
        for (stamp, identity) in identities.enumerated().prefix(5000) {
            var stamps: [UInt64] = []
            _ = index.firstStamp(for: identity) { stamps.append($0); return false }
            #expect(stamps.contains(UInt64(stamp)))
        }
        var twinStamps: [UInt64] = []
        _ = index.firstStamp(for: twin) { twinStamps.append($0); return false }
        #expect(Set(twinStamps) == [0, 999_999])
        #expect(!index.firstStamp(for: Hash128(high: 1, low: 2)) { _ in true })
    }

    @Test("usage keys order by customer, then period, then meter; long groups fall back to a hash")
    func usageKeys() {
        let keys = HashKeys(first: (1, 2), second: (3, 4))
        var early: [UInt8] = []
        var late: [UInt8] = []
        UsageKey.make(customer: "c", periodStart: Timestamp(nanosecondsSinceEpoch: -5), meter: "m", group: [], hashKeys: keys, into: &early)
        UsageKey.make(customer: "c", periodStart: Timestamp(nanosecondsSinceEpoch: 5), meter: "a", group: [], hashKeys: keys, into: &late)
        #expect(early.lexicographicallyPrecedes(late))
        #expect(early.withUnsafeBytes { UsageKey.meter(in: $0) } == "m")
        #expect(late.withUnsafeBytes { UsageKey.periodStart(in: $0) } == Timestamp(nanosecondsSinceEpoch: 5))
        var long: [UInt8] = []
        UsageKey.make(customer: String(repeating: "c", count: 255), periodStart: now, meter: "m",
                      group: [GroupValue(property: "p", value: String(repeating: "v", count: 1000))], hashKeys: keys, into: &long)
        #expect(long.count <= UsageKey.maximumKeySize)
    }
}
