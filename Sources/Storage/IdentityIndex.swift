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
/// An open-addressing table (linear probing) of 16-byte slots, each holding a slot key and a stamp in
/// one cache line, in memory backed by transparent huge pages where the kernel allows it: at tens of
/// millions of identities, the TLB misses of 4 KiB pages would otherwise dominate a lookup. It
/// answers "certainly new" without touching LMDB, the common case on ingest; a hit names the commit
/// stamp under which LMDB holds the identity's record. It is a cache: `StoreWriter` rebuilds it from
/// LMDB when it opens and adds to it only after a commit succeeds. Not thread-safe: owned by the
/// writer thread.
///
/// Growing never stops the writer for long: the doubled table is allocated and its pages faulted in
/// by a helper thread once the table is half full (huge-page faults with compaction cost hundreds
/// of milliseconds on the thread that takes them), and at 70 % the old table is moved into it a few
/// slots per insert, lookups checking both until it is done (rehashing tens of millions of entries
/// at once would hold up a group commit for seconds).
final class IdentityIndex {
    private struct Slot {
        /// The identity's low 64 bits, never 0; 0 marks an empty slot.
        var key: UInt64
        var stamp: UInt64
    }

    private var slots: UnsafeMutablePointer<Slot>
    private var mask: Int
    /// The table being moved into `slots` after a grow, or nil; its slots below `migrated` are moved
    /// (but not cleared, so that its probe runs stay intact for the rest).
    private var oldSlots: UnsafeMutablePointer<Slot>?
    private var oldMask = 0
    private var migrated = 0
    /// Old slots moved per insert: the move ends long before the new table needs to grow again.
    private static let slotsMovedPerInsert = 8
    /// The next, doubled table, prepared off the writer thread.
    private let spare = SpareTable()
    /// The capacity last asked of `spare`, so that inserts past half full do not ask (and lock) again.
    private var spareRequested = 0
    private(set) var count = 0
    /// Bumped when the table is rebuilt larger, which invalidates sweep positions.
    private var generation = 0
    /// Entries stored before this stamp are expired (LMDB forgot them): sweeps remove them, and a
    /// rebuild leaves them out.
    private var expiredBefore: UInt64 = 0

    init(minimumCapacity: Int = 1 << 16) {
        precondition(MemoryLayout<Slot>.stride == Self.slotBytes)
        var capacity = 1 << 16
        while capacity * 7 / 10 < minimumCapacity { capacity <<= 1 }
        slots = Self.allocate(capacity)
        mask = capacity - 1
    }

    deinit {
        Self.deallocate(slots, capacity: capacity)
        if let oldSlots { Self.deallocate(oldSlots, capacity: oldMask + 1) }
    }

    var capacity: Int { mask + 1 }

    /// The size of a slot: a key and a stamp.
    static let slotBytes = 16

    /// Zeroed memory for `capacity` slots.
    private static func allocate(_ capacity: Int) -> UnsafeMutablePointer<Slot> {
        TableMemory.allocate(bytes: capacity * MemoryLayout<Slot>.stride).bindMemory(to: Slot.self, capacity: capacity)
    }

    private static func deallocate(_ slots: UnsafeMutablePointer<Slot>, capacity: Int) {
        TableMemory.deallocate(UnsafeMutableRawPointer(slots), bytes: capacity * MemoryLayout<Slot>.stride)
    }

    /// The slot key of an identity: its low half, never 0.
    @inline(__always)
    private static func slotKey(_ identity: Hash128) -> UInt64 {
        identity.low == 0 ? 1 : identity.low
    }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Self.home(key, mask: mask)
    }

    @inline(__always)
    private static func home(_ key: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: key ^ (key >> 29)) & mask
    }

    /// Remembers that `identity` is stored under `stamp`. Equal slot keys may repeat (64-bit collisions).
    func insert(_ identity: Hash128, stamp: UInt64) {
        if oldSlots != nil {
            migrate(Self.slotsMovedPerInsert)
        } else if count * 2 > capacity, spareRequested != capacity << 1 {
            spareRequested = capacity << 1
            spare.prepare(capacity: spareRequested)
        }
        if (count + 1) * 10 > capacity * 7 { grow() }
        place(Self.slotKey(identity), stamp: stamp)
        count += 1
    }

    @inline(__always)
    private func place(_ key: UInt64, stamp: UInt64) {
        var slot = home(key)
        while slots[slot].key != 0 { slot = (slot + 1) & mask }
        slots[slot] = Slot(key: key, stamp: stamp)
    }

    /// Calls `body` with each stamp recorded for identities that share `identity`'s slot key (almost
    /// always none or one) until `body` returns `true`; returns whether it did.
    @inline(__always)
    func firstStamp(for identity: Hash128, where body: (UInt64) throws -> Bool) rethrows -> Bool {
        let key = Self.slotKey(identity)
        var slot = home(key)
        while true {
            let candidate = slots[slot]
            if candidate.key == 0 { break }
            if candidate.key == key, try body(candidate.stamp) { return true }
            slot = (slot + 1) & mask
        }
        return try firstStampInOldTable(key: key, where: body)
    }

    /// `firstStamp` in the table still being moved: only its slots not moved yet count.
    private func firstStampInOldTable(key: UInt64, where body: (UInt64) throws -> Bool) rethrows -> Bool {
        guard let oldSlots else { return false }
        var slot = Self.home(key, mask: oldMask)
        while true {
            let candidate = oldSlots[slot]
            if candidate.key == 0 { return false }
            if slot >= migrated, candidate.key == key, try body(candidate.stamp) { return true }
            slot = (slot + 1) & oldMask
        }
    }

    /// Removes entries whose stamp is before `cutoff`, sweeping at most `maximumSlots` slots from
    /// `start` (nil: from the beginning); returns where to go on, or nil when the sweep is complete.
    ///
    /// Deletion shifts later entries of the same probe run back (no tombstones), so lookups stay as
    /// fast as before; the slot just emptied is examined again, since an entry may have moved into it.
    ///
    /// A table grown in the middle of a sweep leaves the expired entries out as it moves them, which
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
            if slots[slot].key != 0, slots[slot].stamp < cutoff {
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
        slots[hole].key = 0
        count -= 1
        while true {
            probe = (probe + 1) & mask
            let entry = slots[probe]
            if entry.key == 0 { return }
            let home = home(entry.key)
            // The entry stays when its home lies cyclically in (hole, probe].
            let stays = hole <= probe ? (hole < home && home <= probe) : (hole < home || home <= probe)
            if stays { continue }
            slots[hole] = entry
            slots[probe].key = 0
            hole = probe
        }
    }

    /// Doubles the table: a new allocation takes every insert from now on, and the old table moves
    /// into it a few slots per insert (`migrate`), expired entries left out.
    private func grow() {
        if oldSlots != nil { migrate(Int.max) }  // never two moves at once (the per-insert pace prevents it)
        generation += 1
        oldSlots = slots
        oldMask = mask
        migrated = 0
        let doubled = capacity << 1
        slots = spare.take(capacity: doubled)?.bindMemory(to: Slot.self, capacity: doubled) ?? Self.allocate(doubled)
        mask = (mask << 1) | 1
    }

    /// Moves up to `slotCount` more slots of the old table into the new one.
    private func migrate(_ slotCount: Int) {
        guard let old = oldSlots else { return }
        let oldCapacity = oldMask + 1
        let end = slotCount >= oldCapacity - migrated ? oldCapacity : migrated + slotCount
        while migrated < end {
            let entry = old[migrated]
            if entry.key != 0 {
                if entry.stamp < expiredBefore {
                    count -= 1
                } else {
                    place(entry.key, stamp: entry.stamp)
                }
            }
            migrated += 1
        }
        if migrated == oldCapacity {
            Self.deallocate(old, capacity: oldCapacity)
            oldSlots = nil
        }
    }
}

/// Where an identity-index sweep stopped (see ``StoreWriter/forgetIdentities(storedBefore:from:maximumSlots:)``).
public struct IdentitySweepPosition: Sendable, Hashable {
    let slot: Int
    let generation: Int
}

/// Anonymous, zeroed mappings for identity tables, with huge pages advised: at tens of millions of
/// identities the TLB misses of 4 KiB pages would dominate a lookup.
enum TableMemory {
    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let memory, memory != MAP_FAILED else {
            // Like any allocation failure in Swift: out of memory is not recoverable here.
            fatalError("cannot allocate \(bytes) bytes for the identity index: \(String(cString: strerror(errno)))")
        }
        _ = madvise(memory, bytes, MADV_HUGEPAGE)
        return memory
    }

    static func deallocate(_ memory: UnsafeMutableRawPointer, bytes: Int) {
        munmap(memory, bytes)
    }
}

/// The identity index's next table, mapped and faulted in by a helper thread ahead of the grow.
private final class SpareTable: @unchecked Sendable {
    private let lock = NSLock()
    private var memory: UnsafeMutableRawPointer?
    private var readyCapacity = 0
    private var requestedCapacity = 0

    deinit {
        if let memory { TableMemory.deallocate(memory, bytes: readyCapacity * IdentityIndex.slotBytes) }
    }

    /// Starts preparing a zeroed table of `capacity` slots on a helper thread.
    func prepare(capacity: Int) {
        lock.lock()
        defer { lock.unlock() }
        requestedCapacity = capacity
        let thread = Thread { [self] in
            let bytes = capacity * IdentityIndex.slotBytes
            let prepared = TableMemory.allocate(bytes: bytes)
            // Touch every page now, so that the writer never takes these page faults.
            var offset = 0
            while offset < bytes {
                prepared.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
                offset += 4096
            }
            lock.lock()
            if requestedCapacity == capacity {
                if let stale = memory { TableMemory.deallocate(stale, bytes: readyCapacity * IdentityIndex.slotBytes) }
                memory = prepared
                readyCapacity = capacity
            } else {
                TableMemory.deallocate(prepared, bytes: bytes)
            }
            lock.unlock()
        }
        thread.name = "tally-index-grow"
        thread.start()
    }

    /// The prepared table of `capacity` slots, if it is ready; nil otherwise (allocate it yourself).
    func take(capacity: Int) -> UnsafeMutableRawPointer? {
        lock.lock()
        defer { lock.unlock() }
        requestedCapacity = 0
        guard let prepared = memory else { return nil }
        memory = nil
        defer { readyCapacity = 0 }
        guard readyCapacity == capacity else {
            TableMemory.deallocate(prepared, bytes: readyCapacity * IdentityIndex.slotBytes)
            return nil
        }
        return prepared
    }
}
