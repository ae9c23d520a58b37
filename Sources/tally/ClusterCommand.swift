import ArgumentParser
import Foundation
import Cluster
import Metering
import NATS
import TallyConfiguration

/// `tally cluster`: a cluster's state, read from NATS.
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Inspect a cluster of tally nodes on NATS JetStream.",
        subcommands: [Status.self]
    )

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show the live nodes, every partition's owner, its log position, the owner's lag and the newest snapshot.",
            discussion: """
                Reads the leases, the nodes' heartbeats and the event log from the NATS servers of the
                config's cluster: section; works from any machine that reaches them.

                Example:
                  tally cluster status --config node1.yaml
                  tally cluster status --config node1.yaml --json
                  tally cluster status --config node1.yaml --customer cus_42    # its partition and owner
                """
        )

        @OptionGroup var options: StoreOptions

        @Flag(name: .long, help: "Print JSON: {nodes:[{node, partitions}], partitions:[{partition, owner, log_sequence, applied_sequence, lag, snapshot_sequence}], unowned}; with --customer {customer, partition, owner}.")
        var json = false

        @Option(name: .long, help: "Only this customer's partition and its owner (where to read its usage).")
        var customer: String?

        func run() throws {
            let config = try options.loadConfig()
            guard let cluster = config.cluster else {
                throw CommandFailure("the config has no cluster: section: this store is single-node (see README, Cluster mode)")
            }
            try ClusterAccess.run(cluster, client: "tally-status") { _, stream in
                let map = try PartitionMap(count: cluster.partitions)
                let buckets = try PartitionOwnership.buckets(on: stream, failover: .nanoseconds(cluster.failoverNanoseconds), replicas: cluster.replicas)
                let (owners, nodes) = try PartitionOwnership.table(leases: buckets.leases, nodes: buckets.nodes, partitions: map)
                if let customer {
                    let partition = map.partition(of: customer)
                    let owner = owners[partition]
                    if json {
                        var writer = JSONWriter()
                        writer.raw("{"); writer.key("customer"); writer.string(customer)
                        writer.raw(","); writer.key("partition"); writer.raw(String(partition))
                        writer.raw(","); writer.key("owner")
                        if let owner { writer.string(owner) } else { writer.raw("null") }
                        writer.raw("}")
                        print(writer.output)
                    } else {
                        print("customer \(customer): partition \(partition), owner \(owner ?? "(none: a fail-over is under way)")")
                    }
                    return
                }
                let log = try PartitionLog(stream: stream, replicas: cluster.replicas)
                let snapshots = try PartitionSnapshots(stream: stream, replicas: cluster.replicas)
                let rows = try (0..<map.count).map { (partition) throws(ClusterError) -> Row in
                    let owner = owners[partition]
                    return Row(partition: partition, owner: owner, logSequence: try log.lastSequence(of: partition),
                               applied: owner.flatMap { nodes[$0]?.appliedSequences[partition] },
                               snapshot: try snapshots.newest(partition: partition)?.logSequence)
                }
                print(json ? Self.json(rows: rows, nodes: nodes.keys.sorted()) : Self.text(rows: rows, nodes: nodes.keys.sorted()))
            }
        }

        /// One partition's line of the status.
        struct Row {
            var partition: Int
            var owner: String?
            var logSequence: UInt64
            /// What the owner's store holds of the log, as its last heartbeat said; nil without an owner.
            var applied: UInt64?
            var lag: UInt64? { applied.map { logSequence >= $0 ? logSequence - $0 : 0 } }
            /// The log sequence the partition's newest snapshot in JetStream covers; nil without one.
            var snapshot: UInt64?
        }

        private static func owned(by node: String, _ rows: [Row]) -> [Int] {
            rows.filter { $0.owner == node }.map(\.partition)
        }

        static func json(rows: [Row], nodes: [String]) -> String {
            var writer = JSONWriter()
            writer.raw("{"); writer.key("nodes"); writer.raw("[")
            for (index, node) in nodes.enumerated() {
                if index > 0 { writer.raw(",") }
                writer.raw("{"); writer.key("node"); writer.string(node)
                writer.raw(","); writer.key("partitions"); writer.raw("[" + owned(by: node, rows).map(String.init).joined(separator: ",") + "]")
                writer.raw("}")
            }
            writer.raw("],"); writer.key("partitions"); writer.raw("[")
            for (index, row) in rows.enumerated() {
                if index > 0 { writer.raw(",") }
                writer.raw("{"); writer.key("partition"); writer.raw(String(row.partition))
                writer.raw(","); writer.key("owner")
                if let owner = row.owner { writer.string(owner) } else { writer.raw("null") }
                writer.raw(","); writer.key("log_sequence"); writer.raw(String(row.logSequence))
                writer.raw(","); writer.key("applied_sequence"); writer.raw(row.applied.map(String.init) ?? "null")
                writer.raw(","); writer.key("lag"); writer.raw(row.lag.map(String.init) ?? "null")
                writer.raw(","); writer.key("snapshot_sequence"); writer.raw(row.snapshot.map(String.init) ?? "null")
                writer.raw("}")
            }
            writer.raw("],"); writer.key("unowned"); writer.raw("[" + rows.filter { $0.owner == nil }.map { String($0.partition) }.joined(separator: ",") + "]")
            writer.raw("}")
            return writer.output
        }

        static func text(rows: [Row], nodes: [String]) -> String {
            var lines = "\(nodes.count) live node(s), \(rows.count) partitions, \(rows.filter { $0.owner == nil }.count) without an owner\n"
            for node in nodes { lines += "  \(node): \(owned(by: node, rows).count) partition(s)\n" }
            let table = [["PARTITION", "OWNER", "LOG SEQUENCE", "APPLIED", "LAG", "SNAPSHOT"]] + rows.map { row in
                [PartitionMap.name(row.partition), row.owner ?? "(none)", String(row.logSequence),
                 row.applied.map(String.init) ?? "-", row.lag.map(String.init) ?? "-", row.snapshot.map(String.init) ?? "-"]
            }
            return lines + tableText(table).dropLast()
        }
    }
}
