import Foundation
@testable import Ingest
import Logging
import Metering
import NIOEmbedded
import Storage
import Testing

/// A sink that records what comes back, for the writer-level tests.
private final class RecordingSink: IngestBatchSink, @unchecked Sendable {
    private let lock = NSLock()
    private var completed: [IngestBatch] = []
    private let arrived = DispatchSemaphore(value: 0)

    func batchesCompleted(_ batches: [IngestBatch]) {
        lock.withLock { completed.append(contentsOf: batches) }
        for _ in batches { arrived.signal() }
    }

    /// Waits for the next completed batch (60 s at most: a test bound, not a figure).
    func next() -> IngestBatch? {
        guard arrived.wait(timeout: .now() + 60) == .success else { return nil }
        return lock.withLock { completed.removeFirst() }
    }

    var all: [IngestBatch] { lock.withLock { completed } }
}

private func batch(_ sink: any IngestBatchSink, events count: Int, prefix: String, customer: String = "c", tag: UInt64 = 0) -> IngestBatch {
    let now = Timestamp.now()
    let events = (0..<count).map {
        PendingEvent(event: UsageEvent(id: "\(prefix)-\($0)", customer: customer, meter: "calls", time: now), receivedAt: now)
    }
    return IngestBatch(events: events, sink: sink, tag: tag)
}

@Suite("Fairness: connections served round-robin into group commits")
struct FairQueueTests {
    @Test("one producer alone fills whole commits, its batches split where a commit ends, in order")
    func firehoseAlone() {
        let sink = RecordingSink()
        var queue = FairQueue()
        for index in 0..<3 { queue.append(batch(sink, events: 700, prefix: "b\(index)")) }
        let first = queue.take(upTo: 1000)
        #expect(first.map(\.range) == [0..<700, 0..<300])
        let second = queue.take(upTo: 1000)
        #expect(second.map(\.range) == [300..<700, 0..<600])
        let third = queue.take(upTo: 1000)
        #expect(third.map(\.range) == [600..<700])
        #expect(queue.isEmpty && queue.laneCount == 0)
    }

    @Test("a light producer beside 200 deep ones is all in the next commit")
    func lightBesideFlood() {
        var queue = FairQueue()
        let flooders = (0..<200).map { _ in RecordingSink() }
        for (index, sink) in flooders.enumerated() {
            for round in 0..<10 { queue.append(batch(sink, events: 1000, prefix: "f\(index)-\(round)")) }
        }
        let light = RecordingSink()
        queue.append(batch(light, events: 30, prefix: "light"))
        let commit = queue.take(upTo: 8192)
        #expect(commit.reduce(0) { $0 + $1.range.count } == 8192)
        let lightSlices = commit.filter { $0.batch.sink === light }
        #expect(lightSlices.map(\.range) == [0..<30])
        // Every flooder got its share too: none filled the commit.
        let perSink = Dictionary(grouping: commit, by: { ObjectIdentifier($0.batch.sink) }).mapValues { $0.reduce(0) { $0 + $1.range.count } }
        #expect(perSink.count == 201)
        #expect(perSink.values.max()! <= 8192 / 201 + 8192 % 201 + 1)
    }

    @Test("lanes a full commit did not reach go first in the next one")
    func rotation() {
        var queue = FairQueue()
        let sinks = (0..<10).map { _ in RecordingSink() }
        for (index, sink) in sinks.enumerated() { queue.append(batch(sink, events: 3, prefix: "s\(index)")) }
        let first = queue.take(upTo: 5).map { ObjectIdentifier($0.batch.sink) }
        let second = queue.take(upTo: 5).map { ObjectIdentifier($0.batch.sink) }
        #expect(first == sinks[0..<5].map { ObjectIdentifier($0) })
        #expect(second == sinks[5..<10].map { ObjectIdentifier($0) })
    }

    @Test("every event is taken exactly once and in order per producer, whatever the mix", arguments: [1, 7, 64, 8192])
    func exactlyOnceInOrder(commitSize: Int) {
        var random = SystemRandomNumberGenerator()
        var queue = FairQueue()
        let sinks = (0..<13).map { _ in RecordingSink() }
        var expected: [ObjectIdentifier: [String]] = [:]
        var taken: [ObjectIdentifier: [String]] = [:]
        for round in 0..<40 {
            for _ in 0..<Int.random(in: 0...5, using: &random) {
                let sink = sinks.randomElement(using: &random)!
                let added = batch(sink, events: Int.random(in: 1...300, using: &random), prefix: "r\(round)-\(UUID().uuidString.prefix(6))")
                expected[ObjectIdentifier(sink), default: []] += added.events.map(\.event.id)
                queue.append(added)
            }
            for slice in queue.take(upTo: commitSize) {
                taken[ObjectIdentifier(slice.batch.sink), default: []] += slice.batch.events[slice.range].map(\.event.id)
            }
        }
        while !queue.isEmpty {
            for slice in queue.take(upTo: commitSize) {
                taken[ObjectIdentifier(slice.batch.sink), default: []] += slice.batch.events[slice.range].map(\.event.id)
            }
        }
        #expect(taken == expected)
    }
}

@Suite("Fairness: group commits against a real store")
struct GroupCommitFairnessTests {
    @Test("a well-behaved producer's batches are committed within the next two group commits while 50 producers flood")
    func wellBehavedWithinTwoCommits() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-fair-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try TallyStore(path: path, configuration: .init(meters: [Meter(code: "calls", aggregation: .count)], billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "test"))
        let writer = GroupCommitWriter(writer: try StoreWriter(store: store), maximumEvents: 256, maximumDelayNanoseconds: 1_000_000,
                                       logger: Logger(label: "test"))
        writer.start()
        defer { writer.stop() }

        // 50 flooders keep about 20 batches of 200 events each queued, so the writer is never idle.
        let stop = FloodSwitch()
        let flooders = (0..<50).map { _ in RecordingSink() }
        let floodThread = Thread {
            var submitted = [Int](repeating: 0, count: flooders.count)
            var round = 0
            while !stop.isOn {
                for (index, sink) in flooders.enumerated() where submitted[index] - sink.all.count < 20 {
                    writer.submit(batch(sink, events: 200, prefix: "f\(index)-\(round)", customer: "flood-\(index)"))
                    submitted[index] += 1
                }
                round += 1
                usleep(1_000)
            }
        }
        floodThread.start()
        defer { stop.turnOn() }
        usleep(200_000)

        let good = RecordingSink()
        var waits: [UInt64] = []
        for index in 0..<30 {
            writer.submit(batch(good, events: 3, prefix: "good-\(index)", customer: "good"))
            let done = try #require(good.next())
            #expect(done.outcomes == [.accepted, .accepted, .accepted])
            waits.append(done.committedIn - done.submittedAfterCommit)
        }
        stop.turnOn()
        #expect(waits.allSatisfy { (1...2).contains($0) }, "commits waited: \(waits)")
        // …while the flood was real: its batches waited many commits each.
        let floodWaits = flooders.flatMap(\.all).map { $0.committedIn - $0.submittedAfterCommit }
        #expect((floodWaits.max() ?? 0) > 10, "the flood's batches waited at most \(floodWaits.max() ?? 0) commits")
    }
}

private final class FloodSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var on = false
    var isOn: Bool { lock.withLock { on } }
    func turnOn() { lock.withLock { on = true } }
}

/// The event loop's read allowance for connections pushing hard (``ReadTurns``).
@Suite struct ReadTurnsTests {
    @Test func smallReadsAlwaysPassAndPushingReadsWaitForTheNextTurn() throws {
        let loop = EmbeddedEventLoop()
        let turns = ReadTurns(eventLoop: loop)
        let full = ReadTurns.pushingReadBytes * 4
        var reads = 0
        while turns.mayRead(lastReadBytes: full) {
            turns.spend(full)
            reads += 1
        }
        // The allowance is a turn's worth of full reads, then pushing connections wait...
        #expect(reads == ReadTurns.bytesPerTurn / full)
        // ...while a connection sending a few lines reads at once, and its small reads cost nothing.
        #expect(turns.mayRead(lastReadBytes: 120))
        turns.spend(120)
        #expect(turns.mayRead(lastReadBytes: 0))

        var resumed: [Int] = []
        turns.waitForNextTurn { resumed.append(1) }
        turns.waitForNextTurn { resumed.append(2) }
        #expect(resumed.isEmpty)
        loop.run()
        // The next turn resumes them in the order they waited, with a new allowance.
        #expect(resumed == [1, 2])
        #expect(turns.mayRead(lastReadBytes: full))
        try loop.syncShutdownGracefully()
    }
}

/// Commits are cut at about 15 ms of writing while several connections wait (``GroupCommitWriter``).
@Suite struct CommitLimitTests {
    @Test func oneConnectionAlwaysFillsCommitMaxEvents() {
        #expect(GroupCommitWriter.commitLimit(maximum: 8192, nanosecondsPerEvent: 10_000, lanes: 1) == 8192)
        #expect(GroupCommitWriter.commitLimit(maximum: 8192, nanosecondsPerEvent: 0, lanes: 200) == 8192)
    }

    @Test func severalConnectionsCutASlowCommit() {
        // 5 µs an event: 15 ms is 3,000 events.
        #expect(GroupCommitWriter.commitLimit(maximum: 8192, nanosecondsPerEvent: 5_000, lanes: 2) == 3000)
        // A fast writer is not cut below commit_max_events...
        #expect(GroupCommitWriter.commitLimit(maximum: 8192, nanosecondsPerEvent: 500, lanes: 200) == 8192)
        // ...and a very slow one still commits 512 at a time.
        #expect(GroupCommitWriter.commitLimit(maximum: 8192, nanosecondsPerEvent: 1_000_000, lanes: 200) == 512)
        #expect(GroupCommitWriter.commitLimit(maximum: 100, nanosecondsPerEvent: 1_000_000, lanes: 200) == 100)
    }
}
