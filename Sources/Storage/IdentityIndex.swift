import Foundation
import Glibc
public import Metering

/// A 128-bit keyed hash of an event's identity `(customer, id)`, or of its content (a fingerprint).
public struct Hash128: Hashable, Sendable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Appends the 16 bytes, big-endian, to a key.
    func append(to bytes: inout [UInt8]) {
        bytes.appendBigEndian(high)
        bytes.appendBigEndian(low)
    }

    init(loading bytes: UnsafeRawBufferPointer, at offset: Int) {
        high = bytes.loadBigEndianUInt64(at: offset)
        low = bytes.loadBigEndianUInt64(at: offset + 8)
    }
}

/// The four SipHash-2-4 keys of a store: two independent 64-bit hashes make one 128-bit hash.
///
/// The keys are random per store, so producers cannot craft ids that collide in `IdentityIndex`.
struct HashKeys: Sendable {
    var first: (UInt64, UInt64)
    var second: (UInt64, UInt64)

    /// Hashes `(customer, id)` with the customer's length in front, so ("ab","c") ≠ ("a","bc").
    func identity(customer: String, id: String) -> Hash128 {
        var customer = customer
        var id = id
        return customer.withUTF8 { customerBytes in
            id.withUTF8 { idBytes in
                let length = UInt64(customerBytes.count)
                var firstHasher = SipHasher24(key0: first.0, key1: first.1)
                var secondHasher = SipHasher24(key0: second.0, key1: second.1)
                firstHasher.combine(length)
                secondHasher.combine(length)
                firstHasher.combine(UnsafeRawBufferPointer(customerBytes))
                secondHasher.combine(UnsafeRawBufferPointer(customerBytes))
                firstHasher.combine(UnsafeRawBufferPointer(idBytes))
                secondHasher.combine(UnsafeRawBufferPointer(idBytes))
                return Hash128(high: firstHasher.finalize(), low: secondHasher.finalize())
            }
        }
    }

    /// Hashes any bytes (an event's content, a usage key, a property value).
    func hash(_ bytes: UnsafeRawBufferPointer) -> Hash128 {
        Hash128(
            high: SipHasher24.hash(bytes, key0: first.0, key1: first.1),
            low: SipHasher24.hash(bytes, key0: second.0, key1: second.1)
        )
    }

    func hash(_ bytes: [UInt8]) -> Hash128 {
        bytes.withUnsafeBytes { hash($0) }
    }
}

/// Where every remembered identity lives in the `identities` database: identity hash → commit stamp.
///
/// An open-addressing table (linear probing) whose slots hold a 32-bit fragment of the identity's
/// hash (and 8 more bits in a check byte) and the commit stamp under which LMDB holds its record,
/// in memory backed by transparent huge pages where the kernel allows it: at tens of millions of
/// identities, the TLB misses of 4 KiB pages would otherwise dominate a lookup. It answers
/// "certainly new" without touching LMDB, the common case on ingest; a hit names a stamp to look up (a fragment shared by chance only costs
/// that lookup: LMDB's key holds the whole hash). It is a cache: `StoreWriter` loads it from its
/// snapshot or rebuilds it from LMDB when it opens, and adds to it only after a commit succeeds. Not
/// thread-safe: owned by the writer thread.
///
/// Slots are 8 bytes (`Layout.compact`: the stamp as an offset from the table's base) while the
/// stamps it holds span less than 2^32 ms (49.7 days: the default dedup window is 35), else 16
/// (`Layout.wide`); a table moves to a new base, or to wide slots, the way it grows.
///
/// Growing never stops the writer for long: the doubled table is allocated and its pages faulted in
/// by a helper thread once the table is half full (huge-page faults with compaction cost hundreds
/// of milliseconds on the thread that takes them), and at 70 % the old table is moved into it a few
/// slots per insert, lookups checking both until it is done (rehashing tens of millions of entries
/// at once would hold up a group commit for seconds).
final class IdentityIndex {
    /// How a table's slots hold an entry.
    enum Layout: Equatable, Sendable {
        /// 8-byte slots: the fragment in the high half, the stamp minus `base` in the low half.
        case compact(base: UInt64)
        /// 16-byte slots: the fragment (in 8 bytes), then the whole stamp.
        case wide

        var slotBytes: Int {
            if case .compact = self { 8 } else { 16 }
        }

        /// A slot and its check byte (kept in an array after the slots).
        var entryBytes: Int { slotBytes + 1 }
    }

    /// One table: its memory, its size and how its slots are laid out. A fragment of 0 marks an empty
    /// slot. After the slots, one check byte per slot (8 more bits of the identity's hash) makes a
    /// fragment shared by chance 256 times rarer, for one byte a slot.
    struct Table {
        let memory: UnsafeMutableRawPointer
        let mask: Int
        let layout: Layout
        private let words: UnsafeMutablePointer<UInt64>
        private let checks: UnsafeMutablePointer<UInt8>
        private let isCompact: Bool
        private let base: UInt64

        init(memory: UnsafeMutableRawPointer, capacity: Int, layout: Layout) {
            precondition(capacity > 0 && capacity & (capacity - 1) == 0 && capacity <= 1 << 32,
                         "a power of two that a fragment can address")
            self.memory = memory
            mask = capacity - 1
            self.layout = layout
            words = memory.bindMemory(to: UInt64.self, capacity: capacity * layout.slotBytes / 8)
            checks = (memory + capacity * layout.slotBytes).bindMemory(to: UInt8.self, capacity: capacity)
            if case .compact(let base) = layout {
                isCompact = true
                self.base = base
            } else {
                isCompact = false
                base = 0
            }
        }

        var capacity: Int { mask + 1 }
        var bytes: Int { capacity * layout.entryBytes }

        /// The largest stamp offset a compact slot holds.
        static let maximumOffset = UInt64(UInt32.max)

        @inline(__always)
        func fragment(at slot: Int) -> UInt32 {
            isCompact ? UInt32(truncatingIfNeeded: words[slot] >> 32) : UInt32(truncatingIfNeeded: words[slot << 1])
        }

        @inline(__always)
        func stamp(at slot: Int) -> UInt64 {
            isCompact ? base + (words[slot] & 0xFFFF_FFFF) : words[slot << 1 | 1]
        }

        @inline(__always)
        func check(at slot: Int) -> UInt8 { checks[slot] }

        @inline(__always)
        func store(_ fragment: UInt32, check: UInt8, stamp: UInt64, at slot: Int) {
            checks[slot] = check
            if isCompact {
                words[slot] = UInt64(fragment) << 32 | (stamp - base)
            } else {
                words[slot << 1] = UInt64(fragment)
                words[slot << 1 | 1] = stamp
            }
        }

        @inline(__always)
        func copy(from source: Int, to destination: Int) {
            checks[destination] = checks[source]
            if isCompact {
                words[destination] = words[source]
            } else {
                words[destination << 1] = words[source << 1]
                words[destination << 1 | 1] = words[source << 1 | 1]
            }
        }

        /// The bytes of `slot` (`layout.slotBytes` of them), for a snapshot.
        func slotBytes(_ slot: Int) -> UnsafeRawPointer {
            UnsafeRawPointer(memory + slot * layout.slotBytes)
        }

        /// Sets `slot` from the `index`th of the packed slots at `source` (as a snapshot holds
        /// them), with its check byte; returns false when that slot is empty (a damaged snapshot).
        @inline(__always)
        func setSlot(_ slot: Int, fromPacked source: UnsafeRawPointer, index: Int, check: UInt8) -> Bool {
            checks[slot] = check
            if isCompact {
                let word = source.loadUnaligned(fromByteOffset: index << 3, as: UInt64.self)
                words[slot] = word
                return word >> 32 != 0
            }
            let key = source.loadUnaligned(fromByteOffset: index << 4, as: UInt64.self)
            words[slot << 1] = key
            words[slot << 1 | 1] = source.loadUnaligned(fromByteOffset: index << 4 | 8, as: UInt64.self)
            return UInt32(truncatingIfNeeded: key) != 0
        }

        @inline(__always)
        func clear(at slot: Int) {
            if isCompact { words[slot] = 0 } else { words[slot << 1] = 0 }
        }

        /// Whether `stamp` is within `margin` of what a slot can hold (time to move to a new base).
        func nearlyFull(_ stamp: UInt64, margin: UInt64) -> Bool {
            isCompact && (stamp < base || stamp - base > Self.maximumOffset - margin)
        }

        @inline(__always)
        func home(_ fragment: UInt32) -> Int { Int(fragment) & mask }

        /// Calls `body` with the stamp of each entry holding `fragment` and `check` until it returns
        /// true; slots below `from` are skipped (they were moved out). Returns whether it did.
        @inline(__always)
        func firstStamp(_ fragment: UInt32, check: UInt8, skippingBelow from: Int = 0, where body: (UInt64) throws -> Bool) rethrows -> Bool {
            var slot = home(fragment)
            if isCompact {
                let tag = UInt64(fragment) << 32
                while true {
                    let word = words[slot]
                    if word == 0 { return false }
                    if word & 0xFFFF_FFFF_0000_0000 == tag, checks[slot] == check, slot >= from, try body(base + (word & 0xFFFF_FFFF)) { return true }
                    slot = (slot + 1) & mask
                }
            } else {
                let key = UInt64(fragment)
                while true {
                    let word = words[slot << 1]
                    if word == 0 { return false }
                    if word == key, checks[slot] == check, slot >= from, try body(words[slot << 1 | 1]) { return true }
                    slot = (slot + 1) & mask
                }
            }
        }

        /// Puts an entry in the first free slot of its probe run.
        @inline(__always)
        func place(_ fragment: UInt32, check: UInt8, stamp: UInt64) {
            var slot = home(fragment)
            while self.fragment(at: slot) != 0 { slot = (slot + 1) & mask }
            store(fragment, check: check, stamp: stamp, at: slot)
        }
    }

    private var table: Table
    /// The table being moved into `table` after a grow or a change of layout, or nil; its slots below
    /// `migrated` are moved (but not cleared, so that its probe runs stay intact for the rest).
    private var oldTable: Table?
    private var migrated = 0
    /// Old slots moved per insert: the move ends long before the new table needs to grow again.
    private static let slotsMovedPerInsert = 8
    /// How close to the end of its compact range a table moves to a new base (two days of stamps).
    private static let rebaseMargin: UInt64 = 2 * 86_400_000
    /// The next, doubled table, prepared off the writer thread.
    private let spare = SpareTable()
    /// The size last asked of `spare`, so that inserts past half full do not ask (and lock) again.
    private var spareRequested = 0
    private(set) var count = 0
    /// The newest stamp inserted.
    private(set) var newestStamp: UInt64 = 0
    /// Bumped when the table is rebuilt, which invalidates sweep positions.
    private var generation = 0
    /// Entries stored before this stamp are expired (LMDB forgot them): sweeps remove them, and a
    /// move leaves them out.
    private(set) var expiredBefore: UInt64 = 0

    /// An empty index sized for `minimumCapacity` identities (see `layout(spanning:through:)`).
    init(minimumCapacity: Int = 1 << 16, layout: Layout = .compact(base: 0)) {
        var capacity = 1 << 16
        while capacity * 7 / 10 < minimumCapacity { capacity <<= 1 }
        table = Table(memory: TableMemory.allocate(bytes: capacity * layout.entryBytes), capacity: capacity, layout: layout)
    }

    /// An index over a table read back whole (`IdentityIndexSnapshot`): `table.memory` comes from
    /// `TableMemory.allocate`, and the index owns it from now on.
    init(adopting table: Table, count: Int, newestStamp: UInt64, expiredBefore: UInt64) {
        self.table = table
        self.count = count
        self.newestStamp = newestStamp
        self.expiredBefore = expiredBefore
    }

    deinit {
        TableMemory.deallocate(table.memory, bytes: table.bytes)
        if let oldTable { TableMemory.deallocate(oldTable.memory, bytes: oldTable.bytes) }
    }

    var capacity: Int { table.capacity }
    var layout: Layout { table.layout }

    /// The whole table, for a snapshot: a move in progress is finished first. Valid until the next insert.
    func settledTable() -> Table {
        migrate(Int.max)
        return table
    }

    /// The fragment of an identity that slots hold: 32 bits of its low half, never 0.
    @inline(__always)
    static func fragment(_ identity: Hash128) -> UInt32 {
        let fragment = UInt32(truncatingIfNeeded: identity.low ^ (identity.low >> 32))
        return fragment == 0 ? 1 : fragment
    }

    /// The check byte of an identity: the top byte of its high half (independent of the fragment).
    @inline(__always)
    static func check(_ identity: Hash128) -> UInt8 {
        UInt8(truncatingIfNeeded: identity.high >> 56)
    }

    /// Remembers that `identity` is stored under `stamp`. Equal fragments may repeat.
    func insert(_ identity: Hash128, stamp: UInt64) {
        if table.nearlyFull(stamp, margin: Self.rebaseMargin) {
            if oldTable != nil { migrate(Int.max) }  // never two moves at once
            startMove(capacity: capacity, holding: stamp)
        }
        if oldTable != nil {
            migrate(Self.slotsMovedPerInsert)
        } else if count * 2 > capacity, spareRequested != (capacity << 1) * table.layout.entryBytes {
            spareRequested = (capacity << 1) * table.layout.entryBytes
            spare.prepare(bytes: spareRequested)
        }
        if (count + 1) * 10 > capacity * 7 {
            if oldTable != nil { migrate(Int.max) }  // (the per-insert pace prevents it)
            startMove(capacity: capacity << 1, holding: stamp)
        }
        table.place(Self.fragment(identity), check: Self.check(identity), stamp: stamp)
        newestStamp = max(newestStamp, stamp)
        count += 1
    }

    /// Calls `body` with each stamp recorded for identities that share `identity`'s fragment (almost
    /// always none or one) until `body` returns `true`; returns whether it did.
    @inline(__always)
    func firstStamp(for identity: Hash128, where body: (UInt64) throws -> Bool) rethrows -> Bool {
        let fragment = Self.fragment(identity)
        let check = Self.check(identity)
        if try table.firstStamp(fragment, check: check, where: body) { return true }
        guard let oldTable else { return false }
        return try oldTable.firstStamp(fragment, check: check, skippingBelow: migrated, where: body)
    }

    /// Removes entries whose stamp is before `cutoff`, sweeping at most `maximumSlots` slots from
    /// `start` (nil: from the beginning); returns where to go on, or nil when the sweep is complete.
    ///
    /// Deletion shifts later entries of the same probe run back (no tombstones), so lookups stay as
    /// fast as before; the slot just emptied is examined again, since an entry may have moved into it.
    ///
    /// A table rebuilt in the middle of a sweep leaves the expired entries out as it moves them, which
    /// completes the sweep: the next call with the old position returns nil at once. (Entries moved
    /// before the cutoff rose stay until the next sweep; a stale entry only costs an LMDB lookup.)
    func removeEntries(storedBefore cutoff: UInt64, from start: IdentitySweepPosition?, maximumSlots: Int) -> IdentitySweepPosition? {
        expiredBefore = max(expiredBefore, cutoff)
        var slot = 0
        if let start {
            guard start.generation == generation else { return nil }
            slot = start.slot
        }
        let end = min(capacity, slot + max(1, maximumSlots))
        while slot < end {
            if table.fragment(at: slot) != 0, table.stamp(at: slot) < cutoff {
                remove(at: slot)
            } else {
                slot += 1
            }
        }
        return slot < capacity ? IdentitySweepPosition(slot: slot, generation: generation) : nil
    }

    /// Empties `slot` and moves back the entries after it that could no longer be found (Knuth's algorithm R).
    private func remove(at slot: Int) {
        var hole = slot
        var probe = slot
        table.clear(at: hole)
        count -= 1
        while true {
            probe = (probe + 1) & table.mask
            let fragment = table.fragment(at: probe)
            if fragment == 0 { return }
            let home = table.home(fragment)
            // The entry stays when its home lies cyclically in (hole, probe].
            let stays = hole <= probe ? (hole < home && home <= probe) : (hole < home || home <= probe)
            if stays { continue }
            table.copy(from: probe, to: hole)
            table.clear(at: probe)
            hole = probe
        }
    }

    /// A new table of `capacity` slots takes every insert from now on, and the old one moves into it a
    /// few slots per insert (`migrate`), expired entries left out. Its layout holds every stamp the
    /// move keeps and `stamp`: compact from the oldest unexpired stamp while the span allows, else wide.
    private func startMove(capacity: Int, holding stamp: UInt64) {
        var lowest = expiredBefore
        if case .compact(let base) = table.layout { lowest = max(lowest, base) }
        lowest = min(lowest, stamp)
        let layout = Self.layout(spanning: lowest, through: max(newestStamp, stamp))
        generation += 1
        oldTable = table
        migrated = 0
        let bytes = capacity * layout.entryBytes
        table = Table(memory: spare.take(bytes: bytes) ?? TableMemory.allocate(bytes: bytes), capacity: capacity, layout: layout)
    }

    /// The layout for a table holding stamps from `lowest` through `newest`: compact while the span
    /// leaves room for a few days of new stamps, else wide.
    static func layout(spanning lowest: UInt64, through newest: UInt64) -> Layout {
        newest >= lowest && newest - lowest <= Table.maximumOffset - 2 * rebaseMargin ? .compact(base: lowest) : .wide
    }

    /// Moves up to `slotCount` more slots of the old table into the new one.
    private func migrate(_ slotCount: Int) {
        guard let old = oldTable else { return }
        let end = slotCount >= old.capacity - migrated ? old.capacity : migrated + slotCount
        while migrated < end {
            let fragment = old.fragment(at: migrated)
            if fragment != 0 {
                let stamp = old.stamp(at: migrated)
                if stamp < expiredBefore {
                    count -= 1
                } else {
                    table.place(fragment, check: old.check(at: migrated), stamp: stamp)
                }
            }
            migrated += 1
        }
        if migrated == old.capacity {
            TableMemory.deallocate(old.memory, bytes: old.bytes)
            oldTable = nil
        }
    }
}

/// Where an identity-index sweep stopped (see ``StoreWriter/forgetIdentities(storedBefore:from:maximumSlots:)``).
public struct IdentitySweepPosition: Sendable, Hashable {
    let slot: Int
    let generation: Int
}
