import CLMDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A position in one database, lent to the body of `withCursor`; closed when the body returns.
///
/// Every move returns the entry it lands on, or `nil` when there is none (`MDB_NOTFOUND` is never
/// thrown). The returned buffers point into the memory map and are valid until the transaction
/// ends; copy what you keep.
///
/// ```swift
/// try transaction.withCursor(events) { cursor in
///     var entry = try cursor.seek(atLeast: [0x10])
///     while let (key, value) = entry {
///         …
///         entry = try cursor.next()
///     }
/// }
/// ```
public struct Cursor: ~Copyable {
    let core: CursorCore

    /// Moves to the first entry.
    public func first() throws(LMDBError) -> RawEntry? { try core.move(MDB_FIRST) }
    /// Moves to the last entry.
    public func last() throws(LMDBError) -> RawEntry? { try core.move(MDB_LAST) }
    /// Moves to the next entry (the next value of the same key first, in a duplicate-sorted
    /// database); from an unpositioned cursor, to the first entry.
    public func next() throws(LMDBError) -> RawEntry? { try core.move(MDB_NEXT) }
    /// Moves to the previous entry; from an unpositioned cursor, to the last entry.
    public func previous() throws(LMDBError) -> RawEntry? { try core.move(MDB_PREV) }
    /// The entry at the cursor. Throws ``ResultCode/invalidArgument`` when the cursor is not positioned.
    public func current() throws(LMDBError) -> RawEntry? { try core.move(MDB_GET_CURRENT) }
    /// Moves to the first entry whose key is at least `key` (in the database's key order).
    public func seek(atLeast key: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? { try core.seek(key, MDB_SET_RANGE) }
    /// Moves to the first entry whose key is at least `key`.
    public func seek(atLeast key: [UInt8]) throws(LMDBError) -> RawEntry? { try core.seek(key, MDB_SET_RANGE) }
    /// Moves to the entry with exactly `key` (its first value in a duplicate-sorted database).
    public func seek(exactly key: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? { try core.seek(key, MDB_SET_KEY) }
    /// Moves to the entry with exactly `key`.
    public func seek(exactly key: [UInt8]) throws(LMDBError) -> RawEntry? { try core.seek(key, MDB_SET_KEY) }

    /// Duplicate-sorted databases: moves to the next value of the current key.
    public func nextDuplicate() throws(LMDBError) -> RawEntry? { try core.move(MDB_NEXT_DUP) }
    /// Duplicate-sorted databases: moves to the previous value of the current key.
    public func previousDuplicate() throws(LMDBError) -> RawEntry? { try core.move(MDB_PREV_DUP) }
    /// Duplicate-sorted databases: moves to the first value of the current key.
    public func firstDuplicate() throws(LMDBError) -> RawEntry? { try core.moveThenReadCurrent(MDB_FIRST_DUP) }
    /// Duplicate-sorted databases: moves to the last value of the current key.
    public func lastDuplicate() throws(LMDBError) -> RawEntry? { try core.moveThenReadCurrent(MDB_LAST_DUP) }
    /// Moves to the first value of the next key, skipping the current key's other values.
    public func nextKey() throws(LMDBError) -> RawEntry? { try core.move(MDB_NEXT_NODUP) }
    /// Moves to the last value of the previous key.
    public func previousKey() throws(LMDBError) -> RawEntry? { try core.move(MDB_PREV_NODUP) }
    /// Duplicate-sorted databases: moves to exactly the pair `key`/`value`.
    public func seek(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? {
        try core.seek(key, value, MDB_GET_BOTH)
    }
    /// Duplicate-sorted databases: moves to the first value of `key` that is at least `value`.
    public func seek(key: UnsafeRawBufferPointer, atLeastValue value: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? {
        try core.seek(key, value, MDB_GET_BOTH_RANGE)
    }
    /// Duplicate-sorted databases: the number of values of the current key.
    public func duplicateCount() throws(LMDBError) -> Int { try core.duplicateCount() }

    /// Calls `body` with each entry from `key` on (from the first entry when `key` is `nil`), in
    /// key order; with `reverse`, from the last entry whose key is at most `key`, backwards.
    /// `body` returns `true` to go on, `false` to stop.
    ///
    /// ```swift
    /// try cursor.forEach(startingAt: [0x20]) { key, value in key.first! < 0x30 }
    /// ```
    public func forEach(
        startingAt key: UnsafeRawBufferPointer? = nil,
        reverse: Bool = false,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try core.forEach(startingAt: key, reverse: reverse, body)
    }

    /// The raw-buffer `forEach(startingAt:reverse:_:)` with a `[UInt8]` start key.
    public func forEach(
        startingAt key: [UInt8],
        reverse: Bool = false,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try key.withUnsafeBytes { key in try core.forEach(startingAt: key, reverse: reverse, body) }
    }

    /// Calls `body` with each entry whose key starts with `prefix`, in key order (or reverse key
    /// order). An empty prefix means every entry. `body` returns `true` to go on, `false` to stop.
    /// Assumes the default bytewise key order.
    ///
    /// ```swift
    /// try cursor.forEach(prefix: customerPrefix) { key, value in total += decode(value); return true }
    /// ```
    public func forEach(
        prefix: UnsafeRawBufferPointer,
        reverse: Bool = false,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try core.forEach(prefix: prefix, reverse: reverse, body)
    }

    /// The raw-buffer `forEach(prefix:reverse:_:)` with a `[UInt8]` prefix.
    public func forEach(
        prefix: [UInt8],
        reverse: Bool = false,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try prefix.withUnsafeBytes { prefix in try core.forEach(prefix: prefix, reverse: reverse, body) }
    }
}

@available(*, unavailable, message: "A cursor belongs to its transaction's thread.")
extension Cursor: Sendable {}

/// A ``Cursor`` of a write transaction that can also put and delete, lent to the body of
/// ``WriteTransaction/withWriteCursor(_:_:)``.
///
/// Moves work as on ``Cursor``. A change may invalidate buffers returned before it.
public struct WriteCursor: ~Copyable {
    let core: CursorCore
    /// The transaction's map-full flag (see `Environment.write`).
    let mapFull: UnsafeMutablePointer<Bool>

    /// Stores `value` under `key` and moves the cursor to it.
    /// - Returns: ``PutResult/stored``, or ``PutResult/keyExists`` when a flag refused the write.
    @discardableResult
    public func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: WriteFlags = []) throws(LMDBError) -> PutResult {
        var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var dataValue = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let rc = mdb_cursor_put(core.pointer, &keyValue, &dataValue, flags.rawValue)
        recordMapFull(rc, in: mapFull)
        return try checkStored(rc, "mdb_cursor_put")
    }

    /// Stores `value` under `key` and moves the cursor to it.
    @discardableResult
    public func put(key: [UInt8], value: [UInt8], flags: WriteFlags = []) throws(LMDBError) -> PutResult {
        try withBytes(key) { (key) throws(LMDBError) in
            try withBytes(value) { (value) throws(LMDBError) in try put(key: key, value: value, flags: flags) }
        }
    }

    /// Deletes the entry at the cursor; the next ``next()`` returns the entry after it.
    /// - Parameter allDuplicates: In a duplicate-sorted database, deletes every value of the current key.
    /// - Throws: ``ResultCode/invalidArgument`` when the cursor is not positioned.
    public func delete(allDuplicates: Bool = false) throws(LMDBError) {
        let rc = mdb_cursor_del(core.pointer, allDuplicates ? UInt32(MDB_NODUPDATA) : 0)
        recordMapFull(rc, in: mapFull)
        try check(rc, "mdb_cursor_del")
    }

    /// Moves to the first entry.
    public func first() throws(LMDBError) -> RawEntry? { try core.move(MDB_FIRST) }
    /// Moves to the last entry.
    public func last() throws(LMDBError) -> RawEntry? { try core.move(MDB_LAST) }
    /// Moves to the next entry; from an unpositioned cursor, to the first entry.
    public func next() throws(LMDBError) -> RawEntry? { try core.move(MDB_NEXT) }
    /// Moves to the previous entry; from an unpositioned cursor, to the last entry.
    public func previous() throws(LMDBError) -> RawEntry? { try core.move(MDB_PREV) }
    /// The entry at the cursor. Throws ``ResultCode/invalidArgument`` when the cursor is not positioned.
    public func current() throws(LMDBError) -> RawEntry? { try core.move(MDB_GET_CURRENT) }
    /// Moves to the first entry whose key is at least `key`.
    public func seek(atLeast key: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? { try core.seek(key, MDB_SET_RANGE) }
    /// Moves to the first entry whose key is at least `key`.
    public func seek(atLeast key: [UInt8]) throws(LMDBError) -> RawEntry? { try core.seek(key, MDB_SET_RANGE) }
    /// Moves to the entry with exactly `key`.
    public func seek(exactly key: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? { try core.seek(key, MDB_SET_KEY) }
    /// Moves to the entry with exactly `key`.
    public func seek(exactly key: [UInt8]) throws(LMDBError) -> RawEntry? { try core.seek(key, MDB_SET_KEY) }
    /// Duplicate-sorted databases: moves to the next value of the current key.
    public func nextDuplicate() throws(LMDBError) -> RawEntry? { try core.move(MDB_NEXT_DUP) }
    /// Duplicate-sorted databases: moves to the previous value of the current key.
    public func previousDuplicate() throws(LMDBError) -> RawEntry? { try core.move(MDB_PREV_DUP) }
    /// Duplicate-sorted databases: moves to the first value of the current key.
    public func firstDuplicate() throws(LMDBError) -> RawEntry? { try core.moveThenReadCurrent(MDB_FIRST_DUP) }
    /// Duplicate-sorted databases: moves to the last value of the current key.
    public func lastDuplicate() throws(LMDBError) -> RawEntry? { try core.moveThenReadCurrent(MDB_LAST_DUP) }
    /// Moves to the first value of the next key.
    public func nextKey() throws(LMDBError) -> RawEntry? { try core.move(MDB_NEXT_NODUP) }
    /// Moves to the last value of the previous key.
    public func previousKey() throws(LMDBError) -> RawEntry? { try core.move(MDB_PREV_NODUP) }
    /// Duplicate-sorted databases: moves to exactly the pair `key`/`value`.
    public func seek(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? {
        try core.seek(key, value, MDB_GET_BOTH)
    }
    /// Duplicate-sorted databases: moves to the first value of `key` that is at least `value`.
    public func seek(key: UnsafeRawBufferPointer, atLeastValue value: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? {
        try core.seek(key, value, MDB_GET_BOTH_RANGE)
    }
    /// Duplicate-sorted databases: the number of values of the current key.
    public func duplicateCount() throws(LMDBError) -> Int { try core.duplicateCount() }

    /// As `Cursor.forEach(startingAt:reverse:_:)`. `body` may
    /// ``delete(allDuplicates:)`` the entry it is given.
    public func forEach(
        startingAt key: UnsafeRawBufferPointer? = nil,
        reverse: Bool = false,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try core.forEach(startingAt: key, reverse: reverse, body)
    }

    /// As `Cursor.forEach(startingAt:reverse:_:)`, with a `[UInt8]` start key.
    public func forEach(
        startingAt key: [UInt8],
        reverse: Bool = false,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try key.withUnsafeBytes { key in try core.forEach(startingAt: key, reverse: reverse, body) }
    }

    /// As `Cursor.forEach(prefix:reverse:_:)`. `body` may
    /// ``delete(allDuplicates:)`` the entry it is given.
    public func forEach(
        prefix: UnsafeRawBufferPointer,
        reverse: Bool = false,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try core.forEach(prefix: prefix, reverse: reverse, body)
    }

    /// As `Cursor.forEach(prefix:reverse:_:)`, with a `[UInt8]` prefix.
    public func forEach(
        prefix: [UInt8],
        reverse: Bool = false,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try prefix.withUnsafeBytes { prefix in try core.forEach(prefix: prefix, reverse: reverse, body) }
    }
}

@available(*, unavailable, message: "A cursor belongs to its transaction's thread.")
extension WriteCursor: Sendable {}

// MARK: - Shared implementation

/// The cursor operations both cursor types forward to.
struct CursorCore {
    /// The `MDB_cursor *`.
    let pointer: OpaquePointer

    @inline(__always)
    func move(_ operation: MDB_cursor_op) throws(LMDBError) -> RawEntry? {
        var key = MDB_val()
        var value = MDB_val()
        guard try checkFound(mdb_cursor_get(pointer, &key, &value, operation), "mdb_cursor_get") else {
            return nil
        }
        return (buffer(key), buffer(value))
    }

    /// For moves that do not report the key (`MDB_FIRST_DUP`, `MDB_LAST_DUP`): move, then read the entry.
    func moveThenReadCurrent(_ operation: MDB_cursor_op) throws(LMDBError) -> RawEntry? {
        guard try move(operation) != nil else { return nil }
        return try move(MDB_GET_CURRENT)
    }

    @inline(__always)
    func seek(_ key: UnsafeRawBufferPointer, _ operation: MDB_cursor_op) throws(LMDBError) -> RawEntry? {
        var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var value = MDB_val()
        guard try checkFound(mdb_cursor_get(pointer, &keyValue, &value, operation), "mdb_cursor_get") else {
            return nil
        }
        // MDB_SET_KEY and MDB_SET_RANGE point the key at the database's copy.
        return (buffer(keyValue), buffer(value))
    }

    func seek(_ key: [UInt8], _ operation: MDB_cursor_op) throws(LMDBError) -> RawEntry? {
        try withBytes(key) { (key) throws(LMDBError) in try seek(key, operation) }
    }

    /// `MDB_GET_BOTH` and `MDB_GET_BOTH_RANGE` may leave the caller's buffers in the result, so
    /// read the entry back from the database.
    func seek(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, _ operation: MDB_cursor_op) throws(LMDBError) -> RawEntry? {
        var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var dataValue = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        guard try checkFound(mdb_cursor_get(pointer, &keyValue, &dataValue, operation), "mdb_cursor_get") else {
            return nil
        }
        return try move(MDB_GET_CURRENT)
    }

    func duplicateCount() throws(LMDBError) -> Int {
        var count = 0
        try check(mdb_cursor_count(pointer, &count), "mdb_cursor_count")
        return count
    }

    func forEach(
        startingAt start: UnsafeRawBufferPointer?,
        reverse: Bool,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        var entry: RawEntry?
        if let start {
            entry = reverse ? try positionAtOrBefore(start) : try seek(start, MDB_SET_RANGE)
        } else {
            entry = reverse ? try move(MDB_LAST) : try move(MDB_FIRST)
        }
        while let current = entry {
            guard try body(current.key, current.value) else { return }
            entry = reverse ? try move(MDB_PREV) : try move(MDB_NEXT)
        }
    }

    func forEach(
        prefix: UnsafeRawBufferPointer,
        reverse: Bool,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        var entry: RawEntry?
        if reverse {
            entry = try lastEntry(withPrefix: prefix)
        } else {
            entry = prefix.isEmpty ? try move(MDB_FIRST) : try seek(prefix, MDB_SET_RANGE)
        }
        while let current = entry, hasPrefix(current.key, prefix) {
            guard try body(current.key, current.value) else { return }
            entry = reverse ? try move(MDB_PREV) : try move(MDB_NEXT)
        }
    }

    /// The last entry whose key is at most `key` (the last value of `key` in a duplicate-sorted database).
    private func positionAtOrBefore(_ key: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? {
        guard let found = try seek(key, MDB_SET_RANGE) else {
            return try move(MDB_LAST)
        }
        guard bytesEqual(found.key, key) else {
            return try move(MDB_PREV)
        }
        return try isDuplicateSorted() ? try moveThenReadCurrent(MDB_LAST_DUP) : found
    }

    /// The last entry whose key starts with `prefix`, or an entry before the prefix range (the
    /// caller checks the prefix), or `nil`.
    private func lastEntry(withPrefix prefix: UnsafeRawBufferPointer) throws(LMDBError) -> RawEntry? {
        // The successor of the prefix: drop trailing 0xFF bytes, then add one to the last byte.
        var length = prefix.count
        while length > 0 && prefix[length - 1] == 0xFF { length -= 1 }
        if length == 0 {
            return try move(MDB_LAST)
        }
        let result: Result<RawEntry?, LMDBError> = withUnsafeTemporaryAllocation(byteCount: length, alignment: 1) { successor in
            successor.copyMemory(from: UnsafeRawBufferPointer(rebasing: prefix[0..<length]))
            successor[length - 1] += 1
            do throws(LMDBError) {
                if try seek(UnsafeRawBufferPointer(successor), MDB_SET_RANGE) != nil {
                    return .success(try move(MDB_PREV))
                }
                return .success(try move(MDB_LAST))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func isDuplicateSorted() throws(LMDBError) -> Bool {
        var flags: UInt32 = 0
        try check(mdb_dbi_flags(mdb_cursor_txn(pointer), mdb_cursor_dbi(pointer), &flags), "mdb_dbi_flags")
        return flags & UInt32(MDB_DUPSORT) != 0
    }
}

@inline(__always)
private func buffer(_ value: MDB_val) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)
}

@inline(__always)
private func hasPrefix(_ key: UnsafeRawBufferPointer, _ prefix: UnsafeRawBufferPointer) -> Bool {
    if prefix.isEmpty { return true }
    guard key.count >= prefix.count, let keyStart = key.baseAddress, let prefixStart = prefix.baseAddress else {
        return false
    }
    return memcmp(keyStart, prefixStart, prefix.count) == 0
}

@inline(__always)
private func bytesEqual(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
    left.count == right.count && hasPrefix(left, right)
}
