import Foundation
import Metering
import Testing

@testable import Storage

/// `ingest_hours`: what each hour's commits answered, written in the same transaction.
@Suite("Ingest activity per hour")
struct IngestActivityTests {
    @Test("accepted, duplicates and rejected add up per hour, across commits and a reopen; other hours are zero")
    func counts() throws {
        let temporary = try TemporaryStore()
        _ = try temporary.writer.record([pending("a"), pending("b"), pending("a")])
        // A conflict (same identity, other content) is rejected; a resend is a duplicate.
        let second = try temporary.writer.record([pending("a", value: 5), pending("b"), pending("c")])
        #expect(second[0] != .accepted && second[1] == .duplicate && second[2] == .accepted)
        let hours = try temporary.store.ingestActivity(hours: 48)
        #expect(hours.count == 48)
        let current = try #require(hours.last)
        #expect(current.accepted == 3 && current.duplicates == 2 && current.rejected == 1)
        #expect(current.start <= Timestamp.now() && Timestamp.now() < current.start.adding(nanoseconds: Timestamp.nanosecondsPerHour))
        #expect(current.start.nanosecondsSinceEpoch % Timestamp.nanosecondsPerHour == 0)
        #expect(hours.dropLast().allSatisfy { $0.answered == 0 })
        for (earlier, later) in zip(hours, hours.dropFirst()) {
            #expect(later.start.nanosecondsSinceEpoch - earlier.start.nanosecondsSinceEpoch == Timestamp.nanosecondsPerHour)
        }
        // Another reader sees the same; so does the store reopened.
        let reader = try TallyStore(path: temporary.store.path, configuration: temporary.store.configuration, access: .readOnly,
                                    logger: temporary.store.logger)
        #expect(try reader.ingestActivity(hours: 1).first == current)
        #expect(try temporary.store.ingestActivity(hours: 0).isEmpty)
    }

    @Test("an hour's row encodes and decodes its three counts")
    func encoding() {
        let hour = IngestHour(start: Timestamp(nanosecondsSinceEpoch: 0), accepted: 1 << 40, duplicates: 7, rejected: .max)
        let decoded = hour.encoded.withUnsafeBytes { IngestHour(start: hour.start, decoding: $0) }
        #expect(decoded == hour)
        #expect([UInt8](repeating: 1, count: 3).withUnsafeBytes { IngestHour(start: hour.start, decoding: $0) }.answered == 0)
    }
}
