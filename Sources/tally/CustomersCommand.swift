import ArgumentParser
import Billing
import Metering
import Storage

struct CustomersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customers",
        abstract: "Assign plans to customers and list customers with their plans.",
        discussion: "Examples:\n  tally customers set-plan cus_42 starter\n  tally customers list",
        subcommands: [SetPlan.self, List.self]
    )

    struct SetPlan: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-plan",
            abstract: "Put a customer on a plan from a date on.",
            discussion: """
                Stored in the store (works while `tally serve` runs); it takes precedence over the
                config's customers list. A period is priced by the last plan assigned before its end,
                so a change during a period prices that whole period (no proration).

                Examples:
                  tally customers set-plan cus_42 starter
                  tally customers set-plan cus_42 pro --from 2026-12-01
                """
        )

        @OptionGroup var options: StoreOptions
        @Argument(help: "The customer id.") var customer: String
        @Argument(help: "A plan code from the config.") var plan: String
        @Option(name: .long, help: ArgumentHelp("When the plan starts: YYYY-MM-DD (UTC) or RFC 3339; default now.", valueName: "date"))
        var from: String?

        func run() throws {
            let config = try options.loadConfig()
            guard config.plans.contains(where: { $0.code == plan }) else {
                let known = config.plans.map(\.code).joined(separator: ", ")
                throw CommandFailure("there is no plan '\(plan)' in the config; plans: \(known.isEmpty ? "none (add one under plans:)" : known)")
            }
            guard !customer.isEmpty, customer.utf8.count <= 255 else {
                throw CommandFailure("a customer id has 1 to 255 bytes")
            }
            let start = try from.map(parseDate) ?? .now()
            do {
                try options.openStore(config, access: .settings).setPlan(customer: customer, plan: plan, from: start)
            } catch {
                throw CommandFailure(error.message)
            }
            print("\(customer) is on plan \(plan) from \(start.rfc3339)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List customers (with a plan or usage in the current period) and their plans.",
            discussion: "Example:\n  tally customers list --json"
        )

        @OptionGroup var options: StoreOptions
        @Flag(name: .long, help: "Print JSON: [{customer, plan, source}].") var json = false

        func run() throws {
            let config = try options.loadConfig()
            let period = config.billing.period.interval(containing: .now())
            var rows: [(customer: String, plan: String?, source: String)] = []
            do {
                let store = try options.openStore(config, access: .readOnly)
                let resolver = try PlanResolver(config: config, store: store)
                let stored = Dictionary(try store.allPlanAssignments().map { ($0.customer, $0.assignments) }, uniquingKeysWith: { a, _ in a })
                var customers = Set(resolver.assignedCustomers)
                try store.forEachUsage(periodStart: period.start) { customer, _ in customers.insert(customer) }
                for customer in customers.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                    let plan = resolver.plan(for: customer, in: period)
                    let source = stored[customer]?.contains { $0.from < period.end } == true ? "assigned"
                        : config.customers.contains { $0.customer == customer } ? "config"
                        : plan == nil ? "none" : "default_plan"
                    rows.append((customer, plan?.code, source))
                }
            } catch {
                throw CommandFailure(error.message)
            }
            if json {
                var writer = JSONWriter()
                writer.raw("[")
                for (index, row) in rows.enumerated() {
                    if index > 0 { writer.raw(",") }
                    writer.raw("{"); writer.key("customer"); writer.string(row.customer)
                    writer.raw(","); writer.key("plan")
                    if let plan = row.plan { writer.string(plan) } else { writer.raw("null") }
                    writer.raw(","); writer.key("source"); writer.string(row.source)
                    writer.raw("}")
                }
                writer.raw("]")
                print(writer.output)
            } else {
                printTable([["CUSTOMER", "PLAN", "SOURCE"]] + rows.map { [$0.customer, $0.plan ?? "-", $0.source] })
            }
        }
    }
}

/// `2026-12-01` (midnight UTC) or an RFC 3339 time.
func parseDate(_ text: String) throws -> Timestamp {
    if let time = Timestamp.parseRFC3339(text) { return time }
    let parts = text.split(separator: "-").compactMap { Int($0) }
    if parts.count == 3, text.count == 10, let date = Timestamp(year: parts[0], month: parts[1], day: parts[2]) {
        return date
    }
    throw CommandFailure("'\(text)' is not a date: write YYYY-MM-DD (2026-12-01) or an RFC 3339 time (2026-12-01T00:00:00Z)")
}
