public import Credits
public import Metering
import Rating
import Storage

/// The JSON of credits: one grant, a customer's list, its ledger. Decimals as strings, in the
/// currency's minor units.
public enum CreditFormat {
    /// `{"id","customer","amount","currency","priority","effective_at","expires_at","reason","granted_at","voided_at"}`
    /// and, with a summary row, `"remaining","status","applied_this_period"`.
    public static func append(_ grant: CreditGrant, row: CreditSummary.Row? = nil, appliedNow: ExactDecimal? = nil, to writer: inout JSONWriter) {
        let currency = Currency.named(grant.currency)
        writer.raw("{"); writer.key("id"); writer.string(grant.id)
        writer.raw(","); writer.key("customer"); writer.string(grant.customer)
        writer.raw(","); writer.key("amount"); writer.string(StatementFormat.money(grant.amount, currency))
        writer.raw(","); writer.key("currency"); writer.string(grant.currency)
        writer.raw(","); writer.key("priority"); writer.raw(String(grant.priority))
        writer.raw(","); writer.key("effective_at"); writer.string(grant.effectiveAt.rfc3339)
        writer.raw(","); writer.key("expires_at"); optionalTime(grant.expiresAt, &writer)
        writer.raw(","); writer.key("reason")
        if let reason = grant.reason { writer.string(reason) } else { writer.raw("null") }
        writer.raw(","); writer.key("granted_at"); writer.string(grant.grantedAt.rfc3339)
        writer.raw(","); writer.key("voided_at"); optionalTime(grant.voidedAt, &writer)
        if let row {
            writer.raw(","); writer.key("remaining"); writer.string(StatementFormat.money(row.remaining, currency))
            writer.raw(","); writer.key("status"); writer.string(row.status)
            writer.raw(","); writer.key("applied_this_period"); writer.string(StatementFormat.money(appliedNow ?? .zero, currency))
        }
        writer.raw("}")
    }

    /// `tally credits list --json`, `GET /v1/customers/{id}/credits`:
    /// `{"customer","currency","period":{"start","end"},"balance","credits_applied","amount_due","data":[grant…]}`.
    public static func json(_ summary: CreditSummary) -> String {
        let currency = summary.currency.flatMap(Currency.named)
        var writer = JSONWriter()
        writer.raw("{"); writer.key("customer"); writer.string(summary.customer)
        writer.raw(","); writer.key("currency")
        if let code = summary.currency { writer.string(code) } else { writer.raw("null") }
        writer.raw(","); writer.key("period"); StatementFormat.bounds(summary.period, into: &writer)
        writer.raw(","); writer.key("balance"); writer.string(StatementFormat.money(summary.position.balance, currency))
        writer.raw(","); writer.key("credits_applied"); writer.string(StatementFormat.money(summary.position.applied, currency))
        writer.raw(","); writer.key("amount_due"); writer.string(StatementFormat.money(summary.amountDue, currency))
        writer.raw(","); writer.key("data"); writer.raw("[")
        for (index, row) in summary.grants.enumerated() {
            if index > 0 { writer.raw(",") }
            append(row.grant, row: row, appliedNow: summary.position.byGrant[row.grant.id], to: &writer)
        }
        writer.raw("]}")
        return writer.output
    }

    /// One entry of a ledger.
    public struct Entry: Sendable {
        public var type: String
        public var grant: String
        public var at: Timestamp
        public var amount: ExactDecimal
        public var period: PeriodInterval?
        public var final: Bool?
    }

    /// The ledger's entries, oldest first: each grant (at its `effective_at`), each period's
    /// application (at the period's end; the current period's at now, `final: false`; a past
    /// period is `final` once closed), each void and expiry with what was left of the grant then.
    public static func entries(_ summary: CreditSummary, periods: (Timestamp) -> PeriodInterval, isFinal: (PeriodInterval) -> Bool) -> [Entry] {
        var entries: [Entry] = []
        for row in summary.grants {
            let grant = row.grant
            entries.append(Entry(type: "grant", grant: grant.id, at: grant.effectiveAt, amount: grant.amount))
            if let voided = grant.voidedAt, voided <= summary.now {
                entries.append(Entry(type: "void", grant: grant.id, at: voided, amount: row.remaining))
            } else if let expires = grant.expiresAt, expires <= summary.now {
                entries.append(Entry(type: "expiry", grant: grant.id, at: expires, amount: row.remaining))
            }
        }
        for application in summary.applications where application.periodStart != summary.period.start {
            let period = periods(application.periodStart)
            entries.append(Entry(type: "application", grant: application.grant, at: min(period.end, summary.now), amount: application.amount,
                                 period: period, final: isFinal(period)))
        }
        for (grant, amount) in summary.position.byGrant {
            entries.append(Entry(type: "application", grant: grant, at: summary.now, amount: amount, period: summary.period, final: false))
        }
        let rank = ["grant": 0, "application": 1, "void": 2, "expiry": 3]
        return entries.sorted { ($0.at, rank[$0.type] ?? 9, $0.grant) < ($1.at, rank[$1.type] ?? 9, $1.grant) }
    }

    /// `tally credits ledger --json`, `GET /v1/customers/{id}/credits/ledger`:
    /// `{"customer","currency","balance","entries":[{"type","grant","at","amount","period"?,"final"?}]}`.
    public static func ledgerJSON(_ summary: CreditSummary, entries: [Entry]) -> String {
        let currency = summary.currency.flatMap(Currency.named)
        var writer = JSONWriter()
        writer.raw("{"); writer.key("customer"); writer.string(summary.customer)
        writer.raw(","); writer.key("currency")
        if let code = summary.currency { writer.string(code) } else { writer.raw("null") }
        writer.raw(","); writer.key("balance"); writer.string(StatementFormat.money(summary.position.balance, currency))
        writer.raw(","); writer.key("entries"); writer.raw("[")
        for (index, entry) in entries.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("type"); writer.string(entry.type)
            writer.raw(","); writer.key("grant"); writer.string(entry.grant)
            writer.raw(","); writer.key("at"); writer.string(entry.at.rfc3339)
            writer.raw(","); writer.key("amount"); writer.string(StatementFormat.money(entry.amount, currency))
            if let period = entry.period {
                writer.raw(","); writer.key("period"); StatementFormat.bounds(period, into: &writer)
            }
            if let final = entry.final { writer.raw(","); writer.key("final"); writer.raw(final ? "true" : "false") }
            writer.raw("}")
        }
        writer.raw("]}")
        return writer.output
    }

    private static func optionalTime(_ time: Timestamp?, _ writer: inout JSONWriter) {
        if let time { writer.string(time.rfc3339) } else { writer.raw("null") }
    }
}
