import CLMDB

/// A handle to one database (a key/value table) inside an ``Environment``.
///
/// Get one from ``Environment/openDatabase(_:create:flags:)`` once at startup and keep it: handles
/// stay valid for the environment's lifetime and can be shared between threads. A handle belongs to
/// the environment that opened it.
public struct Database: Hashable, Sendable {
    /// The `MDB_dbi` value.
    let handle: UInt32

    init(handle: UInt32) {
        self.handle = handle
    }
}

/// How a database orders and stores its keys and values; fixed when the database is created.
///
/// ```swift
/// let index = try environment.openDatabase("index", flags: [.duplicateSort])
/// ```
public struct DatabaseFlags: OptionSet, Hashable, Sendable {
    /// The `mdb_dbi_open` flag bits.
    public let rawValue: UInt32

    /// Wraps raw `mdb_dbi_open` flag bits.
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// `MDB_REVERSEKEY`: compare keys from their last byte to their first.
    public static let reverseKey = DatabaseFlags(rawValue: UInt32(MDB_REVERSEKEY))
    /// `MDB_DUPSORT`: a key may hold several values, kept sorted.
    public static let duplicateSort = DatabaseFlags(rawValue: UInt32(MDB_DUPSORT))
    /// `MDB_INTEGERKEY`: keys are native `UInt32` or `Int` values of one size, compared as integers.
    public static let integerKey = DatabaseFlags(rawValue: UInt32(MDB_INTEGERKEY))
    /// `MDB_DUPFIXED`: with ``duplicateSort``, every value of the database has the same size.
    public static let duplicateFixed = DatabaseFlags(rawValue: UInt32(MDB_DUPFIXED))
    /// `MDB_INTEGERDUP`: with ``duplicateSort``, values are native integers compared as integers.
    public static let integerDuplicate = DatabaseFlags(rawValue: UInt32(MDB_INTEGERDUP))
    /// `MDB_REVERSEDUP`: with ``duplicateSort``, compare values from their last byte to their first.
    public static let reverseDuplicate = DatabaseFlags(rawValue: UInt32(MDB_REVERSEDUP))
}

/// The shape of one database's B+tree (`MDB_stat`).
public struct DatabaseStatistics: Hashable, Sendable {
    /// The size of a page in bytes.
    public var pageSize: Int
    /// The depth of the B+tree.
    public var depth: Int
    /// The number of internal (branch) pages.
    public var branchPages: Int
    /// The number of leaf pages.
    public var leafPages: Int
    /// The number of overflow pages, used by values larger than about half a page.
    public var overflowPages: Int
    /// The number of key/value entries (each duplicate counts).
    public var entries: Int

    /// Creates statistics from their parts.
    public init(pageSize: Int, depth: Int, branchPages: Int, leafPages: Int, overflowPages: Int, entries: Int) {
        self.pageSize = pageSize
        self.depth = depth
        self.branchPages = branchPages
        self.leafPages = leafPages
        self.overflowPages = overflowPages
        self.entries = entries
    }

    init(_ stat: MDB_stat) {
        self.init(
            pageSize: Int(stat.ms_psize),
            depth: Int(stat.ms_depth),
            branchPages: stat.ms_branch_pages,
            leafPages: stat.ms_leaf_pages,
            overflowPages: stat.ms_overflow_pages,
            entries: stat.ms_entries
        )
    }
}

/// A copy of one entry, detached from any transaction.
public struct Entry: Hashable, Sendable {
    /// The key bytes.
    public var key: [UInt8]
    /// The value bytes.
    public var value: [UInt8]

    /// Creates an entry.
    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// One entry as LMDB holds it: both buffers point into the memory map and stay valid only until the
/// transaction ends (or, in a write transaction, until the next change to the database).
public typealias RawEntry = (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
