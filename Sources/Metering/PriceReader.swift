import Yams

/// Parses one price, written in JSON or YAML, with the config file's validation (`tally quote --price`).
///
/// ```swift
/// let price = try PriceParser.parse(#"{"model": "per_unit", "unit_amount": "0.002"}"#)
/// let tiered = try PriceParser.parse("""
///     model: graduated
///     tiers:
///       - { up_to: 5, unit_amount: "7.00" }
///       - { up_to: inf, unit_amount: "6.50" }
///     """)
/// ```
/// The keys are those of a price in a plan (`meter` is optional here and not checked against any
/// config). Every problem is reported with its line and column, like `ConfigLoader` does.
public enum PriceParser {
    /// Parses and validates one price.
    ///
    /// - Parameters:
    ///   - text: the price as a JSON object or a YAML mapping.
    ///   - sourceName: names the text in error messages (a file path, or `--price`).
    /// - Throws: `ConfigError` listing every problem, sorted by line.
    public static func parse(_ text: String, sourceName: String = "--price") throws(ConfigError) -> Price {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(fileName: sourceName, problems: [ConfigLoader.syntaxProblem(error, yaml: text)])
        }
        guard let root, !isNull(root) else {
            throw ConfigError(fileName: sourceName, problems: [
                ConfigProblem(path: "", message: "the price is empty; write one, e.g. "
                    + #"{"model": "per_unit", "unit_amount": "0.002"}"#),
            ])
        }
        let reader = ConfigReader()
        let price = reader.readPrice(root, path: "", context: .standalone)
        guard reader.problems.isEmpty, let price else {
            throw ConfigError(fileName: sourceName, problems: reader.problems)
        }
        return price
    }
}

/// The `plans:`, `default_plan:` and `customers:` nodes, kept until the meters have been read.
struct PricingSections {
    var plans: (node: Node, path: String)?
    var defaultPlan: (node: Node, path: String)?
    var customers: (node: Node, path: String)?
    /// Every `code` written under `meters:`, including those of meters with problems, so a price
    /// naming a meter that is itself wrong is not reported a second time.
    var declaredMeterCodes: Set<String> = []
}

/// Where a price is read: in a plan (its meter must be configured) or alone (`tally quote`).
enum PriceContext {
    case standalone
    case plan(meters: [String: Meter], declaredMeterCodes: Set<String>)
}

// MARK: - Plans and customers

extension ConfigReader {
    private static let planKeys = ["code", "currency", "prices"]
    private static let customerKeys = ["id", "plan"]
    private static let priceKeys = [
        "meter", "model", "unit_amount", "free_units", "transform", "tiers", "package_size", "package_amount",
        "round", "amount", "minimum", "maximum", "dimensions",
    ]
    private static let tierKeys = ["up_to", "unit_amount", "flat_amount"]
    private static let transformKeys = ["divide_by", "round"]
    private static let overrideKeys = ["unit_amount", "package_amount", "amount", "tiers"]
    /// The keys each model reads besides meter, model, minimum, maximum and dimensions.
    private static let modelKeys: [String: [String]] = [
        "per_unit": ["unit_amount", "free_units", "transform"],
        "graduated": ["tiers"],
        "volume": ["tiers"],
        "package": ["package_size", "package_amount", "free_units", "round"],
        "flat": ["amount"],
    ]
    /// The override key each model accepts in `dimensions`.
    private static let overrideKeyOfModel = [
        "per_unit": "unit_amount", "graduated": "tiers", "volume": "tiers", "package": "package_amount",
        "flat": "amount",
    ]
    private static let planExample = "e.g. plans: [{ code: starter, currency: USD, prices: "
        + "[{ meter: api_calls, model: per_unit, unit_amount: \"0.002\" }] }]"
    private static let tiersExample = "e.g. tiers: [{ up_to: 1000, unit_amount: \"0\" }, "
        + "{ up_to: inf, unit_amount: \"0.001\" }]"
    /// The most fractional digits an amount or quantity in a price may have.
    static let maxPriceFractionalDigits = 12
    /// Every amount and quantity in a price must be below this: 10^18.
    static let priceValueLimit = ExactDecimal(significand: 1_000_000_000_000_000_000, scale: 0)

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

// MARK: - One price

extension ConfigReader {
    /// Reads one price; nil (with problems reported) when anything is wrong.
    func readPrice(_ node: Node, path: String, context: PriceContext) -> Price? {
        guard case .mapping = node else {
            report(node, path, "a price is a mapping, e.g. { meter: api_calls, model: per_unit, unit_amount: \"0.002\" }; "
                + "found \(describe(node))")
            return nil
        }
        var valid = true
        var modelName: String?
        if let modelNode = node["model"] {
            modelName = choice(modelNode, path: join(path, "model"), from: PriceModel.names, what: "price model")
            if modelName == nil { valid = false }
        } else {
            report(node, path, "this price has no model; add one: model: " + PriceModel.names.joined(separator: " | "))
            valid = false
        }
        var meter: (code: String, node: Node)?
        var unitAmount, freeUnits, packageSize, packageAmount, amount: ExactDecimal?
        var minimum, maximum: (value: ExactDecimal, node: Node)?
        var transform: PriceModel.Transform?
        var tiers: [Tier]?
        var round: QuantityRounding?
        var dimensions: (node: Node, path: String)?

        forEachEntry(of: node, path: path, known: Self.priceKeys) { key, value, path in
            if key == "model" { return }
            if let modelName, let fields = Self.modelKeys[modelName], !["meter", "minimum", "maximum", "dimensions"].contains(key),
                !fields.contains(key)
            {
                valid = false
                let owners = Self.modelKeys.filter { $0.value.contains(key) }.map(\.key)
                let ownerList = PriceModel.names.filter(owners.contains).joined(separator: " and ")
                let advice = key == "unit_amount" && (modelName == "graduated" || modelName == "volume")
                    ? "; \(modelName) prices take unit_amount and flat_amount inside each tier"
                    : "; remove it, or use model: \(PriceModel.names.first(where: owners.contains) ?? "per_unit")"
                report(value, path, "\(key) is not used by \(modelName) prices (only by \(ownerList) prices)\(advice)")
                return
            }
            switch key {
            case "meter":
                if let code = nonEmptyText(value, path: path, example: "meter: api_calls") {
                    meter = (code, value)
                } else {
                    valid = false
                }
            case "unit_amount": unitAmount = decimal(value, path: path, example: "unit_amount: \"0.002\"")
                if unitAmount == nil { valid = false }
            case "free_units": freeUnits = decimal(value, path: path, example: "free_units: 1000")
                if freeUnits == nil { valid = false }
            case "package_size": packageSize = decimal(value, path: path, example: "package_size: 1000", positive: true)
                if packageSize == nil { valid = false }
            case "package_amount": packageAmount = decimal(value, path: path, example: "package_amount: \"0.02\"")
                if packageAmount == nil { valid = false }
            case "amount": amount = decimal(value, path: path, example: "amount: \"49.00\"")
                if amount == nil { valid = false }
            case "minimum":
                if let number = decimal(value, path: path, example: "minimum: \"10.00\"") {
                    minimum = (number, value)
                } else {
                    valid = false
                }
            case "maximum":
                if let number = decimal(value, path: path, example: "maximum: \"500.00\"") {
                    maximum = (number, value)
                } else {
                    valid = false
                }
            case "transform": transform = readTransform(value, path: path)
                if transform == nil { valid = false }
            case "tiers": tiers = readTiers(value, path: path)
                if tiers == nil { valid = false }
            case "round":
                if let name = choice(value, path: path, from: QuantityRounding.allCases.map(\.rawValue), what: "rounding") {
                    round = QuantityRounding(rawValue: name)
                } else {
                    valid = false
                }
            default: // dimensions
                dimensions = (value, path)
            }
        }

        // Required fields of the model.
        let required: [String: [(key: String, example: String)]] = [
            "per_unit": [("unit_amount", "unit_amount: \"0.002\"")],
            "graduated": [("tiers", String(Self.tiersExample.dropFirst(5)))],
            "volume": [("tiers", String(Self.tiersExample.dropFirst(5)))],
            "package": [("package_size", "package_size: 1000"), ("package_amount", "package_amount: \"0.02\"")],
            "flat": [("amount", "amount: \"49.00\"")],
        ]
        // A missing key already reported as a near-miss typo ("unit_amout") is not reported again.
        let unknownKeys = (node.mapping.map { Array($0.keys) } ?? []).compactMap(\.scalar?.string)
            .filter { !Self.priceKeys.contains($0) }
        if let modelName {
            for field in required[modelName] ?? [] where node[field.key] == nil
                && !unknownKeys.contains(where: { closest(to: $0, among: [field.key]) != nil })
            {
                report(node, path, "a \(modelName) price needs \(field.key); add it, e.g. \(field.example)")
                valid = false
            }
        }
        if let minimum, let maximum, minimum.value > maximum.value {
            report(minimum.node, join(path, "minimum"), "minimum \(minimum.value) is above maximum \(maximum.value); "
                + "the minimum must not exceed the maximum: lower the minimum or raise the maximum")
            valid = false
        }

        // The meter.
        var meterDefinition: Meter?
        if case let .plan(meters, declared) = context {
            if let meter {
                if let definition = meters[meter.code] {
                    meterDefinition = definition
                } else if !declared.contains(meter.code) {
                    valid = false
                    let names = meters.keys.sorted()
                    let guess = closest(to: meter.code, among: names).map { "did you mean \"\($0)\"? " } ?? ""
                    let known = names.isEmpty ? "define it under meters: first" : "the meters are \(names.joined(separator: ", "))"
                    report(meter.node, join(path, "meter"), "unknown meter \"\(meter.code)\"; \(guess)\(known)")
                }
            } else if node["meter"] == nil {
                valid = false
                let example = meters.keys.sorted().first ?? "api_calls"
                report(node, path, "this price names no meter; add the meter it prices, e.g. meter: \(example)")
            }
        }

        var dimensionList = [PriceDimension]()
        if let dimensions {
            let checkMeter: Meter?? = if case .plan = context { .some(meterDefinition) } else { .none }
            if let read = readDimensions(dimensions.node, path: dimensions.path, modelName: modelName,
                                         meter: checkMeter, meterCode: meter?.code) {
                dimensionList = read
            } else {
                valid = false
            }
        }

        guard valid, let modelName else { return nil }
        let model: PriceModel
        switch modelName {
        case "per_unit":
            guard let unitAmount else { return nil }
            model = .perUnit(unitAmount: unitAmount, freeUnits: freeUnits ?? .zero, transform: transform)
        case "graduated":
            guard let tiers else { return nil }
            model = .graduated(tiers)
        case "volume":
            guard let tiers else { return nil }
            model = .volume(tiers)
        case "package":
            guard let packageSize, let packageAmount else { return nil }
            model = .package(size: packageSize, amount: packageAmount, freeUnits: freeUnits ?? .zero, round: round ?? .up)
        default:
            guard let amount else { return nil }
            model = .flat(amount: amount)
        }
        return Price(meter: meter?.code, model: model, minimum: minimum?.value, maximum: maximum?.value,
                     dimensions: dimensionList)
    }

    private func readTransform(_ node: Node, path: String) -> PriceModel.Transform? {
        let example = "transform: { divide_by: 60, round: up }"
        guard case .mapping = node else {
            report(node, path, "transform must be a mapping, e.g. \(example); found \(describe(node))")
            return nil
        }
        var divideBy: ExactDecimal?
        var round: QuantityRounding?
        var valid = true
        forEachEntry(of: node, path: path, known: Self.transformKeys) { key, value, path in
            if key == "divide_by" {
                divideBy = decimal(value, path: path, example: "divide_by: 60", positive: true)
                if divideBy == nil { valid = false }
            } else if let name = choice(value, path: path, from: QuantityRounding.allCases.map(\.rawValue), what: "rounding") {
                round = QuantityRounding(rawValue: name)
            } else {
                valid = false
            }
        }
        if node["divide_by"] == nil {
            report(node, path, "transform needs divide_by, the size of one billed unit, e.g. \(example)")
            valid = false
        }
        if node["round"] == nil {
            report(node, path, "transform needs round: up (a started unit counts as whole) or round: down "
                + "(only whole units count), e.g. \(example)")
            valid = false
        }
        guard valid, let divideBy, let round else { return nil }
        return PriceModel.Transform(divideBy: divideBy, round: round)
    }

    private func readTiers(_ node: Node, path: String) -> [Tier]? {
        guard case let .sequence(items) = node else {
            report(node, path, "tiers must be a list of tiers, \(Self.tiersExample); found \(describe(node))")
            return nil
        }
        guard !items.isEmpty else {
            report(node, path, "tiers is empty; add at least one tier, the last one up_to: inf, \(Self.tiersExample)")
            return nil
        }
        var tiers = [Tier]()
        var valid = true
        var previous: (upTo: ExactDecimal, index: Int)?
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard case .mapping = item else {
                report(item, itemPath, "each tier is a mapping, e.g. { up_to: 1000, unit_amount: \"0.002\" }; "
                    + "found \(describe(item))")
                valid = false
                continue
            }
            var upTo: ExactDecimal??
            var unitAmount = ExactDecimal.zero
            var flatAmount = ExactDecimal.zero
            var tierValid = true
            forEachEntry(of: item, path: itemPath, known: Self.tierKeys) { key, value, path in
                switch key {
                case "up_to":
                    upTo = readUpTo(value, path: path)
                    if upTo == nil { tierValid = false }
                case "unit_amount":
                    if let number = decimal(value, path: path, example: "unit_amount: \"0.002\"") {
                        unitAmount = number
                    } else {
                        tierValid = false
                    }
                default: // flat_amount
                    if let number = decimal(value, path: path, example: "flat_amount: \"5\"") {
                        flatAmount = number
                    } else {
                        tierValid = false
                    }
                }
            }
            if item["up_to"] == nil {
                report(item, itemPath, "this tier has no up_to; add the largest quantity it covers, e.g. up_to: 1000 "
                    + "(up_to: inf for the last tier)")
                tierValid = false
            }
            if item["unit_amount"] == nil, item["flat_amount"] == nil {
                report(item, itemPath, "this tier has no price; add unit_amount, flat_amount or both, "
                    + "e.g. { up_to: 1000, unit_amount: \"0.002\" }")
                tierValid = false
            }
            let isLast = index == items.count - 1
            if let upTo {
                if let bound = upTo {
                    if let previous, bound <= previous.upTo {
                        report(item["up_to"], "\(itemPath).up_to", "up_to \(bound) is not above the previous tier's "
                            + "up_to \(previous.upTo) (\(path)[\(previous.index)]); up_to must rise strictly from tier to tier")
                        tierValid = false
                    }
                    previous = (bound, index)
                    if isLast {
                        report(item["up_to"], "\(itemPath).up_to", "the last tier must be up_to: inf so every quantity "
                            + "falls in a tier; write up_to: inf here, or add a tier { up_to: inf, unit_amount: … } after it")
                        tierValid = false
                    }
                } else if !isLast {
                    report(item["up_to"], "\(itemPath).up_to", "only the last tier can be up_to: inf; give this tier a "
                        + "number, or remove the tiers after it")
                    tierValid = false
                }
            }
            guard tierValid, let upTo else {
                valid = false
                continue
            }
            tiers.append(Tier(upTo: upTo, unitAmount: unitAmount, flatAmount: flatAmount))
        }
        return valid ? tiers : nil
    }

    /// `up_to`: a quantity above 0, or `inf` (returned as `.some(nil)`); nil when invalid.
    private func readUpTo(_ node: Node, path: String) -> ExactDecimal?? {
        let advice = "write the largest quantity the tier covers, e.g. up_to: 1000, or up_to: inf for the last tier"
        if isNull(node) {
            report(node, path, "up_to has no value; \(advice)")
            return nil
        }
        guard let text = node.scalar?.string else {
            report(node, path, "up_to must be a single value; \(advice); found \(describe(node))")
            return nil
        }
        if text == "inf" { return .some(nil) }
        if ["inf", ".inf", "+inf", "+.inf", "infinity", "infinite", "unlimited", "max"].contains(text.lowercased()) {
            report(node, path, "\"\(text)\" is not understood; write up_to: inf (\"inf\" in JSON) for the last tier")
            return nil
        }
        guard let bound = decimal(node, path: path, example: "up_to: 1000", positive: true, extraAdvice: " (or inf for the last tier)") else {
            return nil
        }
        return .some(bound)
    }

    /// `dimensions: { PROPERTY: { VALUE: { OVERRIDES } } }`. `meter` is nil for a standalone price
    /// (no group_by check), `.some(nil)` for a plan price whose meter is unknown or invalid.
    private func readDimensions(_ node: Node, path: String, modelName: String?, meter: Meter??, meterCode: String?) -> [PriceDimension]? {
        let example = "dimensions: { model: { large: { package_amount: \"0.06\" } } }"
        if isNull(node) { return [] }
        guard case let .mapping(properties) = node else {
            report(node, path, "dimensions must be a mapping of property → value → overrides, e.g. \(example); "
                + "found \(describe(node))")
            return nil
        }
        var valid = true
        if case let .some(.some(definition)) = meter, definition.groupBy.isEmpty {
            report(node, path, "dimensions apply only to meters with group_by, and meter \(definition.code) has none; "
                + "add group_by: [\(properties.first?.key.scalar?.string ?? "region")] to the meter, or remove dimensions")
            return nil
        }
        var dimensions = [PriceDimension]()
        /// Which property overrides each figure, to refuse two properties overriding the same one.
        var overriddenBy = [String: String]()
        for (propertyNode, values) in properties {
            guard let property = propertyNode.scalar?.string, !isNull(propertyNode), !property.isEmpty else {
                report(propertyNode, path, "dimensions keys must be property names from the meter's group_by, e.g. \(example)")
                valid = false
                continue
            }
            let propertyPath = "\(path).\(property)"
            if case let .some(.some(definition)) = meter, !definition.groupBy.contains(property) {
                report(propertyNode, propertyPath, "\"\(property)\" is not in meter \(definition.code)'s group_by "
                    + "[\(definition.groupBy.joined(separator: ", "))]; dimensions may only use those properties")
                valid = false
                continue
            }
            guard case let .mapping(valueMapping) = values else {
                report(values, propertyPath, "\(property) must map property values to overrides, e.g. "
                    + "\(property): { large: { package_amount: \"0.06\" } }; found \(describe(values))")
                valid = false
                continue
            }
            if valueMapping.count == 0 {
                report(values, propertyPath, "\(property) lists no values; add one, e.g. "
                    + "\(property): { large: { package_amount: \"0.06\" } }, or remove it")
                valid = false
            }
            for (valueNode, overridesNode) in valueMapping {
                guard let value = valueNode.scalar?.string, !isNull(valueNode) else {
                    report(valueNode, propertyPath, "the keys under \(property) are the property's values, compared as "
                        + "text, e.g. large: { package_amount: \"0.06\" }")
                    valid = false
                    continue
                }
                let valuePath = "\(propertyPath).\(value)"
                guard let overrides = readOverrides(overridesNode, path: valuePath, modelName: modelName) else {
                    valid = false
                    continue
                }
                for key in overrides.keys {
                    if let other = overriddenBy[key], other != property {
                        report(valueNode, valuePath, "both \(other) and \(property) override \(key), so a group with "
                            + "both would have two prices; override each figure through one property only")
                        valid = false
                    } else {
                        overriddenBy[key] = property
                    }
                }
                dimensions.append(PriceDimension(property: property, value: value, overrides: overrides))
            }
        }
        return valid ? dimensions : nil
    }

    private func readOverrides(_ node: Node, path: String, modelName: String?) -> PriceOverride? {
        let expected = modelName.flatMap { Self.overrideKeyOfModel[$0] }
        let example = "{ \(expected ?? "unit_amount"): \(expected == "tiers" ? "[…]" : "\"0.06\"") }"
        guard case .mapping = node, node.mapping?.count ?? 0 > 0 else {
            let found = isNull(node) ? "nothing" : describe(node)
            report(node, path, "the overrides for a group are a mapping of the figures that change, e.g. \(example); "
                + "found \(found)")
            return nil
        }
        var overrides = PriceOverride()
        var valid = true
        forEachEntry(of: node, path: path, known: Self.overrideKeys) { key, value, path in
            if let modelName, let expected, key != expected {
                report(value, path, "a \(modelName) price cannot override \(key); its groups may override "
                    + "\(expected) only, e.g. \(example)")
                valid = false
                return
            }
            switch key {
            case "unit_amount":
                overrides.unitAmount = decimal(value, path: path, example: "unit_amount: \"0.002\"")
                if overrides.unitAmount == nil { valid = false }
            case "package_amount":
                overrides.packageAmount = decimal(value, path: path, example: "package_amount: \"0.06\"")
                if overrides.packageAmount == nil { valid = false }
            case "amount":
                overrides.amount = decimal(value, path: path, example: "amount: \"99.00\"")
                if overrides.amount == nil { valid = false }
            default: // tiers
                overrides.tiers = readTiers(value, path: path)
                if overrides.tiers == nil { valid = false }
            }
        }
        guard valid, !overrides.keys.isEmpty else {
            if valid { report(node, path, "these overrides change nothing; write e.g. \(example)") }
            return nil
        }
        return overrides
    }

    /// An amount or quantity of a price: a decimal string or a YAML/JSON number, read exactly from
    /// its text; 0 or more (above 0 when `positive`), below 10^18, at most 12 decimal places.
    private func decimal(
        _ node: Node, path: String, example: String, positive: Bool = false, extraAdvice: String = ""
    ) -> ExactDecimal? {
        guard let (text, value) = decimalScalar(node, path: path, expected: "a decimal\(extraAdvice)",
                                                syntaxAdvice: extraAdvice, example: example)
        else { return nil }
        if value.isNegative {
            report(node, path, "\(text) is negative; amounts and quantities in a price are 0 or more, e.g. \(example)")
            return nil
        }
        if positive, value.isZero {
            report(node, path, "\(text) must be above 0, e.g. \(example)")
            return nil
        }
        guard hasAllowedDecimals(value, text: text, node: node, path: path) else { return nil }
        if value >= Self.priceValueLimit {
            report(node, path, "\(text) is too large; amounts and quantities in a price must be below 10^18")
            return nil
        }
        return value
    }

    private func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
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

extension ConfigReader {
    /// How to fix a scalar that is not a decimal: a comma, digit separators, a bare point, a + sign.
    static func decimalSyntaxHint(_ text: String) -> String {
        if text.contains(",") { return ", with . as the decimal point and no digit grouping" }
        if text.contains("_") { return " without digit separators" }
        if text.hasPrefix(".") || text.hasPrefix("-.") { return " with a digit before the point (0.5, not .5)" }
        if text.hasPrefix("+") { return " without a + sign" }
        return ""
    }

    /// A scalar read exactly as a decimal (never through a binary float), with its text; reports a
    /// missing value, a list or mapping, or text that is not a decimal, saying to write `expected`.
    func decimalScalar(_ node: Node, path: String, expected: String, syntaxAdvice: String, example: String) -> (String, ExactDecimal)? {
        if isNull(node) {
            report(node, path, "this key has no value; write \(expected), e.g. \(example)")
            return nil
        }
        guard let text = node.scalar?.string else {
            report(node, path, "expected \(expected), e.g. \(example); found \(describe(node))")
            return nil
        }
        guard let value = ExactDecimal(text) else {
            report(node, path, "\"\(text)\" is not a decimal number; write digits with an optional fraction"
                + "\(Self.decimalSyntaxHint(text))\(syntaxAdvice), e.g. \(example)")
            return nil
        }
        return (text, value)
    }

    /// Whether `value` has at most 12 decimal places (as money and prices allow); reports it otherwise.
    func hasAllowedDecimals(_ value: ExactDecimal, text: String, node: Node, path: String) -> Bool {
        let maximum = Self.maxPriceFractionalDigits
        guard value.scale > maximum else { return true }
        let rounded = value.rounded(scale: maximum, rule: .halfAwayFromZero)
        report(node, path, "\(text) has \(value.scale) decimal places; at most \(maximum) are allowed: round it, e.g. to \(rounded)")
        return false
    }
}
