import ArgumentParser
import Storage

/// `tally backup DIR`: a consistent, compressed copy of the store, taken while `serve` runs.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a consistent, compressed copy of the store into a new directory.",
        discussion: """
            Works while `tally serve` runs: LMDB copies one snapshot of the store (one read \
            transaction), so the backup holds every event acknowledged before the command began. \
            The copy is compacted, compressed with zstd into DIR/data.mdb.zst, and described by \
            DIR/manifest.json (sizes and SHA-256 checksums), written last: a directory without a \
            manifest is an unfinished backup. DIR must not exist, or must be an empty directory. \
            The copy is first written uncompressed next to DIR, so that file system needs room for it. \
            Restore with `tally restore DIR --to PATH`.

            Examples:
              tally backup /var/backups/tally/2026-11-22
              tally backup backups/today --config config/tally.yaml --store data
            """
    )

    @OptionGroup var options: StoreOptions

    @Argument(help: ArgumentHelp("The new backup directory (missing, or empty).", valueName: "dir"))
    var directory: String

    func run() throws {
        let config = try options.loadConfig()
        let clock = ContinuousClock()
        let start = clock.now
        let manifest: BackupManifest
        do throws(StoreError) {
            manifest = try options.openStoreForReading(config).backup(to: directory)
        } catch {
            throw CommandFailure(error.message)
        }
        let elapsed = clock.now - start
        print("backed up \(manifest.sourcePath) (transaction \(manifest.lastTransactionID)) into \(directory)")
        print("  \(BackupSummary.size(manifest.uncompressedSize)) compacted → \(BackupSummary.size(manifest.compressedSize)) "
            + "compressed (\(BackupSummary.ratio(manifest))) in \(BackupSummary.seconds(elapsed))")
    }
}

/// `tally restore DIR --to PATH`: verifies a backup and restores it as a new store directory.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Verify a backup and restore it as a new store directory.",
        discussion: """
            Checks DIR/manifest.json and the size and SHA-256 of DIR/data.mdb.zst before writing \
            anything, decompresses into a temporary directory next to PATH while checking the SHA-256 \
            of the data, then renames it into PATH. A damaged backup is refused with an error naming \
            the file. PATH must not exist, or must be an empty directory; on any failure nothing is \
            left at PATH. Start the daemon on the result with `tally serve --store PATH`.

            Examples:
              tally restore /var/backups/tally/2026-11-22 --to data-restored
              tally restore backups/today --to /srv/tally/data
            """
    )

    @Argument(help: ArgumentHelp("The backup directory written by `tally backup`.", valueName: "dir"))
    var directory: String

    @Option(name: .long, help: ArgumentHelp("The new store directory (missing, or empty).", valueName: "path"))
    var to: String

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let manifest: BackupManifest
        do throws(StoreError) {
            manifest = try TallyStore.restore(from: directory, to: to)
        } catch {
            throw CommandFailure(error.message)
        }
        let elapsed = clock.now - start
        print("restored \(directory) (a backup of \(manifest.sourcePath) taken at \(manifest.createdAt.rfc3339), "
            + "transaction \(manifest.lastTransactionID)) into \(to)")
        print("  \(BackupSummary.size(manifest.compressedSize)) compressed → \(BackupSummary.size(manifest.uncompressedSize)) "
            + "verified in \(BackupSummary.seconds(elapsed))")
        print("start the daemon on it with: tally serve --store \(to)")
    }
}

/// Integer formatting of sizes, ratios and durations for the summaries.
enum BackupSummary {
    /// `"512 B"`, `"12.3 MiB"`: binary units, one decimal, truncated.
    static func size(_ bytes: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        guard bytes >= 1024 else { return "\(bytes) B" }
        var unit = 0
        var divisor = 1024
        while unit + 1 < units.count, bytes / divisor >= 1024 {
            unit += 1
            divisor *= 1024
        }
        let tenths = bytes / (divisor / 1024) * 10 / 1024
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }

    /// `"ratio 8.42:1"`: uncompressed over compressed, two decimals, truncated.
    static func ratio(_ manifest: BackupManifest) -> String {
        guard manifest.compressedSize > 0 else { return "ratio –" }
        let hundredths = manifest.uncompressedSize / manifest.compressedSize * 100
            + manifest.uncompressedSize % manifest.compressedSize * 100 / manifest.compressedSize
        let fraction = hundredths % 100
        return "ratio \(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction):1"
    }

    /// `"1.234 s"`.
    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = Int(attoseconds / 1_000_000_000_000_000)
        let padding = milliseconds < 10 ? "00" : milliseconds < 100 ? "0" : ""
        return "\(seconds).\(padding)\(milliseconds) s"
    }
}
