import Foundation
public import Logging
import Metrics
public import TallyConfiguration
import Metering
public import Storage

/// Runs the event archive inside `tally serve` every `archive.interval`: closed periods' events into
/// segments, expired identities out of LMDB and out of the writer's in-memory index.
///
/// The reading and compressing happen on the schedule's own thread; every write is one short step
/// on the writer thread between group commits (``GroupCommitWriter/performAndWait(_:)``), so ingest
/// waits at most one step for the archive.
public final class ArchiveSchedule: @unchecked Sendable {
    private let archive: EventArchive
    private let writer: GroupCommitWriter
    private let intervalNanoseconds: Int64
    private let ingest: IngestSettings
    private let logger: Logger
    private let condition = NSCondition()
    private var stopping = false
    private var finished = false
    private var thread: Thread?
    private let archivedEvents = Counter(label: IngestMetricFamilies.archivedEvents)
    private let expiredIdentities = Counter(label: IngestMetricFamilies.expiredIdentities)
    private let runFailures = Counter(label: IngestMetricFamilies.archiveFailures)

    /// Creates the schedule's counters without a schedule, so that their families are on
    /// `/metrics` (at zero) even with `archive.interval: 0`.
    static func declareMetrics() {
        _ = Counter(label: IngestMetricFamilies.archivedEvents)
        _ = Counter(label: IngestMetricFamilies.expiredIdentities)
        _ = Counter(label: IngestMetricFamilies.archiveFailures)
    }

    /// - Parameters:
    ///   - intervalNanoseconds: time between the end of one run and the start of the next; the
    ///     first run starts one interval after the daemon, or a minute when the interval is longer
    ///     (so that a run cut short by a restart is finished soon).
    public init(archive: EventArchive, writer: GroupCommitWriter, intervalNanoseconds: Int64, ingest: IngestSettings, logger: Logger) {
        self.archive = archive
        self.writer = writer
        self.intervalNanoseconds = max(1, intervalNanoseconds)
        self.ingest = ingest
        self.logger = logger
    }

    /// Starts the schedule's thread.
    public func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "tally-archive"
        thread.qualityOfService = .utility
        condition.lock()
        self.thread = thread
        condition.unlock()
        thread.start()
    }

    /// Stops the schedule and waits for a run in progress to end at its next step.
    public func stop() {
        condition.lock()
        guard thread != nil else {
            stopping = true
            condition.unlock()
            return
        }
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    private func loop() {
        var wait = min(intervalNanoseconds, 60_000_000_000)
        while waitForNextRun(nanoseconds: wait) {
            wait = intervalNanoseconds
            do {
                _ = try runOnce()
            } catch {
                runFailures.increment()
                if !isStopping {
                    logger.error("archive run failed; the next run retries", metadata: ["error": "\(error)"])
                }
            }
        }
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Sleeps `nanoseconds`; false when stopping.
    private func waitForNextRun(nanoseconds: Int64) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: TimeInterval(nanoseconds) / 1e9)
        while !stopping {
            if !condition.wait(until: deadline) { return !stopping }
        }
        return false
    }

    /// One archive run now, on the calling thread (which must not be the writer's).
    public func runOnce() throws -> ArchiveReport {
        let cutoff = EventArchive.identityCutoff(
            now: .now(), dedupWindowNanoseconds: ingest.dedupWindowNanoseconds,
            maxFutureSkewNanoseconds: ingest.maxFutureSkewNanoseconds)
        let writer = self.writer
        var report = try archive.run(identityCutoff: cutoff) { step in
            if self.isStopping { throw CancellationError() }
            return try writer.performAndWait { _ in try step() }
        }
        // Drop forgotten identities from the in-memory index too, a bounded slice per step (also
        // those a `tally archive` beside the daemon forgot in LMDB).
        let position = StepOutput<IdentitySweepPosition?>(nil)
        repeat {
            if isStopping { throw CancellationError() }
            let duration = try writer.performAndWait { storeWriter in
                position.value = storeWriter.forgetIdentities(storedBefore: cutoff, from: position.value)
            }
            report.longestWriteNanoseconds = max(report.longestWriteNanoseconds, duration)
        } while position.value != nil
        archivedEvents.increment(by: report.events)
        expiredIdentities.increment(by: report.identitiesExpired)
        return report
    }
}
