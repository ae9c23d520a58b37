import CLMDB
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An LMDB environment: one directory holding `data.mdb` and `lock.mdb`, mapped into memory.
///
/// Open one environment per directory per process (LMDB forbids opening the same directory twice in
/// one process) and share it between threads. The environment closes when the last reference goes.
///
/// ```swift
/// let environment = try Environment(path: "./data", options: .init(mapSize: 1 << 30))
/// let events = try environment.openDatabase("events")
/// try environment.write { transaction in
///     _ = try transaction.put(events, key: [1, 2], value: [3])
/// }
/// let value = try environment.read { transaction in try transaction.get(events, key: [1, 2]) }
/// ```
///
/// The map grows by itself: when a write fills it, ``write(_:)`` grows it and runs the body again.
public final class Environment: @unchecked Sendable {
    /// How to open an environment.
    public struct Options: Hashable, Sendable {
        /// The initial size of the memory map in bytes (default 1 GiB). An existing environment
        /// keeps its larger recorded size. The map grows on demand inside ``Environment/write(_:)``.
        public var mapSize: Int
        /// The most named databases the environment may hold (default 16).
        public var maxDatabases: Int
        /// The most read transactions that may be open at once, across all processes (default 126).
        public var maxReaders: Int
        /// Opens the environment read-only: every write fails with ``ResultCode/permissionDenied``.
        public var readOnly: Bool
        /// The permission bits of new files (default `0o640`); a new directory also gets the
        /// matching search bits (`0o750`).
        public var fileMode: UInt32
        /// Creates the directory (and its parents) when missing (default `true`; ignored when read-only).
        public var createDirectory: Bool
        /// Skips the fsync at commit (`MDB_NOSYNC`). Fast but a crash can lose or corrupt recent
        /// commits: only for tests and bulk loads followed by ``Environment/sync(force:)``.
        public var noSync: Bool
        /// How much a full map grows: the new size is the old size times this factor (default 2, at least 2).
        public var growthFactor: Int
        /// The largest size the map may grow to; `nil` (the default) for no limit but the address space.
        public var maxMapSize: Int?

        /// Creates options; every parameter has the default described on its property.
        public init(
            mapSize: Int = 1 << 30,
            maxDatabases: Int = 16,
            maxReaders: Int = 126,
            readOnly: Bool = false,
            fileMode: UInt32 = 0o640,
            createDirectory: Bool = true,
            noSync: Bool = false,
            growthFactor: Int = 2,
            maxMapSize: Int? = nil
        ) {
            self.mapSize = mapSize
            self.maxDatabases = maxDatabases
            self.maxReaders = maxReaders
            self.readOnly = readOnly
            self.fileMode = fileMode
            self.createDirectory = createDirectory
            self.noSync = noSync
            self.growthFactor = growthFactor
            self.maxMapSize = maxMapSize
        }
    }

    /// The environment directory.
    public let path: String
    /// The options the environment was opened with.
    public let options: Options

    /// The `MDB_env *`.
    let handle: OpaquePointer
    /// Shared by every transaction; exclusive while the map changes size.
    let resizeLock = ResizeLock()
    /// `mdb_dbi_open` must not run in two transactions at once.
    private let openDatabaseLock = Mutex(())

    /// Tunes the C allocator for a process whose writer commits large transactions: LMDB's dirty
    /// and overflow pages come from the heap and are reused, rather than each block being a fresh
    /// mapping the kernel zeroes (`mallopt`, glibc only). Call once, before the first write; the
    /// writer daemon does. Returns whether the allocator took the settings.
    @discardableResult
    public static func preferHeapAllocations() -> Bool {
        tally_lmdb_prefer_heap_allocations() == 1
    }

    /// Opens (or creates) the environment in the directory at `path`.
    ///
    /// Always opened with `MDB_NOTLS`, so read transactions may run on any thread.
    /// - Throws: ``LMDBError`` with ``ResultCode/notADirectory`` when `path` is a regular file,
    ///   ``ResultCode/noSuchFile`` when a read-only environment does not exist,
    ///   ``ResultCode/permissionDenied`` without access, ``ResultCode/invalidArgument`` for bad options.
    public init(path: String, options: Options = Options()) throws(LMDBError) {
        try Environment.validate(options)
        if options.createDirectory && !options.readOnly {
            let directoryMode = options.fileMode | ((options.fileMode & 0o444) >> 2)
            try createDirectories(path, mode: mode_t(directoryMode))
        }

        var created: OpaquePointer?
        try check(mdb_env_create(&created), "mdb_env_create")
        guard let environment = created else {
            throw LMDBError(code: .invalidArgument, operation: "mdb_env_create", message: "LMDB returned no environment.")
        }
        do throws(LMDBError) {
            try check(mdb_env_set_maxdbs(environment, MDB_dbi(options.maxDatabases)), "mdb_env_set_maxdbs")
            try check(mdb_env_set_maxreaders(environment, UInt32(options.maxReaders)), "mdb_env_set_maxreaders")
            let isNew = access(path + "/data.mdb", F_OK) != 0
            let requestedSize = roundUpToPage(options.mapSize)
            if isNew {
                try check(mdb_env_set_mapsize(environment, requestedSize), "mdb_env_set_mapsize")
            }
            var flags = UInt32(MDB_NOTLS)
            if options.readOnly { flags |= UInt32(MDB_RDONLY) }
            if options.noSync { flags |= UInt32(MDB_NOSYNC) }
            let rc = mdb_env_open(environment, path, flags, mode_t(options.fileMode))
            if rc != MDB_SUCCESS {
                throw LMDBError(rc, "mdb_env_open", context: "Cannot open the LMDB environment at '\(path)'")
            }
            // An existing environment opens with its recorded size; grow it to the requested one.
            if !isNew && !options.readOnly {
                var info = MDB_envinfo()
                try check(mdb_env_info(environment, &info), "mdb_env_info")
                if info.me_mapsize < requestedSize {
                    try check(mdb_env_set_mapsize(environment, requestedSize), "mdb_env_set_mapsize")
                }
            }
        } catch {
            mdb_env_close(environment)
            throw error
        }
        self.path = path
        self.options = options
        self.handle = environment
    }

    deinit {
        mdb_env_close(handle)
    }

    private static func validate(_ options: Options) throws(LMDBError) {
        func invalid(_ message: String) -> LMDBError {
            LMDBError(code: .invalidArgument, operation: "Environment.init", message: message)
        }
        if options.mapSize <= 0 { throw invalid("Options.mapSize must be positive, got \(options.mapSize).") }
        if options.growthFactor < 2 {
            throw invalid("Options.growthFactor must be at least 2, got \(options.growthFactor).")
        }
        if options.maxDatabases < 0 || options.maxDatabases > Int(UInt32.max) {
            throw invalid("Options.maxDatabases must be between 0 and \(UInt32.max), got \(options.maxDatabases).")
        }
        if options.maxReaders < 1 || options.maxReaders > Int(UInt32.max) {
            throw invalid("Options.maxReaders must be between 1 and \(UInt32.max), got \(options.maxReaders).")
        }
        if let maxMapSize = options.maxMapSize, maxMapSize < options.mapSize {
            throw invalid("Options.maxMapSize (\(maxMapSize)) must not be below Options.mapSize (\(options.mapSize)).")
        }
    }

    // MARK: Databases

    /// Opens the database called `name`, or the environment's unnamed main database when `name` is `nil`.
    ///
    /// Runs its own short write transaction (a read transaction in a read-only environment, where
    /// `create` is ignored). Call it at startup, not inside ``write(_:)`` on the same thread (LMDB's
    /// writer lock is not reentrant).
    /// - Parameters:
    ///   - name: The database name, or `nil` for the main database.
    ///   - create: Creates the database when missing.
    ///   - flags: The database's flags; an existing database must be opened with the flags it was created with.
    /// - Throws: ``LMDBError`` with ``ResultCode/notFound`` when the database is missing and cannot be
    ///   created (the one place `MDB_NOTFOUND` is thrown), ``ResultCode/dbsFull`` past
    ///   ``Options/maxDatabases``, ``ResultCode/incompatible`` when the flags differ.
    public func openDatabase(_ name: String?, create: Bool = true, flags: DatabaseFlags = []) throws(LMDBError) -> Database {
        try openDatabaseLock.withLock { _ throws(LMDBError) -> Database in
            if options.readOnly {
                let transaction = try beginTransaction(readOnly: true)
                defer { resizeLock.unlock() }
                let database: Database
                do throws(LMDBError) {
                    database = try Environment.openDatabase(in: transaction, name: name, flags: flags.rawValue)
                } catch {
                    mdb_txn_abort(transaction)
                    throw error
                }
                // Committing (not aborting) keeps the handle open for the environment.
                try check(mdb_txn_commit(transaction), "mdb_txn_commit")
                return database
            }
            let dbiFlags = flags.rawValue | (create ? UInt32(MDB_CREATE) : 0)
            do {
                return try write { transaction in
                    try Environment.openDatabase(in: transaction.pointer, name: name, flags: dbiFlags, mapFull: transaction.mapFull)
                }
            } catch let error as LMDBError {
                throw error
            } catch {
                preconditionFailure("openDatabase threw a non-LMDB error: \(error)")
            }
        }
    }

    private static func openDatabase(
        in transaction: OpaquePointer,
        name: String?,
        flags: UInt32,
        mapFull: UnsafeMutablePointer<Bool>? = nil
    ) throws(LMDBError) -> Database {
        var dbi = MDB_dbi()
        let rc: Int32
        if let name {
            rc = name.withCString { mdb_dbi_open(transaction, $0, flags, &dbi) }
        } else {
            rc = mdb_dbi_open(transaction, nil, flags, &dbi)
        }
        if let mapFull { recordMapFull(rc, in: mapFull) }
        if rc == MDB_NOTFOUND {
            throw LMDBError(
                code: .notFound,
                operation: "mdb_dbi_open",
                message: "The database '\(name ?? "(main)")' does not exist: open it with create: true "
                    + "in a read-write environment."
            )
        }
        if rc != MDB_SUCCESS {
            throw LMDBError(rc, "mdb_dbi_open", context: "Cannot open the database '\(name ?? "(main)")'")
        }
        return Database(handle: dbi)
    }

    // MARK: Transactions

    /// Runs `body` in a read transaction and ends the transaction when `body` returns or throws.
    ///
    /// The transaction sees one consistent snapshot. Buffers it hands out are valid only inside
    /// `body`: copy what you keep. Read transactions may run on any thread, many at once. Keep them
    /// short: the map cannot grow while one is open, and old pages cannot be reused.
    /// Never call ``write(_:)`` inside `body`.
    ///
    /// ```swift
    /// let count = try environment.read { transaction in try transaction.statistics(events).entries }
    /// ```
    /// When another process grew the map (`MDB_MAP_RESIZED`), the new size is adopted and the
    /// transaction started again.
    /// - Throws: ``LMDBError`` when the transaction cannot start, or whatever `body` throws.
    @discardableResult
    public func read<T>(_ body: (borrowing ReadTransaction) throws -> T) throws -> T {
        let transaction = try beginTransaction(readOnly: true)
        defer {
            mdb_txn_abort(transaction)
            resizeLock.unlock()
        }
        return try body(ReadTransaction(pointer: transaction))
    }

    /// Runs `body` in a write transaction: commits when `body` returns, aborts when it throws.
    ///
    /// **The body may run more than once.** When the map fills (`MDB_MAP_FULL`, from a change or
    /// from the commit), the transaction is aborted, the map grows by ``Options/growthFactor`` and
    /// `body` runs again from the start in a fresh transaction. So `body` must only change the
    /// database and must not keep side effects outside the transaction (counters, appended arrays,
    /// sent messages): compute those from the returned value instead. This holds even when `body`
    /// catches errors itself: the transaction remembers that the map filled.
    ///
    /// **Threads.** LMDB ties a write transaction to the OS thread that began it and runs one at a
    /// time. `body` is synchronous, so it cannot cross an `await`; call `write` from one dedicated
    /// thread (not from a cooperative-pool task, whose thread it would block while another write
    /// holds the lock). Do not call `write` or ``openDatabase(_:create:flags:)`` inside `body` or
    /// inside a ``read(_:)`` body.
    ///
    /// ```swift
    /// let stored = try environment.write { transaction in
    ///     try transaction.put(dedup, key: eventKey, value: [], flags: .noOverwrite) == .stored
    /// }
    /// ```
    /// - Throws: ``LMDBError`` from LMDB (``ResultCode/diskFull`` for `ENOSPC`, and for `EIO` when the
    ///   environment's file system is full, ``ResultCode/permissionDenied`` in
    ///   a read-only environment, ``ResultCode/mapFull`` when growth reached ``Options/maxMapSize``),
    ///   or whatever `body` throws.
    @discardableResult
    public func write<T>(_ body: (borrowing WriteTransaction) throws -> T) throws -> T {
        while true {
            let transaction = try beginTransaction(readOnly: false)
            let startSize = currentMapSize()
            var mapFilled = false
            let outcome: Result<T, any Error> = withUnsafeMutablePointer(to: &mapFilled) { flag in
                do {
                    return .success(try body(WriteTransaction(pointer: transaction, mapFull: flag)))
                } catch {
                    return .failure(error)
                }
            }
            if mapFilled {
                mdb_txn_abort(transaction)
                resizeLock.unlock()
                try growMap(beyond: startSize)
                continue
            }
            switch outcome {
            case .failure(let error):
                mdb_txn_abort(transaction)
                resizeLock.unlock()
                if let error = error as? LMDBError { throw classifyingDiskFull(error) }
                throw error
            case .success(let value):
                // mdb_txn_commit frees the transaction whatever it returns.
                let rc = mdb_txn_commit(transaction)
                resizeLock.unlock()
                if rc == MDB_MAP_FULL {
                    try growMap(beyond: startSize)
                    continue
                }
                if rc != MDB_SUCCESS { throw classifyingDiskFull(LMDBError(rc, "mdb_txn_commit")) }
                return value
            }
        }
    }

    /// A write's `ENOSPC`, or its `EIO` while this environment's file system is full, as "the disk
    /// is full" (see ``LMDBError/classifyingDiskFull(_:path:space:)``).
    private func classifyingDiskFull(_ error: LMDBError) -> LMDBError {
        guard error.code == .diskFull || error.code == .ioError else { return error }
        return LMDBError.classifyingDiskFull(error, path: path, space: DiskSpace.of(path: path))
    }

    /// Begins a transaction holding the shared side of the resize lock; the caller ends the
    /// transaction and then unlocks. Adopts a map grown by another process (`MDB_MAP_RESIZED`).
    func beginTransaction(readOnly: Bool) throws(LMDBError) -> OpaquePointer {
        var adoptions = 0
        while true {
            resizeLock.lockShared()
            var transaction: OpaquePointer?
            let rc = mdb_txn_begin(handle, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &transaction)
            if rc == MDB_SUCCESS, let transaction {
                return transaction
            }
            resizeLock.unlock()
            if rc == MDB_MAP_RESIZED && adoptions < 8 {
                adoptions += 1
                try adoptResizedMap()
                continue
            }
            throw LMDBError(rc, "mdb_txn_begin")
        }
    }

    /// Takes the map size another process recorded in the meta page.
    private func adoptResizedMap() throws(LMDBError) {
        resizeLock.lockExclusive()
        defer { resizeLock.unlock() }
        try check(mdb_env_set_mapsize(handle, 0), "mdb_env_set_mapsize")
    }

    /// Grows the map after it filled at `observedSize`; does nothing when another writer already grew it.
    private func growMap(beyond observedSize: Int) throws(LMDBError) {
        resizeLock.lockExclusive()
        defer { resizeLock.unlock() }
        let current = currentMapSize()
        if current > observedSize { return }
        var target = current.multipliedReportingOverflow(by: options.growthFactor).overflow
            ? Int.max : current * options.growthFactor
        if let limit = options.maxMapSize {
            if current >= limit {
                throw LMDBError(
                    code: .mapFull,
                    operation: "mdb_env_set_mapsize",
                    message: "The memory map is full at Options.maxMapSize (\(limit) bytes): raise "
                        + "maxMapSize, or archive or delete data."
                )
            }
            target = min(target, limit)
        }
        let rc = mdb_env_set_mapsize(handle, roundUpToPage(target))
        if rc != MDB_SUCCESS {
            throw LMDBError(rc, "mdb_env_set_mapsize", context: "Cannot grow the memory map from \(current) to \(target) bytes")
        }
    }

    /// The map size; the caller holds the resize lock (either side) so it cannot change meanwhile.
    private func currentMapSize() -> Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_mapsize
    }

    /// Runs a call that needs a consistent map (no resize in flight).
    private func withSharedLock<T>(_ body: () throws(LMDBError) -> T) throws(LMDBError) -> T {
        resizeLock.lockShared()
        defer { resizeLock.unlock() }
        return try body()
    }

    // MARK: Information and maintenance

    /// The current size of the memory map in bytes.
    public var mapSize: Int {
        info().mapSize
    }

    /// The longest key LMDB accepts (and the longest value in a ``DatabaseFlags/duplicateSort`` database), in bytes.
    public var maxKeySize: Int {
        Int(mdb_env_get_maxkeysize(handle))
    }

    /// Map size, last page, last transaction and readers (`mdb_env_info`).
    public func info() -> EnvironmentInfo {
        resizeLock.lockShared()
        defer { resizeLock.unlock() }
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return EnvironmentInfo(
            mapSize: info.me_mapsize,
            lastPageNumber: info.me_last_pgno,
            lastTransactionID: info.me_last_txnid,
            maxReaders: Int(info.me_maxreaders),
            numberOfReaders: Int(info.me_numreaders)
        )
    }

    /// The statistics of `database` in a short read transaction.
    public func statistics(_ database: Database) throws(LMDBError) -> DatabaseStatistics {
        let transaction = try beginTransaction(readOnly: true)
        defer {
            mdb_txn_abort(transaction)
            resizeLock.unlock()
        }
        return try databaseStatistics(transaction, database)
    }

    /// Writes a consistent copy of the environment into `directory` as `directory/data.mdb`, while
    /// readers and the writer go on (`mdb_env_copy2`).
    ///
    /// Creates `directory` when missing; it must not already hold a `data.mdb`.
    /// - Parameter compact: Leaves out free pages and renumbers pages (`MDB_CP_COMPACT`): a smaller
    ///   copy, slower to make.
    /// - Throws: ``LMDBError``, for example `EEXIST` when the copy's `data.mdb` exists.
    public func copy(to directory: String, compact: Bool = false) throws(LMDBError) {
        try createDirectories(directory, mode: mode_t(0o750))
        try copying("mdb_env_copy2", context: "Cannot copy the environment to '\(directory)'") {
            mdb_env_copy2(handle, directory, compact ? UInt32(MDB_CP_COMPACT) : 0)
        }
    }

    /// Writes a copy of the environment's data file into `descriptor`, an open file or the write
    /// end of a pipe (`mdb_env_copyfd2`): one read transaction's snapshot, as ``copy(to:compact:)``
    /// writes into a directory, without a file of its own.
    /// - Throws: ``LMDBError``; a write that fails (a closed pipe, a full disk) as its errno.
    public func copy(toDescriptor descriptor: Int32, compact: Bool = false) throws(LMDBError) {
        try copying("mdb_env_copyfd2", context: "Cannot copy the environment into a file descriptor") {
            mdb_env_copyfd2(handle, descriptor, compact ? UInt32(MDB_CP_COMPACT) : 0)
        }
    }

    /// Runs one of LMDB's copy calls under the resize lock, adopting a map another process grew
    /// (`MDB_MAP_RESIZED` comes from the copy's read transaction, before anything is written) and
    /// retrying, up to 8 times.
    private func copying(_ operation: StaticString, context: String, _ copy: () -> Int32) throws(LMDBError) {
        var adoptions = 0
        while true {
            resizeLock.lockShared()
            let rc = copy()
            resizeLock.unlock()
            if rc == MDB_MAP_RESIZED && adoptions < 8 {
                adoptions += 1
                try adoptResizedMap()
                continue
            }
            if rc != MDB_SUCCESS {
                throw LMDBError(rc, operation, context: context)
            }
            return
        }
    }

    /// Flushes committed data to disk (`mdb_env_sync`). Needed only with ``Options/noSync``.
    /// - Parameter force: Syncs even when the environment was opened with `noSync`.
    /// - Throws: ``LMDBError``; ``ResultCode/permissionDenied`` in a read-only environment.
    public func sync(force: Bool = true) throws(LMDBError) {
        try withSharedLock { () throws(LMDBError) in
            try check(mdb_env_sync(handle, force ? 1 : 0), "mdb_env_sync")
        }
    }

    /// Frees reader slots left by processes that died inside a read transaction (`mdb_reader_check`).
    /// - Returns: The number of slots freed.
    @discardableResult
    public func clearStaleReaders() throws(LMDBError) -> Int {
        var dead: Int32 = 0
        try check(mdb_reader_check(handle, &dead), "mdb_reader_check")
        return Int(dead)
    }
}

/// A snapshot of an environment's state (`MDB_envinfo`).
public struct EnvironmentInfo: Hashable, Sendable {
    /// The size of the memory map in bytes.
    public var mapSize: Int
    /// The number of the last page in use.
    public var lastPageNumber: Int
    /// The ID of the last committed transaction.
    public var lastTransactionID: Int
    /// The number of reader slots.
    public var maxReaders: Int
    /// The number of reader slots used so far.
    public var numberOfReaders: Int

    /// Creates information from its parts.
    public init(mapSize: Int, lastPageNumber: Int, lastTransactionID: Int, maxReaders: Int, numberOfReaders: Int) {
        self.mapSize = mapSize
        self.lastPageNumber = lastPageNumber
        self.lastTransactionID = lastTransactionID
        self.maxReaders = maxReaders
        self.numberOfReaders = numberOfReaders
    }
}

// MARK: - Helpers

/// Rounds a byte count up to a whole number of OS pages.
private func roundUpToPage(_ size: Int) -> Int {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    guard page > 0 else { return size }
    let (sum, overflow) = size.addingReportingOverflow(page - 1)
    if overflow { return Int.max / page * page }
    return sum / page * page
}

/// `mkdir -p`: creates `path` and its missing parents.
private func createDirectories(_ path: String, mode: mode_t) throws(LMDBError) {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/", omittingEmptySubsequences: true) {
        prefix += component
        if mkdir(prefix, mode) != 0 {
            let error = errno
            if error != EEXIST {
                throw LMDBError(error, "mkdir", context: "Cannot create the directory '\(prefix)'")
            }
        }
        prefix += "/"
    }
}
