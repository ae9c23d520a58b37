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
            abstract: "List every customer Tally knows (usage in any period, a plan or a limit) with its plan.",
            discussion: """
                Customers are in byte order of id, with the plan that prices the current period and
                where it comes from (assigned, config, default_plan, none). Without --limit or
                --cursor every customer is listed (JSON: [{customer, plan, source}]); with them, one
                page (JSON: {"data":[{"id","plan","plan_source"}],"has_more","next_cursor"}, as
                GET /v1/customers answers), and the table ends with the --cursor of the next page.

                Examples:
                  tally customers list --json
                  tally customers list --query cus_1 --plan pro
                  tally customers list --limit 100 --cursor 6375735f3432
                """
        )

        @OptionGroup var options: StoreOptions
        @Flag(name: .long, help: "Print JSON.") var json = false
        @Option(name: .long, help: ArgumentHelp("Customers a page, 1 to 100.", valueName: "n")) var limit: Int?
        @Option(name: .long, help: ArgumentHelp("Start after the page that printed this cursor.", valueName: "cursor")) var cursor: String?
        @Option(name: .long, help: ArgumentHelp("Only customers on this plan now.", valueName: "code")) var plan: String?
        @Option(name: .long, help: ArgumentHelp("Only customers whose id starts with this.", valueName: "prefix")) var query: String?

        func validate() throws {
            if let limit, !(1...100).contains(limit) { throw ValidationError("--limit must be from 1 to 100") }
            if let cursor, ListCursor.decode(cursor) == nil {
                throw ValidationError("--cursor '\(cursor)' is not a cursor tally printed: pass the next cursor of the previous page as it is")
            }
        }

        func run() throws {
            let config = try options.loadConfig()
            if let plan, !config.plans.contains(where: { $0.code == plan }) {
                let known = config.plans.map(\.code).joined(separator: ", ")
                throw CommandFailure("there is no plan '\(plan)' in the config; plans: \(known.isEmpty ? "none" : known)")
            }
            let period = config.billing.period.interval(containing: .now())
            let paged = limit != nil || cursor != nil
            var rows: [CustomerListing.Row] = []
            var hasMore = false
            do {
                let listing = CustomerListing(config: config, store: try options.openStore(config, access: .readOnly))
                var after = cursor.flatMap(ListCursor.decode)
                repeat {
                    let page = try listing.page(after: after, prefix: query ?? "", plan: plan, limit: limit ?? 100, period: period)
                    rows += page.rows
                    hasMore = page.hasMore
                    after = page.rows.last.map { Array($0.id.utf8) }
                } while !paged && hasMore
            } catch {
                throw CommandFailure(error.message)
            }
            let next = hasMore ? rows.last.map { ListCursor.encode(Array($0.id.utf8)) } : nil
            if json {
                var writer = JSONWriter()
                if paged {
                    writer.raw("{"); writer.key("data")
                }
                writer.raw("[")
                for (index, row) in rows.enumerated() {
                    if index > 0 { writer.raw(",") }
                    writer.raw("{"); writer.key(paged ? "id" : "customer"); writer.string(row.id)
                    writer.raw(","); writer.key("plan")
                    if let plan = row.plan { writer.string(plan) } else { writer.raw("null") }
                    writer.raw(","); writer.key(paged ? "plan_source" : "source"); writer.string(row.source.rawValue)
                    writer.raw("}")
                }
                writer.raw("]")
                if paged {
                    writer.raw(","); writer.key("has_more"); writer.raw(hasMore ? "true" : "false")
                    writer.raw(","); writer.key("next_cursor")
                    if let next { writer.string(next) } else { writer.raw("null") }
                    writer.raw("}")
                }
                print(writer.output)
            } else {
                printTable([["CUSTOMER", "PLAN", "SOURCE"]] + rows.map { [$0.id, $0.plan ?? "-", $0.source.rawValue] })
                if let next { print("more: --cursor \(next)") }
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
