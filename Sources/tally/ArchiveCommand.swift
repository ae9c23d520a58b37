import ArgumentParser
import Foundation
import Metering
import Storage

/// `tally archive`: moves closed periods' events into zstd segments and forgets expired identities.
struct ArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Move events of closed periods out of the live store into compressed segments.",
        discussion: """
            Every live event whose time lies in a closed period (`tally period close`) moves into \
            zstd-compressed, checksummed segment files in STORE/archive/, and every identity \
            remembered longer than ingest.dedup_window (plus ingest.max_future_skew) is forgotten. \
            Each segment moves in one LMDB transaction, so a run that is interrupted (even by \
            SIGKILL) loses and doubles nothing: run it again to finish. Archived events stay \
            readable by `tally export` and `tally rerate`. `tally serve` runs the same step every \
            archive.interval; this command works beside it (one run at a time). With --verify, checks \
            every segment against its recorded SHA-256 instead and names the damaged ones.

            Examples:
              tally period close 2026-10 && tally archive
              tally archive --verify
            """
    )

    @OptionGroup var options: StoreOptions

    @Flag(name: .long, help: "Check every segment file instead of archiving; exit 1 when one is damaged.")
    var verify = false

    @Flag(name: .long, help: "Print the report as one JSON object.")
    var json = false

    func run() throws {
        let config = try options.loadConfig()
        let store: TallyStore
        do {
            store = try options.openStore(config, access: verify ? .readOnly : .settings)
        } catch {
            throw CommandFailure(error.message)
        }
        let archive = EventArchive(store: store)
        if verify {
            try runVerify(archive)
            return
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let report: ArchiveReport
        do {
            let cutoff = EventArchive.identityCutoff(
                now: .now(), dedupWindowNanoseconds: config.ingest.dedupWindowNanoseconds,
                maxFutureSkewNanoseconds: config.ingest.maxFutureSkewNanoseconds)
            report = try archive.run(identityCutoff: cutoff, writeStep: runWriteStepInline)
        } catch let error as StoreError {
            throw CommandFailure(error.message)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        if json {
            var writer = JSONWriter()
            writer.raw("{"); writer.key("segments"); writer.raw(String(report.segments))
            writer.raw(","); writer.key("events"); writer.raw(String(report.events))
            writer.raw(","); writer.key("event_bytes"); writer.raw(String(report.eventBytes))
            writer.raw(","); writer.key("uncompressed_bytes"); writer.raw(String(report.uncompressedBytes))
            writer.raw(","); writer.key("compressed_bytes"); writer.raw(String(report.compressedBytes))
            writer.raw(","); writer.key("identities_expired"); writer.raw(String(report.identitiesExpired))
            writer.raw(","); writer.key("longest_step_ms"); writer.raw(String(format: "%.3f", Double(report.longestWriteNanoseconds) / 1e6))
            writer.raw("}")
            print(String(decoding: writer.bytes, as: UTF8.self))
            return
        }
        if report.events == 0 {
            print("no events of closed periods in the live store" + (report.identitiesExpired > 0 ? "" : "; nothing to archive"))
        } else {
            let ratio = report.compressedBytes > 0 ? Double(report.eventBytes) / Double(report.compressedBytes) : 0
            print("archived \(report.events) events into \(report.segments) segments in \(archive.directory): "
                + "\(BackupSummary.size(report.eventBytes)) in the live store → \(BackupSummary.size(report.compressedBytes)) "
                + "(\(String(format: "%.1f", ratio)):1) in \(String(format: "%.2f", seconds)) s")
        }
        if report.identitiesExpired > 0 {
            print("forgot \(report.identitiesExpired) identities older than the dedup window")
        }
    }

    private func runVerify(_ archive: EventArchive) throws {
        let segments: [ArchiveSegment]
        let problems: [StoreError]
        do {
            segments = try archive.segments()
            problems = try archive.verify()
        } catch {
            throw CommandFailure(error.message)
        }
        if problems.isEmpty {
            let events = segments.reduce(0) { $0 + $1.events }
            print("\(segments.count) segments, \(events) events: every segment matches its SHA-256")
            return
        }
        throw CommandFailure(problems.map(\.message).joined(separator: "\n")
            + "\n\(problems.count) of \(segments.count) segments are damaged; the live store is not affected")
    }
}
