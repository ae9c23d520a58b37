import Billing
import Credits
import Hummingbird
import Metering
import Storage

/// Prepaid credits over HTTP: a customer's grants, granting (admin), voiding (admin), the ledger.
extension APIRoutes {
    func registerCredits(on router: Router<BasicRequestContext>) {
        router.get("/v1/customers/:customer/credits") { _, context in try credits(customer: try customerParameter(context)) }
        router.post("/v1/customers/:customer/credits") { request, context in
            try await grantCredits(customer: try customerParameter(context), request: request)
        }
        router.delete("/v1/customers/:customer/credits/:grant") { _, context in
            try voidCredits(customer: try customerParameter(context), id: try pathParameter(context, "grant", name: "grant id"))
        }
        router.get("/v1/customers/:customer/credits/ledger") { _, context in try creditLedger(customer: try customerParameter(context)) }
    }

    /// `GET /v1/customers/{id}/credits`: as `tally credits list --json`.
    func credits(customer: String) throws -> Response {
        .json(CreditFormat.json(try creditSummary(customer)))
    }

    /// `GET /v1/customers/{id}/credits/ledger`: as `tally credits ledger --json`.
    func creditLedger(customer: String) throws -> Response {
        let (summary, entries) = try readingCredits(of: customer) { try $0.ledger(customer: customer) }
        return .json(CreditFormat.ledgerJSON(summary, entries: entries))
    }

    func creditSummary(_ customer: String) throws -> CreditSummary {
        try readingCredits(of: customer) { try $0.summary(customer: customer) }
    }

    /// `read` with the customer's credit book; a failure that is not the store's is a 500.
    private func readingCredits<T>(of customer: String, _ read: (CreditBook) throws -> T) throws -> T {
        do {
            return try read(CreditBook(config: config, store: store))
        } catch let error as StoreError {
            throw error
        } catch {
            throw HTTPAPIError(status: 500, code: .internalError, message: "cannot read the credits of \(quoted(customer)): \(error)")
        }
    }

    /// `POST /v1/customers/{id}/credits` with `{"amount","priority"?,"effective_at"?,"expires_at"?,"id"?,"reason"?}`:
    /// 201 and the grant; the same `id` and content again: 200 and the grant as it was; other content: 409.
    func grantCredits(customer: String, request: Request) async throws -> Response {
        let value = try await jsonBody(request, upTo: 16 * 1024)
        guard case .object(let members) = value else {
            throw HTTPAPIError.badRequest(.invalidBody, "the body must be a JSON object like {\"amount\":\"100\"}")
        }
        var amount: String?
        var priority = 0
        var effective: Timestamp?
        var expires: Timestamp?
        var id: String?
        var reason: String?
        for (key, value) in members {
            switch (key, value) {
            case ("amount", .string(let text)), ("amount", .number(let text)): amount = text
            case ("priority", .number(let text)):
                guard let number = Int(text) else { throw HTTPAPIError.unprocessable(.invalidField, "\"priority\" must be a whole number", field: "priority") }
                priority = number
            case ("effective_at", .string(let text)), ("expires_at", .string(let text)):
                guard let time = FormInput.date(text) else {
                    throw HTTPAPIError.unprocessable(.invalidField, "\"\(key)\" must be a date (2026-12-01) or an RFC 3339 time", field: key)
                }
                if key == "effective_at" { effective = time } else { expires = time }
            case ("id", .string(let text)): id = text
            case ("reason", .string(let text)): reason = text
            case ("effective_at", .null), ("expires_at", .null), ("id", .null), ("reason", .null): break
            case ("amount", _), ("priority", _), ("effective_at", _), ("expires_at", _), ("id", _), ("reason", _):
                throw HTTPAPIError.unprocessable(.invalidField, "\"\(key)\" has the wrong type: \(value.kindPhrase)", field: key)
            default:
                throw HTTPAPIError.unprocessable(.invalidField, "unknown field \(quoted(key)); a grant has amount, priority, effective_at, expires_at, id, reason", field: key)
            }
        }
        guard let amount else { throw HTTPAPIError.unprocessable(.missingField, "a grant needs \"amount\", like \"100\"", field: "amount") }
        let book = CreditBook(config: config, store: store)
        do {
            let grant = try book.grant(customer: customer, amount: amount, priority: priority, effective: effective, expires: expires,
                                       id: id, reason: reason)
            let (stored, created) = try book.record(grant, comparingEffectiveAt: effective != nil)
            if created { logger.info("credits granted over HTTP", metadata: ["customer": "\(customer)", "id": "\(stored.id)", "amount": "\(stored.amount)"]) }
            var writer = JSONWriter()
            CreditFormat.append(stored, to: &writer)
            return .json(writer.output, status: created ? .created : .ok)
        } catch let error as CreditError {
            switch error.code {
            case "idempotency_conflict": throw HTTPAPIError(status: 409, code: .idempotencyConflict, message: error.message, field: "id")
            case "invalid_amount": throw HTTPAPIError.unprocessable(.invalidAmount, error.message, field: error.field)
            case "no_plan": throw HTTPAPIError.unprocessable(.noPlan, error.message)
            case "unavailable": throw HTTPAPIError(status: 503, code: .unavailable, message: error.message)
            default: throw HTTPAPIError.unprocessable(.invalidField, error.message, field: error.field)
            }
        }
    }

    /// `DELETE /v1/customers/{id}/credits/{grant_id}`: voids the grant and answers it; 404 when the
    /// customer has no such grant.
    func voidCredits(customer: String, id: String) throws -> Response {
        guard let grant = try store.voidCredits(id: id, customer: customer, at: .now()) else {
            throw HTTPAPIError.notFound(.unknownGrant, "\(quoted(customer)) has no credit grant \(quoted(id)); GET /v1/customers/{id}/credits lists them")
        }
        logger.info("credits voided over HTTP", metadata: ["customer": "\(customer)", "id": "\(id)"])
        var writer = JSONWriter()
        CreditFormat.append(grant, to: &writer)
        return .json(writer.output)
    }
}
