public import Metering

/// An event as the store keeps it: what the producer sent, when it arrived and its place in the log.
public struct StoredEvent: Sendable, Hashable {
    /// Position in the `events` database, from 1, in commit order.
    public var sequence: UInt64
    /// When the daemon read the event's line.
    public var receivedAt: Timestamp
    /// The event as sent; `event.time` is nil when the line had no `time`.
    public var event: UsageEvent

    /// The time the event counts at: its own `time`, or when it was received.
    public var effectiveTime: Timestamp { event.time ?? receivedAt }
}

/// The binary form of an event in the `events` database (format 1).
///
/// ```
/// u8 format (1) ‖ i64 receivedAt ns ‖ u8 len ‖ customer ‖ u8 len ‖ id      — header and identity
/// u8 len ‖ meter ‖ 17 B value ‖ u8 hasTime ‖ [i64 time ns] ‖ u8 property count
///   { u8 len ‖ key ‖ u8 kind (0 string, 1 number, 2 false, 3 true) ‖ payload }  — content
/// ```
/// A string payload is u32 length ‖ bytes; a number payload is the 17-byte `ExactDecimal` form.
/// The content part, from the meter on, is what the event's fingerprint hashes: two events with the
/// same identity are duplicates exactly when their content bytes are equal. An event sent without a
/// `time` has no time in its content, so resending it later is a duplicate, not a conflict.
enum EventCodec {
    static let format: UInt8 = 1

    /// Encodes `event` into `buffer` (cleared first) and returns where its content begins.
    static func encode(_ event: UsageEvent, receivedAt: Timestamp, into buffer: inout [UInt8]) -> Int {
        buffer.removeAll(keepingCapacity: true)
        buffer.append(format)
        buffer.appendBigEndian(UInt64(bitPattern: receivedAt.nanosecondsSinceEpoch))
        buffer.appendShortString(event.customer)
        buffer.appendShortString(event.id)
        let contentStart = buffer.count
        buffer.appendShortString(event.meter)
        buffer.appendDecimal(event.value)
        if let time = event.time {
            buffer.append(1)
            buffer.appendBigEndian(UInt64(bitPattern: time.nanosecondsSinceEpoch))
        } else {
            buffer.append(0)
        }
        buffer.append(UInt8(truncatingIfNeeded: event.properties.count))
        for property in event.properties {
            buffer.appendShortString(property.key)
            switch property.value {
            case .string(let text):
                buffer.append(0)
                var text = text
                text.withUTF8 { bytes in
                    buffer.appendBigEndian(UInt32(bytes.count))
                    buffer.append(contentsOf: bytes)
                }
            case .number(let number):
                buffer.append(1)
                buffer.appendDecimal(number)
            case .bool(let flag):
                buffer.append(flag ? 3 : 2)
            }
        }
        return contentStart
    }

    /// The effective time (its own `time`, else when it was received) of an encoded event, in
    /// nanoseconds, without decoding the rest; nil when the bytes are not a format-1 event.
    static func effectiveTime(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard bytes.count > 10, bytes[0] == format else { return nil }
        let received = Int64(bitPattern: bytes.loadBigEndianUInt64(at: 1))
        var offset = 9
        for _ in 0..<3 {  // customer, id, meter
            guard offset < bytes.count else { return nil }
            offset += 1 + Int(bytes[offset])
        }
        offset += ExactDecimal.encodedSize
        guard offset < bytes.count else { return nil }
        if bytes[offset] == 0 { return received }
        guard offset + 9 <= bytes.count else { return nil }
        return Int64(bitPattern: bytes.loadBigEndianUInt64(at: offset + 1))
    }

    /// Decodes an event written by `encode`; nil when the bytes are not a format-1 event.
    static func decode(_ bytes: UnsafeRawBufferPointer, sequence: UInt64) -> StoredEvent? {
        var reader = ByteReader(bytes: bytes)
        guard reader.byte() == format, let received = reader.int64(),
              let customer = reader.shortString(), let id = reader.shortString(),
              let meter = reader.shortString(), let value = reader.decimal(),
              let hasTime = reader.byte()
        else { return nil }
        var time: Timestamp?
        if hasTime == 1 {
            guard let nanoseconds = reader.int64() else { return nil }
            time = Timestamp(nanosecondsSinceEpoch: nanoseconds)
        }
        guard let propertyCount = reader.byte() else { return nil }
        var properties: [UsageEvent.Property] = []
        properties.reserveCapacity(Int(propertyCount))
        for _ in 0..<propertyCount {
            guard let key = reader.shortString(), let kind = reader.byte() else { return nil }
            switch kind {
            case 0:
                guard let text = reader.longString() else { return nil }
                properties.append(UsageEvent.Property(key: key, value: .string(text)))
            case 1:
                guard let number = reader.decimal() else { return nil }
                properties.append(UsageEvent.Property(key: key, value: .number(number)))
            case 2, 3:
                properties.append(UsageEvent.Property(key: key, value: .bool(kind == 3)))
            default:
                return nil
            }
        }
        guard reader.isAtEnd else { return nil }
        let event = UsageEvent(id: id, customer: customer, meter: meter, value: value, time: time, properties: properties)
        return StoredEvent(sequence: sequence, receivedAt: Timestamp(nanosecondsSinceEpoch: received), event: event)
    }
}

/// Reads the fields of a stored value front to back; every read returns nil past the end.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var isAtEnd: Bool { offset == bytes.count }

    mutating func byte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint64() -> UInt64? {
        guard offset + 8 <= bytes.count else { return nil }
        defer { offset += 8 }
        return bytes.loadBigEndianUInt64(at: offset)
    }

    mutating func int64() -> Int64? {
        uint64().map { Int64(bitPattern: $0) }
    }

    mutating func orderedInt64() -> Int64? {
        uint64().map { Int64(bitPattern: $0 ^ (1 << 63)) }
    }

    /// A flag byte (0: none), then an ordered i64 when set; nil past the end.
    mutating func optionalOrderedInt64() -> Int64?? {
        guard let flag = byte() else { return nil }
        if flag == 0 { return .some(nil) }
        guard let value = orderedInt64() else { return nil }
        return .some(value)
    }

    mutating func uint32() -> UInt32? {
        guard offset + 4 <= bytes.count else { return nil }
        defer { offset += 4 }
        return bytes.loadBigEndianUInt32(at: offset)
    }

    mutating func shortString() -> String? {
        guard let length = byte().map(Int.init), offset + length <= bytes.count else { return nil }
        defer { offset += length }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]), as: UTF8.self)
    }

    mutating func longString() -> String? {
        guard offset + 4 <= bytes.count else { return nil }
        let length = Int(bytes.loadBigEndianUInt32(at: offset))
        offset += 4
        guard offset + length <= bytes.count else { return nil }
        defer { offset += length }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]), as: UTF8.self)
    }

    mutating func decimal() -> ExactDecimal? {
        guard offset + ExactDecimal.encodedSize <= bytes.count else { return nil }
        defer { offset += ExactDecimal.encodedSize }
        return ExactDecimal(encoded: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + ExactDecimal.encodedSize)]))
    }
}
