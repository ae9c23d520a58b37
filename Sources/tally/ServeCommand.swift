import ArgumentParser
import Foundation
import Ingest
import Limits
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

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("'\(logLevel)' is not a log level: use trace, debug, info, notice, warning, error or critical")
        }
    }

    func run() async throws {
        LoggingSetup.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info)
        let logger = Logger(label: "tally")
        let config = try options.loadConfig()
        for section in config.ignoredSections {
            logger.warning("config section is read but not used by this version", metadata: ["section": "\(section)"])
        }
        let store: TallyStore
        do {
            store = try TallyStore(
                path: config.store.path,
                configuration: .init(meters: config.meters, billingPeriod: config.billing.period, maximumSize: config.store.maxSizeBytes),
                access: .readWrite,
                logger: Logger(label: "tally.store"))
        } catch {
            throw CommandFailure(error.message)
        }
        let daemon = IngestDaemon(
            config: config, store: store, socketPath: config.ingest.socket, logger: logger,
            makeLimitEvaluator: { CommitLimitEvaluator(config: config) })
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: daemon)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch let error as IngestServerError {
            throw CommandFailure(error.message)
        } catch let error as StoreError {
            throw CommandFailure(error.message)
        }
    }
}
