import CNATS

extension JetStream {
    /// A key-value bucket's settings.
    public struct KeyValueConfig: Sendable, Hashable {
        public var bucket: String
        /// On how many servers each value is stored.
        public var replicas: Int
        /// How long a value lives after its last write (zero: forever).
        public var timeToLive: Duration
        /// How many revisions of a key the bucket keeps (1 to 64).
        public var history: UInt8
        public var inMemory: Bool

        public init(bucket: String, replicas: Int = 1, timeToLive: Duration = .zero, history: UInt8 = 1, inMemory: Bool = false) {
            self.bucket = bucket
            self.replicas = replicas
            self.timeToLive = timeToLive
            self.history = history
            self.inMemory = inMemory
        }
    }

    /// Creates the bucket, or binds to it when it exists.
    public func keyValue(_ config: KeyValueConfig) throws(NATSError) -> KeyValueBucket {
        var settings = kvConfig()
        try NATSCall.check(kvConfig_Init(&settings), "kvConfig_Init")
        settings.Replicas = Int32(config.replicas)
        settings.TTL = config.timeToLive.nanoseconds
        settings.History = config.history
        settings.StorageType = config.inMemory ? js_MemoryStorage : js_FileStorage
        var store: OpaquePointer?
        let status = config.bucket.withCString { bucket in
            settings.Bucket = bucket
            return js_CreateKeyValue(&store, handle, &settings)
        }
        if status != NATS_OK {
            // It may exist with other settings (another node made it first): bind to it.
            guard js_KeyValue(&store, handle, config.bucket) == NATS_OK else { throw NATSCall.error(status, "js_CreateKeyValue") }
        }
        guard let store else { throw NATSError(code: .failed, operation: "js_CreateKeyValue", message: "the client returned no bucket") }
        return KeyValueBucket(handle: store, stream: self, name: config.bucket)
    }
}

/// A JetStream key-value bucket: every write has a revision, and writes can be conditional on it
/// (compare-and-set), which is what leases are made of.
public final class KeyValueBucket: @unchecked Sendable {
    private let handle: OpaquePointer
    /// Keeps the JetStream context (and its connection) alive as long as the bucket.
    private let stream: JetStream
    public let name: String

    init(handle: OpaquePointer, stream: JetStream, name: String) {
        self.handle = handle
        self.stream = stream
        self.name = name
    }

    deinit { kvStore_Destroy(handle) }

    /// A key's value and its revision.
    public struct Entry: Sendable, Hashable {
        public var key: String
        public var value: [UInt8]
        public var revision: UInt64

        public init(key: String, value: [UInt8], revision: UInt64) {
            self.key = key
            self.value = value
            self.revision = revision
        }
    }

    /// What a conditional write came to.
    public enum WriteOutcome: Sendable, Hashable {
        /// Written, at this revision.
        case written(revision: UInt64)
        /// Not written: the key exists (create) or is at another revision (update).
        case conflict
    }

    /// The key's value; nil when it has none (never written, deleted or purged).
    public func get(_ key: String) throws(NATSError) -> Entry? {
        var entry: OpaquePointer?
        let status = kvStore_Get(&entry, handle, key)
        if status == NATS_NOT_FOUND { return nil }
        try NATSCall.check(status, "kvStore_Get")
        guard let entry else { return nil }
        defer { kvEntry_Destroy(entry) }
        let count = Int(kvEntry_ValueLen(entry))
        let value = count > 0 ? kvEntry_Value(entry).map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? [] : []
        return Entry(key: key, value: value, revision: kvEntry_Revision(entry))
    }

    /// Writes `value` whatever the key holds; returns the new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8]) throws(NATSError) -> UInt64 {
        var revision: UInt64 = 0
        let status = value.withUnsafeBytes { kvStore_Put(&revision, handle, key, $0.baseAddress, Int32($0.count)) }
        try NATSCall.check(status, "kvStore_Put")
        return revision
    }

    /// Writes `value` only if the key has no value.
    public func create(_ key: String, _ value: [UInt8]) throws(NATSError) -> WriteOutcome {
        var revision: UInt64 = 0
        let status = value.withUnsafeBytes { kvStore_Create(&revision, handle, key, $0.baseAddress, Int32($0.count)) }
        if Self.lostTheRace(status) { return .conflict }
        try NATSCall.check(status, "kvStore_Create")
        return .written(revision: revision)
    }

    /// Writes `value` only if the key is at `revision` (the compare-and-set of a lease).
    public func update(_ key: String, _ value: [UInt8], expectedRevision revision: UInt64) throws(NATSError) -> WriteOutcome {
        var written: UInt64 = 0
        let status = value.withUnsafeBytes { kvStore_Update(&written, handle, key, $0.baseAddress, Int32($0.count), revision) }
        if Self.lostTheRace(status) { return .conflict }
        try NATSCall.check(status, "kvStore_Update")
        return .written(revision: written)
    }

    /// Deletes the key's value (a later `create` may write it again).
    public func delete(_ key: String) throws(NATSError) {
        try NATSCall.check(kvStore_Delete(handle, key), "kvStore_Delete")
    }

    /// Every key with a value, sorted.
    public func keys() throws(NATSError) -> [String] {
        try entries().map(\.key)
    }

    /// Every key with its value, sorted by key: the bucket stream's subjects (one request to its
    /// leader; the client's own listing starts a consumer, which a busy cluster can time out), each
    /// read, less the keys whose last entry is a delete.
    public func entries() throws(NATSError) -> [Entry] {
        let prefix = "$KV.\(name)."
        var entries: [Entry] = []
        for subject in try stream.subjects(stream: "KV_\(name)", filter: prefix + ">").keys {
            if let entry = try get(String(subject.dropFirst(prefix.count))) { entries.append(entry) }
        }
        return entries.sorted { $0.key < $1.key }
    }

    /// A conditional write that found another revision: JetStream answers "wrong last sequence"
    /// (the client reports it as `NATS_ERR` with that text, its error code not passed out).
    private static func lostTheRace(_ status: natsStatus) -> Bool {
        guard status != NATS_OK else { return false }
        var last = NATS_OK
        let text = nats_GetLastError(&last).map { String(cString: $0) } ?? ""
        return text.contains("wrong last sequence") || text.contains("\(JetStreamCode.wrongLastSequence)")
    }
}
