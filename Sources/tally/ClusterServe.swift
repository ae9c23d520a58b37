import Cluster
import Foundation
import HTTPAPI
import Ingest
import Limits
import Logging
import Metrics
import NATS
import Prometheus
import ServiceLifecycle
import Storage
import TallyConfiguration

/// `tally serve` with a `cluster:` section: one node of a cluster on NATS JetStream.
enum ClusterServe {
    static func run(config: TallyConfig, cluster: ClusterSettings, storeConfiguration: TallyStore.Configuration, logger: Logger) async throws {
        let map = try PartitionMap(count: cluster.partitions)
        var metricsServer: MetricsServer?
        if let listen = cluster.metricsListen {
            guard let address = HTTPListenAddress(listen) else {
                throw CommandFailure("cluster.metrics_listen '\(listen)' is not HOST:PORT: write e.g. 127.0.0.1:9464")
            }
            // One Prometheus registry for every swift-metrics instrument, served on /metrics; bootstrapped
            // before any instrument is made (the recorder's are made with it).
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(DocumentedPrometheusFactory(registry: registry))
            metricsServer = MetricsServer(host: address.host, port: address.port, registry: registry, logger: Logger(label: "tally.metrics"))
        }
        let root = config.store.path
        try checkRoot(root, cluster: cluster)
        let connection: NATSConnection
        do {
            connection = try NATSConnection(servers: cluster.natsURLs, name: "tally-\(cluster.node)")
        } catch {
            throw CommandFailure("cannot reach NATS at \(cluster.natsURLs.joined(separator: ", ")): \(error.message)")
        }
        let failover = Duration.nanoseconds(cluster.failoverNanoseconds)
        let stream = try connection.jetStream(timeout: .seconds(5))
        // A JetStream cluster that is starting answers "temporarily unavailable" until it has a leader.
        let (log, snapshots, cursors, buckets) = try await retrying(logger: logger) {
            (try PartitionLog(stream: stream, replicas: cluster.replicas),
             try PartitionSnapshots(stream: stream, replicas: cluster.replicas),
             try AlertCursors(on: stream, replicas: cluster.replicas),
             try PartitionOwnership.buckets(on: stream, failover: failover, replicas: cluster.replicas))
        }
        let ownership = try PartitionOwnership(node: cluster.node, partitions: map, leases: buckets.leases, nodes: buckets.nodes)
        let recorder = ClusterRecorder(node: cluster.node, map: map, log: log, snapshots: snapshots, root: root, storeConfiguration: storeConfiguration,
                                       logger: Logger(label: "tally.cluster"))
        if !config.limits.isEmpty {
            recorder.makeLimitEvaluator = { CommitLimitEvaluator(config: config) }
        }
        let onDelivery = DocumentedPrometheusFactory.countingAlertDeliveries()
        recorder.makeCompanion = { partition, store in
            try PartitionAlerts.start(partition: partition, store: store, settings: config.alerts, cursors: cursors,
                                      onDelivery: onDelivery)
        }
        logger.info("cluster node starting", metadata: [
            "node": "\(cluster.node)", "partitions": "\(cluster.partitions)", "replicas": "\(cluster.replicas)", "failover": "\(failover)",
        ])
        let daemon = IngestDaemon(
            config: config, store: nil, makeRecorder: { recorder },
            makeSubmitter: { writer in ClusterRouter(writer: writer, recorder: recorder, connection: connection) },
            socketPath: config.ingest.socket, logger: logger,
            frontEnds: { [metricsServer] writer, _ in
                [metricsServer].compactMap { $0 } + [ClusterNode(ownership: ownership, recorder: recorder, writer: writer, roundInterval: failover / 4,
                             snapshotInterval: .nanoseconds(cluster.snapshotIntervalNanoseconds),
                             connection: connection,
                             readAnswer: { request, store in CustomerRead.answer(request, store: store, config: config) },
                             logger: Logger(label: "tally.cluster"))]
            })
        let group = ServiceGroup(configuration: .init(services: [.init(service: daemon)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await ServeCommand.run(group)
        withExtendedLifetime(connection) {}
    }

    /// The store directory of a node remembers the partition count it was made with: another count
    /// would put customers in other partitions, so it is refused.
    static func checkRoot(_ root: String, cluster: ClusterSettings) throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let marker = root + "/cluster"
        let expected = "partitions \(cluster.partitions)\n"
        if let existing = try? String(contentsOfFile: marker, encoding: .utf8) {
            guard existing == expected else {
                throw CommandFailure("the store \(root) belongs to a cluster of \(existing.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?") partitions, not \(cluster.partitions): cluster.partitions is fixed for a cluster's life; use that value, or another --store")
            }
            return
        }
        try expected.write(toFile: marker, atomically: true, encoding: .utf8)
    }

    static func retrying<T>(logger: Logger, _ body: () throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                return try body()
            } catch let error as ClusterError {
                guard ContinuousClock.now < deadline else { throw CommandFailure(error.message) }
                logger.notice("NATS JetStream is not ready; retrying", metadata: ["error": "\(error.message)"])
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}
