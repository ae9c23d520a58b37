import Yams
import Metering

// MARK: - The reader

/// Walks the YAML tree once, collecting every problem instead of stopping at the first.
/// Plans, prices and customers are read in `PriceReader.swift`; limits, alerts and http in
/// `LimitsReader.swift`.
final class ConfigReader {
    var problems: [ConfigProblem] = []

    private static let topLevelKeys = [
        "store", "ingest", "billing", "meters", "plans", "default_plan", "customers", "limits", "alerts", "http",
        "archive", "cluster",
    ] + ConfigLoader.ignoredSectionNames
    private static let storeKeys = ["path", "max_size"]
    private static let ingestKeys = [
        "socket", "socket_mode", "commit_max_events", "commit_max_delay", "dedup_window", "max_future_skew",
        "max_line_bytes", "listen_backlog", "max_buffered_bytes",
    ]
    private static let billingKeys = ["period", "anchor", "rounding"]
    private static let archiveKeys = ["interval"]
    static let meterKeys = ["code", "aggregation", "property", "filter", "group_by"]
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
        var cluster: ClusterSettings?
        var clusterOnlyProblems: [(Node, String, String)] = []

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
            case "limits":
                limitsSection = (value, path)
            case "alerts":
                alerts = readAlerts(value, path: path)
                if let log = value["log"] {
                    clusterOnlyProblems.append((log, "\(path).log", "the alert log is a file on one node, and a cluster's alerts are delivered by each partition's owner: in cluster mode alerts go to alerts.webhooks only (receivers deduplicate by Tally-Alert-Id); remove alerts.log or run single-node"))
                }
            case "http":
                http = readHTTP(value, path: path)
                clusterOnlyProblems.append((value, path, "the HTTP API and the dashboard are not served in cluster mode yet: remove http: or run single-node (a cluster node serves the ingest socket, and /metrics on cluster.metrics_listen)"))
            case "archive":
                archive = readArchive(value, path: path)
                clusterOnlyProblems.append((value, path, "the archive does not run in cluster mode yet (the replicated log keeps the events): remove archive: or run single-node"))
            case "cluster": cluster = readCluster(value, path: path)
            default: ignored.append(key)
            }
        }
        if cluster != nil {
            for (node, path, message) in clusterOnlyProblems { report(node, path, message) }
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
            limits: limits, alerts: alerts, http: http, archive: archive, cluster: cluster, ignoredSections: ignored)
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
            case "listen_backlog":
                if let number = wholeNumber(value, path: path, range: 1...1_048_576, unit: "connections",
                                            default: String(IngestSettings.defaultListenBacklog)) {
                    settings.listenBacklog = number
                }
            case "max_buffered_bytes":
                guard let text = scalarText(value, path: path, expected: "a size from 1MiB to 1TiB", example: "256MiB") else { return }
                if let bytes = ConfigLoader.byteSize(text), ((1 << 20)...(1 << 40)).contains(bytes) {
                    settings.maxBufferedBytes = bytes
                } else {
                    report(value, path, "\"\(text)\" is not a size from 1MiB to 1TiB; write a whole number of bytes "
                        + "or one with a unit (KiB, MiB, GiB, TiB), e.g. max_buffered_bytes: 256MiB (the default)")
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

    func wholeNumber(_ node: Node, path: String, range: ClosedRange<Int>, unit: String, default: String) -> Int? {
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

    func duration(_ node: Node, path: String, range: ClosedRange<Int64>, default: String) -> Int64? {
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

// MARK: - YAML nodes

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
// MARK: - Decimals

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
