import ArgumentParser
import Billing
import Credits
import Foundation
import Metering
import Rating
import Storage
import TallyConfiguration

struct CreditsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credits",
        abstract: "Prepaid credits: grants that usage burns down as it is acknowledged.",
        discussion: """
            A grant is money in the customer's plan currency. Each group commit covers the period's
            amount so far with the customer's active grants (lower --priority first, then the
            earliest expiry, then the oldest), so `tally estimate` shows credits_applied and
            amount_due for every acknowledged event. These commands work while `tally serve` runs.

            Examples:
              tally credits grant --customer cus_42 --amount 100 --reason "prepaid top-up"
              tally credits grant --customer cus_42 --amount 20 --priority -1 --expires 2027-01-01 --id promo-dec
              tally credits list --customer cus_42
              tally credits void promo-dec
              tally credits ledger --customer cus_42 --json
            """,
        subcommands: [Grant.self, List.self, Void.self, Ledger.self]
    )

    struct Grant: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grant credits to a customer (the same --id again changes nothing).")
        @OptionGroup var options: StoreOptions
        @Option(help: "The customer.") var customer: String
        @Option(help: "The money granted, in the customer's plan currency (e.g. 100 or 25.50).") var amount: String
        @Option(help: "Lower is used first (default 0).") var priority = 0
        @Option(help: "When it starts to cover usage: a date (midnight UTC) or an RFC 3339 time (default now).") var effective: String?
        @Option(help: "When it stops covering usage: a date or an RFC 3339 time.") var expires: String?
        @Option(help: "The grant's id (default: crd_ and random hex); granting it again is idempotent.") var id: String?
        @Option(help: "Why it was given.") var reason: String?
        @Flag(help: "Print the grant as JSON.") var json = false

        func run() throws {
            let config = try options.loadConfig()
            let effectiveAt = try effective.map(parseDate)
            let expiresAt = try expires.map(parseDate)
            do {
                let store = try options.openStore(config, access: .settings)
                let book = CreditBook(config: config, store: store)
                let grant = try book.grant(customer: customer, amount: amount, priority: priority, effective: effectiveAt, expires: expiresAt,
                                           id: id, reason: reason)
                let (stored, created) = try book.record(grant, comparingEffectiveAt: effectiveAt != nil)
                if json {
                    var writer = JSONWriter()
                    CreditFormat.append(stored, to: &writer)
                    print(writer.output)
                } else {
                    let amount = StatementFormat.money(stored.amount, Currency.named(stored.currency))
                    print("\(created ? "granted" : "already granted (nothing changed)"): \(stored.id) \(amount) \(stored.currency) to \(stored.customer)")
                }
            } catch let error as CreditError {
                throw CommandFailure(error.message)
            } catch let error as StoreError {
                throw CommandFailure(error.message)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A customer's grants, what each has left, and the balance.")
        @OptionGroup var options: StoreOptions
        @Option(help: "The customer.") var customer: String
        @Flag(help: "Print JSON (decimals as strings).") var json = false

        func run() throws {
            let config = try options.loadConfig()
            do {
                let store = try options.openStore(config, access: .readOnly)
                let summary = try CreditBook(config: config, store: store).summary(customer: customer)
                if json {
                    print(CreditFormat.json(summary))
                    return
                }
                let currency = summary.currency.flatMap(Currency.named)
                let money = { (amount: ExactDecimal) in StatementFormat.money(amount, currency) }
                print("customer \(customer): balance \(money(summary.position.balance)) \(summary.currency ?? ""), applied this period "
                    + "\(money(summary.position.applied)), amount due \(money(summary.amountDue))")
                for row in summary.grants {
                    let grant = row.grant
                    print("  \(grant.id)  \(money(grant.amount)) \(grant.currency)  left \(money(row.remaining))  \(row.status)  priority \(grant.priority)"
                        + (grant.expiresAt.map { "  expires \($0.rfc3339)" } ?? "") + (grant.reason.map { "  \($0)" } ?? ""))
                }
                if summary.grants.isEmpty { print("  no grants: tally credits grant --customer \(customer) --amount 100") }
            } catch let error as StoreError {
                throw CommandFailure(error.message)
            }
        }
    }

    struct Void: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Void a grant: from now on it covers no more usage.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The grant's id.") var id: String

        func run() throws {
            let config = try options.loadConfig()
            do {
                let store = try options.openStore(config, access: .settings)
                guard let grant = try store.voidCredits(id: id, at: .now()) else {
                    throw CommandFailure("there is no grant '\(id)': tally credits list --customer C shows a customer's grants")
                }
                print("voided: \(grant.id) of \(grant.customer) at \(grant.voidedAt?.rfc3339 ?? "")")
            } catch let error as StoreError {
                throw CommandFailure(error.message)
            }
        }
    }

    struct Ledger: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grants, each period's application, voids and expiries, oldest first.")
        @OptionGroup var options: StoreOptions
        @Option(help: "The customer.") var customer: String
        @Flag(help: "Print JSON (decimals as strings).") var json = false

        func run() throws {
            let config = try options.loadConfig()
            do {
                let store = try options.openStore(config, access: .readOnly)
                let (summary, entries) = try CreditBook(config: config, store: store).ledger(customer: customer)
                if json {
                    print(CreditFormat.ledgerJSON(summary, entries: entries))
                    return
                }
                for entry in entries {
                    let final = entry.final.map { $0 ? " (final)" : " (so far)" } ?? ""
                    print("\(entry.at.rfc3339)  \(entry.type.padding(toLength: 11, withPad: " ", startingAt: 0))  \(entry.grant)  \(entry.amount)\(final)")
                }
                print("balance \(summary.position.balance) \(summary.currency ?? "")")
            } catch let error as StoreError {
                throw CommandFailure(error.message)
            }
        }
    }
}
