import Metering
import Testing

/// The 64-bit SipHash-2-4 reference vectors (`vectors.h` of the reference implementation): key bytes
/// 00...0f, message bytes 00...(n-1) for n = 0...63, read as little-endian words. All 64 were
/// checked equal to `siphashc.siphash(bytes(range(16)), bytes(range(n)))` (PyPI `siphashc`, the
/// reference C code).
private let referenceVectors: [UInt64] = [
    0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
    0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
    0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
    0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
    0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
    0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
    0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad,
    0xde4daaaca71dc9a5, 0xa6a2506687956571, 0xad87a3535c49ef28, 0x32d892fad841c342,
    0x7127512f72f27cce, 0xa7f32346f95978e3, 0x12e0b01abb051238, 0x15e034d40fa197ae,
    0x314dffbe0815a3b4, 0x027990f029623981, 0xcadcd4e59ef40c4d, 0x9abfd8766a33735c,
    0x0e3ea96b5304a7d0, 0xad0c42d6fc585992, 0x187306c89bc215a9, 0xd4a60abcf3792b95,
    0xf935451de4f21df2, 0xa9538f0419755787, 0xdb9acddff56ca510, 0xd06c98cd5c0975eb,
    0xe612a3cb9ecba951, 0xc766e62cfcadaf96, 0xee64435a9752fe72, 0xa192d576b245165a,
    0x0a8787bf8ecb74b2, 0x81b3e73d20b49b6f, 0x7fa8220ba3b2ecea, 0x245731c13ca42499,
    0xb78dbfaf3a8d83bd, 0xea1ad565322a1a0b, 0x60e61c23a3795013, 0x6606d7e446282b93,
    0x6ca4ecb15c5f91e1, 0x9f626da15c9625f3, 0xe51b38608ef25f57, 0x958a324ceb064572,
]
private let referenceKey0: UInt64 = 0x0706_0504_0302_0100
private let referenceKey1: UInt64 = 0x0f0e_0d0c_0b0a_0908

private func hash(_ bytes: [UInt8], _ key0: UInt64, _ key1: UInt64) -> UInt64 {
    bytes.withUnsafeBytes { SipHasher24.hash($0, key0: key0, key1: key1) }
}

@Suite("SipHash-2-4")
struct SipHashTests {
    @Test func matchesReferenceVectors() {
        #expect(referenceVectors.count == 64)
        #expect(referenceVectors[0] == 0x726f_db47_dd0e_0e31)
        #expect(referenceVectors[1] == 0x74f8_39c5_93dc_67fd)
        for length in 0..<64 {
            let message = (0..<length).map { UInt8($0) }
            #expect(hash(message, referenceKey0, referenceKey1) == referenceVectors[length], "length \(length)")
        }
    }

    @Test func streamingMatchesOneShotForAnyChunking() {
        var generator = SplitMix64(seed: 2024)
        for _ in 0..<500 {
            let length = Int(generator.next() % 100)
            let message = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let key0 = generator.next()
            let key1 = generator.next()
            var hasher = SipHasher24(key0: key0, key1: key1)
            var offset = 0
            message.withUnsafeBytes { bytes in
                while offset < length {
                    let chunk = min(Int(generator.next() % 12), length - offset)
                    hasher.combine(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + chunk)]))
                    offset += chunk
                }
            }
            #expect(hasher.finalize() == hash(message, key0, key1))
        }
    }

    @Test func combiningAWordEqualsItsLittleEndianBytes() {
        var generator = SplitMix64(seed: 99)
        for prefixLength in 0..<17 {
            let prefix = (0..<prefixLength).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let word = generator.next()
            let wordBytes = (0..<8).map { UInt8(truncatingIfNeeded: word >> (8 * UInt64($0))) }
            var hasher = SipHasher24(key0: 1, key1: 2)
            prefix.withUnsafeBytes { hasher.combine($0) }
            hasher.combine(word)
            hasher.combine(word)
            #expect(hasher.finalize() == hash(prefix + wordBytes + wordBytes, 1, 2), "prefix \(prefixLength)")
        }
    }

    @Test func emptyCombinesChangeNothing() {
        var hasher = SipHasher24(key0: referenceKey0, key1: referenceKey1)
        hasher.combine(UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(hasher.finalize() == referenceVectors[0])
    }

    /// 300 inputs drawn from SplitMix64 (seed 0x5eed): per input key0, key1, a length below 200 and
    /// that many bytes (each the low byte of one draw). The expected values came from Python's
    /// `siphashc.siphash(key0.to_bytes(8, "little") + key1.to_bytes(8, "little"), data)` over the
    /// same draws: a digest (`digest = digest * 31 + hash`, wrapping) plus every 37th value.
    @Test func matchesSiphashcOnRandomInputs() {
        var generator = SplitMix64(seed: 0x5eed)
        var digest: UInt64 = 0
        var picked: [Int: UInt64] = [:]
        for index in 0..<300 {
            let key0 = generator.next()
            let key1 = generator.next()
            let length = Int(generator.next() % 200)
            let message = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let value = hash(message, key0, key1)
            digest = digest &* 31 &+ value
            if index % 37 == 0 { picked[index] = value }
        }
        #expect(digest == 0x5785_60b1_b351_9db9)
        #expect(picked[0] == 0x533c_1cc0_18ee_3543)
        #expect(picked[37] == 0x4620_b7fd_3151_db73)
        #expect(picked[74] == 0x9717_87fd_84ab_72fd)
        #expect(picked[111] == 0xa64e_d03b_8a1b_ab69)
        #expect(picked[148] == 0xba2b_4d7a_27f8_6b20)
        #expect(picked[185] == 0x8cae_bf6b_bcb2_580e)
        #expect(picked[222] == 0x0f34_2ce5_6c1f_7526)
        #expect(picked[259] == 0xcf0a_8e2f_951e_da6b)
        #expect(picked[296] == 0x3e2d_ea18_70bd_916e)
    }

    @Test func keyChangesTheHash() {
        let message: [UInt8] = Array("cus_42/evt_01J9X".utf8)
        #expect(hash(message, 1, 2) != hash(message, 2, 1))
        #expect(hash(message, 1, 2) == hash(message, 1, 2))
    }
}
