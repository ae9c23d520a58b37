import Testing

@testable import Storage

@Suite("Identity index")
struct IdentityIndexTests {
    @Test("every entry stays findable with its stamp while the table grows and moves a few slots per insert")
    func growthIsIncremental() {
        let index = IdentityIndex(minimumCapacity: 1)
        var generator = SystemRandomNumberGenerator()
        var entries: [(Hash128, UInt64)] = []
        var stamp: UInt64 = 0
        // Slot keys drawn from 200,000 values: every key repeats about twice (64-bit collisions),
        // and the repeats land on both sides of the boundary between moved and unmoved old slots.
        for round in 0..<40 {
            for _ in 0..<(round < 20 ? 2_000 : 20_000) {
                stamp += 1
                let identity = Hash128(high: generator.next(), low: UInt64.random(in: 1...200_000, using: &generator) &* 0x9E37_79B9_7F4A_7C15)
                index.insert(identity, stamp: stamp)
                entries.append((identity, stamp))
            }
            // Every entry, in the new table or in the old one not yet moved, is found exactly as stored.
            for (identity, expected) in entries where expected % 7 == UInt64(round % 7) || round == 39 {
                var seen = 0
                _ = index.firstStamp(for: identity) { candidate in
                    if candidate == expected { seen += 1 }
                    return false  // visit every candidate: none may be visited twice
                }
                #expect(seen == 1, "round \(round): stamp \(expected) seen \(seen) times")
            }
            #expect(index.count == entries.count)
        }
        #expect(index.capacity >= entries.count)
    }

    @Test("entries expired while the old table is being moved are left behind; the rest are kept")
    func expiryDuringMove() {
        let index = IdentityIndex(minimumCapacity: 1)
        var entries: [(Hash128, UInt64)] = []
        for number in 1...45_000 {  // crosses 70 % of 65,536 slots: the table grows
            let identity = Hash128(high: UInt64(number), low: UInt64(number) &* 0x9E37_79B9_7F4A_7C15)
            index.insert(identity, stamp: UInt64(number))
            entries.append((identity, UInt64(number)))
        }
        // Expire the first 10,000 while the move is under way, then finish it with more inserts.
        var position: IdentitySweepPosition?
        repeat { position = index.removeEntries(storedBefore: 10_001, from: position, maximumSlots: 4_096) } while position != nil
        for number in 45_001...200_000 {
            let identity = Hash128(high: UInt64(number), low: UInt64(number) &* 0x9E37_79B9_7F4A_7C15)
            index.insert(identity, stamp: UInt64(number))
            entries.append((identity, UInt64(number)))
        }
        let kept = entries.filter { $0.1 > 10_000 }
        #expect(index.count == kept.count)
        for (identity, stamp) in kept { #expect(index.firstStamp(for: identity) { $0 == stamp }) }
        for (identity, stamp) in entries where stamp <= 10_000 { #expect(!index.firstStamp(for: identity) { $0 == stamp }) }
    }
}
