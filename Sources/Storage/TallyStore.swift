import Foundation
public import LMDB
public import Logging
public import Metering

/// An error of the store, with a stable code and a message that says what to do.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stable error code.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The store cannot take writes now (disk full, I/O error); nothing was recorded.
        public static let unavailable = Code(rawValue: "unavailable")
        /// The store's file system is full (`ENOSPC`, or `EIO` on a full disk): nothing was
        /// recorded; free space on the store's path and retry.
        public static let diskFull = Code(rawValue: "disk_full")
        /// Another process holds the store for writing.
        public static let locked = Code(rawValue: "locked")
        /// There is no store at the path.
        public static let notFound = Code(rawValue: "not_found")
        /// The store was written by an incompatible version of tally, or is damaged.
        public static let incompatible = Code(rawValue: "incompatible")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// An event read from a line, waiting for its group commit.
public struct PendingEvent: Sendable {
    public var event: UsageEvent
    public var receivedAt: Timestamp

    public init(event: UsageEvent, receivedAt: Timestamp) {
        self.event = event
        self.receivedAt = receivedAt
    }
}

/// What a group commit did with one event.
public enum RecordOutcome: Sendable, Hashable {
    /// Counted: its identity, the event and its aggregates are durable.
    case accepted
    /// Its identity was stored before with the same content: counted nothing.
    case duplicate
    /// Counted nothing, for the reason given (`idempotency_conflict`, `invalid_value`, `unavailable`).
    case rejected(IngestError)
}

/// One aggregate of a customer's usage in a period.
public struct UsageRecord: Sendable, Hashable {
    public var meter: String
    /// The group-by values, in the meter's `group_by` order; empty without `group_by`.
    public var group: [GroupValue]
    public var quantity: ExactDecimal
    /// How many events were counted into it.
    public var eventCount: UInt64

    public init(meter: String, group: [GroupValue], quantity: ExactDecimal, eventCount: UInt64) {
        self.meter = meter
        self.group = group
        self.quantity = quantity
        self.eventCount = eventCount
    }
}

/// What a store holds, for `tally` commands, tests and benchmarks.
public struct StoreStatistics: Sendable, Hashable {
    public var identities: Int
    public var events: Int
    public var aggregates: Int
    public var mapSize: Int
}

/// A Tally store: one LMDB environment holding identities, events and usage aggregates.
///
/// Reading is safe from any thread and from other processes while a daemon writes. Writing goes
/// through the single `StoreWriter` of the one process that opened the store with
/// `Access.readWrite`; a lock file keeps a second writer out.
public final class TallyStore: @unchecked Sendable {
    /// How a process uses the store.
    public enum Access: Sendable {
        /// Read only; works while a daemon writes.
        case readOnly
        /// The one writer; creates the store when it does not exist.
        case readWrite
        /// Reads, and writes settings (customers' plans, closed periods) beside a running daemon.
        /// LMDB serializes these short transactions with the daemon's; the store must exist.
        case settings
    }

    /// What the store must know of the configuration to aggregate usage.
    public struct Configuration: Sendable {
        public var meters: [Meter]
        public var billingPeriod: BillingPeriod
        public var initialMapSize: Int
        /// The most the store may grow to (`store.max_size`); nil for no limit but the disk.
        public var maximumSize: Int?
        /// Whether ingest folds events into usage buckets (usage over time). Off only to measure
        /// what the buckets cost (`tally bench ingest --without-buckets`): a store written so
        /// answers usage-over-time queries with zeros.
        public var writesUsageBuckets = true
        /// When set, alert ids are hashed with fixed keys derived from it rather than the store's own
        /// random keys: a cluster gives every store of one partition the partition's seed, so the
        /// owner after a fail-over (whose store is new) gives a crossing the id the previous owner
        /// gave it, and receivers deduplicate across owners as across restarts.
        public var alertIDSeed: UInt64?

        public init(meters: [Meter], billingPeriod: BillingPeriod, initialMapSize: Int = 1 << 30, maximumSize: Int? = nil) {
            self.meters = meters
            self.billingPeriod = billingPeriod
            self.initialMapSize = maximumSize.map { min($0, initialMapSize) } ?? initialMapSize
            self.maximumSize = maximumSize
        }
    }

    public let path: String
    public let configuration: Configuration
    let environment: Environment
    let meta: Database
    let identities: Database
    let events: Database
    let usage: Database
    let uniqueValues: Database
    let customers: Database
    let closedPeriods: Database
    let limits: Database
    let fired: Database
    let alerts: Database
    let deliveryCursors: Database
    /// The archive's segment records; nil only in a read-only store written before the archive existed.
    let archiveSegments: Database?
    /// Usage aggregates of recent commits not yet folded into `usage` (`UsageLogRecord`); nil only
    /// in a read-only store written before the log existed.
    let usageLog: Database?
    /// Usage per customer × meter × quarter-hour and UTC day (`BucketKey`); nil only in a
    /// read-only store written before buckets existed.
    let usageBuckets: Database?
    /// The distinct values of each `unique_count` bucket: hash(bucket key) ‖ value, as `unique_values`.
    let bucketUniqueValues: Database?
    /// Every customer the store knows, by id (`CustomerDirectory.swift`); nil only in a read-only
    /// store written before the directory existed.
    let customerIndex: Database?
    /// Events answered per UTC hour of their commit (`IngestActivity.swift`); nil only in a
    /// read-only store written before it existed.
    let ingestHours: Database?
    /// Prepaid credit grants and what each period's usage took of them (`CreditStore.swift`); nil
    /// only in a read-only store written before credits existed.
    let creditGrants: Database?
    let creditApplied: Database?
    /// The group commits' changes to `credit_applied` not yet folded into it (`CreditLog.swift`);
    /// nil only in a read-only store written before it existed.
    let creditLog: Database?
    let hashKeys: HashKeys
    let logger: Logger
    private let lockDescriptor: Int32?

    /// Opens (or, with `.readWrite`, creates) the store at `path`.
    public init(path: String, configuration: Configuration, access: Access, logger: Logger) throws(StoreError) {
        self.path = path
        self.configuration = configuration
        self.logger = logger
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if access != .readWrite, !exists || !FileManager.default.fileExists(atPath: path + "/data.mdb") {
            throw StoreError(.notFound, "there is no tally store at '\(path)': start `tally serve` to create it, or pass --store with the right path")
        }
        if exists, !isDirectory.boolValue {
            throw StoreError(.notFound, "'\(path)' is a file, not a store directory: pass --store with a directory path")
        }
        if access == .readWrite {
            lockDescriptor = try Self.lockForWriting(path)
        } else {
            lockDescriptor = nil
        }
        do {
            environment = try Environment(
                path: path,
                options: .init(mapSize: configuration.initialMapSize, maxDatabases: 32, readOnly: access == .readOnly,
                               maxMapSize: configuration.maximumSize)
            )
            let create = access != .readOnly
            meta = try environment.openDatabase(DatabaseName.meta, create: create)
            identities = try environment.openDatabase(DatabaseName.identities, create: create)
            events = try environment.openDatabase(DatabaseName.events, create: create)
            usage = try environment.openDatabase(DatabaseName.usage, create: create)
            uniqueValues = try environment.openDatabase(DatabaseName.uniqueValues, create: create)
            customers = try environment.openDatabase(DatabaseName.customers, create: create)
            closedPeriods = try environment.openDatabase(DatabaseName.closedPeriods, create: create)
            limits = try environment.openDatabase(DatabaseName.limits, create: create)
            fired = try environment.openDatabase(DatabaseName.fired, create: create)
            alerts = try environment.openDatabase(DatabaseName.alerts, create: create)
            deliveryCursors = try environment.openDatabase(DatabaseName.deliveryCursors, create: create)
            archiveSegments = try Self.openOptionalDatabase(environment, DatabaseName.archiveSegments, create: create)
            usageLog = try Self.openOptionalDatabase(environment, DatabaseName.usageLog, create: create)
            usageBuckets = try Self.openOptionalDatabase(environment, DatabaseName.usageBuckets, create: create)
            bucketUniqueValues = try Self.openOptionalDatabase(environment, DatabaseName.bucketUniqueValues, create: create)
            customerIndex = try Self.openOptionalDatabase(environment, DatabaseName.customerIndex, create: create)
            ingestHours = try Self.openOptionalDatabase(environment, DatabaseName.ingestHours, create: create)
            creditGrants = try Self.openOptionalDatabase(environment, DatabaseName.creditGrants, create: create)
            creditApplied = try Self.openOptionalDatabase(environment, DatabaseName.creditApplied, create: create)
            creditLog = try Self.openOptionalDatabase(environment, DatabaseName.creditLog, create: create)
            hashKeys = try Self.loadOrCreateHashKeys(environment, meta: meta, create: create, path: path)
            if access == .readWrite { try buildCustomerIndexIfNeeded() }
        } catch let error as StoreError {
            if let lockDescriptor { close(lockDescriptor) }
            throw error
        } catch {
            if let lockDescriptor { close(lockDescriptor) }
            throw StoreError(.unavailable, "cannot open the store at '\(path)': \(error)")
        }
    }

    /// The table that logged entries of `family` fold into.
    func base(of family: UInt8) -> Database? {
        switch UsageLogRecord.Family(rawValue: family) {
        case .periodUsage: usage
        case .buckets: usageBuckets
        case .customers: customerIndex
        // Logged in `credit_log` and folded by `CreditLogBuffer`, never by the usage folder.
        case .creditApplied, nil: nil
        }
    }

    deinit {
        if let lockDescriptor { close(lockDescriptor) }
    }

    /// Opens a database that stores written by older builds may lack: nil when it is missing and cannot be created.
    private static func openOptionalDatabase(_ environment: Environment, _ name: String, create: Bool) throws(LMDBError) -> Database? {
        do {
            return try environment.openDatabase(name, create: create)
        } catch {
            if error.code == .notFound, !create { return nil }
            throw error
        }
    }

    private static func lockForWriting(_ path: String) throws(StoreError) -> Int32 {
        try lockExclusively(directory: path, what: "store directory", file: "tally.lock",
                            busy: "another process (a running `tally serve`?) is writing to the store at '\(path)': stop it, or pass --store with another path")
    }

    /// Creates `directory` if needed and takes an exclusive `flock` on `directory/file` without
    /// waiting; returns the descriptor that holds it (close it to release), or throws
    /// ``StoreError/Code/locked`` with `busy` when another holder has it.
    static func lockExclusively(directory: String, what: String, file: String, busy: String) throws(StoreError) -> Int32 {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.unavailable, "cannot create the \(what) '\(directory)': \(error.localizedDescription)")
        }
        let lockPath = directory + "/" + file
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot open '\(lockPath)': \(String(cString: strerror(errno))); check the directory's permissions")
        }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            close(descriptor)
            throw StoreError(.locked, busy)
        }
        return descriptor
    }

    private static func loadOrCreateHashKeys(_ environment: Environment, meta: Database, create: Bool, path: String) throws -> HashKeys {
        let stored: (format: [UInt8]?, key: [UInt8]?) = try environment.read { transaction in
            (try transaction.get(meta, key: MetaKey.format), try transaction.get(meta, key: MetaKey.hashKey))
        }
        if let format = stored.format, let key = stored.key, key.count == 32 {
            let version = format.withUnsafeBytes { $0.loadBigEndianUInt32(at: 0) }
            guard format.count == 4, version == currentStoreFormat else {
                throw StoreError(.incompatible, "the store at '\(path)' has format \(version), but this tally reads format \(currentStoreFormat): use the tally version that wrote it, or export and re-ingest")
            }
            return key.withUnsafeBytes { bytes in
                HashKeys(first: (bytes.loadBigEndianUInt64(at: 0), bytes.loadBigEndianUInt64(at: 8)),
                         second: (bytes.loadBigEndianUInt64(at: 16), bytes.loadBigEndianUInt64(at: 24)))
            }
        }
        guard create else {
            throw StoreError(.incompatible, "the store at '\(path)' is not initialised: start `tally serve` on it once")
        }
        var generator = SystemRandomNumberGenerator()
        let keys = HashKeys(first: (generator.next(), generator.next()), second: (generator.next(), generator.next()))
        var keyBytes: [UInt8] = []
        keyBytes.appendBigEndian(keys.first.0)
        keyBytes.appendBigEndian(keys.first.1)
        keyBytes.appendBigEndian(keys.second.0)
        keyBytes.appendBigEndian(keys.second.1)
        var formatBytes: [UInt8] = []
        formatBytes.appendBigEndian(currentStoreFormat)
        try environment.write { transaction in
            _ = try transaction.put(meta, key: MetaKey.format, value: formatBytes)
            _ = try transaction.put(meta, key: MetaKey.hashKey, value: keyBytes)
        }
        return keys
    }

    // MARK: Reading

    /// The aggregates of `customer` in the period that starts at `periodStart`, by meter then group.
    public func usage(customer: String, periodStart: Timestamp) throws(StoreError) -> [UsageRecord] {
        var prefix: [UInt8] = []
        UsageKey.prefix(customer: customer, periodStart: periodStart, into: &prefix)
        return try readStore("read usage") { transaction in
            var records: [UsageRecord] = []
            try UsageLogReader.merged(in: transaction, usage: usage, log: usageLog, prefix: prefix) { key, value in
                guard let meter = UsageKey.meter(in: key), let state = AggregateState(decoding: value) else {
                    throw StoreError(.incompatible, "a usage record of customer '\(customer)' is damaged")
                }
                records.append(UsageRecord(meter: meter, group: state.group, quantity: state.quantity, eventCount: state.eventCount))
            }
            return records
        }
    }

    /// Every period start for which `customer` has usage, oldest first.
    public func periodsWithUsage(customer: String) throws(StoreError) -> [Timestamp] {
        let prefix = UsageKey.prefix(customer: customer)
        return try readStore("read usage") { transaction in
            var starts: [Timestamp] = []
            try UsageLogReader.merged(in: transaction, usage: usage, log: usageLog, prefix: prefix) { key, _ in
                if let start = UsageKey.periodStart(in: key), starts.last != start { starts.append(start) }
            }
            return starts
        }
    }

    /// The stored event at `sequence`, or nil.
    public func event(sequence: UInt64) throws(StoreError) -> StoredEvent? {
        var key: [UInt8] = []
        key.appendBigEndian(sequence)
        return try readStore("read an event") { transaction in
            try transaction.get(events, key: key).flatMap { bytes in
                bytes.withUnsafeBytes { EventCodec.decode($0, sequence: sequence) }
            }
        }
    }

    /// Counts of what the store holds.
    public func statistics() throws(StoreError) -> StoreStatistics {
        try readStore("read statistics") { transaction in
            // Aggregates only in the log (new since the last fold) count too.
            var loggedOnly = 0
            for key in try UsageLogReader.newest(in: transaction, log: usageLog, prefix: []).keys
            where try transaction.get(usage, key: key) == nil {
                loggedOnly += 1
            }
            return StoreStatistics(
                identities: try environment.statistics(identities).entries,
                events: try environment.statistics(events).entries,
                aggregates: try environment.statistics(usage).entries + loggedOnly,
                mapSize: environment.mapSize
            )
        }
    }

    /// Cluster mode: the sequence of the newest message of the partition's replicated log this
    /// store holds; 0 when it holds none (a new partition store, or single-node mode).
    public func logSequence() throws(StoreError) -> UInt64 {
        try readStore("read the log sequence") { transaction in
            try transaction.get(meta, key: MetaKey.logSequence).map { bytes in bytes.withUnsafeBytes { $0.loadBigEndianUInt64(at: 0) } } ?? 0
        }
    }

    func readStore<T>(_ what: String, _ body: (borrowing ReadTransaction) throws -> T) throws(StoreError) -> T {
        do {
            return try environment.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.unavailable, "cannot \(what) from the store at '\(path)': \(error)")
        }
    }
}
