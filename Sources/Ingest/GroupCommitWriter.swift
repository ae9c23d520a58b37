import Foundation
import Glibc
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
    /// Customers past a `disable` limit after the commit, with the limit that blocks each: their
    /// answers carry `"blocked":true` and `"limit":{…}`.
    public internal(set) var blocking: [String: BlockingLimit] = [:]
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
    /// Maintenance jobs (archive steps) waiting for the writer thread, run between group commits.
    private var jobs: [MaintenanceJob] = []
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
        let thread = Thread { [self] in
            // Foundation keeps `name` to itself on Linux: name the OS thread, for top, perf and /proc.
            let comm = open("/proc/thread-self/comm", O_WRONLY)
            if comm >= 0 {
                _ = write(comm, "tally-writer", 12)
                close(comm)
            }
            run()
        }
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

    /// Runs `job` on the writer thread, between two group commits, and waits for it; returns how long
    /// it ran (what a group commit may have waited for it). Call from a thread of your own, never
    /// from the cooperative pool or an event loop. Throws the job's error, or
    /// ``StoreError/Code/unavailable`` when the writer is stopping.
    ///
    /// Keep jobs short (one bounded LMDB transaction): a group commit that comes due meanwhile waits.
    public func performAndWait(_ job: @escaping @Sendable (StoreWriter) throws -> Void) throws -> UInt64 {
        let work = MaintenanceJob(job)
        condition.lock()
        if stopping {
            condition.unlock()
            throw StoreError(.unavailable, "the daemon is stopping: maintenance is left for the next start")
        }
        jobs.append(work)
        condition.signal()
        condition.unlock()
        return try work.wait()
    }

    /// Commits everything queued, then stops the thread and waits for it. Maintenance jobs not yet
    /// started fail with ``StoreError/Code/unavailable``.
    public func stop() {
        condition.lock()
        stopping = true
        let abandoned = jobs
        jobs.removeAll()
        condition.signal()
        condition.unlock()
        for job in abandoned {
            job.finish(.failure(StoreError(.unavailable, "the daemon is stopping: maintenance is left for the next start")), duration: 0)
        }
        finished.lock()
        while !isFinished { finished.wait() }
        finished.unlock()
    }

    private func run() {
        while let work = nextWork() {
            switch work {
            case .commit(let batches): commit(batches)
            case .job(let job): runJob(job)
            }
        }
        // After the last commit: usage logged by recent commits goes into `usage`, so the stopped
        // store holds it where every reader (and an older tally) looks first.
        do {
            try writer.foldLoggedUsage()
        } catch {
            logger.error("could not fold the logged usage at stop; the next start reads it from the log",
                         metadata: ["error": "\(error.message)"])
        }
        // And the identity index goes beside the store, so the next start reads one file instead
        // of every identity in LMDB.
        do {
            try writer.saveIdentityIndex()
        } catch {
            logger.warning("could not save the identity index; the next start rebuilds it from the store",
                           metadata: ["error": "\(error.message)"])
        }
        finished.lock()
        isFinished = true
        finished.broadcast()
        finished.unlock()
    }

    private enum Work {
        case commit([IngestBatch])
        case job(MaintenanceJob)
    }

    /// Waits until a group commit is due (and takes its batches) or a maintenance job is queued; a
    /// due commit goes first. Nil when stopping with nothing left.
    private func nextWork() -> Work? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if !queue.isEmpty {
                if queuedEvents >= maximumEvents || stopping { break }
                let due = firstQueuedAt &+ maximumDelayNanoseconds
                let now = monotonicNanoseconds()
                if now >= due { break }
                if !jobs.isEmpty { return .job(jobs.removeFirst()) }
                _ = condition.wait(until: Date(timeIntervalSinceNow: TimeInterval(due - now) / 1e9))
                continue
            }
            if !jobs.isEmpty { return .job(jobs.removeFirst()) }
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
        return .commit(group)
    }

    private func runJob(_ job: MaintenanceJob) {
        let started = monotonicNanoseconds()
        let result: Result<Void, any Error>
        do {
            try job.body(writer)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        let duration = monotonicNanoseconds() - started
        metrics.recordMaintenance(durationNanoseconds: duration)
        job.finish(result, duration: duration)
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
            batch.blocking = summary.blocking
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

/// A maintenance step waiting for the writer thread, and the thread waiting for its result.
private final class MaintenanceJob: @unchecked Sendable {
    let body: @Sendable (StoreWriter) throws -> Void
    private let done = NSCondition()
    private var result: Result<Void, any Error>?
    private var duration: UInt64 = 0

    init(_ body: @escaping @Sendable (StoreWriter) throws -> Void) {
        self.body = body
    }

    func finish(_ result: Result<Void, any Error>, duration: UInt64) {
        done.lock()
        self.result = result
        self.duration = duration
        done.broadcast()
        done.unlock()
    }

    func wait() throws -> UInt64 {
        done.lock()
        defer { done.unlock() }
        while result == nil { done.wait() }
        try result!.get()
        return duration
    }
}
