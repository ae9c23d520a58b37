import Billing
import Cluster
import Foundation
import Logging
import Metering
import NATS
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
        let configuration = TallyStore.Configuration(meters: config.meters, billingPeriod: config.billing.period,
                                                     maximumSize: config.store.maxSizeBytes)
        var summaries: [RatingRunSummary] = []
        do {
            let connection = try NATSConnection(servers: cluster.natsURLs, name: "tally-rate")
            defer { connection.close() }
            let stream = try connection.jetStream(timeout: .seconds(30))
            let log = try PartitionLog(stream: stream, replicas: cluster.replicas)
            let snapshots = try PartitionSnapshots(stream: stream, replicas: cluster.replicas)
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            for partition in partitions {
                let directory = work + "/" + PartitionMap.name(partition)
                let rebuilt = try PartitionRebuild.build(partition: partition, log: log, snapshots: snapshots, into: directory,
                                                         configuration: configuration, logger: logger)
                summaries.append(try RatingRun(config: config, period: period).run(store: rebuilt.store, customer: command.customer) { statement in
                    try output.write(statement)
                })
                try? FileManager.default.removeItem(atPath: directory)
            }
        } catch let error as ClusterError {
            throw CommandFailure("rating the cluster's partitions failed: \(error.message)")
        } catch let error as NATSError {
            throw CommandFailure("cannot reach NATS at \(cluster.natsURLs.joined(separator: ", ")) to read the partitions: \(error.message)")
        } catch let error as StoreError {
            throw CommandFailure("rebuilding a partition to rate it failed: \(error.message)")
        }
        let summary = try RatingRunSummary.merged(summaries, period: period)
        try output.finish(summary)
        command.report(summary)
    }
}
