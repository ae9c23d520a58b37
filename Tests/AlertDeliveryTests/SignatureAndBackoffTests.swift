import AlertDelivery
import Foundation
import Testing

@Suite struct SignatureTests {
    @Test func matchesAKnownHMACSHA256() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        #expect(AlertDispatcher.signature(secret: "secret", timestamp: 1_700_000_000, body: Array(#"{"a":1}"#.utf8))
                == "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686")
        #expect(AlertDispatcher.signature(secret: "secret", timestamp: 1_700_000_000, body: Data(#"{"a":1}"#.utf8))
                == "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686")
    }

    @Test func changesWithSecretTimestampAndBody() {
        let base = AlertDispatcher.signature(secret: "s", timestamp: 1, body: Array("{}".utf8))
        #expect(base.count == 64)
        #expect(AlertDispatcher.signature(secret: "t", timestamp: 1, body: Array("{}".utf8)) != base)
        #expect(AlertDispatcher.signature(secret: "s", timestamp: 2, body: Array("{}".utf8)) != base)
        #expect(AlertDispatcher.signature(secret: "s", timestamp: 1, body: Array("{ }".utf8)) != base)
    }
}

@Suite struct BackoffTests {
    /// A deterministic generator (SplitMix64).
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func ceilingDoublesFromBaseUpToCap() {
        let backoff = Backoff.standard
        #expect(backoff.ceiling(afterFailure: 1) == .milliseconds(100))
        #expect(backoff.ceiling(afterFailure: 2) == .milliseconds(200))
        #expect(backoff.ceiling(afterFailure: 10) == .milliseconds(51_200))
        #expect(backoff.ceiling(afterFailure: 11) == .seconds(60))
        #expect(backoff.ceiling(afterFailure: 64) == .seconds(60))
        #expect(backoff.ceiling(afterFailure: .max) == .seconds(60))
        #expect(backoff.ceiling(afterFailure: 0) == .milliseconds(100))
    }

    @Test func delaysAreFullJitterWithinTheCeiling() {
        var generator = SeededGenerator(state: 42)
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(60))
        for failures in [1, 3, 12, 1000] {
            let ceiling = backoff.ceiling(afterFailure: failures)
            let delays = (0..<500).map { _ in backoff.delay(afterFailure: failures, using: &generator) }
            #expect(delays.allSatisfy { $0 >= .zero && $0 <= ceiling })
            // Full jitter spreads over the whole range, not just near the top.
            #expect(delays.contains { $0 < ceiling / 4 })
            #expect(delays.contains { $0 > ceiling * 3 / 4 })
        }
    }

    @Test func zeroBaseMeansNoWait() {
        #expect(Backoff(base: .zero, cap: .seconds(1)).delay(afterFailure: 5) == .zero)
    }
}
