import Hummingbird
import Metering
import Storage
import UsageQuery

extension APIRoutes {
    /// `GET /v1/customers/{id}/usage?window=…`: as `tally usage --window … --json` (or CSV with
    /// `Accept: text/csv`).
    func usageOverTime(customer: String, request: Request) throws -> Response {
        let parameters = request.uri.queryParameters
        let (plan, groupBy) = try windowPlan(request)
        let meters: [Meter]
        if let code = parameters.get("meter"), !code.isEmpty {
            meters = [try queryMeter(code)]
        } else {
            meters = config.meters
        }
        try requireKnown(customer)
        let query = try queryOrError { () throws(UsageQueryError) in try UsageQuery(plan: plan, meters: meters, groupBy: groupBy) }
        return respond(try query.run(store: store, customers: .only([customer])), request: request, paged: false)
    }

    /// `GET /v1/meters/{meter}/usage?from=&to=&window=&customer=&group_by=&tz=&limit=&cursor=`: one
    /// meter across customers, a page of customers at a time (in key order), each customer once.
    func meterUsage(meter code: String, request: Request) throws -> Response {
        let parameters = request.uri.queryParameters
        let meter = try queryMeter(code)
        let (plan, groupBy) = try windowPlan(request)
        let query = try queryOrError { () throws(UsageQueryError) in try UsageQuery(plan: plan, meters: [meter], groupBy: groupBy) }
        let customers = parameters.getAll("customer").filter { !$0.isEmpty }
        if !customers.isEmpty {
            var unique: [String] = []
            for customer in customers where !unique.contains(customer) { unique.append(customer) }
            return respond(try query.run(store: store, customers: .only(unique)), request: request, paged: true)
        }
        let list = try ListRequest(request)
        return respond(try query.run(store: store, customers: .all(after: list.after, limit: list.limit)), request: request, paged: true)
    }

    private func queryMeter(_ code: String) throws -> Meter {
        guard let meter = config.meter(code) else {
            throw HTTPAPIError.notFound(.unknownMeter, "no meter \(quoted(code)) in the config; use one of: \(config.meters.map(\.code).joined(separator: ", "))")
        }
        return meter
    }

    /// The windows of `from`, `to`, `window`, `tz` and the `group_by` properties (repeatable or comma-separated).
    private func windowPlan(_ request: Request) throws -> (WindowPlan, [String]) {
        let parameters = request.uri.queryParameters
        let plan = try queryOrError { () throws(UsageQueryError) -> WindowPlan in
            let zone = try WindowPlan.timeZone(parameters.get("tz"))
            guard let from = parameters.get("from"), let to = parameters.get("to"), let window = parameters.get("window") else {
                throw UsageQueryError(.invalidRange, "usage over time needs from, to and window (hour, day or month); to is exclusive")
            }
            return try WindowPlan(from: try WindowPlan.parseTime(from, name: "from", in: zone),
                                  to: try WindowPlan.parseTime(to, name: "to", in: zone),
                                  window: try UsageWindow.parse(window), timeZone: zone)
        }
        let groupBy = parameters.getAll("group_by").flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
        return (plan, groupBy)
    }

    /// Runs `body`, answering a `UsageQueryError` as 400 (404 for an unknown meter) with its code.
    private func queryOrError<T>(_ body: () throws(UsageQueryError) -> T) throws(HTTPAPIError) -> T {
        do {
            return try body()
        } catch {
            let code = HTTPAPIError.Code(rawValue: error.code.rawValue)
            throw error.code == .unknownMeter ? .notFound(code, error.message) : .badRequest(code, error.message)
        }
    }

    private func respond(_ result: UsageQueryResult, request: Request, paged: Bool) -> Response {
        if request.headers[.accept]?.contains("text/csv") == true {
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: UsageQueryFormat.csv(result))))
        }
        return .json(UsageQueryFormat.json(result, paged: paged))
    }
}
