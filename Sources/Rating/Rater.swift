public import Metering

/// One line of a rating: a tier (or the single line of an untiered model), or the minimum/maximum
/// adjustment. Always `amount == unitAmount × quantity + flatAmount`.
///
/// What `quantity` counts depends on the model:
/// - per_unit: the billed units, after free units and the transform (150 seconds with
///   `divide_by: 60, round: up` is 3);
/// - graduated: the part of the quantity inside this tier; volume: the whole quantity;
/// - package: the number of packages (`unitAmount` is the package amount);
/// - flat: the period's quantity, with `unitAmount` 0 and the price in `flatAmount`;
/// - the adjustment line (`isAdjustment`): quantity 0, unit amount 0, and the adjustment (positive
///   for a minimum, negative for a maximum) in `flatAmount` and `amount`.
public struct RatingLine: Sendable, Hashable {
    /// The 1-based tier of a graduated or volume price; nil for the other models and the adjustment.
    public var tier: Int?
    /// The quantity the unit amount multiplies (see the type's description).
    public var quantity: ExactDecimal
    /// The price per unit (per package for package prices).
    public var unitAmount: ExactDecimal
    /// The amount charged once for this line (a tier's flat amount, a flat price, an adjustment).
    public var flatAmount: ExactDecimal
    /// `unitAmount × quantity + flatAmount`, exact.
    public var amount: ExactDecimal
    /// Whether this line is the minimum/maximum adjustment (always the last line).
    public var isAdjustment: Bool

    /// Creates a line.
    public init(
        tier: Int?, quantity: ExactDecimal, unitAmount: ExactDecimal, flatAmount: ExactDecimal,
        amount: ExactDecimal, isAdjustment: Bool = false
    ) {
        self.tier = tier
        self.quantity = quantity
        self.unitAmount = unitAmount
        self.flatAmount = flatAmount
        self.amount = amount
        self.isAdjustment = isAdjustment
    }
}

/// The rating of one quantity with one price: the lines and the exact amount, not yet rounded to
/// the currency (round once per statement line with `Rater.round`).
public struct Rating: Sendable, Hashable {
    /// The quantity as given.
    public var quantity: ExactDecimal
    /// The lines, in tier order, with the adjustment line last when there is one.
    public var lines: [RatingLine]
    /// The sum of the lines' amounts, including the adjustment: the amount clamped to the price's
    /// minimum and maximum.
    public var exactAmount: ExactDecimal
    /// What the minimum (+) or the maximum (−) changed; 0 when neither applied.
    public var adjustment: ExactDecimal

    /// Creates a rating.
    public init(quantity: ExactDecimal, lines: [RatingLine], exactAmount: ExactDecimal, adjustment: ExactDecimal) {
        self.quantity = quantity
        self.lines = lines
        self.exactAmount = exactAmount
        self.adjustment = adjustment
    }
}

/// Prices quantities: pure functions, exact decimals, no I/O (DESIGN.md §5).
///
/// ```swift
/// let price = Price(model: .graduated([
///     Tier(upTo: 5, unitAmount: ExactDecimal("7.00")!),
///     Tier(upTo: 10, unitAmount: ExactDecimal("6.50")!),
///     Tier(upTo: nil, unitAmount: ExactDecimal("6.00")!),
/// ]))
/// let rating = try Rater.rate(price, quantity: 6)          // exactAmount 41.5, two lines
/// let usd = Currency.named("USD")!
/// Rater.round(rating.exactAmount, currency: usd, mode: .halfAwayFromZero)   // 41.5 → "41.50" formatted
/// ```
public enum Rater {
    /// Rates `quantity` with `price`, exactly.
    ///
    /// For a meter with `group_by`, pass `price.price(forGroup:)`; dimensions are not applied here.
    /// A negative quantity is priced as 0. Tiers are expected as the config loader checks them
    /// (at least one, `upTo` rising, the last `inf`); a finite last tier is treated as unbounded.
    /// Only the models' own whole-number rounding happens here (the per_unit transform, packages);
    /// the amount is never rounded to a currency.
    ///
    /// - Throws: `DecimalOverflow` when a product or sum does not fit an `ExactDecimal`.
    public static func rate(_ price: Price, quantity: ExactDecimal) throws(DecimalOverflow) -> Rating {
        let priced = max(quantity, .zero)
        var lines: [RatingLine]
        switch price.model {
        case let .perUnit(unitAmount, freeUnits, transform):
            let units = try perUnitUnits(priced, freeUnits: freeUnits, transform: transform)
            lines = [try line(tier: nil, quantity: units, unitAmount: unitAmount, flatAmount: .zero)]
        case let .graduated(tiers):
            lines = try graduated(tiers, quantity: priced)
        case let .volume(tiers):
            lines = try volume(tiers, quantity: priced)
        case let .package(size, amount, freeUnits, round):
            let billable = try priced.subtracting(freeUnits)
            let packages = billable > .zero ? try billable.divided(by: size, scale: 0, rounding: rule(round)) : .zero
            lines = [try line(tier: nil, quantity: packages, unitAmount: amount, flatAmount: .zero)]
        case let .flat(amount):
            lines = [try line(tier: nil, quantity: priced, unitAmount: .zero, flatAmount: amount)]
        }

        var total = ExactDecimal.zero
        for line in lines { total = try total.adding(line.amount) }
        var clamped = total
        if let minimum = price.minimum, clamped < minimum { clamped = minimum }
        if let maximum = price.maximum, clamped > maximum { clamped = maximum }
        let adjustment = try clamped.subtracting(total)
        if !adjustment.isZero {
            lines.append(RatingLine(
                tier: nil, quantity: .zero, unitAmount: .zero, flatAmount: adjustment, amount: adjustment,
                isAdjustment: true))
        }
        return Rating(quantity: quantity, lines: lines, exactAmount: clamped, adjustment: adjustment)
    }

    /// ``rate(_:quantity:)``'s `exactAmount` alone: without building the lines for a per-unit price
    /// without a minimum or maximum (what the group commit rates for credits, row by row).
    public static func exactAmount(_ price: Price, quantity: ExactDecimal) throws(DecimalOverflow) -> ExactDecimal {
        guard price.minimum == nil, price.maximum == nil, case let .perUnit(unitAmount, freeUnits, transform) = price.model else {
            return try rate(price, quantity: quantity).exactAmount
        }
        return try unitAmount.multiplied(by: perUnitUnits(max(quantity, .zero), freeUnits: freeUnits, transform: transform))
    }

    /// The units a per-unit price charges for `priced` (never negative): past the free units, then
    /// transformed (divided and rounded to whole units) when the price says so.
    private static func perUnitUnits(_ priced: ExactDecimal, freeUnits: ExactDecimal,
                                     transform: PriceModel.Transform?) throws(DecimalOverflow) -> ExactDecimal {
        let units = max(try priced.subtracting(freeUnits), .zero)
        guard let transform else { return units }
        return try units.divided(by: transform.divideBy, scale: 0, rounding: rule(transform.round))
    }

    /// `amount` rounded once to the currency's minor unit: `half_away_from_zero` (2.345 → 2.35) or
    /// `half_even` (2.345 → 2.34, 2.355 → 2.36).
    public static func round(_ amount: ExactDecimal, currency: Currency, mode: RoundingMode) -> ExactDecimal {
        let rule: RoundingRule = switch mode {
        case .halfAwayFromZero: .halfAwayFromZero
        case .halfEven: .halfEven
        }
        return amount.rounded(scale: currency.minorUnits, rule: rule)
    }

    /// Each tier prices the part of the quantity inside `(upTo[i-1], upTo[i]]`; every tier reached
    /// adds its flat amount; at 0 the first tier is reached.
    private static func graduated(_ tiers: [Tier], quantity: ExactDecimal) throws(DecimalOverflow) -> [RatingLine] {
        var lines = [RatingLine]()
        var lower = ExactDecimal.zero
        for (index, tier) in tiers.enumerated() {
            let isLast = index == tiers.count - 1
            let upper = isLast ? quantity : min(tier.upTo ?? quantity, quantity)
            let inside = max(try upper.subtracting(lower), .zero)
            lines.append(try line(tier: index + 1, quantity: inside, unitAmount: tier.unitAmount, flatAmount: tier.flatAmount))
            guard !isLast, let upTo = tier.upTo, quantity > upTo else { break }
            lower = upTo
        }
        return lines
    }

    /// The whole quantity at the tier it falls in (the first at 0).
    private static func volume(_ tiers: [Tier], quantity: ExactDecimal) throws(DecimalOverflow) -> [RatingLine] {
        guard !tiers.isEmpty else { return [] }
        let index = tiers.firstIndex { tier in tier.upTo.map { quantity <= $0 } ?? true } ?? tiers.count - 1
        let tier = tiers[index]
        return [try line(tier: index + 1, quantity: quantity, unitAmount: tier.unitAmount, flatAmount: tier.flatAmount)]
    }

    private static func line(
        tier: Int?, quantity: ExactDecimal, unitAmount: ExactDecimal, flatAmount: ExactDecimal
    ) throws(DecimalOverflow) -> RatingLine {
        let amount = try unitAmount.multiplied(by: quantity).adding(flatAmount)
        return RatingLine(tier: tier, quantity: quantity, unitAmount: unitAmount, flatAmount: flatAmount, amount: amount)
    }

    private static func rule(_ rounding: QuantityRounding) -> RoundingRule {
        switch rounding {
        case .up: .ceiling
        case .down: .floor
        }
    }
}
