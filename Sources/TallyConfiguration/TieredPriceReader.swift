import Yams
import Metering

// MARK: - Tiers (graduated and volume prices)

extension ConfigReader {
    func readTiers(_ node: Node, path: String) -> [Tier]? {
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
    func readUpTo(_ node: Node, path: String) -> ExactDecimal?? {
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
}
