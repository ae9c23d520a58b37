import Foundation
import Logging
import Metering
import Testing

@testable import Storage

/// A temporary directory for backups and restored stores, removed when the value goes away.
final class BackupScratch {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-backup-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func entries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }
}

/// A store with events for several customers, meters and groups; with `padding`, big enough that
/// `data.mdb` spans several 4 MiB zstd frames.
private func filledStore(events count: Int = 3000, padding: Int = 0) throws -> TemporaryStore {
    let temporary = try TemporaryStore()
    let pad = String(repeating: "x", count: padding)
    var batch: [PendingEvent] = []
    for index in 0..<count {
        let customer = "c\(index % 4)"
        switch index % 3 {
        case 0:
            batch.append(pending("e\(index)", customer: customer, meter: "calls",
                                 properties: padding > 0 ? [.init(key: "pad", value: .string("\(pad)\(index)"))] : []))
        case 1:
            batch.append(pending("e\(index)", customer: customer, meter: "tokens", value: ExactDecimal(index % 17),
                                 properties: [.init(key: "model", value: .string(index % 2 == 0 ? "small" : "large"))]))
        default:
            batch.append(pending("e\(index)", customer: customer, meter: "users",
                                 properties: [.init(key: "user", value: .string("u\(index % 50)"))]))
        }
        if batch.count == 1000 {
            #expect(try temporary.writer.record(batch).allSatisfy { $0 == .accepted })
            batch.removeAll()
        }
    }
    if !batch.isEmpty { #expect(try temporary.writer.record(batch).allSatisfy { $0 == .accepted }) }
    return temporary
}

private func openReadOnly(_ path: String) throws -> TallyStore {
    try TallyStore(path: path, configuration: .init(meters: TemporaryStore.meters, billingPeriod: .monthly),
                   access: .readOnly, logger: Logger(label: "test"))
}

private func storeError(_ body: () throws -> Void) -> StoreError? {
    do {
        try body()
        return nil
    } catch let error as StoreError {
        return error
    } catch {
        Issue.record("expected a StoreError, got \(error)")
        return nil
    }
}

/// Flips one byte of the file at `path`, at `offset` (or the middle).
private func flipByte(in path: String, at offset: Int? = nil) throws {
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    let index = offset ?? bytes.count / 2
    bytes[index] ^= 0x5A
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

@Suite("Backup and restore")
struct BackupTests {
    @Test("round trip: a backup restores to a store with the same statistics and usage")
    func roundTrip() throws {
        // Padded events make data.mdb span several zstd frames.
        let temporary = try filledStore(events: 30_000, padding: 300)
        let scratch = try BackupScratch()
        let backupPath = scratch.path + "/backup"
        let manifest = try temporary.store.backup(to: backupPath)

        #expect(try FileManager.default.contentsOfDirectory(atPath: backupPath).sorted() == ["data.mdb.zst", "manifest.json"])
        let file = try #require(manifest.files.first)
        #expect(manifest.files.count == 1)
        #expect(file.name == "data.mdb")
        #expect(file.uncompressedSize > BackupFiles.frameInputBytes, "expected a data.mdb of several frames")
        #expect(file.compressedSize < file.uncompressedSize)
        let compressedOnDisk = try FileManager.default.attributesOfItem(atPath: backupPath + "/data.mdb.zst")[.size] as? Int
        #expect(compressedOnDisk == file.compressedSize)
        #expect(file.compressedSHA256.count == 64 && file.uncompressedSHA256.count == 64)
        #expect(file.compressedSHA256 != file.uncompressedSHA256)
        #expect(manifest.formatVersion == 1)
        #expect(manifest.storeFormat == 1)
        #expect(manifest.lastTransactionID > 0)
        #expect(manifest.sourcePath == URL(fileURLWithPath: temporary.path).standardizedFileURL.path)
        // No temporary copy is left next to the backup.
        #expect(try scratch.entries() == ["backup"])

        // The manifest on disk has the documented keys.
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: backupPath + "/manifest.json"))) as? [String: Any])
        #expect(Set(json.keys) == ["format_version", "store_format", "created_at", "source_path", "last_transaction_id", "files"])
        let created = try #require(json["created_at"] as? String)
        #expect(Timestamp.parseRFC3339(created) != nil)
        let files = try #require(json["files"] as? [[String: Any]])
        #expect(files.first?["compressed_name"] as? String == "data.mdb.zst")
        #expect(files.first?["compressed_sha256"] as? String == file.compressedSHA256)

        let restoredPath = scratch.path + "/restored"
        let restored = try TallyStore.restore(from: backupPath, to: restoredPath)
        #expect(restored == manifest)
        #expect(try scratch.entries() == ["backup", "restored"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: restoredPath) == ["data.mdb"])

        let copy = try openReadOnly(restoredPath)
        let original = try temporary.store.statistics()
        let statistics = try copy.statistics()
        #expect(statistics.events == 30_000)
        #expect(statistics.events == original.events)
        #expect(statistics.identities == original.identities)
        #expect(statistics.aggregates == original.aggregates)
        let period = BillingPeriod.monthly.interval(containing: now).start
        for customer in ["c0", "c1", "c2", "c3"] {
            let usage = try copy.usage(customer: customer, periodStart: period)
            #expect(!usage.isEmpty)
            #expect(usage == (try temporary.store.usage(customer: customer, periodStart: period)), "\(customer)")
        }
        #expect(try copy.event(sequence: 1) == (try temporary.store.event(sequence: 1)))
    }

    @Test("the store keeps taking writes after a backup, and a restored store opens for writing")
    func restoredStoreIsWritable() throws {
        let temporary = try filledStore(events: 500)
        let scratch = try BackupScratch()
        _ = try temporary.store.backup(to: scratch.path + "/backup")
        #expect(try temporary.writer.record([pending("after-backup")]) == [.accepted])
        _ = try TallyStore.restore(from: scratch.path + "/backup", to: scratch.path + "/restored")
        let store = try TallyStore(path: scratch.path + "/restored", configuration: .init(meters: TemporaryStore.meters, billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "test"))
        let writer = try StoreWriter(store: store)
        #expect(writer.identityCount == 500)
        // The backup was taken before "after-backup": it is new there; "e0" is a duplicate.
        #expect(try writer.record([pending("after-backup"), pending("e0", customer: "c0", meter: "calls")]) == [.accepted, .duplicate])
    }

    @Test("a flipped byte in data.mdb.zst: restore names the file, says it is damaged, leaves nothing at PATH")
    func flippedByte() throws {
        let temporary = try filledStore()
        let scratch = try BackupScratch()
        let backupPath = scratch.path + "/backup"
        let manifest = try temporary.store.backup(to: backupPath)
        let manifestBytes = try Data(contentsOf: URL(fileURLWithPath: backupPath + "/manifest.json"))
        try flipByte(in: backupPath + "/data.mdb.zst")

        let restoredPath = scratch.path + "/restored"
        let error = try #require(storeError { _ = try TallyStore.restore(from: backupPath, to: restoredPath) })
        #expect(error.code == .damaged)
        #expect(error.message.contains(backupPath + "/data.mdb.zst"))
        #expect(error.message.contains("damaged"))
        #expect(error.message.contains("SHA-256"))
        #expect(!FileManager.default.fileExists(atPath: restoredPath))
        #expect(try scratch.entries() == ["backup"])
        // Nothing else is affected: the backup's other file and the store are as they were.
        #expect(try Data(contentsOf: URL(fileURLWithPath: backupPath + "/manifest.json")) == manifestBytes)
        #expect(try temporary.store.statistics().events == 3000)
        #expect(manifest.files.count == 1)
    }

    @Test("a truncated or missing data.mdb.zst is refused, naming the file", arguments: ["truncated", "missing"])
    func truncatedOrMissing(damage: String) throws {
        let temporary = try filledStore()
        let scratch = try BackupScratch()
        let backupPath = scratch.path + "/backup"
        _ = try temporary.store.backup(to: backupPath)
        let compressed = backupPath + "/data.mdb.zst"
        if damage == "missing" {
            try FileManager.default.removeItem(atPath: compressed)
        } else {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: compressed))
            try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: compressed))
        }
        let error = try #require(storeError { _ = try TallyStore.restore(from: backupPath, to: scratch.path + "/restored") })
        #expect(error.code == .damaged)
        #expect(error.message.contains("data.mdb.zst"))
        #expect(error.message.contains(damage == "missing" ? "is missing" : "bytes where manifest.json records"))
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/restored"))
    }

    @Test("data that does not match the manifest's data checksum is refused after decompression; nothing is left behind")
    func wrongDataChecksum() throws {
        let temporary = try filledStore()
        let scratch = try BackupScratch()
        let backupPath = scratch.path + "/backup"
        let manifest = try temporary.store.backup(to: backupPath)
        // The compressed file still matches; only the recorded checksum of the data is wrong.
        let manifestPath = backupPath + "/manifest.json"
        let text = try String(contentsOfFile: manifestPath, encoding: .utf8)
        let wrong = String(repeating: "0", count: 64)
        try text.replacingOccurrences(of: try #require(manifest.files.first).uncompressedSHA256, with: wrong)
            .write(toFile: manifestPath, atomically: true, encoding: .utf8)

        let restoredPath = scratch.path + "/nested/restored"
        let error = try #require(storeError { _ = try TallyStore.restore(from: backupPath, to: restoredPath) })
        #expect(error.code == .damaged)
        #expect(error.message.contains("data.mdb.zst"))
        #expect(error.message.contains("data.mdb"))
        #expect(error.message.contains("SHA-256"))
        #expect(!FileManager.default.fileExists(atPath: restoredPath))
        // The temporary directory next to PATH is gone too.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path + "/nested").isEmpty)
    }

    @Test("a missing or damaged manifest is refused with an error naming manifest.json",
          arguments: ["missing", "garbage", "truncated", "no files key", "bad checksum text", "extra file", "future format"])
    func damagedManifest(damage: String) throws {
        let temporary = try filledStore(events: 100)
        let scratch = try BackupScratch()
        let backupPath = scratch.path + "/backup"
        _ = try temporary.store.backup(to: backupPath)
        let manifestPath = backupPath + "/manifest.json"
        let text = try String(contentsOfFile: manifestPath, encoding: .utf8)
        var object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        var expectedCode = StoreError.Code.damaged
        switch damage {
        case "missing":
            try FileManager.default.removeItem(atPath: manifestPath)
            expectedCode = .notFound
        case "garbage":
            try "not json {".write(toFile: manifestPath, atomically: true, encoding: .utf8)
        case "truncated":
            try String(text.prefix(text.count / 2)).write(toFile: manifestPath, atomically: true, encoding: .utf8)
        case "no files key":
            object["files"] = nil
        case "bad checksum text":
            var files = try #require(object["files"] as? [[String: Any]])
            files[0]["compressed_sha256"] = "not-hex"
            object["files"] = files
        case "extra file":
            var files = try #require(object["files"] as? [[String: Any]])
            var extra = files[0]
            extra["name"] = "../escape"
            files.append(extra)
            object["files"] = files
        default:
            object["format_version"] = 99
            expectedCode = .incompatible
        }
        if ["no files key", "bad checksum text", "extra file", "future format"].contains(damage) {
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: manifestPath))
        }
        let error = try #require(storeError { _ = try TallyStore.restore(from: backupPath, to: scratch.path + "/restored") })
        #expect(error.code == expectedCode, "\(error)")
        #expect(error.message.contains(backupPath + "/manifest.json"), "\(error)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/restored"))
        #expect(try scratch.entries() == ["backup"])
    }

    @Test("a non-empty backup directory is refused and left as it was")
    func nonEmptyBackupDirectory() throws {
        let temporary = try filledStore(events: 100)
        let scratch = try BackupScratch()
        let backupPath = scratch.path + "/backup"
        try FileManager.default.createDirectory(atPath: backupPath, withIntermediateDirectories: true)
        try "keep".write(toFile: backupPath + "/notes.txt", atomically: true, encoding: .utf8)
        let error = try #require(storeError { _ = try temporary.store.backup(to: backupPath) })
        #expect(error.code == .alreadyExists)
        #expect(error.message.contains(backupPath))
        #expect(error.message.contains("not empty"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: backupPath) == ["notes.txt"])
        #expect(try scratch.entries() == ["backup"])
        // A file where the directory should be is refused too; an empty directory is fine.
        let filePath = scratch.path + "/file"
        try "x".write(toFile: filePath, atomically: true, encoding: .utf8)
        #expect(storeError { _ = try temporary.store.backup(to: filePath) }?.code == .alreadyExists)
        let emptyPath = scratch.path + "/empty"
        try FileManager.default.createDirectory(atPath: emptyPath, withIntermediateDirectories: true)
        _ = try temporary.store.backup(to: emptyPath)
        #expect(try FileManager.default.contentsOfDirectory(atPath: emptyPath).sorted() == ["data.mdb.zst", "manifest.json"])
    }

    @Test("restore refuses an existing non-empty PATH and leaves it untouched; an empty directory is accepted")
    func nonEmptyRestoreTarget() throws {
        let temporary = try filledStore(events: 100)
        let scratch = try BackupScratch()
        let backupPath = scratch.path + "/backup"
        _ = try temporary.store.backup(to: backupPath)

        let occupied = scratch.path + "/occupied"
        try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: true)
        try "mine".write(toFile: occupied + "/data.mdb", atomically: true, encoding: .utf8)
        let error = try #require(storeError { _ = try TallyStore.restore(from: backupPath, to: occupied) })
        #expect(error.code == .alreadyExists)
        #expect(error.message.contains(occupied))
        #expect(error.message.contains("choose another path"))
        #expect(try String(contentsOfFile: occupied + "/data.mdb", encoding: .utf8) == "mine")

        let file = scratch.path + "/file"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(storeError { _ = try TallyStore.restore(from: backupPath, to: file) }?.code == .alreadyExists)

        let empty = scratch.path + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        _ = try TallyStore.restore(from: backupPath, to: empty)
        #expect(try openReadOnly(empty).statistics().events == 100)
        #expect(try scratch.entries() == ["backup", "empty", "file", "occupied"])
    }

    @Test("files of every awkward size survive compression and decompression byte for byte",
          arguments: [0, 1, 4096, 128 << 10, 256 << 10, BackupFiles.frameInputBytes, BackupFiles.frameInputBytes + 1,
                      BackupFiles.frameInputBytes + (128 << 10), 2 * BackupFiles.frameInputBytes + (640 << 10)])
    func frameSizes(size: Int) throws {
        let scratch = try BackupScratch()
        var generator = SplitMix(seed: UInt64(size))
        // Half random, half runs: compressible, but not trivially.
        let data = (0..<size).map { index in index % 2048 < 1024 ? UInt8(truncatingIfNeeded: generator.next()) : UInt8(index / 2048 % 251) }
        try Data(data).write(to: URL(fileURLWithPath: scratch.path + "/data.mdb"))
        let file = try BackupFiles.compress(scratch.path + "/data.mdb", to: scratch.path + "/data.mdb.zst", name: "data.mdb")
        #expect(file.uncompressedSize == size)
        let original = try BackupFiles.sha256(ofFile: scratch.path + "/data.mdb")
        #expect(original.size == size)
        #expect(original.digest == file.uncompressedSHA256)
        try BackupFiles.verifyCompressed(file, at: scratch.path + "/data.mdb.zst")
        try BackupFiles.decompress(file, from: scratch.path + "/data.mdb.zst", to: scratch.path + "/restored.mdb")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: scratch.path + "/restored.mdb"))) == data)
    }

    @Test("a data.mdb.zst that matches its manifest but is not zstd is refused as damaged, naming it")
    func notZstd() throws {
        let temporary = try filledStore(events: 100)
        let scratch = try BackupScratch()
        let backupPath = scratch.path + "/backup"
        let manifest = try temporary.store.backup(to: backupPath)
        let compressed = backupPath + "/data.mdb.zst"
        try Data(repeating: 0x41, count: 5000).write(to: URL(fileURLWithPath: compressed))
        let (size, digest) = try BackupFiles.sha256(ofFile: compressed)
        var forged = manifest
        forged.files[0].compressedSize = size
        forged.files[0].compressedSHA256 = digest
        try JSONEncoder().encode(forged).write(to: URL(fileURLWithPath: backupPath + "/manifest.json"))
        let error = try #require(storeError { _ = try TallyStore.restore(from: backupPath, to: scratch.path + "/restored") })
        #expect(error.code == .damaged)
        #expect(error.message.contains(compressed))
        #expect(error.message.contains("no zstd frame"))
        #expect(try scratch.entries() == ["backup"])
    }

    @Test("a directory that is not a backup is refused naming manifest.json")
    func notABackup() throws {
        let scratch = try BackupScratch()
        let error = try #require(storeError { _ = try TallyStore.restore(from: scratch.path, to: scratch.path + "/restored") })
        #expect(error.code == .notFound)
        #expect(error.message.contains("manifest.json"))
        #expect(error.message.contains("not a tally backup"))
    }
}

/// A small deterministic generator for test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
