import ArgumentParser
import Foundation
import Ingest
import Logging
import TallyConfiguration
import Metering
import Storage

/// `tally bench archive`: archive throughput and compression, and export from the archive.
struct ArchiveBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Archive throughput, compression ratio and export-from-archive throughput.",
        discussion: """
            Records synthetic events (the ones `tally bench ingest` sends: random UUIDv4 ids,
            customers and meters round-robin) with times in January 2026 into a temporary store,
            closes that period, then times one archive run (events/s, the compression ratio against
            the stored binary events and against the NDJSON lines as sent, and the longest write
            transaction: the most a group commit could wait for the archive), the identity expiry of
            every identity, and `tally export`'s reading and formatting of the archived events.

            Example:
              tally bench archive --events 1000000
            """
    )

    @Option(help: "Events to archive.") var events = 1_000_000
    @Option(help: "Distinct customers.") var customers = 1_000
    @Option(help: "Meters.") var meters = 3
    @Option(name: .long, help: "Events per segment (one write transaction each).") var segmentEvents = 32_768
    @Option(name: .long, help: ArgumentHelp("Where to put the temporary store (default: the system's temporary directory).", valueName: "dir"))
    var directory: String?
    @Flag(name: .long, help: "Instead: ack latency of group commits with and without an archive run beside them (the daemon's writer thread, in process).")
    var duringIngest = false

    func validate() throws {
        guard events > 0, customers > 0, meters > 0, segmentEvents > 0 else {
            throw ValidationError("--events, --customers, --meters and --segment-events must be at least 1")
        }
    }

    func run() throws {
        LoggingSetup.bootstrap(level: .warning)
        let base = directory ?? FileManager.default.temporaryDirectory.path
        let path = base + "/tally-bench-archive-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let meterList = (0..<meters).map { Meter(code: "m\($0)", aggregation: $0 == 0 ? .count : .sum) }
        let store = try TallyStore(path: path, configuration: .init(meters: meterList, billingPeriod: .monthly, initialMapSize: 4 << 30),
                                   access: .readWrite, logger: Logger(label: "bench"))
        let writer = try StoreWriter(store: store)
        let time = Timestamp.parseRFC3339("2026-01-15T12:00:00Z")!
        let parser = EventLineParser(meterCodes: Set(meterList.map(\.code)),
                                     limits: .init(maxFutureSkewNanoseconds: 300_000_000_000, dedupWindowNanoseconds: .max / 2))
        print("tally bench archive: \(events) events, \(customers) customers, \(meters) meters, \(segmentEvents) events per segment")
        let lines = IngestBench.makeLines(events: events, customers: customers, meters: meters, time: time)
        let ndjsonBytes = lines.reduce(0) { $0 + $1.count + 1 }
        var batch: [PendingEvent] = []
        let received = Timestamp.now()
        for line in lines {
            guard case .success(let event) = line.withUnsafeBytes({ parser.parse($0, receivedAt: received) }) else {
                throw CommandFailure("a synthetic event did not parse")
            }
            batch.append(PendingEvent(event: event, receivedAt: received))
            if batch.count == 8192 {
                _ = try writer.record(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { _ = try writer.record(batch) }
        try store.closePeriod(BillingPeriod.monthly.interval(containing: time))

        if duringIngest {
            try measureDuringIngest(store: store, writer: writer)
            return
        }
        let archive = EventArchive(store: store, maximumSegmentEvents: segmentEvents)
        let archiveStart = DispatchTime.now().uptimeNanoseconds
        let report = try archive.run(identityCutoff: nil, writeStep: runWriteStepInline)
        let archiveSeconds = Double(DispatchTime.now().uptimeNanoseconds - archiveStart) / 1e9
        guard report.events == events else { throw CommandFailure("archived \(report.events) of \(events) events") }

        let expiryStart = DispatchTime.now().uptimeNanoseconds
        let expiry = try archive.run(identityCutoff: UInt64.max, writeStep: runWriteStepInline)
        let expirySeconds = Double(DispatchTime.now().uptimeNanoseconds - expiryStart) / 1e9

        // The daemon then sweeps its in-memory index in slices, each one step on the writer thread.
        var position: IdentitySweepPosition?
        var longestSlice: UInt64 = 0
        var slices = 0
        repeat {
            let sliceStart = DispatchTime.now().uptimeNanoseconds
            position = writer.forgetIdentities(storedBefore: UInt64.max, from: position)
            longestSlice = max(longestSlice, DispatchTime.now().uptimeNanoseconds - sliceStart)
            slices += 1
        } while position != nil

        let exportStart = DispatchTime.now().uptimeNanoseconds
        var exported = 0
        var exportedBytes = 0
        try archive.forEachEvent { stored in
            exported += 1
            exportedBytes += ExportCommand.line(stored).count
            return true
        }
        let exportSeconds = Double(DispatchTime.now().uptimeNanoseconds - exportStart) / 1e9

        func rate(_ count: Int, _ seconds: Double) -> String { String(format: "%.0f", Double(count) / seconds) }
        func ratio(_ bytes: Int) -> String { String(format: "%.2f", Double(bytes) / Double(report.compressedBytes)) }
        print("archive: \(report.events) events in \(report.segments) segments in \(String(format: "%.2f", archiveSeconds)) s = \(rate(report.events, archiveSeconds)) events/s")
        print("  stored events \(report.eventBytes) B → segments \(report.compressedBytes) B: \(ratio(report.eventBytes)):1 "
            + "(NDJSON as sent: \(ndjsonBytes) B, \(ratio(ndjsonBytes)):1; \(String(format: "%.1f", Double(report.compressedBytes) / Double(events))) B/event)")
        print("  longest archive write transaction: \(String(format: "%.1f", Double(report.longestWriteNanoseconds) / 1e6)) ms")
        print("identity expiry: \(expiry.identitiesExpired) identities in \(String(format: "%.2f", expirySeconds)) s = \(rate(expiry.identitiesExpired, expirySeconds))/s, "
            + "longest transaction \(String(format: "%.1f", Double(expiry.longestWriteNanoseconds) / 1e6)) ms")
        print("index sweep: \(slices) slices, longest \(String(format: "%.1f", Double(longestSlice) / 1e6)) ms (\(writer.identityCount) identities left)")
        print("export from the archive: \(exported) events (\(exportedBytes) B of NDJSON) in \(String(format: "%.2f", exportSeconds)) s = \(rate(exported, exportSeconds)) events/s")
    }

    /// Streams events through a `GroupCommitWriter` (the daemon's writer thread) for a baseline
    /// phase, then again while `ArchiveSchedule.runOnce` archives the closed period beside it, and
    /// prints the ack latency of both: what the archive costs ingest.
    private func measureDuringIngest(store: TallyStore, writer: StoreWriter) throws {
        let commits = GroupCommitWriter(writer: writer, maximumEvents: 8192, maximumDelayNanoseconds: 2_000_000,
                                        logger: Logger(label: "bench"))
        commits.start()
        defer { commits.stop() }
        let schedule = ArchiveSchedule(archive: EventArchive(store: store, maximumSegmentEvents: segmentEvents), writer: commits,
                                       intervalNanoseconds: 3_600_000_000_000, ingest: IngestSettings(), logger: Logger(label: "bench"))
        let producer = LatencyProducer(writer: commits)
        let baseline = producer.run(seconds: 3)
        let started = DispatchTime.now().uptimeNanoseconds
        let report = Locked<ArchiveReport?>(nil)
        let archiving = Thread { report.value = try? schedule.runOnce() }
        archiving.start()
        let during = producer.run(until: { report.value != nil })
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        guard let report = report.value, report.events == events else { throw CommandFailure("the archive run did not archive every event") }
        func line(_ name: String, _ phase: LatencyProducer.Phase) -> String {
            let sorted = phase.latencies.sorted()
            func ms(_ value: UInt64) -> String { String(format: "%.1f", Double(value) / 1e6) }
            return "\(name): \(phase.events) events in \(String(format: "%.2f", phase.seconds)) s = \(String(format: "%.0f", Double(phase.events) / phase.seconds)) events/s; "
                + "ack latency p50 \(ms(sorted[sorted.count / 2])) ms, p99 \(ms(sorted[sorted.count * 99 / 100])) ms, max \(ms(sorted.last!)) ms"
        }
        print(line("ingest alone        ", baseline))
        print(line("ingest with archive ", during))
        print("archive run beside ingest: \(report.events) events in \(String(format: "%.2f", seconds)) s; longest writer-thread step \(String(format: "%.1f", Double(report.longestWriteNanoseconds) / 1e6)) ms")
    }
}

/// A value shared between the bench's threads.
private final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// Keeps 16 batches of 512 new events in flight through a `GroupCommitWriter` and records how long
/// each batch waited for its answers.
private final class LatencyProducer: IngestBatchSink, @unchecked Sendable {
    struct Phase {
        var events = 0
        var seconds = 0.0
        var latencies: [UInt64] = []
    }

    private let writer: GroupCommitWriter
    private let condition = NSCondition()
    private var inFlight = 0
    private var latencies: [UInt64] = []
    private var submittedAt: [UInt64: UInt64] = [:]
    private var nextTag: UInt64 = 0
    private var counter = 0

    init(writer: GroupCommitWriter) {
        self.writer = writer
    }

    func batchesCompleted(_ batches: [IngestBatch]) {
        let now = DispatchTime.now().uptimeNanoseconds
        condition.lock()
        for batch in batches {
            if let sent = submittedAt.removeValue(forKey: batch.tag) { latencies.append(now - sent) }
            inFlight -= 1
        }
        condition.broadcast()
        condition.unlock()
    }

    func run(seconds: Double) -> Phase {
        let end = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        return run(until: { DispatchTime.now().uptimeNanoseconds >= end })
    }

    func run(until done: () -> Bool) -> Phase {
        let started = DispatchTime.now().uptimeNanoseconds
        var events = 0
        condition.lock()
        latencies.removeAll()
        condition.unlock()
        let received = Timestamp.now()
        while !done() {
            condition.lock()
            while inFlight >= 16 { condition.wait() }
            inFlight += 1
            nextTag += 1
            let tag = nextTag
            submittedAt[tag] = DispatchTime.now().uptimeNanoseconds
            condition.unlock()
            var pending: [PendingEvent] = []
            pending.reserveCapacity(512)
            for _ in 0..<512 {
                counter += 1
                pending.append(PendingEvent(
                    event: UsageEvent(id: "live-\(counter)", customer: "cus_\(counter % 1000)", meter: "m0", value: 1, time: nil, properties: []),
                    receivedAt: received))
            }
            writer.submit(IngestBatch(events: pending, sink: self, tag: tag))
            events += 512
        }
        condition.lock()
        while inFlight > 0 { condition.wait() }
        let phase = Phase(events: events, seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9, latencies: latencies)
        condition.unlock()
        return phase
    }
}
