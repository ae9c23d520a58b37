import LMDB
import Metering

/// The credit step's changes to `credit_applied`, logged: each group commit appends one sorted
/// `UsageLogRecord` of them to `credit_log` under its stamp, and every `foldEvery` records the
/// writer folds the newest of each key into `credit_applied` (sorted, in one commit) and empties the
/// log. Readers overlay the log on `credit_applied` (`TallyStore.applications`).
///
/// Why: with credits on tens of thousands of customers in random order, a commit changes an
/// application of most customers it touched; written in place, each was a random B-tree put, and
/// together they cost more than the rest of the credit step. Appending one record is one write.
struct CreditLogBuffer {

    /// One changed application: its key's bytes in `keys`, its amount (0: the row is deleted).
    private struct Row {
        /// The key's first 16 bytes as big-endian integers (zero-padded): most comparisons stop here.
        var head: UInt64
        var next: UInt64
        var start: Int32
        var count: Int32
        var amount: ExactDecimal
    }

    let foldEvery: Int
    private var keys: [UInt8] = []
    private var rows: [Row] = []
    private var order: [Int32] = []
    private var record: [UInt8] = []
    /// Records in `credit_log` as last committed.
    private var committedRecords: Int
    /// Records once the running commit lands.
    private var recordsAfterCommit: Int

    /// `foldEvery`: records logged before a commit folds them (what a reader overlays at most).
    init(foldEvery: Int, records: Int) {
        self.foldEvery = max(1, foldEvery)
        committedRecords = records
        recordsAfterCommit = records
    }

    /// Forgets what a commit that did not land logged (the body runs from scratch).
    mutating func begin() {
        keys.removeAll(keepingCapacity: true)
        rows.removeAll(keepingCapacity: true)
        recordsAfterCommit = committedRecords
    }

    /// The running commit's write of an application: `amount` 0 deletes it.
    mutating func log(key: [UInt8], amount: ExactDecimal) {
        var head: UInt64 = 0
        var next: UInt64 = 0
        for index in 0..<8 { head = head << 8 | UInt64(index < key.count ? key[index] : 0) }
        for index in 8..<16 { next = next << 8 | UInt64(index < key.count ? key[index] : 0) }
        rows.append(Row(head: head, next: next, start: Int32(keys.count), count: Int32(key.count), amount: amount))
        keys.append(contentsOf: key)
    }

    /// Appends the commit's record under `stamp`, then folds the log when it holds `foldEvery` records.
    mutating func write(stamp: UInt64, log: Database, applied: Database, transaction: borrowing WriteTransaction) throws {
        if !rows.isEmpty {
            sortRows()
            UsageLogRecord.encode(order.count, into: &record) { _ in .creditApplied } key: { index, buffer in
                let row = rows[Int(order[index])]
                buffer.append(contentsOf: keys[Int(row.start)..<Int(row.start + row.count)])
            } value: { index, buffer in
                let amount = rows[Int(order[index])].amount
                if amount > .zero { buffer.appendDecimal(amount) }
            }
            var stampKey: [UInt8] = []
            stampKey.appendBigEndian(stamp)
            _ = try transaction.put(log, key: stampKey, value: record, flags: .append)
            recordsAfterCommit += 1
        }
        if recordsAfterCommit >= foldEvery { try fold(log: log, applied: applied, transaction: transaction) }
    }

    /// The commit landed: what it logged is the log's.
    mutating func committed() {
        committedRecords = recordsAfterCommit
    }

    /// Writes the newest logged value of every key into `applied`, in key order, and empties the log.
    private mutating func fold(log: Database, applied: Database, transaction: borrowing WriteTransaction) throws {
        let newest = try UsageLogReader.newest(in: transaction, log: log, family: .creditApplied, prefix: [])
        for key in newest.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let value = newest[key]!
            if value.isEmpty {
                _ = try transaction.delete(applied, key: key)
            } else {
                _ = try transaction.put(applied, key: key, value: value)
            }
        }
        var stamps: [[UInt8]] = []
        try transaction.forEach(log, prefix: []) { key, _ in stamps.append(Array(key)) }
        for stamp in stamps { _ = try transaction.delete(log, key: stamp) }
        recordsAfterCommit = 0
    }

    /// `order`: the rows by key, one per key (the last logged wins).
    private mutating func sortRows() {
        let rows = rows, keys = keys
        order.removeAll(keepingCapacity: true)
        order.append(contentsOf: (0..<Int32(rows.count)))
        order.sort { left, right in
            let a = rows[Int(left)], b = rows[Int(right)]
            if a.head != b.head { return a.head < b.head }
            if a.next != b.next { return a.next < b.next }
            let ordered = Self.compare(a, b, in: keys)
            return ordered != 0 ? ordered < 0 : left < right
        }
        var kept = 0
        for index in order.indices {
            if kept > 0, Self.compare(rows[Int(order[kept - 1])], rows[Int(order[index])], in: keys) == 0 {
                order[kept - 1] = order[index]
            } else {
                order[kept] = order[index]
                kept += 1
            }
        }
        order.removeSubrange(kept...)
    }

    private static func compare(_ a: Row, _ b: Row, in keys: [UInt8]) -> Int {
        keys.withUnsafeBufferPointer { bytes in
            let shorter = Int(min(a.count, b.count))
            for offset in 0..<shorter {
                let x = bytes[Int(a.start) + offset], y = bytes[Int(b.start) + offset]
                if x != y { return x < y ? -1 : 1 }
            }
            return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
        }
    }
}
