/// SipHash-2-4 with a 64-bit output (Aumasson and Bernstein), keyed by two 64-bit words.
///
/// A keyed hash that attackers cannot steer into collisions without the key; Tally uses it where a
/// stable, well-spread hash of untrusted input is needed. Streaming and allocation-free: feed bytes
/// in any chunking with ``combine(_:)-(UnsafeRawBufferPointer)``, and the result equals the one-shot
/// ``hash(_:key0:key1:)`` over the concatenation.
///
/// The key words are the 16 key bytes read little-endian: key bytes `00 01 … 0f` are
/// `key0: 0x0706050403020100, key1: 0x0f0e0d0c0b0a0908`.
///
/// ```swift
/// var hasher = SipHasher24(key0: k0, key1: k1)
/// hasher.combine(customerBytes)
/// hasher.combine(UInt64(42))
/// let digest = hasher.finalize()
/// ```
public struct SipHasher24: Sendable {
    private var v0: UInt64
    private var v1: UInt64
    private var v2: UInt64
    private var v3: UInt64
    /// Up to 7 bytes not yet compressed, little-endian in the low bytes.
    private var tail: UInt64 = 0
    private var tailCount = 0
    /// Total bytes combined so far (only its low byte enters the hash).
    private var length: UInt64 = 0

    /// Creates a hasher keyed by `key0` and `key1` (the key's bytes 0...7 and 8...15, little-endian).
    public init(key0: UInt64, key1: UInt64) {
        v0 = key0 ^ 0x736f_6d65_7073_6575
        v1 = key1 ^ 0x646f_7261_6e64_6f6d
        v2 = key0 ^ 0x6c79_6765_6e65_7261
        v3 = key1 ^ 0x7465_6462_7974_6573
    }

    /// Feeds `bytes` into the hash.
    public mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        guard count > 0 else { return }
        length &+= UInt64(truncatingIfNeeded: count)
        var index = 0
        if tailCount > 0 {
            while tailCount < 8 && index < count {
                tail |= UInt64(bytes[index]) << (8 * UInt64(tailCount))
                tailCount += 1
                index += 1
            }
            guard tailCount == 8 else { return }
            compress(tail)
            tail = 0
            tailCount = 0
        }
        while count - index >= 8 {
            compress(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)))
            index += 8
        }
        while index < count {
            tail |= UInt64(bytes[index]) << (8 * UInt64(tailCount))
            tailCount += 1
            index += 1
        }
    }

    /// Feeds the 8 bytes of `value` in little-endian order.
    public mutating func combine(_ value: UInt64) {
        length &+= 8
        if tailCount == 0 {
            compress(value)
            return
        }
        // Complete the pending block with the low bytes of `value`; the high bytes become the tail.
        let shift = 8 * UInt64(tailCount)
        compress(tail | (value << shift))
        tail = value >> (64 - shift)
    }

    /// The 64-bit SipHash-2-4 of everything combined.
    public consuming func finalize() -> UInt64 {
        compress(tail | (length << 56))
        v2 ^= 0xff
        round()
        round()
        round()
        round()
        return v0 ^ v1 ^ v2 ^ v3
    }

    /// The 64-bit SipHash-2-4 of `bytes` under the key (`key0`, `key1`).
    public static func hash(_ bytes: UnsafeRawBufferPointer, key0: UInt64, key1: UInt64) -> UInt64 {
        var hasher = SipHasher24(key0: key0, key1: key1)
        hasher.combine(bytes)
        return hasher.finalize()
    }

    @inline(__always)
    private mutating func compress(_ message: UInt64) {
        v3 ^= message
        round()
        round()
        v0 ^= message
    }

    @inline(__always)
    private mutating func round() {
        v0 &+= v1
        v1 = v1.rotatedLeft(13)
        v1 ^= v0
        v0 = v0.rotatedLeft(32)
        v2 &+= v3
        v3 = v3.rotatedLeft(16)
        v3 ^= v2
        v0 &+= v3
        v3 = v3.rotatedLeft(21)
        v3 ^= v0
        v2 &+= v1
        v1 = v1.rotatedLeft(17)
        v1 ^= v2
        v2 = v2.rotatedLeft(32)
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 - count))
    }
}
