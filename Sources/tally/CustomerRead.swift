import ArgumentParser
import Cluster
import Foundation
import NATS
import Storage
import TallyConfiguration

/// Commands that read one customer's data (`usage`, `estimate`) work the same from any node of a
/// cluster: they read this node's store when it owns the customer's partition, and otherwise ask
/// the owner over NATS (`ClusterReads`), which runs the same command against the partition's live
/// store and sends back what it prints.
enum CustomerRead {
    /// What the command prints for `customer`: `render` with the customer's store, here or at its owner.
    static func output(command: String, customer: String, options: StoreOptions, config: TallyConfig,
                       render: (TallyStore) throws -> String) throws -> String {
        guard let cluster = config.cluster else {
            return try render(try open { () throws(StoreError) in try options.openStoreForReading(config) })
        }
        let map = try PartitionMap(count: cluster.partitions)
        let partition = map.partition(of: customer)
        let local = ClusterRecorder.storePath(root: config.store.path, partition: partition) + "/data.mdb"
        return try ClusterAccess.run(cluster, client: "tally-\(command)", to: "find the owner of customer \(customer)'s partition") { connection, stream in
            let buckets = try PartitionOwnership.buckets(on: stream, failover: .nanoseconds(cluster.failoverNanoseconds), replicas: cluster.replicas)
            // A partition between owners (a fail-over, a hand-over), or whose owner just died and
            // still holds the lease, has a live owner again within the fail-over time.
            let deadline = ContinuousClock.now + .nanoseconds(cluster.failoverNanoseconds) + .seconds(10)
            var lastProblem = "customer \(customer) is in partition \(partition), which has no owner right now (a fail-over is under way, or no node runs)"
            while ContinuousClock.now < deadline {
                let table = try PartitionOwnership.table(leases: buckets.leases, nodes: buckets.nodes, partitions: map)
                let owner = table.owners[partition]
                // This node's own store only once its heartbeat says it serves the partition: a
                // partition it just claimed may still be opening (its store half made).
                if let owner, owner == cluster.node, table.nodes[owner]?.appliedSequences[partition] != nil,
                   FileManager.default.fileExists(atPath: local) {
                    return try render(try open { () throws(StoreError) in try options.openStoreForReading(config, customer: customer) })
                }
                if let owner {
                    let request = ClusterReadRequest(command: command, customer: customer, arguments: forwardedArguments(of: command))
                    do {
                        let reply = try ClusterReads.ask(request, owner: owner, connection: connection, timeout: .seconds(5))
                        if let output = reply.output { return output }
                        guard reply.code == "unavailable" else { throw CommandFailure(reply.error ?? "node \(owner) could not answer") }
                        lastProblem = reply.error ?? lastProblem
                    } catch let error as ClusterError where error.code == .nats {
                        // The owner does not answer (it died, or is cut off): its lease runs out, another node takes over.
                        lastProblem = error.message
                    }
                }
                Thread.sleep(forTimeInterval: 0.5)
            }
            throw CommandFailure("\(lastProblem): retry in a few seconds; `tally cluster status` shows the owners")
        }
    }

    private static func open(_ body: () throws(StoreError) -> TallyStore) throws -> TallyStore {
        do {
            return try body()
        } catch {
            throw CommandFailure(error.message)
        }
    }

    /// This process's arguments after `command`, without the options that name local files.
    static func forwardedArguments(of command: String, from arguments: [String] = CommandLine.arguments) -> [String] {
        guard let start = arguments.dropFirst().firstIndex(of: command) else { return [] }
        var forwarded: [String] = []
        var skipNext = false
        for argument in arguments[(start + 1)...] {
            if skipNext {
                skipNext = false
                continue
            }
            if ["--config", "--store", "--socket"].contains(argument) {
                skipNext = true
                continue
            }
            if ["--config=", "--store=", "--socket="].contains(where: argument.hasPrefix) { continue }
            forwarded.append(argument)
        }
        return forwarded
    }

    /// The owner's side: runs the request's command against the partition's store with this node's config.
    static func answer(_ request: ClusterReadRequest, store: TallyStore, config: TallyConfig) -> ClusterReadReply {
        do {
            switch request.command {
            case "usage":
                let command = try UsageCommand.parse(request.arguments)
                guard command.customer == request.customer else { return .failed("the read's customer and its --customer differ") }
                return .printed(try command.render(config: config, store: store))
            case "estimate":
                let command = try EstimateCommand.parse(request.arguments)
                guard command.customer == request.customer else { return .failed("the read's customer and its --customer differ") }
                return .printed(try command.render(config: config, store: store))
            default:
                return .failed("a cluster node answers usage and estimate for other nodes, not \(request.command)")
            }
        } catch let error as CommandFailure {
            return .failed(error.description)
        } catch {
            return .failed(UsageCommand.message(for: error))
        }
    }
}
