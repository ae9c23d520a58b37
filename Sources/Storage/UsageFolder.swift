import Foundation
import Glibc
import LMDB
import Metering

/// The writer's side of `usage_log`: what each commit logs, and the folding of logged states into
/// `usage`, a sorted slice inside each later commit (see `UsageLogRecord` for why).
///
/// `table` holds every aggregate the log holds (dirty: `usage` lacks its state) and, up to
/// `UsageFoldPolicy.retainedAggregates`, folded ones (clean), so a commit seldom reads a `usage`
/// row. A fold pass starts when the log holds twice as many entries as there are dirty keys (and at
/// least `UsageFoldPolicy.minimumLoggedEntries`), or `UsageFoldPolicy.maximumRecords` records: the
/// dirty keys are sorted on a helper thread, a later commit starts writing them in key order, a
/// slice per commit, and the commit that writes the last slice deletes the records the pass
/// covered. Every dirty key whose newest record the pass covers is in the pass, so no record is
/// deleted before `usage` has its key's state. Owned by the writer thread, like `StoreWriter`.
final class UsageFolder {
    /// One aggregate in memory. A reference, so that a commit, its journal and a fold pass reach
    /// it without hashing its key again (three lookups per event otherwise became six).
    final class Entry {
        /// The entry's key (sharing its bytes with the table's key).
        let key: UsageKeyBytes
        var state: AggregateState
        /// The stamp of the newest commit that changed this aggregate (its `usage_log` record).
        var stamp: UInt64
        /// Whether its table has a row for the key (with an older state, or this one after a fold).
        var inBase: Bool
        /// Whether its table lacks this state: set by every change, cleared when a fold slice
        /// wrote it and no later record holds the key.
        var dirty = true
        /// Whether the folder's table holds this entry: false once it left it, so that a link to
        /// it (below) is no longer followed.
        var isInTable = true
        /// A bucket's start (nanoseconds since the epoch), for a link to compare with an event's.
        var bucketStart: Int64 = 0
        /// A period aggregate's link to the quarter-hour bucket its latest event folded into: the
        /// next event of the same customer × meter × group in the same quarter-hour finds its
        /// three aggregates with the one lookup of its period key.
        var quarterLink: Entry?
        /// A period aggregate's link to the UTC-day bucket its latest event folded into.
        var dayLink: Entry?
        /// A period aggregate of a customer with credits: its amount as the credit step last rated it.
        var creditLine: CreditLine?

        init(key: UsageKeyBytes, state: AggregateState, stamp: UInt64, inBase: Bool) {
            self.key = key
            self.state = state
            self.stamp = stamp
            self.inBase = inBase
        }

        /// The fields as they were before a commit changed them, for a rollback.
        struct Saved {
            var state: AggregateState
            var stamp: UInt64
            var inBase: Bool
            var dirty: Bool
        }

        var saved: Saved { Saved(state: state, stamp: stamp, inBase: inBase, dirty: dirty) }

        func restore(_ saved: Saved) {
            state = saved.state
            stamp = saved.stamp
            inBase = saved.inBase
            dirty = saved.dirty
        }
    }

    /// An entry, which knows its key: what dirty lists and fold passes hold (one reference each).
    typealias Keyed = Entry

    /// A fold pass under way: the keys to write, sorted, how many are written, and the newest
    /// record it covers (every record up to it is deleted when the pass ends).
    ///
    /// A key in a pass or in `dirtyKeys` is dirty, and a dirty entry never leaves the table, so
    /// the entries these lists hold are the table's.
    struct Pass {
        var keys: [Keyed]
        var written: Int
        var through: UInt64
        var isComplete: Bool { written == keys.count }
    }

    private let store: TallyStore
    private let policy: UsageFoldPolicy
    /// Every aggregate the log holds, with this commit's changes already in (undone by `rollBack`).
    private var table: [UsageKeyBytes: Entry] = [:]
    /// This commit's first change of each key, with the entry's fields before it (nil: the
    /// commit added the key), in order.
    /// (Two arrays, not an array of tuples: reading a tuple's element copied the whole tuple,
    /// three retains and releases per entry in every commit's record.)
    private var journal: [Entry] = []
    private var journalPrevious: [Entry.Saved?] = []
    private var journalStamp: UInt64 = 0
    /// Logged keys `usage` has no row for, by prefix (customer ‖ period start): the limit check
    /// finds a customer's rows in `usage` and these.
    private var newKeysByPrefix: [UsageKeyBytes: [UsageKeyBytes]] = [:]
    /// Every period row of a customer's period, as table entries in key order, for the prefixes
    /// (customer ‖ period start) the limit and credit step read: read from `usage` once, then kept
    /// whole in memory, so the next commit touching the customer reads no LMDB row. A prefix is
    /// dropped when one of its entries leaves the table.
    private var completeRows: [UsageKeyBytes: CompleteRows] = [:]
    /// The `usage_log` records, oldest first, with their entry counts.
    private var records: [(stamp: UInt64, entries: Int)] = []
    private var loggedEntries = 0
    /// How many entries of `table` are dirty: the keys the records hold.
    private var dirtyCount = 0
    /// The dirty keys no pass has taken yet, in the order they became dirty: the next pass's keys,
    /// handed over without walking the table.
    private var dirtyKeys: [Keyed] = []
    /// `dirtyKeys.count` before this commit's first change (what a rollback truncates to).
    private var dirtyKeysBeforeCommit = 0
    private(set) var pass: Pass?
    /// What `write` decided for the pass, applied by `committed`.
    private var nextPass: Pass?
    /// A sorted pass taken from the sorter and not yet started by a commit that succeeded: kept
    /// across a failed commit, since its keys are in no other list.
    private var readyPass: Pass?
    /// The key `current` looked up last, in a buffer reused for every event; `set` copies it into
    /// a key of its own size only when the table gains it.
    private var probe = UsageKeyBytes([])
    /// The prefix `usage(prefix:)` looks up last, in a buffer reused for every touched customer.
    private var prefixProbe = UsageKeyBytes([])
    /// Sorts the keys of the next pass off the writer thread.
    private let sorter = PassSorter()
    /// Bumped when the table is emptied, so that a sort started before is not used after.
    private var generation = 0
    private var recordBuffer: [UInt8] = []
    /// A journal entry's place in key order, as integers.
    private struct SortItem {
        var family: UInt8
        var head: UInt64
        var next: UInt64
        var index: Int32
    }
    private var order: [SortItem] = []
    /// The stamp (ms since the epoch) of the last commit that succeeded.
    private var lastCommittedStamp: UInt64 = 0
    private var valueBuffer: [UInt8] = []

    /// Loads the records a previous run left (a crash, or a stop before its fold finished).
    init(store: TallyStore, policy: UsageFoldPolicy, transaction: borrowing some ReadableTransaction & ~Copyable) throws {
        self.store = store
        self.policy = policy
        guard let log = store.usageLog else { return }
        try transaction.forEach(log, prefix: []) { key, value in
            let stamp = key.loadBigEndianUInt64(at: 0)
            guard let view = UsageLogView(value) else { throw StoreError(.incompatible, "a usage_log record is damaged") }
            for index in 0..<view.count {
                guard let entry = view.entry(index), UsageLogRecord.Family(rawValue: entry.family) != nil,
                      let state = AggregateState(decoding: entry.value) else {
                    throw StoreError(.incompatible, "a usage_log record is damaged")
                }
                let key = UsageKeyBytes(entry.key, family: entry.family)
                table[key] = Entry(key: key, state: state, stamp: stamp, inBase: false)
            }
            records.append((stamp, view.count))
            loggedEntries += view.count
        }
        for (key, entry) in table {
            if let base = store.base(of: key.family), try transaction.get(base, key: key.bytes) != nil { entry.inBase = true }
        }
        for (key, entry) in table where !entry.inBase && key.family == UsageLogRecord.Family.periodUsage.rawValue {
            newKeysByPrefix[key.prefix, default: []].append(key)
        }
        dirtyCount = table.count
        dirtyKeys = Array(table.values)
    }

    // MARK: One commit

    /// Where `current` found an aggregate, for `set` to write it back without hashing again.
    typealias Slot = Entry
    /// What `current` found: the aggregate's state, whether its table has a row for it, and its
    /// entry (nil: the table of logged aggregates lacks it).
    typealias Found = (state: AggregateState, inBase: Bool, slot: Slot?)

    /// The aggregate at the key `bytes` of `family` as the store holds it (logged, else its table:
    /// `usage` or `usage_buckets`), or nil when new. `set` then writes that key.
    func current(_ bytes: [UInt8], family: UsageLogRecord.Family = .periodUsage, transaction: borrowing WriteTransaction)
        throws -> Found? {
        probe.assign(bytes, family: family.rawValue)
        if let entry = table[probe] {
            return (entry.state, entry.inBase, entry)
        }
        guard let base = store.base(of: family.rawValue), let stored = try transaction.get(base, key: bytes) else { return nil }
        guard let state = stored.withUnsafeBytes({ AggregateState(decoding: $0) }) else {
            throw StoreError(.incompatible, "a usage record is damaged")
        }
        return (state, true, nil)
    }

    /// Sets the aggregate at `bytes` of `family`, for the commit stamped `stamp`; `slot` is what
    /// `current` returned for it (nil: the table lacks the key). Returns the table's entry for it.
    @discardableResult
    func set(_ state: AggregateState, inBase: Bool, slot: Slot?, key bytes: [UInt8],
             family: UsageLogRecord.Family = .periodUsage, stamp: UInt64) -> Entry {
        if journalStamp != stamp {
            journal.removeAll(keepingCapacity: true)
            journalPrevious.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
            journalStamp = stamp
            dirtyKeysBeforeCommit = dirtyKeys.count
        }
        if let entry = slot {
            guard entry.stamp != stamp else {
                entry.state = state
                return entry
            }
            let wasDirty = entry.dirty
            appendToJournal(entry, previous: entry.saved)
            entry.state = state
            entry.stamp = stamp
            entry.inBase = inBase
            entry.dirty = true
            if !wasDirty {
                dirtyCount += 1
                dirtyKeys.append(entry)
            }
            return entry
        } else {
            let key = UsageKeyBytes(bytes, family: family.rawValue)
            let entry = Entry(key: key, state: state, stamp: stamp, inBase: inBase)
            table[key] = entry
            appendToJournal(entry, previous: nil)
            if !inBase, family == .periodUsage {
                let prefix = key.prefix
                newKeysByPrefix[prefix, default: []].append(key)
                completeRows[prefix]?.insert(entry)
            }
            dirtyCount += 1
            dirtyKeys.append(entry)
            return entry
        }
    }

    /// Adds `entry` to this commit's journal, with its place in key order taken now, while the
    /// entry is in the cache (a walk over the journal later would miss it for every entry).
    private func appendToJournal(_ entry: Entry, previous: Entry.Saved?) {
        let (head, next) = entry.key.sortWords
        order.append(SortItem(family: entry.key.family, head: head, next: next, index: Int32(journal.count)))
        journal.append(entry)
        journalPrevious.append(previous)
    }

    /// Undoes every `set` of the commit stamped `stamp` (it failed, or its transaction runs again).
    func rollBack(stamp: UInt64) {
        guard journalStamp == stamp else { return }
        // Rare (a failed commit, or one run again after the map grew): rebuilt from `usage` as needed.
        dropCompleteRows()
        for (entry, previous) in zip(journal, journalPrevious).reversed() {
            let key = entry.key
            if !(previous?.dirty ?? false) { dirtyCount -= 1 }
            if let previous {
                entry.restore(previous)
            } else {
                entry.isInTable = false
                if table.removeValue(forKey: key) != nil, !entry.inBase, key.family == 0 {
                    newKeysByPrefix[key.prefix]?.removeAll { $0 == key }
                }
            }
        }
        journal.removeAll(keepingCapacity: true)
        journalPrevious.removeAll(keepingCapacity: true)
        order.removeAll(keepingCapacity: true)
        dirtyKeys.removeSubrange(min(dirtyKeysBeforeCommit, dirtyKeys.count)...)
        nextPass = nil
    }

    /// Writes the record of the commit stamped `stamp` and the next slice of the fold pass
    /// (starting one when due), in the commit's transaction.
    func write(stamp: UInt64, previousStamp: UInt64, eventCount: Int, transaction: borrowing WriteTransaction) throws {
        guard let log = store.usageLog else { throw StoreError(.unavailable, "the store has no usage_log database") }
        // The record lists the changed keys sorted: their order is sorted as plain integers (the
        // family and the first 16 key bytes), the full keys compared only on a tie.
        if journalStamp != stamp {
            journal.removeAll(keepingCapacity: true)
            journalPrevious.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
        }
        let changedCount = journal.count
        if changedCount > 0 {
            order.sort { left, right in
                if left.family != right.family { return left.family < right.family }
                if left.head != right.head { return left.head < right.head }
                if left.next != right.next { return left.next < right.next }
                return journal[Int(left.index)].key < journal[Int(right.index)].key
            }
            UsageLogRecord.encode(changedCount, into: &recordBuffer) { index in
                UsageLogRecord.Family(rawValue: order[index].family)!
            } key: { index, buffer in
                buffer.append(contentsOf: journal[Int(order[index].index)].key.bytes)
            } value: { index, buffer in
                journal[Int(order[index].index)].state.append(to: &buffer)
            }
            var stampKey: [UInt8] = []
            stampKey.appendBigEndian(stamp)
            _ = try transaction.put(log, key: stampKey, value: recordBuffer, flags: .append)
        }
        var next = pass
        if next == nil {
            if readyPass == nil, let sorted = sorter.take(generation: generation) {
                readyPass = Pass(keys: sorted.keys, written: 0, through: sorted.through)
            }
            if let readyPass {
                next = readyPass
            } else if sorter.isIdle, isFoldDue(adding: changedCount) {
                // Sorting a few hundred thousand keys would hold up this commit: a helper thread
                // sorts them, and a later commit starts the pass. Keys changed from now on have a
                // newer stamp than `through`: their records outlive the pass.
                // Every key dirty before this commit; those this commit made dirty stay for the next.
                let before = journalStamp == stamp ? dirtyKeysBeforeCommit : dirtyKeys.count
                sorter.sort(Array(dirtyKeys[..<before]), through: previousStamp, generation: generation)
                dirtyKeys.removeSubrange(..<before)
                dirtyKeysBeforeCommit = 0
            }
        }
        nextPass = next
        guard var next else { return }
        let end = min(next.keys.count, next.written + max(policy.minimumSliceSize, 2 * eventCount))
        for entry in next.keys[next.written..<end] {
            let key = entry.key
            guard let base = store.base(of: key.family) else { continue }
            entry.state.encode(into: &valueBuffer)
            _ = try transaction.put(base, key: key.bytes, value: valueBuffer)
        }
        next.written = end
        if next.isComplete {
            var stampKey: [UInt8] = []
            for record in records where record.stamp <= next.through {
                stampKey.removeAll(keepingCapacity: true)
                stampKey.appendBigEndian(record.stamp)
                _ = try transaction.delete(log, key: stampKey)
            }
        }
        nextPass = next
    }

    /// Takes in the commit stamped `stamp`, which succeeded: its changes stay, and the fold pass
    /// moves on (or ends, and the records it covered are gone).
    func committed(stamp: UInt64) {
        lastCommittedStamp = stamp
        if journalStamp == stamp, !journal.isEmpty {
            records.append((stamp, journal.count))
            loggedEntries += journal.count
        }
        journal.removeAll(keepingCapacity: true)
        journalPrevious.removeAll(keepingCapacity: true)
        order.removeAll(keepingCapacity: true)
        guard let next = nextPass else { return }
        nextPass = nil
        readyPass = nil
        // The slice this commit wrote is in `usage` now (`settle`).
        for entry in next.keys[(pass?.written ?? 0)..<next.written] { settle(entry.key, entry, through: next.through) }
        if next.isComplete {
            pass = nil
            records.removeAll { $0.stamp <= next.through }
            loggedEntries = records.reduce(0) { $0 + $1.entries }
        } else {
            pass = next
        }
    }

    /// A key whose state a committed fold slice wrote into `usage`. It stays in memory, clean
    /// (a later commit touching it reads no LMDB row), unless memory holds more than
    /// `UsageFoldPolicy.retainedAggregates`.
    private func settle(_ key: UsageKeyBytes, _ entry: Entry, through: UInt64) {
        if !entry.inBase {
            if key.family == 0 { newKeysByPrefix[key.prefix]?.removeAll { $0 == key } }
            entry.inBase = true
        }
        // A key changed after `through` has a newer record: it stays dirty, for the next pass.
        guard entry.stamp <= through else {
            if entry.dirty { dirtyKeys.append(entry) }
            return
        }
        guard entry.dirty else { return }
        dirtyCount -= 1
        entry.dirty = false
        // A directory entry is looked up only when a customer's usage row is new: no need to keep it.
        if table.count > policy.retainedAggregates || isPastBucket(key) || key.family == UsageLogRecord.Family.customers.rawValue {
            entry.isInTable = false
            table.removeValue(forKey: key)
            if key.family == UsageLogRecord.Family.periodUsage.rawValue, !completeRows.isEmpty {
                completeRows.removeValue(forKey: key.prefix)?.dropped()
            }
        }
    }

    // MARK: Reading

    /// A customer's usage in one period as this commit leaves it: `usage` rows overlaid with the
    /// logged states, in key order (what the limit check counts).
    func usage(prefix: [UInt8], transaction: borrowing WriteTransaction) throws -> [UsageRecord] {
        switch try periodRows(prefix: prefix, transaction: transaction) {
        case .complete(let rows): rows.entries.compactMap { Self.record($0.key, $0.state) }
        case .records(let records): records
        }
    }

    /// A customer's period rows as `usage(prefix:transaction:)` reads them, as the entries
    /// themselves when they are kept whole (so a caller can keep them and see later commits' states).
    func periodRows(prefix: [UInt8], transaction: borrowing WriteTransaction) throws -> PeriodRows {
        prefixProbe.assign(prefix, family: 0)
        if let complete = completeRows[prefixProbe] { return .complete(complete) }
        let rows = try rows(prefix: prefix, transaction: transaction)
        if table.count + rows.count <= policy.retainedAggregates {
            // Kept whole from now on: rows `usage` holds that the table lacks join it, clean.
            var entries: [Entry] = []
            entries.reserveCapacity(rows.count)
            for row in rows {
                if let entry = table[row.key] {
                    entries.append(entry)
                } else {
                    let entry = Entry(key: row.key, state: row.state, stamp: 0, inBase: true)
                    entry.dirty = false
                    table[row.key] = entry
                    entries.append(entry)
                }
            }
            let complete = CompleteRows(entries: entries)
            completeRows[UsageKeyBytes(prefix)] = complete
            return .complete(complete)
        }
        return .records(rows.compactMap { Self.record($0.key, $0.state) })
    }

    private func dropCompleteRows() {
        for rows in completeRows.values { rows.dropped() }
        completeRows.removeAll()
    }

    private static func record(_ key: UsageKeyBytes, _ state: AggregateState) -> UsageRecord? {
        meter(of: key).map {
            UsageRecord(meter: $0, group: state.group, quantity: state.quantity, eventCount: state.eventCount)
        }
    }

    private func rows(prefix: [UInt8], transaction: borrowing WriteTransaction) throws -> [(key: UsageKeyBytes, state: AggregateState)] {
        var rows: [(key: UsageKeyBytes, state: AggregateState)] = []
        try transaction.forEach(store.usage, prefix: prefix) { key, value in
            let key = UsageKeyBytes(key)
            if let entry = table[key] {
                rows.append((key, entry.state))
            } else if let state = AggregateState(decoding: value) {
                rows.append((key, state))
            }
        }
        let added = newKeysByPrefix[UsageKeyBytes(prefix)] ?? []
        guard !added.isEmpty else { return rows }
        // A fold slice may already have written some of them into `usage`.
        let inBase = Set(rows.map(\.key))
        for key in added where !inBase.contains(key) {
            if let entry = table[key] { rows.append((key, entry.state)) }
        }
        return rows.sorted { $0.key < $1.key }
    }

    /// Folds every logged state into `usage` and deletes every record, in transactions of at most
    /// `sliceSize` rows: a store at rest then holds all its usage in `usage`, as stores did before
    /// the log existed. Called when the daemon stops.
    func foldAll(sliceSize: Int = 65_536) throws(StoreError) {
        guard let last = records.last?.stamp else { return }
        generation += 1  // a sort still running for a pass is of no use now
        var all = Pass(keys: table.values.filter(\.dirty).sorted { $0.key < $1.key }, written: 0, through: last)
        while !all.isComplete {
            let slice = all
            let written: Int = try store.writeStore("fold logged usage") { transaction in
                let end = min(slice.keys.count, slice.written + sliceSize)
                for entry in slice.keys[slice.written..<end] {
                    let key = entry.key
                    guard let base = store.base(of: key.family) else { continue }
                    entry.state.encode(into: &valueBuffer)
                    _ = try transaction.put(base, key: key.bytes, value: valueBuffer)
                }
                if end == slice.keys.count, let log = store.usageLog {
                    try transaction.deleteAll(log)
                }
                return end
            }
            all.written = written
        }
        for entry in table.values { entry.isInTable = false }
        table.removeAll()
        newKeysByPrefix.removeAll()
        dropCompleteRows()
        records.removeAll()
        loggedEntries = 0
        dirtyCount = 0
        dirtyKeys.removeAll()
        pass = nil
        nextPass = nil
        readyPass = nil
    }

    /// Whether `key` is a bucket that ended a while before the last commit: late events for it are
    /// rare, so once folded it leaves memory (the next one reads its row).
    private func isPastBucket(_ key: UsageKeyBytes) -> Bool {
        guard key.family == UsageLogRecord.Family.buckets.rawValue,
              let (resolution, start) = key.bytes.withUnsafeBytes({ BucketKey.bucket(in: $0) }) else { return false }
        let now = Int64(clamping: lastCommittedStamp) &* 1_000_000
        return start &+ resolution.nanoseconds &+ BucketResolution.quarterHour.nanoseconds < now
    }

    private func isFoldDue(adding entries: Int) -> Bool {
        records.count + 1 >= policy.maximumRecords
            || (loggedEntries + entries >= policy.minimumLoggedEntries && loggedEntries + entries >= 2 * dirtyCount)
    }
}

extension [UsageFolder.Entry] {
    /// Inserts `entry` at its place in key order (the lists are a customer's few rows).
    mutating func insertSorted(_ entry: UsageFolder.Entry) {
        let place = firstIndex { entry.key < $0.key } ?? endIndex
        insert(entry, at: place)
    }
}

/// Sorts a fold pass's keys on a helper thread; the writer takes the result when it is ready.
private final class PassSorter: @unchecked Sendable {
    private let lock = NSLock()
    private var running = false
    private var result: (keys: Keys, through: UInt64, generation: Int)?

    /// A pass's keys and entries, handed to the sorting thread: it reads only the keys (values)
    /// and moves the references; the entries' fields stay the writer thread's.
    struct Keys: @unchecked Sendable {
        var keys: [UsageFolder.Keyed]
    }

    /// Whether no sort runs and no result waits.
    var isIdle: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !running && result == nil
    }

    /// Starts sorting `keys` unless a sort is running or its result waits to be taken.
    func sort(_ keys: [UsageFolder.Keyed], through: UInt64, generation: Int) {
        let keys = Keys(keys: keys)
        lock.lock()
        defer { lock.unlock() }
        guard !running, result == nil else { return }
        running = true
        let thread = Thread { [self] in
            // Below the writer: on two cores, a sort at the same priority would take its CPU.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)  // Linux: 0 is the calling thread
            let sorted = Keys(keys: keys.keys.sorted { $0.key < $1.key })
            lock.lock()
            result = (sorted, through, generation)
            running = false
            lock.unlock()
        }
        thread.name = "tally-usage-fold"
        thread.start()
    }

    /// The sorted keys of a sort started in `generation`, once; nil while none is ready.
    func take(generation: Int) -> (keys: [UsageFolder.Keyed], through: UInt64)? {
        lock.lock()
        defer { lock.unlock() }
        guard let ready = result else { return nil }
        result = nil
        return ready.generation == generation ? (ready.keys.keys, ready.through) : nil
    }
}

/// When a fold pass starts and how much each commit writes of it.
public struct UsageFoldPolicy: Sendable {
    /// A pass starts when the log holds at least this many entries (and twice the pending keys)…
    public var minimumLoggedEntries: Int
    /// …or this many records, whatever their size (so a reader never walks more).
    public var maximumRecords: Int
    /// Rows each commit folds, at least (twice its events when that is more).
    public var minimumSliceSize: Int
    /// Folded aggregates kept in memory (so a commit reads no LMDB row for them) up to this many.
    public var retainedAggregates: Int

    /// The daemon's policy: about 350 MiB at most for retained aggregates.
    public static let standard = UsageFoldPolicy(minimumLoggedEntries: 65_536, maximumRecords: 512, minimumSliceSize: 4_096,
                                                 retainedAggregates: 1_000_000)

    public init(minimumLoggedEntries: Int, maximumRecords: Int, minimumSliceSize: Int, retainedAggregates: Int) {
        self.minimumLoggedEntries = minimumLoggedEntries
        self.maximumRecords = maximumRecords
        self.minimumSliceSize = minimumSliceSize
        self.retainedAggregates = retainedAggregates
    }
}
