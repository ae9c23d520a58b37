import ArgumentParser
import Billing
import Foundation
import TallyConfiguration
import Metering
import Rating
import Storage

struct RerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerate",
        abstract: "Re-rate a past period from its events under another config, and show what changes.",
        discussion: """
            --config FILE is the config to re-rate under (a price change, a corrected
            meter); the store is its store.path, or --store. The original run is what
            `tally rate --period P` prints: the store's aggregates rated under
            --original-config (default config/tally.yaml). The re-rated run folds the
            period's stored events (archived by `tally archive` or still live) again
            under the meters of --config, as ingest would have, and rates them with
            its plans. Plan assignments come from the
            store. Nothing is written: the stored aggregates stay as they are.

            Prints per customer (every customer of either run, ids in byte order)
            the statement total before → after and each changed line, then the
            totals per currency. With --json: one object per customer with the
            re-rated statement and its differences, then a summary line. Amounts are
            rounded statement amounts; a difference is re-rated minus original.
            Both configs must give the period the same interval. Close the period
            first (`tally period close`), or events arriving meanwhile show as
            differences.

            Examples:
              tally rerate --period 2026-11 --config config/new-prices.yaml
              tally rerate --period 2026-11 --config fixed.yaml \\
                --original-config old.yaml --customer cus_42 --json
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(name: .long, help: ArgumentHelp("The period: YYYY-MM, YYYY-MM-DD or YYYY.", valueName: "period"))
    var period: String

    @Option(name: .long, help: ArgumentHelp("The config the original run rated with.", valueName: "file"))
    var originalConfig: String = "config/tally.yaml"

    @Option(name: .long, help: "Only this customer.")
    var customer: String?

    @Flag(name: .long, help: "Print one JSON object per customer, then a summary line (see README.md).")
    var json = false

    func run() throws {
        let config = try options.loadConfig()
        let original = try loadOriginalConfig()
        let interval = try resolvePeriod(period, config: config)
        let originalInterval = try resolvePeriod(period, config: original)
        guard originalInterval.start == interval.start, originalInterval.end == interval.end else {
            throw CommandFailure("period \(period) is [\(interval.start.rfc3339) – \(interval.end.rfc3339)) under \(options.config) but [\(originalInterval.start.rfc3339) – \(originalInterval.end.rfc3339)) under \(originalConfig): re-rating compares one period, so give both configs the same billing.period")
        }
        if let customer, customer.isEmpty || customer.utf8.count > 255 {
            throw CommandFailure("a customer id has 1 to 255 bytes")
        }
        do {
            let store = try options.openStore(config, access: .readOnly)
            try rerate(store: store, config: config, original: original, period: interval)
        } catch let error as StoreError {
            throw CommandFailure(error.message)
        } catch let error as DecimalOverflow {
            throw CommandFailure("an amount of period \(interval.label) is too large to compute: \(error)")
        }
    }

    private func loadOriginalConfig() throws -> TallyConfig {
        do {
            return try ConfigLoader.load(path: originalConfig)
        } catch {
            throw CommandFailure("the original config has problems:\n\(error.description)\nPass --original-config with the config `tally rate` priced the period with (default config/tally.yaml).")
        }
    }

    private func rerate(store: TallyStore, config: TallyConfig, original: TallyConfig, period: PeriodInterval) throws {
        var originals: [String: Statement] = [:]
        _ = try RatingRun(config: original, period: period).run(store: store, customer: customer) { originals[$0.customer] = $0 }

        var aggregator = EventAggregator(meters: config.meters, period: period, store: store)
        try Self.forEachEvent(in: period, from: store) { stored in
            if let customer, stored.event.customer != customer { return }
            aggregator.add(stored)
        }
        if aggregator.overflowingEvents > 0 {
            printError("warning: \(aggregator.overflowingEvents) events of period \(period.label) would overflow their aggregate under \(options.config) and are not counted, as ingest would have rejected them")
        }
        let usage = aggregator.usageByCustomer()
        if let customer {
            try checkKnown(customer, store: store, usage: usage, configs: [config, original], period: period)
        }
        var rerated: [String: Statement] = [:]
        _ = try RatingRun(config: config, period: period).run(store: store, usage: usage, customer: customer) { rerated[$0.customer] = $0 }

        let empty = StatementBuilder(config: config)
        let customers = Set(originals.keys).union(rerated.keys).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var summary = RerateSummary(period: period)
        let output = try StatementOutput(directory: nil, format: "ndjson")
        if !json {
            output.append(bytes: Array("period \(period.label) [\(period.start.rfc3339) – \(period.end.rfc3339)): original from the stored usage under \(originalConfig), re-rated from \(aggregator.eventsInPeriod) events under \(options.config)\n\n".utf8))
        }
        for customer in customers {
            let difference = try StatementDifference(
                original: try originals[customer] ?? empty.statement(customer: customer, period: period, plan: nil, usage: []),
                rerated: try rerated[customer] ?? empty.statement(customer: customer, period: period, plan: nil, usage: []))
            try summary.add(difference)
            if json {
                output.append(bytes: Array((StatementFormat.json(difference) + "\n").utf8))
            } else {
                output.append(bytes: Array(Self.text(difference).utf8))
            }
            try output.flushIfFull()
        }
        if json {
            output.append(bytes: Array((try StatementFormat.json(summary) + "\n").utf8))
        } else {
            output.append(bytes: Array(try Self.text(summary).utf8))
        }
        try output.flush()
    }

    /// Calls `body` with every stored event whose time (its own, or when it was received) is in
    /// `period`, in commit order.
    ///
    /// The one place `rerate` reads events: archived (`tally archive`) and live, each once, in
    /// commit order (a period's events are either all archived, in sequence order, or all live).
    static func forEachEvent(in period: PeriodInterval, from store: TallyStore, _ body: (StoredEvent) -> Void) throws(StoreError) {
        do {
            try EventArchive(store: store).forEachEvent(from: period.start, to: period.end) { stored in
                body(stored)
                return true
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.unavailable, "cannot read the events of period \(period.label): \(error)")
        }
    }

    /// Fails unless `customer` has usage, events or a plan assignment in the period.
    private func checkKnown(_ customer: String, store: TallyStore, usage: [String: [UsageRecord]],
                            configs: [TallyConfig], period: PeriodInterval) throws {
        if usage[customer] != nil { return }
        if try !store.usage(customer: customer, periodStart: period.start).isEmpty { return }
        if try !store.planAssignments(customer: customer).isEmpty { return }
        if configs.contains(where: { $0.customers.contains { $0.customer == customer } }) { return }
        throw CommandFailure("customer '\(customer)' has no usage, no events and no plan assignment in period \(period.label): check the id (`tally customers list` lists customers)")
    }

    // MARK: Text

    /// A customer's header line and, when lines changed, a table of them.
    static func text(_ difference: StatementDifference) -> String {
        let currency = difference.currency
        let originalCurrency = difference.originalCurrency ?? currency
        let money = { (amount: ExactDecimal, currency: Currency?) in currency?.formatted(amount) ?? amount.description }
        let plan = change(difference.original.plan ?? "no plan", difference.rerated.plan ?? "no plan")
        let code = change(difference.originalCurrency?.code ?? "-", currency?.code ?? "-")
        var text = "\(difference.customer)  \(plan)  \(code)  \(money(difference.originalTotal, originalCurrency)) → \(money(difference.total, currency))"
        text += difference.isChanged ? "  (\(signed(difference.difference, currency)))\n" : "  (unchanged)\n"
        let changed = difference.lines.filter(\.isChanged)
        guard !changed.isEmpty else { return text }
        var table = [["", "METER", "GROUP", "QUANTITY", "AMOUNT", "DIFFERENCE"]]
        for line in changed {
            table.append(["", line.meter.isEmpty ? "(flat)" : line.meter,
                          line.group.map { "\($0.property)=\($0.value)" }.joined(separator: ","),
                          change(line.originalQuantity.description, line.quantity.description),
                          "\(money(line.originalAmount, originalCurrency)) → \(money(line.amount, currency))",
                          signed(line.difference, currency)])
        }
        return text + tableText(table)
    }

    /// The customer count and the totals per currency.
    static func text(_ summary: RerateSummary) throws(DecimalOverflow) -> String {
        var table = [["CURRENCY", "ORIGINAL", "RERATED", "DIFFERENCE"]]
        for total in try summary.totals() {
            let currency = Currency.named(total.currency)
            let money = { (amount: ExactDecimal) in currency?.formatted(amount) ?? amount.description }
            table.append([total.currency, money(total.original), money(total.rerated), signed(total.difference, currency)])
        }
        return "\n\(summary.customers) customers, \(summary.changed) changed\n" + (table.count > 1 ? tableText(table) : "")
    }

    /// "a" when both are equal, else "a → b".
    static func change(_ before: String, _ after: String) -> String {
        before == after ? after : "\(before) → \(after)"
    }

    /// A difference with its sign: "+3.00", "-0.50", "0.00".
    static func signed(_ amount: ExactDecimal, _ currency: Currency?) -> String {
        let text = currency?.formatted(amount) ?? amount.description
        return amount > 0 ? "+" + text : text
    }
}
