import ArgumentParser
import Cluster
import Foundation
import Logging
import TallyConfiguration
import Metering
import Storage

/// Options shared by every command that reads the config or touches the store or the daemon.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The config file.", valueName: "file"))
    var config: String = "config/tally.yaml"

    @Option(name: .long, help: ArgumentHelp("The store directory (overrides store.path).", valueName: "path"))
    var store: String?

    @Option(name: .long, help: ArgumentHelp("The ingest socket (overrides ingest.socket).", valueName: "path"))
    var socket: String?

    /// Loads the config, applies the overrides, or fails with every problem listed.
    func loadConfig() throws -> TallyConfig {
        var config: TallyConfig
        do {
            config = try ConfigLoader.load(path: self.config)
        } catch {
            throw CommandFailure("the config has problems:\n\(error.description)\nFix them (`tally check-config \(self.config)` lists them again) and retry.")
        }
        if let store { config.store.path = store }
        if let socket { config.ingest.socket = socket }
        return config
    }

    /// Opens the store for reading: works while `tally serve` writes to it.
    func openStoreForReading(_ config: TallyConfig) throws(StoreError) -> TallyStore {
        try openStore(config, access: .readOnly)
    }

    /// Opens the store that holds `customer` for reading: the store itself, or in cluster mode
    /// the store of the customer's partition on this node (`<store>/partitions/NNNN`).
    func openStoreForReading(_ config: TallyConfig, customer: String) throws(StoreError) -> TallyStore {
        guard let cluster = config.cluster else { return try openStoreForReading(config) }
        guard let map = try? PartitionMap(count: cluster.partitions) else { throw StoreError(.notFound, "cluster.partitions is out of range") }
        let partition = map.partition(of: customer)
        var partitionConfig = config
        partitionConfig.store.path = ClusterRecorder.storePath(root: config.store.path, partition: partition)
        guard FileManager.default.fileExists(atPath: partitionConfig.store.path + "/data.mdb") else {
            throw StoreError(.notFound, "customer \(customer) is in partition \(partition), which node \(cluster.node) has never served: run this on the node that owns it (`tally cluster status` shows the owners)")
        }
        return try openStoreForReading(partitionConfig)
    }

    /// Opens the store: `.readOnly` and `.settings` work while `tally serve` runs.
    func openStore(_ config: TallyConfig, access: TallyStore.Access) throws(StoreError) -> TallyStore {
        if config.cluster != nil, FileManager.default.fileExists(atPath: config.store.path + "/cluster") {
            let command = CommandLine.arguments.dropFirst().first { !$0.hasPrefix("-") } ?? "this command"
            throw StoreError(.notFound, "\(config.store.path) is a cluster node's store (one store per partition): `tally \(command)` does not work over a cluster yet; usage, estimate, rate and cluster status do (see README, Cluster mode)")
        }
        return try TallyStore(
            path: config.store.path,
            configuration: .init(config),
            access: access,
            logger: Logger(label: "tally.store"))
    }
}

/// A command failed for a reason the user can act on; ArgumentParser prints the message and exits 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// Sets up logging on standard error for the executable (libraries only take a `Logger`).
enum LoggingSetup {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}


/// Writes to standard error (progress, warnings).
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

extension TallyStore.Configuration {
    /// What the store needs of `config`: its meters, billing period and `store.max_size`.
    init(_ config: TallyConfig) {
        self.init(meters: config.meters, billingPeriod: config.billing.period, maximumSize: config.store.maxSizeBytes)
    }
}
