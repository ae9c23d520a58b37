import Metering
import Testing

@testable import Storage

/// Archive segment contents the `FuzzSegment` target (Fuzz/, docs/FUZZING.md) checks, read through
/// the entry point it fuzzes: a bad segment is `StoreError` `.damaged` with its reason, never a trap
/// and never read as if it were whole.
@Suite struct SegmentFuzzTests {
    /// The content of a segment of one event per sequence, as the archive writes it.
    private func content(_ sequences: [UInt64]) -> [UInt8] {
        var encoder = SegmentEncoder()
        var bytes: [UInt8] = []
        for (index, sequence) in sequences.enumerated() {
            let event = UsageEvent(id: "e\(index)", customer: "c", meter: "api_calls", value: 1,
                                   time: Timestamp(nanosecondsSinceEpoch: 1_795_341_600_000_000_000))
            _ = EventCodec.encode(event, receivedAt: Timestamp(nanosecondsSinceEpoch: 1_795_341_600_000_000_000), into: &bytes)
            let added = bytes.withUnsafeBytes { encoder.append(sequence: sequence, event: $0) }
            precondition(added)
        }
        return encoder.finish(number: 1)
    }

    /// The sequences of the segment's events, or its error.
    private func read(_ content: [UInt8]) -> Result<[UInt64], StoreError> {
        var sequences: [UInt64] = []
        do {
            _ = try EventArchive.forEachEvent(inSegmentContent: content, shownAs: "test.tseg") { event in
                sequences.append(event.sequence)
                return true
            }
            return .success(sequences)
        } catch let error as StoreError {
            return .failure(error)
        } catch {
            Issue.record("an untyped error: \(error)")
            return .failure(StoreError(.unavailable, "untyped"))
        }
    }

    private func damaged(_ content: [UInt8], _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .failure(let error) = read(content) else {
            Issue.record("read as a good segment", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == .damaged, sourceLocation: sourceLocation)
        #expect(error.message.contains(reason), "\(error.message)", sourceLocation: sourceLocation)
    }

    /// `content` with the u64 at `offset` replaced.
    private func patched(_ content: [UInt8], at offset: Int, _ value: UInt64) -> [UInt8] {
        var content = content
        for index in 0..<8 { content[offset + index] = UInt8(truncatingIfNeeded: value >> (56 - 8 * index)) }
        return content
    }

    @Test func aWholeSegmentReadsBack() {
        #expect(read(content([3, 7, 8])) == .success([3, 7, 8]))
    }

    @Test func arbitraryBytesAreDamaged() {
        damaged(Array("TALLYSE".utf8), "it is not a tally segment")
        damaged([], "it is not a tally segment")
    }

    /// A header counting more events than the columns hold was read as the shorter segment.
    @Test func aHeaderCountingMoreEventsIsDamaged() {
        damaged(patched(content([1, 2]), at: 20, 3), "it holds 2 events where its header counts 3")
    }

    @Test func aHeaderCountingFewerEventsIsDamaged() {
        damaged(patched(content([1, 2]), at: 20, 1), "it holds more events than its header counts (1)")
    }

    /// A zero sequence delta gave two events one sequence (the encoder writes increasing ones).
    @Test func aRepeatedSequenceIsDamaged() {
        damaged(patched(content([1, 2]), at: SegmentEncoder.headerSize + 8, 0), "its sequences do not increase")
    }

    /// A delta past UInt64.max wrapped around to a smaller sequence.
    @Test func aWrappingSequenceIsDamaged() {
        damaged(patched(content([1, 2]), at: SegmentEncoder.headerSize + 8, .max), "its sequences do not increase")
    }
}
