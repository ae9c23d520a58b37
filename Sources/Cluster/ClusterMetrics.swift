import Metrics
import NATS

/// The swift-metrics families a cluster node records (`tally serve` with `cluster.metrics_listen`
/// serves them on `/metrics`).
public enum ClusterMetricFamilies {
    /// Time to append one partition's share of a group commit to its log and have it acknowledged.
    public static let publishDuration = "tally_cluster_publish_duration"
    /// Partitions this node serves.
    public static let partitionsServed = "tally_cluster_partitions_served"
    /// Per served partition: log messages the partition's store has not applied yet.
    public static let partitionLag = "tally_cluster_partition_lag_messages"
    /// Partitions gained, lost (to another node or fenced) and handed over (surplus), by `change`.
    public static let ownershipChanges = "tally_cluster_ownership_changes_total"
    /// Appends refused because another node wrote to the partition's log.
    public static let fencedAppends = "tally_cluster_fenced_appends_total"
    /// Lease rounds that failed (NATS unreachable, a KV error).
    public static let leaseRoundFailures = "tally_cluster_lease_round_failures_total"
    /// Partition snapshots, by `result` (published, failed).
    public static let snapshots = "tally_cluster_snapshots_total"
    /// Time to back up one partition and publish the snapshot.
    public static let snapshotDuration = "tally_cluster_snapshot_duration"
    /// Events forwarded to their partition's owner on another node.
    public static let forwardedEvents = "tally_cluster_forwarded_events_total"

    /// The help text of each family above, by name.
    public static let help: [String: String] = [
        publishDuration: "Time to append one partition's share of a group commit to its JetStream log and have a quorum acknowledge it, in seconds.",
        partitionsServed: "Partitions this node owns and serves.",
        partitionLag: "Per partition this node serves: messages of its log the partition's store has not applied yet.",
        ownershipChanges: "Partitions this node gained, lost (another node took it, or its log was fenced) and handed over as surplus, by change.",
        fencedAppends: "Log appends refused because another node wrote to the partition's log since (this node no longer owns it).",
        leaseRoundFailures: "Lease rounds that failed (NATS unreachable, a key-value error); the next round retries.",
        snapshots: "Partition snapshots published to JetStream, or failed, by result.",
        snapshotDuration: "Time to back up one partition store and publish its snapshot, in seconds.",
        forwardedEvents: "Event lines forwarded to the owner of their partition on another node.",
    ]
}

/// A node's instruments for `ClusterMetricFamilies`.
struct ClusterMetrics: Sendable {
    let publish = Timer(label: ClusterMetricFamilies.publishDuration)
    let served = Gauge(label: ClusterMetricFamilies.partitionsServed)
    let fenced = Counter(label: ClusterMetricFamilies.fencedAppends)
    let leaseRoundFailures = Counter(label: ClusterMetricFamilies.leaseRoundFailures)
    let snapshotsPublished = Counter(label: ClusterMetricFamilies.snapshots, dimensions: [("result", "published")])
    let snapshotsFailed = Counter(label: ClusterMetricFamilies.snapshots, dimensions: [("result", "failed")])
    let snapshotDuration = Timer(label: ClusterMetricFamilies.snapshotDuration)
    let forwarded = Counter(label: ClusterMetricFamilies.forwardedEvents)

    func record(_ timer: Timer, since start: ContinuousClock.Instant) {
        timer.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
    }

    func ownershipChanged(_ change: String, by count: Int = 1) {
        guard count > 0 else { return }
        Counter(label: ClusterMetricFamilies.ownershipChanges, dimensions: [("change", change)]).increment(by: count)
    }

    func lag(_ messages: UInt64, partition: Int) {
        Gauge(label: ClusterMetricFamilies.partitionLag, dimensions: [("partition", PartitionMap.name(partition))]).record(Int64(clamping: messages))
    }

    /// A partition no longer served: its lag series goes.
    func forget(partition: Int) {
        Gauge(label: ClusterMetricFamilies.partitionLag, dimensions: [("partition", PartitionMap.name(partition))]).destroy()
    }
}
