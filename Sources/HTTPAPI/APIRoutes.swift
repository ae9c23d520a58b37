import Billing
import Foundation
import Hummingbird
import Ingest
import Limits
import Logging
import TallyConfiguration
import Metering
import Storage

/// The routes of the HTTP API and what they share: the config, the store, the writer, the parser.
struct APIRoutes: Sendable {
    let config: TallyConfig
    let store: TallyStore
    let writer: GroupCommitWriter
    let parser: EventLineParser
    let logger: Logger
    let metrics: APIMetrics
    /// `GET /openapi.json`, built once from the config's meters and plans.
    let openAPIText: String
    /// The portal tokens' signing secret (from `http.portal_secret_env`); nil: none are minted or accepted.
    let portalSecret: [UInt8]?

    /// The most events one `POST /v1/events` may carry.
    static let maximumEventsPerRequest = 1000

    func register(on router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in Response.json(#"{"status":"ok"}"#) }
        router.get("/openapi.json") { _, _ in openAPI() }
        router.get("/metrics") { _, _ in
            let text = try metrics.scrape(store: store)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        }
        router.post("/v1/events") { request, _ in try await postEvents(request) }
        router.get("/v1/customers") { request, _ in try listCustomers(request) }
        router.get("/v1/customers/:customer") { _, context in try customerState(customer: try customerParameter(context)) }
        router.put("/v1/customers/:customer/plan") { request, context in
            try await setPlan(customer: try customerParameter(context), request: request)
        }
        router.get("/v1/plans") { request, _ in try listPlans(request) }
        router.post("/v1/customers/:customer/portal_tokens") { request, context in
            try await mintPortalToken(customer: try customerParameter(context), request: request)
        }
        router.get("/v1/plans/:code") { _, context in try plan(code: try pathParameter(context, "code", name: "plan code")) }
        router.get("/v1/customers/:customer/usage") { request, context in
            try usage(customer: try customerParameter(context), request: request)
        }
        router.get("/v1/customers/:customer/estimate") { _, context in
            try estimate(customer: try customerParameter(context))
        }
        router.get("/v1/customers/:customer/limits") { request, context in
            try listLimits(customer: try customerParameter(context), request: request)
        }
        router.post("/v1/customers/:customer/limits") { request, context in
            try await addLimit(customer: try customerParameter(context), request: request)
        }
        router.delete("/v1/customers/:customer/limits/:limit") { _, context in
            try removeLimit(customer: try customerParameter(context), id: try pathParameter(context, "limit", name: "limit id"))
        }
        router.get("/v1/customers/:customer/entitlements/:meter") { _, context in
            try entitlement(customer: try customerParameter(context), meter: try pathParameter(context, "meter", name: "meter"))
        }
        registerCredits(on: router)
        router.get("/v1/alerts") { request, _ in try alerts(request) }
        router.get("/v1/meters/:meter/usage") { request, context in
            try meterUsage(meter: try pathParameter(context, "meter", name: "meter"), request: request)
        }
    }

    // MARK: Bodies

    /// The request's body (at most `limit` bytes) as JSON; 400 `invalid_json` saying where it is not.
    func jsonBody(_ request: Request, upTo limit: Int) async throws -> JSONValue {
        // Only nil when empty bodies are allowed.
        try await jsonBody(request, upTo: limit, allowingEmpty: false)!
    }

    /// As `jsonBody(_:upTo:)`; with `allowingEmpty`, nil for an empty body.
    func jsonBody(_ request: Request, upTo limit: Int, allowingEmpty: Bool) async throws -> JSONValue? {
        var request = request
        let body = try await request.collectBody(upTo: limit)
        if allowingEmpty, body.readableBytes == 0 { return nil }
        do {
            return try JSONValue.parse(Array(body.readableBytesView))
        } catch {
            throw HTTPAPIError.badRequest(.invalidJSON, "the body is not valid JSON: expected \(error.expected) at byte \(error.offset)")
        }
    }

    // MARK: Parameters

    /// A path parameter, percent-decoded.
    func pathParameter(_ context: BasicRequestContext, _ key: String, name: String) throws(HTTPAPIError) -> String {
        guard let raw = context.parameters.get(key), let value = raw.removingPercentEncoding, !value.isEmpty else {
            throw .badRequest(.invalidParameter, "the \(name) in the path is empty or not valid percent-encoded UTF-8", field: key)
        }
        return value
    }

    /// The `{customer}` path parameter: 1…255 bytes, as event `customer` fields are.
    func customerParameter(_ context: BasicRequestContext) throws(HTTPAPIError) -> String {
        let customer = try pathParameter(context, "customer", name: "customer id")
        guard customer.utf8.count <= EventLineParser.maxIdentifierBytes else {
            throw .badRequest(.invalidParameter, "the customer id is \(customer.utf8.count) bytes long; customer ids have at most \(EventLineParser.maxIdentifierBytes) bytes", field: "customer")
        }
        return customer
    }

    /// 404 unless Tally knows the customer: it has usage in some period, a plan assignment (config
    /// or stored), or a limit of its own (the customer directory, `GET /v1/customers`).
    func requireKnown(_ customer: String) throws -> Void {
        if try CustomerListing(config: config, store: store).knows(customer) { return }
        throw HTTPAPIError.notFound(.unknownCustomer,
                                    "no customer \(quoted(customer)): Tally has no usage, plan or limit for it; check the id")
    }

    var currentPeriod: PeriodInterval { config.billing.period.interval(containing: .now()) }

    // MARK: Usage and estimates

    /// `GET /v1/customers/{id}/usage?period=2026-11`: as `tally usage --json`.
    func usage(customer: String, request: Request) throws -> Response {
        if request.uri.queryParameters.get("window") != nil { return try usageOverTime(customer: customer, request: request) }
        let period: PeriodInterval
        if let label = request.uri.queryParameters["period"], !label.isEmpty {
            guard let interval = config.billing.period.interval(label: String(label)) else {
                throw HTTPAPIError.badRequest(.invalidParameter,
                                              "period \(quoted(String(label))) is not a period: write YYYY-MM (2026-11), YYYY-MM-DD (2026-11-22) or YYYY (2026)")
            }
            period = interval
        } else {
            period = currentPeriod
        }
        try requireKnown(customer)
        let records = try store.usage(customer: customer, periodStart: period.start)
        return .json(UsageReport(config: config, customer: customer, period: period, records: records).json)
    }

    /// `GET /v1/customers/{id}/estimate`: as `tally estimate --json`.
    func estimate(customer: String) throws -> Response {
        try requireKnown(customer)
        let resolver = try PlanResolver(config: config, store: store, customer: customer)
        return .json(StatementFormat.json(try estimate(customer: customer, resolver: resolver)))
    }

    /// The customer's estimate now, rated with `resolver`'s plan.
    func estimate(customer: String, resolver: PlanResolver) throws -> Estimate {
        let estimator = Estimator(config: config, resolver: resolver)
        do {
            return try estimator.estimate(customer: customer, store: store)
        } catch let error as StoreError {
            throw error
        } catch {
            throw HTTPAPIError(status: 500, code: .internalError, message: "cannot estimate \(quoted(customer)): \(error)")
        }
    }

    // MARK: Entitlements

    /// `GET /v1/customers/{id}/entitlements/{meter}`: `{"has_access","used","limit","remaining","resets_at"}`.
    ///
    /// `used` is the meter's quantity this period summed over its groups; `limit` the applicable
    /// quantity limit on the meter (the lowest `disable` one, else the lowest one; null when none);
    /// `has_access` is false once a `disable` limit on the meter or on the amount is reached, judged
    /// exactly as ingest judges `"blocked":true`.
    func entitlement(customer: String, meter: String) throws -> Response {
        guard config.meter(meter) != nil else {
            throw HTTPAPIError.notFound(.unknownMeter, "no meter \(quoted(meter)) in the config; use one of: \(config.meters.map(\.code).joined(separator: ", "))")
        }
        try requireKnown(customer)
        let period = currentPeriod
        let usage = try store.usage(customer: customer, periodStart: period.start)
        let estimate = try estimate(customer: customer, resolver: try PlanResolver(config: config, store: store, customer: customer))
        let state = try entitlementState(customer: customer, meter: meter, period: period, usage: usage,
                                         evaluator: try limitEvaluator(for: customer), credits: estimate.credits)
        var writer = JSONWriter()
        state.append(meter: nil, balance: StatementFormat.money(estimate.credits.balance, estimate.currency), to: &writer)
        return .json(writer.output)
    }

    func entitlementState(customer: String, meter: String, period: PeriodInterval, usage: [UsageRecord],
                          evaluator: CommitLimitEvaluator, credits: CreditPosition) throws -> Entitlement {
        try Entitlement(customer: customer, meter: meter, period: period, usage: usage, evaluator: evaluator, credits: credits)
    }

    /// An evaluator loaded with the stored limits and `customer`'s plan assignments, as the ingest
    /// writer has them for that customer.
    func limitEvaluator(for customer: String) throws(StoreError) -> CommitLimitEvaluator {
        try CommitLimitEvaluator.forCustomer(customer, config: config, store: store)
    }

    // MARK: Alerts

    /// `GET /v1/alerts?customer=&since=&limit=&cursor=`: fired alerts, newest first, in the list
    /// convention (`data`, `has_more`, `next_cursor`). `page=` (and the `alerts`, `page`, `limit`
    /// keys of the answer) still work for one release: deprecated.
    func alerts(_ request: Request) throws -> Response {
        let query = request.uri.queryParameters
        let customer = query["customer"].flatMap { $0.isEmpty ? nil : String($0) }
        var since: Timestamp?
        if let text = query["since"], !text.isEmpty {
            guard let timestamp = Timestamp.parseRFC3339(text) else {
                throw HTTPAPIError.badRequest(.invalidParameter, "since \(quoted(String(text))) is not an RFC 3339 time; write it like 2026-11-22T10:00:00Z", field: "since")
            }
            since = timestamp
        }
        let limit = try integerParameter(query["limit"], name: "limit", default: 50)
        guard (1...100).contains(limit) else {
            throw HTTPAPIError.unprocessable(.outOfRange, "limit is \(limit); ask for 1 to 100 alerts per page", field: "limit")
        }
        let page = try integerParameter(query["page"], name: "page", default: 1)
        guard page >= 1 else { throw HTTPAPIError.unprocessable(.outOfRange, "page is \(page); pages count from 1", field: "page") }
        var before: UInt64?
        if let text = query["cursor"], !text.isEmpty {
            guard query["page"] == nil else {
                throw HTTPAPIError.badRequest(.invalidParameter, "pass cursor or page, not both; page is deprecated", field: "page")
            }
            guard let sequence = ListCursor.sequence(String(text)) else {
                throw HTTPAPIError.badRequest(.invalidParameter, "cursor \(quoted(String(text))) is not a cursor this API gave out: pass next_cursor from the previous page as it is", field: "cursor")
            }
            before = sequence
        }
        let (offset, overflow) = (page - 1).multipliedReportingOverflow(by: limit)
        // One more than the page, to know whether more follow.
        var found = overflow ? [] : try store.recentAlerts(customer: customer, since: since, before: before, offset: offset, limit: limit + 1)
        let hasMore = found.count > limit
        if hasMore { found.removeLast() }
        var items = JSONWriter()
        items.raw("[")
        for (index, alert) in found.enumerated() {
            if index > 0 { items.raw(",") }
            items.raw(alert.json)
        }
        items.raw("]")
        let next = hasMore ? found.last.map { ListCursor.encode(sequence: $0.sequence) } : nil
        var writer = JSONWriter()
        writer.raw("{"); writer.key("data"); writer.raw(items.output)
        writer.listTail(nextCursor: next)
        writer.raw(","); writer.key("alerts"); writer.raw(items.output)
        writer.raw(","); writer.key("page"); writer.raw(String(page))
        writer.raw(","); writer.key("limit"); writer.raw(String(limit))
        writer.raw("}")
        return .json(writer.output)
    }

    func integerParameter(_ text: Substring?, name: String, default value: Int) throws(HTTPAPIError) -> Int {
        guard let text, !text.isEmpty else { return value }
        guard text.utf8.count <= 18, let number = Int(text) else {
            throw .badRequest(.invalidParameter, "\(name) \(quoted(String(text))) is not a whole number", field: name)
        }
        return number
    }
}

extension Entitlement {
    /// `{"meter"?,"has_access","used","limit","remaining","resets_at","balance"}` (`balance`: the
    /// customer's prepaid credits left, in its plan's currency).
    func append(meter: String?, balance: String, to writer: inout JSONWriter) {
        writer.raw("{")
        if let meter { writer.key("meter"); writer.string(meter); writer.raw(",") }
        writer.key("has_access"); writer.raw(hasAccess ? "true" : "false")
        writer.raw(","); writer.key("used"); writer.string(used.description)
        writer.raw(","); writer.key("limit")
        if let limit { writer.string(limit.description) } else { writer.raw("null") }
        writer.raw(","); writer.key("remaining")
        if let remaining { writer.string(remaining.description) } else { writer.raw("null") }
        writer.raw(","); writer.key("resets_at"); writer.string(resetsAt.rfc3339)
        writer.raw(","); writer.key("balance"); writer.string(balance)
        writer.raw("}")
    }
}

/// `"text"` for messages, cut to 64 characters.
func quoted(_ text: String) -> String {
    text.count <= 64 ? "\"\(text)\"" : "\"\(text.prefix(64))…\""
}
