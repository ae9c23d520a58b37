import LMDB
public import Metering

/// What ingest answered in one UTC hour: the overview's events-per-hour chart and its counts.
///
/// Counted by the group commit, in its own transaction, by the hour the commit happened (arrival,
/// not the events' `time`): one `ingest_hours` row per hour, so reading two days is 48 lookups
/// whatever the number of customers. `rejected` counts events the store refused (an idempotency
/// conflict, a closed period, an overflowing aggregate); lines that never parsed are not events and
/// are counted only by `tally_events_total{result="rejected"}`.
public struct IngestHour: Sendable, Hashable {
    /// The hour's start.
    public var start: Timestamp
    public var accepted: UInt64
    public var duplicates: UInt64
    public var rejected: UInt64

    public init(start: Timestamp, accepted: UInt64 = 0, duplicates: UInt64 = 0, rejected: UInt64 = 0) {
        self.start = start
        self.accepted = accepted
        self.duplicates = duplicates
        self.rejected = rejected
    }

    /// All three counts added up.
    public var answered: UInt64 { accepted &+ duplicates &+ rejected }

    static let valueSize = 24

    init(start: Timestamp, decoding value: UnsafeRawBufferPointer) {
        self.start = start
        guard value.count >= Self.valueSize else {
            (accepted, duplicates, rejected) = (0, 0, 0)
            return
        }
        accepted = value.loadBigEndianUInt64(at: 0)
        duplicates = value.loadBigEndianUInt64(at: 8)
        rejected = value.loadBigEndianUInt64(at: 16)
    }

    var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.valueSize)
        bytes.appendBigEndian(accepted)
        bytes.appendBigEndian(duplicates)
        bytes.appendBigEndian(rejected)
        return bytes
    }

    static func key(hourStartSeconds: UInt64) -> [UInt8] {
        var key: [UInt8] = []
        key.appendBigEndian(hourStartSeconds)
        return key
    }
}

extension TallyStore {
    /// The `hours` UTC hours that end with the one containing `now`, oldest first; hours without
    /// events are present with zeros.
    public func ingestActivity(hours: Int, now: Timestamp = .now()) throws(StoreError) -> [IngestHour] {
        let hourSeconds: Int64 = 3_600
        let seconds = now.nanosecondsSinceEpoch / Timestamp.nanosecondsPerSecond
        let current = (seconds >= 0 ? seconds : seconds - hourSeconds + 1) / hourSeconds * hourSeconds
        let starts = (0..<max(0, hours)).map { current - Int64(hours - 1 - $0) * hourSeconds }
        guard let ingestHours else {
            return starts.map { IngestHour(start: Timestamp(nanosecondsSinceEpoch: $0 * Timestamp.nanosecondsPerSecond)) }
        }
        return try readStore("read ingest activity") { transaction in
            try starts.map { start in
                let time = Timestamp(nanosecondsSinceEpoch: start * Timestamp.nanosecondsPerSecond)
                guard start >= 0, let value = try transaction.get(ingestHours, key: IngestHour.key(hourStartSeconds: UInt64(start))) else {
                    return IngestHour(start: time)
                }
                return value.withUnsafeBytes { IngestHour(start: time, decoding: $0) }
            }
        }
    }
}

extension StoreWriter {
    /// Adds one commit's answers to the row of the hour `nowMilliseconds` falls in.
    func countIngest(_ outcomes: [RecordOutcome], nowMilliseconds: UInt64, transaction: borrowing WriteTransaction) throws {
        guard let ingestHours = store.ingestHours, !outcomes.isEmpty else { return }
        var accepted: UInt64 = 0
        var duplicates: UInt64 = 0
        var rejected: UInt64 = 0
        for outcome in outcomes {
            switch outcome {
            case .accepted: accepted += 1
            case .duplicate: duplicates += 1
            case .rejected: rejected += 1
            }
        }
        let hourSeconds = nowMilliseconds / 1_000 / 3_600 * 3_600
        let key = IngestHour.key(hourStartSeconds: hourSeconds)
        var hour = IngestHour(start: Timestamp(nanosecondsSinceEpoch: Int64(hourSeconds) * Timestamp.nanosecondsPerSecond))
        if let value = try transaction.get(ingestHours, key: key) {
            hour = value.withUnsafeBytes { IngestHour(start: hour.start, decoding: $0) }
        }
        hour.accepted &+= accepted
        hour.duplicates &+= duplicates
        hour.rejected &+= rejected
        _ = try transaction.put(ingestHours, key: key, value: hour.encoded)
    }
}
