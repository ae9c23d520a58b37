import HTTPAPI
import Hummingbird
import Metering
import Storage

/// `/ui/meters/{meter}`: the meter over the period's days across customers, and its top customers.
extension Dashboard {
    func meterPage(meter code: String, session: SessionSigner.Session) throws -> Response {
        guard let meter = config.meter(code) else {
            throw DashboardFailure(.notFound, "No such meter", "no meter \"\(code)\" in the config; meters: \(config.meters.map(\.code).joined(separator: ", "))")
        }
        let period = currentPeriod
        var body = "<h1>\(escape(meter.code))</h1><p class=\"sub\">\(escape(meter.aggregation.rawValue))"
        if let property = meter.property { body += " of <code>\(escape(property))</code>" }
        if !meter.groupBy.isEmpty { body += ", grouped by \(escape(meter.groupBy.joined(separator: ", ")))" }
        body += " · period \(escape(periodText(period)))</p>"
        guard let figures = snapshot.latest(), figures.period == period else {
            body += "<section class=\"panel\"><svg id=\"meter-chart\" class=\"chart\" viewBox=\"0 0 720 40\" role=\"img\" aria-label=\"not ready\"></svg>"
            body += "<table id=\"top-customers\"><tbody></tbody></table><p class=\"empty\">Adding up every customer's usage: reload in a moment.</p></section>"
            return html(layout(meter.code, section: "meter:\(meter.code)", session: session).render(body: body))
        }
        let days = figures.meterDays[meter.code] ?? []
        let combined = switch meter.aggregation {
        case .max: "the highest customer's maximum"
        case .min: "the lowest customer's minimum"
        case .sum, .count: "the total across customers"
        default: "each customer's \(meter.aggregation.rawValue) added up"
        }
        body += "<section class=\"panel\"><h2>Per day this period: \(escape(combined))</h2>"
        if days.allSatisfy(\.isZero) {
            body += "<p class=\"empty\">No usage of \(escape(meter.code)) this period yet: send events with <code>tally send</code>.</p>"
        }
        let bars = figures.dayStarts.enumerated().map { index, start in
            BarChart.Bar(start: start, end: start.adding(nanoseconds: Timestamp.nanosecondsPerDay), quantity: index < days.count ? days[index] : .zero)
        }
        body += BarChart(id: "meter-chart", cssClass: "usage-chart", meter: meter.code, title: "\(meter.code) per day this period, across customers",
                         unit: "\(meter.code) (\(meter.aggregation.rawValue))", bars: bars,
                         edges: [.init(time: period.start, label: "period start"), .init(time: period.end, label: "period end")],
                         label: { String($0.rfc3339.dropFirst(5).prefix(5)) }).render()
        body += "</section><section class=\"panel\"><h2>Top customers this period</h2>"
        let top = figures.topByMeter[meter.code] ?? []
        if top.isEmpty {
            body += "<table id=\"top-customers\"><tbody></tbody></table><p class=\"empty\">No customer has used \(escape(meter.code)) this period.</p>"
        } else {
            body += "<div class=\"table-box\"><table id=\"top-customers\"><thead><tr><th>Customer</th><th class=\"num\">Quantity</th></tr></thead><tbody>"
            for row in top {
                body += "<tr data-customer=\"\(escape(row.customer))\"><td class=\"id\">\(customerLink(row.customer))</td>"
                body += "<td class=\"num quantity\" data-quantity=\"\(row.quantity.description)\">\(escape(NumberText.grouped(row.quantity)))</td></tr>"
            }
            body += "</tbody></table></div>"
        }
        body += "<p class=\"hint\">As of \(escape(NumberText.time(figures.takenAt))), over every customer; refreshed in the background.</p></section>"
        return html(layout(meter.code, section: "meter:\(meter.code)", session: session).render(body: body))
    }

    // MARK: Portal

    /// `GET /portal?token=…`: to the token's customer page.
    func portalRedirect(_ request: Request) throws -> Response {
        let (token, parsed) = try portalToken(request)
        return redirect("/portal/\(percentEncoded(parsed.customer))?token=\(percentEncoded(token))")
    }

    /// `GET /portal/{customer}?token=…`: the customer's own usage, estimate and limits.
    func portal(customer: String, request: Request) throws -> Response {
        do {
            let (token, parsed) = try portalToken(request)
            guard parsed.customer == customer else {
                throw DashboardFailure(.forbidden, "Not your page", "this portal link is for another customer: open the link you were given as it is")
            }
            return try customerPage(customer: customer, request: request, viewer: .portal(token: token))
        } catch let failure as DashboardFailure {
            return errorPage(failure.status, title: failure.title, message: failure.message, portal: true)
        }
    }

    private func portalToken(_ request: Request) throws -> (String, PortalToken) {
        guard let portalSecret else {
            throw DashboardFailure(.serviceUnavailable, "Portal not enabled",
                                   "this server has no portal secret: set http.portal_secret_env in the config and restart")
        }
        guard let token = request.uri.queryParameters["token"].map(String.init), !token.isEmpty else {
            throw DashboardFailure(.unauthorized, "Link incomplete", "the address has no portal token: open the link you were given as it is")
        }
        do {
            return (token, try PortalToken.verify(token, secret: portalSecret, now: .now()))
        } catch .expired {
            throw DashboardFailure(.unauthorized, "Link expired", "this portal link has expired: ask for a new one")
        } catch {
            throw DashboardFailure(.unauthorized, "Link not valid", "this portal link is not valid (changed, or from another server)")
        }
    }
}
