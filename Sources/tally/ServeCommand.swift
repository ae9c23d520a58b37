import ArgumentParser
import Foundation
import AlertDelivery
import Dashboard
import HTTPAPI
import Ingest
import Metrics
import Prometheus
import Limits
import LMDB
import Logging
import Metering
import ServiceLifecycle
import Storage

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the ingest daemon on the Unix socket.",
        discussion: """
            Listens on ingest.socket, records every event exactly once in the store, and answers each
            line after its group commit is durable. SIGTERM or SIGINT stops accepting, answers every
            line already read, commits and exits 0.

            Example:
              tally serve --config config/tally.yaml --store data --socket tally.sock
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: ArgumentHelp("Also serve the HTTP API on HOST:PORT (overrides http.listen).", valueName: "host:port"))
    var http: String?

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("'\(logLevel)' is not a log level: use trace, debug, info, notice, warning, error or critical")
        }
    }

    /// Set to 1, the daemon folds no usage buckets: `tally bench ingest --without-buckets` measures their cost.
    static let withoutBucketsVariable = "TALLY_BENCH_WITHOUT_BUCKETS"

    func run() async throws {
        Environment.preferHeapAllocations()
        LoggingSetup.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info)
        let logger = Logger(label: "tally")
        let config = try options.loadConfig()
        for section in config.ignoredSections {
            logger.warning("config section is read but not used by this version", metadata: ["section": "\(section)"])
        }
        var storeConfiguration = TallyStore.Configuration(config)
        if ProcessInfo.processInfo.environment[Self.withoutBucketsVariable] == "1" {
            storeConfiguration.writesUsageBuckets = false
            logger.warning("usage buckets are off (\(Self.withoutBucketsVariable)=1): events are not counted for usage over time; for benchmarks only")
        }
        if let cluster = config.cluster {
            try await ClusterServe.run(config: config, cluster: cluster, storeConfiguration: storeConfiguration, logger: logger)
            return
        }
        let store: TallyStore
        do {
            store = try TallyStore(
                path: config.store.path,
                configuration: storeConfiguration,
                access: .readWrite,
                logger: Logger(label: "tally.store"))
        } catch {
            throw CommandFailure(error.message)
        }
        let address: HTTPListenAddress? = try (http ?? config.http.listen).map { listen in
            guard let parsed = HTTPListenAddress(listen) else {
                throw CommandFailure("'\(listen)' is not HOST:PORT: write e.g. 127.0.0.1:8080 or [::1]:8080")
            }
            return parsed
        }
        // One Prometheus registry for every swift-metrics instrument; the HTTP API serves it on /metrics.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(DocumentedPrometheusFactory(registry: registry))
        let dispatcher = AlertDispatcher(
            store: store, settings: config.alerts, logger: Logger(label: "tally.alerts"),
            onDelivery: DocumentedPrometheusFactory.countingAlertDeliveries())
        let daemon = IngestDaemon(
            config: config, store: store, socketPath: config.ingest.socket, logger: logger,
            makeLimitEvaluator: { CommitLimitEvaluator(config: config) },
            onAlerts: { _ in dispatcher.notify() },
            frontEnds: { writer, parser in
                guard let address else { return [] }
                let dashboard = Dashboard(config: config, store: store, logger: Logger(label: "tally.dashboard"))
                return [HTTPAPIServer(config: config, store: store, writer: writer, parser: parser, host: address.host,
                                      port: address.port, logger: Logger(label: "tally.http"), metricsRegistry: registry,
                                      routeGroups: [dashboard])]
            })
        // Shut down last to first: the daemon (HTTP, socket, writer) first, then the dispatcher's last pass.
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: dispatcher), .init(service: daemon)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await Self.run(group)
    }

    /// Runs the daemon's services until they stop; a failure to listen or to open the store is a
    /// command failure with its message.
    static func run(_ group: ServiceGroup) async throws {
        do {
            try await group.run()
        } catch let error as IngestServerError {
            throw CommandFailure(error.message)
        } catch let error as StoreError {
            throw CommandFailure(error.message)
        }
    }
}
