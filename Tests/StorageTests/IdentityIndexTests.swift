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

@Suite("Identity index layouts")
struct IdentityIndexLayoutTests {
    private func identity(_ number: Int) -> Hash128 {
        Hash128(high: UInt64(number), low: UInt64(number) &* 0x9E37_79B9_7F4A_7C15)
    }

    @Test("compact slots move to a new base when expiry allows, and to wide slots when it does not; every entry stays findable")
    func layoutChanges() {
        let day: UInt64 = 86_400_000
        let start: UInt64 = 1_700_000_000_000
        for expires in [true, false] {
            let index = IdentityIndex(minimumCapacity: 1, layout: .compact(base: start))
            #expect(index.layout.slotBytes == 8)
            var stored: [(Hash128, UInt64)] = []
            // One identity every hour for 100 days: past the 49.7 days a compact slot can hold.
            for hour in 0..<(100 * 24) {
                let stamp = start + UInt64(hour) * day / 24
                if expires, hour % 24 == 0, stamp > start + 35 * day {
                    let cutoff = stamp - 35 * day
                    var position: IdentitySweepPosition?
                    repeat { position = index.removeEntries(storedBefore: cutoff, from: position, maximumSlots: 10_000) } while position != nil
                    stored.removeAll { $0.1 < cutoff }
                }
                for item in 0..<30 {
                    let entry = identity(hour * 30 + item)
                    index.insert(entry, stamp: stamp)
                    stored.append((entry, stamp))
                }
            }
            if expires {
                guard case .compact(let base) = index.layout else { Issue.record("expected compact slots"); continue }
                #expect(base > start)
            } else {
                #expect(index.layout == .wide)
            }
            for (entry, stamp) in stored { #expect(index.firstStamp(for: entry) { $0 == stamp }) }
            #expect(!index.firstStamp(for: Hash128(high: 7, low: 0xDEAD_BEEF_0000_0001)) { _ in true })
        }
    }

    @Test("a stamp older than the table's base moves the table to a base that holds it")
    func olderStamp() {
        let index = IdentityIndex(minimumCapacity: 1, layout: .compact(base: 1_000_000))
        index.insert(identity(1), stamp: 1_000_500)
        index.insert(identity(2), stamp: 10)
        #expect(index.layout == .compact(base: 10))
        #expect(index.firstStamp(for: identity(1)) { $0 == 1_000_500 })
        #expect(index.firstStamp(for: identity(2)) { $0 == 10 })
    }

    @Test("identities sharing a fragment are told apart by their check byte, in both layouts")
    func checkBytes() {
        for layout in [IdentityIndex.Layout.compact(base: 0), .wide] {
            let index = IdentityIndex(minimumCapacity: 1, layout: layout)
            let first = Hash128(high: 0x01 << 56, low: 42)
            let second = Hash128(high: 0x02 << 56, low: 42)
            index.insert(first, stamp: 1)
            index.insert(second, stamp: 2)
            var stamps: [UInt64] = []
            _ = index.firstStamp(for: second) { stamps.append($0); return false }
            #expect(stamps == [2])
            stamps = []
            _ = index.firstStamp(for: first) { stamps.append($0); return false }
            #expect(stamps == [1])
        }
    }

    @Test("layouts: compact while the span leaves room, else wide")
    func chosenLayout() {
        #expect(IdentityIndex.layout(spanning: 5, through: 5 + 40 * 86_400_000) == .compact(base: 5))
        #expect(IdentityIndex.layout(spanning: 5, through: 5 + 49 * 86_400_000) == .wide)
        #expect(IdentityIndex.layout(spanning: 9, through: 5) == .wide)
    }
}
