import ArgumentParser
import Billing
import Metering
import Storage

struct UsageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Show a customer's usage aggregates for a billing period.",
        discussion: """
            Reads the store directly, so it works while `tally serve` runs. Lists every configured
            meter (a meter without usage shows 0), split by group where the meter has group_by.

            Examples:
              tally usage --customer cus_42
              tally usage --customer cus_42 --period 2026-11 --json
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(name: .long, help: "The customer id.")
    var customer: String

    @Option(name: .long, help: ArgumentHelp("The period: YYYY-MM, YYYY-MM-DD or YYYY; default the current one.", valueName: "period"))
    var period: String?

    @Flag(name: .long, help: "Print JSON: {customer, period:{start,end}, meters:[{meter, aggregation, group, quantity}]}.")
    var json = false

    func run() throws {
        let config = try options.loadConfig()
        let interval = try period.map { try resolvePeriod($0, config: config) } ?? config.billing.period.interval(containing: .now())
        let records: [UsageRecord]
        do {
            records = try options.openStoreForReading(config).usage(customer: customer, periodStart: interval.start)
        } catch {
            throw CommandFailure(error.message)
        }
        let report = UsageReport(config: config, customer: customer, period: interval, records: records)
        if json {
            print(report.json)
        } else {
            print("customer \(customer), period \(interval.label) [\(interval.start.rfc3339) – \(interval.end.rfc3339))")
            printTable([["METER", "AGGREGATION", "GROUP", "QUANTITY", "EVENTS"]] + report.rows.map { row in
                [row.meter, row.aggregation, row.group.map { "\($0.property)=\($0.value)" }.joined(separator: ","),
                 row.quantity.description, String(row.eventCount)]
            })
        }
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var result = self
        while result.last == " " { result.removeLast() }
        return result
    }
}
