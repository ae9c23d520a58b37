import Billing
import Cluster
import Foundation
import Logging
import Metering
import Storage
import TallyConfiguration

/// `tally rate` with a `cluster:` section: every partition rated from JetStream alone (its newest
/// snapshot and the log after it, rebuilt in a temporary directory), so the run works from any
/// machine that reaches the NATS servers and never disturbs the owners. Statements come partition by
/// partition (customers in byte order within each), then one summary over all of them; the same
/// data gives byte-identical files.
enum ClusterRate {
    static func run(_ command: RateCommand, config: TallyConfig, cluster: ClusterSettings, period: PeriodInterval) throws {
        let map = try PartitionMap(count: cluster.partitions)
        var logger = Logger(label: "tally.rate")
        logger.logLevel = .warning  // not a line per partition store opened
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("tally-rate-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let output = try StatementOutput(directory: command.out, format: command.format.rawValue)
        let partitions = command.customer.map { [map.partition(of: $0)] } ?? Array(0..<map.count)
        let configuration = TallyStore.Configuration(config)
        let summaries = try ClusterAccess.run(cluster, client: "tally-rate", to: "read the partitions", failure: "rating the cluster's partitions failed",
                                              jetStreamTimeout: .seconds(30)) { _, stream in
            let log = try PartitionLog(stream: stream, replicas: cluster.replicas)
            let snapshots = try PartitionSnapshots(stream: stream, replicas: cluster.replicas)
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            return try partitions.map { partition in
                let directory = work + "/" + PartitionMap.name(partition)
                defer { try? FileManager.default.removeItem(atPath: directory) }
                do {
                    let rebuilt = try PartitionRebuild.build(partition: partition, log: log, snapshots: snapshots, into: directory,
                                                             configuration: configuration, logger: logger)
                    return try RatingRun(config: config, period: period).run(store: rebuilt.store, customer: command.customer) { statement in
                        try output.write(statement)
                    }
                } catch let error as StoreError {
                    throw CommandFailure("rebuilding a partition to rate it failed: \(error.message)")
                }
            }
        }
        let summary = try RatingRunSummary.merged(summaries, period: period)
        try output.finish(summary)
        command.report(summary)
    }
}
