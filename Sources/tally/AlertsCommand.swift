import ArgumentParser
import Foundation
import Metering
import Storage

struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "Show fired usage-limit alerts, newest first; --follow prints new ones as they fire.",
        discussion: """
            Each alert is one JSON object: {id, customer, limit_id, meter, used, limit, percent,
            action, period_start, resets_at, fired_at}. Reads the store (works while `tally serve` runs).

            Examples:
              tally alerts --customer cus_42
              tally alerts --follow
            """
    )

    @OptionGroup var options: StoreOptions
    @Option(help: "Only this customer's alerts.") var customer: String?
    @Option(help: "At most this many (default 50).") var limit = 50
    @Flag(help: "Keep running and print alerts as they fire (oldest first), until interrupted.") var follow = false

    func run() throws {
        let config = try options.loadConfig()
        let store: TallyStore
        do {
            store = try options.openStore(config, access: .readOnly)
        } catch {
            throw CommandFailure(error.message)
        }
        do {
            let recent = try store.recentAlerts(customer: customer, limit: max(1, limit))
            guard follow else {
                for alert in recent { print(alert.json) }
                return
            }
            for alert in recent.reversed() { print(alert.json) }
            var last = recent.first?.sequence ?? 0
            if recent.isEmpty { last = try store.recentAlerts(limit: 1).first?.sequence ?? 0 }
            while true {
                for alert in try store.alerts(after: last, limit: 1000) {
                    last = alert.sequence
                    if customer == nil || alert.customer == customer { print(alert.json) }
                }
                FileHandle.standardOutput.synchronizeFile()
                usleep(250_000)
            }
        } catch {
            throw CommandFailure(error.message)
        }
    }
}
