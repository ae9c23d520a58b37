import Crypto
import Foundation
import LMDB
import Metering
import Zstd

// MARK: - Backup and restore

extension TallyStore {
    /// Writes a consistent, compacted, zstd-compressed copy of the store into `directory`, while the
    /// daemon goes on writing.
    ///
    /// LMDB copies one snapshot (one read transaction), compacted, into a pipe, and the copy is
    /// compressed from it in pieces of about 4 MiB into `directory/data.mdb.zst`, so the target needs
    /// room for the compressed file only (no uncompressed copy is ever written); then
    /// `directory/manifest.json` is written last (to a temporary name, synced, renamed). The backup
    /// holds every event committed before the call began.
    ///
    /// ```swift
    /// let manifest = try store.backup(to: "/var/backups/tally/2026-11-22")
    /// ```
    /// - Parameter directory: The backup directory: created when missing; an existing one must be empty.
    /// - Returns: The manifest that was written.
    /// - Throws: `StoreError` with `.alreadyExists` when `directory` exists and is not empty (or is a
    ///   file), `.unavailable` when the copy or a write fails (disk full, permissions). On failure
    ///   the files this call created are removed.
    public func backup(to directory: String) throws(StoreError) -> BackupManifest {
        let target = BackupFiles.absolute(directory)
        let createdTarget = try BackupFiles.prepareEmptyDirectory(target, shownAs: directory)
        let compressedPath = BackupFiles.join(target, BackupFiles.dataFile + ".zst")
        var succeeded = false
        defer {
            if !succeeded {
                unlink(compressedPath)
                unlink(BackupFiles.join(target, BackupFiles.temporaryManifestName))
                unlink(BackupFiles.join(target, BackupManifest.fileName))
                if createdTarget { rmdir(target) }
            }
        }

        // Milliseconds, as the manifest records it, so the returned manifest equals the one on disk.
        let now = Timestamp.now().nanosecondsSinceEpoch
        let createdAt = Timestamp(nanosecondsSinceEpoch: now - now % 1_000_000)
        let lastTransactionID = environment.info().lastTransactionID
        let file = try streamCompactCopy(to: compressedPath)
        // The archive's segments, listed after the copy: every segment the copy records, perhaps a
        // few recorded since (a restored store's next archive run removes those as unrecorded).
        let archiveTarget = BackupFiles.join(target, BackupFiles.archiveDirectory)
        defer { if !succeeded { BackupFiles.removeTree(archiveTarget) } }
        let archive = EventArchive(store: self)
        var files = [file]
        let segments = try archive.segments()
        if !segments.isEmpty, mkdir(archiveTarget, 0o750) != 0 {
            throw StoreError(.unavailable, "cannot create '\(archiveTarget)': \(BackupFiles.systemError())")
        }
        for segment in segments {
            let name = BackupFiles.archiveDirectory + "/" + segment.fileName
            let copied = try BackupFiles.compress(archive.path(of: segment), to: BackupFiles.join(target, name + ".zst"), name: name)
            guard copied.uncompressedSHA256 == BackupFiles.hex(segment.sha256) else {
                throw StoreError(.damaged, "archive segment '\(archive.path(of: segment))' is damaged: its SHA-256 does not match the one recorded when it was written; restore it from an earlier backup, then back up again")
            }
            files.append(copied)
        }
        let manifest = BackupManifest(
            formatVersion: BackupManifest.currentFormatVersion,
            storeFormat: Int(currentStoreFormat),
            createdAt: createdAt,
            sourcePath: BackupFiles.absolute(path),
            lastTransactionID: lastTransactionID,
            files: files
        )
        try BackupFiles.writeManifest(manifest, in: target)
        succeeded = true
        return manifest
    }

    /// LMDB's compacted copy of one snapshot, written by a helper thread into a pipe and compressed
    /// from it into `compressedPath`: the target needs room for the compressed file only, not for
    /// an uncompressed copy beside it.
    private func streamCompactCopy(to compressedPath: String) throws(StoreError) -> BackupManifest.File {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw StoreError(.unavailable, "cannot create a pipe for the backup: \(BackupFiles.systemError())") }
        let (readEnd, writeEnd) = (ends[0], ends[1])
        let copier = BackupCopier(environment: environment, descriptor: writeEnd)
        copier.start()
        defer { close(readEnd) }
        let compressed: Result<BackupManifest.File, StoreError>
        do {
            compressed = .success(try BackupFiles.compress(descriptor: readEnd, shownAs: "the copy of '\(path)'", to: compressedPath,
                                                           name: BackupFiles.dataFile))
        } catch {
            compressed = .failure(error)
            // Read the rest, so the copier never writes into a closed pipe (SIGPIPE), and ends.
            BackupFiles.drain(readEnd)
        }
        if let copyError = copier.wait() {
            let hint = copyError.code == .diskFull ? "free some space, or back up to another file system" : "check the store's permissions and free space"
            throw StoreError(.unavailable, "cannot copy the store at '\(path)' for the backup: \(copyError.message); \(hint), then retry")
        }
        return try compressed.get()
    }

    /// Verifies the backup in `directory` and restores it as a new store directory at `path`.
    ///
    /// Reads `manifest.json`, checks the size and SHA-256 of every compressed file before writing
    /// anything, decompresses into a temporary directory next to `path` checking the SHA-256 of the
    /// data, syncs, then renames the result into `path`. On any failure nothing is left at `path`.
    /// Open the result with `TallyStore(path:configuration:access:logger:)` (or `tally serve --store`).
    ///
    /// ```swift
    /// let manifest = try TallyStore.restore(from: "/var/backups/tally/2026-11-22", to: "./data-restored")
    /// ```
    /// - Returns: The manifest of the restored backup.
    /// - Throws: `StoreError` with `.notFound` when `directory` has no `manifest.json`; `.damaged`
    ///   when the manifest cannot be read or a file does not match it (the message names the file);
    ///   `.incompatible` for a backup format or store format this build cannot read;
    ///   `.alreadyExists` when `path` exists and is not an empty directory; `.unavailable` when a
    ///   read or write fails.
    public static func restore(from directory: String, to path: String) throws(StoreError) -> BackupManifest {
        let source = BackupFiles.absolute(directory)
        let target = BackupFiles.absolute(path)
        try BackupFiles.requireAbsentOrEmpty(target, shownAs: path)
        let manifest = try BackupFiles.readManifest(in: source, shownAs: directory)
        for file in manifest.files {
            try BackupFiles.verifyCompressed(file, at: BackupFiles.join(directory, file.compressedName))
        }

        let parent = (target as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.unavailable, "cannot create the directory '\(parent)' for the restored store: \(error.localizedDescription)")
        }
        let workspace = BackupFiles.temporarySibling(of: target, purpose: "restore")
        guard mkdir(workspace, 0o750) == 0 else {
            throw StoreError(.unavailable, "cannot create the temporary directory '\(workspace)': \(BackupFiles.systemError()); check the permissions of '\(parent)'")
        }
        var succeeded = false
        defer { if !succeeded { BackupFiles.removeTree(workspace) } }
        if manifest.files.count > 1, mkdir(BackupFiles.join(workspace, BackupFiles.archiveDirectory), 0o750) != 0 {
            throw StoreError(.unavailable, "cannot create the archive directory in '\(workspace)': \(BackupFiles.systemError())")
        }
        for file in manifest.files {
            try BackupFiles.decompress(file, from: BackupFiles.join(directory, file.compressedName), to: BackupFiles.join(workspace, file.name))
        }
        try BackupFiles.syncDirectory(workspace)
        if rename(workspace, target) != 0 {
            let code = errno
            if code == ENOTEMPTY || code == EEXIST || code == ENOTDIR || code == EISDIR {
                throw StoreError(.alreadyExists, "'\(path)' appeared while restoring and is not empty: choose another path for the restored store, or remove it first")
            }
            throw StoreError(.unavailable, "cannot move the restored store into '\(path)': \(String(cString: strerror(code)))")
        }
        succeeded = true
        try? BackupFiles.syncDirectory(parent)
        return manifest
    }
}

/// Runs `Environment.copy(toDescriptor:compact:)` on a thread of its own (its writes block until
/// the backup's compressor reads them) and closes the pipe's write end when it is done.
private final class BackupCopier: @unchecked Sendable {
    private let environment: Environment
    private let descriptor: Int32
    private let done = DispatchSemaphore(value: 0)
    /// Written by the copier thread before it signals `done`; read only after `wait`.
    private var failure: LMDBError?

    init(environment: Environment, descriptor: Int32) {
        self.environment = environment
        self.descriptor = descriptor
    }

    func start() {
        let thread = Thread { [self] in
            do throws(LMDBError) {
                try environment.copy(toDescriptor: descriptor, compact: true)
            } catch {
                failure = error
            }
            close(descriptor)
            done.signal()
        }
        thread.name = "tally-backup-copy"
        thread.start()
    }

    /// Waits for the copy to end; its error, if any.
    func wait() -> LMDBError? {
        done.wait()
        return failure
    }
}
