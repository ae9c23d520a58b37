public import Metering

/// Tally's configuration, as read from the YAML config file by `ConfigLoader`.
///
/// ```swift
/// let config = try ConfigLoader.load(path: "config/tally.yaml")
/// config.ingest.commitMaxEvents      // 8192
/// config.meter("api_calls")?.aggregation  // .count
/// ```
public struct TallyConfig: Sendable, Hashable {
    /// `store:`: where the LMDB environment lives.
    public var store: StoreSettings
    /// `ingest:`: the socket, group commits, dedup and event limits.
    public var ingest: IngestSettings
    /// `billing:`: the period rule and the rounding mode.
    public var billing: BillingSettings
    /// `meters:`: every meter events may name, in file order.
    public var meters: [Meter]
    /// `plans:`: the plans, in file order (codes unique, every price naming a configured meter).
    public var plans: [Plan]
    /// `default_plan:`: the code of the plan for customers not listed in `customers`, or nil.
    public var defaultPlan: String?
    /// `customers:`: customers with an explicit plan, in file order (ids unique).
    public var customers: [CustomerPlanAssignment]
    /// `limits:`: usage limits per customer or per plan, in file order (ids unique).
    public var limits: [UsageLimit]
    /// `alerts:`: the alert log and webhooks.
    public var alerts: AlertSettings
    /// `http:`: the HTTP API's address and keys.
    public var http: HTTPSettings
    /// `archive:`: how often `tally serve` archives closed periods and forgets expired identities.
    public var archive: ArchiveSettings
    /// `cluster:`: this node's place in a cluster on NATS JetStream; nil: single-node mode.
    public var cluster: ClusterSettings?
    /// Top-level sections this build reads but does not use yet, in file order (none at present:
    /// kept so that a future section can be accepted before it is used).
    public var ignoredSections: [String]

    /// Creates a configuration; every part but the meters has defaults.
    public init(
        store: StoreSettings = StoreSettings(),
        ingest: IngestSettings = IngestSettings(),
        billing: BillingSettings = BillingSettings(),
        meters: [Meter],
        plans: [Plan] = [],
        defaultPlan: String? = nil,
        customers: [CustomerPlanAssignment] = [],
        limits: [UsageLimit] = [],
        alerts: AlertSettings = AlertSettings(),
        http: HTTPSettings = HTTPSettings(),
        archive: ArchiveSettings = ArchiveSettings(),
        cluster: ClusterSettings? = nil,
        ignoredSections: [String] = []
    ) {
        self.store = store
        self.ingest = ingest
        self.billing = billing
        self.meters = meters
        self.plans = plans
        self.defaultPlan = defaultPlan
        self.customers = customers
        self.limits = limits
        self.alerts = alerts
        self.http = http
        self.archive = archive
        self.cluster = cluster
        self.ignoredSections = ignoredSections
    }

    /// The meter with this code, or nil. A linear scan: hot paths should build their own table.
    public func meter(_ code: String) -> Meter? {
        meters.first { $0.code == code }
    }

    /// The plan with this code, or nil.
    public func plan(_ code: String) -> Plan? {
        plans.first { $0.code == code }
    }

    /// The plan a customer is on: its entry in `customers`, else `default_plan`, else nil (the
    /// customer's usage is counted but not priced).
    public func plan(forCustomer customer: String) -> Plan? {
        let code = customers.first { $0.customer == customer }?.plan ?? defaultPlan
        return code.flatMap { plan($0) }
    }
}

/// `store:` settings.
public struct StoreSettings: Sendable, Hashable {
    /// `store.path`: the LMDB environment directory (default `data`).
    public var path: String
    /// `store.max_size`: the most the store may grow to, in bytes (default: no limit but the disk).
    /// Past it, writes are answered `unavailable` until the limit is raised.
    public var maxSizeBytes: Int?

    /// Creates store settings.
    public init(path: String = "data", maxSizeBytes: Int? = nil) {
        self.path = path
        self.maxSizeBytes = maxSizeBytes
    }
}

/// `ingest:` settings.
public struct IngestSettings: Sendable, Hashable {
    /// `ingest.socket`: the Unix socket path (default `tally.sock`).
    public var socket: String
    /// `ingest.socket_mode`: the socket file's permission bits, written `"0660"` (default 0o660).
    public var socketMode: UInt32
    /// `ingest.commit_max_events`: a group commit closes at this many events (default 8192; 1…1,000,000).
    public var commitMaxEvents: Int
    /// `ingest.commit_max_delay`: …or this long after its first event (default 2 ms; 0…1 s).
    public var commitMaxDelayNanoseconds: Int64
    /// `ingest.dedup_window`: how long event identities are remembered (default 35 days; at least 1 hour).
    public var dedupWindowNanoseconds: Int64
    /// `ingest.max_future_skew`: how far ahead of the clock an event's time may be (default 5 minutes).
    public var maxFutureSkewNanoseconds: Int64
    /// `ingest.max_line_bytes`: the longest accepted NDJSON line (default 65536; 1 KiB…16 MiB).
    public var maxLineBytes: Int
    /// `ingest.listen_backlog`: the listen backlog of the Unix socket and of the HTTP listener, how
    /// many connections may wait to be accepted (default 4096; 1…1,048,576; the kernel caps it at
    /// `net.core.somaxconn`).
    public var listenBacklog: Int
    /// `ingest.max_buffered_bytes`: the memory budget for everything read and not yet answered,
    /// over every socket connection and HTTP request body (default 256 MiB; 1 MiB…1 TiB). Past it,
    /// the producers holding the most pause reading until their work is answered.
    public var maxBufferedBytes: Int

    /// Creates ingest settings; every parameter defaults to the documented default.
    public init(
        socket: String = "tally.sock",
        socketMode: UInt32 = 0o660,
        commitMaxEvents: Int = 8192,
        commitMaxDelayNanoseconds: Int64 = 2_000_000,
        dedupWindowNanoseconds: Int64 = 35 * 86_400_000_000_000,
        maxFutureSkewNanoseconds: Int64 = 5 * 60_000_000_000,
        maxLineBytes: Int = 65_536,
        listenBacklog: Int = IngestSettings.defaultListenBacklog,
        maxBufferedBytes: Int = IngestSettings.defaultMaxBufferedBytes
    ) {
        self.socket = socket
        self.socketMode = socketMode
        self.commitMaxEvents = commitMaxEvents
        self.commitMaxDelayNanoseconds = commitMaxDelayNanoseconds
        self.dedupWindowNanoseconds = dedupWindowNanoseconds
        self.maxFutureSkewNanoseconds = maxFutureSkewNanoseconds
        self.maxLineBytes = maxLineBytes
        self.listenBacklog = listenBacklog
        self.maxBufferedBytes = maxBufferedBytes
    }

    /// The default `ingest.listen_backlog`: a burst of this many connects waits instead of failing.
    public static let defaultListenBacklog = 4096
    /// The default `ingest.max_buffered_bytes`, 256 MiB.
    public static let defaultMaxBufferedBytes = 256 << 20
}

/// `archive:` settings.
public struct ArchiveSettings: Sendable, Hashable {
    /// `archive.interval`: how often `tally serve` runs the archive (default 1 hour; `0` turns the
    /// schedule off, leaving `tally archive` to cron).
    public var intervalNanoseconds: Int64

    /// Creates archive settings.
    public init(intervalNanoseconds: Int64 = 3_600_000_000_000) {
        self.intervalNanoseconds = intervalNanoseconds
    }
}

/// `billing:` settings.
public struct BillingSettings: Sendable, Hashable {
    /// `billing.period` and `billing.anchor` (default: calendar months in UTC).
    public var period: BillingPeriod
    /// `billing.rounding`: how statement lines round to the currency's minor unit.
    public var rounding: RoundingMode

    /// Creates billing settings.
    public init(period: BillingPeriod = .monthly, rounding: RoundingMode = .halfAwayFromZero) {
        self.period = period
        self.rounding = rounding
    }
}

