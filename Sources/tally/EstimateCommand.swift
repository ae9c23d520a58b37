import ArgumentParser
import Billing
import Metering
import Rating
import Storage
import TallyConfiguration

struct EstimateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "estimate",
        abstract: "What a customer's current period costs so far, and where it is heading.",
        discussion: """
            Reads the store directly (it works while `tally serve` runs) and reflects every
            acknowledged event. Per meter and group: quantity, amount so far, and the amount projected
            to the period's end (sums and counts at their run rate; max, min, latest and unique counts
            as they stand).

            Examples:
              tally estimate --customer cus_42
              tally estimate --customer cus_42 --json
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(name: .long, help: "The customer id.")
    var customer: String

    @Flag(name: .long, help: "Print JSON: {customer, period:{start,end}, currency, lines:[{meter, group, quantity, amount, projected_amount}], total, projected_total}.")
    var json = false

    func run() throws {
        let config = try options.loadConfig()
        print(try CustomerRead.output(command: "estimate", customer: customer, options: options, config: config) { store in
            try render(config: config, store: store)
        }, terminator: "")
    }

    /// What the command prints, read from `store` (the customer's store: on a cluster node, its partition's).
    func render(config: TallyConfig, store: TallyStore) throws -> String {
        let estimate: Estimate
        do {
            estimate = try Estimator(config: config, resolver: try PlanResolver(config: config, store: store))
                .estimate(customer: customer, store: store)
        } catch let error as StoreError {
            throw CommandFailure(error.message)
        }
        if json { return StatementFormat.json(estimate) + "\n" }
        let currency = estimate.currency?.code ?? "(no plan)"
        var text = "customer \(customer), period \(estimate.period.label), plan \(estimate.plan ?? "none"), currency \(currency)\n"
        let money = { (amount: ExactDecimal) in estimate.currency?.formatted(amount) ?? amount.description }
        var table = [["METER", "GROUP", "QUANTITY", "AMOUNT", "PROJECTED"]]
        for line in estimate.lines {
            table.append([line.meter, line.group.map { "\($0.property)=\($0.value)" }.joined(separator: ","),
                          line.quantity.description, money(line.amount), money(line.projectedAmount)])
        }
        table.append(["total", "", "", money(estimate.total), money(estimate.projectedTotal)])
        text += tableText(table)
        return text
    }
}

/// Prints rows as left-aligned columns.
func printTable(_ table: [[String]]) {
    print(tableText(table), terminator: "")
}

/// Rows as left-aligned columns, each line ending in a newline.
func tableText(_ table: [[String]]) -> String {
    guard let width = table.first?.count else { return "" }
    let widths = (0..<width).map { column in table.map { $0[column].count }.max() ?? 0 }
    return table.map { row in
        row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingTrailingSpaces() + "\n"
    }.joined()
}
