import CLMDB

/// What every transaction can do: look up keys, walk with a cursor, count entries.
///
/// Write helpers that work in both kinds of transaction as generic functions:
///
/// ```swift
/// func balance(in transaction: borrowing some ReadableTransaction & ~Copyable) throws -> [UInt8]? {
///     try transaction.get(totals, key: customerKey)
/// }
/// ```
public protocol ReadableTransaction: ~Copyable {
    /// The value stored under `key`, or `nil` when there is none.
    ///
    /// The buffer points into the memory map: no copy is made, and it is valid only until the
    /// transaction ends (in a write transaction, until the next change to `database`). Does not allocate.
    /// In a ``DatabaseFlags/duplicateSort`` database, the first value of the key.
    func get(_ database: Database, key: UnsafeRawBufferPointer) throws(LMDBError) -> UnsafeRawBufferPointer?

    /// Runs `body` with a cursor over `database`, closed when `body` returns.
    func withCursor<T>(_ database: Database, _ body: (borrowing Cursor) throws -> T) throws -> T

    /// The statistics of `database` as this transaction sees it.
    func statistics(_ database: Database) throws(LMDBError) -> DatabaseStatistics
}

extension ReadableTransaction where Self: ~Copyable {
    /// A copy of the value stored under `key`, or `nil` when there is none.
    ///
    /// ```swift
    /// let value: [UInt8]? = try transaction.get(settings, key: Array("version".utf8))
    /// ```
    public func get(_ database: Database, key: [UInt8]) throws(LMDBError) -> [UInt8]? {
        let value = try withBytes(key) { (key) throws(LMDBError) in try get(database, key: key) }
        return value.map { Array($0) }
    }

    /// Copies of the entries whose keys start with `prefix`, in key order (or reverse key order).
    ///
    /// An empty `prefix` means all entries. Stops after `limit` entries. Assumes the default
    /// bytewise key order (not ``DatabaseFlags/reverseKey`` or ``DatabaseFlags/integerKey``).
    /// ```swift
    /// let lastTen = try transaction.entries(log, prefix: customer, reverse: true, limit: 10)
    /// ```
    public func entries(_ database: Database, prefix: [UInt8] = [], reverse: Bool = false, limit: Int = .max) throws -> [Entry] {
        guard limit > 0 else { return [] }
        var entries: [Entry] = []
        try withCursor(database) { cursor in
            try cursor.forEach(prefix: prefix, reverse: reverse) { key, value in
                entries.append(Entry(key: Array(key), value: Array(value)))
                return entries.count < limit
            }
        }
        return entries
    }
}

/// A read-only transaction: one consistent snapshot of the environment. Lent to the body of
/// ``Environment/read(_:)``; it cannot escape the body or be shared with another thread.
public struct ReadTransaction: ~Copyable, ReadableTransaction {
    /// The `MDB_txn *`.
    let pointer: OpaquePointer

    init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// The value stored under `key`, or `nil`; valid until the transaction ends. Does not allocate.
    public func get(_ database: Database, key: UnsafeRawBufferPointer) throws(LMDBError) -> UnsafeRawBufferPointer? {
        try lookUp(pointer, database, key)
    }

    /// Runs `body` with a cursor over `database`, closed when `body` returns.
    ///
    /// ```swift
    /// try transaction.withCursor(events) { cursor in
    ///     try cursor.forEach(prefix: customer) { key, value in …; return true }
    /// }
    /// ```
    public func withCursor<T>(_ database: Database, _ body: (borrowing Cursor) throws -> T) throws -> T {
        let cursor = try openCursor(pointer, database)
        defer { mdb_cursor_close(cursor) }
        return try body(Cursor(core: CursorCore(pointer: cursor)))
    }

    /// The statistics of `database` as of this snapshot.
    public func statistics(_ database: Database) throws(LMDBError) -> DatabaseStatistics {
        try databaseStatistics(pointer, database)
    }
}

@available(*, unavailable, message: "A transaction belongs to the thread running its body.")
extension ReadTransaction: Sendable {}

/// The result of a put: stored, or refused because the key (or key/value pair) already exists.
public enum PutResult: Hashable, Sendable {
    /// The value was written.
    case stored
    /// Nothing was written: the key exists (with ``WriteFlags/noOverwrite``), the key/value pair
    /// exists (with ``WriteFlags/noDuplicateData``), or the key is not past the last key (with
    /// ``WriteFlags/append``). With `noOverwrite` the old value is unchanged.
    case keyExists
}

/// How a put behaves.
public struct WriteFlags: OptionSet, Hashable, Sendable {
    /// The `mdb_put` flag bits.
    public let rawValue: UInt32

    /// Wraps raw `mdb_put` flag bits.
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// `MDB_NOOVERWRITE`: store only when the key is absent; otherwise ``PutResult/keyExists``.
    public static let noOverwrite = WriteFlags(rawValue: UInt32(MDB_NOOVERWRITE))
    /// `MDB_APPEND`: the key sorts after every key in the database; a fast bulk load. A key out of
    /// order gives ``PutResult/keyExists``.
    public static let append = WriteFlags(rawValue: UInt32(MDB_APPEND))
    /// `MDB_APPENDDUP`: like ``append`` for the values of one key in a ``DatabaseFlags/duplicateSort`` database.
    public static let appendDuplicate = WriteFlags(rawValue: UInt32(MDB_APPENDDUP))
    /// `MDB_NODUPDATA`: in a ``DatabaseFlags/duplicateSort`` database, store only when the key/value
    /// pair is absent; otherwise ``PutResult/keyExists``.
    public static let noDuplicateData = WriteFlags(rawValue: UInt32(MDB_NODUPDATA))
}

/// A read-write transaction, lent to the body of ``Environment/write(_:)``, which commits it.
///
/// It cannot escape the body or be shared with another thread. Every change is either committed
/// with all the others or discarded.
public struct WriteTransaction: ~Copyable, ReadableTransaction {
    /// The `MDB_txn *`.
    let pointer: OpaquePointer
    /// Set when a change hit `MDB_MAP_FULL`; `Environment.write` then grows the map and retries.
    let mapFull: UnsafeMutablePointer<Bool>

    init(pointer: OpaquePointer, mapFull: UnsafeMutablePointer<Bool>) {
        self.pointer = pointer
        self.mapFull = mapFull
    }

    /// The value stored under `key`, or `nil`; valid until the next change to `database` or the
    /// end of the transaction. Does not allocate.
    public func get(_ database: Database, key: UnsafeRawBufferPointer) throws(LMDBError) -> UnsafeRawBufferPointer? {
        try lookUp(pointer, database, key)
    }

    /// Runs `body` with a read-only cursor over `database`, closed when `body` returns.
    /// Use ``withWriteCursor(_:_:)`` to change entries through the cursor.
    public func withCursor<T>(_ database: Database, _ body: (borrowing Cursor) throws -> T) throws -> T {
        let cursor = try openCursor(pointer, database)
        defer { mdb_cursor_close(cursor) }
        return try body(Cursor(core: CursorCore(pointer: cursor)))
    }

    /// Runs `body` with a cursor over `database` that can also put and delete, closed when `body` returns.
    ///
    /// ```swift
    /// try transaction.withWriteCursor(log) { cursor in
    ///     while let entry = try cursor.first(), isExpired(entry.key) { try cursor.delete() }
    /// }
    /// ```
    public func withWriteCursor<T>(_ database: Database, _ body: (borrowing WriteCursor) throws -> T) throws -> T {
        let cursor = try openCursor(pointer, database)
        defer { mdb_cursor_close(cursor) }
        return try body(WriteCursor(core: CursorCore(pointer: cursor), mapFull: mapFull))
    }

    /// The statistics of `database`, including this transaction's changes.
    public func statistics(_ database: Database) throws(LMDBError) -> DatabaseStatistics {
        try databaseStatistics(pointer, database)
    }

    /// Stores `value` under `key`. Does not allocate.
    ///
    /// - Returns: ``PutResult/stored``, or ``PutResult/keyExists`` when a flag refused the write
    ///   (see ``WriteFlags``); `MDB_KEYEXIST` is never thrown.
    /// - Throws: ``LMDBError``, for example ``ResultCode/badValueSize`` for an empty or too long key.
    ///   A full map is handled by ``Environment/write(_:)``, which grows it and runs the body again.
    @discardableResult
    public func put(
        _ database: Database,
        key: UnsafeRawBufferPointer,
        value: UnsafeRawBufferPointer,
        flags: WriteFlags = []
    ) throws(LMDBError) -> PutResult {
        var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var dataValue = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let rc = mdb_put(pointer, database.handle, &keyValue, &dataValue, flags.rawValue)
        recordMapFull(rc, in: mapFull)
        return try checkStored(rc, "mdb_put")
    }

    /// Stores `value` under `key`; the `[UInt8]` form of the raw-buffer put.
    @discardableResult
    public func put(_ database: Database, key: [UInt8], value: [UInt8], flags: WriteFlags = []) throws(LMDBError) -> PutResult {
        try withBytes(key) { (key) throws(LMDBError) in
            try withBytes(value) { (value) throws(LMDBError) in
                try put(database, key: key, value: value, flags: flags)
            }
        }
    }

    /// Reserves `valueCount` bytes under `key` and lets `fill` write them in place (`MDB_RESERVE`):
    /// no intermediate buffer, no copy. Does not allocate.
    ///
    /// `fill` must write every byte; it is not called when the result is ``PutResult/keyExists``.
    /// Not allowed in a ``DatabaseFlags/duplicateSort`` database.
    /// ```swift
    /// try transaction.put(totals, key: key, valueCount: 16) { bytes in
    ///     bytes.storeBytes(of: count.bigEndian, toByteOffset: 0, as: UInt64.self)
    ///     bytes.storeBytes(of: sum.bigEndian, toByteOffset: 8, as: UInt64.self)
    /// }
    /// ```
    @discardableResult
    public func put(
        _ database: Database,
        key: UnsafeRawBufferPointer,
        valueCount: Int,
        flags: WriteFlags = [],
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(LMDBError) -> PutResult {
        var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var dataValue = MDB_val(mv_size: valueCount, mv_data: nil)
        let rc = mdb_put(pointer, database.handle, &keyValue, &dataValue, flags.rawValue | UInt32(MDB_RESERVE))
        recordMapFull(rc, in: mapFull)
        let result = try checkStored(rc, "mdb_put")
        if result == .stored {
            fill(UnsafeMutableRawBufferPointer(start: dataValue.mv_data, count: valueCount))
        }
        return result
    }

    /// Deletes `key` and all its values. Does not allocate.
    /// - Returns: `true` when the key existed, `false` when it did not (`MDB_NOTFOUND` is never thrown).
    @discardableResult
    public func delete(_ database: Database, key: UnsafeRawBufferPointer) throws(LMDBError) -> Bool {
        var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        let rc = mdb_del(pointer, database.handle, &keyValue, nil)
        recordMapFull(rc, in: mapFull)
        return try checkFound(rc, "mdb_del")
    }

    /// Deletes one key/value pair of a ``DatabaseFlags/duplicateSort`` database (in a plain database,
    /// the key when its value equals `value`).
    /// - Returns: `true` when the pair existed.
    @discardableResult
    public func delete(_ database: Database, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(LMDBError) -> Bool {
        var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var dataValue = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let rc = mdb_del(pointer, database.handle, &keyValue, &dataValue)
        recordMapFull(rc, in: mapFull)
        return try checkFound(rc, "mdb_del")
    }

    /// Deletes `key` and all its values.
    /// - Returns: `true` when the key existed.
    @discardableResult
    public func delete(_ database: Database, key: [UInt8]) throws(LMDBError) -> Bool {
        try withBytes(key) { (key) throws(LMDBError) in try delete(database, key: key) }
    }

    /// Deletes one key/value pair of a ``DatabaseFlags/duplicateSort`` database.
    /// - Returns: `true` when the pair existed.
    @discardableResult
    public func delete(_ database: Database, key: [UInt8], value: [UInt8]) throws(LMDBError) -> Bool {
        try withBytes(key) { (key) throws(LMDBError) in
            try withBytes(value) { (value) throws(LMDBError) in try delete(database, key: key, value: value) }
        }
    }

    /// Deletes every entry of `database` and keeps the database itself (`mdb_drop` with `0`).
    public func deleteAll(_ database: Database) throws(LMDBError) {
        let rc = mdb_drop(pointer, database.handle, 0)
        recordMapFull(rc, in: mapFull)
        try check(rc, "mdb_drop")
    }
}

@available(*, unavailable, message: "A transaction belongs to the thread running its body.")
extension WriteTransaction: Sendable {}

// MARK: - Shared implementation

@inline(__always)
func lookUp(_ transaction: OpaquePointer, _ database: Database, _ key: UnsafeRawBufferPointer) throws(LMDBError) -> UnsafeRawBufferPointer? {
    var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
    var dataValue = MDB_val()
    guard try checkFound(mdb_get(transaction, database.handle, &keyValue, &dataValue), "mdb_get") else {
        return nil
    }
    return UnsafeRawBufferPointer(start: dataValue.mv_data, count: dataValue.mv_size)
}

func openCursor(_ transaction: OpaquePointer, _ database: Database) throws(LMDBError) -> OpaquePointer {
    var cursor: OpaquePointer?
    try check(mdb_cursor_open(transaction, database.handle, &cursor), "mdb_cursor_open")
    guard let cursor else {
        throw LMDBError(code: .invalidArgument, operation: "mdb_cursor_open", message: "LMDB returned no cursor.")
    }
    return cursor
}

func databaseStatistics(_ transaction: OpaquePointer, _ database: Database) throws(LMDBError) -> DatabaseStatistics {
    var stat = MDB_stat()
    try check(mdb_stat(transaction, database.handle, &stat), "mdb_stat")
    return DatabaseStatistics(stat)
}

/// `Array.withUnsafeBytes` with a typed error.
@inline(__always)
func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(LMDBError) -> R) throws(LMDBError) -> R {
    // Array.withUnsafeBytes only rethrows untyped errors; carry the typed one out by hand.
    let result: Result<R, LMDBError> = bytes.withUnsafeBytes { buffer in
        do throws(LMDBError) {
            return .success(try body(buffer))
        } catch {
            return .failure(error)
        }
    }
    return try result.get()
}
