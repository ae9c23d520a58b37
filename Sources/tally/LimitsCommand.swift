import ArgumentParser
import Billing
import Foundation
import Limits
import TallyConfiguration
import Metering
import Storage

struct LimitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limits",
        abstract: "Manage usage limits: thresholds on a period's amount or a meter's quantity.",
        discussion: """
            Limits in the config's limits: section apply too; these commands manage the ones kept
            in the store. They work while `tally serve` runs: the daemon picks changes up at its next
            group commit.

            Examples:
              tally limits add --customer cus_42 --amount 500 --action warning --notify-at 50,80,100
              tally limits add --plan starter --meter api_calls --quantity 1000000 --action disable
              tally limits list --customer cus_42
              tally limits remove lim_3f2a9c
            """,
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a limit for a customer or a plan.")

        @OptionGroup var options: StoreOptions
        @Option(help: "The customer the limit applies to.") var customer: String?
        @Option(help: "The plan whose customers the limit applies to (a default they can override).") var plan: String?
        @Option(help: "A limit on the period's amount, in the plan's currency.") var amount: String?
        @Option(help: "The meter of a quantity limit.") var meter: String?
        @Option(help: "A limit on the meter's quantity in the period.") var quantity: String?
        @Option(name: .customLong("balance-below"), help: "Alert (once per grant set) when the prepaid credit balance falls below this money amount.")
        var balanceBelow: String?
        @Option(name: .customLong("balance-percent-below"), help: "Alert when the balance falls below this percentage of the credits granted.")
        var balancePercentBelow: String?
        @Option(help: "warning, or disable (events are answered with blocked:true past 100%).") var action: String
        @Option(name: .customLong("notify-at"), help: "Percent steps that each fire one alert per period (default 100).") var notifyAt: String?
        @Option(help: "The limit's id (default: lim_ and random hex).") var id: String?

        func run() throws {
            let config = try options.loadConfig()
            let limit = try makeLimit(config: config)
            do {
                let store = try options.openStore(config, access: .settings)
                guard try store.addLimit(limit) else {
                    throw CommandFailure("a stored limit with id '\(limit.id)' exists already: pick another --id, or remove it first")
                }
            } catch let error as StoreError {
                throw CommandFailure(error.message)
            }
            print("added limit \(limit.id)")
        }

        func makeLimit(config: TallyConfig) throws -> UsageLimit {
            let scope: UsageLimit.Scope
            switch (customer, plan) {
            case (let customer?, nil):
                guard !customer.isEmpty, customer.utf8.count <= 255 else { throw CommandFailure("a customer id has 1 to 255 bytes") }
                scope = .customer(customer)
            case (nil, let plan?):
                guard config.plans.contains(where: { $0.code == plan }) else {
                    throw CommandFailure("there is no plan '\(plan)' in the config; plans: \(config.plans.map(\.code).joined(separator: ", "))")
                }
                scope = .plan(plan)
            default:
                throw CommandFailure("give exactly one of --customer and --plan")
            }
            let threshold: UsageLimit.Threshold
            switch (amount, meter, quantity, balanceBelow, balancePercentBelow) {
            case (nil, nil, nil, let balance?, nil):
                threshold = .balanceBelow(try Self.positiveDecimal(balance, "--balance-below"))
            case (nil, nil, nil, nil, let percent?):
                let value = try Self.positiveDecimal(percent, "--balance-percent-below")
                guard value <= 100 else { throw CommandFailure("--balance-percent-below is a percentage from above 0 to 100") }
                threshold = .balancePercentBelow(value)
            case (let amount?, nil, nil, nil, nil):
                threshold = .amount(try Self.positiveDecimal(amount, "--amount"))
            case (nil, let meter?, let quantity?, nil, nil):
                guard config.meters.contains(where: { $0.code == meter }) else {
                    throw CommandFailure("there is no meter '\(meter)' in the config; meters: \(config.meters.map(\.code).joined(separator: ", "))")
                }
                threshold = .quantity(meter: meter, try Self.positiveDecimal(quantity, "--quantity"))
            default:
                throw CommandFailure("give one of --amount, --meter and --quantity, --balance-below, --balance-percent-below")
            }
            guard let action = UsageLimit.Action(rawValue: action) else {
                throw CommandFailure("'\(action)' is not an action: use warning or disable")
            }
            var steps = [100]
            if notifyAt != nil, threshold.isBalance {
                throw CommandFailure("a balance limit fires once when the balance falls below it: leave out --notify-at")
            }
            if let notifyAt {
                let parsed = notifyAt.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil && (1...1000).contains($0!) }) else {
                    throw CommandFailure("--notify-at takes whole percents from 1 to 1000, separated by commas, e.g. 50,80,100")
                }
                steps = parsed.map { $0! }
                guard steps == steps.sorted(), Set(steps).count == steps.count else {
                    throw CommandFailure("--notify-at steps must increase, e.g. 50,80,100")
                }
            }
            var generator = SystemRandomNumberGenerator()
            let random: UInt64 = generator.next()
            let limitID = id ?? "lim_" + String(random & 0xFFFF_FFFF_FFFF, radix: 16)
            guard !limitID.isEmpty, limitID.utf8.count <= 128 else { throw CommandFailure("a limit id has 1 to 128 bytes") }
            guard !config.limits.contains(where: { $0.id == limitID }) else {
                throw CommandFailure("the config already has a limit with id '\(limitID)': pick another --id")
            }
            return UsageLimit(id: limitID, scope: scope, threshold: threshold, action: action, notifyAt: steps)
        }

        static func positiveDecimal(_ text: String, _ option: String) throws -> ExactDecimal {
            guard let value = ExactDecimal(text), !value.isNegative, !value.isZero, value.scale <= 12 else {
                throw CommandFailure("\(option) takes a decimal above 0 with at most 12 decimal places, e.g. 500 or 0.5")
            }
            return value
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List limits (config and stored).")

        @OptionGroup var options: StoreOptions
        @Option(help: "Only the limits that apply to this customer.") var customer: String?
        @Flag(help: "Print JSON lines.") var json = false

        func run() throws {
            let config = try options.loadConfig()
            var rows: [(limit: UsageLimit, source: String)]
            do {
                let store = try options.openStore(config, access: .readOnly)
                let stored = try store.storedLimits()
                if let customer {
                    let plan = try PlanLookup.plan(of: customer, config: config, store: store)
                    let storedIDs = Set(stored.map(\.id))
                    rows = LimitPolicy(config: config, storedLimits: stored).limits(for: customer, plan: plan)
                        .map { ($0, storedIDs.contains($0.id) ? "stored" : "config") }
                } else {
                    rows = config.limits.map { ($0, "config") } + stored.map { ($0, "stored") }
                }
            } catch {
                throw CommandFailure(error.message)
            }
            for row in rows {
                if json {
                    print(LimitFormat.json(row.limit, source: row.source))
                } else {
                    print(LimitFormat.text(row.limit, source: row.source))
                }
            }
            if rows.isEmpty, !json { print("no limits") }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a stored limit.")

        @OptionGroup var options: StoreOptions
        @Argument(help: "The limit's id.") var id: String

        func run() throws {
            let config = try options.loadConfig()
            if config.limits.contains(where: { $0.id == id }) {
                throw CommandFailure("'\(id)' is a limit from the config: remove it from the config's limits: section")
            }
            do {
                guard try options.openStore(config, access: .settings).removeLimit(id: id) else {
                    throw CommandFailure("there is no stored limit '\(id)': `tally limits list` shows them")
                }
            } catch let error as StoreError {
                throw CommandFailure(error.message)
            }
            print("removed limit \(id)")
        }
    }
}

enum PlanLookup {
    /// The plan code pricing `customer`'s current period.
    static func plan(of customer: String, config: TallyConfig, store: TallyStore) throws(StoreError) -> String? {
        let period = config.billing.period.interval(containing: .now())
        return try PlanResolver(config: config, store: store).plan(for: customer, in: period)?.code
    }
}

enum LimitFormat {
    static func json(_ limit: UsageLimit, source: String) -> String {
        var writer = JSONWriter()
        LimitJSON.append(limit, source: source, to: &writer)
        return writer.output
    }

    static func text(_ limit: UsageLimit, source: String) -> String {
        let owner = switch limit.scope {
        case .customer(let customer): "customer \(customer)"
        case .plan(let plan): "plan \(plan)"
        }
        let target = limit.threshold.meter.map { "\($0) quantity \(limit.threshold.value)" } ?? "amount \(limit.threshold.value)"
        return "\(limit.id)  \(owner)  \(target)  \(limit.action.rawValue)  notify at \(limit.notifyAt.map { "\($0)%" }.joined(separator: ","))  (\(source))"
    }
}
