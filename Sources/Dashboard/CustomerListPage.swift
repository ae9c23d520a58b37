import Billing
import Hummingbird
import Metering
import Storage

/// `/ui/customers?query=&cursor=`: every customer, searchable by id prefix, 25 a page in id
/// order (the API's list convention), with its plan, amount so far and projected amount.
extension Dashboard {
    static let customersPerPage = 25

    func customerList(_ request: Request, session: SessionSigner.Session) throws -> Response {
        let parameters = request.uri.queryParameters
        let query = parameters["query"].map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        guard query.utf8.count <= EventLineParser.maxIdentifierBytes else {
            throw DashboardFailure(.badRequest, "Search too long", "customer ids have at most \(EventLineParser.maxIdentifierBytes) bytes; shorten the search")
        }
        var after: [UInt8]?
        if let cursor = parameters["cursor"], !cursor.isEmpty {
            guard let bytes = ListCursor.decode(String(cursor)) else {
                throw DashboardFailure(.badRequest, "Not a page of this list", "the cursor in the address was not made by this server: start again from the first page")
            }
            after = bytes
        }
        let period = currentPeriod
        let page = try CustomerListing(config: config, store: store)
            .page(after: after, prefix: query, limit: Self.customersPerPage, period: period)
        var body = "<h1>Customers</h1><p class=\"sub\">Period \(escape(periodText(period))); amounts are estimates so far and projected to the period's end.</p>"
        body += """
        <form id="search" class="stack" method="get" action="/ui/customers" role="search">
        <label for="query">Customer id starts with<input id="query" name="query" type="search" value="\(escape(query))"></label>
        <button type="submit">Search</button>
        </form>
        """
        body += "<section class=\"panel\">"
        if page.rows.isEmpty {
            body += "<table id=\"customers\"><tbody></tbody></table>"
            body += query.isEmpty
                ? "<p class=\"empty\">No customers yet: send events with <code>tally send</code>, or assign a plan with <code>tally customers set-plan</code>.</p>"
                : "<p class=\"empty\">No customer id starts with “\(escape(query))”.</p>"
        } else {
            body += "<div class=\"table-box\"><table id=\"customers\"><thead><tr><th>Customer</th><th>Plan</th><th class=\"num\">Amount so far</th><th class=\"num\">Projected</th></tr></thead><tbody>"
            for row in page.rows {
                let resolver = try PlanResolver(config: config, store: store, customer: row.id)
                let estimate = try? Estimator(config: config, resolver: resolver).estimate(customer: row.id, store: store)
                body += "<tr data-customer=\"\(escape(row.id))\"><td class=\"id\">\(customerLink(row.id))</td>"
                body += "<td class=\"plan\">\(escape(row.plan ?? "none"))</td>"
                if let estimate {
                    body += "<td class=\"num amount\" \(NumberText.amount(estimate.total, currency: estimate.currency))</td>"
                    body += "<td class=\"num projected\" \(NumberText.amount(estimate.projectedTotal, currency: estimate.currency))</td>"
                } else {
                    body += "<td class=\"num amount\">–</td><td class=\"num projected\">–</td>"
                }
                body += "</tr>"
            }
            body += "</tbody></table></div>"
        }
        body += "<div class=\"pager\">"
        if after != nil {
            body += "<a id=\"first-page\" href=\"/ui/customers\(query.isEmpty ? "" : "?query=" + percentEncoded(query))\">First page</a>"
        }
        if page.hasMore, let last = page.rows.last {
            let cursor = ListCursor.encode(Array(last.id.utf8))
            body += "<a id=\"next-page\" href=\"/ui/customers?\(query.isEmpty ? "" : "query=" + percentEncoded(query) + "&amp;")cursor=\(cursor)\">Next page</a>"
        }
        body += "</div></section>"
        return html(layout("Customers", section: "customers", session: session).render(body: body))
    }
}
