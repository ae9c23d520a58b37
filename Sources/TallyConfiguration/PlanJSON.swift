public import Metering

/// Plans and prices as JSON, with the keys of the config file: what `GET /v1/plans` answers, and
/// each price is exactly what `tally quote --price` (`PriceParser`) reads back.
///
/// ```json
/// {"code":"starter","currency":"USD","prices":[{"meter":"api_calls","model":"per_unit","unit_amount":"0.002"}]}
/// ```
/// Decimals are strings, so no amount passes through a binary float; `up_to: inf` is `"inf"`.
public enum PlanJSON {
    /// `{"code","currency","prices":[…]}`.
    public static func append(_ plan: Plan, to writer: inout JSONWriter) {
        writer.raw("{"); writer.key("code"); writer.string(plan.code)
        writer.raw(","); writer.key("currency"); writer.string(plan.currency)
        writer.raw(","); writer.key("prices"); writer.raw("[")
        for (index, price) in plan.prices.enumerated() {
            if index > 0 { writer.raw(",") }
            append(price, to: &writer)
        }
        writer.raw("]}")
    }

    /// One price with the config's keys, only those its model uses.
    public static func append(_ price: Price, to writer: inout JSONWriter) {
        writer.raw("{")
        if let meter = price.meter {
            writer.key("meter"); writer.string(meter); writer.raw(",")
        }
        writer.key("model"); writer.string(price.model.name)
        func decimal(_ key: String, _ value: ExactDecimal) {
            writer.raw(","); writer.key(key); writer.string(value.description)
        }
        switch price.model {
        case let .perUnit(unitAmount, freeUnits, transform):
            decimal("unit_amount", unitAmount)
            if !freeUnits.isZero { decimal("free_units", freeUnits) }
            if let transform {
                writer.raw(","); writer.key("transform"); writer.raw("{")
                writer.key("divide_by"); writer.string(transform.divideBy.description)
                writer.raw(","); writer.key("round"); writer.string(transform.round.rawValue)
                writer.raw("}")
            }
        case let .graduated(tiers), let .volume(tiers):
            writer.raw(","); writer.key("tiers"); appendTiers(tiers, to: &writer)
        case let .package(size, amount, freeUnits, round):
            decimal("package_size", size)
            decimal("package_amount", amount)
            if !freeUnits.isZero { decimal("free_units", freeUnits) }
            writer.raw(","); writer.key("round"); writer.string(round.rawValue)
        case let .flat(amount):
            decimal("amount", amount)
        }
        if let minimum = price.minimum { decimal("minimum", minimum) }
        if let maximum = price.maximum { decimal("maximum", maximum) }
        if !price.dimensions.isEmpty {
            // { property: { value: { overrides } } }, properties and values in file order.
            var properties: [String] = []
            for dimension in price.dimensions where !properties.contains(dimension.property) { properties.append(dimension.property) }
            writer.raw(","); writer.key("dimensions"); writer.raw("{")
            for (index, property) in properties.enumerated() {
                if index > 0 { writer.raw(",") }
                writer.key(property); writer.raw("{")
                for (position, dimension) in price.dimensions.filter({ $0.property == property }).enumerated() {
                    if position > 0 { writer.raw(",") }
                    writer.key(dimension.value); appendOverride(dimension.overrides, to: &writer)
                }
                writer.raw("}")
            }
            writer.raw("}")
        }
        writer.raw("}")
    }

    private static func appendTiers(_ tiers: [Tier], to writer: inout JSONWriter) {
        writer.raw("[")
        for (index, tier) in tiers.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("up_to"); writer.string(tier.upTo?.description ?? "inf")
            writer.raw(","); writer.key("unit_amount"); writer.string(tier.unitAmount.description)
            if !tier.flatAmount.isZero {
                writer.raw(","); writer.key("flat_amount"); writer.string(tier.flatAmount.description)
            }
            writer.raw("}")
        }
        writer.raw("]")
    }

    private static func appendOverride(_ override: PriceOverride, to writer: inout JSONWriter) {
        writer.raw("{")
        var first = true
        func separator() {
            if !first { writer.raw(",") }
            first = false
        }
        if let unitAmount = override.unitAmount { separator(); writer.key("unit_amount"); writer.string(unitAmount.description) }
        if let packageAmount = override.packageAmount { separator(); writer.key("package_amount"); writer.string(packageAmount.description) }
        if let amount = override.amount { separator(); writer.key("amount"); writer.string(amount.description) }
        if let tiers = override.tiers { separator(); writer.key("tiers"); appendTiers(tiers, to: &writer) }
        writer.raw("}")
    }
}
