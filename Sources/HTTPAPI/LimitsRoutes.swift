import Billing
import Hummingbird
import Limits
package import Metering
import Storage

extension APIRoutes {
    /// The most notify steps a limit may have.
    static let maximumNotifySteps = 16
    /// The highest notify step, in percent.
    static let maximumNotifyPercent = 1000

    /// `GET /v1/customers/{id}/limits?limit=&cursor=`: the limits that apply to the customer now,
    /// its own first, then its plan's, in the list convention: `{"data":[…],"has_more","next_cursor"}`,
    /// plus `"customer"` and `"limits"` (the same page as `data`, as before the list convention).
    func listLimits(customer: String, request: Request) throws -> Response {
        let list = try ListRequest(request)
        try requireKnown(customer)
        let plan = try PlanResolver(config: config, store: store, customer: customer).plan(for: customer, in: currentPeriod)
        let limits = try applicableLimits(customer: customer, plan: plan?.code)
        var start = 0
        if let after = list.after {
            guard let index = limits.firstIndex(where: { Array($0.id.utf8) == after }) else {
                throw HTTPAPIError.badRequest(.invalidParameter, "the cursor names a limit that no longer applies to \(quoted(customer)); list again from the start", field: "cursor")
            }
            start = index + 1
        }
        let page = limits[start...].prefix(list.limit)
        var items = JSONWriter()
        appendLimits(page, to: &items)
        var writer = JSONWriter()
        writer.raw("{"); writer.key("data"); writer.raw(items.output)
        writer.listTail(nextCursor: start + page.count < limits.count ? page.last.map { Array($0.id.utf8) } : nil)
        writer.raw(","); writer.key("customer"); writer.string(customer)
        writer.raw(","); writer.key("limits"); writer.raw(items.output)
        writer.raw("}")
        return .json(writer.output)
    }

    /// `POST /v1/customers/{id}/limits`: adds a stored limit of this customer; 201 with the limit.
    func addLimit(customer: String, request: Request) async throws -> Response {
        let value = try await jsonBody(request, upTo: 64 * 1024)
        var limit = try Self.readLimit(value, customer: customer, meters: Set(config.meters.map(\.code)))
        if limit.id.isEmpty { limit.id = UsageLimit.derivedID(scope: limit.scope, threshold: limit.threshold) }
        let stored = try store.storedLimits()
        if config.limits.contains(where: { $0.id == limit.id }) || stored.contains(where: { $0.id == limit.id }) {
            throw HTTPAPIError.unprocessable(.limitExists,
                                              "a limit with id \(quoted(limit.id)) already exists; give another \"id\", or delete that limit first")
        }
        guard try store.addLimit(limit) else {
            throw HTTPAPIError.unprocessable(.limitExists, "a limit with id \(quoted(limit.id)) was added meanwhile; give another \"id\"")
        }
        logger.info("limit added over HTTP", metadata: ["id": "\(limit.id)", "customer": "\(customer)"])
        var writer = JSONWriter()
        LimitJSON.append(limit, source: "stored", to: &writer)
        return .json(writer.output, status: .created)
    }

    /// `DELETE /v1/customers/{id}/limits/{limit_id}`: removes a stored limit of this customer and
    /// answers it; 404 when the customer has no such limit, 422 for a config or plan limit.
    func removeLimit(customer: String, id: String) throws -> Response {
        let plan = try PlanResolver(config: config, store: store, customer: customer).plan(for: customer, in: currentPeriod)?.code
        let applies = { (limit: UsageLimit) -> Bool in
            switch limit.scope {
            case .customer(let owner): owner == customer
            case .plan(let code): code == plan
            }
        }
        if let limit = config.limits.first(where: { $0.id == id }), applies(limit) {
            throw HTTPAPIError.unprocessable(.configLimit,
                                              "limit \(quoted(id)) comes from the config file; edit the limits in the config and restart tally to change it")
        }
        guard let limit = try store.storedLimits().first(where: { $0.id == id }), applies(limit) else {
            throw HTTPAPIError.notFound(.unknownLimit, "customer \(quoted(customer)) has no limit \(quoted(id)); GET its limits to see their ids")
        }
        if case .plan(let code) = limit.scope {
            throw HTTPAPIError.unprocessable(.planLimit,
                                              "limit \(quoted(id)) belongs to plan \(quoted(code)) and applies to all its customers; remove it with `tally limits remove \(id)`")
        }
        guard try store.removeLimit(id: id) else {
            throw HTTPAPIError.notFound(.unknownLimit, "limit \(quoted(id)) was removed meanwhile")
        }
        logger.info("limit removed over HTTP", metadata: ["id": "\(id)", "customer": "\(customer)"])
        var writer = JSONWriter()
        LimitJSON.append(limit, source: "stored", to: &writer)
        return .json(writer.output)
    }

    /// Reads a limit body: `{"id"?, "amount"? | "meter"+"quantity", "action", "notify_at"?}`. The id
    /// is empty when the body names none.
    static func readLimit(_ value: JSONValue, customer: String, meters: Set<String>) throws(HTTPAPIError) -> UsageLimit {
        guard case .object(let members) = value else {
            throw .badRequest(.invalidBody, "the body must be a JSON object like {\"amount\":\"500\",\"action\":\"warning\"} or {\"meter\":\"api_calls\",\"quantity\":1000000,\"action\":\"disable\"}")
        }
        let allowed = ["id", "amount", "meter", "quantity", "action", "notify_at", "balance_below", "balance_percent_below"]
        var fields: [String: JSONValue] = [:]
        for (key, value) in members {
            guard allowed.contains(key) else {
                throw .unprocessable(.invalidField, "unknown field \(quoted(key)); a limit has id, amount or meter and quantity, action, notify_at")
            }
            guard fields[key] == nil else { throw .unprocessable(.invalidField, "field \(quoted(key)) appears twice; send each field once") }
            fields[key] = value
        }
        var id = ""
        if let value = fields["id"], value != .null {
            guard case .string(let text) = value else { throw .unprocessable(.invalidField, "\"id\" must be a string, not \(value.kindPhrase)") }
            guard (1...EventLineParser.maxIdentifierBytes).contains(text.utf8.count),
                  !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
            else {
                throw .unprocessable(.invalidField, "\"id\" must be 1 to \(EventLineParser.maxIdentifierBytes) bytes without control characters")
            }
            id = text
        }
        let threshold: UsageLimit.Threshold
        let balanceFields = ["balance_below", "balance_percent_below"].filter { fields[$0] != nil }
        if let balanceField = balanceFields.first {
            guard balanceFields.count == 1, fields["amount"] == nil, fields["meter"] == nil, fields["quantity"] == nil, fields["notify_at"] == nil else {
                throw .unprocessable(.invalidField, "a balance limit has one of \"balance_below\" and \"balance_percent_below\", with no amount, meter, quantity or notify_at")
            }
            let value = try positiveDecimal(fields[balanceField]!, field: balanceField)
            if balanceField == "balance_percent_below" {
                guard value <= 100 else { throw .unprocessable(.invalidValue, "\"balance_percent_below\" is a percentage from above 0 to 100, not \(value)") }
                threshold = .balancePercentBelow(value)
            } else {
                threshold = .balanceBelow(value)
            }
            guard let actionValue = fields["action"], case .string(let actionText) = actionValue, let action = UsageLimit.Action(rawValue: actionText) else {
                throw .unprocessable(.invalidField, "\"action\" must be \"warning\" or \"disable\"")
            }
            return UsageLimit(id: id, scope: .customer(customer), threshold: threshold, action: action)
        }
        switch (fields["amount"], fields["meter"], fields["quantity"]) {
        case (let amount?, nil, nil):
            threshold = .amount(try positiveDecimal(amount, field: "amount"))
        case (nil, let meter?, let quantity?):
            guard case .string(let code) = meter else { throw .unprocessable(.invalidField, "\"meter\" must be a string, not \(meter.kindPhrase)") }
            guard meters.contains(code) else {
                throw .unprocessable(.unknownMeter, "no meter \(quoted(code)) in the config; use one of: \(meters.sorted().joined(separator: ", "))")
            }
            threshold = .quantity(meter: code, try positiveDecimal(quantity, field: "quantity"))
        case (nil, nil, nil):
            throw .unprocessable(.missingField, "a limit needs \"amount\", or \"meter\" and \"quantity\"")
        case (nil, _?, nil):
            throw .unprocessable(.missingField, "a limit on a meter needs \"quantity\"")
        case (nil, nil, _?):
            throw .unprocessable(.missingField, "\"quantity\" needs \"meter\": the meter whose quantity is limited")
        default:
            throw .unprocessable(.invalidField, "a limit is on \"amount\" or on \"meter\" and \"quantity\", not both")
        }
        guard let actionValue = fields["action"] else {
            throw .unprocessable(.missingField, "a limit needs \"action\": \"warning\" or \"disable\"")
        }
        guard case .string(let actionText) = actionValue, let action = UsageLimit.Action(rawValue: actionText) else {
            throw .unprocessable(.invalidField, "\"action\" must be \"warning\" or \"disable\"")
        }
        var notifyAt = [100]
        if let value = fields["notify_at"], value != .null {
            notifyAt = try notifySteps(value)
        }
        return UsageLimit(id: id, scope: .customer(customer), threshold: threshold, action: action, notifyAt: notifyAt)
    }

    /// A decimal above 0 with at most 12 fractional digits, from a number or a decimal string.
    static func positiveDecimal(_ value: JSONValue, field: String) throws(HTTPAPIError) -> ExactDecimal {
        let text: String
        switch value {
        case .number(let number): text = number
        case .string(let string): text = string
        default: throw .unprocessable(.invalidValue, "\"\(field)\" must be a decimal number or string, not \(value.kindPhrase)")
        }
        guard let decimal = ExactDecimal(text) else {
            throw .unprocessable(.invalidValue, "\"\(field)\" \(quoted(text)) is not a decimal number; write it like \"500\" or \"0.25\"")
        }
        guard !decimal.isNegative, !decimal.isZero else {
            throw .unprocessable(.invalidValue, "\"\(field)\" must be above 0, not \(decimal)")
        }
        guard decimal.fractionalDigitCount <= 12, decimal < EventLineParser.valueLimit else {
            throw .unprocessable(.invalidValue, "\"\(field)\" \(decimal) is out of range: at most 12 decimal places and below 10^18")
        }
        return decimal
    }

    /// Percent steps: 1 to 16 whole numbers from 1 to 1000, strictly ascending.
    static func notifySteps(_ value: JSONValue) throws(HTTPAPIError) -> [Int] {
        let rule = "\"notify_at\" must be 1 to \(maximumNotifySteps) whole percentages from 1 to \(maximumNotifyPercent), ascending, like [50, 80, 100]"
        guard case .array(let elements) = value, (1...maximumNotifySteps).contains(elements.count) else {
            throw .unprocessable(.invalidField, rule)
        }
        var steps: [Int] = []
        for element in elements {
            guard case .number(let text) = element, let step = Int(text), (1...maximumNotifyPercent).contains(step),
                  step > (steps.last ?? 0)
            else { throw .unprocessable(.invalidField, rule) }
            steps.append(step)
        }
        return steps
    }
}

/// What the dashboard's forms send, read by the same rules as the API's bodies.
package enum FormInput {
    /// A customer's limit from a form's fields (the dashboard's): `target` (`amount` or a meter
    /// code), `value`, `action`, optional `notify_at` (`50, 80, 100`) and `id`, checked exactly as
    /// `POST /v1/customers/{id}/limits` checks its body; the id derived when none is given.
    package static func limit(fromForm fields: [String: String], customer: String, meters: Set<String>) throws(HTTPAPIError) -> UsageLimit {
        var members: [(key: String, value: JSONValue)] = []
        let target = fields["target", default: ""]
        let value = fields["value", default: ""].trimmingSpaces()
        if target == "amount" || target == "balance_below" || target == "balance_percent_below" {
            members.append((target, .string(value)))
        } else {
            members.append(("meter", .string(target)))
            members.append(("quantity", .string(value)))
        }
        members.append(("action", .string(fields["action", default: ""])))
        if let id = fields["id"]?.trimmingSpaces(), !id.isEmpty { members.append(("id", .string(id))) }
        if let steps = fields["notify_at"]?.trimmingSpaces(), !steps.isEmpty {
            members.append(("notify_at", .array(steps.split(separator: ",").map { .number(String($0).trimmingSpaces()) })))
        }
        var limit = try APIRoutes.readLimit(.object(members), customer: customer, meters: meters)
        if limit.id.isEmpty { limit.id = UsageLimit.derivedID(scope: limit.scope, threshold: limit.threshold) }
        return limit
    }

    /// `2026-12-01` (midnight UTC) or an RFC 3339 time, as `PUT /v1/customers/{id}/plan` reads `from`.
    package static func date(_ text: String) -> Timestamp? {
        if let time = Timestamp.parseRFC3339(text) { return time }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.count == 3, let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]) else {
            return nil
        }
        return Timestamp(year: year, month: month, day: day)
    }
}
