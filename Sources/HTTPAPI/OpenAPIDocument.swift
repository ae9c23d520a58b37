import Foundation
import Hummingbird

/// The OpenAPI 3.1 description of every route the server has, served at `GET /openapi.json`
/// (no key needed) for client generators; CI validates it and exercises a live daemon against it
/// (`scripts/openapi-check.sh`).
enum OpenAPIDocument {
    typealias Object = OpenAPIParts.Object
    private typealias P = OpenAPIParts

    /// The document as JSON text (keys sorted, so it is the same on every start), with the
    /// configured meter and plan codes as the values of their path parameters.
    static func text(meters: [String], plans: [String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: document(meters: meters, plans: plans), options: [.sortedKeys]))
            ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func document(meters: [String], plans: [String]) -> Object {
        [
            "openapi": "3.1.0",
            "info": [
                "title": "Tally HTTP API",
                "version": "1",
                "description": "Usage metering and rating: ingest events, read usage (per period and over time), estimates, limits, entitlements, alerts, customers and plans. Decimals are strings. Every route but /healthz and /openapi.json needs Authorization: Bearer <key>.",
            ],
            "servers": [["url": "/"]],
            "security": [["bearer": [String]()]],
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": P.schemas,
            ],
            "paths": paths(meter: codes("meter", "A meter code from the config.", meters),
                           plan: codes("code", "A plan code from the config.", plans)),
        ]
    }

    /// One operation: `responses` plus the errors `errorStatuses` name (401 and 403 unless public).
    static func operation(_ id: String, _ summary: String, parameters: [Object] = [], body: Object? = nil,
                          responses: Object, errors errorStatuses: [Int], isPublic: Bool = false) -> Object {
        var all = responses
        // A body that is not JSON is refused with 415 wherever a body is read.
        let bodyErrors = body == nil ? [] : [415]
        for (status, response) in P.errors(errorStatuses + bodyErrors + (isPublic ? [] : [401, 403, 404])) { all[status] = response }
        var operation: Object = ["operationId": id, "summary": summary, "responses": all]
        if !parameters.isEmpty { operation["parameters"] = parameters }
        if let body { operation["requestBody"] = body }
        if isPublic { operation["security"] = [Object]() }
        return operation
    }

    static func jsonBody(_ schema: Object) -> Object {
        ["required": true, "content": ["application/json": ["schema": schema]]]
    }

    /// A path parameter naming a configured code (any other is answered 404).
    static func codes(_ name: String, _ description: String, _ values: [String]) -> Object {
        var parameter = P.pathParameter(name, description)
        if !values.isEmpty { parameter["schema"] = ["type": "string", "enum": values] }
        return parameter
    }

    static func paths(meter: Object, plan: Object) -> Object {
        let usageJSON: Object = ["oneOf": [P.ref("Usage"), P.ref("UsageOverTime")]]
        return [
            "/healthz": ["get": operation("health", "Whether the server answers.",
                                          responses: ["200": P.json(P.object(["status": ["type": "string", "const": "ok"]]), "It answers.")],
                                          errors: [], isPublic: true)],
            "/openapi.json": ["get": operation("openapi", "This document.",
                                               responses: ["200": P.json(["type": "object"], "The OpenAPI 3.1 document.")],
                                               errors: [], isPublic: true)],
            "/metrics": ["get": operation("metrics", "Prometheus metrics (text exposition format).",
                                          responses: ["200": ["description": "Metrics.", "content": ["text/plain": ["schema": P.string]]]],
                                          errors: [503])],
            "/v1/events": ["post": operation(
                "postEvents", "Ingest up to 1000 events; answered per event after their group commit is durable.",
                body: ["required": true, "content": [
                    "application/json": ["schema": ["oneOf": [P.array(P.ref("Event")), P.ref("Event")]]],
                    "application/cloudevents+json": ["schema": P.ref("CloudEvent")],
                    "application/cloudevents-batch+json": ["schema": P.array(P.ref("CloudEvent"))],
                ]],
                responses: ["200": P.json(P.ref("EventResults"), "One answer per event, in order.")],
                errors: [400, 413, 422, 503])],
            "/v1/customers": ["get": operation(
                "listCustomers", "Every customer Tally knows, in byte order of id.",
                parameters: [P.limitParameter, P.cursorParameter, P.query("plan", "Only customers on this plan now."),
                             P.query("query", "Only ids that start with this.")],
                responses: ["200": P.json(P.ref("CustomerList"), "A page of customers.")],
                errors: [400, 503])],
            "/v1/customers/{customer}": ["get": operation(
                "getCustomer", "The customer's state: plan, period, usage, estimate, limits, entitlements, blocked.",
                parameters: [P.customer],
                responses: ["200": P.json(P.ref("CustomerState"), "The customer's state.")],
                errors: [400, 404, 500, 503])],
            "/v1/customers/{customer}/plan": ["put": operation(
                "setCustomerPlan", "Put the customer on a plan from a moment on (as `tally customers set-plan`).",
                parameters: [P.customer], body: jsonBody(P.ref("PlanAssignmentBody")),
                responses: ["200": P.json(P.ref("PlanAssignmentResult"), "The assignment is stored.")],
                errors: [400, 413, 422, 503])],
            "/v1/customers/{customer}/usage": ["get": operation(
                "getCustomerUsage", "Usage in a billing period, or over time with window= (JSON, or CSV with Accept: text/csv).",
                parameters: [P.customer, P.tokenParameter, P.query("period", "A period label: YYYY-MM, YYYY-MM-DD or YYYY."),
                             P.query("meter", "Only this meter (with window=).")] + P.windowParameters,
                responses: ["200": ["description": "The usage.", "content": [
                    "application/json": ["schema": usageJSON],
                    "text/csv": ["schema": P.string],
                ]]],
                errors: [400, 404, 503])],
            "/v1/customers/{customer}/estimate": ["get": operation(
                "getCustomerEstimate", "Cost so far and projected to the period's end.",
                parameters: [P.customer, P.tokenParameter],
                responses: ["200": P.json(P.ref("Estimate"), "The estimate.")],
                errors: [400, 404, 500, 503])],
            "/v1/customers/{customer}/limits": [
                "get": operation(
                    "listCustomerLimits", "The limits that apply to the customer now, its own first.",
                    parameters: [P.customer, P.tokenParameter, P.limitParameter, P.cursorParameter],
                    responses: ["200": P.json(P.ref("LimitList"), "A page of limits.")],
                    errors: [400, 404, 503]),
                "post": operation(
                    "addCustomerLimit", "Add a stored limit of this customer.",
                    parameters: [P.customer], body: jsonBody(P.ref("NewLimit")),
                    responses: ["201": P.json(P.ref("Limit"), "The limit is stored.")],
                    errors: [400, 413, 422, 503]),
            ],
            "/v1/customers/{customer}/limits/{limit}": ["delete": operation(
                "removeCustomerLimit", "Remove a stored limit of this customer.",
                parameters: [P.customer, P.pathParameter("limit", "The limit id.")],
                responses: ["200": P.json(P.ref("Limit"), "The removed limit.")],
                errors: [400, 404, 422, 503])],
            "/v1/customers/{customer}/entitlements/{meter}": ["get": operation(
                "getEntitlement", "Whether the customer may use the meter, what it used and what remains.",
                parameters: [P.customer, P.tokenParameter, meter],
                responses: ["200": P.json(P.ref("Entitlement"), "The entitlement.")],
                errors: [400, 404, 503])],
            "/v1/customers/{customer}/credits": [
                "get": operation(
                    "listCustomerCredits", "The customer's credit grants, what each has left, the balance and what is due.",
                    parameters: [P.customer],
                    responses: ["200": P.json(P.ref("CreditList"), "The grants.")],
                    errors: [400, 500, 503]),
                "post": operation(
                    "grantCustomerCredits", "Grant prepaid credits (the same id and content again: 200, nothing changes).",
                    parameters: [P.customer], body: jsonBody(P.ref("NewCreditGrant")),
                    responses: ["201": P.json(P.ref("CreditGrant"), "The grant is stored."),
                                "200": P.json(P.ref("CreditGrant"), "The same grant existed: nothing changed.")],
                    errors: [400, 409, 413, 422, 503]),
            ],
            "/v1/customers/{customer}/credits/{grant}": ["delete": operation(
                "voidCustomerCredits", "Void a grant: from now on it covers no more usage.",
                parameters: [P.customer, P.pathParameter("grant", "The grant id.")],
                responses: ["200": P.json(P.ref("CreditGrant"), "The voided grant.")],
                errors: [400, 404, 503])],
            "/v1/customers/{customer}/credits/ledger": ["get": operation(
                "getCustomerCreditLedger", "Grants, each period's application, voids and expiries, oldest first.",
                parameters: [P.customer],
                responses: ["200": P.json(P.ref("CreditLedger"), "The ledger.")],
                errors: [400, 500, 503])],
            "/v1/alerts": ["get": operation(
                "listAlerts", "Fired alerts, newest first.",
                parameters: [P.query("customer", "Only this customer's."), P.query("since", "Only those fired at or after this RFC 3339 time."),
                             P.limitParameter, P.cursorParameter,
                             P.query("page", "Deprecated: use cursor.", schema: ["type": "integer", "minimum": 1, "deprecated": true])],
                responses: ["200": P.json(P.ref("AlertList"), "A page of alerts.")],
                errors: [400, 422, 503])],
            "/v1/meters/{meter}/usage": ["get": operation(
                "getMeterUsage", "One meter over time across customers, a page of customers at a time.",
                parameters: [meter,
                             P.query("customer", "Only these customers (repeatable)."), P.limitParameter, P.cursorParameter] + P.windowParameters,
                responses: ["200": ["description": "The usage.", "content": [
                    "application/json": ["schema": P.ref("MeterUsagePage")],
                    "text/csv": ["schema": P.string],
                ]]],
                errors: [400, 404, 503])],
            "/v1/customers/{customer}/portal_tokens": ["post": operation(
                "mintPortalToken", "Mint a signed token that reads this customer's usage, estimate, limits and entitlements.",
                parameters: [P.customer],
                body: ["required": false, "content": ["application/json": ["schema": P.object(
                    ["ttl": ["type": "string", "description": "1m to 30d, default 1h."]], required: [])]]],
                responses: ["201": P.json(P.ref("PortalToken"), "The token.")],
                errors: [400, 413, 422, 503])],
            "/v1/plans": ["get": operation(
                "listPlans", "The configured plans and their prices.",
                parameters: [P.limitParameter, P.cursorParameter],
                responses: ["200": P.json(P.ref("PlanList"), "A page of plans.")],
                errors: [400])],
            "/v1/plans/{code}": ["get": operation(
                "getPlan", "One plan and its prices.",
                parameters: [plan],
                responses: ["200": P.json(P.ref("Plan"), "The plan.")],
                errors: [400, 404])],
        ]
    }
}

extension APIRoutes {
    /// `GET /openapi.json`.
    func openAPI() -> Response {
        .json(openAPIText)
    }
}
