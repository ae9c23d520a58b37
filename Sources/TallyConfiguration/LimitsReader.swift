import Foundation
import Yams
import Metering

/// What a limit may name: the meters and plans of the config, read before the limits.
struct LimitContext {
    /// The codes of the valid meters, in file order.
    var meterCodes: [String]
    /// Every `code` written under `meters:`, valid or not, so a limit naming a meter that is itself
    /// wrong is not reported a second time.
    var declaredMeterCodes: Set<String>
    /// Every `code` written under `plans:`, valid or not, in file order.
    var declaredPlanCodes: [String]
}

// MARK: - Limits

extension ConfigReader {
    private static let limitKeys = ["id", "customer", "plan", "amount", "meter", "quantity", "action", "notify_at",
                                    "balance_below", "balance_percent_below"]
    private static let limitExample = "e.g. - { customer: cus_42, amount: \"500\", action: warning }"
    private static let notifyAtExample = "notify_at: [50, 80, 100]"
    /// The longest limit id written in the config.
    static let maxLimitIDLength = 128
    /// The range of a `notify_at` step, in percent.
    static let notifyAtRange = 1...1000

    /// The `code` scalars of a `plans:` (or `meters:`) list, valid or not, in file order, each once.
    func writtenCodes(_ node: Node?) -> [String] {
        guard case let .sequence(items) = node else { return [] }
        var codes = [String]()
        for code in items.compactMap({ $0["code"]?.scalar?.string }) where !codes.contains(code) {
            codes.append(code)
        }
        return codes
    }

    /// Reads `limits:`: the valid limits in file order; ids are unique.
    func readLimits(_ node: Node, path: String, context: LimitContext) -> [UsageLimit] {
        if isNull(node) { return [] }
        guard case let .sequence(items) = node else {
            report(node, path, "limits must be a list of limits, \(Self.limitExample); found \(describe(node))")
            return []
        }
        var limits = [UsageLimit]()
        var firstUse = [String: (index: Int, line: Int?)]()
        var uses = [String: Int]()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let limit = readLimit(item, path: itemPath, context: context) else { continue }
            uses[limit.id, default: 0] += 1
            if let first = firstUse[limit.id] {
                let whereFirst = first.line.map { " (line \($0))" } ?? ""
                if let idNode = item["id"] {
                    report(idNode, "\(itemPath).id", "the limit id \"\(limit.id)\" is already used by "
                        + "\(path)[\(first.index)]\(whereFirst); give each limit its own id")
                } else {
                    let suggestion = sanitizedLimitID(limit.id, suffix: "-\(uses[limit.id] ?? 2)")
                    report(item, itemPath, "this limit's id would be \"\(limit.id)\" (from its \(ownerWord(limit.scope)) "
                        + "and \(limit.threshold.meter == nil ? "amount" : "meter")), which \(path)[\(first.index)]"
                        + "\(whereFirst) already has; limits on the same target need ids of their own: "
                        + "add one, e.g. id: \(suggestion)")
                }
                continue
            }
            firstUse[limit.id] = (index, (item["id"] ?? item).mark?.line)
            limits.append(limit)
        }
        return limits
    }

    private func readLimit(_ node: Node, path: String, context: LimitContext) -> UsageLimit? {
        guard case .mapping = node else {
            report(node, path, "each limit is a mapping, \(Self.limitExample); found \(describe(node))")
            return nil
        }
        var id: String?
        var customer: String?
        var plan: String?
        var amount: ExactDecimal?
        var meter: String?
        var quantity: ExactDecimal?
        var balanceBelow: ExactDecimal?
        var balancePercentBelow: ExactDecimal?
        var action: UsageLimit.Action?
        var notifyAt = [100]
        var valid = true

        forEachEntry(of: node, path: path, known: Self.limitKeys) { key, value, path in
            switch key {
            case "id":
                guard let text = nonEmptyText(value, path: path, example: "id: big-spender") else { valid = false; return }
                if isLimitID(text) {
                    id = text
                } else {
                    valid = false
                    report(value, path, "the limit id \"\(text)\" may use only letters, digits, _, -, . and : "
                        + "(1 to \(Self.maxLimitIDLength) of them), e.g. id: \(sanitizedLimitID(text, suffix: ""))")
                }
            case "customer":
                guard let text = nonEmptyText(value, path: path, example: "customer: cus_42") else { valid = false; return }
                if text.utf8.count > EventLineParser.maxIdentifierBytes {
                    valid = false
                    report(value, path, "the customer id is \(text.utf8.count) bytes long; ids are 1 to "
                        + "\(EventLineParser.maxIdentifierBytes) bytes of UTF-8, as events send them")
                } else {
                    customer = text
                }
            case "plan":
                plan = limitPlan(value, path: path, context: context)
                if plan == nil { valid = false }
            case "amount":
                amount = limitValue(value, path: path, what: "amount", example: "amount: \"500\"")
                if amount == nil { valid = false }
            case "meter":
                meter = limitMeter(value, path: path, context: context)
                if meter == nil { valid = false }
            case "quantity":
                quantity = limitValue(value, path: path, what: "quantity", example: "quantity: 1000000")
                if quantity == nil { valid = false }
            case "balance_below":
                balanceBelow = limitValue(value, path: path, what: "balance", example: "balance_below: \"20\"")
                if balanceBelow == nil { valid = false }
            case "balance_percent_below":
                balancePercentBelow = limitValue(value, path: path, what: "percentage", example: "balance_percent_below: 10")
                if let percent = balancePercentBelow, percent > 100 {
                    report(value, path, "balance_percent_below is a percentage of the granted credits: from above 0 to 100, e.g. 10")
                    balancePercentBelow = nil
                }
                if balancePercentBelow == nil { valid = false }
            case "action":
                let names = UsageLimit.Action.allCases.map(\.rawValue)
                if let name = choice(value, path: path, from: names, what: "limit action") {
                    action = UsageLimit.Action(rawValue: name)
                } else {
                    valid = false
                }
            default: // notify_at
                if let steps = readNotifyAt(value, path: path) { notifyAt = steps } else { valid = false }
            }
        }

        // A missing key already reported as a near-miss typo ("acton") is not reported again.
        let unknownKeys = (node.mapping.map { Array($0.keys) } ?? []).compactMap(\.scalar?.string)
            .filter { !Self.limitKeys.contains($0) }
        func isMissing(_ key: String) -> Bool {
            node[key] == nil && !unknownKeys.contains { closest(to: $0, among: [key]) != nil }
        }
        let example = context.meterCodes.first ?? "api_calls"

        // Who: exactly one of customer and plan.
        if let planNode = node["plan"], node["customer"] != nil {
            report(planNode, "\(path).plan", "a limit applies to one customer or to every customer on a plan, not "
                + "both; remove customer or plan (a customer's own limit overrides its plan's limit on the same target)")
            valid = false
        } else if isMissing("customer"), isMissing("plan") {
            report(node, path, "this limit applies to nobody; add customer: cus_42 (one customer) or plan: starter "
                + "(every customer on the plan)")
            valid = false
        }

        // What: exactly one of amount, meter + quantity, balance_below and balance_percent_below.
        let balanceKeys = ["balance_below", "balance_percent_below"].filter { node[$0] != nil }
        if let first = balanceKeys.first, balanceKeys.count > 1 || ["amount", "meter", "quantity"].contains(where: { node[$0] != nil }) {
            report(node[first]!, "\(path).\(first)", "a balance limit watches the credit balance only: remove the other thresholds "
                + "(amount, meter, quantity, the other balance key) and write a second limit for them")
            valid = false
        } else if !balanceKeys.isEmpty {
            if node["notify_at"] != nil {
                report(node["notify_at"]!, "\(path).notify_at", "a balance limit fires once when the balance falls below it; remove notify_at")
                valid = false
            }
        } else if let amountNode = node["amount"], node["meter"] != nil || node["quantity"] != nil {
            let others = ["meter", "quantity"].filter { node[$0] != nil }.joined(separator: " and ")
            report(amountNode, "\(path).amount", "a limit is on the period's amount or on one meter's quantity, not "
                + "both; remove amount or \(others) (write a second limit for the other)")
            valid = false
        } else if node["amount"] == nil {
            let meterMissing = isMissing("meter"), quantityMissing = isMissing("quantity")
            if meterMissing, quantityMissing, isMissing("amount") {
                report(node, path, "this limit has no threshold; add amount: \"500\" (the period's amount, in the "
                    + "plan's currency), or a meter and its quantity: meter: \(example), quantity: 1000000")
                valid = false
            } else if node["meter"] != nil, quantityMissing {
                report(node, path, "this limit names a meter but no quantity; add the quantity the limit allows, "
                    + "e.g. quantity: 1000000")
                valid = false
            } else if node["quantity"] != nil, meterMissing {
                report(node, path, "this limit has a quantity but no meter; add the meter it counts, e.g. meter: \(example)")
                valid = false
            }
        }

        if isMissing("action") {
            report(node, path, "this limit has no action; add action: warning (alerts only) or action: disable "
                + "(alerts, and the customer's events are blocked from 100% until the period resets)")
            valid = false
        }

        guard valid, let action else { return nil }
        let scope: UsageLimit.Scope
        if let customer {
            scope = .customer(customer)
        } else if let plan {
            scope = .plan(plan)
        } else {
            return nil
        }
        let threshold: UsageLimit.Threshold
        if let balanceBelow {
            threshold = .balanceBelow(balanceBelow)
        } else if let balancePercentBelow {
            threshold = .balancePercentBelow(balancePercentBelow)
        } else if let amount {
            threshold = .amount(amount)
        } else if let meter, let quantity {
            threshold = .quantity(meter: meter, quantity)
        } else {
            return nil
        }
        return UsageLimit(
            id: id ?? UsageLimit.derivedID(scope: scope, threshold: threshold),
            scope: scope, threshold: threshold, action: action, notifyAt: notifyAt)
    }

    /// A limit's `plan`: it must name a plan written under `plans:`.
    private func limitPlan(_ node: Node, path: String, context: LimitContext) -> String? {
        guard let code = nonEmptyText(node, path: path, example: "plan: starter") else { return nil }
        let plans = context.declaredPlanCodes
        guard plans.contains(code) else {
            if plans.isEmpty {
                report(node, path, "there is no plan \"\(code)\": the config defines no plans; add it under plans:, "
                    + "or limit one customer instead, e.g. customer: cus_42")
            } else {
                let guess = closest(to: code, among: plans).map { "did you mean \"\($0)\"? " } ?? ""
                report(node, path, "there is no plan \"\(code)\"; \(guess)use one of the plans defined under plans: "
                    + plans.joined(separator: ", "))
            }
            return nil
        }
        return code
    }

    /// A limit's `meter`: it must be a configured meter. A meter written under `meters:` with
    /// problems of its own gives nil without a second report.
    private func limitMeter(_ node: Node, path: String, context: LimitContext) -> String? {
        guard let code = nonEmptyText(node, path: path, example: "meter: api_calls") else { return nil }
        if context.meterCodes.contains(code) { return code }
        if !context.declaredMeterCodes.contains(code) {
            let names = context.meterCodes
            let guess = closest(to: code, among: names).map { "did you mean \"\($0)\"? " } ?? ""
            let known = names.isEmpty ? "define it under meters: first" : "the meters are \(names.joined(separator: ", "))"
            report(node, path, "unknown meter \"\(code)\"; \(guess)\(known)")
        }
        return nil
    }

    /// A limit's `amount` or `quantity`: a decimal string or a YAML/JSON number, read exactly from
    /// its text; above 0, below 10^18, at most 12 decimal places.
    private func limitValue(_ node: Node, path: String, what: String, example: String) -> ExactDecimal? {
        guard let (text, value) = decimalScalar(node, path: path, expected: "a decimal above 0", syntaxAdvice: "",
                                                example: example)
        else { return nil }
        if value.isNegative || value.isZero {
            report(node, path, "\(text) is not above 0; a limit's \(what) must be above 0, e.g. \(example) "
                + "(remove the limit to have none)")
            return nil
        }
        guard hasAllowedDecimals(value, text: text, node: node, path: path) else { return nil }
        if value >= Self.priceValueLimit {
            report(node, path, "\(text) is too large; a limit's \(what) must be below 10^18")
            return nil
        }
        return value
    }

    /// `notify_at`: whole percents from 1 to 1000, strictly increasing.
    private func readNotifyAt(_ node: Node, path: String) -> [Int]? {
        let range = Self.notifyAtRange
        let defaultAdvice = "or remove notify_at for the default [100]"
        if isNull(node) {
            report(node, path, "notify_at has no value; list the percents that fire an alert, "
                + "e.g. \(Self.notifyAtExample), \(defaultAdvice)")
            return nil
        }
        guard case let .sequence(items) = node else {
            let hint = node.scalar.map { "notify_at: [\($0.string)]" } ?? Self.notifyAtExample
            report(node, path, "notify_at must be a list of percents, e.g. \(hint); found \(describe(node))")
            return nil
        }
        guard !items.isEmpty else {
            report(node, path, "notify_at is empty; list at least one percent, e.g. \(Self.notifyAtExample), "
                + defaultAdvice)
            return nil
        }
        var steps = [Int]()
        var valid = true
        var previous: Int?
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            let bounds = "a whole percent from \(range.lowerBound) to \(range.upperBound)"
            guard let text = item.scalar?.string, !isNull(item) else {
                report(item, itemPath, "each step is \(bounds), e.g. \(Self.notifyAtExample); found \(describe(item))")
                valid = false
                continue
            }
            let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
            let isWhole = !digits.isEmpty && digits.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            guard isWhole, let percent = Int(text), range.contains(percent) else {
                let what = isWhole ? "out of range" : "not a whole number"
                let hint = text.hasSuffix("%") ? " (write \(text.dropLast()), without %)" : ""
                report(item, itemPath, "\(text) is \(what); each step is \(bounds)\(hint), e.g. \(Self.notifyAtExample)")
                valid = false
                continue
            }
            if let previous, percent <= previous {
                report(item, itemPath, "\(percent) does not rise above the step before it (\(previous)); list each "
                    + "percent once, in increasing order, e.g. \(Self.notifyAtExample)")
                valid = false
                continue
            }
            previous = percent
            steps.append(percent)
        }
        return valid ? steps : nil
    }

    private func ownerWord(_ scope: UsageLimit.Scope) -> String {
        switch scope {
        case .customer: "customer"
        case .plan: "plan"
        }
    }
}

// MARK: - Helpers

/// A limit id written in the config: 1 to 128 ASCII letters, digits, `_`, `-`, `.` or `:`.
private func isLimitID(_ text: String) -> Bool {
    let bytes = text.utf8
    return (1...ConfigReader.maxLimitIDLength).contains(bytes.count) && bytes.allSatisfy(isLimitIDByte)
}

private func isLimitIDByte(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
}

/// A valid limit id close to `text`: other characters turned into `-`, shortened to fit `suffix`.
private func sanitizedLimitID(_ text: String, suffix: String) -> String {
    let mapped = text.unicodeScalars.map { scalar -> Character in
        scalar.isASCII && isLimitIDByte(UInt8(scalar.value)) ? Character(scalar) : "-"
    }
    let base = String(mapped.prefix(ConfigReader.maxLimitIDLength - suffix.count))
    return (base.isEmpty ? "big-spender" : base) + suffix
}
