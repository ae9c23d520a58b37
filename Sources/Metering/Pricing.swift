/// One price: how a meter's quantity for a period becomes money (DESIGN.md §5).
///
/// ```yaml
/// - { meter: storage_gb, model: per_unit, unit_amount: "0.10", free_units: 5 }
/// ```
/// Prices come from a plan in the config (`ConfigLoader`) or from `PriceParser` (`tally quote`).
/// `Rater.rate` in the Rating module turns a price and a quantity into an amount.
public struct Price: Sendable, Hashable {
    /// The meter this price applies to; nil for a standalone price (`tally quote --price`).
    public var meter: String?
    /// The pricing model and its figures.
    public var model: PriceModel
    /// The least the price charges per period (`minimum`), or nil.
    public var minimum: ExactDecimal?
    /// The most the price charges per period (`maximum`), or nil.
    public var maximum: ExactDecimal?
    /// Overrides for groups of a meter with `group_by`, in file order.
    public var dimensions: [PriceDimension]

    /// Creates a price.
    public init(
        meter: String? = nil,
        model: PriceModel,
        minimum: ExactDecimal? = nil,
        maximum: ExactDecimal? = nil,
        dimensions: [PriceDimension] = []
    ) {
        self.meter = meter
        self.model = model
        self.minimum = minimum
        self.maximum = maximum
        self.dimensions = dimensions
    }

    /// The price for one group of a meter with `group_by`: every dimension whose property has its
    /// value in `group` applies its overrides (the result has no dimensions left).
    ///
    /// ```swift
    /// // dimensions: { model: { large: { package_amount: "0.06" } } }
    /// price.price(forGroup: ["model": "large"]).model   // .package(size: 1000, amount: 0.06, …)
    /// price.price(forGroup: ["model": "small"]).model   // the base price
    /// ```
    /// The config loader refuses two properties overriding the same figure, so the order in which
    /// dimensions apply never changes the result.
    public func price(forGroup group: [String: String]) -> Price {
        var resolved = self
        resolved.dimensions = []
        for dimension in dimensions where group[dimension.property] == dimension.value {
            resolved.model = dimension.overrides.applied(to: resolved.model)
        }
        return resolved
    }
}

/// A pricing model with its figures. Amounts are in major units of the plan's currency.
public enum PriceModel: Sendable, Hashable {
    /// `unit_amount × T(max(q − free_units, 0))`, where `T` is the optional transform (identity
    /// without one).
    case perUnit(unitAmount: ExactDecimal, freeUnits: ExactDecimal = .zero, transform: Transform? = nil)
    /// Each tier prices the part of q inside it; every tier reached adds its flat amount.
    case graduated([Tier])
    /// The whole q at the unit amount of the tier q falls in, plus that tier's flat amount.
    case volume([Tier])
    /// `amount × round((q − free_units) / size)`, not below 0.
    case package(size: ExactDecimal, amount: ExactDecimal, freeUnits: ExactDecimal = .zero, round: QuantityRounding = .up)
    /// `amount` once per period, whatever the quantity.
    case flat(amount: ExactDecimal)

    /// The model's name in the config: `per_unit`, `graduated`, `volume`, `package` or `flat`.
    public var name: String {
        switch self {
        case .perUnit: "per_unit"
        case .graduated: "graduated"
        case .volume: "volume"
        case .package: "package"
        case .flat: "flat"
        }
    }

    /// Every model name the config accepts, in documentation order.
    public static let names = ["per_unit", "graduated", "volume", "package", "flat"]

    /// `transform: { divide_by: 60, round: up }`: per-unit prices charge whole multiples of
    /// `divideBy` (seconds billed per started minute, bytes per started GB, …).
    public struct Transform: Sendable, Hashable {
        /// The quantity is divided by this (above 0)…
        public var divideBy: ExactDecimal
        /// …and rounded to a whole number this way.
        public var round: QuantityRounding

        /// Creates a transform.
        public init(divideBy: ExactDecimal, round: QuantityRounding) {
            self.divideBy = divideBy
            self.round = round
        }
    }
}

/// How a quantity is rounded to a whole number of units or packages.
public enum QuantityRounding: String, Sendable, Hashable, CaseIterable {
    /// Any part of a unit counts as a whole one: 2.1 → 3.
    case up
    /// Only whole units count: 2.9 → 2.
    case down
}

/// One tier of a graduated or volume price: `{ up_to: 1000, unit_amount: "0.002", flat_amount: "5" }`.
///
/// Tier *i* covers the quantities in `(upTo[i-1], upTo[i]]`; the first starts at 0.
public struct Tier: Sendable, Hashable {
    /// The inclusive upper bound of the tier; nil for `inf` (only the last tier).
    public var upTo: ExactDecimal?
    /// The price of each unit inside the tier.
    public var unitAmount: ExactDecimal
    /// Charged once when the tier is reached.
    public var flatAmount: ExactDecimal

    /// Creates a tier; `upTo: nil` means `inf`.
    public init(upTo: ExactDecimal?, unitAmount: ExactDecimal = .zero, flatAmount: ExactDecimal = .zero) {
        self.upTo = upTo
        self.unitAmount = unitAmount
        self.flatAmount = flatAmount
    }
}

/// Overrides for the groups of a meter whose `property` has `value`.
///
/// ```yaml
/// dimensions: { model: { large: { package_amount: "0.06" } } }
/// ```
/// is `PriceDimension(property: "model", value: "large", overrides: PriceOverride(packageAmount: 0.06))`.
public struct PriceDimension: Sendable, Hashable {
    /// The `group_by` property the dimension looks at.
    public var property: String
    /// The property's value (compared as text) for which the overrides apply.
    public var value: String
    /// What changes for that group.
    public var overrides: PriceOverride

    /// Creates a dimension.
    public init(property: String, value: String, overrides: PriceOverride) {
        self.property = property
        self.value = value
        self.overrides = overrides
    }
}

/// The figures a dimension replaces; nil leaves the base price's figure. Each field fits one model:
/// `unitAmount` per_unit, `packageAmount` package, `amount` flat, `tiers` graduated and volume.
public struct PriceOverride: Sendable, Hashable {
    /// `unit_amount` of a per_unit price.
    public var unitAmount: ExactDecimal?
    /// `package_amount` of a package price.
    public var packageAmount: ExactDecimal?
    /// `amount` of a flat price.
    public var amount: ExactDecimal?
    /// The whole `tiers` list of a graduated or volume price.
    public var tiers: [Tier]?

    /// Creates overrides.
    public init(
        unitAmount: ExactDecimal? = nil,
        packageAmount: ExactDecimal? = nil,
        amount: ExactDecimal? = nil,
        tiers: [Tier]? = nil
    ) {
        self.unitAmount = unitAmount
        self.packageAmount = packageAmount
        self.amount = amount
        self.tiers = tiers
    }

    /// `model` with the overrides that fit it applied; the others are ignored.
    public func applied(to model: PriceModel) -> PriceModel {
        switch model {
        case let .perUnit(unitAmount, freeUnits, transform):
            return .perUnit(unitAmount: self.unitAmount ?? unitAmount, freeUnits: freeUnits, transform: transform)
        case let .graduated(tiers):
            return .graduated(self.tiers ?? tiers)
        case let .volume(tiers):
            return .volume(self.tiers ?? tiers)
        case let .package(size, amount, freeUnits, round):
            return .package(size: size, amount: packageAmount ?? amount, freeUnits: freeUnits, round: round)
        case let .flat(amount):
            return .flat(amount: self.amount ?? amount)
        }
    }

    /// The config keys this override sets, in a fixed order (`unit_amount`, `package_amount`,
    /// `amount`, `tiers`).
    public var keys: [String] {
        var keys = [String]()
        if unitAmount != nil { keys.append("unit_amount") }
        if packageAmount != nil { keys.append("package_amount") }
        if amount != nil { keys.append("amount") }
        if tiers != nil { keys.append("tiers") }
        return keys
    }
}

/// A plan from `plans:`: a currency and one price per meter.
///
/// ```yaml
/// - code: starter
///   currency: USD
///   prices:
///     - { meter: api_calls, model: per_unit, unit_amount: "0.002" }
/// ```
public struct Plan: Sendable, Hashable {
    /// The plan's code, unique among plans (1 to 64 letters, digits, `_`, `-` or `.`).
    public var code: String
    /// The ISO 4217 code every amount of the plan is in, such as `USD`.
    public var currency: String
    /// The prices, at most one per meter, in file order.
    public var prices: [Price]

    /// Creates a plan.
    public init(code: String, currency: String, prices: [Price]) {
        self.code = code
        self.currency = currency
        self.prices = prices
    }

    /// The plan's price for `meter`, or nil when the plan does not charge for that meter.
    public func price(forMeter meter: String) -> Price? {
        prices.first { $0.meter == meter }
    }
}

/// One entry of `customers:`: `{ id: cus_42, plan: starter }`.
public struct CustomerPlanAssignment: Sendable, Hashable {
    /// The customer id, as events send it (1 to 255 bytes).
    public var customer: String
    /// The code of the customer's plan.
    public var plan: String

    /// Creates an assignment.
    public init(customer: String, plan: String) {
        self.customer = customer
        self.plan = plan
    }
}
