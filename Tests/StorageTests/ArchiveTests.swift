import Foundation
import LMDB
import Logging
import Metering
import Testing

@testable import Storage

/// Events spread over three months of 2025: two closed (January, February), March left open.
private func archivableStore(eventsPerMonth: Int = 2_500) throws -> TemporaryStore {
    let temporary = try TemporaryStore(mapSize: 64 << 20)
    var batch: [PendingEvent] = []
    for index in 0..<(eventsPerMonth * 3) {
        let month = index % 3  // interleaved, as late events are in a real store
        let time = date("2025-0\(month + 1)-1\(index % 9)T10:00:00Z")
        batch.append(pending("e\(index)", customer: "c\(index % 7)", meter: index % 2 == 0 ? "calls" : "tokens",
                             value: ExactDecimal(index % 50 + 1), time: time,
                             properties: [.init(key: "model", value: .string("m\(index % 3)"))]))
        if batch.count == 1000 {
            _ = try temporary.writer.record(batch)
            batch.removeAll()
        }
    }
    if !batch.isEmpty { _ = try temporary.writer.record(batch) }
    for month in ["2025-01", "2025-02"] {
        try temporary.store.closePeriod(BillingPeriod.monthly.interval(containing: date(month + "-05T00:00:00Z")))
    }
    return temporary
}

private func date(_ text: String) -> Timestamp {
    Timestamp.parseRFC3339(text)!
}

private func liveEventCount(_ store: TallyStore) throws -> Int {
    var count = 0
    try store.forEachEvent { _ in count += 1; return true }
    return count
}

private func allEvents(_ archive: EventArchive) throws -> [StoredEvent] {
    var events: [StoredEvent] = []
    try archive.forEachEvent { events.append($0); return true }
    return events
}

private func usageSnapshot(_ store: TallyStore) throws -> [String] {
    var rows: [String] = []
    for month in ["2025-01", "2025-02", "2025-03"] {
        let start = BillingPeriod.monthly.interval(containing: date(month + "-05T00:00:00Z")).start
        try store.forEachUsage(periodStart: start) { customer, record in
            rows.append("\(month) \(customer) \(record.meter) \(record.group) \(record.quantity) \(record.eventCount)")
        }
    }
    return rows
}

@Suite("Archive")
struct ArchiveTests {
    @Test("events of closed periods move into segments; reading archive and live store gives every event exactly once")
    func archiveMovesClosedPeriods() throws {
        let temporary = try archivableStore()
        let before = try allEvents(EventArchive(store: temporary.store))
        let usageBefore = try usageSnapshot(temporary.store)
        #expect(before.count == 7_500)
        let archive = EventArchive(store: temporary.store, maximumSegmentEvents: 1_000)
        let report = try archive.run(identityCutoff: nil, writeStep: runWriteStepInline)
        #expect(report.events == 5_000)
        #expect(report.segments == 5)
        #expect(report.compressedBytes > 0 && report.compressedBytes < report.uncompressedBytes)
        #expect(try liveEventCount(temporary.store) == 2_500)
        let segments = try archive.segments()
        #expect(segments.map(\.number) == [1, 2, 3, 4, 5])
        #expect(segments.allSatisfy { FileManager.default.fileExists(atPath: archive.path(of: $0)) })
        let after = try allEvents(archive)
        #expect(after.count == 7_500)
        #expect(Set(after.map(\.event.id)).count == 7_500)
        #expect(Set(after) == Set(before))  // the same events, byte for byte, with their sequences
        #expect(try usageSnapshot(temporary.store) == usageBefore)
        // Only March is live; a second run finds nothing more.
        try temporary.store.forEachEvent { stored in
            #expect(stored.effectiveTime >= date("2025-03-01T00:00:00Z"))
            return true
        }
        #expect(try archive.run(identityCutoff: nil, writeStep: runWriteStepInline).events == 0)
        // Time filters skip segments and events outside the range.
        var february = 0
        try archive.forEachEvent(from: date("2025-02-01T00:00:00Z"), to: date("2025-03-01T00:00:00Z")) { _ in
            february += 1
            return true
        }
        #expect(february == 2_500)
        // The two closed periods are recorded as archived (later runs skip the scan); closing March
        // makes the next run move its events too.
        #expect(try archive.archivedPeriodStarts().count == 2)
        try temporary.store.closePeriod(BillingPeriod.monthly.interval(containing: date("2025-03-05T00:00:00Z")))
        #expect(try archive.run(identityCutoff: nil, writeStep: runWriteStepInline).events == 2_500)
        #expect(try archive.archivedPeriodStarts().count == 3)
        #expect(try liveEventCount(temporary.store) == 0)
        #expect(Set(try allEvents(archive)) == Set(before))
    }

    @Test("segment columns give back every event byte for byte: UUID ids packed or not, properties, events without a time")
    func segmentCodecRoundTrip() throws {
        let ids = ["0f8fad5b-d9cb-469f-a165-70867728950e", "0F8FAD5B-D9CB-469F-A165-70867728950E", "0f8fad5b-d9cb-469f-a165-70867728950",
                   "0f8fad5bxd9cb-469f-a165-70867728950e", "g", String(repeating: "é", count: 100), "0f8fad5b-d9cb-469f-a165-70867728950e0"]
        var encoder = SegmentEncoder()
        var originals: [(UInt64, [UInt8])] = []
        var sequence: UInt64 = 5
        for (index, id) in ids.enumerated() {
            let event = UsageEvent(id: id, customer: "cus_\(index)", meter: "tokens", value: ExactDecimal(index) ,
                                   time: index % 2 == 0 ? nil : now,
                                   properties: index % 3 == 0 ? [] : [.init(key: "model", value: .string("m\(index)")), .init(key: "n", value: .number(2)),
                                                                       .init(key: "ok", value: .bool(true))])
            var bytes: [UInt8] = []
            _ = EventCodec.encode(event, receivedAt: now, into: &bytes)
            sequence += UInt64(1 + index * 7)
            #expect(bytes.withUnsafeBytes { encoder.append(sequence: sequence, event: $0) })
            originals.append((sequence, bytes))
        }
        #expect(!([UInt8](repeating: 1, count: 12)).withUnsafeBytes { encoder.append(sequence: sequence + 1, event: $0) })  // too short
        #expect(!([2] + [UInt8](repeating: 1, count: 40)).withUnsafeBytes { encoder.append(sequence: sequence + 1, event: $0) })  // not format 1
        #expect(!originals[0].1.withUnsafeBytes { encoder.append(sequence: sequence, event: $0) })  // sequence not increasing
        let content = encoder.finish(number: 9)
        var decoder = try SegmentDecoder(content)
        #expect(decoder.number == 9 && decoder.count == ids.count)
        var buffer: [UInt8] = []
        var decoded: [(UInt64, [UInt8])] = []
        while let next = try decoder.next(into: &buffer) { decoded.append((next, buffer)) }
        #expect(decoded.map(\.0) == originals.map(\.0))
        #expect(decoded.map(\.1) == originals.map(\.1))
        // Cut short or padded content is refused.
        #expect(throws: SegmentDecoder.Malformed.self) { _ = try SegmentDecoder(Array(content.dropLast())) }
        #expect(throws: SegmentDecoder.Malformed.self) { _ = try SegmentDecoder(content + [0]) }
    }

    @Test("a segment written but not recorded (a crash before the commit) is replaced; nothing is lost or doubled")
    func interruptedRun() throws {
        let temporary = try archivableStore(eventsPerMonth: 500)
        let archive = EventArchive(store: temporary.store, maximumSegmentEvents: 400)
        let closed = try temporary.store.closedPeriodList()
        let prepared = try archive.withRunLock { try archive.prepareSegment(scanningFrom: 0, closedPeriods: closed) }
        let orphan = try #require(prepared)
        #expect(FileManager.default.fileExists(atPath: archive.directory + "/" + orphan.segment.fileName))
        #expect(try archive.segments().isEmpty)
        #expect(try allEvents(archive).count == 1_500)  // the unrecorded file is not read
        let report = try archive.run(identityCutoff: nil, writeStep: runWriteStepInline)
        #expect(report.events == 1_000)
        let after = try allEvents(archive)
        #expect(after.count == 1_500 && Set(after.map(\.event.id)).count == 1_500)
        let files = try FileManager.default.contentsOfDirectory(atPath: archive.directory).filter { $0.hasSuffix(".tseg") }
        #expect(files.sorted() == (try archive.segments()).map(\.fileName))
    }

    @Test("one archive run at a time: a second one is refused with `locked` and changes nothing")
    func oneRunAtATime() throws {
        let temporary = try archivableStore(eventsPerMonth: 200)
        let archive = EventArchive(store: temporary.store)
        try archive.withRunLock {
            do {
                _ = try EventArchive(store: temporary.store).run(identityCutoff: nil, writeStep: runWriteStepInline)
                Issue.record("a second archive run started")
            } catch let error as StoreError {
                #expect(error.code == .locked)
                #expect(error.message.contains("another archive run"))
            }
        }
        #expect(try liveEventCount(temporary.store) == 600)
        #expect(try archive.run(identityCutoff: nil, writeStep: runWriteStepInline).events == 400)
    }

    @Test("a damaged or missing segment is reported naming its file; the live store and usage are unaffected")
    func damagedSegment() throws {
        let temporary = try archivableStore(eventsPerMonth: 500)
        let archive = EventArchive(store: temporary.store, maximumSegmentEvents: 400)
        _ = try archive.run(identityCutoff: nil, writeStep: runWriteStepInline)
        let segments = try archive.segments()
        #expect(segments.count == 3)
        let damagedPath = archive.path(of: segments[1])
        var bytes = try #require(FileManager.default.contents(atPath: damagedPath))
        bytes[bytes.count / 2] ^= 0x20
        try bytes.write(to: URL(fileURLWithPath: damagedPath))
        do {
            _ = try allEvents(archive)
            Issue.record("reading a damaged segment succeeded")
        } catch let error as StoreError {
            #expect(error.code == .damaged)
            #expect(error.message.contains(damagedPath))
        }
        let problems = try archive.verify()
        #expect(problems.count == 1)
        #expect(problems.first?.message.contains(segments[1].fileName) == true)
        try FileManager.default.removeItem(atPath: archive.path(of: segments[2]))
        #expect(try archive.verify().count == 2)
        #expect(try archive.verify().last?.message.contains("missing") == true)
        // Segments 1 is still readable, the live store and the aggregates too.
        var first = 0
        try archive.forEachEvent(in: segments[0]) { _ in first += 1; return true }
        #expect(first == 400)
        #expect(try liveEventCount(temporary.store) == 500)
        #expect(try usageSnapshot(temporary.store).count > 0)
    }

    @Test("a backup carries the archive's segments; the restored store reads every event once; a damaged segment stops the backup")
    func backupWithArchive() throws {
        let temporary = try archivableStore(eventsPerMonth: 1_000)
        let archive = EventArchive(store: temporary.store, maximumSegmentEvents: 700)
        _ = try archive.run(identityCutoff: nil, writeStep: runWriteStepInline)
        let before = try allEvents(archive)
        let backupPath = temporary.path + "-backup"
        let restoredPath = temporary.path + "-restored"
        defer {
            try? FileManager.default.removeItem(atPath: backupPath)
            try? FileManager.default.removeItem(atPath: restoredPath)
        }
        let manifest = try temporary.store.backup(to: backupPath)
        #expect(manifest.files.map(\.name) == ["data.mdb"] + (try archive.segments()).map { "archive/" + $0.fileName })
        _ = try TallyStore.restore(from: backupPath, to: restoredPath)
        let restored = try TallyStore(path: restoredPath, configuration: .init(meters: TemporaryStore.meters, billingPeriod: .monthly),
                                      access: .readOnly, logger: Logger(label: "test"))
        let restoredArchive = EventArchive(store: restored)
        #expect(try restoredArchive.verify().isEmpty)
        #expect(Set(try allEvents(restoredArchive)) == Set(before))
        #expect(try allEvents(restoredArchive).count == 3_000)

        let segment = try archive.segments()[0]
        var bytes = try #require(FileManager.default.contents(atPath: archive.path(of: segment)))
        bytes[10] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: archive.path(of: segment)))
        let secondBackup = temporary.path + "-backup2"
        defer { try? FileManager.default.removeItem(atPath: secondBackup) }
        do {
            _ = try temporary.store.backup(to: secondBackup)
            Issue.record("a backup of a damaged segment succeeded")
        } catch {
            #expect(error.code == .damaged)
            #expect(error.message.contains(archive.path(of: segment)))
        }
        #expect(!FileManager.default.fileExists(atPath: secondBackup))
    }

    @Test("expired identities leave LMDB and the in-memory index; younger ones stay and still deduplicate")
    func identityExpiry() throws {
        let temporary = try TemporaryStore(mapSize: 16 << 20)
        _ = try temporary.writer.record((0..<3_000).map { pending("old\($0)") })
        let stampBetween = UInt64(Timestamp.now().nanosecondsSinceEpoch / 1_000_000) + 5
        Thread.sleep(forTimeInterval: 0.02)
        _ = try temporary.writer.record((0..<1_000).map { pending("new\($0)") })
        let archive = EventArchive(store: temporary.store, maximumIdentitiesPerStep: 700)
        let report = try archive.run(identityCutoff: stampBetween, writeStep: runWriteStepInline)
        #expect(report.identitiesExpired == 3_000)
        #expect(try temporary.store.statistics().identities == 1_000)
        var position: IdentitySweepPosition?
        repeat {
            position = temporary.writer.forgetIdentities(storedBefore: stampBetween, from: position, maximumSlots: 10_000)
        } while position != nil
        #expect(temporary.writer.identityCount == 1_000)
        // Younger identities still deduplicate; a forgotten one is new again (in the daemon the
        // parser rejects it first as older than the dedup window).
        #expect(try temporary.writer.record([pending("new7"), pending("old7")]) == [.duplicate, .accepted])
    }

    @Test("the identity index finds every entry left after a sweep, through any probe run", arguments: [1, 5_000, 1 << 20])
    func indexSweep(slotsPerStep: Int) {
        let index = IdentityIndex(minimumCapacity: 40_000)
        var generator = SystemRandomNumberGenerator()
        var entries: [(Hash128, UInt64)] = []
        for _ in 0..<40_000 {
            // Few distinct low halves near each other make long probe runs and repeated slot keys.
            let identity = Hash128(high: generator.next(), low: UInt64.random(in: 1...60_000, using: &generator))
            let stamp = UInt64.random(in: 0..<100, using: &generator)
            index.insert(identity, stamp: stamp)
            entries.append((identity, stamp))
        }
        var position: IdentitySweepPosition?
        repeat {
            position = index.removeEntries(storedBefore: 50, from: position, maximumSlots: slotsPerStep)
        } while position != nil
        let kept = entries.filter { $0.1 >= 50 }
        #expect(index.count == kept.count)
        for (identity, stamp) in kept {
            #expect(index.firstStamp(for: identity) { $0 == stamp })
        }
        for (identity, stamp) in entries where stamp < 50 {
            #expect(!index.firstStamp(for: identity) { $0 == stamp } || kept.contains { $0.0.low == identity.low && $0.1 == stamp })
        }
    }

    @Test("a table rebuilt larger in the middle of a sweep leaves the expired entries out and ends the sweep")
    func sweepAcrossGrowth() {
        let index = IdentityIndex(minimumCapacity: 1_000)
        var kept: [(Hash128, UInt64)] = []
        for number in 1...40_000 {
            let identity = Hash128(high: UInt64(number), low: UInt64(number) &* 0x9E37_79B9_7F4A_7C15)
            let stamp = UInt64(number % 2)  // every other one expired
            index.insert(identity, stamp: stamp)
            if stamp == 1 { kept.append((identity, stamp)) }
        }
        let position = index.removeEntries(storedBefore: 1, from: nil, maximumSlots: 100)
        #expect(position != nil)
        for number in 40_001...100_000 {  // grows the table while the sweep is half done
            let identity = Hash128(high: UInt64(number), low: UInt64(number) &* 0x9E37_79B9_7F4A_7C15)
            index.insert(identity, stamp: 5)
            kept.append((identity, 5))
        }
        #expect(index.removeEntries(storedBefore: 1, from: position, maximumSlots: 100) == nil)
        #expect(index.count == kept.count)
        for (identity, stamp) in kept { #expect(index.firstStamp(for: identity) { $0 == stamp }) }
    }

    @Test("sequences are not reused after the newest events were archived and the writer reopened")
    func sequencesNeverReused() throws {
        let temporary = try archivableStore(eventsPerMonth: 100)
        // Close March too, so that every event, the newest included, leaves the live store.
        try temporary.store.closePeriod(BillingPeriod.monthly.interval(containing: date("2025-03-05T00:00:00Z")))
        let archive = EventArchive(store: temporary.store)
        _ = try archive.run(identityCutoff: nil, writeStep: runWriteStepInline)
        #expect(try liveEventCount(temporary.store) == 0)
        let reopened = try StoreWriter(store: temporary.store)
        #expect(try reopened.record([pending("later", time: now)]) == [.accepted])
        var sequence: UInt64 = 0
        try temporary.store.forEachEvent { sequence = $0.sequence; return true }
        #expect(sequence == 301)
    }

    @Test("under constant load with periods closing and identities expiring, the live store's size levels off")
    func sizeLevelsOff() throws {
        let temporary = try TemporaryStore(mapSize: 256 << 20)
        let archive = EventArchive(store: temporary.store, maximumSegmentEvents: 8_192)
        var pagesAfterRound: [Int] = []
        for round in 0..<10 {
            // One period of "load" a round (a month of 2001), closed at the end of the round.
            let day = date("2001-\(round < 9 ? "0" : "")\(round + 1)-15T12:00:00Z").nanosecondsSinceEpoch
            let period = BillingPeriod.monthly.interval(containing: Timestamp(nanosecondsSinceEpoch: day))
            for batch in 0..<4 {
                _ = try temporary.writer.record((0..<5_000).map {
                    pending("r\(round)-\(batch)-\($0)", customer: "c\($0 % 50)", value: 1, time: Timestamp(nanosecondsSinceEpoch: day))
                })
            }
            try temporary.store.closePeriod(period)
            let cutoff = UInt64(Timestamp.now().nanosecondsSinceEpoch / 1_000_000) + 1
            _ = try archive.run(identityCutoff: cutoff, writeStep: runWriteStepInline)
            var position: IdentitySweepPosition?
            repeat { position = temporary.writer.forgetIdentities(storedBefore: cutoff, from: position) } while position != nil
            // Not counted: usage buckets (aggregates kept for good, as `usage` rows are) and the
            // usage log (bounded by its fold policy, which this little load never triggers).
            let kept = try temporary.store.environment.read { _ in
                try [temporary.store.usageBuckets!, temporary.store.usageLog!].map { database in
                    let statistics = try temporary.store.environment.statistics(database)
                    return statistics.branchPages + statistics.leafPages + statistics.overflowPages
                }.reduce(0, +)
            }
            pagesAfterRound.append(temporary.store.environment.info().lastPageNumber - kept)
        }
        #expect(try temporary.store.statistics().events == 0)
        #expect(try temporary.store.statistics().identities == 0)
        #expect(try archive.segments().reduce(0) { $0 + $1.events } == 200_000)
        // After the first rounds the freed pages are reused: the file stops growing.
        #expect(pagesAfterRound[9] <= pagesAfterRound[2] + pagesAfterRound[2] / 10, "\(pagesAfterRound)")
    }
}
