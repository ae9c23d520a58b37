import Billing
import Hummingbird
import Limits
import Metering
import Storage
import TallyConfiguration

/// The back office's customer routes: the directory, one customer's state, plan assignment, plans.
extension APIRoutes {
    /// `GET /v1/customers?limit=&cursor=&plan=&query=`: every customer the store or the config knows,
    /// in byte order of id: `{"data":[{"id","plan","plan_source"}],"has_more","next_cursor"}`.
    func listCustomers(_ request: Request) throws -> Response {
        let list = try ListRequest(request)
        let query = request.uri.queryParameters
        let prefix = query["query"].map(String.init) ?? ""
        guard prefix.utf8.count <= EventLineParser.maxIdentifierBytes else {
            throw HTTPAPIError.badRequest(.invalidParameter, "query is \(prefix.utf8.count) bytes long; customer ids have at most \(EventLineParser.maxIdentifierBytes)", field: "query")
        }
        var planFilter: String?
        if let code = query["plan"], !code.isEmpty {
            guard config.plans.contains(where: { $0.code == code }) else { throw unknownPlan(String(code), status: 400, field: "plan") }
            planFilter = String(code)
        }
        let page = try CustomerListing(config: config, store: store)
            .page(after: list.after, prefix: prefix, plan: planFilter, limit: list.limit, period: currentPeriod)
        var writer = JSONWriter()
        writer.raw("{"); writer.key("data"); writer.raw("[")
        for (index, row) in page.rows.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("id"); writer.string(row.id)
            writer.raw(","); writer.key("plan")
            if let plan = row.plan { writer.string(plan) } else { writer.raw("null") }
            writer.raw(","); writer.key("plan_source"); writer.string(row.source.rawValue)
            writer.raw("}")
        }
        writer.raw("]")
        writer.listTail(nextCursor: page.hasMore ? page.rows.last.map { Array($0.id.utf8) } : nil)
        writer.raw("}")
        return .json(writer.output)
    }

    /// `GET /v1/customers/{id}`: the customer's state in one answer: plan, period, usage, estimate,
    /// limits, entitlements and whether ingest answers it `blocked`.
    func customerState(customer: String) throws -> Response {
        try requireKnown(customer)
        let period = currentPeriod
        let resolver = try PlanResolver(config: config, store: store, customer: customer)
        let plan = resolver.plan(for: customer, in: period)
        let records = try store.usage(customer: customer, periodStart: period.start)
        let estimate = try estimate(customer: customer, resolver: resolver)
        let evaluator = try limitEvaluator(for: customer)
        let limits = try applicableLimits(customer: customer, plan: plan?.code)

        var writer = JSONWriter()
        writer.raw("{"); appendPlanFields(customer: customer, resolver: resolver, period: period, to: &writer)
        writer.raw(","); writer.key("period"); StatementFormat.bounds(period, into: &writer)
        writer.raw(","); writer.key("usage")
        UsageReport(config: config, customer: customer, period: period, records: records).appendRows(to: &writer)
        writer.raw(","); writer.key("estimate"); writer.raw(StatementFormat.json(estimate))
        writer.raw(","); writer.key("limits"); appendLimits(limits, to: &writer)
        writer.raw(","); writer.key("entitlements"); writer.raw("[")
        for (index, meter) in config.meters.enumerated() {
            if index > 0 { writer.raw(",") }
            let state = try entitlementState(customer: customer, meter: meter.code, period: period, usage: records, evaluator: evaluator,
                                             credits: estimate.credits)
            state.append(meter: meter.code, balance: StatementFormat.money(estimate.credits.balance, estimate.currency), to: &writer)
        }
        writer.raw("],"); writer.key("balance"); writer.string(StatementFormat.money(estimate.credits.balance, estimate.currency))
        writer.raw(","); writer.key("blocked")
        writer.raw(isBlocked(customer: customer, period: period, usage: records, evaluator: evaluator, credits: estimate.credits) ? "true" : "false")
        writer.raw("}")
        return .json(writer.output)
    }

    /// Whether a `disable` limit of the customer (on any meter or on the amount) is reached.
    func isBlocked(customer: String, period: PeriodInterval, usage: [UsageRecord], evaluator: CommitLimitEvaluator,
                   credits: CreditPosition) -> Bool {
        Entitlement.isBlocked(customer: customer, period: period, usage: usage, evaluator: evaluator, credits: credits)
    }

    /// The limits that apply to the customer now, its own first, then its plan's.
    func applicableLimits(customer: String, plan: String?) throws -> [UsageLimit] {
        LimitPolicy(config: config, storedLimits: try store.storedLimits()).limits(for: customer, plan: plan)
    }

    /// `PUT /v1/customers/{id}/plan` with `{"plan","from"?}`: as `tally customers set-plan`.
    func setPlan(customer: String, request: Request) async throws -> Response {
        let value = try await jsonBody(request, upTo: 16 * 1024)
        guard case .object(let members) = value else {
            throw HTTPAPIError.badRequest(.invalidBody, "the body must be a JSON object like {\"plan\":\"starter\"} or {\"plan\":\"pro\",\"from\":\"2026-12-01\"}")
        }
        var code: String?
        var from = Timestamp.now()
        for (key, value) in members {
            switch key {
            case "plan":
                guard case .string(let text) = value else {
                    throw HTTPAPIError.unprocessable(.invalidField, "\"plan\" must be a plan code string, not \(value.kindPhrase)", field: "plan")
                }
                code = text
            case "from":
                guard case .string(let text) = value, let time = Self.parseDate(text) else {
                    throw HTTPAPIError.unprocessable(.invalidField, "\"from\" must be a date (2026-12-01, midnight UTC) or an RFC 3339 time (2026-12-01T00:00:00Z)", field: "from")
                }
                from = time
            default:
                throw HTTPAPIError.unprocessable(.invalidField, "unknown field \(quoted(key)); the body has \"plan\" and optionally \"from\"", field: key)
            }
        }
        guard let code else { throw HTTPAPIError.unprocessable(.missingField, "the body needs \"plan\": a plan code from the config", field: "plan") }
        guard config.plans.contains(where: { $0.code == code }) else { throw unknownPlan(code, status: 422, field: "plan") }
        try store.setPlan(customer: customer, plan: code, from: from)
        logger.info("plan assigned over HTTP", metadata: ["customer": "\(customer)", "plan": "\(code)", "from": "\(from.rfc3339)"])
        let period = currentPeriod
        let resolver = try PlanResolver(config: config, store: store, customer: customer)
        var writer = JSONWriter()
        writer.raw("{"); appendPlanFields(customer: customer, resolver: resolver, period: period, to: &writer)
        writer.raw(","); writer.key("assignments"); writer.raw("[")
        for (index, assignment) in try store.planAssignments(customer: customer).enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("from"); writer.string(assignment.from.rfc3339)
            writer.raw(","); writer.key("plan"); writer.string(assignment.plan)
            writer.raw("}")
        }
        writer.raw("]}")
        return .json(writer.output)
    }

    /// `unknown_plan`: the code is not a plan of the config.
    func unknownPlan(_ code: String, status: Int, field: String? = nil) -> HTTPAPIError {
        HTTPAPIError(status: status, code: .unknownPlan,
                     message: "no plan \(quoted(code)) in the config; plans: \(config.plans.map(\.code).joined(separator: ", "))", field: field)
    }

    /// `"id","plan","plan_source"` of `customer` in `period` (inside an object being written).
    func appendPlanFields(customer: String, resolver: PlanResolver, period: PeriodInterval, to writer: inout JSONWriter) {
        writer.key("id"); writer.string(customer)
        writer.raw(","); writer.key("plan")
        if let plan = resolver.plan(for: customer, in: period) { writer.string(plan.code) } else { writer.raw("null") }
        writer.raw(","); writer.key("plan_source"); writer.string(resolver.source(for: customer, in: period).rawValue)
    }

    /// `[…]` of limits, each with its source (`config` or `stored`), as the limits route lists them.
    func appendLimits(_ limits: some Collection<UsageLimit>, to writer: inout JSONWriter) {
        let configIDs = Set(config.limits.map(\.id))
        writer.raw("[")
        for (index, limit) in limits.enumerated() {
            if index > 0 { writer.raw(",") }
            LimitJSON.append(limit, source: configIDs.contains(limit.id) ? "config" : "stored", to: &writer)
        }
        writer.raw("]")
    }

    /// `2026-12-01` (midnight UTC) or an RFC 3339 time.
    static func parseDate(_ text: String) -> Timestamp? { FormInput.date(text) }

    /// `GET /v1/plans`: the configured plans, in config order, as the list convention pages them.
    func listPlans(_ request: Request) throws -> Response {
        let list = try ListRequest(request)
        var plans = config.plans[...]
        if let after = list.after {
            guard let index = config.plans.firstIndex(where: { Array($0.code.utf8) == after }) else {
                throw HTTPAPIError.badRequest(.invalidParameter, "the cursor names a plan the config no longer has; list again from the start", field: "cursor")
            }
            plans = config.plans[(index + 1)...]
        }
        let page = plans.prefix(list.limit)
        var writer = JSONWriter()
        writer.raw("{"); writer.key("data"); writer.raw("[")
        for (index, plan) in page.enumerated() {
            if index > 0 { writer.raw(",") }
            PlanJSON.append(plan, to: &writer)
        }
        writer.raw("]")
        writer.listTail(nextCursor: plans.count > page.count ? page.last.map { Array($0.code.utf8) } : nil)
        writer.raw("}")
        return .json(writer.output)
    }

    /// `GET /v1/plans/{code}`: one plan, its prices in the shape `tally quote --price` reads.
    func plan(code: String) throws -> Response {
        guard let plan = config.plans.first(where: { $0.code == code }) else { throw unknownPlan(code, status: 404) }
        var writer = JSONWriter()
        PlanJSON.append(plan, to: &writer)
        return .json(writer.output)
    }
}

extension APIRoutes {
    /// `POST /v1/customers/{id}/portal_tokens` with an optional `{"ttl":"1h"}` (1m to 30d): a
    /// signed token reading this customer's usage, estimate, limits and entitlements; 201
    /// `{"token","customer","expires_at"}`.
    func mintPortalToken(customer: String, request: Request) async throws -> Response {
        guard let portalSecret else {
            throw HTTPAPIError(status: 503, code: .portalDisabled,
                               message: "portal tokens need a signing secret: set http.portal_secret_env in the config to an environment variable that holds one, and restart")
        }
        var ttl = PortalToken.defaultTTL
        if let value = try await jsonBody(request, upTo: 4 * 1024, allowingEmpty: true) {
            guard case .object(let members) = value else {
                throw HTTPAPIError.badRequest(.invalidBody, "the body is empty or a JSON object like {\"ttl\":\"1h\"}")
            }
            for (key, value) in members {
                guard key == "ttl" else {
                    throw HTTPAPIError.unprocessable(.invalidField, "unknown field \(quoted(key)); the body has only \"ttl\"", field: key)
                }
                guard case .string(let text) = value, let nanoseconds = try? DurationText.parse(text), PortalToken.ttlRange.contains(nanoseconds) else {
                    throw HTTPAPIError.unprocessable(.invalidField, "\"ttl\" must be a duration from 1m to 30d, like \"1h\" or \"7d\"", field: "ttl")
                }
                ttl = nanoseconds
            }
        }
        try requireKnown(customer)
        let token = PortalToken(customer: customer, expiresAt: Timestamp.now().adding(nanoseconds: ttl))
        logger.info("portal token minted over HTTP", metadata: ["customer": "\(customer)", "expires_at": "\(token.expiresAt.rfc3339)"])
        var writer = JSONWriter()
        writer.raw("{"); writer.key("token"); writer.string(token.signed(secret: portalSecret))
        writer.raw(","); writer.key("customer"); writer.string(customer)
        writer.raw(","); writer.key("expires_at"); writer.string(token.expiresAt.rfc3339)
        writer.raw("}")
        return .json(writer.output, status: .created)
    }
}
