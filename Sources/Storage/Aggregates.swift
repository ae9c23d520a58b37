public import Metering

/// The running aggregate of one meter for one customer, period and group, as stored in `usage`.
///
/// Value layout (format 1): `u8 format ‖ u64 event count ‖ 17 B quantity ‖ i64 latest time ns ‖
/// u8 group count ‖ { u8 len ‖ property ‖ u32 len ‖ value }`. The group's values are kept in the value
/// too, so the key can fall back to a hash when they are too long for an LMDB key.
struct AggregateState: Equatable {
    static let format: UInt8 = 1

    /// Events counted into this aggregate.
    var eventCount: UInt64 = 0
    /// The aggregate's quantity: a sum, a count, a maximum, a minimum, the latest value or a unique count.
    var quantity: ExactDecimal = 0
    /// For `latest`: the time of the event whose value `quantity` holds.
    var latestTime: Int64 = .min
    /// The group-by property values, in the meter's `group_by` order.
    var group: [GroupValue] = []

    func encode(into buffer: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        append(to: &buffer)
    }

    /// Appends the encoded state to `buffer` (what `encode(into:)` writes into an empty one).
    func append(to buffer: inout [UInt8]) {
        buffer.append(Self.format)
        buffer.appendBigEndian(eventCount)
        buffer.appendDecimal(quantity)
        buffer.appendBigEndian(UInt64(bitPattern: latestTime))
        buffer.append(UInt8(truncatingIfNeeded: group.count))
        for entry in group {
            buffer.appendShortString(entry.property)
            buffer.appendLongString(entry.value)
        }
    }

    init() {}

    /// An empty aggregate of `group`.
    init(group: [GroupValue]) {
        self.group = group
    }

    init?(decoding bytes: UnsafeRawBufferPointer) {
        var reader = ByteReader(bytes: bytes)
        guard reader.byte() == Self.format, let count = reader.uint64(), let quantity = reader.decimal(),
              let latest = reader.int64(), let groupCount = reader.byte()
        else { return nil }
        eventCount = count
        self.quantity = quantity
        latestTime = latest
        for _ in 0..<groupCount {
            guard let property = reader.shortString(), let value = reader.longString() else { return nil }
            group.append(GroupValue(property: property, value: value))
        }
        guard reader.isAtEnd else { return nil }
    }

    /// Counts one more distinct value of a `unique_count` aggregate (which `fold` leaves alone);
    /// a count that cannot grow stays as it is.
    mutating func countNewValue() {
        quantity = (try? quantity.adding(1)) ?? quantity
    }

    /// Folds one more event's value into the aggregate.
    ///
    /// `unique_count` is not folded here: the caller adds 1 only for values it has not seen.
    mutating func fold(_ value: ExactDecimal, time: Int64, aggregation: Aggregation) throws(DecimalOverflow) {
        eventCount += 1
        switch aggregation {
        case .count:
            quantity = ExactDecimal(Int(truncatingIfNeeded: eventCount))
        case .sum:
            quantity = try quantity.adding(value)
        case .max:
            quantity = eventCount == 1 ? value : Swift.max(quantity, value)
        case .min:
            quantity = eventCount == 1 ? value : Swift.min(quantity, value)
        case .latest:
            // Ties go to the later arrival: events are folded in arrival order.
            if time >= latestTime {
                quantity = value
                latestTime = time
            }
        case .uniqueCount:
            break
        }
    }

    /// Merges a delta folded over this commit's events into the stored aggregate.
    mutating func merge(_ delta: AggregateState, aggregation: Aggregation) throws(DecimalOverflow) {
        guard eventCount > 0 else {
            let group = self.group.isEmpty ? delta.group : self.group
            self = delta
            self.group = group
            return
        }
        switch aggregation {
        case .count:
            quantity = ExactDecimal(Int(truncatingIfNeeded: eventCount + delta.eventCount))
        case .sum, .uniqueCount:
            quantity = try quantity.adding(delta.quantity)
        case .max:
            quantity = Swift.max(quantity, delta.quantity)
        case .min:
            quantity = Swift.min(quantity, delta.quantity)
        case .latest:
            if delta.latestTime >= latestTime {
                quantity = delta.quantity
                latestTime = delta.latestTime
            }
        }
        eventCount += delta.eventCount
    }
}

/// One group-by property and its value for an aggregate.
public struct GroupValue: Sendable, Hashable {
    public var property: String
    public var value: String

    public init(property: String, value: String) {
        self.property = property
        self.value = value
    }
}

/// Builds keys of the `usage` database.
enum UsageKey {
    /// LMDB's default maximum key size.
    static let maximumKeySize = 511

    /// The prefix shared by every aggregate of one customer and period.
    static func prefix(customer: String, periodStart: Timestamp, into key: inout [UInt8]) {
        key.removeAll(keepingCapacity: true)
        key.appendShortString(customer)
        key.appendOrdered(periodStart.nanosecondsSinceEpoch)
    }

    /// The prefix shared by every aggregate of one customer, in every period.
    static func prefix(customer: String) -> [UInt8] {
        var key: [UInt8] = []
        key.appendShortString(customer)
        return key
    }

    /// The whole key: customer, period, meter and group. When the group's values would make the key
    /// longer than LMDB allows, the group part is a 0xFF byte and a hash of the values instead.
    static func make(customer: String, periodStart: Timestamp, meter: String, group: [GroupValue],
                     hashKeys: HashKeys, into key: inout [UInt8]) {
        prefix(customer: customer, periodStart: periodStart, into: &key)
        key.appendShortString(meter)
        guard !group.isEmpty else { return }
        let groupStart = key.count
        for entry in group { key.appendLongString(entry.value) }
        if key.count > maximumKeySize {
            let hash = key.withUnsafeBytes { hashKeys.hash(UnsafeRawBufferPointer(rebasing: $0[groupStart...])) }
            key.removeSubrange(groupStart...)
            key.append(0xFF)
            hash.append(to: &key)
        }
    }

    /// Reads the meter code from a key (after the customer and period).
    static func meter(in key: UnsafeRawBufferPointer) -> String? {
        guard key.count > 0 else { return nil }
        let customerLength = Int(key[0])
        let meterAt = 1 + customerLength + 8
        guard key.count > meterAt else { return nil }
        let meterLength = Int(key[meterAt])
        guard key.count >= meterAt + 1 + meterLength else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: key[(meterAt + 1)..<(meterAt + 1 + meterLength)]), as: UTF8.self)
    }

    /// Reads the period start from a key.
    static func periodStart(in key: UnsafeRawBufferPointer) -> Timestamp? {
        guard key.count > 0 else { return nil }
        let at = 1 + Int(key[0])
        guard key.count >= at + 8 else { return nil }
        return Timestamp(nanosecondsSinceEpoch: key.loadOrderedInt64(at: at))
    }
}
