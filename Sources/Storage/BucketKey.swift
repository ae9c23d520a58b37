public import Metering

/// How long a usage bucket is: the quarter-hour every event folds into, or the UTC day that rolls
/// its quarters up (so a query over many days reads one row per day, not 96).
///
/// Why quarter-hours and not hours: every time zone in use today is offset from UTC by a multiple
/// of 15 minutes (Asia/Kolkata +05:30, Asia/Kathmandu +05:45), so the edges of every local day and
/// month fall on a quarter-hour, and windows in any zone are exact sums of buckets.
public enum BucketResolution: UInt8, Sendable, CaseIterable {
    case quarterHour = 0
    case day = 1

    /// The bucket's length in nanoseconds.
    public var nanoseconds: Int64 {
        switch self {
        case .quarterHour: 15 * Timestamp.nanosecondsPerMinute
        case .day: Timestamp.nanosecondsPerDay
        }
    }

    /// The start of the bucket of this length that contains `time` (UTC; floor, also before 1970).
    public func start(containing time: Int64) -> Int64 {
        let length = nanoseconds
        let remainder = time % length
        return remainder < 0 ? time - remainder - length : time - remainder
    }
}

/// Builds and reads keys of the `usage_buckets` database.
///
/// `u8 len ‖ customer ‖ u8 len ‖ meter ‖ u8 resolution ‖ i64 start (ordered) ‖ { u32 len ‖ group value }`:
/// one customer × meter's buckets are one contiguous key range, in time order within each
/// resolution, so a query for a customer reads one range and the buckets of one commit (same
/// quarter-hour, same day) share pages per customer. Groups come last (after the time) so that a
/// range scan over time covers every group of the meter; the group's values are also in the value.
enum BucketKey {
    /// The prefix of every bucket of `customer` × `meter`.
    static func prefix(customer: String, meter: String, into key: inout [UInt8]) {
        key.removeAll(keepingCapacity: true)
        key.appendShortString(customer)
        key.appendShortString(meter)
    }

    /// The prefix of `customer` × `meter`'s buckets of `resolution` from `start` on (a seek key).
    static func seek(customer: String, meter: String, resolution: BucketResolution, start: Int64, into key: inout [UInt8]) {
        prefix(customer: customer, meter: meter, into: &key)
        key.append(resolution.rawValue)
        key.appendOrdered(start)
    }

    /// The whole key. Group values that would make the key longer than LMDB allows are replaced
    /// by a 0xFF byte and a hash of them, as in `usage` keys.
    static func make(customer: String, meter: String, resolution: BucketResolution, start: Int64, group: [GroupValue],
                     hashKeys: HashKeys, into key: inout [UInt8]) {
        seek(customer: customer, meter: meter, resolution: resolution, start: start, into: &key)
        guard !group.isEmpty else { return }
        let groupStart = key.count
        for entry in group { key.appendLongString(entry.value) }
        if key.count > UsageKey.maximumKeySize {
            let hash = key.withUnsafeBytes { hashKeys.hash(UnsafeRawBufferPointer(rebasing: $0[groupStart...])) }
            key.removeSubrange(groupStart...)
            key.append(0xFF)
            hash.append(to: &key)
        }
    }

    /// The offset of the resolution byte (after customer and meter), or nil for a short key.
    static func resolutionOffset(in key: UnsafeRawBufferPointer) -> Int? {
        guard key.count > 0 else { return nil }
        let meterAt = 1 + Int(key[0])
        guard key.count > meterAt else { return nil }
        let at = meterAt + 1 + Int(key[meterAt])
        return key.count >= at + 9 ? at : nil
    }

    /// The customer of a key.
    static func customer(in key: UnsafeRawBufferPointer) -> String? {
        guard key.count > 0, key.count >= 1 + Int(key[0]) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: key[1..<(1 + Int(key[0]))]), as: UTF8.self)
    }

    /// The resolution and start of a key.
    static func bucket(in key: UnsafeRawBufferPointer) -> (resolution: BucketResolution, start: Int64)? {
        guard let at = resolutionOffset(in: key), let resolution = BucketResolution(rawValue: key[at]) else { return nil }
        return (resolution, key.loadOrderedInt64(at: at + 1))
    }
}

extension Array where Element == UInt8 {
    /// The smallest byte string greater than every string that starts with this one (a seek key
    /// past a prefix); nil when there is none (all 0xFF).
    func prefixSuccessor() -> [UInt8]? {
        var result = self
        while let last = result.last {
            if last < 0xFF {
                result[result.count - 1] = last + 1
                return result
            }
            result.removeLast()
        }
        return nil
    }
}
