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
        let rows = Self.rows(config: config, records: records)
        if json {
            var writer = JSONWriter()
            writer.raw("{")
            writer.key("customer"); writer.string(customer)
            writer.raw(","); writer.key("period"); writer.raw("{")
            writer.key("start"); writer.string(interval.start.rfc3339)
            writer.raw(","); writer.key("end"); writer.string(interval.end.rfc3339)
            writer.raw("},"); writer.key("meters"); writer.raw("[")
            for (index, row) in rows.enumerated() {
                if index > 0 { writer.raw(",") }
                writer.raw("{"); writer.key("meter"); writer.string(row.meter)
                writer.raw(","); writer.key("aggregation"); writer.string(row.aggregation)
                writer.raw(","); writer.key("group"); writer.raw("{")
                for (groupIndex, entry) in row.group.enumerated() {
                    if groupIndex > 0 { writer.raw(",") }
                    writer.key(entry.property); writer.string(entry.value)
                }
                writer.raw("},"); writer.key("quantity"); writer.string(row.quantity.description)
                writer.raw("}")
            }
            writer.raw("]}")
            print(writer.output)
        } else {
            print("customer \(customer), period \(interval.label) [\(interval.start.rfc3339) – \(interval.end.rfc3339))")
            let table = [["METER", "AGGREGATION", "GROUP", "QUANTITY", "EVENTS"]] + rows.map { row in
                [row.meter, row.aggregation,
                 row.group.map { "\($0.property)=\($0.value)" }.joined(separator: ","),
                 row.quantity.description, String(row.eventCount)]
            }
            let widths = (0..<5).map { column in table.map { $0[column].count }.max() ?? 0 }
            for line in table {
                print(line.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                    .joined(separator: "  ").trimmingTrailingSpaces())
            }
        }
    }

    struct Row {
        var meter: String
        var aggregation: String
        var group: [GroupValue]
        var quantity: ExactDecimal
        var eventCount: UInt64
    }

    /// Every configured meter in config order (0 without usage), then meters the config no longer has.
    static func rows(config: TallyConfig, records: [UsageRecord]) -> [Row] {
        var rows: [Row] = []
        for meter in config.meters {
            let matching = records.filter { $0.meter == meter.code }
            if matching.isEmpty {
                rows.append(Row(meter: meter.code, aggregation: meter.aggregation.rawValue, group: [], quantity: 0, eventCount: 0))
            }
            for record in matching {
                rows.append(Row(meter: meter.code, aggregation: meter.aggregation.rawValue, group: record.group,
                                quantity: record.quantity, eventCount: record.eventCount))
            }
        }
        let configured = Set(config.meters.map(\.code))
        for record in records where !configured.contains(record.meter) {
            rows.append(Row(meter: record.meter, aggregation: "unknown", group: record.group,
                            quantity: record.quantity, eventCount: record.eventCount))
        }
        return rows
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var result = self
        while result.last == " " { result.removeLast() }
        return result
    }
}
