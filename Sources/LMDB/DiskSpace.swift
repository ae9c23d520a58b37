#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How much room the file system holding a path has (`statvfs`): what tells a full disk from a
/// broken one when a write fails with `EIO`.
///
/// ```swift
/// if let space = DiskSpace.of(path: "/var/lib/tally"), space.isNearlyFull { … }
/// ```
public struct DiskSpace: Sendable, Hashable {
    /// Bytes this process may still write: the blocks free to unprivileged users, or every free
    /// block for root (which may use the file system's reserved blocks).
    public var availableBytes: UInt64
    /// The file system's size in bytes.
    public var totalBytes: UInt64

    /// Creates a reading (tests inject one to classify errors without a full disk).
    public init(availableBytes: UInt64, totalBytes: UInt64) {
        self.availableBytes = availableBytes
        self.totalBytes = totalBytes
    }

    /// Below this many free bytes a file system counts as full, however large it is: LMDB needs
    /// room for a transaction's pages and the meta page.
    public static let minimumFreeBytes: UInt64 = 8 << 20

    /// Whether the file system is full or nearly so: less than ``minimumFreeBytes`` or less than
    /// 0.5 % of its size free.
    public var isNearlyFull: Bool {
        availableBytes < max(Self.minimumFreeBytes, totalBytes / 200)
    }

    /// The space of the file system holding `path`; nil when `statvfs` fails.
    public static func of(path: String) -> DiskSpace? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let blockSize = UInt64(info.f_frsize == 0 ? info.f_bsize : info.f_frsize)
        let freeBlocks = geteuid() == 0 ? UInt64(info.f_bfree) : UInt64(info.f_bavail)
        return DiskSpace(availableBytes: freeBlocks &* blockSize, totalBytes: UInt64(info.f_blocks) &* blockSize)
    }
}

extension LMDBError {
    /// `error` as "the disk is full" when it is a write failure that a full disk explains:
    /// `ENOSPC`, or `EIO` (which LMDB reports for a failed `write`/`fsync` on a full file system)
    /// while the file system holding `path` is (nearly) full by `space`. Any other error, or `EIO`
    /// with room on the disk (a real I/O error), is returned unchanged.
    ///
    /// The result has ``ResultCode/diskFull`` as its code, the same ``operation``, and a message
    /// that names the path and what to do.
    public static func classifyingDiskFull(_ error: LMDBError, path: String, space: DiskSpace?) -> LMDBError {
        let reported = error.code
        guard reported == .diskFull || reported == .ioError else { return error }
        if reported == .ioError {
            guard let space, space.isNearlyFull else { return error }
        }
        var message = "the disk is full"
        if let space { message += " (\(space.availableBytes) of \(space.totalBytes) bytes free)" }
        if reported == .ioError { message += "; LMDB reported \(reported)" }
        message += ": nothing of this transaction was written. Free space on \(path) and retry"
        return LMDBError(code: .diskFull, operation: error.operation, message: message)
    }

    /// Whether this error says the disk is full (``ResultCode/diskFull``).
    public var isDiskFull: Bool { code == .diskFull }
}
