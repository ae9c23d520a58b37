import Metering

/// A batch of events in the binary form of the `events` database (`EventCodec`), each with the
/// time it arrived: what a cluster node's replicated log carries for one group commit, so a
/// replay counts exactly the same events the commit counted.
///
/// ```
/// u8 format (1) ‖ u32 count ‖ { u32 length ‖ event (EventCodec) }…
/// ```
public enum EventBatchCodec {
    static let format: UInt8 = 1

    /// The batch's bytes.
    public static func encode(_ events: [PendingEvent]) -> [UInt8] {
        encode(events, maxBytes: .max)[0]
    }

    /// The events as consecutive batches of at most `maxBytes` each (an event larger than that on
    /// its own), in order: a commit too large for one message of the log becomes several.
    public static func encode(_ events: [PendingEvent], maxBytes: Int) -> [[UInt8]] {
        var batches: [[UInt8]] = []
        var output: [UInt8] = []
        var count: UInt32 = 0
        var buffer: [UInt8] = []
        func finish() {
            output.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: count.bigEndian, toByteOffset: 1, as: UInt32.self)
            }
            batches.append(output)
        }
        func start() {
            output = [format, 0, 0, 0, 0]
            count = 0
        }
        start()
        for pending in events {
            _ = EventCodec.encode(pending.event, receivedAt: pending.receivedAt, into: &buffer)
            if count > 0, output.count + 4 + buffer.count > maxBytes {
                finish()
                start()
            }
            output.appendBigEndian(UInt32(buffer.count))
            output.append(contentsOf: buffer)
            count += 1
        }
        finish()
        return batches
    }

    /// The bytes of a batch's header.
    public static let headerSize = 5

    /// The events of a batch; nil when the bytes are not a whole format-1 batch.
    public static func decode(_ bytes: [UInt8]) -> [PendingEvent]? {
        bytes.withUnsafeBytes { raw -> [PendingEvent]? in
            guard raw.count >= headerSize, raw[0] == format else { return nil }
            let count = Int(raw.loadBigEndianUInt32(at: 1))
            var offset = headerSize
            var events: [PendingEvent] = []
            events.reserveCapacity(min(count, raw.count / 16))
            for _ in 0..<count {
                guard offset + 4 <= raw.count else { return nil }
                let length = Int(raw.loadBigEndianUInt32(at: offset))
                offset += 4
                guard length <= raw.count - offset,
                      let stored = EventCodec.decode(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + length]), sequence: 0)
                else { return nil }
                events.append(PendingEvent(event: stored.event, receivedAt: stored.receivedAt))
                offset += length
            }
            return offset == raw.count ? events : nil
        }
    }
}
