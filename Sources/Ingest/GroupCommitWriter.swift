import Foundation
public import Logging
public import Metering
public import Storage

/// Something waiting for the outcomes of the events it handed to the writer: one connection.
public protocol IngestBatchSink: AnyObject, Sendable {
    /// Called on the writer thread once per group commit with every batch of this sink that the
    /// commit holds, in submission order. Must return quickly (hop to the sink's own thread).
    func batchesCompleted(_ batches: [IngestBatch])
}

/// Events of one read from one connection, handed to the writer as a unit.
///
/// Created on a connection's event loop, filled in by the writer thread, then handed back; only
/// one side touches it at a time, which is why it is `@unchecked Sendable`.
public final class IngestBatch: @unchecked Sendable {
    /// The events, in line order.
    public let events: [PendingEvent]
    /// One outcome per event once the batch has been committed.
    public internal(set) var outcomes: [RecordOutcome] = []
    /// Customers past a `disable` limit after the commit: their answers carry `"blocked":true`.
    public internal(set) var blockedCustomers: Set<String> = []
    /// Who gets the outcomes.
    public let sink: any IngestBatchSink
    /// The connection's own tag for this batch.
    public let tag: UInt64

    public init(events: [PendingEvent], sink: any IngestBatchSink, tag: UInt64) {
        self.events = events
        self.sink = sink
        self.tag = tag
    }
}

/// Measurements of one group commit, for logs, metrics and the alert dispatcher.
public struct GroupCommitReport: Sendable {
    public var events: Int
    public var accepted: Int
    public var durationNanoseconds: UInt64
    /// Alerts the commit fired (already durable in the store's outbox).
    public var alertsFired: [Alert]
}

/// The dedicated OS thread that owns every LMDB write transaction and closes group commits.
///
/// A group commit closes when it holds `commitMaxEvents` events or `commitMaxDelay` after its first
/// event arrived, whichever comes first. While one commit is being written and fsynced, the next
/// fills up, so commits grow with the load. Outcomes go back to each connection once per commit.
public final class GroupCommitWriter: @unchecked Sendable {
    private let writer: StoreWriter
    private let maximumEvents: Int
    private let maximumDelayNanoseconds: UInt64
    private let logger: Logger
    private let onCommit: @Sendable (GroupCommitReport) -> Void
    private let metrics = IngestMetrics()

    private let condition = NSCondition()
    private var queue: [IngestBatch] = []
    private var queuedEvents = 0
    private var firstQueuedAt: UInt64 = 0
    private var stopping = false
    private var thread: Thread?
    private let finished = NSCondition()
    private var isFinished = false

    public init(writer: StoreWriter, maximumEvents: Int, maximumDelayNanoseconds: Int64, logger: Logger,
                onCommit: @escaping @Sendable (GroupCommitReport) -> Void = { _ in }) {
        self.writer = writer
        self.maximumEvents = max(1, maximumEvents)
        self.maximumDelayNanoseconds = UInt64(max(0, maximumDelayNanoseconds))
        self.logger = logger
        self.onCommit = onCommit
    }

    /// Starts the writer thread.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "tally-writer"
        thread.qualityOfService = .userInitiated
        self.thread = thread
        thread.start()
    }

    /// Queues a batch for the next group commit. Safe from any thread.
    public func submit(_ batch: IngestBatch) {
        condition.lock()
        if queue.isEmpty { firstQueuedAt = monotonicNanoseconds() }
        queue.append(batch)
        queuedEvents += batch.events.count
        condition.signal()
        condition.unlock()
    }

    /// Commits everything queued, then stops the thread and waits for it.
    public func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        finished.lock()
        while !isFinished { finished.wait() }
        finished.unlock()
    }

    private func run() {
        while let batches = nextGroup() {
            commit(batches)
        }
        finished.lock()
        isFinished = true
        finished.broadcast()
        finished.unlock()
    }

    /// Waits until a group commit is due and takes its batches; nil when stopping with nothing left.
    private func nextGroup() -> [IngestBatch]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if !queue.isEmpty {
                if queuedEvents >= maximumEvents || stopping { break }
                let due = firstQueuedAt &+ maximumDelayNanoseconds
                let now = monotonicNanoseconds()
                if now >= due { break }
                _ = condition.wait(until: Date(timeIntervalSinceNow: TimeInterval(due - now) / 1e9))
                continue
            }
            if stopping { return nil }
            condition.wait()
        }
        // Take whole batches up to the limit (at least one).
        var taken = 0
        var events = 0
        while taken < queue.count, taken == 0 || events + queue[taken].events.count <= maximumEvents {
            events += queue[taken].events.count
            taken += 1
        }
        let group = Array(queue[..<taken])
        queue.removeFirst(taken)
        queuedEvents -= events
        // Batches left behind have waited through this commit already: the next one is due at once.
        return group
    }

    private func commit(_ batches: [IngestBatch]) {
        let started = monotonicNanoseconds()
        var pending: [PendingEvent] = []
        pending.reserveCapacity(batches.reduce(0) { $0 + $1.events.count })
        for batch in batches { pending.append(contentsOf: batch.events) }
        var outcomes: [RecordOutcome]
        var summary = CommitSummary()
        do {
            outcomes = try writer.record(pending)
            summary = writer.lastCommit
        } catch {
            logger.error("group commit failed; answering its events unavailable", metadata: ["error": "\(error.message)"])
            let unavailable = IngestError(
                code: .unavailable,
                message: "the store cannot take writes now (\(error.message)); nothing was recorded, retry later",
                field: nil)
            outcomes = Array(repeating: .rejected(unavailable), count: pending.count)
        }
        var offset = 0
        for batch in batches {
            batch.outcomes = Array(outcomes[offset..<(offset + batch.events.count)])
            batch.blockedCustomers = summary.blockedCustomers
            offset += batch.events.count
        }
        // One hand-back per connection per commit, in submission order.
        var order: [ObjectIdentifier] = []
        var bySink: [ObjectIdentifier: [IngestBatch]] = [:]
        for batch in batches {
            let id = ObjectIdentifier(batch.sink)
            if bySink[id] == nil { order.append(id) }
            bySink[id, default: []].append(batch)
        }
        for id in order {
            let list = bySink[id]!
            list[0].sink.batchesCompleted(list)
        }
        let accepted = outcomes.reduce(0) { $1 == .accepted ? $0 + 1 : $0 }
        metrics.record(outcomes: outcomes, durationNanoseconds: monotonicNanoseconds() - started, alerts: summary.alertsFired.count)
        onCommit(GroupCommitReport(events: pending.count, accepted: accepted, durationNanoseconds: monotonicNanoseconds() - started,
                                   alertsFired: summary.alertsFired))
    }
}

/// Nanoseconds on the monotonic clock.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}
