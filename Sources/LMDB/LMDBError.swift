import CLMDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An LMDB call failed.
///
/// Carries the stable ``code``, the C function that failed (``operation``) and a ``message`` that
/// says what went wrong and what to do. `MDB_NOTFOUND` and `MDB_KEYEXIST` are never thrown by
/// lookups and puts: they come back as `nil`, `false` or ``PutResult/keyExists``.
///
/// ```swift
/// catch let error as LMDBError {
///     logger.error("\(error)")   // "mdb_txn_commit failed with ENOSPC (28): No space left on device. …"
/// }
/// ```
public struct LMDBError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The LMDB or `errno` code.
    public var code: ResultCode
    /// The C function that failed, such as `"mdb_put"` or `"mdb_env_open"`.
    public var operation: String
    /// LMDB's description of the code, followed by a hint of what to do.
    public var message: String

    /// Creates an error. With `message` `nil`, the message is LMDB's text for `code` plus a hint.
    public init(code: ResultCode, operation: String, message: String? = nil) {
        self.code = code
        self.operation = operation
        self.message = message ?? LMDBError.standardMessage(for: code)
    }

    /// `"<operation> failed with <code>: <message>"`.
    public var description: String {
        "\(operation) failed with \(code): \(message)"
    }

    /// Builds the error for a failed C call. Kept out of line: only the failure path pays for it.
    @inline(never)
    init(_ rc: Int32, _ operation: StaticString, context: String? = nil) {
        let code = ResultCode(rawValue: rc)
        let text = LMDBError.standardMessage(for: code)
        self.init(
            code: code,
            operation: operation.description,
            message: context.map { "\($0): \(text)" } ?? text
        )
    }

    /// LMDB's own text for a code (`mdb_strerror`, which also covers `errno`), plus a hint.
    static func standardMessage(for code: ResultCode) -> String {
        let text = String(cString: mdb_strerror(code.rawValue))
        guard let hint = hint(for: code) else { return text }
        return "\(text). \(hint)"
    }

    private static func hint(for code: ResultCode) -> String? {
        switch code {
        case .mapFull:
            "The memory map is full. Environment.write grows it automatically, so this means growth "
                + "reached Options.maxMapSize or the map could not grow: raise mapSize or maxMapSize."
        case .diskFull:
            "The disk is full: nothing of this transaction was written. Free disk space, then retry."
        case .permissionDenied:
            "Check the owner and mode of the environment directory and its data.mdb and lock.mdb, "
                + "and that the environment is not opened read-only for a write."
        case .readersFull:
            "Every reader slot is in use: raise Options.maxReaders, keep read transactions short, or "
                + "call Environment.clearStaleReaders() to free slots left by crashed processes."
        case .dbsFull:
            "Too many named databases: raise Options.maxDatabases."
        case .transactionFull:
            "One transaction changed too many pages: split the work into smaller transactions."
        case .badValueSize:
            "The key is empty or longer than Environment.maxKeySize, or a duplicate-sorted value "
                + "is too long."
        case .notADirectory:
            "The environment path must be a directory; LMDB keeps data.mdb and lock.mdb inside it."
        case .noSuchFile:
            "The environment directory or its data file does not exist: create it, or set "
                + "Options.createDirectory (not possible for a read-only environment)."
        case .invalid:
            "The directory holds a file that is not an LMDB environment."
        case .versionMismatch:
            "The environment was written by an incompatible LMDB version."
        case .incompatible:
            "The operation does not fit the database's flags: open it with the flags it was created with."
        case .panic:
            "LMDB hit a fatal error: close and reopen the environment."
        case .corrupted, .pageNotFound:
            "The data file is damaged: restore it from a backup."
        case .badTransaction:
            "An earlier operation in this transaction failed; the transaction can only be aborted."
        default:
            nil
        }
    }
}

// MARK: - The chokepoint

// Every LMDB call in this module hands its result code to one of these functions, the way every
// system call in swift-nio goes through one helper. Success costs one comparison; the error value is
// built out of line. `MDB_NOTFOUND` and `MDB_KEYEXIST` become values here and nowhere else.

/// Throws unless `rc` is `MDB_SUCCESS`.
@inline(__always)
func check(_ rc: Int32, _ operation: StaticString) throws(LMDBError) {
    if rc != MDB_SUCCESS {
        throw LMDBError(rc, operation)
    }
}

/// `true` on success, `false` on `MDB_NOTFOUND`; throws otherwise.
@inline(__always)
func checkFound(_ rc: Int32, _ operation: StaticString) throws(LMDBError) -> Bool {
    if rc == MDB_SUCCESS { return true }
    if rc == MDB_NOTFOUND { return false }
    throw LMDBError(rc, operation)
}

/// `.stored` on success, `.keyExists` on `MDB_KEYEXIST`; throws otherwise.
@inline(__always)
func checkStored(_ rc: Int32, _ operation: StaticString) throws(LMDBError) -> PutResult {
    if rc == MDB_SUCCESS { return .stored }
    if rc == MDB_KEYEXIST { return .keyExists }
    throw LMDBError(rc, operation)
}

/// The variant for calls that change data inside a write transaction: it first records
/// `MDB_MAP_FULL` in the transaction's flag, so `Environment.write` grows the map and runs the body
/// again even when the body catches the thrown error.
@inline(__always)
func recordMapFull(_ rc: Int32, in flag: UnsafeMutablePointer<Bool>) {
    if rc == MDB_MAP_FULL {
        flag.pointee = true
    }
}
