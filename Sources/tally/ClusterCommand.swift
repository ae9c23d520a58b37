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
            abstract: "Show the live nodes, every partition's owner, its log position and the owner's lag.",
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

        @Flag(name: .long, help: "Print JSON: {nodes:[{node, partitions}], partitions:[{partition, owner, log_sequence, applied_sequence, lag}], unowned}; with --customer {customer, partition, owner}.")
        var json = false

        @Option(name: .long, help: "Only this customer's partition and its owner (where to read its usage).")
        var customer: String?

        func run() throws {
            let config = try options.loadConfig()
            guard let cluster = config.cluster else {
                throw CommandFailure("the config has no cluster: section: this store is single-node (see README, Cluster mode)")
            }
            do {
                let map = try PartitionMap(count: cluster.partitions)
                let stream = try NATSConnection(servers: cluster.natsURLs, name: "tally-status").jetStream()
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
                var rows: [(partition: Int, owner: String?, logSequence: UInt64, applied: UInt64?)] = []
                for partition in 0..<map.count {
                    let owner = owners[partition]
                    rows.append((partition, owner, try log.lastSequence(of: partition), owner.flatMap { nodes[$0]?.appliedSequences[partition] }))
                }
                print(json ? Self.json(rows: rows, nodes: nodes, owners: owners) : Self.text(rows: rows, nodes: nodes, owners: owners))
            } catch let error as ClusterError {
                throw CommandFailure(error.message)
            } catch let error as NATSError {
                throw CommandFailure("cannot reach NATS at \(cluster.natsURLs.joined(separator: ", ")): \(error.message)")
            }
        }

        private static func owned(by node: String, _ owners: [String?]) -> [Int] {
            owners.indices.filter { owners[$0] == node }
        }

        static func json(rows: [(partition: Int, owner: String?, logSequence: UInt64, applied: UInt64?)], nodes: [String: NodeStatus],
                         owners: [String?]) -> String {
            var writer = JSONWriter()
            writer.raw("{"); writer.key("nodes"); writer.raw("[")
            for (index, node) in nodes.keys.sorted().enumerated() {
                if index > 0 { writer.raw(",") }
                writer.raw("{"); writer.key("node"); writer.string(node)
                writer.raw(","); writer.key("partitions"); writer.raw("[" + owned(by: node, owners).map(String.init).joined(separator: ",") + "]")
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
                writer.raw(","); writer.key("lag"); writer.raw(row.applied.map { String(row.logSequence >= $0 ? row.logSequence - $0 : 0) } ?? "null")
                writer.raw("}")
            }
            writer.raw("],"); writer.key("unowned"); writer.raw("[" + rows.filter { $0.owner == nil }.map { String($0.partition) }.joined(separator: ",") + "]")
            writer.raw("}")
            return writer.output
        }

        static func text(rows: [(partition: Int, owner: String?, logSequence: UInt64, applied: UInt64?)], nodes: [String: NodeStatus],
                         owners: [String?]) -> String {
            var lines = ["\(nodes.count) live node(s), \(rows.count) partitions, \(rows.filter { $0.owner == nil }.count) without an owner"]
            for node in nodes.keys.sorted() {
                lines.append("  \(node): \(owned(by: node, owners).count) partition(s)")
            }
            lines.append("PARTITION  OWNER        LOG SEQUENCE  APPLIED  LAG")
            for row in rows {
                let applied = row.applied.map(String.init) ?? "-"
                let lag = row.applied.map { String(row.logSequence >= $0 ? row.logSequence - $0 : 0) } ?? "-"
                lines.append(PartitionMap.name(row.partition).padding(toLength: 11, withPad: " ", startingAt: 0)
                    + (row.owner ?? "(none)").padding(toLength: 13, withPad: " ", startingAt: 0)
                    + String(row.logSequence).padding(toLength: 14, withPad: " ", startingAt: 0)
                    + applied.padding(toLength: 9, withPad: " ", startingAt: 0) + lag)
            }
            return lines.joined(separator: "\n")
        }
    }
}
