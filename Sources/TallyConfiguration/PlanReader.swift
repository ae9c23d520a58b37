import Yams
import Metering

// MARK: - Plans and customers

extension ConfigReader {
    private static let planKeys = ["code", "currency", "prices"]
    private static let customerKeys = ["id", "plan"]
    private static let planExample = "e.g. plans: [{ code: starter, currency: USD, prices: "
        + "[{ meter: api_calls, model: per_unit, unit_amount: \"0.002\" }] }]"

    /// The `code` scalars of a `meters:` list, valid or not.
    func declaredCodes(_ meters: Node) -> Set<String> {
        guard case let .sequence(items) = meters else { return [] }
        return Set(items.compactMap { $0["code"]?.scalar?.string })
    }

    /// Reads `plans`, `default_plan` and `customers` once the meters are known.
    func readPricing(_ sections: PricingSections, meters: [Meter])
        -> (plans: [Plan], defaultPlan: String?, customers: [CustomerPlanAssignment])
    {
        let context = PriceContext.plan(
            meters: Dictionary(meters.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first }),
            declaredMeterCodes: sections.declaredMeterCodes)
        var plans = [Plan]()
        var declaredPlans = [String]()
        if let (node, path) = sections.plans {
            (plans, declaredPlans) = readPlans(node, path: path, context: context)
        }
        var defaultPlan: String?
        if let (node, path) = sections.defaultPlan, !isNull(node) {
            defaultPlan = planReference(node, path: path, declaredPlans: declaredPlans, example: "default_plan: starter")
        }
        var customers = [CustomerPlanAssignment]()
        if let (node, path) = sections.customers {
            customers = readCustomers(node, path: path, declaredPlans: declaredPlans)
        }
        return (plans, defaultPlan, customers)
    }

    /// The valid plans, and the codes written for every plan (valid or not), in file order.
    private func readPlans(_ node: Node, path: String, context: PriceContext) -> ([Plan], [String]) {
        if isNull(node) { return ([], []) }
        guard case let .sequence(items) = node else {
            report(node, path, "plans must be a list of plans, \(Self.planExample); found \(describe(node))")
            return ([], [])
        }
        var plans = [Plan]()
        var declared = [String]()
        var firstUse = [String: (index: Int, line: Int?)]()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            if let code = item["code"]?.scalar?.string, !declared.contains(code) { declared.append(code) }
            guard let plan = readPlan(item, path: itemPath, context: context) else { continue }
            if let first = firstUse[plan.code] {
                let whereFirst = first.line.map { " (line \($0))" } ?? ""
                report(item["code"] ?? item, "\(itemPath).code", "the plan code \"\(plan.code)\" is already used by "
                    + "\(path)[\(first.index)]\(whereFirst); give each plan its own code")
                continue
            }
            firstUse[plan.code] = (index, (item["code"] ?? item).mark?.line)
            plans.append(plan)
        }
        return (plans, declared)
    }

    private func readPlan(_ node: Node, path: String, context: PriceContext) -> Plan? {
        guard case .mapping = node else {
            report(node, path, "each plan is a mapping with code, currency and prices, \(Self.planExample); "
                + "found \(describe(node))")
            return nil
        }
        var code: String?
        var currency: String?
        var prices: [Price]?
        var valid = true
        forEachEntry(of: node, path: path, known: Self.planKeys) { key, value, path in
            switch key {
            case "code":
                guard let text = nonEmptyText(value, path: path, example: "code: starter") else { valid = false; return }
                if isPlanCode(text) {
                    code = text
                } else {
                    valid = false
                    report(value, path, "the plan code \"\(text)\" may use only letters, digits, _, - and . "
                        + "(1 to 64 of them), e.g. code: starter")
                }
            case "currency":
                guard let text = nonEmptyText(value, path: path, example: "currency: USD") else { valid = false; return }
                if ISO4217.minorUnits(of: text) != nil {
                    currency = text
                } else {
                    valid = false
                    let upper = text.uppercased()
                    let hint = ISO4217.minorUnits(of: upper) != nil
                        ? "write it in capitals: currency: \(upper)"
                        : "write an active ISO 4217 code (three capital letters), e.g. currency: USD, EUR or JPY"
                    report(value, path, "\"\(text)\" is not an ISO 4217 currency code; \(hint)")
                }
            default: // prices
                if let read = readPlanPrices(value, path: path, context: context) { prices = read } else { valid = false }
            }
        }
        if node["code"] == nil { report(node, path, "this plan has no code; add one, e.g. code: starter") }
        if node["currency"] == nil {
            report(node, path, "this plan has no currency; add its ISO 4217 code, e.g. currency: USD")
        }
        if node["prices"] == nil {
            report(node, path, "this plan has no prices; add a list, e.g. prices: "
                + "[{ meter: api_calls, model: per_unit, unit_amount: \"0.002\" }] (or prices: [] for a free plan)")
        }
        guard valid, let code, let currency, let prices else { return nil }
        return Plan(code: code, currency: currency, prices: prices)
    }

    private func readPlanPrices(_ node: Node, path: String, context: PriceContext) -> [Price]? {
        if isNull(node) { return [] }
        guard case let .sequence(items) = node else {
            report(node, path, "prices must be a list of prices, e.g. prices: "
                + "[{ meter: api_calls, model: per_unit, unit_amount: \"0.002\" }]; found \(describe(node))")
            return nil
        }
        var prices = [Price]()
        var valid = true
        var firstUse = [String: (index: Int, line: Int?)]()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let price = readPrice(item, path: itemPath, context: context) else {
                valid = false
                continue
            }
            if let meter = price.meter {
                if let first = firstUse[meter] {
                    let whereFirst = first.line.map { " (line \($0))" } ?? ""
                    report(item["meter"] ?? item, "\(itemPath).meter", "the meter \(meter) already has a price in this "
                        + "plan, \(path)[\(first.index)]\(whereFirst); a plan has one price per meter: keep one of them")
                    valid = false
                    continue
                }
                firstUse[meter] = (index, (item["meter"] ?? item).mark?.line)
            }
            prices.append(price)
        }
        return valid ? prices : nil
    }

    /// A `default_plan` or `customers[i].plan` value that must name a plan.
    private func planReference(_ node: Node, path: String, declaredPlans: [String], example: String) -> String? {
        guard let code = nonEmptyText(node, path: path, example: example) else { return nil }
        guard declaredPlans.contains(code) else {
            if declaredPlans.isEmpty {
                report(node, path, "there is no plan \"\(code)\": the config defines no plans; add it under "
                    + "plans:, \(Self.planExample)")
            } else {
                let guess = closest(to: code, among: declaredPlans).map { "did you mean \"\($0)\"? " } ?? ""
                report(node, path, "there is no plan \"\(code)\"; \(guess)use one of the plans defined under plans: "
                    + declaredPlans.joined(separator: ", "))
            }
            return nil
        }
        return code
    }

    private func readCustomers(_ node: Node, path: String, declaredPlans: [String]) -> [CustomerPlanAssignment] {
        let example = "e.g. customers: [{ id: cus_42, plan: starter }]"
        if isNull(node) { return [] }
        guard case let .sequence(items) = node else {
            report(node, path, "customers must be a list of customers with their plan, \(example); "
                + "found \(describe(node))")
            return []
        }
        var customers = [CustomerPlanAssignment]()
        var firstUse = [String: (index: Int, line: Int?)]()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard case .mapping = item else {
                report(item, itemPath, "each customer is a mapping, e.g. - { id: cus_42, plan: starter }; "
                    + "found \(describe(item))")
                continue
            }
            var id: String?
            var plan: String?
            var valid = true
            forEachEntry(of: item, path: itemPath, known: Self.customerKeys) { key, value, path in
                if key == "id" {
                    guard let text = nonEmptyText(value, path: path, example: "id: cus_42") else { valid = false; return }
                    if text.utf8.count > EventLineParser.maxIdentifierBytes {
                        valid = false
                        report(value, path, "the customer id is \(text.utf8.count) bytes long; ids are 1 to "
                            + "\(EventLineParser.maxIdentifierBytes) bytes of UTF-8, as events send them")
                    } else {
                        id = text
                    }
                } else {
                    plan = planReference(value, path: path, declaredPlans: declaredPlans, example: "plan: starter")
                    if plan == nil { valid = false }
                }
            }
            if item["id"] == nil { report(item, itemPath, "this customer has no id; add the id events send, e.g. id: cus_42") }
            if item["plan"] == nil { report(item, itemPath, "this customer has no plan; add one, e.g. plan: starter") }
            guard let id else { continue }
            if let first = firstUse[id] {
                let whereFirst = first.line.map { " (line \($0))" } ?? ""
                report(item["id"] ?? item, "\(itemPath).id", "the customer \"\(id)\" is already listed at "
                    + "\(path)[\(first.index)]\(whereFirst); a customer has one plan: keep one entry")
                continue
            }
            firstUse[id] = (index, (item["id"] ?? item).mark?.line)
            guard valid, let plan else { continue }
            customers.append(CustomerPlanAssignment(customer: id, plan: plan))
        }
        return customers
    }
}

/// A plan code: 1 to 64 ASCII letters, digits, `_`, `-` or `.`.
private func isPlanCode(_ text: String) -> Bool {
    let bytes = text.utf8
    return (1...64).contains(bytes.count) && bytes.allSatisfy { byte in
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }
}
