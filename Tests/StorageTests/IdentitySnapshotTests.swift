import Foundation
import Logging
import Metering
import Testing

@testable import Storage

@Suite("Identity index snapshot")
struct IdentitySnapshotTests {
    private func batch(_ prefix: String, count: Int) -> [PendingEvent] {
        (0..<count).map { pending("\(prefix)\($0)", customer: "c\($0 % 13)", value: ExactDecimal($0 % 9 + 1)) }
    }

    private var snapshotName: String { IdentityIndexSnapshot.fileName }

    @Test("a writer opened after a save reads the snapshot, then the identities committed after it, and deduplicates all")
    func snapshotAndTail() throws {
        let temporary = try TemporaryStore(mapSize: 16 << 20)
        #expect(temporary.writer.identityIndexSource == .rebuilt)
        let first = batch("a", count: 3_000)
        #expect(try temporary.writer.record(first).allSatisfy { $0 == .accepted })
        try temporary.writer.saveIdentityIndex()
        #expect(FileManager.default.fileExists(atPath: temporary.path + "/" + snapshotName))

        // This writer stops without saving (a crash): its commits are only in LMDB.
        let second = try StoreWriter(store: temporary.store)
        #expect(second.identityIndexSource == .snapshot)
        #expect(second.identityCount == 3_000)
        let more = batch("b", count: 2_000)
        #expect(try second.record(more).allSatisfy { $0 == .accepted })

        let third = try StoreWriter(store: temporary.store)
        #expect(third.identityIndexSource == .snapshot)
        #expect(third.identityCount == 5_000)
        #expect(try third.record(first + more).allSatisfy { $0 == .duplicate })
        var changed = first[7]
        changed.event.value = 1_000
        let outcomes = try third.record([changed, pending("new")])
        guard case .rejected(let conflict) = outcomes[0] else { Issue.record("expected a conflict"); return }
        #expect(conflict.code == .idempotencyConflict)
        #expect(outcomes[1] == .accepted)
    }

    @Test("a damaged, foreign or truncated snapshot is not used: the index is rebuilt and deduplicates as before",
          arguments: ["slots", "bitmap", "header", "truncated", "foreign"])
    func unusableSnapshots(damage: String) throws {
        let temporary = try TemporaryStore(mapSize: 16 << 20)
        let events = batch("e", count: 2_000)
        _ = try temporary.writer.record(events)
        try temporary.writer.saveIdentityIndex()
        let file = temporary.path + "/" + snapshotName
        switch damage {
        case "slots", "bitmap", "header":
            let handle = try #require(FileHandle(forUpdatingAtPath: file))
            // After the 128-byte header: a bitmap of 65,536 bits, then the 2,000 packed slots.
            let offset: UInt64 = damage == "slots" ? 128 + 8_192 + 8 * 700 + 3 : damage == "bitmap" ? 128 + 1_000 : 40
            try handle.seek(toOffset: offset)
            let byte = try #require(try handle.read(upToCount: 1)).first!
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: [byte ^ 0x5A])
            try handle.close()
        case "truncated":
            #expect(truncate(file, 128 + 4096) == 0)
        default:
            // The snapshot of another store (other hash keys) in this store's directory.
            let other = try TemporaryStore(mapSize: 16 << 20)
            _ = try other.writer.record(batch("o", count: 100))
            try other.writer.saveIdentityIndex()
            try FileManager.default.removeItem(atPath: file)
            try FileManager.default.copyItem(atPath: other.path + "/" + snapshotName, toPath: file)
        }
        let reopened = try StoreWriter(store: temporary.store)
        #expect(reopened.identityIndexSource == .rebuilt)
        #expect(reopened.identityCount == 2_000)
        #expect(try reopened.record(events).allSatisfy { $0 == .duplicate })
    }

    @Test("a snapshot newer than the store (the store restored from an older copy) is not used")
    func snapshotNewerThanStore() throws {
        let temporary = try TemporaryStore(mapSize: 16 << 20)
        let early = batch("early", count: 500)
        _ = try temporary.writer.record(early)
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("tally-copy-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: temporary.path + "/data.mdb", toPath: copy + "/data.mdb")
        let late = batch("late", count: 500)
        _ = try temporary.writer.record(late)
        try temporary.writer.saveIdentityIndex()
        try FileManager.default.copyItem(atPath: temporary.path + "/" + snapshotName, toPath: copy + "/" + snapshotName)

        let restored = try TallyStore(path: copy, configuration: temporary.store.configuration, access: .readWrite, logger: Logger(label: "test"))
        let writer = try StoreWriter(store: restored)
        #expect(writer.identityIndexSource == .rebuilt)
        #expect(writer.identityCount == 500)
        // The later events were never committed to this copy: they are new here.
        #expect(try writer.record(early).allSatisfy { $0 == .duplicate })
        #expect(try writer.record(late).allSatisfy { $0 == .accepted })
    }

    @Test("a snapshot is its header, a bitmap and the occupied slots packed, renamed into place from a temporary file")
    func fileShape() throws {
        let temporary = try TemporaryStore(mapSize: 16 << 20)
        _ = try temporary.writer.record(batch("x", count: 100))
        try temporary.writer.saveIdentityIndex()
        let size = try FileManager.default.attributesOfItem(atPath: temporary.path + "/" + snapshotName)[.size] as? Int
        // Header; a bit for each of 65,536 slots; 100 compact slots of 8 bytes; their check bytes
        // (100, padded to 128).
        #expect(size == 128 + 8_192 + 800 + 128)
        #expect(!FileManager.default.fileExists(atPath: temporary.path + "/" + snapshotName + ".partial"))
    }

    @Test("a table of several chunks round-trips through a snapshot in both layouts, every entry with its stamp", arguments: [false, true])
    func severalChunks(wide: Bool) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-snapshot-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let index = IdentityIndex(minimumCapacity: 1_200_000, layout: wide ? .wide : .compact(base: 1_000))
        var generator = SystemRandomNumberGenerator()
        var entries: [(Hash128, UInt64)] = []
        for number in 0..<700_003 {
            let identity = Hash128(high: generator.next(), low: generator.next())
            let stamp = 1_000 + UInt64(number / 100)
            index.insert(identity, stamp: stamp)
            entries.append((identity, stamp))
        }
        #expect(index.capacity == 1 << 21)  // two chunks of 2^20 slots
        let fingerprint = Hash128(high: 1, low: 2)
        try IdentityIndexSnapshot.save(index.settledTable(), count: index.count, newestStamp: index.newestStamp,
                                       expiredBefore: 0, keyFingerprint: fingerprint, directory: directory)
        let (header, table) = try #require(try IdentityIndexSnapshot.load(directory: directory) { _ in })
        #expect(header.count == entries.count && header.keyFingerprint == fingerprint && header.layout == index.layout)
        let loaded = IdentityIndex(adopting: table, count: header.count, newestStamp: header.newestStamp, expiredBefore: 0)
        for (identity, stamp) in entries { #expect(loaded.firstStamp(for: identity) { $0 == stamp }) }
        #expect(!loaded.firstStamp(for: Hash128(high: 3, low: 4)) { _ in true })
    }
}
