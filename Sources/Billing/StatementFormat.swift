public import Metering
public import Rating
public import Storage

/// The output formats of `tally rate` and `tally estimate`. Every number is a decimal string.
public enum StatementFormat {
    /// A money amount with exactly the currency's minor digits ("39.00", JPY "1235").
    public static func money(_ amount: ExactDecimal, _ currency: Currency?) -> String {
        currency.map { amount.formatted(minimumScale: $0.minorUnits) } ?? amount.description
    }

    static func group(_ group: [GroupValue], into writer: inout JSONWriter) {
        writer.raw("{")
        for (index, entry) in group.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.key(entry.property)
            writer.string(entry.value)
        }
        writer.raw("}")
    }

    /// `{"start","end"}`: a period's bounds, as usage, estimates and re-rating print them.
    public static func bounds(_ period: PeriodInterval, into writer: inout JSONWriter) {
        writer.raw("{"); writer.key("start"); writer.string(period.start.rfc3339)
        writer.raw(","); writer.key("end"); writer.string(period.end.rfc3339)
        writer.raw("}")
    }

    static func period(_ period: PeriodInterval, into writer: inout JSONWriter) {
        writer.raw("{"); writer.key("label"); writer.string(period.label)
        writer.raw(","); writer.key("start"); writer.string(period.start.rfc3339)
        writer.raw(","); writer.key("end"); writer.string(period.end.rfc3339)
        writer.raw("}")
    }

    /// One statement as one line of JSON:
    /// `{"customer","period":{"label","start","end"},"plan","currency","lines":[{"meter","group","aggregation",
    /// "quantity","model","tiers":[{"tier","quantity","unit_amount","flat_amount","amount"}],"exact_amount","amount"}],
    /// "totals":[{"currency","exact_amount","amount"}],"credits":[{"grant","amount"}],"amount_due"}` (`credits`: what
    /// prepaid grants cover; `amount_due`: the total less them).
    public static func json(_ statement: Statement) -> String {
        String(decoding: jsonBytes(statement), as: UTF8.self)
    }

    /// ``json(_:)-(Statement)`` as UTF-8 bytes, for writing a run's statements without copies.
    public static func jsonBytes(_ statement: Statement) -> [UInt8] {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("customer"); writer.string(statement.customer)
        writer.raw(","); writer.key("period"); period(statement.period, into: &writer)
        writer.raw(","); writer.key("plan")
        if let plan = statement.plan { writer.string(plan) } else { writer.raw("null") }
        writer.raw(","); writer.key("currency")
        if let currency = statement.currency { writer.string(currency.code) } else { writer.raw("null") }
        writer.raw(","); writer.key("lines"); writer.raw("[")
        for (index, line) in statement.lines.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("meter"); writer.string(line.meter)
            writer.raw(","); writer.key("group"); group(line.group, into: &writer)
            writer.raw(","); writer.key("aggregation"); writer.string(line.aggregation)
            writer.raw(","); writer.key("quantity"); writer.string(line.quantity.description)
            writer.raw(","); writer.key("model"); writer.string(line.model)
            writer.raw(","); writer.key("tiers"); RatingJSON.lines(line.rating?.lines ?? [], into: &writer)
            writer.raw(","); writer.key("exact_amount"); writer.string(line.exactAmount.description)
            writer.raw(","); writer.key("amount"); writer.string(money(line.amount, statement.currency))
            writer.raw("}")
        }
        writer.raw("],"); writer.key("totals"); writer.raw("[")
        if let currency = statement.currency {
            writer.raw("{"); writer.key("currency"); writer.string(currency.code)
            writer.raw(","); writer.key("exact_amount"); writer.string(statement.exactTotal.description)
            writer.raw(","); writer.key("amount"); writer.string(money(statement.total, currency))
            writer.raw("}")
        }
        writer.raw("],"); writer.key("credits"); writer.raw("[")
        for (index, credit) in statement.credits.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("grant"); writer.string(credit.grant)
            writer.raw(","); writer.key("amount"); writer.string(money(credit.amount, statement.currency))
            writer.raw("}")
        }
        writer.raw("],"); writer.key("amount_due"); writer.string(money(statement.amountDue, statement.currency))
        writer.raw("}")
        return writer.bytes
    }

    /// The CSV header of statement lines.
    public static let csvHeader = "customer,period,plan,currency,meter,group,aggregation,quantity,model,exact_amount,amount"

    /// One CSV row per statement line (RFC 4180 quoting).
    public static func csv(_ statement: Statement) -> String {
        var text = ""
        for line in statement.lines {
            let group = line.group.map { "\($0.property)=\($0.value)" }.joined(separator: ";")
            let fields = [statement.customer, statement.period.label, statement.plan ?? "", statement.currency?.code ?? "",
                          line.meter, group, line.aggregation, line.quantity.description, line.model,
                          line.exactAmount.description, money(line.amount, statement.currency)]
            text += CSV.row(fields)
        }
        return text
    }

    /// One CSV field (``CSV/field(_:)``).
    static func csvField(_ text: String) -> String { CSV.field(text) }

    /// The run's summary as JSON: `{"period":{"label","start","end"},"closed","customers","lines","usage_rows","totals":[{"currency","exact_amount","amount"}]}`,
    /// and, when the store has credit grants, `"credits":[{"currency","applied","amount_due"}]`.
    public static func json(_ summary: RatingRunSummary) -> String {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("period"); period(summary.period, into: &writer)
        writer.raw(","); writer.key("closed"); writer.raw(summary.closed ? "true" : "false")
        writer.raw(","); writer.key("customers"); writer.raw(String(summary.customers))
        writer.raw(","); writer.key("lines"); writer.raw(String(summary.lines))
        writer.raw(","); writer.key("usage_rows"); writer.raw(String(summary.usageRows))
        writer.raw(","); writer.key("totals"); writer.raw("[")
        for (index, total) in summary.totals.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("currency"); writer.string(total.currency)
            writer.raw(","); writer.key("exact_amount"); writer.string(total.exactAmount.description)
            writer.raw(","); writer.key("amount"); writer.string(money(total.amount, Currency.named(total.currency)))
            writer.raw("}")
        }
        writer.raw("]")
        if !summary.credits.isEmpty {
            writer.raw(","); writer.key("credits"); writer.raw("[")
            for (index, credit) in summary.credits.enumerated() {
                if index > 0 { writer.raw(",") }
                let currency = Currency.named(credit.currency)
                writer.raw("{"); writer.key("currency"); writer.string(credit.currency)
                writer.raw(","); writer.key("applied"); writer.string(money(credit.applied, currency))
                writer.raw(","); writer.key("amount_due"); writer.string(money(credit.amountDue, currency))
                writer.raw("}")
            }
            writer.raw("]")
        }
        writer.raw("}")
        return writer.output
    }

    /// The summary as CSV: a header and one row per currency.
    public static func csv(_ summary: RatingRunSummary) -> String {
        var text = "period,closed,customers,lines,currency,exact_amount,amount\n"
        for total in summary.totals {
            text += CSV.row([summary.period.label, summary.closed ? "true" : "false", String(summary.customers), String(summary.lines),
                             total.currency, total.exactAmount.description, money(total.amount, Currency.named(total.currency))])
        }
        return text
    }

    /// `tally estimate --json`: `{"customer","period":{"start","end"},"currency","lines":[{"meter","group","quantity",
    /// "amount","projected_amount"}],"total","projected_total","credits_applied","amount_due","projected_amount_due"}`.
    public static func json(_ estimate: Estimate) -> String {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("customer"); writer.string(estimate.customer)
        writer.raw(","); writer.key("period"); bounds(estimate.period, into: &writer)
        writer.raw(","); writer.key("currency")
        if let currency = estimate.currency { writer.string(currency.code) } else { writer.raw("null") }
        writer.raw(","); writer.key("lines"); writer.raw("[")
        for (index, line) in estimate.lines.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("meter"); writer.string(line.meter)
            writer.raw(","); writer.key("group"); group(line.group, into: &writer)
            writer.raw(","); writer.key("quantity"); writer.string(line.quantity.description)
            writer.raw(","); writer.key("amount"); writer.string(money(line.amount, estimate.currency))
            writer.raw(","); writer.key("projected_amount"); writer.string(money(line.projectedAmount, estimate.currency))
            writer.raw("}")
        }
        writer.raw("],"); writer.key("total"); writer.string(money(estimate.total, estimate.currency))
        writer.raw(","); writer.key("projected_total"); writer.string(money(estimate.projectedTotal, estimate.currency))
        writer.raw(","); writer.key("credits_applied"); writer.string(money(estimate.credits.applied, estimate.currency))
        writer.raw(","); writer.key("amount_due"); writer.string(money(estimate.amountDue, estimate.currency))
        writer.raw(","); writer.key("projected_amount_due"); writer.string(money(estimate.projectedAmountDue, estimate.currency))
        writer.raw("}")
        return writer.output
    }
    /// One customer of `tally rerate --json`: `{"customer","period":{"start","end"},"currency","original_currency",
    /// "statement":<the re-rated statement as ``json(_:)-(Statement)`` prints it>,"original_total","total","difference",
    /// "lines":[{"meter","group","original_quantity","quantity","original_amount","amount","difference"}]}`.
    /// Original amounts are in `original_currency`'s minor units, the others in `currency`'s.
    public static func json(_ difference: StatementDifference) -> String {
        let currency = difference.currency
        let originalCurrency = difference.originalCurrency ?? currency
        var writer = JSONWriter()
        writer.raw("{"); writer.key("customer"); writer.string(difference.customer)
        writer.raw(","); writer.key("period"); bounds(difference.period, into: &writer)
        writer.raw(","); writer.key("currency")
        if let currency { writer.string(currency.code) } else { writer.raw("null") }
        writer.raw(","); writer.key("original_currency")
        if let original = difference.originalCurrency { writer.string(original.code) } else { writer.raw("null") }
        writer.raw(","); writer.key("statement"); writer.raw(json(difference.rerated))
        writer.raw(","); writer.key("original_total"); writer.string(money(difference.originalTotal, originalCurrency))
        writer.raw(","); writer.key("total"); writer.string(money(difference.total, currency))
        writer.raw(","); writer.key("difference"); writer.string(money(difference.difference, currency))
        writer.raw(","); writer.key("lines"); writer.raw("[")
        for (index, line) in difference.lines.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("meter"); writer.string(line.meter)
            writer.raw(","); writer.key("group"); group(line.group, into: &writer)
            writer.raw(","); writer.key("original_quantity"); writer.string(line.originalQuantity.description)
            writer.raw(","); writer.key("quantity"); writer.string(line.quantity.description)
            writer.raw(","); writer.key("original_amount"); writer.string(money(line.originalAmount, originalCurrency))
            writer.raw(","); writer.key("amount"); writer.string(money(line.amount, currency))
            writer.raw(","); writer.key("difference"); writer.string(money(line.difference, currency))
            writer.raw("}")
        }
        writer.raw("]}")
        return writer.output
    }

    /// The last line of `tally rerate --json`: `{"summary":{"period":{"start","end"},"customers","changed",
    /// "totals":[{"currency","original","rerated","difference"}]}}`.
    public static func json(_ summary: RerateSummary) throws(DecimalOverflow) -> String {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("summary"); writer.raw("{")
        writer.key("period"); bounds(summary.period, into: &writer)
        writer.raw(","); writer.key("customers"); writer.raw(String(summary.customers))
        writer.raw(","); writer.key("changed"); writer.raw(String(summary.changed))
        writer.raw(","); writer.key("totals"); writer.raw("[")
        for (index, total) in try summary.totals().enumerated() {
            let currency = Currency.named(total.currency)
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("currency"); writer.string(total.currency)
            writer.raw(","); writer.key("original"); writer.string(money(total.original, currency))
            writer.raw(","); writer.key("rerated"); writer.string(money(total.rerated, currency))
            writer.raw(","); writer.key("difference"); writer.string(money(total.difference, currency))
            writer.raw("}")
        }
        writer.raw("]}}")
        return writer.output
    }
}
