import ArgumentParser
import TallyConfiguration
import Metering

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a config file and list every mistake with its line.",
        discussion: """
            Exits 0 and prints a summary when the file is valid; otherwise prints one line per problem
            (FILE:LINE:COLUMN: key: what is wrong and what to write instead) and exits 1.

            Example:
              tally check-config config/tally.yaml
            """
    )

    @Argument(help: ArgumentHelp("The config file.", valueName: "file"))
    var file: String = "config/tally.yaml"

    func run() throws {
        do {
            let config = try ConfigLoader.load(path: file)
            let meters = config.meters.map { "\($0.code) (\($0.aggregation.rawValue))" }.joined(separator: ", ")
            print("\(file): OK")
            print("  meters: \(meters)")
            print("  billing period: \(config.billing.period.kind.rawValue), rounding \(config.billing.rounding.rawValue)")
            if !config.plans.isEmpty {
                let plans = config.plans.map { "\($0.code) (\($0.currency), \($0.prices.count) prices)" }.joined(separator: ", ")
                print("  plans: \(plans); default plan: \(config.defaultPlan ?? "none")")
            }
            print("  store: \(config.store.path), socket: \(config.ingest.socket)")
            if !config.limits.isEmpty { print("  limits: \(config.limits.map(\.id).joined(separator: ", "))") }
            print("  alerts: log \(config.alerts.log ?? "off"), \(config.alerts.webhooks.count) webhooks")
            if let listen = config.http.listen { print("  http: \(listen), \(config.http.apiKeySHA256.count + config.http.apiKeys.count) api keys") }
            if let cluster = config.cluster {
                print("  cluster: node \(cluster.node), \(cluster.partitions) partitions, \(cluster.replicas) replicas, failover \(Double(cluster.failoverNanoseconds) / 1e9)s, NATS \(cluster.natsURLs.joined(separator: ", "))")
            }
            for section in config.ignoredSections {
                print("  note: '\(section)' is read but not used by this version of tally")
            }
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
    }
}
