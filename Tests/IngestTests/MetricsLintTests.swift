import Foundation
import Testing

/// `GET /metrics` of the real daemon lints (issue 12): `# HELP` and `# TYPE` on every family, and
/// every family there from the start, also with the archive schedule off. `make test` also runs
/// `promtool check metrics` on it (scripts/metrics-check.sh).
@Suite("Metrics lint through the daemon")
struct MetricsLintTests {
    static let key = "metrics-lint-key"
    /// `printf %s metrics-lint-key | sha256sum`.
    static let digest = "b76b699283a59a0f5323567c3281a4e5890891edc6cacf0149d2fb4fc23f7f8e"

    @Test("/metrics: every family has HELP and TYPE, and every family is there from the start (archive off)")
    func metricsLint() throws {
        let daemon = try DaemonHarness(config: DaemonHarness.defaultConfig + """

            archive:
              interval: 0
            http:
              api_keys_sha256: ["\(Self.digest)"]
            """)
        let port = try freePort()
        try daemon.start(extraArguments: ["--http", "127.0.0.1:\(port)"])
        #expect(daemon.waitForHTTP(port: port) == 200)
        let atStart = try httpRequest(port: port, method: "GET", path: "/metrics", key: Self.key).body
        let families = try MetricsText.lint(atStart)
        for family in [
            "tally_events_total", "tally_group_commit_events", "tally_group_commit_duration", "tally_alerts_fired_total",
            "tally_maintenance_step_duration", "tally_archived_events_total", "tally_expired_identities_total",
            "tally_archive_failures_total", "tally_alert_deliveries_total", "tally_store_identities", "tally_store_events",
            "tally_store_aggregates", "tally_store_map_size_bytes", "tally_http_events_total", "tally_http_requests_total",
            "tally_http_request_duration_seconds", "tally_ingest_buffered_bytes", "tally_ingest_read_pauses_total",
        ] {
            #expect(families[family] != nil, "\(family) is missing at start:\n\(atStart)")
        }
        #expect(try daemon.exchange(eventLine(id: "m1") + "\n" + eventLine(id: "m2", meter: "nope") + "\n").count == 2)
        let after = try httpRequest(port: port, method: "GET", path: "/metrics", key: Self.key).body
        #expect(try MetricsText.lint(after).count >= families.count)
        #expect(after.contains(#"tally_events_total{result="accepted"} 1"#))
        #expect(daemon.terminate() == 0)
    }
}

/// The Prometheus text format, as far as the lint needs it.
enum MetricsText {
    /// Checks that every sample belongs to a family with a `# HELP` (non-empty) and a `# TYPE`
    /// line, and that every HELP has a TYPE; returns the families with their types.
    static func lint(_ text: String) throws -> [String: String] {
        var help: [String: String] = [:]
        var types: [String: String] = [:]
        var samples: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# HELP ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1)
                help[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                guard parts.count == 2 else { throw HarnessError("malformed TYPE line: \(line)") }
                types[String(parts[0])] = String(parts[1])
            } else if line.hasPrefix("#") {
                continue
            } else {
                samples.append(String(line.prefix { $0 != "{" && $0 != " " }))
            }
        }
        var problems: [String] = []
        for (family, _) in types where (help[family] ?? "").isEmpty { problems.append("\(family) has no HELP") }
        for (family, _) in help where types[family] == nil { problems.append("\(family) has HELP but no TYPE") }
        for sample in Set(samples) {
            let family = types[sample] != nil ? sample : ["_bucket", "_sum", "_count"].lazy
                .compactMap { sample.hasSuffix($0) ? String(sample.dropLast($0.count)) : nil }
                .first { ["histogram", "summary"].contains(types[$0]) }
            if family == nil { problems.append("sample \(sample) belongs to no family with a TYPE") }
        }
        guard problems.isEmpty else { throw HarnessError(problems.sorted().joined(separator: "\n") + "\n" + text) }
        return types
    }
}
