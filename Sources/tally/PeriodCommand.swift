import ArgumentParser
import TallyConfiguration
import Metering
import Storage

struct PeriodCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "period",
        abstract: "Close billing periods, so that late events for them are answered period_closed.",
        discussion: "Examples:\n  tally period close 2026-11\n  tally period list",
        subcommands: [Close.self, List.self]
    )

    struct Close: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close a billing period that has ended.",
            discussion: """
                After closing, events whose time falls in the period are rejected with period_closed,
                so a statement produced by `tally rate` for it stays true. Works while `tally serve` runs.

                Example:
                  tally period close 2026-11
                """
        )

        @OptionGroup var options: StoreOptions
        @Argument(help: ArgumentHelp("The period: YYYY-MM, YYYY-MM-DD or YYYY.", valueName: "period"))
        var period: String

        func run() throws {
            let config = try options.loadConfig()
            let interval = try resolvePeriod(period, config: config)
            guard interval.end <= .now() else {
                throw CommandFailure("period \(interval.label) has not ended yet (it ends \(interval.end.rfc3339)); close it after it ends")
            }
            do {
                let store = try options.openStore(config, access: .settings)
                if try store.closePeriod(interval) {
                    print("closed period \(interval.label) [\(interval.start.rfc3339) – \(interval.end.rfc3339))")
                } else {
                    print("period \(interval.label) was already closed")
                }
            } catch {
                throw CommandFailure(error.message)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List closed periods.",
            discussion: "Example:\n  tally period list"
        )

        @OptionGroup var options: StoreOptions

        func run() throws {
            let config = try options.loadConfig()
            do {
                let closed = try options.openStore(config, access: .readOnly).closedPeriodList()
                if closed.isEmpty { print("no closed periods") }
                for period in closed {
                    print("\(period.label)  [\(period.start.rfc3339) – \(period.end.rfc3339))  closed \(period.closedAt.rfc3339)")
                }
            } catch {
                throw CommandFailure(error.message)
            }
        }
    }
}

/// Turns `2026-11`, `2026-11-22` or `2026` into the configured billing period containing it.
func resolvePeriod(_ text: String, config: TallyConfig) throws -> PeriodInterval {
    guard let interval = config.billing.period.interval(label: text) else {
        throw CommandFailure("'\(text)' is not a period: write YYYY-MM (2026-11), YYYY-MM-DD (2026-11-22) or YYYY (2026)")
    }
    return interval
}
