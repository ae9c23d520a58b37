import Billing
import Hummingbird
import Metering
import Storage

/// `/ui`: what ingest did in the last 48 hours, who is using the product, the latest alerts.
extension Dashboard {
    func overview(session: SessionSigner.Session) throws -> Response {
        let hours = try store.ingestActivity(hours: 48)
        let accepted = hours.reduce(0) { $0 &+ $1.accepted }
        let duplicates = hours.reduce(0) { $0 &+ $1.duplicates }
        let rejected = hours.reduce(0) { $0 &+ $1.rejected }
        let period = currentPeriod
        let figures = snapshot.latest()
        var body = "<h1>Overview</h1><p class=\"sub\">Period \(escape(periodText(period)))</p>"
        body += "<dl class=\"figures\">"
        body += figure("accepted", "Events accepted (48 h)", NumberText.grouped(text: String(accepted)))
        body += figure("duplicates", "Duplicates (48 h)", NumberText.grouped(text: String(duplicates)))
        body += figure("rejected", "Rejected by the store (48 h)", NumberText.grouped(text: String(rejected)))
        body += figure("customers-with-usage", "Customers with usage this period",
                       figures.map { NumberText.grouped(text: String($0.customersWithUsage)) } ?? "…")
        body += "</dl>"

        body += "<section class=\"panel\"><h2>Events ingested per hour, last 48 hours</h2>"
        if accepted == 0, duplicates == 0, rejected == 0 {
            body += "<p class=\"empty\">No events in the last 48 hours: send some with <code>tally send</code> or POST /v1/events.</p>"
        }
        let chart = BarChart(id: "ingest-chart", cssClass: "ingest", meter: nil, title: "Events accepted per hour over the last 48 hours",
                             unit: "events / hour",
                             bars: hours.map { .init(start: $0.start, end: $0.start.adding(nanoseconds: Timestamp.nanosecondsPerHour),
                                                     quantity: ExactDecimal(Int(clamping: $0.accepted))) },
                             edges: [.init(time: period.start, label: "period start")],
                             label: { String($0.rfc3339.dropFirst(11).prefix(5)) })
        body += chart.render() + "</section>"

        body += "<div class=\"grid\"><section class=\"panel\"><h2>Top customers by amount so far</h2>"
        if let figures {
            if figures.topByAmount.isEmpty {
                body += "<p class=\"empty\">No usage this period yet: send events with <code>tally send</code>.</p>"
            } else {
                body += "<div class=\"table-box\"><table id=\"top-customers\"><thead><tr><th>Customer</th><th>Plan</th><th class=\"num\">Amount</th></tr></thead><tbody>"
                for row in figures.topByAmount {
                    body += "<tr data-customer=\"\(escape(row.customer))\"><td class=\"id\">\(customerLink(row.customer))</td>"
                    body += "<td>\(escape(row.plan ?? "none"))</td>"
                    body += "<td class=\"num amount\" \(NumberText.amount(row.amount, currency: row.currency))</td></tr>"
                }
                body += "</tbody></table></div>"
            }
            body += "<p class=\"hint\">As of \(escape(NumberText.time(figures.takenAt))), over every customer; refreshed in the background.</p>"
        } else {
            body += "<table id=\"top-customers\"><tbody></tbody></table><p class=\"empty\">Adding up every customer's usage: reload in a moment.</p>"
        }
        body += "</section>"

        body += "<section class=\"panel\"><h2>Latest alerts</h2>"
        let alerts = try store.recentAlerts(limit: 10)
        if alerts.isEmpty {
            body += "<table id=\"latest-alerts\"><tbody></tbody></table><p class=\"empty\">No alerts fired yet: limits in the config or added on a customer's page fire them.</p>"
        } else {
            body += "<div class=\"table-box\"><table id=\"latest-alerts\"><thead><tr><th>Fired</th><th>Customer</th><th>Limit</th><th class=\"num\">Used</th></tr></thead><tbody>"
            for alert in alerts {
                body += "<tr><td>\(escape(NumberText.time(alert.firedAt)))</td><td class=\"id\">\(customerLink(alert.customer))</td>"
                body += "<td>\(escape(alert.limitID)) <span class=\"badge\(alert.action == .disable ? " bad" : "")\">\(alert.percent) %</span></td>"
                body += "<td class=\"num\">\(escape(NumberText.grouped(alert.used))) / \(escape(NumberText.grouped(alert.limit)))</td></tr>"
            }
            body += "</tbody></table></div>"
        }
        body += "</section></div>"
        return html(layout("Overview", section: "overview", session: session).render(body: body))
    }

    func figure(_ id: String, _ label: String, _ value: String) -> String {
        "<div><dt>\(escape(label))</dt><dd id=\"\(id)\">\(escape(value))</dd></div>"
    }

    func customerLink(_ customer: String) -> String {
        "<a href=\"/ui/customers/\(percentEncoded(customer))\">\(escape(customer))</a>"
    }

    /// `2026-12-01 – 2027-01-01 (UTC)`.
    func periodText(_ period: PeriodInterval) -> String {
        "\(period.start.rfc3339.prefix(10)) – \(period.end.rfc3339.prefix(10)) (UTC)"
    }
}
