import Yams
import Metering

// MARK: - Meters

extension ConfigReader {
    static let meterExample = "e.g. meters: [{ code: api_calls, aggregation: count }]"

    func readMeters(_ node: Node, path: String) -> [Meter] {
        guard case let .sequence(items) = node else {
            report(node, path, "meters must be a list of meters, \(Self.meterExample); found \(describe(node))")
            return []
        }
        if items.isEmpty {
            report(node, path, "the meters list is empty; add at least one meter, \(Self.meterExample)")
        }
        var meters = [Meter]()
        var firstUse = [String: (index: Int, line: Int?)]()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let meter = readMeter(item, path: itemPath) else { continue }
            if let first = firstUse[meter.code] {
                let whereFirst = first.line.map { " (line \($0))" } ?? ""
                report(item["code"] ?? item, "\(itemPath).code", "the meter code \"\(meter.code)\" is already used by "
                    + "\(path)[\(first.index)]\(whereFirst); give each meter its own code")
                continue
            }
            firstUse[meter.code] = (index, (item["code"] ?? item).mark?.line)
            meters.append(meter)
        }
        return meters
    }

    private func readMeter(_ node: Node, path: String) -> Meter? {
        guard case .mapping = node else {
            report(node, path, "each meter is a mapping, e.g. - { code: api_calls, aggregation: count }; "
                + "found \(describe(node))")
            return nil
        }
        var code: String?
        var aggregation: Aggregation?
        var property: (value: String, node: Node, path: String)?
        var filter = [String: String]()
        var groupBy = [String]()
        var valid = true

        forEachEntry(of: node, path: path, known: Self.meterKeys) { key, value, path in
            switch key {
            case "code":
                guard let text = nonEmptyText(value, path: path, example: "code: api_calls") else { valid = false; return }
                if isMeterCode(text) {
                    code = text
                } else {
                    valid = false
                    report(value, path, "the meter code \"\(text)\" may use only lowercase letters, digits and _ "
                        + "(1 to 64 of them), e.g. code: \(suggestedCode(text))")
                }
            case "aggregation":
                let names = Aggregation.allCases.map(\.rawValue)
                if let name = choice(value, path: path, from: names, what: "aggregation") {
                    aggregation = Aggregation(rawValue: name)
                } else {
                    valid = false
                }
            case "property":
                if let text = nonEmptyText(value, path: path, example: "property: user_id") {
                    property = (text, value, path)
                } else {
                    valid = false
                }
            case "filter":
                if let entries = readFilter(value, path: path) { filter = entries } else { valid = false }
            default: // group_by
                if let names = readGroupBy(value, path: path) { groupBy = names } else { valid = false }
            }
        }
        if node["code"] == nil {
            report(node, path, "this meter has no code; add one, e.g. code: api_calls")
        }
        if node["aggregation"] == nil {
            report(node, path, "this meter has no aggregation; add one: aggregation: "
                + Aggregation.allCases.map(\.rawValue).joined(separator: " | "))
        }
        if let aggregation {
            if aggregation == .uniqueCount, property == nil, node["property"] == nil {
                report(node, path, "unique_count counts distinct values of a property; name it, e.g. property: user_id")
                valid = false
            }
            if aggregation != .uniqueCount, let property {
                report(property.node, property.path, "property is only used by unique_count (\(aggregation.rawValue) "
                    + "aggregates the events' values); remove it, or use aggregation: unique_count")
                valid = false
            }
        }
        guard valid, let code, let aggregation else { return nil }
        return Meter(code: code, aggregation: aggregation, property: property?.value, filter: filter, groupBy: groupBy)
    }

    private func readFilter(_ node: Node, path: String) -> [String: String]? {
        let example = "filter: { billable: \"true\" }"
        if isNull(node) { return [:] }
        guard case .mapping = node else {
            report(node, path, "filter must be a mapping of property names to values, e.g. \(example); "
                + "found \(describe(node))")
            return nil
        }
        var entries = [String: String]()
        var valid = true
        for (keyNode, value) in node.mapping! {
            guard let name = keyNode.scalar?.string, !isNull(keyNode) else {
                report(keyNode, path, "filter keys must be property names, e.g. \(example)")
                valid = false
                continue
            }
            let entryPath = "\(path).\(name)"
            guard let scalar = value.scalar, !isNull(value) else {
                report(value, entryPath, "filter values must be single values, compared with the property as text, "
                    + "e.g. \(name): \"true\"; found \(describe(value))")
                valid = false
                continue
            }
            entries[name] = scalar.string
        }
        return valid ? entries : nil
    }

    private func readGroupBy(_ node: Node, path: String) -> [String]? {
        if isNull(node) { return [] }
        guard case let .sequence(items) = node else {
            let hint = node.scalar.map { "group_by: [\($0.string)]" } ?? "group_by: [region]"
            report(node, path, "group_by must be a list of property names, e.g. \(hint); found \(describe(node))")
            return nil
        }
        var names = [String]()
        var valid = true
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let name = nonEmptyText(item, path: itemPath, example: "group_by: [region]") else {
                valid = false
                continue
            }
            if names.contains(name) {
                report(item, itemPath, "\"\(name)\" is listed twice in group_by; list each property once")
                valid = false
            } else {
                names.append(name)
            }
        }
        return valid ? names : nil
    }

}

private func isMeterCode(_ text: String) -> Bool {
    let bytes = text.utf8
    return (1...64).contains(bytes.count) && bytes.allSatisfy { byte in
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
    }
}

/// A valid meter code close to `text`: lowercased, other characters turned into `_`.
private func suggestedCode(_ text: String) -> String {
    let mapped = text.lowercased().unicodeScalars.map { scalar -> Character in
        let isValid = (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") || scalar == "_"
        return isValid ? Character(scalar) : "_"
    }
    let code = String(mapped.prefix(64))
    return code.isEmpty ? "api_calls" : code
}

