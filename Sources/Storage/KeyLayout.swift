import LMDB
import Metering

// The LMDB key layout of a Tally store, written down once, next to the code that owns it.
//
// One LMDB environment (the store directory) holds these named databases:
//
// | database        | key                                                        | value |
// |-----------------|------------------------------------------------------------|-------|
// | `meta`          | ASCII name (`format`, `hash_key`, `settings_version`, `archived_sequence`, `archived_periods`, `customer_index_built`, cluster mode: `log_sequence`) | the setting's bytes |
// | `identities`    | commit stamp u64 BE ‖ identity hash 16 B                   | fingerprint 16 B ‖ event sequence u64 BE |
// | `events`        | event sequence u64 BE                                      | the event, `EventCodec` format 1 |
// | `usage`         | len u8 ‖ customer ‖ period start i64 (ordered) ‖ len u8 ‖ meter ‖ { u32 len ‖ group value } | `AggregateState` |
// | `unique_values` | usage-key hash 16 B ‖ property value (or 0xFF ‖ its hash 16 B when too long) | empty |
// | `customers`     | customer                                                    | plan assignments: { i64 from ns ‖ u8 len ‖ plan } sorted by from |
// | `closed_periods`| period start i64 (ordered)                                  | i64 end ns ‖ i64 closed-at ns ‖ u8 len ‖ label |
// | `limits`        | limit id                                                    | `LimitCodec`: scope, meter, value, action, steps |
// | `fired`         | period start i64 ‖ u8 len ‖ customer ‖ u8 len ‖ limit id ‖ u16 step ‖ 17 B limit value | alert sequence u64 |
// | `alerts`        | alert sequence u64 BE                                       | `Alert` fields (the durable outbox) |
// | `delivery_cursors` | sink name (`log`, `webhook:<url>`)                       | last delivered alert sequence u64 |
// | `archive_segments` | segment number u64 BE                                    | `ArchiveSegment`: sequences, times, sizes, SHA-256 of the file |
// | `usage_log`     | commit stamp u64 BE                                         | `UsageLogRecord`: the aggregates that commit changed, as they stand after it, sorted by family and key |
// | `usage_buckets` | len u8 ‖ customer ‖ len u8 ‖ meter ‖ u8 resolution (0 quarter-hour, 1 UTC day) ‖ start i64 (ordered) ‖ { u32 len ‖ group value } | `AggregateState` (`BucketKey`) |
// | `bucket_unique_values` | bucket-key hash 16 B ‖ property value (or 0xFF ‖ its hash)  | empty |
// | `customer_index` | customer id (its bytes, so keys are in byte order of id)   | an empty `AggregateState` (written by the fold, as usage is) |
// | `credit_grants` | len u8 ‖ customer ‖ grant id                                 | `CreditGrant` (`CreditGrantCodec`) |
// | `credit_applied` | len u8 ‖ customer ‖ period start i64 (ordered) ‖ grant id  | the amount the grant covers in that period (17-byte decimal), folded from `credit_log` |
// | `credit_log`    | commit stamp u64 BE                                         | `UsageLogRecord` of family `creditApplied`: the `credit_applied` rows that commit changed (17-byte decimal; empty: deleted), sorted by key; folded into `credit_applied` every 32 records |
// | `ingest_hours`  | UTC hour start, seconds u64 BE (the hour the commit happened)   | accepted u64 BE ‖ duplicates u64 BE ‖ rejected u64 BE (`IngestActivity`) |
//
// Why `identities` starts with the commit stamp: identities are random (UUIDv4 ids), so a key that
// starts with their hash makes every insert dirty its own 4 KiB page and ingest slows as the index
// grows. The commit stamp (milliseconds, strictly increasing per group commit) makes each commit's
// new identities one sorted run appended at the right edge of the B-tree: a commit of 8192 events
// dirties about a hundred pages whatever the size of the index. Lookup by identity alone stays
// possible through `IdentityIndex`, an in-memory map from identity hash to commit stamp that is
// rebuilt from this database when the store opens (LMDB stays the single source of truth).
//
// All integers are big-endian so that LMDB's byte order is numeric order. Signed values (times)
// are stored with their sign bit flipped, so negative times sort before positive ones.

/// Names of the LMDB databases in a Tally store.
enum DatabaseName {
    static let meta = "meta"
    static let identities = "identities"
    static let events = "events"
    static let usage = "usage"
    static let uniqueValues = "unique_values"
    static let customers = "customers"
    static let closedPeriods = "closed_periods"
    static let limits = "limits"
    static let fired = "fired"
    static let alerts = "alerts"
    static let deliveryCursors = "delivery_cursors"
    static let archiveSegments = "archive_segments"
    static let usageLog = "usage_log"
    static let usageBuckets = "usage_buckets"
    static let bucketUniqueValues = "bucket_unique_values"
    static let customerIndex = "customer_index"
    static let ingestHours = "ingest_hours"
    static let creditGrants = "credit_grants"
    static let creditApplied = "credit_applied"
    static let creditLog = "credit_log"
}

/// Keys of the `meta` database.
enum MetaKey {
    /// The store's format version, u32 big-endian.
    static let format: [UInt8] = Array("format".utf8)
    /// Four random u64 keys for the SipHash identity and fingerprint hashes, chosen when the store is created.
    static let hashKey: [UInt8] = Array("hash_key".utf8)
    /// Bumped whenever limits or plan assignments change, so the writer reloads them (u64).
    static let settingsVersion: [UInt8] = Array("settings_version".utf8)
    /// The highest event sequence ever archived (u64), so sequences are never reused once the
    /// newest events have left the live store.
    static let archivedSequence: [UInt8] = Array("archived_sequence".utf8)
    /// The starts (i64 ordered each) of the closed periods whose events have all been archived.
    static let archivedPeriods: [UInt8] = Array("archived_periods".utf8)
    /// Present once `customer_index` holds every customer the store knew when it was created or
    /// upgraded (empty value); later customers are added as they appear.
    static let customerIndexBuilt: [UInt8] = Array("customer_index_built".utf8)
    /// Cluster mode: the sequence of the newest message of the partition's replicated log that the
    /// store holds (u64), written by the commit that counted it.
    static let logSequence: [UInt8] = Array("log_sequence".utf8)
}

/// The store format this build writes and reads.
let currentStoreFormat: UInt32 = 1

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendBigEndian(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: UInt32) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    /// Appends a signed value so that byte order equals numeric order.
    @inline(__always)
    mutating func appendOrdered(_ value: Int64) {
        appendBigEndian(UInt64(bitPattern: value) ^ (1 << 63))
    }

    /// Appends the 17-byte form of a decimal.
    mutating func appendDecimal(_ value: ExactDecimal) {
        let start = count
        append(contentsOf: repeatElement(0, count: ExactDecimal.encodedSize))
        withUnsafeMutableBytes { bytes in
            value.encode(into: UnsafeMutableRawBufferPointer(rebasing: bytes[start..<(start + ExactDecimal.encodedSize)]))
        }
    }

    /// Appends a string of any length behind its u32 length.
    @inline(__always)
    mutating func appendLongString(_ value: String) {
        var value = value
        value.withUTF8 { bytes in
            appendBigEndian(UInt32(truncatingIfNeeded: bytes.count))
            append(contentsOf: bytes)
        }
    }

    /// Appends a string of at most 255 bytes behind its length byte.
    @inline(__always)
    mutating func appendShortString(_ value: String) {
        var value = value
        value.withUTF8 { bytes in
            append(UInt8(truncatingIfNeeded: bytes.count))
            append(contentsOf: bytes)
        }
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func loadBigEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    func loadBigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    func loadOrderedInt64(at offset: Int) -> Int64 {
        Int64(bitPattern: loadBigEndianUInt64(at: offset) ^ (1 << 63))
    }
}

extension ReadableTransaction where Self: ~Copyable {
    /// Calls `body` for every entry of `database` whose key starts with `prefix`, in key order.
    func forEach(_ database: Database, prefix: [UInt8],
                 _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Void) throws {
        try withCursor(database) { cursor in
            try cursor.forEach(prefix: prefix) { key, value in
                try body(key, value)
                return true
            }
        }
    }
}
