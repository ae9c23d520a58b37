import LMDB
import Metering

/// One page of the customer directory.
public struct CustomerPage: Sendable, Hashable {
    /// Customer ids in byte order.
    public var customers: [String]
    /// Whether more customers follow the last one.
    public var hasMore: Bool

    public init(customers: [String], hasMore: Bool) {
        self.customers = customers
        self.hasMore = hasMore
    }
}

/// The customers the store knows (with usage in some period, a stored plan assignment or a stored
/// limit of their own), in byte order of id: `customer_index`.
///
/// The group commit adds a customer the first time one of its usage rows is new, through the
/// `usage_log` (family `customers`), so a commit's new customers are written in sorted fold slices
/// like its usage, not as random inserts; `tally customers set-plan` and `tally limits add` add
/// theirs directly. A reader overlays the log on the table, so a customer is listed from the
/// commit that first counted it. Ids are only ever added: paging by "ids after the last one" never
/// skips or repeats a customer that existed when paging began.
extension TallyStore {
    /// Up to `limit` known customers after `after` (exclusive) whose ids start with `prefix`, in
    /// byte order, merged with `additional` (ids the configuration knows, any order).
    public func customers(after: [UInt8]?, prefix: String = "", limit: Int, additional: [String] = []) throws(StoreError) -> CustomerPage {
        let start = Self.directoryStart(after: after, prefix: prefix)
        let prefixBytes = Array(prefix.utf8)
        var found = Set<[UInt8]>()
        for id in additional {
            let bytes = Array(id.utf8)
            if bytes.starts(with: prefixBytes), !bytes.lexicographicallyPrecedes(start) { found.insert(bytes) }
        }
        try readStore("list customers") { transaction in
            let wanted = limit + 1
            if let customerIndex, try transaction.get(meta, key: MetaKey.customerIndexBuilt) != nil {
                // When the index fills the page, a logged customer past its last id cannot be on it.
                var bound: [UInt8]?
                try transaction.withCursor(customerIndex) { cursor in
                    var entry = start.isEmpty ? try cursor.first() : try cursor.seek(atLeast: start)
                    var taken = 0
                    while let (key, _) = entry, taken < wanted, key.starts(with: prefixBytes) {
                        found.insert(Array(key))
                        taken += 1
                        if taken == wanted { bound = Array(key) }
                        entry = try cursor.next()
                    }
                }
                try Self.loggedCustomers(in: transaction, log: usageLog, from: start, through: bound, prefix: prefixBytes,
                                         limit: wanted) { found.insert($0) }
            } else {
                // A store no daemon of this version has opened yet: gather them the slow way.
                try Self.gatherKnownCustomers(in: transaction, store: self) { bytes in
                    if bytes.starts(with: prefixBytes), !bytes.lexicographicallyPrecedes(start) { found.insert(bytes) }
                }
            }
        }
        let sorted = found.sorted { $0.lexicographicallyPrecedes($1) }
        return CustomerPage(customers: sorted.prefix(limit).map { String(decoding: $0, as: UTF8.self) },
                            hasMore: sorted.count > limit)
    }

    /// Whether the store knows `customer`: usage in some period, a stored plan or limit of its own.
    public func knowsCustomer(_ customer: String) throws(StoreError) -> Bool {
        // An id sorts before every longer id it is a prefix of: it is the page's first, if known.
        try customers(after: nil, prefix: customer, limit: 1).customers.first == customer
    }

    /// Where a page starts: just after `after` (its bytes and a zero byte), else at `prefix`.
    static func directoryStart(after: [UInt8]?, prefix: String) -> [UInt8] {
        guard let after else { return Array(prefix.utf8) }
        var start = after
        start.append(0)
        let prefixBytes = Array(prefix.utf8)
        return start.lexicographicallyPrecedes(prefixBytes) ? prefixBytes : start
    }

    /// Calls `body` with the customers the log's records hold (not yet folded into the index) from
    /// `start` on (through `bound`, when given), at most `limit` per record, each record's in byte order.
    static func loggedCustomers(in transaction: borrowing some ReadableTransaction & ~Copyable, log: Database?,
                                from start: [UInt8], through bound: [UInt8]? = nil, prefix: [UInt8], limit: Int,
                                _ body: ([UInt8]) -> Void) throws {
        guard let log else { return }
        try transaction.withCursor(log) { cursor in
            var record = try cursor.first()
            while let (_, value) = record {
                guard let view = UsageLogView(value) else { throw StoreError(.incompatible, "a usage_log record is damaged") }
                var index = view.lowerBound(family: .customers, prefix: start)
                var taken = 0
                while index < view.count, taken < limit, let entry = view.entry(index),
                      entry.family == UsageLogRecord.Family.customers.rawValue, entry.key.starts(with: prefix) {
                    if let bound, bound.lexicographicallyPrecedes(entry.key) { break }
                    body(Array(entry.key))
                    taken += 1
                    index += 1
                }
                record = try cursor.next()
            }
        }
    }

    /// Every customer the store's tables know, from scratch: distinct customers of `usage` and of
    /// the log's usage entries, stored plan assignments, customer limits (`body` may see one twice).
    static func gatherKnownCustomers(in transaction: borrowing some ReadableTransaction & ~Copyable, store: TallyStore,
                                     _ body: ([UInt8]) -> Void) throws {
        // `usage` keys start with length ‖ customer: one seek per customer.
        try transaction.withCursor(store.usage) { cursor in
            var entry = try cursor.first()
            while let (key, _) = entry, key.count >= 1, key.count >= 1 + Int(key[0]) {
                let length = Int(key[0])
                body(Array(key[1..<(1 + length)]))
                guard let next = Array(key[0..<(1 + length)]).prefixSuccessor() else { return }
                entry = try cursor.seek(atLeast: next)
            }
        }
        if let log = store.usageLog {
            try transaction.forEach(log, prefix: []) { _, value in
                guard let view = UsageLogView(value) else { throw StoreError(.incompatible, "a usage_log record is damaged") }
                for index in 0..<view.count {
                    guard let entry = view.entry(index) else { continue }
                    switch UsageLogRecord.Family(rawValue: entry.family) {
                    case .periodUsage?:
                        guard entry.key.count >= 1, entry.key.count >= 1 + Int(entry.key[0]) else { continue }
                        body(Array(entry.key[1..<(1 + Int(entry.key[0]))]))
                    case .customers?:
                        body(Array(entry.key))
                    default:
                        continue
                    }
                }
            }
        }
        try transaction.forEach(store.customers, prefix: []) { key, _ in body(Array(key)) }
        for limit in try readLimits(transaction, store.limits) {
            if case .customer(let customer) = limit.scope { body(Array(customer.utf8)) }
        }
    }

    /// Fills `customer_index` once, in a store created before it existed (or a new one).
    func buildCustomerIndexIfNeeded() throws {
        guard let customerIndex else { return }
        try environment.write { transaction in
            guard try transaction.get(meta, key: MetaKey.customerIndexBuilt) == nil else { return }
            var gathered = Set<[UInt8]>()
            try Self.gatherKnownCustomers(in: transaction, store: self) { gathered.insert($0) }
            for customer in gathered.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                try Self.indexCustomer(customer, in: transaction, customerIndex)
            }
            _ = try transaction.put(meta, key: MetaKey.customerIndexBuilt, value: [])
            if !gathered.isEmpty { logger.info("customer directory built", metadata: ["customers": "\(gathered.count)"]) }
        }
    }

    /// Adds `customer` to the directory (a no-op when it is there), in a settings transaction.
    static func indexCustomer(_ customer: [UInt8], in transaction: borrowing WriteTransaction, _ customerIndex: Database?) throws {
        guard let customerIndex else { return }
        var value: [UInt8] = []
        AggregateState(group: []).encode(into: &value)
        _ = try transaction.put(customerIndex, key: customer, value: value, flags: .noOverwrite)
    }
}

/// The opaque cursor text of a list position (an id, a sequence): lowercase hex of its bytes.
/// The HTTP API's `next_cursor` and `tally customers list --cursor` use the same text.
public enum ListCursor {
    /// The cursor text of `bytes`.
    public static func encode(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The cursor text of a sequence number (an alert's): its 8 big-endian bytes.
    public static func encode(sequence: UInt64) -> String {
        var bytes: [UInt8] = []
        bytes.appendBigEndian(sequence)
        return encode(bytes)
    }

    /// The sequence number a cursor text names; nil when the text is not such a cursor.
    public static func sequence(_ text: String) -> UInt64? {
        guard let bytes = decode(text), bytes.count == 8 else { return nil }
        return bytes.withUnsafeBytes { $0.loadBigEndianUInt64(at: 0) }
    }

    /// The position a cursor text names; nil when the text is not a cursor.
    public static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.count % 2 == 0, digits.count <= 1024 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }
}
