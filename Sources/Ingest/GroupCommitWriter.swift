import Foundation
import Glibc
public import Logging
import Metering
public import Storage
public import TallyConfiguration

/// Something waiting for the outcomes of the events it handed to the writer: one connection.
public protocol IngestBatchSink: AnyObject, Sendable {
    /// Called on the writer thread once per group commit with every batch of this sink that the
    /// commit holds, in submission order. Must return quickly (hop to the sink's own thread).
    func batchesCompleted(_ batches: [IngestBatch])
}

/// Where a connection hands its batches: the group-commit writer itself, or in cluster mode a
/// router that sends each event to its partition's owner.
public protocol IngestSubmitter: AnyObject, Sendable {
    /// The memory budget every front end submitting here shares (`ingest.max_buffered_bytes`).
    var budget: BufferBudget { get }
    /// Takes a batch; its sink gets it back once every event of it has an outcome. Any thread.
    func submit(_ batch: IngestBatch)
}

/// Events of one read from one connection (or of one HTTP request), handed to the writer as a unit.
///
/// Created on a connection's event loop, filled in by the writer thread, then handed back; only
/// one side touches it at a time, which is why it is `@unchecked Sendable`. A batch may be split
/// over consecutive group commits (see ``FairQueue``); it is handed back once all of it is durable.
public final class IngestBatch: @unchecked Sendable {
    /// The events, in line order.
    public let events: [PendingEvent]
    /// One outcome per event once the batch has been committed.
    public internal(set) var outcomes: [RecordOutcome] = []
    /// Per event, the `disable` limit its customer is past after the commit that recorded it (its
    /// answer carries `"blocked":true` and `"limit":{…}`); empty when no event's customer is.
    public internal(set) var blocked: [BlockingLimit?] = []
    /// How many group commits the writer had taken when the batch was submitted: the batch's events
    /// go into later commits. With ``committedIn``, how fairness is observed.
    public internal(set) var submittedAfterCommit: UInt64 = 0
    /// The number of the group commit that completed the batch (commits count from 1).
    public internal(set) var committedIn: UInt64 = 0
    /// Who gets the outcomes.
    public let sink: any IngestBatchSink
    /// The connection's own tag for this batch.
    public let tag: UInt64

    public init(events: [PendingEvent], sink: any IngestBatchSink, tag: UInt64) {
        self.events = events
        self.sink = sink
        self.tag = tag
    }

    /// Sets every event's outcome at once: what a router does that recorded the batch's events
    /// elsewhere (cluster mode), before handing the batch back to its sink.
    public func complete(outcomes: [RecordOutcome], blocked: [BlockingLimit?] = []) {
        self.outcomes = outcomes
        self.blocked = blocked
    }
}

/// What the writer thread records each group commit with: one store (`StoreWriter`, single-node
/// mode), or a cluster node's partitions (each its own store, replicated through its log).
/// Called on the writer thread only.
public protocol GroupCommitRecorder: AnyObject {
    /// Records one group commit's events; one outcome per event, in order. Throws when nothing of
    /// it could be recorded.
    func record(_ pending: [PendingEvent]) throws(StoreError) -> [RecordOutcome]
    /// What the last successful `record` fired and blocked.
    var lastCommit: CommitSummary { get }
    /// After the last commit: folds logged usage into the stores' tables.
    func foldLoggedUsage() throws(StoreError)
    /// After the last commit: saves the identity index beside the store, for a fast next start.
    func saveIdentityIndex() throws(StoreError)
}

extension StoreWriter: GroupCommitRecorder {
    public func record(_ pending: [PendingEvent]) throws(StoreError) -> [RecordOutcome] {
        try record(pending, replicatedAs: nil)
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
/// event arrived, whichever comes first. While several connections wait, it also holds no more
/// events than the writer writes in about ``commitTargetNanoseconds`` (measured), so a producer's
/// lines never wait long behind the others'. While one commit is being written and fsynced, the next
/// fills up, so commits grow with the load. Outcomes go back to each connection once per commit.
public final class GroupCommitWriter: IngestSubmitter, @unchecked Sendable {
    private let writer: any GroupCommitRecorder
    private let maximumEvents: Int
    private let maximumDelayNanoseconds: UInt64
    private let logger: Logger
    private let onCommit: @Sendable (GroupCommitReport) -> Void
    private let metrics = IngestMetrics()
    /// The memory budget of everything read and not yet answered, shared by every front end that
    /// submits to this writer (`ingest.max_buffered_bytes`).
    public let budget: BufferBudget

    private let condition = NSCondition()
    private var queue = FairQueue()
    /// Group commits taken from the queue so far (under `condition`).
    private var commitsTaken: UInt64 = 0
    /// Maintenance jobs (archive steps) waiting for the writer thread, run between group commits.
    private var jobs: [MaintenanceJob] = []
    private var firstQueuedAt: UInt64 = 0
    /// What one event of a recent commit cost the writer (a moving average; 0 until measured).
    /// Only the writer thread touches it.
    private var nanosecondsPerEvent: UInt64 = 0

    /// How long a commit may take to write while several connections wait: what a producer's lines
    /// read during one commit wait at most before theirs starts. Commits of 2,048 and of 8,192 events
    /// give about the same throughput (BENCHMARKS.md), so cutting a slow commit short costs little.
    static let commitTargetNanoseconds: UInt64 = 15_000_000
    /// Commits are never cut below this many events.
    static let minimumCommitEvents = 512

    /// The events the next commit may hold: `commitMaxEvents`, or, while several connections wait,
    /// fewer when the writer is slower than ``commitTargetNanoseconds`` for that many. Under
    /// `condition`.
    private var commitLimit: Int {
        Self.commitLimit(maximum: maximumEvents, nanosecondsPerEvent: nanosecondsPerEvent, lanes: queue.laneCount)
    }

    /// `maximum`, or with more than one lane waiting and a measured cost per event, the events that
    /// fit ``commitTargetNanoseconds`` (at least ``minimumCommitEvents``, at most `maximum`).
    static func commitLimit(maximum: Int, nanosecondsPerEvent: UInt64, lanes: Int) -> Int {
        guard nanosecondsPerEvent > 0, lanes > 1 else { return maximum }
        let affordable = Int(clamping: commitTargetNanoseconds / nanosecondsPerEvent)
        return min(maximum, max(minimumCommitEvents, affordable))
    }

    private var stopping = false
    private var thread: Thread?
    private let finished = NSCondition()
    private var isFinished = false

    public init(writer: any GroupCommitRecorder, maximumEvents: Int, maximumDelayNanoseconds: Int64, logger: Logger,
                budget: BufferBudget = BufferBudget(limit: IngestSettings.defaultMaxBufferedBytes),
                onCommit: @escaping @Sendable (GroupCommitReport) -> Void = { _ in }) {
        self.writer = writer
        self.budget = budget
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

    /// Queues a batch for the next group commits, in its sink's lane (connections and requests are
    /// served round-robin). Safe from any thread. A batch without events is handed back at once.
    public func submit(_ batch: IngestBatch) {
        guard !batch.events.isEmpty else {
            batch.sink.batchesCompleted([batch])
            return
        }
        condition.lock()
        if queue.isEmpty { firstQueuedAt = monotonicNanoseconds() }
        batch.submittedAfterCommit = commitsTaken
        queue.append(batch)
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
        try perform { recorder in
            guard let writer = recorder as? StoreWriter else {
                throw StoreError(.unavailable, "this maintenance step runs on a single-node store, not in cluster mode")
            }
            try job(writer)
        }
    }

    /// Runs `job` with the writer's recorder on the writer thread, between two group commits, and
    /// waits for it, as `performAndWait` does (cluster mode: taking and giving up partitions).
    public func perform(_ job: @escaping @Sendable (any GroupCommitRecorder) throws -> Void) throws -> UInt64 {
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
            case .commit(let slices, let number): commit(slices, number: number)
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
        case commit([FairQueue.Slice], number: UInt64)
        case job(MaintenanceJob)
    }

    /// Waits until a group commit is due (and takes its batches) or a maintenance job is queued; a
    /// due commit goes first. Nil when stopping with nothing left.
    private func nextWork() -> Work? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if !queue.isEmpty {
                if queue.events >= commitLimit || stopping { break }
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
        // Events left behind have waited through this commit already: the next one is due at once.
        commitsTaken += 1
        return .commit(queue.take(upTo: commitLimit), number: commitsTaken)
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

    private func commit(_ slices: [FairQueue.Slice], number: UInt64) {
        let started = monotonicNanoseconds()
        var pending: [PendingEvent] = []
        pending.reserveCapacity(slices.reduce(0) { $0 + $1.range.count })
        for slice in slices { pending.append(contentsOf: slice.batch.events[slice.range]) }
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
        // A batch's slices come in order, over consecutive commits: its outcomes are appended.
        var completed: [IngestBatch] = []
        var offset = 0
        for slice in slices {
            let batch = slice.batch
            if slice.range.count < batch.events.count, batch.outcomes.isEmpty {
                batch.outcomes.reserveCapacity(batch.events.count)
            }
            batch.outcomes.append(contentsOf: outcomes[offset..<(offset + slice.range.count)])
            if !summary.blocking.isEmpty {
                if batch.blocked.isEmpty { batch.blocked = Array(repeating: nil, count: batch.events.count) }
                for index in slice.range { batch.blocked[index] = summary.blocking[batch.events[index].event.customer] }
            }
            offset += slice.range.count
            if batch.outcomes.count == batch.events.count {
                batch.committedIn = number
                completed.append(batch)
            }
        }
        // One hand-back per sink per commit, in submission order.
        var order: [ObjectIdentifier] = []
        var bySink: [ObjectIdentifier: [IngestBatch]] = [:]
        for batch in completed {
            let id = ObjectIdentifier(batch.sink)
            if bySink[id] == nil { order.append(id) }
            bySink[id, default: []].append(batch)
        }
        for id in order {
            let list = bySink[id]!
            list[0].sink.batchesCompleted(list)
        }
        let accepted = outcomes.reduce(0) { $1 == .accepted ? $0 + 1 : $0 }
        let duration = monotonicNanoseconds() - started
        if pending.count >= Self.minimumCommitEvents {
            let perEvent = max(1, duration / UInt64(pending.count))
            nanosecondsPerEvent = nanosecondsPerEvent == 0 ? perEvent : (nanosecondsPerEvent * 7 + perEvent) / 8
        }
        metrics.record(outcomes: outcomes, durationNanoseconds: duration, alerts: summary.alertsFired.count)
        onCommit(GroupCommitReport(events: pending.count, accepted: accepted, durationNanoseconds: duration,
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
    let body: @Sendable (any GroupCommitRecorder) throws -> Void
    private let done = NSCondition()
    private var result: Result<Void, any Error>?
    private var duration: UInt64 = 0

    init(_ body: @escaping @Sendable (any GroupCommitRecorder) throws -> Void) {
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
