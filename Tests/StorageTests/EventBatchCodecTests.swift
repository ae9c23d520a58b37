import Metering
import Testing

@testable import Storage

@Suite("Event batches")
struct EventBatchCodecTests {
    static func events(_ count: Int) -> [PendingEvent] {
        (0..<count).map { index -> PendingEvent in
            let properties: [UsageEvent.Property] = [
                .init(key: "model", value: .string("large")), .init(key: "n", value: .number(7)), .init(key: "ok", value: .bool(index % 3 == 0)),
            ]
            let time: Timestamp? = index % 2 == 0 ? nil : Timestamp(nanosecondsSinceEpoch: Int64(index) * 1_000)
            let event = UsageEvent(id: "id-\(index)", customer: "cus_\(index % 7)", meter: "tokens", value: ExactDecimal(significand: 125, scale: 1),
                                   time: time, properties: properties)
            return PendingEvent(event: event, receivedAt: Timestamp(nanosecondsSinceEpoch: 1_700_000_000_000_000_000 + Int64(index)))
        }
    }

    @Test("a batch round-trips every field; cut to a size, the pieces hold the events in order, each within the size")
    func roundTrip() throws {
        let events = Self.events(300)
        let decoded = try #require(EventBatchCodec.decode(EventBatchCodec.encode(events)))
        #expect(decoded.map(\.event) == events.map(\.event))
        #expect(decoded.map(\.receivedAt) == events.map(\.receivedAt))
        let pieces = EventBatchCodec.encode(events, maxBytes: 2_000)
        #expect(pieces.count > 5)
        #expect(pieces.allSatisfy { $0.count <= 2_000 })
        #expect(pieces.compactMap(EventBatchCodec.decode).flatMap { $0 }.map(\.event) == events.map(\.event))
        #expect(EventBatchCodec.decode(EventBatchCodec.encode([]))?.isEmpty == true)
    }

    @Test("torn, padded or foreign bytes are refused")
    func damaged() {
        let bytes = EventBatchCodec.encode(Self.events(3))
        #expect(EventBatchCodec.decode(Array(bytes.dropLast())) == nil)
        #expect(EventBatchCodec.decode(bytes + [0]) == nil)
        #expect(EventBatchCodec.decode([2] + bytes.dropFirst()) == nil)
        #expect(EventBatchCodec.decode([]) == nil)
    }

    @Test("outcomes round-trip, rejections with their code, message and field; torn bytes are refused")
    func outcomes() {
        let outcomes: [RecordOutcome] = [
            .accepted, .duplicate,
            .rejected(IngestError(code: .unavailable, message: "partition 3 could not take this commit; retry", field: nil)),
            .rejected(IngestError(code: .invalidValue, message: "a message with ünïcode", field: "value")),
        ]
        let bytes = RecordOutcomeCodec.encode(outcomes)
        #expect(RecordOutcomeCodec.decode(bytes) == outcomes)
        #expect(RecordOutcomeCodec.decode(Array(bytes.dropLast())) == nil)
        #expect(RecordOutcomeCodec.decode(bytes + [0]) == nil)
        #expect(RecordOutcomeCodec.decode([]) == nil)
        #expect(RecordOutcomeCodec.decode(RecordOutcomeCodec.encode([])) == [])
    }

    @Test("outcomes with the limits blocking their customers round-trip; without any, the bytes are the plain outcomes'; torn bytes are refused")
    func outcomesWithBlocked() throws {
        let outcomes: [RecordOutcome] = [.accepted, .duplicate, .accepted]
        let limit = BlockingLimit(id: "stop", meter: "api_calls", used: try #require(ExactDecimal("12.5")), limit: 10,
                                  resetsAt: Timestamp(nanosecondsSinceEpoch: 1_798_761_600_000_000_000))
        let amount = BlockingLimit(id: "cap", meter: nil, used: 100, limit: 100, resetsAt: Timestamp(nanosecondsSinceEpoch: 1))
        let bytes = RecordOutcomeCodec.encode(outcomes, blocked: [limit, nil, amount])
        let decoded = try #require(RecordOutcomeCodec.decodeWithBlocked(bytes))
        #expect(decoded.outcomes == outcomes && decoded.blocked == [limit, nil, amount])
        #expect(RecordOutcomeCodec.decode(bytes) == nil, "a reader of plain outcomes does not take them for plain ones")
        #expect(RecordOutcomeCodec.encode(outcomes, blocked: [nil, nil, nil]) == RecordOutcomeCodec.encode(outcomes))
        #expect(RecordOutcomeCodec.decodeWithBlocked(RecordOutcomeCodec.encode(outcomes))?.blocked == [])
        #expect(RecordOutcomeCodec.decodeWithBlocked(Array(bytes.dropLast())) == nil)
    }
}
