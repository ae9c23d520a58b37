import Yams
public import Metering


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

// MARK: - One price

extension ConfigReader {
    static let priceKeys = [
        "meter", "model", "unit_amount", "free_units", "transform", "tiers", "package_size", "package_amount",
        "round", "amount", "minimum", "maximum", "dimensions",
    ]
    static let tierKeys = ["up_to", "unit_amount", "flat_amount"]
    static let transformKeys = ["divide_by", "round"]
    static let overrideKeys = ["unit_amount", "package_amount", "amount", "tiers"]
    /// The keys each model reads besides meter, model, minimum, maximum and dimensions.
    static let modelKeys: [String: [String]] = [
        "per_unit": ["unit_amount", "free_units", "transform"],
        "graduated": ["tiers"],
        "volume": ["tiers"],
        "package": ["package_size", "package_amount", "free_units", "round"],
        "flat": ["amount"],
    ]
    /// The override key each model accepts in `dimensions`.
    static let overrideKeyOfModel = [
        "per_unit": "unit_amount", "graduated": "tiers", "volume": "tiers", "package": "package_amount",
        "flat": "amount",
    ]
    static let tiersExample = "e.g. tiers: [{ up_to: 1000, unit_amount: \"0\" }, "
        + "{ up_to: inf, unit_amount: \"0.001\" }]"
    /// The most fractional digits an amount or quantity in a price may have.
    static let maxPriceFractionalDigits = 12
    /// Every amount and quantity in a price must be below this: 10^18.
    static let priceValueLimit = ExactDecimal(significand: 1_000_000_000_000_000_000, scale: 0)

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

    func readTransform(_ node: Node, path: String) -> PriceModel.Transform? {
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


    /// its text; 0 or more (above 0 when `positive`), below 10^18, at most 12 decimal places.
    func decimal(
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

    func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }
}

