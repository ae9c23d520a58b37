import Glibc
import Metering

/// A usage key's bytes as a dictionary key: hashed in one pass over the bytes (the standard
/// `[UInt8]` hash feeds them one at a time), ordered as LMDB orders keys, with the first 16 bytes
/// kept as two integers so that sorting rarely needs more than two integer comparisons.
struct UsageKeyBytes: Hashable, Comparable {
    private(set) var bytes: [UInt8]
    private var head: UInt64
    private var next: UInt64
    /// The `UsageLogRecord.Family` the key belongs to (which table it folds into); keys order by
    /// family first, as records do.
    private(set) var family: UInt8

    /// Copies `bytes` into storage of their own size: a key kept in a table must not hold on to a
    /// scratch buffer's capacity (the writer's key buffer reserves a kilobyte).
    init(_ bytes: [UInt8], family: UInt8 = 0) {
        let copy = bytes.withUnsafeBytes { [UInt8]($0) }
        self.bytes = copy
        self.family = family
        (head, next) = copy.withUnsafeBytes(Self.heads)
    }

    /// Becomes `bytes` of `family`, reusing this key's buffer (for a lookup key that the table never keeps).
    mutating func assign(_ bytes: [UInt8], family: UInt8) {
        self.bytes.removeAll(keepingCapacity: true)
        self.bytes.append(contentsOf: bytes)
        self.family = family
        (head, next) = bytes.withUnsafeBytes(Self.heads)
    }

    init(_ bytes: UnsafeRawBufferPointer, family: UInt8 = 0) {
        self.bytes = Array(bytes)
        self.family = family
        (head, next) = Self.heads(bytes)
    }

    /// Bytes 0–7 and 8–15 as big-endian integers: when they differ, their order is the keys'.
    var sortWords: (UInt64, UInt64) { (head, next) }

    /// Bytes 0–7 and 8–15 as big-endian integers, zero-padded: their order is the bytes' order.
    private static func heads(_ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(16))) }
        return (UInt64(bigEndian: words.0), UInt64(bigEndian: words.1))
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(family)
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.head == rhs.head, lhs.next == rhs.next, lhs.bytes.count == rhs.bytes.count, lhs.family == rhs.family else { return false }
        guard lhs.bytes.count > 16 else { return true }
        return lhs.bytes.withUnsafeBytes { l in
            rhs.bytes.withUnsafeBytes { r in memcmp(l.baseAddress! + 16, r.baseAddress! + 16, l.count - 16) == 0 }
        }
    }

    /// Byte order, LMDB's order (a shorter key first when one is a prefix of the other).
    static func < (lhs: Self, rhs: Self) -> Bool {
        if lhs.family != rhs.family { return lhs.family < rhs.family }
        if lhs.head != rhs.head { return lhs.head < rhs.head }
        if lhs.next != rhs.next { return lhs.next < rhs.next }
        return lhs.bytes.withUnsafeBytes { l in
            rhs.bytes.withUnsafeBytes { r in
                let common = min(l.count, r.count)
                let order = common <= 16 ? 0 : memcmp(l.baseAddress! + 16, r.baseAddress! + 16, common - 16)
                return order != 0 ? order < 0 : l.count < r.count
            }
        }
    }

    /// The customer ‖ period start prefix (`UsageKey`).
    var prefix: UsageKeyBytes {
        UsageKeyBytes(Array(bytes[0..<min(bytes.count, 1 + Int(bytes[0]) + 8)]))
    }
}
