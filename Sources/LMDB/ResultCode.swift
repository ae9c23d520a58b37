import CLMDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A result code from LMDB: one of LMDB's own codes, or an `errno` value from the operating system
/// passed through unchanged (`ENOSPC`, `EACCES`, …).
///
/// An open set of constants rather than an enum, so a code added by a later LMDB never breaks a
/// caller's `switch`:
///
/// ```swift
/// do {
///     try environment.write { transaction in … }
/// } catch let error as LMDBError where error.code == .diskFull {
///     // answer "unavailable" and retry later
/// }
/// ```
public struct ResultCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The C value: `0`, an `MDB_*` code (negative), or an `errno` value (positive).
    public let rawValue: Int32

    /// Wraps a raw LMDB or `errno` value.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// `MDB_SUCCESS`: the operation succeeded.
    public static let success = ResultCode(rawValue: MDB_SUCCESS)
    /// `MDB_KEYEXIST`: the key (or key/value pair) is already present. Returned as a value, never thrown.
    public static let keyExists = ResultCode(rawValue: MDB_KEYEXIST)
    /// `MDB_NOTFOUND`: no matching key or data. Returned as `nil`/`false`, never thrown by lookups.
    public static let notFound = ResultCode(rawValue: MDB_NOTFOUND)
    /// `MDB_PAGE_NOTFOUND`: a requested page was not found; usually corruption.
    public static let pageNotFound = ResultCode(rawValue: MDB_PAGE_NOTFOUND)
    /// `MDB_CORRUPTED`: a page has an invalid type; the file is corrupted.
    public static let corrupted = ResultCode(rawValue: MDB_CORRUPTED)
    /// `MDB_PANIC`: a fatal error earlier in this environment; it must be reopened.
    public static let panic = ResultCode(rawValue: MDB_PANIC)
    /// `MDB_VERSION_MISMATCH`: the environment was written by an incompatible LMDB version.
    public static let versionMismatch = ResultCode(rawValue: MDB_VERSION_MISMATCH)
    /// `MDB_INVALID`: the file is not an LMDB data file.
    public static let invalid = ResultCode(rawValue: MDB_INVALID)
    /// `MDB_MAP_FULL`: the memory map is full. `Environment.write` grows the map and retries.
    public static let mapFull = ResultCode(rawValue: MDB_MAP_FULL)
    /// `MDB_DBS_FULL`: more named databases than `Environment.Options.maxDatabases`.
    public static let dbsFull = ResultCode(rawValue: MDB_DBS_FULL)
    /// `MDB_READERS_FULL`: every reader slot is taken (`Environment.Options.maxReaders`).
    public static let readersFull = ResultCode(rawValue: MDB_READERS_FULL)
    /// `MDB_TLS_FULL`: too many thread-local keys in use.
    public static let tlsFull = ResultCode(rawValue: MDB_TLS_FULL)
    /// `MDB_TXN_FULL`: one transaction touched too many pages; split the work.
    public static let transactionFull = ResultCode(rawValue: MDB_TXN_FULL)
    /// `MDB_CURSOR_FULL`: the cursor stack is too deep (internal error).
    public static let cursorFull = ResultCode(rawValue: MDB_CURSOR_FULL)
    /// `MDB_PAGE_FULL`: a page has no more space (internal error).
    public static let pageFull = ResultCode(rawValue: MDB_PAGE_FULL)
    /// `MDB_MAP_RESIZED`: another process grew the map. `Environment` adopts the new size and retries.
    public static let mapResized = ResultCode(rawValue: MDB_MAP_RESIZED)
    /// `MDB_INCOMPATIBLE`: the operation does not fit the database's flags (for example reopening a
    /// database with different flags, or a duplicate-only cursor move on a plain database).
    public static let incompatible = ResultCode(rawValue: MDB_INCOMPATIBLE)
    /// `MDB_BAD_RSLOT`: invalid reuse of a reader slot.
    public static let badReaderSlot = ResultCode(rawValue: MDB_BAD_RSLOT)
    /// `MDB_BAD_TXN`: the transaction must abort: it has a child or an earlier operation failed.
    public static let badTransaction = ResultCode(rawValue: MDB_BAD_TXN)
    /// `MDB_BAD_VALSIZE`: an empty key, a key longer than `Environment.maxKeySize`, or a
    /// duplicate-sorted value that is too long.
    public static let badValueSize = ResultCode(rawValue: MDB_BAD_VALSIZE)
    /// `MDB_BAD_DBI`: the database handle changed or was closed.
    public static let badDatabase = ResultCode(rawValue: MDB_BAD_DBI)

    /// `ENOSPC`: no space left on the device. Nothing of the failed transaction was written.
    public static let diskFull = ResultCode(rawValue: ENOSPC)
    /// `EIO`: an I/O error from the operating system. A failed write on a full file system can come
    /// back as this; ``Environment/write(_:)`` reports it as ``diskFull`` when the disk is full.
    public static let ioError = ResultCode(rawValue: EIO)
    /// `EACCES`: permission denied, or a write transaction in a read-only environment.
    public static let permissionDenied = ResultCode(rawValue: EACCES)
    /// `ENOENT`: the environment directory or a file in it does not exist.
    public static let noSuchFile = ResultCode(rawValue: ENOENT)
    /// `ENOTDIR`: the environment path is not a directory.
    public static let notADirectory = ResultCode(rawValue: ENOTDIR)
    /// `EINVAL`: an invalid argument, for example an option out of range or an unpositioned cursor.
    public static let invalidArgument = ResultCode(rawValue: EINVAL)

    /// `true` for LMDB's own codes (`MDB_KEYEXIST` … `MDB_BAD_DBI`), `false` for `errno` values.
    public var isLMDBCode: Bool {
        rawValue >= MDB_KEYEXIST && rawValue <= MDB_LAST_ERRCODE
    }

    /// The C name of the code, such as `"MDB_MAP_FULL"` or `"ENOSPC"`; `"errno 71"` when unknown.
    public var name: String {
        switch rawValue {
        case MDB_SUCCESS: "MDB_SUCCESS"
        case MDB_KEYEXIST: "MDB_KEYEXIST"
        case MDB_NOTFOUND: "MDB_NOTFOUND"
        case MDB_PAGE_NOTFOUND: "MDB_PAGE_NOTFOUND"
        case MDB_CORRUPTED: "MDB_CORRUPTED"
        case MDB_PANIC: "MDB_PANIC"
        case MDB_VERSION_MISMATCH: "MDB_VERSION_MISMATCH"
        case MDB_INVALID: "MDB_INVALID"
        case MDB_MAP_FULL: "MDB_MAP_FULL"
        case MDB_DBS_FULL: "MDB_DBS_FULL"
        case MDB_READERS_FULL: "MDB_READERS_FULL"
        case MDB_TLS_FULL: "MDB_TLS_FULL"
        case MDB_TXN_FULL: "MDB_TXN_FULL"
        case MDB_CURSOR_FULL: "MDB_CURSOR_FULL"
        case MDB_PAGE_FULL: "MDB_PAGE_FULL"
        case MDB_MAP_RESIZED: "MDB_MAP_RESIZED"
        case MDB_INCOMPATIBLE: "MDB_INCOMPATIBLE"
        case MDB_BAD_RSLOT: "MDB_BAD_RSLOT"
        case MDB_BAD_TXN: "MDB_BAD_TXN"
        case MDB_BAD_VALSIZE: "MDB_BAD_VALSIZE"
        case MDB_BAD_DBI: "MDB_BAD_DBI"
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case EIO: "EIO"
        case EAGAIN: "EAGAIN"
        case ENOMEM: "ENOMEM"
        case EACCES: "EACCES"
        case EBUSY: "EBUSY"
        case EEXIST: "EEXIST"
        case ENOTDIR: "ENOTDIR"
        case EISDIR: "EISDIR"
        case EINVAL: "EINVAL"
        case ENOSPC: "ENOSPC"
        case EROFS: "EROFS"
        case EDQUOT: "EDQUOT"
        default: "errno \(rawValue)"
        }
    }

    /// The name and the raw value, such as `"MDB_MAP_FULL (-30792)"`.
    public var description: String {
        "\(name) (\(rawValue))"
    }
}
