import LMDB
import Metering

/// One `usage_log` record: the usage aggregates one group commit changed, each as it stands after
/// that commit (the whole state, not a difference).
///
/// Why a log: with tens of thousands of customers in random order, one commit of 8,192 events
/// touches most rows of `usage`, and rewriting them in place dirtied most of its B-tree's pages in
/// every commit. The commit instead appends one record under its stamp (a few contiguous overflow
/// pages), and `StoreWriter` folds the logged states into `usage` a slice at a time, sorted, inside
/// later commits. A reader takes, for each key, the state of the newest record that holds it, and
/// the `usage` row otherwise (`UsageLogReader`).
///
/// Layout: `u8 format ‖ u32 count ‖ count × u32 entry offset ‖ entries`, each entry
/// `u8 family ‖ u16 key length ‖ key ‖ u32 value length ‖ value`, sorted by family then key bytes.
/// The family says which table the entry folds into; `periodUsage` (0) is `usage`.
enum UsageLogRecord {
    static let format: UInt8 = 1

    /// Which table a logged entry belongs to.
    enum Family: UInt8 {
        /// A row of `usage`: customer × period × meter × group.
        case periodUsage = 0
        /// A row of `usage_buckets`: customer × meter × quarter-hour or UTC day × group (`BucketKey`).
        case buckets = 1
        /// A customer seen for the first time: a key of `customer_index` (the customer id; the
        /// value is an empty aggregate). The directory `GET /v1/customers` pages through.
        case customers = 2
        /// A row of `credit_applied`, logged in `credit_log` (not `usage_log`): the amount as a
        /// 17-byte decimal, or empty when the row is deleted (`CreditLogBuffer`).
        case creditApplied = 3
    }

    /// Encodes `entries`, which must be sorted by key and unique, into `buffer`.
    static func encode(_ entries: [(key: [UInt8], value: [UInt8])], family: Family, into buffer: inout [UInt8]) {
        encode(entries.count, into: &buffer) { _ in family } key: { index, key in
            key.append(contentsOf: entries[index].key)
        } value: { index, value in
            value.append(contentsOf: entries[index].value)
        }
    }

    /// Encodes `count` entries, sorted by family then key and unique, straight into `buffer`:
    /// `family(i)` is entry i's family, `key(i, &buffer)` and `value(i, &buffer)` append its key
    /// and value bytes.
    static func encode(_ count: Int, into buffer: inout [UInt8],
                       family: (_ index: Int) -> Family,
                       key: (_ index: Int, _ buffer: inout [UInt8]) -> Void,
                       value: (_ index: Int, _ buffer: inout [UInt8]) -> Void) {
        buffer.removeAll(keepingCapacity: true)
        buffer.append(format)
        buffer.appendBigEndian(UInt32(count))
        let tableStart = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: 4 * count))
        for index in 0..<count {
            let offset = buffer.count
            buffer.append(family(index).rawValue)
            buffer.append(contentsOf: [0, 0])
            key(index, &buffer)
            let keyLength = buffer.count - offset - 3
            buffer.append(contentsOf: [0, 0, 0, 0])
            let valueStart = buffer.count
            value(index, &buffer)
            let valueLength = buffer.count - valueStart
            buffer.withUnsafeMutableBytes { bytes in
                bytes.storeBytes(of: UInt32(offset).bigEndian, toByteOffset: tableStart + 4 * index, as: UInt32.self)
                bytes.storeBytes(of: UInt16(keyLength).bigEndian, toByteOffset: offset + 1, as: UInt16.self)
                bytes.storeBytes(of: UInt32(valueLength).bigEndian, toByteOffset: valueStart - 4, as: UInt32.self)
            }
        }
    }
}

/// A read-only view of one encoded `UsageLogRecord`, valid while its bytes are.
struct UsageLogView {
    let bytes: UnsafeRawBufferPointer
    /// How many entries the record holds.
    let count: Int

    /// Checks the header and the offset table; nil when the record is damaged.
    init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 5, bytes[0] == UsageLogRecord.format else { return nil }
        let count = Int(bytes.loadBigEndianUInt32(at: 1))
        guard count <= (bytes.count - 5) / 4 else { return nil }
        self.bytes = bytes
        self.count = count
    }

    /// Entry `index`: its family, key and value; nil when the entry runs past the record.
    func entry(_ index: Int) -> (family: UInt8, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? {
        let offset = Int(bytes.loadBigEndianUInt32(at: 5 + 4 * index))
        guard offset + 3 <= bytes.count else { return nil }
        let keyLength = Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
        let keyStart = offset + 3
        guard keyStart + keyLength + 4 <= bytes.count else { return nil }
        let valueLength = Int(bytes.loadBigEndianUInt32(at: keyStart + keyLength))
        let valueStart = keyStart + keyLength + 4
        guard valueStart + valueLength <= bytes.count else { return nil }
        return (bytes[offset],
                UnsafeRawBufferPointer(rebasing: bytes[keyStart..<(keyStart + keyLength)]),
                UnsafeRawBufferPointer(rebasing: bytes[valueStart..<(valueStart + valueLength)]))
    }

    /// The first entry whose (family, key) is not below (`family`, `prefix`): where the entries
    /// starting with `prefix` begin. A binary search; damaged entries sort last.
    func lowerBound(family: UsageLogRecord.Family, prefix: [UInt8]) -> Int {
        var low = 0
        var high = count
        prefix.withUnsafeBytes { prefix in
            while low < high {
                let middle = (low + high) / 2
                guard let entry = entry(middle) else {
                    high = middle
                    continue
                }
                let below = entry.family < family.rawValue
                    || (entry.family == family.rawValue && entry.key.lexicographicallyPrecedes(prefix))
                if below { low = middle + 1 } else { high = middle }
            }
        }
        return low
    }
}

/// Reads the newest logged state of usage keys, across every record of `usage_log`.
enum UsageLogReader {
    /// The newest logged value of every key of `family` that starts with `prefix` (all keys for an
    /// empty prefix), newest record first: the first record that holds a key wins.
    static func newest(
        in transaction: borrowing some ReadableTransaction & ~Copyable, log: Database?,
        family: UsageLogRecord.Family = .periodUsage, prefix: [UInt8]
    ) throws -> [[UInt8]: [UInt8]] {
        guard let log else { return [:] }
        var found: [[UInt8]: [UInt8]] = [:]
        try transaction.withCursor(log) { cursor in
            var record = try cursor.last()
            while let (_, value) = record {
                guard let view = UsageLogView(value) else {
                    throw StoreError(.incompatible, "a usage_log record is damaged")
                }
                var index = view.lowerBound(family: family, prefix: prefix)
                while index < view.count {
                    guard let entry = view.entry(index) else {
                        throw StoreError(.incompatible, "a usage_log record is damaged")
                    }
                    guard entry.family == family.rawValue, entry.key.starts(with: prefix) else { break }
                    let key = Array(entry.key)
                    if found[key] == nil { found[key] = Array(entry.value) }
                    index += 1
                }
                record = try cursor.previous()
            }
        }
        return found
    }

    /// Base rows under `prefix` overlaid with the newest logged states, in key order.
    static func merged(
        in transaction: borrowing some ReadableTransaction & ~Copyable, usage: Database, log: Database?,
        family: UsageLogRecord.Family = .periodUsage,
        prefix: [UInt8], _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let logged = try newest(in: transaction, log: log, family: family, prefix: prefix)
        if logged.isEmpty {
            try transaction.forEach(usage, prefix: prefix, body)
            return
        }
        let loggedKeys = logged.keys.sorted { $0.lexicographicallyPrecedes($1) }
        var next = 0
        try transaction.forEach(usage, prefix: prefix) { key, value in
            while next < loggedKeys.count, loggedKeys[next].lexicographicallyPrecedes(key) {
                try emit(loggedKeys[next], logged, body)
                next += 1
            }
            if next < loggedKeys.count, loggedKeys[next].elementsEqual(key) {
                try emit(loggedKeys[next], logged, body)
                next += 1
            } else {
                try body(key, value)
            }
        }
        while next < loggedKeys.count {
            try emit(loggedKeys[next], logged, body)
            next += 1
        }
    }

    private static func emit(_ key: [UInt8], _ logged: [[UInt8]: [UInt8]],
                             _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws {
        let value = logged[key]!
        try key.withUnsafeBytes { key in
            try value.withUnsafeBytes { value in try body(key, value) }
        }
    }
}
