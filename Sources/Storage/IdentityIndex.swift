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
/// An open-addressing table of two parallel arrays (16 bytes a slot, about 22 bytes an identity at
/// its load factor). It answers "certainly new" without touching LMDB, which is the common case on
/// ingest; a hit names the commit stamp under which LMDB holds the identity's record. It is a cache:
/// `TallyStore` rebuilds it from LMDB when it opens and adds to it only after a commit succeeds.
/// Not thread-safe: owned by the writer thread.
final class IdentityIndex {
    private var hashes: UnsafeMutablePointer<UInt64>
    private var stamps: UnsafeMutablePointer<UInt64>
    private var mask: Int
    private(set) var count = 0

    init(minimumCapacity: Int = 1 << 16) {
        var capacity = 1 << 16
        while capacity * 7 / 10 < minimumCapacity { capacity <<= 1 }
        hashes = .allocate(capacity: capacity)
        hashes.initialize(repeating: 0, count: capacity)
        stamps = .allocate(capacity: capacity)
        stamps.initialize(repeating: 0, count: capacity)
        mask = capacity - 1
    }

    deinit {
        hashes.deallocate()
        stamps.deallocate()
    }

    var capacity: Int { mask + 1 }

    /// The slot key of an identity: its low half, never 0 (0 marks an empty slot).
    @inline(__always)
    private static func slotKey(_ identity: Hash128) -> UInt64 {
        identity.low == 0 ? 1 : identity.low
    }

    /// Remembers that `identity` is stored under `stamp`. Equal slot keys may repeat (64-bit collisions).
    func insert(_ identity: Hash128, stamp: UInt64) {
        if (count + 1) * 10 > capacity * 7 { grow() }
        let key = Self.slotKey(identity)
        var slot = Int(truncatingIfNeeded: key ^ (key >> 29)) & mask
        while hashes[slot] != 0 { slot = (slot + 1) & mask }
        hashes[slot] = key
        stamps[slot] = stamp
        count += 1
    }

    /// Calls `body` with every stamp recorded for identities that share `identity`'s slot key
    /// (almost always zero or one), until `body` returns `true`.
    @inline(__always)
    func firstStamp(for identity: Hash128, where body: (UInt64) throws -> Bool) rethrows -> Bool {
        let key = Self.slotKey(identity)
        var slot = Int(truncatingIfNeeded: key ^ (key >> 29)) & mask
        while true {
            let candidate = hashes[slot]
            if candidate == 0 { return false }
            if candidate == key, try body(stamps[slot]) { return true }
            slot = (slot + 1) & mask
        }
    }

    private func grow() {
        let oldHashes = hashes
        let oldStamps = stamps
        let oldCapacity = capacity
        let newCapacity = oldCapacity << 1
        hashes = .allocate(capacity: newCapacity)
        hashes.initialize(repeating: 0, count: newCapacity)
        stamps = .allocate(capacity: newCapacity)
        stamps.initialize(repeating: 0, count: newCapacity)
        mask = newCapacity - 1
        for old in 0..<oldCapacity where oldHashes[old] != 0 {
            let key = oldHashes[old]
            var slot = Int(truncatingIfNeeded: key ^ (key >> 29)) & mask
            while hashes[slot] != 0 { slot = (slot + 1) & mask }
            hashes[slot] = key
            stamps[slot] = oldStamps[old]
        }
        oldHashes.deallocate()
        oldStamps.deallocate()
    }
}
