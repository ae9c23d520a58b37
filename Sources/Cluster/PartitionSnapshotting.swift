import Foundation
import Logging
import Storage

/// How a cluster node snapshots the partitions it serves into JetStream (`PartitionSnapshots`),
/// trims their logs below the snapshots, and starts a partition from its newest snapshot.
extension ClusterRecorder {
    /// The served partitions due for a snapshot: none taken (or the partition opened) for
    /// `interval`, and events recorded since the newest one. On the writer thread.
    func partitionsDueForSnapshot(interval: Duration) -> [Partition] {
        guard snapshots != nil else { return [] }
        let now = ContinuousClock.now
        return partitions.values.filter { !$0.fenced && now - $0.snapshotAttempted >= interval }.sorted { $0.number < $1.number }
    }

    /// Publishes a snapshot of `partition` (a backup of its store, covering the log sequence the
    /// store held when it began) and trims the partition's log below the snapshot before it. On a
    /// thread of its own, beside the writer: the backup is one LMDB read transaction. Returns the
    /// new manifest; nil when nothing was recorded since the newest snapshot or the partition closed.
    ///
    /// The log keeps one snapshot interval past the newest snapshot, and at least the log's
    /// duplicate window, so a node that read the previous manifest just as this one was published
    /// still finds every message after it, and a publish retried after a lost acknowledgement is
    /// still recognised by its message id.
    @discardableResult
    func snapshot(_ partition: Partition) throws -> SnapshotManifest? {
        guard let snapshots else { return nil }
        partition.snapshotAttempted = ContinuousClock.now
        return try partition.use.run { () throws -> SnapshotManifest? in
            guard !partition.fenced else { return nil }
            return try publishSnapshot(of: partition, to: snapshots)
        } ?? nil
    }

    private func publishSnapshot(of partition: Partition, to snapshots: PartitionSnapshots) throws -> SnapshotManifest? {
        let sequence = try partition.store.logSequence()
        let previous = partition.newestSnapshot
        guard sequence > (previous?.logSequence ?? 0) else { return nil }
        let directory = Self.storePath(root: root, partition: partition.number) + ".outgoing"
        Self.removeTree(directory)
        defer { Self.removeTree(directory) }
        let started = ContinuousClock.now
        _ = try partition.store.backup(to: directory)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let manifest = try snapshots.publish(partition: partition.number, backupDirectory: directory, logSequence: sequence, node: node,
                                             createdAtMilliseconds: now)
        partition.newestSnapshot = manifest
        metrics.record(metrics.snapshotDuration, since: started)
        var trimmedBelow: UInt64 = 0
        if let previous, now - previous.createdAtMilliseconds >= log.duplicateWindowMilliseconds {
            trimmedBelow = try log.trim(partition: partition.number, through: previous.logSequence)
        }
        logger.info("published a partition snapshot", metadata: [
            "partition": "\(partition.number)", "log_sequence": "\(sequence)", "chunks": "\(manifest.chunks)",
            "bytes": "\(manifest.files.reduce(0) { $0 + $1.size })", "took": "\(ContinuousClock.now - started)",
            "log_trimmed_below": "\(trimmedBelow)",
        ])
        return manifest
    }

    /// Replaces partition `number`'s store at `path` with the partition's newest snapshot when that
    /// covers more of the log than the store does (or there is no store: a new node, a lost disk).
    /// Returns the newest snapshot, nil when the partition has none.
    func restoreIfBehind(_ number: Int, path: String) throws -> SnapshotManifest? {
        guard let snapshots, let newest = try snapshots.newest(partition: number) else { return nil }
        let download = path + ".snapshot"
        let restored = path + ".restored"
        Self.removeTree(download)
        Self.removeTree(restored)
        var held: UInt64 = 0
        if FileManager.default.fileExists(atPath: path + "/data.mdb") {
            // Closed again at the end of this scope, before the store is replaced or opened to write.
            held = try TallyStore(path: path, configuration: storeConfiguration, access: .readOnly, logger: logger).logSequence()
        }
        guard held < newest.logSequence else { return newest }
        let started = ContinuousClock.now
        defer { Self.removeTree(download) }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try snapshots.download(newest, into: download)
        _ = try TallyStore.restore(from: download, to: restored)
        Self.removeTree(path)
        guard rename(restored, path) == 0 else {
            throw ClusterError(.damaged, "cannot move the restored snapshot of partition \(number) into '\(path)': \(String(cString: strerror(errno)))")
        }
        logger.info("partition started from its newest snapshot", metadata: [
            "partition": "\(number)", "snapshot_log_sequence": "\(newest.logSequence)", "store_had": "\(held)",
            "snapshot_by": "\(newest.node)", "took": "\(ContinuousClock.now - started)",
        ])
        return newest
    }

    static func removeTree(_ path: String) {
        if FileManager.default.fileExists(atPath: path) { try? FileManager.default.removeItem(atPath: path) }
    }
}
