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

// Backups of a Tally store (`tally backup DIR`, `tally restore DIR --to PATH`).
//
// A backup directory holds two files:
//
// | file            | what |
// |-----------------|------|
// | `data.mdb.zst`  | a compacted LMDB copy of the store (`mdb_env_copy2` with `MDB_CP_COMPACT`: one read transaction, so one consistent snapshot), as concatenated zstd frames of at most 4 MiB − 4 KiB of input each, every frame with its content size and checksum |
// | `manifest.json` | ``BackupManifest``: sizes and SHA-256 of both the compressed file and the data; written last, atomically |
//
// A directory without `manifest.json` is an unfinished backup. The frames are independent so that a
// restore needs only a few MiB of memory whatever the size of the store; the file is still an
// ordinary zstd stream (`zstd -d data.mdb.zst` gives `data.mdb`).

/// What a backup holds, as recorded in its `manifest.json`; ``TallyStore/restore(from:to:)`` verifies a
/// backup against it.
///
/// ```json
/// {"format_version": 1, "store_format": 1, "created_at": "2026-11-22T10:00:00.123Z",
///  "source_path": "/srv/tally/data", "last_transaction_id": 4711,
///  "files": [{"name": "data.mdb", "compressed_name": "data.mdb.zst", "compressed_size": 1048576,
///             "uncompressed_size": 8388608, "compressed_sha256": "…", "uncompressed_sha256": "…"}]}
/// ```
public struct BackupManifest: Sendable, Hashable {
    /// One file of the store, kept compressed in the backup.
    public struct File: Sendable, Hashable {
        /// The file's name in the store directory, such as `data.mdb`.
        public var name: String
        /// The size of the compressed file in the backup, in bytes.
        public var compressedSize: Int
        /// The size of the file itself, in bytes.
        public var uncompressedSize: Int
        /// The SHA-256 of the compressed file, lowercase hex.
        public var compressedSHA256: String
        /// The SHA-256 of the file itself, lowercase hex.
        public var uncompressedSHA256: String

        /// The compressed file's name in the backup directory: ``name`` followed by `.zst`.
        public var compressedName: String { name + ".zst" }

        /// Creates a file entry from its parts.
        public init(name: String, compressedSize: Int, uncompressedSize: Int, compressedSHA256: String, uncompressedSHA256: String) {
            self.name = name
            self.compressedSize = compressedSize
            self.uncompressedSize = uncompressedSize
            self.compressedSHA256 = compressedSHA256
            self.uncompressedSHA256 = uncompressedSHA256
        }
    }

    /// The backup format this build writes and reads.
    public static let currentFormatVersion = 1
    /// The name of the manifest in a backup directory.
    public static let fileName = "manifest.json"

    /// The backup format (``currentFormatVersion`` for backups written by this build).
    public var formatVersion: Int
    /// The store format of the backed-up store (its `meta` `format`).
    public var storeFormat: Int
    /// When the backup began.
    public var createdAt: Timestamp
    /// The absolute path of the store that was backed up.
    public var sourcePath: String
    /// The store's last committed LMDB transaction when the backup began: the backup holds it and
    /// possibly later ones (LMDB copies the snapshot current when the copy starts).
    public var lastTransactionID: Int
    /// The files of the backup; format 1 holds `data.mdb`, then the archive's segment files (`archive/…`).
    public var files: [File]

    /// Creates a manifest from its parts.
    public init(formatVersion: Int, storeFormat: Int, createdAt: Timestamp, sourcePath: String, lastTransactionID: Int, files: [File]) {
        self.formatVersion = formatVersion
        self.storeFormat = storeFormat
        self.createdAt = createdAt
        self.sourcePath = sourcePath
        self.lastTransactionID = lastTransactionID
        self.files = files
    }

    /// The bytes of every compressed file together.
    public var compressedSize: Int { files.reduce(0) { $0 + $1.compressedSize } }
    /// The bytes of every file uncompressed together.
    public var uncompressedSize: Int { files.reduce(0) { $0 + $1.uncompressedSize } }
}

extension BackupManifest: Codable {
    private enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case storeFormat = "store_format"
        case createdAt = "created_at"
        case sourcePath = "source_path"
        case lastTransactionID = "last_transaction_id"
        case files
    }

    /// Decodes a manifest; `created_at` must be RFC 3339.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try container.decode(Int.self, forKey: .formatVersion)
        storeFormat = try container.decode(Int.self, forKey: .storeFormat)
        let created = try container.decode(String.self, forKey: .createdAt)
        guard let createdAt = Timestamp.parseRFC3339(created) else {
            throw DecodingError.dataCorruptedError(forKey: .createdAt, in: container, debugDescription: "'\(created)' is not an RFC 3339 time")
        }
        self.createdAt = createdAt
        sourcePath = try container.decode(String.self, forKey: .sourcePath)
        lastTransactionID = try container.decode(Int.self, forKey: .lastTransactionID)
        files = try container.decode([File].self, forKey: .files)
    }

    /// Encodes the manifest with snake_case keys and `created_at` in RFC 3339.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(formatVersion, forKey: .formatVersion)
        try container.encode(storeFormat, forKey: .storeFormat)
        try container.encode(createdAt.rfc3339(fractionDigits: 3), forKey: .createdAt)
        try container.encode(sourcePath, forKey: .sourcePath)
        try container.encode(lastTransactionID, forKey: .lastTransactionID)
        try container.encode(files, forKey: .files)
    }
}

extension BackupManifest.File: Codable {
    private enum CodingKeys: String, CodingKey {
        case name
        case compressedName = "compressed_name"
        case compressedSize = "compressed_size"
        case uncompressedSize = "uncompressed_size"
        case compressedSHA256 = "compressed_sha256"
        case uncompressedSHA256 = "uncompressed_sha256"
    }

    /// Decodes a file entry.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        compressedSize = try container.decode(Int.self, forKey: .compressedSize)
        uncompressedSize = try container.decode(Int.self, forKey: .uncompressedSize)
        compressedSHA256 = try container.decode(String.self, forKey: .compressedSHA256)
        uncompressedSHA256 = try container.decode(String.self, forKey: .uncompressedSHA256)
    }

    /// Encodes a file entry, with its compressed name for people reading the manifest.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(compressedName, forKey: .compressedName)
        try container.encode(compressedSize, forKey: .compressedSize)
        try container.encode(uncompressedSize, forKey: .uncompressedSize)
        try container.encode(compressedSHA256, forKey: .compressedSHA256)
        try container.encode(uncompressedSHA256, forKey: .uncompressedSHA256)
    }
}

extension StoreError.Code {
    /// A backup or an archive segment is missing, or does not match its checksums or its manifest.
    public static let damaged = StoreError.Code(rawValue: "damaged")
    /// The target of a backup or a restore exists and is not empty.
    public static let alreadyExists = StoreError.Code(rawValue: "already_exists")
}

// MARK: - Backup and restore

extension TallyStore {
    /// Writes a consistent, compacted, zstd-compressed copy of the store into `directory`, while the
    /// daemon goes on writing.
    ///
    /// LMDB copies one snapshot (one read transaction) into a temporary directory next to
    /// `directory`; the copy is compressed in pieces of about 4 MiB into `directory/data.mdb.zst`; then
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
        let workspace = BackupFiles.temporarySibling(of: target, purpose: "backup")
        let compressedPath = BackupFiles.join(target, BackupFiles.dataFile + ".zst")
        var succeeded = false
        defer {
            BackupFiles.removeTree(workspace)
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
        do {
            try environment.copy(to: workspace, compact: true)
        } catch {
            let hint = error.code == .diskFull ? "free some space, or back up to another file system" : "check the directory's permissions and free space"
            throw StoreError(.unavailable, "cannot copy the store at '\(path)' for the backup into '\(workspace)': \(error.message); \(hint), then retry")
        }
        let file = try BackupFiles.compress(
            BackupFiles.join(workspace, BackupFiles.dataFile), to: compressedPath, name: BackupFiles.dataFile)
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

// MARK: - Files

/// The file work of backups: paths, checks, compression, hashing. POSIX calls, each failure turned
/// into a `StoreError` that names the file.
enum BackupFiles {
    /// The LMDB data file, the first file of a store a backup holds.
    static let dataFile = "data.mdb"
    /// The store's archive directory: its segment files follow `data.mdb` in a backup.
    static let archiveDirectory = "archive"
    /// The name the manifest is written under before it is renamed into place.
    static let temporaryManifestName = ".manifest.json.tmp"
    /// Input bytes per zstd frame: restores hold one frame (and its output) in memory at a time.
    /// Not a multiple of `zstdBlockBytes` (see `frames(of:)`).
    static let frameInputBytes = (4 << 20) - 4096
    /// zstd's block size and `ZSTD_DStreamOutSize()`.
    static let zstdBlockBytes = 128 << 10
    /// The largest compressed frame a restore accepts: a frame of `frameInputBytes` never comes
    /// near it (zstd's bound is the input plus about 0.4 %).
    static let maximumFrameBytes = 8 << 20
    /// Bytes read from a compressed file at a time.
    static let readBytes = 1 << 20

    // MARK: Paths

    static func absolute(_ path: String) -> String {
        var result = URL(fileURLWithPath: path).standardizedFileURL.path
        while result.count > 1 && result.hasSuffix("/") { result.removeLast() }
        return result
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// A fresh hidden name in the directory of `path`, on its file system, so a rename can move it into place.
    static func temporarySibling(of path: String, purpose: String) -> String {
        let parent = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return join(parent, ".\(base).\(purpose)-\(suffix)")
    }

    static func systemError() -> String {
        String(cString: strerror(errno))
    }

    /// Whether `path` exists, and whether it may become a backup or a store: missing or an empty directory.
    private static func inspect(_ path: String) throws(StoreError) -> (exists: Bool, usable: Bool) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return (false, true) }
        guard isDirectory.boolValue else { return (true, false) }
        do {
            return (true, try FileManager.default.contentsOfDirectory(atPath: path).isEmpty)
        } catch {
            throw StoreError(.unavailable, "cannot list '\(path)': \(error.localizedDescription); check its permissions")
        }
    }

    /// Makes sure the backup target is an empty directory; returns whether it was created.
    static func prepareEmptyDirectory(_ path: String, shownAs shown: String) throws(StoreError) -> Bool {
        let state = try inspect(path)
        guard state.usable else {
            throw StoreError(.alreadyExists, "'\(shown)' already exists and is not empty: back up into a new directory, or remove it first")
        }
        if state.exists { return false }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw StoreError(.unavailable, "cannot create the backup directory '\(shown)': \(error.localizedDescription); check the permissions of its parent")
        }
        return true
    }

    static func requireAbsentOrEmpty(_ path: String, shownAs shown: String) throws(StoreError) {
        guard try inspect(path).usable else {
            throw StoreError(.alreadyExists, "'\(shown)' already exists and is not empty: choose another path for the restored store, or remove it first")
        }
    }

    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    // MARK: Manifest

    static func writeManifest(_ manifest: BackupManifest, in directory: String) throws(StoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(manifest)) + [UInt8(ascii: "\n")]
        } catch {
            throw StoreError(.unavailable, "cannot encode the backup manifest: \(error)")
        }
        try writeAtomically(bytes, to: join(directory, BackupManifest.fileName), through: join(directory, temporaryManifestName))
    }

    /// Writes `bytes` to `final` all or nothing: into `temporary` (created new), synced, renamed over
    /// `final`, the directory synced. On failure `temporary` is removed and `final` is untouched.
    static func writeAtomically(_ bytes: [UInt8], to final: String, through temporary: String) throws(StoreError) {
        let descriptor = try createExclusive(temporary)
        do {
            try writeAll(descriptor, bytes, path: temporary)
            try sync(descriptor, path: temporary)
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, final) == 0 else {
            let reason = systemError()
            unlink(temporary)
            throw StoreError(.unavailable, "cannot rename '\(temporary)' to '\(final)': \(reason)")
        }
        try syncDirectory((final as NSString).deletingLastPathComponent)
    }

    static func readManifest(in directory: String, shownAs shown: String) throws(StoreError) -> BackupManifest {
        let path = join(directory, BackupManifest.fileName)
        let shownPath = join(shown, BackupManifest.fileName)
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(.notFound, "'\(shownPath)' is missing: '\(shown)' is not a tally backup, or the backup did not finish; use another backup")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError(.unavailable, "cannot read '\(shownPath)': check its permissions")
        }
        struct Version: Decodable {
            var formatVersion: Int
            enum CodingKeys: String, CodingKey { case formatVersion = "format_version" }
        }
        func damaged(_ what: String) -> StoreError {
            StoreError(.damaged, "'\(shownPath)' is damaged (\(what)): the backup cannot be verified; use another backup")
        }
        let version: Int
        do {
            version = try JSONDecoder().decode(Version.self, from: data).formatVersion
        } catch {
            throw damaged("it is not a backup manifest: \(describe(error))")
        }
        guard version == BackupManifest.currentFormatVersion else {
            throw StoreError(.incompatible, "'\(shownPath)' has backup format \(version), but this tally reads format \(BackupManifest.currentFormatVersion): restore it with the tally version that wrote it")
        }
        let manifest: BackupManifest
        do {
            manifest = try JSONDecoder().decode(BackupManifest.self, from: data)
        } catch {
            throw damaged(describe(error))
        }
        guard manifest.storeFormat == Int(currentStoreFormat) else {
            throw StoreError(.incompatible, "'\(shown)' holds a store of format \(manifest.storeFormat), but this tally reads format \(currentStoreFormat): restore it with the tally version that wrote it")
        }
        guard manifest.files.first?.name == dataFile, manifest.files.dropFirst().allSatisfy({ isSegmentName($0.name) }) else {
            throw damaged("it lists \(manifest.files.map { "'\($0.name)'" }.joined(separator: ", ")) where a format 1 backup holds 'data.mdb' and then only archive segments ('archive/NNNNNNNNNNNN.tseg')")
        }
        for file in manifest.files {
            guard file.compressedSize >= 0, file.uncompressedSize >= 0 else { throw damaged("a negative size for '\(file.name)'") }
            guard isSHA256(file.compressedSHA256), isSHA256(file.uncompressedSHA256) else {
                throw damaged("a checksum of '\(file.name)' is not 64 lowercase hex digits")
            }
        }
        return manifest
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "'\(key.stringValue)' is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case DecodingError.dataCorrupted(let context):
            context.codingPath.isEmpty ? "it is not valid JSON" : context.debugDescription
        default: "\(error)"
        }
    }

    /// `archive/` followed by a segment file name: twelve digits and `.tseg`.
    private static func isSegmentName(_ name: String) -> Bool {
        let prefix = archiveDirectory + "/"
        guard name.hasPrefix(prefix), name.hasSuffix(".tseg") else { return false }
        let digits = name.dropFirst(prefix.count).dropLast(5)
        return digits.count == 12 && digits.allSatisfy { $0 >= "0" && $0 <= "9" }
    }

    private static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    // MARK: Compression

    /// Compresses the file at `source` into a new file at `destination` as frames of `frameInputBytes`,
    /// hashing both sides on the way.
    static func compress(_ source: String, to destination: String, name: String) throws(StoreError) -> BackupManifest.File {
        let input = try openForReading(source)
        defer { close(input) }
        let output = try createExclusive(destination)
        defer { close(output) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: frameInputBytes, alignment: 16)
        defer { buffer.deallocate() }
        var dataHash = SHA256()
        var compressedHash = SHA256()
        var dataSize = 0
        var compressedSize = 0
        while true {
            let count = try readFully(input, into: buffer, path: source)
            if count == 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            dataHash.update(bufferPointer: chunk)
            for piece in frames(of: chunk) {
                let frame: [UInt8]
                do {
                    frame = try Zstd.compress(piece)
                } catch {
                    throw StoreError(.unavailable, "cannot compress '\(source)' into '\(destination)': \(error.message)")
                }
                compressedHash.update(data: frame)
                try writeAll(output, frame, path: destination)
                compressedSize += frame.count
            }
            dataSize += count
            if count < buffer.count { break }
        }
        try sync(output, path: destination)
        return BackupManifest.File(
            name: name, compressedSize: compressedSize, uncompressedSize: dataSize,
            compressedSHA256: hex(compressedHash.finalize()), uncompressedSHA256: hex(dataHash.finalize()))
    }

    /// The pieces of `chunk` to compress as one frame each: the chunk itself, or, when its size is a
    /// positive multiple of `zstdBlockBytes`, all but its last byte and that byte.
    ///
    /// `Zstd.decompress` wrongly reports a frame whose content is a multiple of
    /// `ZSTD_DStreamOutSize()` (128 KiB) as truncated: the call that ends the frame also fills its
    /// output chunk, and the next call's non-zero hint (for a next frame) is taken for an unfinished
    /// frame. Full chunks (`frameInputBytes`) never are such a multiple; only a file's last chunk can be.
    static func frames(of chunk: UnsafeRawBufferPointer) -> [UnsafeRawBufferPointer] {
        guard chunk.count > 0, chunk.count % zstdBlockBytes == 0 else { return [chunk] }
        return [UnsafeRawBufferPointer(rebasing: chunk[0..<(chunk.count - 1)]),
                UnsafeRawBufferPointer(rebasing: chunk[(chunk.count - 1)...])]
    }

    /// Checks the size and SHA-256 of a compressed file against the manifest, reading it once.
    static func verifyCompressed(_ file: BackupManifest.File, at path: String) throws(StoreError) {
        func damaged(_ what: String) -> StoreError {
            StoreError(.damaged, "'\(path)' \(what): the backup is damaged; use another backup")
        }
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { throw damaged("is missing") }
            throw StoreError(.unavailable, "cannot read '\(path)': \(systemError())")
        }
        guard Int(status.st_size) == file.compressedSize else {
            throw damaged("has \(status.st_size) bytes where manifest.json records \(file.compressedSize)")
        }
        let (total, digest) = try sha256(ofFile: path)
        guard total == file.compressedSize else {
            throw damaged("has \(total) bytes where manifest.json records \(file.compressedSize)")
        }
        guard digest == file.compressedSHA256 else {
            throw damaged("does not match its SHA-256 in manifest.json")
        }
    }

    /// The size and SHA-256 (lowercase hex) of the file at `path`, read in pieces.
    static func sha256(ofFile path: String) throws(StoreError) -> (size: Int, digest: String) {
        let input = try openForReading(path)
        defer { close(input) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBytes, alignment: 16)
        defer { buffer.deallocate() }
        var hash = SHA256()
        var total = 0
        while true {
            let count = try readFully(input, into: buffer, path: path)
            hash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += count
            if count < buffer.count { break }
        }
        return (total, hex(hash.finalize()))
    }

    /// Decompresses `source` frame by frame into a new file at `destination`, checking the data's
    /// size and SHA-256 against the manifest.
    static func decompress(_ file: BackupManifest.File, from source: String, to destination: String) throws(StoreError) {
        func damaged(_ what: String) -> StoreError {
            StoreError(.damaged, "'\(source)' is damaged (\(what)): the backup cannot be restored; use another backup")
        }
        let input = try openForReading(source)
        defer { close(input) }
        let output = try createExclusive(destination)
        defer { close(output) }
        let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBytes, alignment: 16)
        defer { readBuffer.deallocate() }
        var pending: [UInt8] = []
        var consumed = 0
        var endOfFile = false
        var hash = SHA256()
        var total = 0
        frames: while true {
            let scan = pending.withUnsafeBytes { frameLength(in: UnsafeRawBufferPointer(rebasing: $0[consumed...])) }
            switch scan {
            case .invalid(let reason):
                throw damaged(reason)
            case .complete(let length):
                guard length <= maximumFrameBytes else { throw damaged("a zstd frame of \(length) bytes is larger than tally writes") }
                let frameResult: Result<[UInt8], ZstdError> = pending.withUnsafeBytes { bytes in
                    Result { () throws(ZstdError) -> [UInt8] in
                        try Zstd.decompress(UnsafeRawBufferPointer(rebasing: bytes[consumed..<(consumed + length)]), maximumSize: frameInputBytes)
                    }
                }
                let data: [UInt8]
                switch frameResult {
                case .success(let bytes): data = bytes
                case .failure(let error): throw damaged(error.message)
                }
                total += data.count
                guard total <= file.uncompressedSize else {
                    throw damaged("it holds more than the \(file.uncompressedSize) bytes manifest.json records for \(file.name)")
                }
                hash.update(data: data)
                try writeAll(output, data, path: destination)
                consumed += length
                if consumed == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    consumed = 0
                }
            case .needMore:
                if pending.count - consumed > maximumFrameBytes {
                    throw damaged("a zstd frame is larger than tally writes")
                }
                if endOfFile {
                    if pending.count == consumed { break frames }
                    throw damaged("it ends inside a zstd frame")
                }
                if consumed > 0 {
                    pending.removeFirst(consumed)
                    consumed = 0
                }
                let count = try readFully(input, into: readBuffer, path: source)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
                if count < readBuffer.count { endOfFile = true }
            }
        }
        guard total == file.uncompressedSize else {
            throw damaged("it holds \(total) bytes of \(file.name) where manifest.json records \(file.uncompressedSize)")
        }
        guard hex(hash.finalize()) == file.uncompressedSHA256 else {
            throw damaged("the \(file.name) it holds does not match its SHA-256 in manifest.json")
        }
        try sync(output, path: destination)
    }

    /// Where a zstd frame ends (RFC 8878 §3.1.1), found by walking its header and block headers.
    enum FrameScan: Equatable {
        /// The frame is `length` bytes long and all there.
        case complete(length: Int)
        /// The bytes end before the frame does.
        case needMore
        /// The bytes do not start a zstd frame.
        case invalid(String)
    }

    static func frameLength(in bytes: UnsafeRawBufferPointer) -> FrameScan {
        guard bytes.count >= 5 else { return .needMore }
        let magic = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        guard magic == 0xFD2F_B528 else { return .invalid("no zstd frame starts where one should") }
        let descriptor = bytes[4]
        guard descriptor & 0x08 == 0 else { return .invalid("a zstd frame header sets a reserved bit") }
        let singleSegment = descriptor & 0x20 != 0
        let contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][Int(descriptor >> 6)]
        let dictionaryBytes = [0, 1, 2, 4][Int(descriptor & 0x03)]
        let hasChecksum = descriptor & 0x04 != 0
        var position = 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes
        while true {
            guard bytes.count >= position + 3 else { return .needMore }
            let header = Int(bytes[position]) | Int(bytes[position + 1]) << 8 | Int(bytes[position + 2]) << 16
            position += 3
            let size = header >> 3
            switch (header >> 1) & 0x03 {
            case 0, 2: position += size  // raw or compressed: `size` bytes follow
            case 1: position += 1  // RLE: one byte, repeated `size` times
            default: return .invalid("a zstd block has the reserved type")
            }
            if header & 1 != 0 { break }
            if position > maximumFrameBytes { return .invalid("a zstd frame is larger than tally writes") }
        }
        if hasChecksum { position += 4 }
        return bytes.count >= position ? .complete(length: position) : .needMore
    }

    // MARK: System calls

    static func openForReading(_ path: String) throws(StoreError) -> Int32 {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot open '\(path)': \(systemError()); check that it exists and its permissions")
        }
        return descriptor
    }

    static func createExclusive(_ path: String) throws(StoreError) -> Int32 {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot create '\(path)': \(systemError()); check the directory's permissions and free space")
        }
        return descriptor
    }

    /// Reads until `buffer` is full or the file ends; returns the bytes read.
    static func readFully(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, path: String) throws(StoreError) -> Int {
        var filled = 0
        while filled < buffer.count {
            let count = read(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
            if count > 0 {
                filled += count
            } else if count == 0 {
                break
            } else if errno != EINTR {
                throw StoreError(.unavailable, "cannot read '\(path)': \(systemError())")
            }
        }
        return filled
    }

    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String) throws(StoreError) {
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            var written = 0
            while written < buffer.count {
                let count = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if count >= 0 {
                    written += count
                } else if errno != EINTR {
                    failure = errno
                    return
                }
            }
        }
        if failure != 0 {
            let hint = failure == ENOSPC ? "free some space, or use another file system" : "check the file system"
            throw StoreError(.unavailable, "cannot write '\(path)': \(String(cString: strerror(failure))); \(hint)")
        }
    }

    static func sync(_ descriptor: Int32, path: String) throws(StoreError) {
        guard fsync(descriptor) == 0 else {
            throw StoreError(.unavailable, "cannot sync '\(path)' to disk: \(systemError())")
        }
    }

    /// Makes the entries of `directory` (new files, renames) durable.
    static func syncDirectory(_ directory: String) throws(StoreError) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot open the directory '\(directory)': \(systemError())")
        }
        defer { close(descriptor) }
        try sync(descriptor, path: directory)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in bytes {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
