import HTTPAPI
import Hummingbird
import Metering
import Storage

/// The customer page's forms: assign a plan, add a stored limit, remove one. Each needs an admin
/// session and its CSRF token (checked by `action`), answers 303 back to the page with a notice,
/// or the page again with the error and 422.
extension Dashboard {
    func assignPlan(customer: String, fields: [String: String], session: SessionSigner.Session, request: Request) throws -> Response {
        let code = fields["plan", default: ""]
        guard config.plans.contains(where: { $0.code == code }) else {
            return try customerPage(customer: customer, request: request, viewer: .operator(session), status: .unprocessableContent,
                                    error: "No plan \"\(code)\" in the config; choose one of: \(config.plans.map(\.code).joined(separator: ", ")).")
        }
        var from = Timestamp.now()
        if let text = fields["from"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            guard let time = FormInput.date(text) else {
                return try customerPage(customer: customer, request: request, viewer: .operator(session), status: .unprocessableContent,
                                        error: "\"\(text)\" is not a date: write 2026-12-01 (midnight UTC) or an RFC 3339 time like 2026-12-01T00:00:00Z.")
            }
            from = time
        }
        try store.setPlan(customer: customer, plan: code, from: from)
        logger.info("plan assigned in the dashboard", metadata: ["customer": "\(customer)", "plan": "\(code)", "from": "\(from.rfc3339)", "key": "\(session.keyName)"])
        return redirect("/ui/customers/\(percentEncoded(customer))?done=plan")
    }

    func addLimit(customer: String, fields: [String: String], session: SessionSigner.Session, request: Request) throws -> Response {
        guard try isKnown(customer) else {
            throw DashboardFailure(.notFound, "No such customer", "Tally has no usage, plan or limit for \"\(customer)\"")
        }
        let limit: UsageLimit
        do {
            limit = try FormInput.limit(fromForm: fields, customer: customer, meters: Set(config.meters.map(\.code)))
        } catch {
            return try customerPage(customer: customer, request: request, viewer: .operator(session), status: .unprocessableContent,
                                    error: "The limit was not added: \(error.message).")
        }
        let stored = try store.storedLimits()
        let exists = config.limits.contains { $0.id == limit.id } || stored.contains { $0.id == limit.id }
        guard !exists, try store.addLimit(limit) else {
            return try customerPage(customer: customer, request: request, viewer: .operator(session), status: .unprocessableContent,
                                    error: "A limit with id \"\(limit.id)\" already exists: give the new one another id, or remove that one first.")
        }
        logger.info("limit added in the dashboard", metadata: ["customer": "\(customer)", "id": "\(limit.id)", "key": "\(session.keyName)"])
        return redirect("/ui/customers/\(percentEncoded(customer))?done=limit-added")
    }

    func removeLimit(customer: String, id: String, session: SessionSigner.Session) throws -> Response {
        guard let limit = try store.storedLimits().first(where: { $0.id == id }), limit.scope == .customer(customer) else {
            throw DashboardFailure(.notFound, "No such limit",
                                   "\"\(customer)\" has no stored limit \"\(id)\"; limits from the config or a plan are changed in the config")
        }
        _ = try store.removeLimit(id: id)
        logger.info("limit removed in the dashboard", metadata: ["customer": "\(customer)", "id": "\(id)", "key": "\(session.keyName)"])
        return redirect("/ui/customers/\(percentEncoded(customer))?done=limit-removed")
    }
}
