import Crypto
import Foundation
import LMDB
public import Metering
import Zstd

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The event archive: events of closed periods leave the live LMDB store as zstd-compressed,
// checksummed segment files in `<store>/archive/`.
//
// One segment moves in one step:
// 1. a read transaction picks up to `maximumSegmentEvents` events of closed periods, in sequence
//    order, and their bytes are compressed into `archive/.<number>.tmp`, fsynced, renamed to
//    `archive/<number>.tseg` and the directory fsynced;
// 2. one write transaction checks that every one of those events is still live, deletes them from
//    `events` and records the segment (sequences, times, sizes, SHA-256 of the file) in
//    `archive_segments`.
// A crash between the two leaves a file that no record names: the next run deletes it and moves the
// same events again. A crash after 2 leaves a complete segment. Either way every event is in exactly
// one place, and a read transaction sees a consistent split between the live store and the segments
// it records (segment files are never changed or deleted once recorded).
//
// Segment file: one zstd frame (with content size and checksum) of the events in columns
// (`SegmentCodec.swift`).

/// One archived segment of events, as recorded in the store.
public struct ArchiveSegment: Sendable, Hashable {
    /// The segment's number, from 1, in the order segments were recorded.
    public var number: UInt64
    /// The first and last event sequence in the segment (events are in sequence order).
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    /// How many events the segment holds.
    public var events: Int
    /// The earliest and latest effective time of its events.
    public var earliestTime: Timestamp
    public var latestTime: Timestamp
    /// The size of the segment's content before and after compression, in bytes.
    public var uncompressedBytes: Int
    public var compressedBytes: Int
    /// The SHA-256 of the segment file.
    public var sha256: [UInt8]

    /// The segment's file name in the archive directory.
    public var fileName: String { Self.fileName(number) }

    static func fileName(_ number: UInt64) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".tseg"
    }

    static let recordFormat: UInt8 = 1

    func encode() -> [UInt8] {
        var value: [UInt8] = [Self.recordFormat]
        value.appendBigEndian(firstSequence)
        value.appendBigEndian(lastSequence)
        value.appendBigEndian(UInt64(events))
        value.appendOrdered(earliestTime.nanosecondsSinceEpoch)
        value.appendOrdered(latestTime.nanosecondsSinceEpoch)
        value.appendBigEndian(UInt64(uncompressedBytes))
        value.appendBigEndian(UInt64(compressedBytes))
        value.append(contentsOf: sha256)
        return value
    }

}

extension ArchiveSegment {
    init?(number: UInt64, decoding bytes: UnsafeRawBufferPointer) {
        var reader = ByteReader(bytes: bytes)
        guard reader.byte() == Self.recordFormat, let first = reader.uint64(), let last = reader.uint64(),
              let events = reader.uint64(), let earliest = reader.orderedInt64(), let latest = reader.orderedInt64(),
              let uncompressed = reader.uint64(), let compressed = reader.uint64(),
              bytes.count - reader.offset == 32
        else { return nil }
        self.init(number: number, firstSequence: first, lastSequence: last, events: Int(events),
                  earliestTime: Timestamp(nanosecondsSinceEpoch: earliest), latestTime: Timestamp(nanosecondsSinceEpoch: latest),
                  uncompressedBytes: Int(uncompressed), compressedBytes: Int(compressed),
                  sha256: Array(UnsafeRawBufferPointer(rebasing: bytes[reader.offset...])))
    }
}

/// A segment written to disk but not yet recorded in the store: the output of
/// ``EventArchive/prepareSegment(scanningFrom:closedPeriods:)``.
public struct PreparedSegment: Sendable {
    /// The segment as it will be recorded.
    public var segment: ArchiveSegment
    /// The sequences of its events, ascending.
    public var sequences: [UInt64]
    /// The size of its events in the live store.
    public var eventBytes: Int
    /// Where the next segment's scan may start: past the last event this one looked at.
    public var nextScanSequence: UInt64
}

/// What one archive run did.
public struct ArchiveReport: Sendable, Hashable {
    /// Segments written and recorded.
    public var segments = 0
    /// Events moved out of the live store.
    public var events = 0
    /// The size of those events in the live store (their `EventCodec` values).
    public var eventBytes = 0
    /// The segments' content before and after compression.
    public var uncompressedBytes = 0
    public var compressedBytes = 0
    /// Identities older than the dedup window that were forgotten.
    public var identitiesExpired = 0
    /// The longest single write transaction of the run, in nanoseconds: how long ingest could wait for it.
    public var longestWriteNanoseconds: UInt64 = 0

    public init() {}
}

/// The event archive of a store: segment files beside the store and their records in it.
///
/// Reading (``segments()``, ``forEachEvent(from:to:_:)``, ``verify()``) works from any process.
/// An archive run (``run(identityCutoff:writeStep:)``) holds `archive/.lock`, so that a
/// scheduled run in `tally serve` and `tally archive` never write the same segment.
public final class EventArchive: Sendable {
    /// The store the archive belongs to.
    public let store: TallyStore
    /// The directory of the segment files: `<store>/archive`.
    public let directory: String
    /// The most events one segment (and so one write transaction) holds.
    public let maximumSegmentEvents: Int
    /// The most identities one write transaction forgets.
    public let maximumIdentitiesPerStep: Int

    public init(store: TallyStore, maximumSegmentEvents: Int = 32_768, maximumIdentitiesPerStep: Int = 65_536) {
        self.store = store
        directory = store.path + "/archive"
        self.maximumSegmentEvents = max(1, maximumSegmentEvents)
        self.maximumIdentitiesPerStep = max(1, maximumIdentitiesPerStep)
    }

    /// The path of a segment's file.
    public func path(of segment: ArchiveSegment) -> String {
        directory + "/" + segment.fileName
    }

    // MARK: Reading

    /// Every recorded segment, in number order.
    public func segments() throws(StoreError) -> [ArchiveSegment] {
        try store.readStore("read the archive's segments") { transaction in
            try segments(in: transaction)
        }
    }

    /// The number of the last recorded segment, 0 when there is none.
    func lastSegmentNumber(in transaction: borrowing some ReadableTransaction & ~Copyable) throws -> UInt64 {
        guard let database = store.archiveSegments else { return 0 }
        return try transaction.withCursor(database) { cursor in try cursor.last().map { $0.key.loadBigEndianUInt64(at: 0) } } ?? 0
    }

    func segments(in transaction: borrowing ReadTransaction) throws -> [ArchiveSegment] {
        guard let database = store.archiveSegments else { return [] }
        var result: [ArchiveSegment] = []
        try transaction.forEach(database, prefix: []) { key, value in
            let number = key.loadBigEndianUInt64(at: 0)
            guard let segment = ArchiveSegment(number: number, decoding: value) else {
                throw StoreError(.incompatible, "the record of archive segment \(number) in the store at '\(store.path)' is damaged: restore the store from a backup")
            }
            result.append(segment)
        }
        return result
    }

    /// Calls `body` with every event of `segment`, in sequence order, after checking the file
    /// against its recorded SHA-256; stops when `body` returns false. Returns whether it went to the end.
    ///
    /// Throws ``StoreError/Code/damaged`` naming the file when it is missing, changed or unreadable.
    @discardableResult
    public func forEachEvent(in segment: ArchiveSegment, _ body: (StoredEvent) throws -> Bool) throws -> Bool {
        try Self.forEachEvent(of: decoder(for: segment), shownAs: path(of: segment), body)
    }

    /// Calls `body` with each event of a segment's decompressed content (a `.tseg` file after zstd),
    /// in order, until it returns false; returns false then. ``forEachEvent(in:_:)`` reads a segment
    /// file this way once its checksum and size match the store's record (also the entry point of
    /// the `FuzzSegment` fuzz target). `name` only names the segment in messages.
    ///
    /// ```swift
    /// _ = try EventArchive.forEachEvent(inSegmentContent: content, shownAs: "000000000001.tseg") { event in
    ///     print(event.sequence, event.event.id); return true
    /// }
    /// ```
    ///
    /// - Throws: `StoreError` `.damaged` when the content is not a well-formed segment (or an event
    ///   in it cannot be decoded); whatever `body` throws.
    public static func forEachEvent(inSegmentContent content: [UInt8], shownAs name: String, _ body: (StoredEvent) throws -> Bool) throws -> Bool {
        let decoder: SegmentDecoder
        do {
            decoder = try SegmentDecoder(content)
        } catch {
            throw damaged(name, error.reason)
        }
        return try forEachEvent(of: decoder, shownAs: name, body)
    }

    private static func forEachEvent(of decoder: SegmentDecoder, shownAs name: String, _ body: (StoredEvent) throws -> Bool) throws -> Bool {
        var decoder = decoder
        var buffer: [UInt8] = []
        do {
            while let sequence = try decoder.next(into: &buffer) {
                guard let event = buffer.withUnsafeBytes({ EventCodec.decode($0, sequence: sequence) }) else {
                    throw damaged(name, "event \(sequence) cannot be decoded")
                }
                if try !body(event) { return false }
            }
        } catch let failure as SegmentDecoder.Malformed {
            throw damaged(name, failure.reason)
        }
        return true
    }

    /// A decoder over the checked, decompressed content of a segment file.
    func decoder(for segment: ArchiveSegment) throws(StoreError) -> SegmentDecoder {
        let path = path(of: segment)
        guard let compressed = FileManager.default.contents(atPath: path) else {
            throw StoreError(.damaged, "archive segment '\(path)' is missing or unreadable: restore it from a backup (its events are not in the live store)")
        }
        let digest = Array(SHA256.hash(data: compressed))
        guard compressed.count == segment.compressedBytes, digest == segment.sha256 else {
            throw StoreError(.damaged, "archive segment '\(path)' is damaged: its SHA-256 does not match the one recorded when it was written; restore the file from a backup")
        }
        let content: [UInt8]
        do {
            content = try Zstd.decompress(Array(compressed), maximumSize: segment.uncompressedBytes)
        } catch {
            throw damaged(segment, error.message)
        }
        guard content.count == segment.uncompressedBytes else { throw damaged(segment, "its content has the wrong size") }
        let decoder: SegmentDecoder
        do {
            decoder = try SegmentDecoder(content)
        } catch {
            throw damaged(segment, error.reason)
        }
        guard decoder.number == segment.number, decoder.count == segment.events else {
            throw damaged(segment, "its header does not match the store's record of it")
        }
        return decoder
    }

    private func damaged(_ segment: ArchiveSegment, _ reason: String) -> StoreError {
        Self.damaged(path(of: segment), reason)
    }

    private static func damaged(_ path: String, _ reason: String) -> StoreError {
        StoreError(.damaged, "archive segment '\(path)' is damaged (\(reason)): restore the file from a backup")
    }

    /// Calls `body` with every event, archived or live, whose effective time is in `[from, to)`, each
    /// exactly once: first the segments' events, segment by segment, then the live store's, from one
    /// read transaction so that an archive run in between cannot move an event past the reader.
    /// Stops when `body` returns false.
    public func forEachEvent(from: Timestamp? = nil, to: Timestamp? = nil, _ body: (StoredEvent) throws -> Bool) throws {
        try store.readStore("read events") { transaction in
            for segment in try segments(in: transaction) {
                if let from, segment.latestTime < from { continue }
                if let to, segment.earliestTime >= to { continue }
                let finished = try forEachEvent(in: segment) { stored in
                    let time = stored.effectiveTime
                    if let from, time < from { return true }
                    if let to, time >= to { return true }
                    return try body(stored)
                }
                if !finished { return }
            }
            try transaction.withCursor(store.events) { cursor in
                try cursor.forEach(startingAt: [UInt8](repeating: 0, count: 8)) { key, value in
                    let sequence = key.loadBigEndianUInt64(at: 0)
                    guard let stored = EventCodec.decode(value, sequence: sequence) else {
                        throw StoreError(.incompatible, "event \(sequence) in the store at '\(store.path)' is damaged")
                    }
                    let time = stored.effectiveTime
                    if let from, time < from { return true }
                    if let to, time >= to { return true }
                    return try body(stored)
                }
            }
        }
    }

    /// Checks every recorded segment; returns the errors of the damaged ones (empty: all sound).
    public func verify() throws(StoreError) -> [StoreError] {
        var problems: [StoreError] = []
        for segment in try segments() {
            do {
                _ = try forEachEvent(in: segment) { _ in true }
            } catch {
                problems.append(error as? StoreError ?? StoreError(.damaged, "archive segment '\(path(of: segment))' cannot be read: \(error)"))
            }
        }
        return problems
    }

    // MARK: Archiving

    /// Runs `body` holding the archive's run lock; throws ``StoreError/Code/locked`` when another run holds it.
    public func withRunLock<T>(_ body: () throws -> T) throws -> T {
        let descriptor = try TallyStore.lockExclusively(
            directory: directory, what: "archive directory", file: ".lock",
            busy: "another archive run (a scheduled one in `tally serve`, or another `tally archive`) is in progress on '\(store.path)': wait for it to finish and retry")
        defer { close(descriptor) }
        return try body()
    }

    /// Deletes files of an interrupted run: temporary files, and segment files no record names.
    /// Call with the run lock held.
    func removeUnrecordedFiles() throws {
        let recorded = Set(try segments().map(\.fileName))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where (name.hasSuffix(".tmp") && name.hasPrefix(".")) || (name.hasSuffix(".tseg") && !recorded.contains(name)) {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
            store.logger.info("removed a file of an interrupted archive run", metadata: ["file": "\(name)"])
        }
    }

    /// Step 1 of moving a segment: picks the next live events of closed periods, at or after
    /// `scanningFrom`, and writes them durably into a new segment file. Nil when there are none.
    /// Reads only; call with the run lock held.
    public func prepareSegment(scanningFrom start: UInt64, closedPeriods: [ClosedPeriod]) throws -> PreparedSegment? {
        guard !closedPeriods.isEmpty else { return nil }
        let periods = closedPeriods.sorted { $0.start < $1.start }
        let starts = periods.map(\.start.nanosecondsSinceEpoch)
        let ends = periods.map(\.end.nanosecondsSinceEpoch)
        var encoder = SegmentEncoder()
        var eventBytes = 0
        var sequences: [UInt64] = []
        var earliest = Int64.max
        var latest = Int64.min
        var lastSeen = start
        var startKey: [UInt8] = []
        startKey.appendBigEndian(start)
        let number = try store.readStore("read events to archive") { transaction in
            let number = try lastSegmentNumber(in: transaction) + 1
            try transaction.withCursor(store.events) { cursor in
                try cursor.forEach(startingAt: startKey) { key, value in
                    let sequence = key.loadBigEndianUInt64(at: 0)
                    lastSeen = sequence
                    guard let time = EventCodec.effectiveTime(value) else {
                        throw StoreError(.incompatible, "event \(sequence) in the store at '\(store.path)' is damaged")
                    }
                    // The closed period holding `time`, if any: the last one starting at or before it.
                    var low = 0
                    var high = starts.count
                    while low < high {
                        let middle = (low + high) / 2
                        if starts[middle] <= time { low = middle + 1 } else { high = middle }
                    }
                    guard low > 0, time < ends[low - 1] else { return true }
                    guard encoder.append(sequence: sequence, event: value) else {
                        throw StoreError(.incompatible, "event \(sequence) in the store at '\(store.path)' is damaged")
                    }
                    eventBytes += value.count
                    sequences.append(sequence)
                    earliest = min(earliest, time)
                    latest = max(latest, time)
                    return sequences.count < maximumSegmentEvents
                }
            }
            return number
        }
        guard !sequences.isEmpty else { return nil }
        let content = encoder.finish(number: number)
        let compressed: [UInt8]
        do {
            compressed = try Zstd.compress(content, level: Zstd.defaultLevel)
        } catch {
            throw StoreError(.unavailable, "cannot compress archive segment \(number): \(error.message)")
        }
        let segment = ArchiveSegment(
            number: number, firstSequence: sequences.first!, lastSequence: sequences.last!, events: sequences.count,
            earliestTime: Timestamp(nanosecondsSinceEpoch: earliest), latestTime: Timestamp(nanosecondsSinceEpoch: latest),
            uncompressedBytes: content.count, compressedBytes: compressed.count, sha256: Array(SHA256.hash(data: compressed)))
        try BackupFiles.writeAtomically(compressed, to: directory + "/" + segment.fileName,
                                        through: directory + "/." + segment.fileName + ".tmp")
        return PreparedSegment(segment: segment, sequences: sequences, eventBytes: eventBytes, nextScanSequence: lastSeen + 1)
    }

    /// Step 2 of moving a segment: in one write transaction, deletes its events from the live store
    /// and records it. If the store changed in between (another run moved the events), records
    /// nothing and deletes the file. Call with the run lock held, from the thread that owns the
    /// store's writes.
    public func commit(_ prepared: PreparedSegment) throws {
        guard let database = store.archiveSegments else {
            throw StoreError(.unavailable, "the store at '\(store.path)' was opened read-only: it cannot archive")
        }
        var numberKey: [UInt8] = []
        numberKey.appendBigEndian(prepared.segment.number)
        do {
            try store.writeStore("record an archive segment") { transaction in
                guard try lastSegmentNumber(in: transaction) + 1 == prepared.segment.number else {
                    throw StoreError(.locked, "archive segment \(prepared.segment.number) was recorded by another run")
                }
                var key: [UInt8] = []
                for sequence in prepared.sequences {
                    key.removeAll(keepingCapacity: true)
                    key.appendBigEndian(sequence)
                    guard try transaction.delete(store.events, key: key) else {
                        throw StoreError(.locked, "event \(sequence) left the live store while segment \(prepared.segment.number) was written")
                    }
                }
                _ = try transaction.put(database, key: numberKey, value: prepared.segment.encode())
                let high = try transaction.get(store.meta, key: MetaKey.archivedSequence)?.withUnsafeBytes { $0.loadBigEndianUInt64(at: 0) } ?? 0
                if prepared.segment.lastSequence > high {
                    var value: [UInt8] = []
                    value.appendBigEndian(prepared.segment.lastSequence)
                    _ = try transaction.put(store.meta, key: MetaKey.archivedSequence, value: value)
                }
            }
        } catch {
            unlink(directory + "/" + prepared.segment.fileName)
            throw error
        }
    }

    /// The starts of the closed periods whose events have all left the live store (`meta.archived_periods`).
    func archivedPeriodStarts() throws(StoreError) -> Set<Int64> {
        try store.readStore("read the archived periods") { transaction in
            guard let value = try transaction.get(store.meta, key: MetaKey.archivedPeriods) else { return [] }
            return value.withUnsafeBytes { bytes in
                Set(stride(from: 0, to: bytes.count - 7, by: 8).map { bytes.loadOrderedInt64(at: $0) })
            }
        }
    }

    /// Records that every event of these periods has left the live store: they were closed when a run
    /// began, and that run scanned the whole live store.
    func recordArchivedPeriods(_ starts: Set<Int64>) throws(StoreError) {
        var value: [UInt8] = []
        for start in starts.sorted() { value.appendOrdered(start) }
        try store.writeStore("record the archived periods") { transaction in
            _ = try transaction.put(store.meta, key: MetaKey.archivedPeriods, value: value)
        }
    }

    /// Forgets, in one write transaction, up to ``maximumIdentitiesPerStep`` identities stored
    /// before `cutoff` (a commit stamp, milliseconds since the epoch); returns how many.
    public func expireIdentities(storedBefore cutoff: UInt64) throws(StoreError) -> Int {
        try store.writeStore("forget expired identities") { transaction in
            try transaction.withWriteCursor(store.identities) { cursor in
                var removed = 0
                var entry = try cursor.first()
                while let current = entry, removed < maximumIdentitiesPerStep, current.key.loadBigEndianUInt64(at: 0) < cutoff {
                    try cursor.delete()
                    removed += 1
                    entry = try cursor.next()
                }
                return removed
            }
        }
    }

    /// One whole archive run: every live event of a closed period into segments, then every identity
    /// stored before `identityCutoff` forgotten.
    ///
    /// Each write goes through `writeStep`, which runs it where the store's writes belong (inline in
    /// `tally archive`, on the writer thread in `tally serve`) and returns how long it took. Each step
    /// is one short transaction of at most ``maximumSegmentEvents`` deletions or
    /// ``maximumIdentitiesPerStep`` identities, so ingest never waits long for a run.
    public func run(identityCutoff: UInt64?,
                    writeStep: (_ step: @escaping @Sendable () throws -> Void) throws -> UInt64) throws -> ArchiveReport {
        try withRunLock {
            try removeUnrecordedFiles()
            var report = ArchiveReport()
            // Only periods closed since the last complete run can still have live events: without
            // one, the run does not scan the live store at all.
            let archived = try archivedPeriodStarts()
            let pending = try store.closedPeriodList().filter { !archived.contains($0.start.nanosecondsSinceEpoch) }
            var scan: UInt64 = 0
            while let prepared = try prepareSegment(scanningFrom: scan, closedPeriods: pending) {
                let duration = try writeStep { try self.commit(prepared) }
                report.longestWriteNanoseconds = max(report.longestWriteNanoseconds, duration)
                report.segments += 1
                report.events += prepared.segment.events
                report.eventBytes += prepared.eventBytes
                report.uncompressedBytes += prepared.segment.uncompressedBytes
                report.compressedBytes += prepared.segment.compressedBytes
                scan = prepared.nextScanSequence
                store.logger.debug("archived a segment", metadata: [
                    "segment": "\(prepared.segment.number)", "events": "\(prepared.segment.events)",
                ])
            }
            if !pending.isEmpty {
                let starts = archived.union(pending.map(\.start.nanosecondsSinceEpoch))
                let duration = try writeStep { try self.recordArchivedPeriods(starts) }
                report.longestWriteNanoseconds = max(report.longestWriteNanoseconds, duration)
            }
            if let identityCutoff {
                while true {
                    let removed = StepOutput(0)
                    let duration = try writeStep { removed.value = try self.expireIdentities(storedBefore: identityCutoff) }
                    report.longestWriteNanoseconds = max(report.longestWriteNanoseconds, duration)
                    report.identitiesExpired += removed.value
                    if removed.value < maximumIdentitiesPerStep { break }
                }
            }
            if report.segments > 0 || report.identitiesExpired > 0 {
                store.logger.info("archive run finished", metadata: [
                    "segments": "\(report.segments)", "events": "\(report.events)",
                    "identities_expired": "\(report.identitiesExpired)",
                ])
            }
            return report
        }
    }

    /// The commit stamp (milliseconds) before which identities are forgotten at `now`: older than the
    /// dedup window plus the allowed future skew, so that any resend of their events is already
    /// rejected as `timestamp_too_old` (an event's time is at most the skew after it was received).
    public static func identityCutoff(now: Timestamp, dedupWindowNanoseconds: Int64, maxFutureSkewNanoseconds: Int64) -> UInt64 {
        let cutoff = now.nanosecondsSinceEpoch - dedupWindowNanoseconds - maxFutureSkewNanoseconds
        return UInt64(max(0, cutoff / 1_000_000))
    }
}

/// Carries a value into and out of a write step's `@Sendable` closure: the step runs on another
/// thread (the writer's) while its caller waits for it, so the two never touch it at once.
public final class StepOutput<Value>: @unchecked Sendable {
    public var value: Value

    public init(_ value: Value) {
        self.value = value
    }
}

/// Runs a write step inline on the calling thread and returns its duration: the `writeStep` of
/// ``EventArchive/run(identityCutoff:writeStep:)`` outside the daemon.
public func runWriteStepInline(_ step: @escaping @Sendable () throws -> Void) throws -> UInt64 {
    let started = DispatchTime.now().uptimeNanoseconds
    try step()
    return DispatchTime.now().uptimeNanoseconds - started
}
