import Foundation
public import Metering


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

extension BackupManifest {
    /// Reads the bytes of a backup's `manifest.json` and checks them, as ``TallyStore/restore(from:to:)``
    /// does once it has read the file (also the entry point of the `FuzzBackupManifest` fuzz target).
    /// `directory` only names the backup in messages.
    ///
    /// ```swift
    /// let manifest = try BackupManifest.decode(Array(data), shownAs: "/backups/2026-11-22")
    /// ```
    ///
    /// - Throws: `StoreError` `.damaged` when the bytes are not a valid manifest (not JSON, a
    ///   missing or mistyped field, a wrong file list, a negative size, a malformed checksum), and
    ///   `.incompatible` for a backup or store format this tally does not read.
    public static func decode(_ bytes: [UInt8], shownAs directory: String) throws(StoreError) -> BackupManifest {
        try BackupFiles.decodeManifest(bytes, shownAs: directory)
    }
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
