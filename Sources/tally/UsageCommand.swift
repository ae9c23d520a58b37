import ArgumentParser
import Billing
import Metering
import Storage
import TallyConfiguration
import UsageQuery

struct UsageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Show a customer's usage aggregates for a billing period.",
        discussion: """
            Reads the store directly, so it works while `tally serve` runs. Lists every configured
            meter (a meter without usage shows 0), split by group where the meter has group_by.

            With --window, usage over time instead: the range [--from, --to) split into hour, day or
            month windows in --tz (an IANA zone, default UTC; days and months follow its DST
            changes), every window listed (0 without usage), and each meter's total over the range.
            --from and --to are RFC 3339 times or dates (midnight in --tz) on window edges.

            Examples:
              tally usage --customer cus_42
              tally usage --customer cus_42 --period 2026-11 --json
              tally usage --customer cus_42 --from 2026-11-01 --to 2026-12-01 --window day --meter tokens --csv
              tally usage --customer cus_42 --from 2026-11-14T00:00:00Z --to 2026-11-15T00:00:00Z --window hour --json
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(name: .long, help: "The customer id.")
    var customer: String

    @Option(name: .long, help: ArgumentHelp("The period: YYYY-MM, YYYY-MM-DD or YYYY; default the current one.", valueName: "period"))
    var period: String?

    @Flag(name: .long, help: "Print JSON: {customer, period:{start,end}, meters:[{meter, aggregation, group, quantity}]}; with --window: {from, to, window, tz, meters:[{meter, aggregation, customer, group, windows:[{start, end, quantity}], total}]}.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Usage over time: split [--from, --to) into windows of this length.", valueName: "hour|day|month"))
    var window: String?

    @Option(name: .long, help: ArgumentHelp("With --window: the range's start, RFC 3339 or a date, on a window edge.", valueName: "time"))
    var from: String?

    @Option(name: .long, help: ArgumentHelp("With --window: the range's end (exclusive), RFC 3339 or a date, on a window edge.", valueName: "time"))
    var to: String?

    @Option(name: .long, help: ArgumentHelp("With --window: only this meter.", valueName: "meter"))
    var meter: String?

    @Option(name: .customLong("group-by"), help: ArgumentHelp("With --window: one series per value of this group_by property (repeatable).", valueName: "key"))
    var groupBy: [String] = []

    @Option(name: .long, help: ArgumentHelp("With --window: the time zone of day and month edges and of the printed times (IANA name).", valueName: "zone"))
    var tz: String?

    @Flag(name: .long, help: "With --window: print CSV: meter,customer,group,start,end,quantity, one row per window.")
    var csv = false

    func run() throws {
        try checkArguments()
        let config = try options.loadConfig()
        // What can be wrong without the store is said before the store is opened (or asked of its owner).
        if let window {
            _ = try windowedQuery(window, config: config)
        } else if let period {
            _ = try resolvePeriod(period, config: config)
        }
        print(try CustomerRead.output(command: "usage", customer: customer, options: options, config: config) { store in
            try render(config: config, store: store)
        }, terminator: "")
    }

    /// The options that go together, checked before anything is read.
    func checkArguments() throws {
        if window != nil {
            guard period == nil else { throw CommandFailure("--period and --window do not go together: give the range with --from and --to") }
            guard !(json && csv) else { throw CommandFailure("--json and --csv do not go together: pick one") }
            guard from != nil, to != nil else { throw CommandFailure("--window needs --from and --to (RFC 3339 times or dates; --to is exclusive)") }
        } else {
            guard from == nil, to == nil, meter == nil, groupBy.isEmpty, tz == nil, !csv else {
                throw CommandFailure("--from, --to, --meter, --group-by, --tz and --csv go with --window (hour, day or month); without it, usage is shown per billing period (--period)")
            }
        }
    }

    /// What the command prints, read from `store` (the customer's store: on a cluster node, its partition's).
    func render(config: TallyConfig, store: TallyStore) throws -> String {
        try checkArguments()
        if let window { return try renderWindowed(window, config: config, store: store) }
        let interval = try period.map { try resolvePeriod($0, config: config) } ?? config.billing.period.interval(containing: .now())
        let records: [UsageRecord]
        do {
            records = try store.usage(customer: customer, periodStart: interval.start)
        } catch {
            throw CommandFailure(error.message)
        }
        let report = UsageReport(config: config, customer: customer, period: interval, records: records)
        if json { return report.json + "\n" }
        return "customer \(customer), period \(interval.label) [\(interval.start.rfc3339) – \(interval.end.rfc3339))\n"
            + tableText([["METER", "AGGREGATION", "GROUP", "QUANTITY", "EVENTS"]] + report.rows.map { row in
                [row.meter, row.aggregation, row.group.map { "\($0.property)=\($0.value)" }.joined(separator: ","),
                 row.quantity.description, String(row.eventCount)]
            })
    }
}

extension UsageCommand {
    /// `--window`: the usage-over-time query, checked against the config (no store needed).
    func windowedQuery(_ windowText: String, config: TallyConfig) throws -> UsageQuery {
        guard let from, let to else { throw CommandFailure("--window needs --from and --to (RFC 3339 times or dates; --to is exclusive)") }
        do {
            let zone = try WindowPlan.timeZone(tz)
            let plan = try WindowPlan(from: try WindowPlan.parseTime(from, name: "--from", in: zone),
                                      to: try WindowPlan.parseTime(to, name: "--to", in: zone),
                                      window: try UsageWindow.parse(windowText), timeZone: zone)
            let meters = try meter.map { [try UsageQuery.meter($0, in: config.meters)] } ?? config.meters
            return try UsageQuery(plan: plan, meters: meters, groupBy: groupBy)
        } catch let error as UsageQueryError {
            throw CommandFailure(error.message)
        }
    }

    /// `--window`: the usage-over-time query's output.
    func renderWindowed(_ windowText: String, config: TallyConfig, store: TallyStore) throws -> String {
        let query = try windowedQuery(windowText, config: config)
        let result: UsageQueryResult
        do {
            result = try query.run(store: store, customers: .only([customer]))
        } catch {
            throw CommandFailure(error.message)
        }
        if json { return UsageQueryFormat.json(result) + "\n" }
        if csv { return UsageQueryFormat.csv(result) }
        do {
            let plan = result.plan
            var text = "customer \(customer), \(plan.window.rawValue) windows in \(plan.zoneName) [\(WindowPlan.format(plan.from, in: plan.timeZone)) – \(WindowPlan.format(plan.to, in: plan.timeZone)))\n"
            var rows = [["METER", "GROUP", "START", "END", "QUANTITY"]]
            for series in result.series {
                let group = series.group.map { "\($0.property)=\($0.value)" }.joined(separator: ",")
                for (index, quantity) in series.quantities.enumerated() {
                    rows.append([series.meter, group, WindowPlan.format(Timestamp(nanosecondsSinceEpoch: plan.edges[index]), in: plan.timeZone),
                                 WindowPlan.format(Timestamp(nanosecondsSinceEpoch: plan.edges[index + 1]), in: plan.timeZone), quantity.description])
                }
                rows.append([series.meter, group, "total", "", series.total.description])
            }
            text += tableText(rows)
            return text
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
