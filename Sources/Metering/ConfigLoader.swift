import Foundation
import Yams

/// Reads and validates Tally's YAML config file.
///
/// ```swift
/// do {
///     let config = try ConfigLoader.load(path: "config/tally.yaml")
/// } catch {
///     // error.description: one "FILE:LINE:COLUMN: path: message" line per problem
/// }
/// ```
/// Loading reports every problem it finds, each with its line and what to write instead. Unknown keys
/// are errors (with a "did you mean" for near misses). `plans`, `default_plan` and `customers` are
/// read and checked against the meters (see `PriceReader.swift`); `limits` against the meters and
/// plans, and `alerts` and `http` on their own (see `LimitsReader.swift`).
public enum ConfigLoader {
    /// Top-level sections accepted without validation and listed in `TallyConfig.ignoredSections`.
    /// Empty: this build reads and validates every section it accepts.
    public static let ignoredSectionNames: [String] = []

    /// Reads and validates the config file at `path`.
    ///
    /// - Throws: `ConfigError` listing every problem, or saying the file is missing or unreadable.
    public static func load(path: String) throws(ConfigError) -> TallyConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(fileName: path, problems: [
                ConfigProblem(
                    path: "",
                    message: "no config file at \(path); create it (config/tally.yaml in Tally's repository is "
                        + "an example to start from) or pass --config FILE"
                ),
            ])
        }
        if isDirectory.boolValue {
            throw ConfigError(fileName: path, problems: [
                ConfigProblem(path: "", message: "\(path) is a directory; pass the YAML file itself with --config FILE"),
            ])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(fileName: path, problems: [
                ConfigProblem(path: "", message: "cannot read \(path); check its permissions"),
            ])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(fileName: path, problems: [
                ConfigProblem(path: "", message: "\(path) is not UTF-8 text; save it as UTF-8"),
            ])
        }
        return try parse(yaml: text, fileName: path)
    }

    /// Reads and validates config text; `fileName` only names the source in error messages.
    ///
    /// - Throws: `ConfigError` listing every problem, sorted by line.
    public static func parse(yaml: String, fileName: String) throws(ConfigError) -> TallyConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(fileName: fileName, problems: [syntaxProblem(error, yaml: yaml)])
        }
        let reader = ConfigReader()
        let config = reader.readConfig(root)
        guard reader.problems.isEmpty, let config else {
            throw ConfigError(fileName: fileName, problems: reader.problems)
        }
        return config
    }

    static func syntaxProblem(_ error: any Error, yaml: String) -> ConfigProblem {
        let advice = "; check the indentation and the quoting on this line and the one before it"
        guard let error = error as? YamlError else {
            return ConfigProblem(path: "", message: "the file is not valid YAML: \(error)")
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _):
            let during = context.map { " (\($0.text), which started at line \($0.mark.line))" } ?? ""
            return ConfigProblem(
                line: mark.line, column: mark.column, path: "",
                message: "YAML syntax error: \(problem)\(during)\(advice)"
            )
        case let .composer(_, problem, mark, _) where problem.contains("another document"):
            return ConfigProblem(
                line: mark.line, column: mark.column, path: "",
                message: "the file holds more than one YAML document; keep everything in one (remove this ---)"
            )
        case let .composer(_, problem, mark, _):
            return ConfigProblem(line: mark.line, column: mark.column, path: "", message: "YAML error: \(problem)")
        case let .reader(problem, offset, _, _):
            let line = offset.map { offset in yaml.prefix(offset).reduce(1) { $1 == "\n" ? $0 + 1 : $0 } }
            return ConfigProblem(line: line, path: "", message: "the file cannot be read as YAML text: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return ConfigProblem(
                line: context.mark.line, column: context.mark.column, path: "",
                message: "the key \(keys) appears here and again later in the same mapping; keep only one"
            )
        default:
            return ConfigProblem(path: "", message: "the file is not valid YAML: \(error)")
        }
    }
}

/// Everything wrong with a config file.
///
/// `description` prints one problem per line: `FILE:LINE:COLUMN: path: message`.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file name given to the loader.
    public var fileName: String
    /// The problems, sorted by line (problems without a line come first).
    public var problems: [ConfigProblem]

    /// Creates an error; the problems are sorted by line, keeping their order within a line.
    public init(fileName: String, problems: [ConfigProblem]) {
        self.fileName = fileName
        self.problems = problems.enumerated().sorted { lhs, rhs in
            let left = (lhs.element.line ?? 0, lhs.element.column ?? 0, lhs.offset)
            let right = (rhs.element.line ?? 0, rhs.element.column ?? 0, rhs.offset)
            return left < right
        }.map(\.element)
    }

    /// One `FILE:LINE:COLUMN: path: message` line per problem.
    public var description: String {
        problems.map { $0.rendered(fileName: fileName) }.joined(separator: "\n")
    }
}

/// One thing wrong with a config file, where it is, and what to write instead.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    /// The 1-based line, when the problem has a place in the file.
    public var line: Int?
    /// The 1-based column (in Unicode scalars), when known.
    public var column: Int?
    /// The key path, such as `ingest.commit_max_events` or `meters[2].aggregation` (0-based
    /// indexes); empty for problems with the file as a whole.
    public var path: String
    /// What is wrong and what to write instead.
    public var message: String

    /// Creates a problem.
    public init(line: Int? = nil, column: Int? = nil, path: String, message: String) {
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `LINE:COLUMN: path: message`.
    public var description: String {
        rendered(fileName: nil)
    }

    func rendered(fileName: String?) -> String {
        var place = [String]()
        if let fileName { place.append(fileName) }
        if let line { place.append(String(line)) }
        if line != nil, let column { place.append(String(column)) }
        var text = place.joined(separator: ":")
        if !text.isEmpty { text += ": " }
        if !path.isEmpty { text += "\(path): " }
        return text + message
    }
}

// MARK: - The reader

/// Walks the YAML tree once, collecting every problem instead of stopping at the first.
/// Plans, prices and customers are read in `PriceReader.swift`; limits, alerts and http in
/// `LimitsReader.swift`.
final class ConfigReader {
    var problems: [ConfigProblem] = []

    private static let topLevelKeys = [
        "store", "ingest", "billing", "meters", "plans", "default_plan", "customers", "limits", "alerts", "http",
        "archive",
    ] + ConfigLoader.ignoredSectionNames
    private static let storeKeys = ["path", "max_size"]
    private static let ingestKeys = [
        "socket", "socket_mode", "commit_max_events", "commit_max_delay", "dedup_window", "max_future_skew",
        "max_line_bytes",
    ]
    private static let billingKeys = ["period", "anchor", "rounding"]
    private static let archiveKeys = ["interval"]
    private static let meterKeys = ["code", "aggregation", "property", "filter", "group_by"]
    /// The longest socket path a `sockaddr_un` holds on Linux (108 bytes with the terminating NUL).
    private static let maximumSocketPathBytes = 107

    func readConfig(_ root: Node?) -> TallyConfig? {
        var store = StoreSettings()
        var ingest = IngestSettings()
        var billing = BillingSettings()
        var meters: [Meter]?
        var ignored = [String]()
        var pricing = PricingSections()
        var limitsSection: (node: Node, path: String)?
        var alerts = AlertSettings()
        var http = HTTPSettings()
        var archive = ArchiveSettings()

        guard let root, !isNull(root) else {
            report(nil, "meters", "the config file is empty; it needs at least a meters: list, \(Self.meterExample)")
            return nil
        }
        guard case .mapping = root else {
            report(root, "", "the config file must be a mapping of sections (store:, ingest:, billing:, meters: …), "
                + "found \(describe(root))")
            return nil
        }
        forEachEntry(of: root, path: "", known: Self.topLevelKeys) { key, value, path in
            switch key {
            case "store": store = readStore(value, path: path)
            case "ingest": ingest = readIngest(value, path: path)
            case "billing": billing = readBilling(value, path: path)
            case "meters":
                meters = readMeters(value, path: path)
                pricing.declaredMeterCodes = declaredCodes(value)
            case "plans": pricing.plans = (value, path)
            case "default_plan": pricing.defaultPlan = (value, path)
            case "customers": pricing.customers = (value, path)
            case "limits": limitsSection = (value, path)
            case "alerts": alerts = readAlerts(value, path: path)
            case "http": http = readHTTP(value, path: path)
            case "archive": archive = readArchive(value, path: path)
            default: ignored.append(key)
            }
        }
        if meters == nil {
            report(nil, "meters", "the config defines no meters; add a meters: list, \(Self.meterExample)")
        }
        // Plans are read after the meters, wherever they stand in the file: prices name meters.
        let priced = readPricing(pricing, meters: meters ?? [])
        // Limits are read after the plans, wherever they stand in the file: they name plans and meters.
        var limits = [UsageLimit]()
        if let (node, path) = limitsSection {
            let context = LimitContext(
                meterCodes: (meters ?? []).map(\.code), declaredMeterCodes: pricing.declaredMeterCodes,
                declaredPlanCodes: writtenCodes(pricing.plans?.node))
            limits = readLimits(node, path: path, context: context)
        }
        return TallyConfig(
            store: store, ingest: ingest, billing: billing, meters: meters ?? [],
            plans: priced.plans, defaultPlan: priced.defaultPlan, customers: priced.customers,
            limits: limits, alerts: alerts, http: http, archive: archive, ignoredSections: ignored)
    }

    // MARK: Sections

    private func readStore(_ node: Node, path: String) -> StoreSettings {
        var settings = StoreSettings()
        guard sectionIsMapping(node, path: path, example: "store: { path: data }") else { return settings }
        forEachEntry(of: node, path: path, known: Self.storeKeys) { key, value, path in
            if key == "max_size" {
                guard let text = nonEmptyText(value, path: path, example: "max_size: 64GiB") else { return }
                if let bytes = ConfigLoader.byteSize(text), bytes >= 1 << 20 {
                    settings.maxSizeBytes = bytes
                } else {
                    report(value, path, "\"\(text)\" is not a size of at least 1MiB; write a whole number of "
                        + "bytes or one with a unit (KiB, MiB, GiB, TiB), e.g. max_size: 64GiB")
                }
            } else if let text = nonEmptyText(value, path: path, example: "path: data") {
                settings.path = text
            }
        }
        return settings
    }

    private func readIngest(_ node: Node, path: String) -> IngestSettings {
        var settings = IngestSettings()
        guard sectionIsMapping(node, path: path, example: "ingest: { commit_max_events: 8192 }") else { return settings }
        let second: Int64 = 1_000_000_000
        forEachEntry(of: node, path: path, known: Self.ingestKeys) { key, value, path in
            switch key {
            case "socket":
                guard let text = nonEmptyText(value, path: path, example: "socket: tally.sock") else { return }
                if text.utf8.count > Self.maximumSocketPathBytes {
                    report(value, path, "the socket path is \(text.utf8.count) bytes long; Unix socket paths "
                        + "hold at most \(Self.maximumSocketPathBytes) bytes: use a shorter path")
                } else {
                    settings.socket = text
                }
            case "socket_mode":
                if let mode = socketMode(value, path: path) { settings.socketMode = mode }
            case "commit_max_events":
                if let number = wholeNumber(value, path: path, range: 1...1_000_000, unit: "events", default: "8192") {
                    settings.commitMaxEvents = number
                }
            case "commit_max_delay":
                if let duration = duration(value, path: path, range: 0...second, default: "2ms") {
                    settings.commitMaxDelayNanoseconds = duration
                }
            case "dedup_window":
                if let duration = duration(value, path: path, range: 3_600 * second...Int64.max, default: "35d") {
                    settings.dedupWindowNanoseconds = duration
                }
            case "max_future_skew":
                if let duration = duration(value, path: path, range: 0...Int64.max, default: "5m") {
                    settings.maxFutureSkewNanoseconds = duration
                }
            default: // max_line_bytes
                if let number = wholeNumber(value, path: path, range: 1_024...16_777_216, unit: "bytes", default: "65536") {
                    settings.maxLineBytes = number
                }
            }
        }
        return settings
    }

    private func readArchive(_ node: Node, path: String) -> ArchiveSettings {
        var settings = ArchiveSettings()
        guard sectionIsMapping(node, path: path, example: "archive: { interval: 1h }") else { return settings }
        forEachEntry(of: node, path: path, known: Self.archiveKeys) { _, value, path in
            if let duration = duration(value, path: path, range: 0...Int64.max, default: "1h") {
                settings.intervalNanoseconds = duration
            }
        }
        return settings
    }

    private func readBilling(_ node: Node, path: String) -> BillingSettings {
        var settings = BillingSettings()
        guard sectionIsMapping(node, path: path, example: "billing: { period: monthly }") else { return settings }
        var anchor: (value: BillingPeriod.Anchor, node: Node, path: String)?
        forEachEntry(of: node, path: path, known: Self.billingKeys) { key, value, path in
            switch key {
            case "period":
                let names = BillingPeriod.Kind.allCases.map(\.rawValue)
                if let name = choice(value, path: path, from: names, what: "billing period"),
                    let kind = BillingPeriod.Kind(rawValue: name)
                {
                    settings.period.kind = kind
                }
            case "anchor":
                guard let text = nonEmptyText(value, path: path, example: "anchor: 2026-01-15") else { return }
                if let date = BillingPeriod.Anchor(text) {
                    anchor = (date, value, path)
                } else {
                    report(value, path, "\"\(text)\" is not a valid date; write the date periods start from as "
                        + "YYYY-MM-DD, e.g. anchor: 2026-01-15")
                }
            default: // rounding
                let names = RoundingMode.allCases.map(\.rawValue)
                if let name = choice(value, path: path, from: names, what: "rounding mode"),
                    let mode = RoundingMode(rawValue: name)
                {
                    settings.rounding = mode
                }
            }
        }
        if let anchor {
            if settings.period.kind == .daily {
                report(anchor.node, anchor.path, "daily periods always start at midnight UTC and take no anchor; "
                    + "remove anchor, or use period: weekly, monthly or yearly")
            } else {
                settings.period.anchor = anchor.value
            }
        }
        return settings
    }

    private static let meterExample = "e.g. meters: [{ code: api_calls, aggregation: count }]"

    private func readMeters(_ node: Node, path: String) -> [Meter] {
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

    // MARK: Values

    private func socketMode(_ node: Node, path: String) -> UInt32? {
        let advice = "write the permission bits as a quoted octal string, e.g. socket_mode: \"0660\""
        guard let text = nonEmptyText(node, path: path, example: "socket_mode: \"0660\"") else { return nil }
        let octal = text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }
        guard octal, text.utf8.count == 4, text.hasPrefix("0"), let mode = UInt32(text, radix: 8) else {
            let hint = octal && text.utf8.count == 3 ? " (\"0\(text)\" if \(text) is meant as octal)" : ""
            report(node, path, "\"\(text)\" is not an octal file mode; \(advice)\(hint)")
            return nil
        }
        return mode
    }

    private func wholeNumber(_ node: Node, path: String, range: ClosedRange<Int>, unit: String, default: String) -> Int? {
        let bounds = "between \(range.lowerBound) and \(range.upperBound) \(unit)"
        guard let text = scalarText(node, path: path, expected: "a whole number \(bounds)", example: `default`) else {
            return nil
        }
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        let isWhole = !digits.isEmpty && digits.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard isWhole, let number = Int(text), range.contains(number) else {
            let what = isWhole ? "out of range" : "not a whole number"
            report(node, path, "\(text) is \(what); write a whole number \(bounds) (the default is \(`default`))")
            return nil
        }
        return number
    }

    private func duration(_ node: Node, path: String, range: ClosedRange<Int64>, default: String) -> Int64? {
        let bounds = range.upperBound == Int64.max
            ? "of at least \(DurationText.format(nanoseconds: range.lowerBound))"
            : "from \(DurationText.format(nanoseconds: range.lowerBound)) to \(DurationText.format(nanoseconds: range.upperBound))"
        guard let text = scalarText(node, path: path, expected: "a duration \(bounds)", example: `default`) else {
            return nil
        }
        let nanoseconds: Int64
        do {
            nanoseconds = try DurationText.parse(text)
        } catch {
            report(node, path, error.message)
            return nil
        }
        guard range.contains(nanoseconds) else {
            report(node, path, "\(text) is out of range; write a duration \(bounds) (the default is \(`default`))")
            return nil
        }
        return nanoseconds
    }

    func choice(_ node: Node, path: String, from names: [String], what: String) -> String? {
        let options = names.joined(separator: ", ")
        guard let text = scalarText(node, path: path, expected: "one of \(options)", example: names[0]) else {
            return nil
        }
        guard names.contains(text) else {
            let guess = closest(to: text, among: names).map { "did you mean \"\($0)\"? " } ?? ""
            report(node, path, "\"\(text)\" is not a known \(what); \(guess)use one of \(options)")
            return nil
        }
        return text
    }

    func nonEmptyText(_ node: Node, path: String, example: String) -> String? {
        guard let text = scalarText(node, path: path, expected: "a single value", example: example) else { return nil }
        guard !text.isEmpty else {
            report(node, path, "the value is empty; write one, e.g. \(example)")
            return nil
        }
        return text
    }

    /// The text of a scalar, or a problem saying what was expected instead of a list, a mapping or nothing.
    func scalarText(_ node: Node, path: String, expected: String, example: String) -> String? {
        if isNull(node) {
            report(node, path, "this key has no value; write \(expected), e.g. \(example), or remove the key "
                + "to use the default")
            return nil
        }
        guard let scalar = node.scalar else {
            report(node, path, "expected \(expected), e.g. \(example); found \(describe(node))")
            return nil
        }
        return scalar.string
    }

    // MARK: Structure

    func sectionIsMapping(_ node: Node, path: String, example: String) -> Bool {
        if isNull(node) { return false }  // An empty section means: all defaults.
        guard case .mapping = node else {
            report(node, path, "\(path) must be a mapping of settings, e.g. \(example); found \(describe(node))")
            return false
        }
        return true
    }

    /// Visits each entry of a mapping with a known key; reports keys that are unknown or not names.
    func forEachEntry(of node: Node, path: String, known: [String], _ visit: (String, Node, String) -> Void) {
        guard let mapping = node.mapping else { return }
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string, !isNull(keyNode) else {
                report(keyNode, path, "keys must be plain names; found \(describe(keyNode))")
                continue
            }
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            guard known.contains(key) else {
                let guess = closest(to: key, among: known).map { "did you mean \"\($0)\"?" }
                    ?? "the keys allowed \(path.isEmpty ? "at the top level" : "in \(path)") are \(known.joined(separator: ", "))"
                report(keyNode, keyPath, "unknown key \"\(key)\"; \(guess)")
                continue
            }
            visit(key, value, keyPath)
        }
    }

    func report(_ node: Node?, _ path: String, _ message: String) {
        let mark = node?.mark
        problems.append(ConfigProblem(line: mark?.line, column: mark?.column, path: path, message: message))
    }
}

// MARK: - Helpers

func isNull(_ node: Node) -> Bool {
    guard let scalar = node.scalar, scalar.style == .plain else { return false }
    return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
}

func describe(_ node: Node) -> String {
    switch node {
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case let .scalar(scalar): return isNull(node) ? "no value" : "\"\(scalar.string)\""
    case .alias: return "an alias"
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

/// The candidate within a small edit distance of `text` (typos, a missing letter, swapped letters).
func closest(to text: String, among candidates: [String]) -> String? {
    let limit = min(3, max(1, text.count / 3))
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(text.lowercased(), candidate)
        if distance <= limit, distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
    }
    return best?.name
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
private func editDistance(_ lhs: String, _ rhs: String) -> Int {
    let a = Array(lhs.unicodeScalars), b = Array(rhs.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { table[i][0] = i }
    for j in 0...b.count { table[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
            }
        }
    }
    return table[a.count][b.count]
}

extension ConfigLoader {
    /// Parses `64GiB`, `512MiB`, `1048576`: bytes, or a whole number with a binary unit.
    static func byteSize(_ text: String) -> Int? {
        let units: [(String, Int)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        for (suffix, multiplier) in units where text.hasSuffix(suffix) {
            guard let number = Int(text.dropLast(suffix.count)), number >= 0 else { return nil }
            let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
            return overflow ? nil : bytes
        }
        return Int(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}
