import Billing
import HTTPAPI
import Hummingbird
import Limits
import Metering
import Rating
import Storage
import TallyConfiguration
import UsageQuery

/// `/ui/customers/{id}` (and, without the forms, `/portal/{id}`): plan, estimate lines, a usage
/// chart per meter, limits as progress bars with their steps, fired alerts, entitlements.
extension Dashboard {
    /// Who is looking: an operator (forms when the session is admin) or the customer's own portal token.
    enum Viewer {
        case `operator`(SessionSigner.Session)
        case portal(token: String)

        var isAdmin: Bool {
            if case .operator(let session) = self { return session.admin }
            return false
        }
    }

    /// The two charts a page can show.
    enum ChartRange: String {
        /// Daily windows over the current period.
        case daily
        /// Hourly windows over the last 7 days.
        case hourly
    }

    func customerPage(customer: String, request: Request, viewer: Viewer, status: HTTPResponse.Status = .ok,
                      error: String? = nil) throws -> Response {
        guard try isKnown(customer) else {
            throw DashboardFailure(.notFound, "No such customer",
                                   "Tally has no usage, plan or limit for \"\(customer)\": check the id, or send its first events with tally send")
        }
        let range = ChartRange(rawValue: String(request.uri.queryParameters["chart"] ?? "daily")) ?? .daily
        let done = request.uri.queryParameters["done"].map(String.init)
        let body = try customerBody(customer: customer, range: range, viewer: viewer, notice: done.flatMap { Self.notices[$0] }, error: error)
        switch viewer {
        case .operator(let session):
            return html(layout(customer, section: "customers", session: session).render(body: body), status: status)
        case .portal:
            return html(PageLayout(title: "Usage of \(customer)", section: nil, signedIn: nil).render(body: body), status: status, portal: true)
        }
    }

    static let notices = ["plan": "Plan assigned.", "limit-added": "Limit added.", "limit-removed": "Limit removed."]

    private func customerBody(customer: String, range: ChartRange, viewer: Viewer, notice: String?, error: String?) throws -> String {
        let period = currentPeriod
        let now = Timestamp.now()
        let resolver = try PlanResolver(config: config, store: store, customer: customer)
        let plan = resolver.plan(for: customer, in: period)
        let estimate = try Estimator(config: config, resolver: resolver).estimate(customer: customer, store: store, at: now)
        let usage = try store.usage(customer: customer, periodStart: period.start)
        let evaluator = try CommitLimitEvaluator.forCustomer(customer, config: config, store: store)
        let blocked = Entitlement.isBlocked(customer: customer, period: period, usage: usage, evaluator: evaluator, credits: estimate.credits)
        let currency = estimate.currency

        var body = "<h1>\(escape(customer))</h1>"
        body += "<p class=\"sub\">Plan <strong id=\"plan\">\(escape(plan?.code ?? "none"))</strong> (\(escape(resolver.source(for: customer, in: period).rawValue)))"
        body += " · period \(escape(periodText(period)))\(blocked ? " · <span class=\"badge bad\" id=\"blocked\">blocked</span>" : "")</p>"
        if let notice { body += "<p class=\"notice\" role=\"status\">\(escape(notice))</p>" }
        if let error { body += "<p class=\"error\" role=\"alert\">\(escape(error))</p>" }
        body += "<dl class=\"figures\">"
        body += "<div><dt>Amount so far</dt><dd id=\"total\" \(NumberText.amount(estimate.total, currency: currency))</dd></div>"
        body += "<div><dt>Projected to the period's end</dt><dd id=\"projected\" \(NumberText.amount(estimate.projectedTotal, currency: currency))</dd></div>"
        if !estimate.credits.granted.isZero || !estimate.credits.applied.isZero {
            body += "<div><dt>Prepaid credits left</dt><dd id=\"balance\" \(NumberText.amount(estimate.credits.balance, currency: currency))</dd></div>"
            body += "<div><dt>Due after credits</dt><dd id=\"amount-due\" \(NumberText.amount(estimate.amountDue, currency: currency))</dd></div>"
        }
        body += "</dl>"

        body += "<section class=\"panel\"><h2>Estimate</h2>"
        if estimate.lines.isEmpty {
            body += "<table id=\"estimate\"><tbody></tbody></table><p class=\"empty\">No usage this period yet: send events with <code>tally send</code>.</p>"
        } else {
            body += "<div class=\"table-box\"><table id=\"estimate\"><thead><tr><th>Meter</th><th class=\"num\">Quantity</th><th class=\"num\">Amount</th><th class=\"num\">Projected</th></tr></thead><tbody>"
            for line in estimate.lines {
                let group = line.group.map { "\($0.property)=\($0.value)" }.joined(separator: ", ")
                body += "<tr data-meter=\"\(escape(line.meter))\" data-group=\"\(escape(group))\"><td>\(escape(line.meter))\(group.isEmpty ? "" : " <span class=\"hint\">\(escape(group))</span>")</td>"
                body += "<td class=\"num quantity\" data-quantity=\"\(line.quantity.description)\">\(escape(NumberText.grouped(line.quantity)))</td>"
                body += "<td class=\"num amount\" \(NumberText.amount(line.amount, currency: currency))</td>"
                body += "<td class=\"num projected\" \(NumberText.amount(line.projectedAmount, currency: currency))</td></tr>"
            }
            body += "</tbody></table></div>"
        }
        body += "</section>"

        body += try usageCharts(customer: customer, range: range, viewer: viewer, period: period, now: now)
        body += "<div class=\"grid\">"
        body += try limitsSection(customer: customer, plan: plan?.code, period: period, usage: usage, evaluator: evaluator,
                                  credits: estimate.credits, viewer: viewer)
        body += entitlementsSection(customer: customer, period: period, usage: usage, evaluator: evaluator, credits: estimate.credits)
        body += "</div>"
        body += try alertsSection(customer: customer)
        if viewer.isAdmin { body += planForm(customer: customer, current: plan?.code, viewer: viewer) }
        return body
    }

    private func usageCharts(customer: String, range: ChartRange, viewer: Viewer, period: PeriodInterval, now: Timestamp) throws -> String {
        let windowPlan: WindowPlan
        switch range {
        case .daily:
            windowPlan = try WindowPlan(from: period.start, to: period.end, window: .day, timeZone: try WindowPlan.timeZone("UTC"))
        case .hourly:
            let hour = now.nanosecondsSinceEpoch - ((now.nanosecondsSinceEpoch % Timestamp.nanosecondsPerHour) + Timestamp.nanosecondsPerHour) % Timestamp.nanosecondsPerHour
            let to = Timestamp(nanosecondsSinceEpoch: hour + Timestamp.nanosecondsPerHour)
            windowPlan = try WindowPlan(from: to.adding(nanoseconds: -168 * Timestamp.nanosecondsPerHour), to: to, window: .hour,
                                        timeZone: try WindowPlan.timeZone("UTC"))
        }
        let result = try UsageQuery(plan: windowPlan, meters: config.meters, groupBy: []).run(store: store, customers: .only([customer]))
        let edges = windowPlan.edges
        let base = switch viewer {
        case .operator: "/ui/customers/\(percentEncoded(customer))?"
        case .portal(let token): "/portal/\(percentEncoded(customer))?token=\(percentEncoded(token))&amp;"
        }
        var html = "<section class=\"panel\"><h2>Usage over time</h2><nav class=\"switch\" aria-label=\"Chart range\">"
        html += "<a id=\"chart-daily\" href=\"\(base)chart=daily\"\(range == .daily ? " aria-current=\"true\"" : "")>Daily, this period</a>"
        html += "<a id=\"chart-hourly\" href=\"\(base)chart=hourly\"\(range == .hourly ? " aria-current=\"true\"" : "")>Hourly, last 7 days</a></nav>"
        html += "<div class=\"charts\">"
        for meter in config.meters {
            let series = result.series.first { $0.meter == meter.code }
            let quantities = series?.quantities ?? Array(repeating: .zero, count: windowPlan.count)
            let bars = quantities.enumerated().map { index, quantity in
                BarChart.Bar(start: Timestamp(nanosecondsSinceEpoch: edges[index]), end: Timestamp(nanosecondsSinceEpoch: edges[index + 1]), quantity: quantity)
            }
            let rangeText = range == .daily ? "per day this period" : "per hour over the last 7 days"
            html += "<figure class=\"chart-box\"><figcaption><strong>\(escape(meter.code))</strong> <span class=\"hint\">\(escape(meter.aggregation.rawValue)) \(rangeText), "
            html += "total \(escape(NumberText.grouped(series?.total ?? .zero)))\(quantities.allSatisfy(\.isZero) ? " · no usage in this range" : "")</span></figcaption>"
            html += BarChart(id: nil, cssClass: "usage-chart", meter: meter.code, title: "\(meter.code) (\(meter.aggregation.rawValue)) \(rangeText)",
                             unit: "\(meter.code) \(range == .daily ? "per day" : "per hour")", bars: bars,
                             edges: [.init(time: period.start, label: "period start"), .init(time: period.end, label: "period end")],
                             label: { time in
                                 let text = time.rfc3339
                                 return range == .daily ? String(text.dropFirst(5).prefix(5)) : String(text.dropFirst(5).prefix(5)) + " " + String(text.dropFirst(11).prefix(2)) + "h"
                             }).render() + "</figure>"
        }
        return html + "</div></section>"
    }

    private func limitsSection(customer: String, plan: String?, period: PeriodInterval, usage: [UsageRecord],
                               evaluator: CommitLimitEvaluator, credits: CreditPosition, viewer: Viewer) throws -> String {
        let stored = try store.storedLimits()
        let limits = LimitPolicy(config: config, storedLimits: stored).limits(for: customer, plan: plan)
        let storedIDs = Set(stored.map(\.id))
        var html = "<section class=\"panel\" id=\"limits\"><h2>Limits</h2>"
        if limits.isEmpty {
            html += "<p class=\"empty\">No limits apply to this customer\(viewer.isAdmin ? ": add one below" : "").</p>"
        }
        let currency = plan.flatMap { code in config.plans.first { $0.code == code } }.flatMap { Currency.named($0.currency) }
        for limit in limits where limit.threshold.isBalance {
            let crossed = credits.crosses(limit.threshold)
            let what = if case .balancePercentBelow(let percent) = limit.threshold { "\(percent.description) % of the credits granted" }
                else { NumberText.money(limit.threshold.value, currency: currency) }
            html += "<div class=\"limit-row\" data-limit=\"\(escape(limit.id))\"><div class=\"label\"><span><strong>balance</strong> \(escape(limit.action.rawValue))"
            html += " <span class=\"hint\">\(escape(limit.id))</span></span><span>alerts below \(escape(what)); now \(escape(NumberText.money(credits.balance, currency: currency)))"
            html += crossed ? " <span class=\"badge bad\">below</span>" : ""
            html += "</span></div>"
            if viewer.isAdmin, storedIDs.contains(limit.id), limit.scope == .customer(customer) {
                html += "<form class=\"remove-limit inline\" method=\"post\" action=\"/ui/customers/\(percentEncoded(customer))/limits/\(percentEncoded(limit.id))/remove\">"
                html += csrfField(viewer) + "<button class=\"quiet\" type=\"submit\">Remove limit \(escape(limit.id))</button></form>"
            }
            html += "</div>"
        }
        for limit in limits where !limit.threshold.isBalance {
            let used = evaluator.used(by: limit, customer: customer, period: period, usage: usage)
            let value = limit.threshold.value
            let target = limit.threshold.meter ?? "amount"
            let text = { (amount: ExactDecimal) in limit.threshold.meter == nil ? NumberText.money(amount, currency: currency) : NumberText.grouped(amount) }
            let percent = (try? used.multiplied(by: 100).divided(by: value, scale: 0, rounding: .down)) ?? .zero
            html += "<div class=\"limit-row\" data-limit=\"\(escape(limit.id))\"><div class=\"label\"><span><strong>\(escape(target))</strong> \(escape(limit.action.rawValue))"
            html += " <span class=\"hint\">\(escape(limit.id))</span></span><span>\(escape(text(used))) of \(escape(text(value))) (\(percent.description) %)</span></div>"
            html += "<meter class=\"limit\" data-limit=\"\(escape(limit.id))\" min=\"0\" max=\"\(value.description)\" value=\"\(min(used, value).description)\" "
            html += "high=\"\(((try? value.multiplied(by: ExactDecimal(significand: 8, scale: 1))) ?? value).description)\" optimum=\"0\">\(percent.description) %</meter>"
            html += "<ul class=\"steps\" aria-label=\"Alert steps\">"
            for step in limit.notifyAt {
                let reached = ((try? used.multiplied(by: 100)) ?? .zero) >= ((try? value.multiplied(by: ExactDecimal(step))) ?? value)
                html += "<li\(reached ? " class=\"passed\"" : "")>\(step) %\(reached ? " reached" : "")</li>"
            }
            html += "</ul>"
            if viewer.isAdmin, storedIDs.contains(limit.id), limit.scope == .customer(customer) {
                html += "<form class=\"remove-limit inline\" method=\"post\" action=\"/ui/customers/\(percentEncoded(customer))/limits/\(percentEncoded(limit.id))/remove\">"
                html += csrfField(viewer) + "<button class=\"quiet\" type=\"submit\">Remove limit \(escape(limit.id))</button></form>"
            }
            html += "</div>"
        }
        if viewer.isAdmin {
            html += "<form id=\"add-limit\" class=\"stack\" method=\"post\" action=\"/ui/customers/\(percentEncoded(customer))/limits\">" + csrfField(viewer)
            html += "<label for=\"limit-target\">On<select id=\"limit-target\" name=\"target\"><option value=\"amount\">amount</option>"
            for meter in config.meters { html += "<option value=\"\(escape(meter.code))\">\(escape(meter.code))</option>" }
            html += "<option value=\"balance_below\">credit balance below</option><option value=\"balance_percent_below\">credit balance below %</option>"
            html += "</select></label>"
            html += "<label for=\"limit-value\">Limit<input id=\"limit-value\" name=\"value\" inputmode=\"decimal\" required size=\"10\"></label>"
            html += "<label for=\"limit-action\">Action<select id=\"limit-action\" name=\"action\"><option value=\"warning\">warning</option><option value=\"disable\">disable</option></select></label>"
            html += "<label for=\"limit-steps\">Alert at %<input id=\"limit-steps\" name=\"notify_at\" placeholder=\"50, 80, 100\" size=\"10\"></label>"
            html += "<button type=\"submit\">Add limit</button></form>"
        }
        return html + "</section>"
    }

    private func entitlementsSection(customer: String, period: PeriodInterval, usage: [UsageRecord], evaluator: CommitLimitEvaluator,
                                     credits: CreditPosition) -> String {
        var html = "<section class=\"panel\"><h2>Entitlements</h2><div class=\"table-box\"><table id=\"entitlements\"><thead><tr><th>Meter</th><th>Access</th><th class=\"num\">Used</th><th class=\"num\">Remaining</th></tr></thead><tbody>"
        for meter in config.meters {
            guard let state = try? Entitlement(customer: customer, meter: meter.code, period: period, usage: usage, evaluator: evaluator,
                                               credits: credits) else { continue }
            html += "<tr data-meter=\"\(escape(meter.code))\"><td>\(escape(meter.code))</td>"
            html += "<td>\(state.hasAccess ? "<span class=\"badge\">has access</span>" : "<span class=\"badge bad\">no access</span>")</td>"
            html += "<td class=\"num\" data-quantity=\"\(state.used.description)\">\(escape(NumberText.grouped(state.used)))</td>"
            html += "<td class=\"num\">\(state.remaining.map { escape(NumberText.grouped($0)) } ?? "no limit")</td></tr>"
        }
        html += "</tbody></table></div><p class=\"hint\">Usage starts again from zero at \(escape(NumberText.time(period.end))).</p></section>"
        return html
    }

    private func alertsSection(customer: String) throws -> String {
        let alerts = try store.recentAlerts(customer: customer, limit: 20)
        var html = "<section class=\"panel\"><h2>Fired alerts</h2>"
        if alerts.isEmpty {
            return html + "<table id=\"alerts\"><tbody></tbody></table><p class=\"empty\">No alerts fired for this customer.</p></section>"
        }
        html += "<div class=\"table-box\"><table id=\"alerts\"><thead><tr><th>Fired</th><th>Limit</th><th>Step</th><th class=\"num\">Used</th></tr></thead><tbody>"
        for alert in alerts {
            html += "<tr><td>\(escape(NumberText.time(alert.firedAt)))</td><td>\(escape(alert.limitID))</td>"
            html += "<td><span class=\"badge\(alert.action == .disable ? " bad" : "")\">\(alert.percent) %</span></td>"
            html += "<td class=\"num\">\(escape(NumberText.grouped(alert.used))) / \(escape(NumberText.grouped(alert.limit)))</td></tr>"
        }
        return html + "</tbody></table></div></section>"
    }

    private func planForm(customer: String, current: String?, viewer: Viewer) -> String {
        var html = "<section class=\"panel\"><h2>Assign a plan</h2>"
        html += "<form id=\"assign-plan\" class=\"stack\" method=\"post\" action=\"/ui/customers/\(percentEncoded(customer))/plan\">" + csrfField(viewer)
        html += "<label for=\"plan-code\">Plan<select id=\"plan-code\" name=\"plan\">"
        for plan in config.plans {
            html += "<option value=\"\(escape(plan.code))\"\(plan.code == current ? " selected" : "")>\(escape(plan.code)) (\(escape(plan.currency)))</option>"
        }
        html += "</select></label><label for=\"plan-from\">From (empty: now)<input id=\"plan-from\" name=\"from\" placeholder=\"2026-12-01\" size=\"12\"></label>"
        html += "<button type=\"submit\">Assign</button></form><p class=\"hint\">Takes effect from that time; the estimate is rated again at once.</p></section>"
        return html
    }

    func csrfField(_ viewer: Viewer) -> String {
        guard case .operator(let session) = viewer else { return "" }
        return "<input type=\"hidden\" name=\"csrf\" value=\"\(escape(signer.csrfToken(nonce: session.nonce)))\">"
    }
}
