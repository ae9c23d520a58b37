public import Metering

/// The JSON of a limit, shared by `tally limits list --json` and the HTTP API:
/// `{"id","scope":{"customer"|"plan"},"meter","amount"|"quantity"|"balance_below"|"balance_percent_below","action","notify_at","source"}`,
/// `meter` null for an amount or balance limit, `source` `config` or `stored`.
public enum LimitJSON {
    public static func append(_ limit: UsageLimit, source: String, to writer: inout JSONWriter) {
        writer.raw("{"); writer.key("id"); writer.string(limit.id)
        writer.raw(","); writer.key("scope"); writer.raw("{")
        switch limit.scope {
        case .customer(let customer): writer.key("customer"); writer.string(customer)
        case .plan(let plan): writer.key("plan"); writer.string(plan)
        }
        writer.raw("},"); writer.key("meter")
        switch limit.threshold {
        case .amount(let amount):
            writer.raw("null,"); writer.key("amount"); writer.string(amount.description)
        case .quantity(let meter, let quantity):
            writer.string(meter); writer.raw(","); writer.key("quantity"); writer.string(quantity.description)
        case .balanceBelow(let balance):
            writer.raw("null,"); writer.key("balance_below"); writer.string(balance.description)
        case .balancePercentBelow(let percent):
            writer.raw("null,"); writer.key("balance_percent_below"); writer.string(percent.description)
        }
        writer.raw(","); writer.key("action"); writer.string(limit.action.rawValue)
        writer.raw(","); writer.key("notify_at"); writer.raw("[" + limit.notifyAt.map(String.init).joined(separator: ",") + "]")
        writer.raw(","); writer.key("source"); writer.string(source)
        writer.raw("}")
    }
}
