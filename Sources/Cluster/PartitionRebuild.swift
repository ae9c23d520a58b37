import Foundation
public import Logging
public import Storage

/// A partition's current state built from JetStream alone, for batch jobs that must not disturb
/// the owner (`tally rate` over a cluster): the newest snapshot restored into a directory of the
/// job's, then the log after it replayed. Nothing is published, sealed or leased: the owner goes on
/// writing, and the result holds every event the log held when the replay reached its end.
public enum PartitionRebuild {
    /// Builds partition `number` into `directory` (which must not exist) and returns its store,
    /// open to read, with the log sequence it reached.
    public static func build(partition number: Int, log: PartitionLog, snapshots: PartitionSnapshots?, into directory: String,
                             configuration: TallyStore.Configuration, logger: Logger) throws -> (store: TallyStore, logSequence: UInt64) {
        if let snapshots, let newest = try snapshots.newest(partition: number) {
            let download = directory + ".snapshot"
            ClusterRecorder.removeTree(download)
            defer { ClusterRecorder.removeTree(download) }
            try snapshots.download(newest, into: download)
            _ = try TallyStore.restore(from: download, to: directory)
        } else {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let store = try TallyStore(path: directory, configuration: configuration, access: .readWrite, logger: logger)
        let writer = try StoreWriter(store: store)
        try log.replay(partition: number, after: try store.logSequence()) { sequence, events throws(ClusterError) in
            do {
                _ = try writer.record(events, replicatedAs: sequence)
            } catch {
                throw ClusterError(.damaged, "replaying message \(sequence) of partition \(number)'s log failed: \((error as? StoreError)?.message ?? "\(error)")")
            }
        }
        try writer.foldLoggedUsage()
        return (store, try store.logSequence())
    }
}
