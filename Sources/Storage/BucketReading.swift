import LMDB
public import Metering

/// One stored usage bucket: a meter's aggregate for one customer and group over a quarter-hour
/// or a UTC day, as the store holds it at the read's instant (logged state overlaid on
/// `usage_buckets`).
public struct StoredBucket: Sendable {
    public var customer: String
    public var resolution: BucketResolution
    /// The bucket's start, nanoseconds since the epoch (UTC).
    public var start: Int64
    /// The group-by values, in the meter's `group_by` order.
    public var group: [GroupValue]
    /// Events counted into the bucket.
    public var eventCount: UInt64
    /// The bucket's own aggregate: its sum, count, maximum, minimum, latest value, or its number
    /// of distinct values.
    public var quantity: ExactDecimal
    /// For `latest`: the time (ns) of the event whose value `quantity` holds.
    public var latestTime: Int64
    /// For a `unique_count` read: the bucket's distinct values (exact bytes; a value too long for
    /// an LMDB key as 0xFF ‖ its hash), so windows and totals can count values across buckets.
    public var uniqueValues: [[UInt8]]
}

/// Which customers a bucket read covers.
public enum BucketCustomers: Sendable {
    /// Exactly these customers (in this order), whether or not they have buckets.
    case only([String])
    /// Every customer with a bucket of the meter in the ranges, in key order, after the one
    /// `after` names (a cursor from `BucketReadResult.last`), at most `limit` of them.
    case all(after: [UInt8]?, limit: Int)
}

/// A range of bucket starts of one resolution, `from` inclusive, `to` exclusive (ns).
public struct BucketRange: Sendable, Hashable {
    public var resolution: BucketResolution
    public var from: Int64
    public var to: Int64

    public init(resolution: BucketResolution, from: Int64, to: Int64) {
        self.resolution = resolution
        self.from = from
        self.to = to
    }
}

/// What one bucket read visited.
public struct BucketReadResult: Sendable {
    /// The customers visited, in order (each once, with or without buckets).
    public var customers: [String]
    /// With `.all`: the key of the last customer visited (a cursor for the next read) when more
    /// customers may follow; nil when the read reached the end.
    public var last: [UInt8]?
}

extension TallyStore {
    /// Reads, in one read transaction, every bucket of `meter` in `ranges` for `customers`, and
    /// calls `body` once per customer (in order) with its buckets. With `uniqueValues`, each
    /// bucket carries its distinct values.
    public func readBuckets(
        meter: String, customers: BucketCustomers, ranges: [BucketRange], uniqueValues: Bool,
        _ body: (_ customer: String, _ buckets: [StoredBucket]) throws -> Void
    ) throws(StoreError) -> BucketReadResult {
        guard let database = usageBuckets else { return BucketReadResult(customers: [], last: nil) }
        return try readStore("read usage buckets") { transaction in
            var reader = BucketScan(store: self, database: database, meter: meter, ranges: ranges, uniqueValues: uniqueValues)
            switch customers {
            case .only(let list):
                for customer in list {
                    let logged = try reader.logged(customer: customer, transaction: transaction)
                    try body(customer, try reader.buckets(customer: customer, logged: logged, transaction: transaction))
                }
                return BucketReadResult(customers: list, last: nil)
            case .all(let after, let limit):
                let logged = try reader.loggedByCustomer(transaction: transaction)
                // Customers only the log knows yet (their first buckets since the last fold), in key order.
                var logOnly = logged.keys.map { (Self.customerCursor($0), $0) }
                    .filter { entry in after.map { $0.lexicographicallyPrecedes(entry.0) } ?? true }
                    .sorted { $0.0.lexicographicallyPrecedes($1.0) }[...]
                var visited: [String] = []
                var position = after
                var base: [String] = []
                var baseExhausted = false
                while true {
                    if base.isEmpty, !baseExhausted {
                        base = try reader.customersInBase(after: position, limit: 256, transaction: transaction)
                        baseExhausted = base.count < 256
                        base.reverse()
                    }
                    // The next customer in key order, from the base or the log.
                    let next: String
                    if let candidate = base.last, logOnly.first.map({ !$0.0.lexicographicallyPrecedes(Self.customerCursor(candidate)) }) ?? true {
                        next = base.removeLast()
                        if let first = logOnly.first, first.1 == next { logOnly.removeFirst() }
                    } else if let first = logOnly.first {
                        next = first.1
                        logOnly.removeFirst()
                    } else {
                        return BucketReadResult(customers: visited, last: nil)
                    }
                    position = Self.customerCursor(next)
                    let buckets = try reader.buckets(customer: next, logged: logged[next] ?? [:], transaction: transaction)
                    guard !buckets.isEmpty else { continue }
                    if visited.count == limit {
                        // One more customer has usage: the page ends before it.
                        return BucketReadResult(customers: visited, last: Self.customerCursor(visited[visited.count - 1]))
                    }
                    visited.append(next)
                    try body(next, buckets)
                }
            }
        }
    }

    /// The cursor position of a customer: its key prefix in `usage_buckets` (length byte ‖ id),
    /// which is the order `.all` visits customers in.
    public static func customerCursor(_ customer: String) -> [UInt8] {
        var key: [UInt8] = []
        key.appendShortString(customer)
        return key
    }
}

/// The work of one `readBuckets`: seeks per customer and range, the log overlay, decoding.
private struct BucketScan {
    let store: TallyStore
    let database: Database
    let meter: String
    let ranges: [BucketRange]
    let uniqueValues: Bool
    var key: [UInt8] = []

    init(store: TallyStore, database: Database, meter: String, ranges: [BucketRange], uniqueValues: Bool) {
        self.store = store
        self.database = database
        self.meter = meter
        self.ranges = ranges
        self.uniqueValues = uniqueValues
    }

    /// The logged bucket states of `customer` × the meter (newest record wins).
    func logged(customer: String, transaction: borrowing ReadTransaction) throws -> [[UInt8]: [UInt8]] {
        var prefix: [UInt8] = []
        BucketKey.prefix(customer: customer, meter: meter, into: &prefix)
        return try UsageLogReader.newest(in: transaction, log: store.usageLog, family: .buckets, prefix: prefix)
    }

    /// Every logged bucket state of the meter, by customer: one walk of the log for all customers.
    func loggedByCustomer(transaction: borrowing ReadTransaction) throws -> [String: [[UInt8]: [UInt8]]] {
        var result: [String: [[UInt8]: [UInt8]]] = [:]
        for (key, value) in try UsageLogReader.newest(in: transaction, log: store.usageLog, family: .buckets, prefix: []) {
            let matches = key.withUnsafeBytes { bytes -> String? in
                guard let customer = BucketKey.customer(in: bytes), BucketKey.resolutionOffset(in: bytes) != nil else { return nil }
                let meterAt = 1 + Int(bytes[0])
                let meterBytes = UnsafeRawBufferPointer(rebasing: bytes[(meterAt + 1)..<(meterAt + 1 + Int(bytes[meterAt]))])
                return meterBytes.elementsEqual(meter.utf8) ? customer : nil
            }
            if let customer = matches { result[customer, default: [:]][key] = value }
        }
        return result
    }

    /// Up to `limit` customers after `after` (a cursor) that have some bucket in `usage_buckets`,
    /// of any meter (the caller skips those without buckets of this one in the ranges).
    func customersInBase(after: [UInt8]?, limit: Int, transaction: borrowing ReadTransaction) throws -> [String] {
        var customers: [String] = []
        try transaction.withCursor(database) { cursor in
            var seek = after.flatMap { $0.prefixSuccessor() } ?? []
            while customers.count < limit {
                let entry = seek.isEmpty ? try cursor.first() : try cursor.seek(atLeast: seek)
                guard let (key, _) = entry, let customer = BucketKey.customer(in: key) else { return }
                customers.append(customer)
                guard let next = TallyStore.customerCursor(customer).prefixSuccessor() else { return }
                seek = next
            }
        }
        return customers
    }

    /// The buckets of `customer` × the meter in the ranges: base rows with logged states laid over.
    mutating func buckets(customer: String, logged: [[UInt8]: [UInt8]], transaction: borrowing ReadTransaction) throws -> [StoredBucket] {
        var buckets: [StoredBucket] = []
        var seen = Set<[UInt8]>()
        for range in ranges where range.from < range.to {
            BucketKey.seek(customer: customer, meter: meter, resolution: range.resolution, start: range.from, into: &key)
            let rangePrefix = Array(key.prefix(key.count - 8))
            try transaction.withCursor(database) { cursor in
                var entry = try cursor.seek(atLeast: key)
                while let (rowKey, value) = entry, rowKey.starts(with: rangePrefix) {
                    guard let (_, start) = BucketKey.bucket(in: rowKey), start < range.to else { break }
                    // A copy of the key only when the log may hold a newer state of it.
                    let keyBytes = logged.isEmpty ? [] : Array(rowKey)
                    if !logged.isEmpty, let newer = logged[keyBytes] {
                        seen.insert(keyBytes)
                        try newer.withUnsafeBytes { buckets.append(try decode(customer: customer, key: rowKey, value: $0, transaction: transaction)) }
                    } else {
                        buckets.append(try decode(customer: customer, key: rowKey, value: value, transaction: transaction))
                    }
                    entry = try cursor.next()
                }
            }
        }
        for (keyBytes, value) in logged where !seen.contains(keyBytes) {
            let inRange = keyBytes.withUnsafeBytes { bytes in
                BucketKey.bucket(in: bytes).map { bucket in
                    ranges.contains { $0.resolution == bucket.resolution && $0.from <= bucket.start && bucket.start < $0.to }
                } ?? false
            }
            guard inRange else { continue }
            try keyBytes.withUnsafeBytes { key in
                try value.withUnsafeBytes { buckets.append(try decode(customer: customer, key: key, value: $0, transaction: transaction)) }
            }
        }
        return buckets
    }

    private func decode(customer: String, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                        transaction: borrowing ReadTransaction) throws -> StoredBucket {
        guard let (resolution, start) = BucketKey.bucket(in: key), let state = AggregateState(decoding: value) else {
            throw StoreError(.incompatible, "a usage bucket of customer '\(customer)' is damaged")
        }
        var values: [[UInt8]] = []
        if uniqueValues, let unique = store.bucketUniqueValues {
            var prefix: [UInt8] = []
            store.hashKeys.hash(key).append(to: &prefix)
            try transaction.forEach(unique, prefix: prefix) { valueKey, _ in
                values.append(Array(valueKey[prefix.count...]))
            }
        }
        return StoredBucket(customer: customer, resolution: resolution, start: start, group: state.group,
                            eventCount: state.eventCount, quantity: state.quantity, latestTime: state.latestTime,
                            uniqueValues: values)
    }
}
