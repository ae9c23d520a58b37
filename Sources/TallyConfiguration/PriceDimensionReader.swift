import Yams
import Metering

// MARK: - Dimensions and their overrides

extension ConfigReader {
    func readDimensions(_ node: Node, path: String, modelName: String?, meter: Meter??, meterCode: String?) -> [PriceDimension]? {
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

    func readOverrides(_ node: Node, path: String, modelName: String?) -> PriceOverride? {
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
}
