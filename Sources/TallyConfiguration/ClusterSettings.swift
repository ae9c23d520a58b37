/// `cluster:`: run `tally serve` as one node of a cluster on NATS JetStream (absent: single-node
/// mode, the default).
///
/// ```yaml
/// cluster:
///   node: n1                                  # this node's name, unique in the cluster
///   nats: [nats://10.0.0.1:4222, nats://10.0.0.2:4222, nats://10.0.0.3:4222]
///   partitions: 64                            # fixed for the cluster's life
///   replicas: 3                               # NATS servers holding each log message
///   failover: 10s                             # a node silent this long loses its partitions
///   snapshot_interval: 5m                     # how often an owner snapshots a partition into JetStream
///   metrics_listen: 127.0.0.1:9464            # Prometheus /metrics of this node (absent: not served)
/// ```
public struct ClusterSettings: Sendable, Hashable {
    /// This node's name (`cluster.node`): printable ASCII without spaces, `.`, `*` or `>`.
    public var node: String
    /// The NATS servers' URLs (`cluster.nats`).
    public var natsURLs: [String]
    /// How many partitions customers are spread over (`cluster.partitions`, 1–4096, default 64).
    public var partitions: Int
    /// On how many NATS servers each log message and lease is stored (`cluster.replicas`: 1, 3 or 5; default 3).
    public var replicas: Int
    /// How long a node may go without renewing its leases before others take its partitions
    /// (`cluster.failover`, 1 s–10 min, default 10 s).
    public var failoverNanoseconds: Int64
    /// How often the owner of a partition that took events since its last snapshot publishes a new
    /// one to JetStream, so the log can be trimmed below it (`cluster.snapshot_interval`, 1 s–24 h, default 5 min).
    public var snapshotIntervalNanoseconds: Int64
    /// Where this node serves Prometheus `/metrics` and `/healthz` over HTTP (`cluster.metrics_listen`,
    /// `HOST:PORT`); nil: not served.
    public var metricsListen: String?

    /// Whether `name` can name a node: it goes into NATS subjects and keys, so at most 64 printable
    /// ASCII characters without spaces, `.`, `*` or `>`.
    public static func isValidNodeName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !".*>".utf8.contains($0) }
    }

    public static let defaultPartitions = 64
    public static let defaultReplicas = 3
    public static let defaultFailoverNanoseconds: Int64 = 10_000_000_000
    public static let defaultSnapshotIntervalNanoseconds: Int64 = 300_000_000_000

    public init(node: String, natsURLs: [String], partitions: Int = defaultPartitions, replicas: Int = defaultReplicas,
                failoverNanoseconds: Int64 = defaultFailoverNanoseconds, snapshotIntervalNanoseconds: Int64 = defaultSnapshotIntervalNanoseconds) {
        self.node = node
        self.natsURLs = natsURLs
        self.partitions = partitions
        self.replicas = replicas
        self.failoverNanoseconds = failoverNanoseconds
        self.snapshotIntervalNanoseconds = snapshotIntervalNanoseconds
    }
}
