import Crypto
import Foundation
import LMDB
import Metering
import Zstd

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
        try replace(final, through: temporary, durable: true) { (descriptor) throws(StoreError) in
            try writeAll(descriptor, bytes, path: temporary)
        }
    }

    /// Replaces `final` all or nothing with what `body` writes into `temporary` (created new), which
    /// is then renamed over `final`; with `durable`, the file and then the directory are synced
    /// too. On failure `temporary` is removed and `final` is untouched.
    static func replace(_ final: String, through temporary: String, durable: Bool,
                        _ body: (Int32) throws(StoreError) -> Void) throws(StoreError) {
        let descriptor = try createExclusive(temporary)
        do {
            try body(descriptor)
            if durable { try sync(descriptor, path: temporary) }
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
        if durable { try syncDirectory((final as NSString).deletingLastPathComponent) }
    }


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

    /// Reads `descriptor` to its end, discarding what it yields (errors end it too).
    static func drain(_ descriptor: Int32) {
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = scratch.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count > 0 || (count < 0 && errno == EINTR) { continue }
            return
        }
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
