import Foundation
import IngestClient
import Logging
import TallyConfiguration
import Metering
import Storage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `tally backup` and `tally restore` against the real daemon.
@Suite("Backup and restore commands", .serialized)
struct BackupCommandTests {
    @Test("a backup taken during ingest restores to a store holding every event accepted before it began")
    func backupDuringIngest() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let total = 50_000
        let customers = 5
        let lines: [[UInt8]] = (0..<total).map { Array(eventLine(id: "bk-\($0)", customer: "cus_\($0 % customers)").utf8) }

        // Stream on one connection from a background thread, paced (20 ms every 500 lines) so the
        // stream lasts seconds and the backup runs in the middle of it.
        let state = AcceptedLines()
        let sender = LineSender(socketPath: daemon.socketPath, options: .init(windowLines: 2048))
        let finished = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var streamed: Result<LineSender.Summary, ClientError>?
        Thread.detachNewThread {
            streamed = Result { () throws(ClientError) -> LineSender.Summary in
                try sender.run(lines: lines.lazy.enumerated().map { index, line in
                    if index % 500 == 0 { usleep(20_000) }
                    return ArraySlice(line)
                }) { outcome in state.record(outcome) }
            }
            finished.signal()
        }
        let deadline = Date().addingTimeInterval(60)
        while state.count < 10_000 && Date() < deadline { usleep(2_000) }

        // Every event answered `accepted` before the backup command starts must be in the backup.
        let acceptedBeforeBackup = state.indexes
        let backupDirectory = daemon.directory + "/backup"
        let backup = try daemon.tally(["backup", backupDirectory, "--config", daemon.configPath, "--store", daemon.storePath])
        #expect(backup.status == 0, "\(backup.error)")
        #expect(acceptedBeforeBackup.count >= 10_000)
        #expect(acceptedBeforeBackup.count < total, "the backup must begin while events stream")
        #expect(backup.output.contains("backed up"))
        #expect(backup.output.contains("compressed"))

        finished.wait()
        let summary = try #require(try streamed?.get())
        #expect(summary.accepted == total)
        #expect(daemon.terminate() == 0)

        // Restore into the store path of a second harness, then read it.
        let restoredDaemon = try DaemonHarness()
        let restore = try restoredDaemon.tally(["restore", backupDirectory, "--to", restoredDaemon.storePath])
        #expect(restore.status == 0, "\(restore.error)")
        #expect(restore.output.contains("restored"))
        let restoredEvents: Int
        do {
            let store = try TallyStore(
                path: restoredDaemon.storePath,
                configuration: .init(meters: try ConfigLoader.load(path: restoredDaemon.configPath).meters, billingPeriod: .monthly),
                access: .readOnly, logger: Logger(label: "test"))
            restoredEvents = try store.statistics().events
        }
        #expect(restoredEvents >= acceptedBeforeBackup.count)
        #expect(restoredEvents <= total)

        // A daemon on the restored store answers `duplicate` for every event accepted before the
        // backup began, and for exactly as many events as the restored store holds.
        try restoredDaemon.start()
        let replay = ReplayAnswers()
        let second = try LineSender(socketPath: restoredDaemon.socketPath).run(lines: lines.lazy.map { ArraySlice($0) }) { outcome in
            replay.record(outcome)
        }
        let duplicates = replay.duplicateIndexes
        #expect(acceptedBeforeBackup.allSatisfy { duplicates.contains($0) })
        #expect(second.duplicate == restoredEvents)
        #expect(second.accepted == total - restoredEvents)
        #expect(second.rejected == 0)
        var calls = 0
        for customer in 0..<customers {
            calls += Int(try restoredDaemon.usage(customer: "cus_\(customer)").quantity("api_calls") ?? "0") ?? 0
        }
        #expect(calls == total)
        #expect(restoredDaemon.terminate() == 0)
    }

    @Test("a damaged backup is refused with an error naming the file; the daemon and its store are unaffected")
    func damagedBackupRefused() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let lines = (0..<1000).map { eventLine(id: "dmg-\($0)") }
        #expect(try daemon.exchange(lines.joined(separator: "\n") + "\n").allSatisfy { $0 == acceptedLine })
        let backupDirectory = daemon.directory + "/backup"
        let backup = try daemon.tally(["backup", backupDirectory, "--config", daemon.configPath, "--store", daemon.storePath])
        #expect(backup.status == 0, "\(backup.error)")

        // One flipped byte in the compressed store.
        let compressed = backupDirectory + "/data.mdb.zst"
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: compressed)))
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: compressed))
        let target = daemon.directory + "/restored"
        let restore = try daemon.tally(["restore", backupDirectory, "--to", target])
        #expect(restore.status == 1)
        #expect(restore.error.contains(compressed))
        #expect(restore.error.contains("damaged"))
        #expect(!FileManager.default.fileExists(atPath: target))

        // A damaged manifest names manifest.json.
        try "{\"format_version\": 1, \"files\": ".write(toFile: backupDirectory + "/manifest.json", atomically: true, encoding: .utf8)
        let second = try daemon.tally(["restore", backupDirectory, "--to", target])
        #expect(second.status == 1)
        #expect(second.error.contains(backupDirectory + "/manifest.json"))
        #expect(second.error.contains("damaged"))
        #expect(!FileManager.default.fileExists(atPath: target))

        // A backup into the same (non-empty) directory is refused.
        let again = try daemon.tally(["backup", backupDirectory, "--config", daemon.configPath, "--store", daemon.storePath])
        #expect(again.status == 1)
        #expect(again.error.contains("not empty"))

        // The daemon still takes events and its store still counts the first thousand.
        #expect(try daemon.exchange(eventLine(id: "dmg-after") + "\n") == [acceptedLine])
        #expect(try daemon.usage(customer: "cus_1").quantity("api_calls") == "1001")
        #expect(daemon.terminate() == 0)
    }

    @Test("--help of backup and restore shows an example")
    func help() throws {
        let daemon = try DaemonHarness()
        let backup = try daemon.tally(["backup", "--help"])
        #expect(backup.status == 0)
        #expect(backup.output.contains("tally backup /var/backups/tally/"))
        let restore = try daemon.tally(["restore", "--help"])
        #expect(restore.status == 0)
        #expect(restore.output.contains("tally restore /var/backups/tally/2026-11-22 --to"))
        // restore without --to is a usage error.
        #expect(try daemon.tally(["restore", "somewhere"]).status != 0)
    }
}

/// The indexes of lines answered `accepted`, shared between the sender's thread and the test.
final class AcceptedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var accepted: [Int] = []

    var count: Int { lock.withLock { accepted.count } }
    var indexes: [Int] { lock.withLock { accepted } }

    func record(_ outcome: LineOutcome) {
        guard outcome.response.status == .accepted else { return }
        lock.withLock { accepted.append(outcome.index) }
    }
}

/// The indexes of lines answered `duplicate` on a replay.
final class ReplayAnswers: @unchecked Sendable {
    private let lock = NSLock()
    private var duplicates = Set<Int>()

    var duplicateIndexes: Set<Int> { lock.withLock { duplicates } }

    func record(_ outcome: LineOutcome) {
        guard outcome.response.status == .duplicate else { return }
        lock.withLock { _ = duplicates.insert(outcome.index) }
    }
}
