import Foundation

/// The reusable parts of the OpenAPI document: schemas of bodies and answers, parameters, errors.
/// Every shape here is one the routes really write (see the route files); decimals are strings.
enum OpenAPIParts {
    typealias Object = [String: Any]

    static func ref(_ name: String) -> Object { ["$ref": "#/components/schemas/\(name)"] }
    static var string: Object { ["type": "string"] }
    static var decimal: Object { ["type": "string", "description": "An exact decimal as text, e.g. \"12.5\"."] }
    static var time: Object { ["type": "string", "description": "An RFC 3339 time."] }
    static var nullableString: Object { ["type": ["string", "null"]] }
    static var boolean: Object { ["type": "boolean"] }

    static func object(_ properties: Object, required: [String]? = nil, description: String? = nil) -> Object {
        var schema: Object = ["type": "object", "properties": properties]
        schema["required"] = required ?? Array(properties.keys).sorted()
        if let description { schema["description"] = description }
        return schema
    }

    static func array(_ items: Object) -> Object { ["type": "array", "items": items] }

    /// The list convention: `{"data":[…],"has_more","next_cursor"}` (and `extra` keys).
    static func list(of item: Object, extra: Object = [:]) -> Object {
        var properties: Object = ["data": array(item), "has_more": boolean, "next_cursor": nullableString]
        for (key, value) in extra { properties[key] = value }
        return object(properties, required: ["data", "has_more", "next_cursor"] + extra.keys.sorted())
    }

    static var groupMap: Object { ["type": "object", "additionalProperties": ["type": "string"], "description": "group_by property → value"] }
    static var period: Object { object(["start": time, "end": time]) }

    static var schemas: Object {
        [
            "Error": object([
                "error": object([
                    "code": ["type": "string", "description": "A stable error code, e.g. unknown_customer."],
                    "message": ["type": "string", "description": "What went wrong and what to do."],
                    "field": ["type": "string", "description": "The parameter or body field at fault."],
                    "details": ["type": "object"],
                ], required: ["code", "message"]),
            ]),
            "Event": object([
                "id": ["type": "string", "minLength": 1, "maxLength": 255],
                "customer": ["type": "string", "minLength": 1, "maxLength": 255],
                "meter": string,
                "value": ["type": ["number", "string"], "description": "A decimal; defaults to 1."],
                "time": time,
                "properties": ["type": "object"],
            ], required: ["id", "customer", "meter"], description: "One usage event, as on the socket."),
            "BlockingLimit": object([
                "id": string, "meter": nullableString, "used": decimal, "limit": decimal, "resets_at": time,
            ]),
            "EventResult": object([
                "status": ["type": "string", "enum": ["accepted", "duplicate", "rejected"]],
                "error": object(["code": string, "message": string, "field": string], required: ["code", "message"]),
                "blocked": ["type": "boolean", "const": true],
                "limit": ref("BlockingLimit"),
            ], required: ["status"], description: "The socket answer of one event."),
            "EventResults": object(["results": array(ref("EventResult"))]),
            "UsageRow": object(["meter": string, "aggregation": string, "group": groupMap, "quantity": decimal]),
            "Usage": object(["customer": string, "period": period, "meters": array(ref("UsageRow"))]),
            "UsageWindow": object(["start": time, "end": time, "quantity": decimal]),
            "UsageSeries": object([
                "meter": string, "aggregation": string, "customer": string, "group": groupMap,
                "windows": array(ref("UsageWindow")), "total": decimal,
            ]),
            "UsageOverTime": object([
                "from": time, "to": time, "window": ["type": "string", "enum": ["hour", "day", "month"]],
                "tz": string, "meters": array(ref("UsageSeries")),
            ]),
            "MeterUsagePage": object([
                "from": time, "to": time, "window": ["type": "string", "enum": ["hour", "day", "month"]],
                "tz": string, "meters": array(ref("UsageSeries")), "data": array(ref("UsageSeries")),
                "has_more": boolean, "next_cursor": nullableString,
            ], required: ["from", "to", "window", "tz", "meters", "has_more", "next_cursor"]),
            "EstimateLine": object(["meter": string, "group": groupMap, "quantity": decimal, "amount": decimal, "projected_amount": decimal]),
            "Estimate": object([
                "customer": string, "period": period, "currency": nullableString,
                "lines": array(ref("EstimateLine")), "total": decimal, "projected_total": decimal,
                "credits_applied": decimal, "amount_due": decimal, "projected_amount_due": decimal,
            ]),
            "CreditGrant": object([
                "id": string, "customer": string, "amount": decimal, "currency": string, "priority": ["type": "integer"],
                "effective_at": time, "expires_at": ["type": ["string", "null"]], "reason": nullableString,
                "granted_at": time, "voided_at": ["type": ["string", "null"]],
                "remaining": decimal, "status": ["type": "string", "enum": ["active", "scheduled", "expired", "voided", "depleted"]],
                "applied_this_period": decimal,
            ], required: ["id", "customer", "amount", "currency", "priority", "effective_at", "expires_at", "reason", "granted_at", "voided_at"]),
            "NewCreditGrant": object([
                "amount": ["type": ["number", "string"]], "priority": ["type": "integer"],
                "effective_at": ["type": ["string", "null"], "description": "A date or an RFC 3339 time; default now."],
                "expires_at": ["type": ["string", "null"]], "id": ["type": ["string", "null"]], "reason": ["type": ["string", "null"]],
            ], required: ["amount"]),
            "CreditList": object([
                "customer": string, "currency": nullableString, "period": period, "balance": decimal,
                "credits_applied": decimal, "amount_due": decimal, "data": array(ref("CreditGrant")),
            ]),
            "CreditLedger": object([
                "customer": string, "currency": nullableString, "balance": decimal,
                "entries": array(object([
                    "type": ["type": "string", "enum": ["grant", "application", "void", "expiry"]], "grant": string, "at": time,
                    "amount": decimal, "period": period, "final": boolean,
                ], required: ["type", "grant", "at", "amount"])),
            ]),
            "Limit": object([
                "id": string,
                "scope": ["type": "object", "properties": ["customer": string, "plan": string]],
                "meter": nullableString, "amount": decimal, "quantity": decimal,
                "balance_below": decimal, "balance_percent_below": decimal,
                "action": ["type": "string", "enum": ["warning", "disable"]],
                "notify_at": array(["type": "integer"]),
                "source": ["type": "string", "enum": ["config", "stored"]],
            ], required: ["id", "scope", "meter", "action", "notify_at", "source"]),
            "NewLimit": object([
                "id": string, "amount": ["type": ["number", "string"]], "meter": string,
                "quantity": ["type": ["number", "string"]], "action": ["type": "string", "enum": ["warning", "disable"]],
                "balance_below": ["type": ["number", "string"]], "balance_percent_below": ["type": ["number", "string"]],
                "notify_at": array(["type": "integer", "minimum": 1, "maximum": 1000]),
            ], required: ["action"]),
            "LimitList": list(of: ref("Limit"), extra: ["customer": string, "limits": array(ref("Limit"))]),
            "Entitlement": object([
                "has_access": boolean, "used": decimal, "limit": ["type": ["string", "null"]],
                "remaining": ["type": ["string", "null"]], "resets_at": time, "balance": decimal,
            ]),
            "MeterEntitlement": object([
                "meter": string, "has_access": boolean, "used": decimal, "limit": ["type": ["string", "null"]],
                "remaining": ["type": ["string", "null"]], "resets_at": time, "balance": decimal,
            ]),
            "CustomerSummary": object([
                "id": string, "plan": nullableString,
                "plan_source": ["type": "string", "enum": ["assigned", "config", "default_plan", "none"]],
            ]),
            "CustomerList": list(of: ref("CustomerSummary")),
            "CustomerState": object([
                "id": string, "plan": nullableString,
                "plan_source": ["type": "string", "enum": ["assigned", "config", "default_plan", "none"]],
                "period": period, "usage": array(ref("UsageRow")), "estimate": ref("Estimate"),
                "limits": array(ref("Limit")), "entitlements": array(ref("MeterEntitlement")), "balance": decimal, "blocked": boolean,
            ]),
            "PlanAssignmentBody": object(["plan": string, "from": ["type": "string", "description": "A date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time; default now."]],
                                         required: ["plan"]),
            "PlanAssignmentResult": object([
                "id": string, "plan": nullableString,
                "plan_source": ["type": "string", "enum": ["assigned", "config", "default_plan", "none"]],
                "assignments": array(object(["from": time, "plan": string])),
            ]),
            "Price": object([
                "meter": string, "model": ["type": "string", "enum": ["per_unit", "graduated", "volume", "package", "flat"]],
                "unit_amount": decimal, "free_units": decimal, "transform": ["type": "object"], "tiers": array(["type": "object"]),
                "package_size": decimal, "package_amount": decimal, "round": ["type": "string", "enum": ["up", "down"]],
                "amount": decimal, "minimum": decimal, "maximum": decimal, "dimensions": ["type": "object"],
            ], required: ["model"], description: "A price with the keys of the config file: what `tally quote --price` reads."),
            "CloudEvent": object([
                "specversion": ["type": "string", "const": "1.0"], "id": string, "source": string,
                "subject": ["type": "string", "description": "The customer id."],
                "type": ["type": "string", "description": "The meter code."], "time": time,
                "data": ["type": "object", "description": "value → the event's value; every other member → its properties."],
            ], required: ["specversion", "id", "subject", "type"], description: "A CloudEvents 1.0 event (JSON format)."),
            "PortalToken": object(["token": string, "customer": string, "expires_at": time]),
            "Plan": object(["code": string, "currency": string, "prices": array(ref("Price"))]),
            "PlanList": list(of: ref("Plan")),
            "Alert": object([
                "id": string, "customer": string, "limit_id": string, "meter": nullableString, "used": decimal, "limit": decimal,
                "percent": string, "action": ["type": "string", "enum": ["warning", "disable"]], "period_start": time,
                "resets_at": time, "fired_at": time,
            ]),
            "AlertList": list(of: ref("Alert"), extra: [
                "alerts": array(ref("Alert")), "page": ["type": "integer", "deprecated": true], "limit": ["type": "integer"],
            ]),
        ]
    }

    // MARK: Parameters

    static func pathParameter(_ name: String, _ description: String) -> Object {
        ["name": name, "in": "path", "required": true, "description": description,
         "schema": ["type": "string", "minLength": 1, "maxLength": 255]]
    }

    static func query(_ name: String, _ description: String, schema: Object = string, required: Bool = false) -> Object {
        ["name": name, "in": "query", "required": required, "description": description, "schema": schema]
    }

    static var customer: Object { pathParameter("customer", "The customer id (percent-encoded).") }
    static var limitParameter: Object { query("limit", "Items a page, 1 to 100 (default 50).", schema: ["type": "integer", "minimum": 1, "maximum": 100]) }
    static var tokenParameter: Object { query("token", "A portal token, instead of the Authorization header.") }
    static var cursorParameter: Object { query("cursor", "The next_cursor of the previous page.") }
    static var windowParameters: [Object] { [
        query("from", "Start (inclusive): RFC 3339 or a date in tz."),
        query("to", "End (exclusive): RFC 3339 or a date in tz."),
        query("window", "hour, day or month.", schema: ["type": "string", "enum": ["hour", "day", "month"]]),
        query("group_by", "Group-by properties of the meter (repeatable or comma-separated)."),
        query("tz", "An IANA time zone, default UTC."),
    ] }

    // MARK: Responses

    static func json(_ schema: Object, _ description: String) -> Object {
        ["description": description, "content": ["application/json": ["schema": schema]]]
    }

    /// The error answers every operation may give, besides its own.
    static func errors(_ statuses: [Int]) -> Object {
        var responses: Object = [:]
        let descriptions = [400: "Malformed input.", 401: "Missing or unknown key or token.", 403: "The key or token lacks the scope.",
                            404: "No such customer, meter, limit, plan or route.", 413: "The body is too large.",
                            415: "The body's Content-Type is not JSON.",
                            422: "The input is well-formed but not acceptable.", 503: "The store or a feature is unavailable now."]
        for status in statuses {
            responses[String(status)] = json(ref("Error"), descriptions[status] ?? "An error.")
        }
        return responses
    }
}
