import Foundation
import TallyConfiguration
import Metering
import Testing

/// The example config of DESIGN.md §11, verbatim but for its placeholder key digest (not valid hex),
/// replaced by the SHA-256 of `test-key`.
private let designExample = """
store:
  path: data
ingest:
  socket: tally.sock
  socket_mode: "0660"
  commit_max_events: 8192      # a group commit closes at this many events...
  commit_max_delay: 2ms        # ...or this long after its first event
  dedup_window: 35d
  max_future_skew: 5m
  max_line_bytes: 65536
billing:
  period: monthly              # daily | weekly | monthly | yearly, UTC
  rounding: half_away_from_zero
meters:
  - { code: api_calls, aggregation: count }
  - { code: storage_gb, aggregation: max }
  - { code: tokens, aggregation: sum, group_by: [model], filter: { billable: "true" } }
  - { code: active_users, aggregation: unique_count, property: user_id }
plans:
  - code: starter
    currency: USD
    prices:
      - meter: api_calls
        model: graduated
        tiers:
          - { up_to: 1000, unit_amount: "0" }
          - { up_to: 100000, unit_amount: "0.002" }
          - { up_to: inf, unit_amount: "0.001", flat_amount: "5" }
      - { meter: storage_gb, model: per_unit, unit_amount: "0.10", free_units: 5 }
      - meter: tokens
        model: package
        package_size: 1000
        package_amount: "0.02"
        dimensions: { model: { large: { package_amount: "0.06" } } }
default_plan: starter
customers:
  - { id: cus_42, plan: starter }
limits:
  - { plan: starter, amount: "100", action: warning, notify_at: [50, 80, 100] }
  - { customer: cus_42, meter: api_calls, quantity: 1000000, action: disable }
alerts:
  log: alerts.ndjson
  webhooks:
    - { url: "http://127.0.0.1:9000/hooks/tally", secret_env: TALLY_WEBHOOK_SECRET }
http:
  listen: 127.0.0.1:8080
  api_keys_sha256: ["<hex sha256 of a key>"]
""".replacingOccurrences(
    of: "<hex sha256 of a key>", with: "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef")

/// Parses `yaml` expecting failure and returns the problems.
private func problems(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigProblem] {
    do {
        let config = try ConfigLoader.parse(yaml: yaml, fileName: "tally.yaml")
        Issue.record("expected problems, but the config loaded: \(config)", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.problems
    }
}

/// The only problem `yaml` has; records an issue if there is not exactly one.
private func onlyProblem(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigProblem? {
    let found = problems(yaml, sourceLocation: sourceLocation)
    #expect(found.count == 1, "expected one problem, got \(found)", sourceLocation: sourceLocation)
    return found.first
}

/// A config that is valid apart from the `ingest:` lines given (which start at line 2).
private func ingestConfig(_ lines: String) -> String {
    "ingest:\n" + lines + "\nmeters: [{ code: api_calls, aggregation: count }]\n"
}

private func load(_ yaml: String) throws -> TallyConfig {
    try ConfigLoader.parse(yaml: yaml, fileName: "tally.yaml")
}

@Suite struct ConfigExampleTests {
    @Test func theDesignExampleLoads() throws {
        let config = try load(designExample)
        #expect(config.store.path == "data")
        #expect(config.ingest == IngestSettings(
            socket: "tally.sock",
            socketMode: 0o660,
            commitMaxEvents: 8192,
            commitMaxDelayNanoseconds: 2_000_000,
            dedupWindowNanoseconds: 35 * 24 * 3600 * 1_000_000_000,
            maxFutureSkewNanoseconds: 5 * 60 * 1_000_000_000,
            maxLineBytes: 65_536
        ))
        #expect(config.billing.period == .monthly)
        #expect(config.billing.period.anchor == nil)
        #expect(config.billing.rounding == .halfAwayFromZero)
        #expect(config.meters == [
            Meter(code: "api_calls", aggregation: .count),
            Meter(code: "storage_gb", aggregation: .max),
            Meter(code: "tokens", aggregation: .sum, filter: ["billable": "true"], groupBy: ["model"]),
            Meter(code: "active_users", aggregation: .uniqueCount, property: "user_id"),
        ])
        #expect(config.ignoredSections.isEmpty)
        #expect(config.plans.map(\.code) == ["starter"])
        #expect(config.defaultPlan == "starter")
        #expect(config.customers == [CustomerPlanAssignment(customer: "cus_42", plan: "starter")])
    }

    @Test func metersAreFoundByCode() throws {
        let config = try load(designExample)
        #expect(config.meter("tokens")?.groupBy == ["model"])
        #expect(config.meter("active_users")?.property == "user_id")
        #expect(config.meter("nope") == nil)
    }

    @Test func loadReadsAFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tally-config-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: url) }
        try designExample.write(to: url, atomically: true, encoding: .utf8)
        #expect(try ConfigLoader.load(path: url.path) == load(designExample))
    }

    @Test func aMissingFileSaysWhatToDo() {
        let path = "/nonexistent/tally-\(UUID().uuidString).yaml"
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.load(path: path) }
        #expect(error?.problems.count == 1)
        #expect(error?.problems.first?.line == nil)
        #expect(error?.problems.first?.message.contains(path) == true)
        #expect(error?.problems.first?.message.contains("--config") == true)
        #expect(error?.description.hasPrefix("\(path): no config file at \(path)") == true)
    }

    @Test func aDirectoryIsNotAConfigFile() {
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.load(path: NSTemporaryDirectory()) }
        #expect(error?.problems.first?.message.contains("is a directory") == true)
    }

    @Test func aFileThatIsNotUTF8IsRefused() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tally-config-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data([0x6D, 0x65, 0xFF, 0xFE, 0x0A]).write(to: url)
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.load(path: url.path) }
        #expect(error?.problems.first?.message.contains("UTF-8") == true)
    }
}

@Suite struct ConfigDefaultTests {
    @Test func onlyMetersGivesAllDefaults() throws {
        let config = try load("meters: [{ code: api_calls, aggregation: count }]\n")
        #expect(config.store.path == "data")
        #expect(config.ingest.socket == "tally.sock")
        #expect(config.ingest.socketMode == 0o660)
        #expect(config.ingest.commitMaxEvents == 8192)
        #expect(config.ingest.commitMaxDelayNanoseconds == 2_000_000)
        #expect(config.ingest.dedupWindowNanoseconds == 3_024_000_000_000_000)
        #expect(config.ingest.maxFutureSkewNanoseconds == 300_000_000_000)
        #expect(config.ingest.maxLineBytes == 65_536)
        #expect(config.billing == BillingSettings(period: BillingPeriod(kind: .monthly), rounding: .halfAwayFromZero))
        #expect(config.ignoredSections.isEmpty)
        #expect(config.meters == [Meter(code: "api_calls", aggregation: .count, property: nil, filter: [:], groupBy: [])])
        #expect(config.archive.intervalNanoseconds == 3_600_000_000_000)
    }

    @Test func archiveIntervalIsReadAndChecked() throws {
        let meters = "meters: [{ code: api_calls, aggregation: count }]\n"
        #expect(try load("archive: { interval: 10m }\n" + meters).archive.intervalNanoseconds == 600_000_000_000)
        #expect(try load("archive: { interval: 0 }\n" + meters).archive.intervalNanoseconds == 0)
        let wrong = onlyProblem("archive: { interval: soon }\n" + meters)
        #expect(wrong?.path == "archive.interval")
        let unknown = onlyProblem("archive: { every: 1h }\n" + meters)
        #expect(unknown?.path == "archive.every")
    }

    @Test func missingKeysKeepTheirDefaults() throws {
        let config = try load("""
            ingest:
              commit_max_events: 100
            billing:
              rounding: half_even
            meters: [{ code: api_calls, aggregation: count }]
            """)
        var expected = IngestSettings()
        expected.commitMaxEvents = 100
        #expect(config.ingest == expected)
        #expect(config.billing.rounding == .halfEven)
        #expect(config.billing.period == .monthly)
    }

    @Test func emptySectionsMeanDefaults() throws {
        let config = try load("""
            store:
            ingest:
            billing:
            meters: [{ code: api_calls, aggregation: count }]
            """)
        #expect(config.store == StoreSettings())
        #expect(config.ingest == IngestSettings())
        #expect(config.billing == BillingSettings())
    }

    @Test func everySettingIsRead() throws {
        let config = try load("""
            store: { path: /var/lib/tally }
            ingest:
              socket: /run/tally/ingest.sock
              socket_mode: 0600
              commit_max_events: 1000000
              commit_max_delay: 1s
              dedup_window: 1h
              max_future_skew: 0
              max_line_bytes: 1024
            billing:
              period: weekly
              anchor: 2026-11-18
              rounding: half_even
            meters:
              - code: seats
                aggregation: latest
              - code: gb
                aggregation: min
                filter: { tier: 2, beta: true }
                group_by: [region, zone]
            """)
        #expect(config.store.path == "/var/lib/tally")
        #expect(config.ingest == IngestSettings(
            socket: "/run/tally/ingest.sock", socketMode: 0o600, commitMaxEvents: 1_000_000,
            commitMaxDelayNanoseconds: 1_000_000_000, dedupWindowNanoseconds: 3_600_000_000_000,
            maxFutureSkewNanoseconds: 0, maxLineBytes: 1024
        ))
        #expect(config.billing.period == BillingPeriod(kind: .weekly, anchor: BillingPeriod.Anchor(year: 2026, month: 11, day: 18)))
        #expect(config.billing.rounding == .halfEven)
        #expect(config.meters[1] == Meter(code: "gb", aggregation: .min, filter: ["tier": "2", "beta": "true"], groupBy: ["region", "zone"]))
    }

    @Test func rangeLimitsAreInclusive() throws {
        let low = try load(ingestConfig("  commit_max_events: 1\n  commit_max_delay: 0ms\n  max_line_bytes: 1024\n  dedup_window: 60m"))
        #expect(low.ingest.commitMaxEvents == 1)
        #expect(low.ingest.commitMaxDelayNanoseconds == 0)
        #expect(low.ingest.maxLineBytes == 1024)
        #expect(low.ingest.dedupWindowNanoseconds == 3_600_000_000_000)
        let high = try load(ingestConfig("  commit_max_events: 1000000\n  commit_max_delay: 1000ms\n  max_line_bytes: 16777216"))
        #expect(high.ingest.commitMaxEvents == 1_000_000)
        #expect(high.ingest.commitMaxDelayNanoseconds == 1_000_000_000)
        #expect(high.ingest.maxLineBytes == 16_777_216)
    }

    @Test func limitsAlertsAndHTTPAreValidated() throws {
        let found = problems("""
            meters: [{ code: api_calls, aggregation: count }]
            http: 42
            limits: [{ anything: [goes, here], nested: { deeply: true } }]
            """)
        #expect(found.map(\.line) == [2, 3, 3, 3, 3, 3])
        #expect(found.map(\.path) == ["http", "limits[0]", "limits[0]", "limits[0]", "limits[0].anything", "limits[0].nested"])
        #expect(found.first?.message == "http must be a mapping of settings, e.g. http: { listen: 127.0.0.1:8080 }; found \"42\"")
        #expect(ConfigLoader.ignoredSectionNames.isEmpty)
    }

    @Test func anchoredPeriodsAreRead() throws {
        let config = try load("billing: { period: yearly, anchor: 2024-02-29 }\nmeters: [{ code: a, aggregation: sum }]")
        #expect(config.billing.period.kind == .yearly)
        #expect(config.billing.period.anchor?.description == "2024-02-29")
    }
}

@Suite struct ConfigUnknownKeyTests {
    @Test func aNearMissSuggestsTheKey() throws {
        let problem = try #require(onlyProblem(ingestConfig("  commit_max_events: 10\n  commit_max_event: 10")))
        #expect(problem.line == 3)
        #expect(problem.column == 3)
        #expect(problem.path == "ingest.commit_max_event")
        #expect(problem.message == #"unknown key "commit_max_event"; did you mean "commit_max_events"?"#)
    }

    @Test func swappedLettersAreANearMiss() throws {
        let problem = try #require(onlyProblem("billing:\n  peroid: monthly\nmeters: [{ code: a, aggregation: sum }]"))
        #expect(problem.line == 2)
        #expect(problem.message.contains(#"did you mean "period"?"#))
    }

    @Test func aFarMissListsTheAllowedKeys() throws {
        let problem = try #require(onlyProblem("store:\n  colour: blue\nmeters: [{ code: a, aggregation: sum }]"))
        #expect(problem.line == 2)
        #expect(problem.path == "store.colour")
        #expect(problem.message == #"unknown key "colour"; the keys allowed in store are path, max_size"#)
    }

    @Test func unknownTopLevelSection() throws {
        let problem = try #require(onlyProblem("meters: [{ code: a, aggregation: sum }]\n\nmetres: {}\n"))
        #expect(problem.line == 3)
        #expect(problem.path == "metres")
        #expect(problem.message.contains(#"did you mean "meters"?"#))
    }

    @Test func unknownMeterKey() throws {
        let problem = try #require(onlyProblem("""
            meters:
              - code: a
                aggregation: sum
                groupby: [region]
            """))
        #expect(problem.line == 4)
        #expect(problem.path == "meters[0].groupby")
        #expect(problem.message.contains(#"did you mean "group_by"?"#))
    }
}

@Suite struct ConfigValueTests {
    @Test(arguments: [
        ("  commit_max_events: 0", "0 is out of range; write a whole number between 1 and 1000000 events (the default is 8192)"),
        ("  commit_max_events: 1000001", "1000001 is out of range; write a whole number between 1 and 1000000 events (the default is 8192)"),
        ("  commit_max_events: -3", "-3 is out of range; write a whole number between 1 and 1000000 events (the default is 8192)"),
        ("  commit_max_events: many", "many is not a whole number; write a whole number between 1 and 1000000 events (the default is 8192)"),
        ("  commit_max_events: 8192.5", "8192.5 is not a whole number; write a whole number between 1 and 1000000 events (the default is 8192)"),
        ("  commit_max_events: [8192]", "expected a whole number between 1 and 1000000 events, e.g. 8192; found a list"),
        ("  commit_max_events:", "this key has no value; write a whole number between 1 and 1000000 events, e.g. 8192, or remove the key to use the default"),
        ("  max_line_bytes: 1023", "1023 is out of range; write a whole number between 1024 and 16777216 bytes (the default is 65536)"),
        ("  max_line_bytes: 16777217", "16777217 is out of range; write a whole number between 1024 and 16777216 bytes (the default is 65536)"),
        ("  max_line_bytes: 64KiB", "64KiB is not a whole number; write a whole number between 1024 and 16777216 bytes (the default is 65536)"),
        ("  listen_backlog: 0", "0 is out of range; write a whole number between 1 and 1048576 connections (the default is 4096)"),
        ("  listen_backlog: -1", "-1 is out of range; write a whole number between 1 and 1048576 connections (the default is 4096)"),
        ("  listen_backlog: 1048577", "1048577 is out of range; write a whole number between 1 and 1048576 connections (the default is 4096)"),
        ("  listen_backlog: 4k", "4k is not a whole number; write a whole number between 1 and 1048576 connections (the default is 4096)"),
        ("  listen_backlog:", "this key has no value; write a whole number between 1 and 1048576 connections, e.g. 4096, or remove the key to use the default"),
        ("  max_buffered_bytes: 1048575", #""1048575" is not a size from 1MiB to 1TiB; write a whole number of bytes or one with a unit (KiB, MiB, GiB, TiB), e.g. max_buffered_bytes: 256MiB (the default)"#),
        ("  max_buffered_bytes: 2TiB", #""2TiB" is not a size from 1MiB to 1TiB; write a whole number of bytes or one with a unit (KiB, MiB, GiB, TiB), e.g. max_buffered_bytes: 256MiB (the default)"#),
        ("  max_buffered_bytes: 256MB", #""256MB" is not a size from 1MiB to 1TiB; write a whole number of bytes or one with a unit (KiB, MiB, GiB, TiB), e.g. max_buffered_bytes: 256MiB (the default)"#),
        ("  max_buffered_bytes:", "this key has no value; write a size from 1MiB to 1TiB, e.g. 256MiB, or remove the key to use the default"),
        ("  commit_max_delay: 2s", "2s is out of range; write a duration from 0s to 1s (the default is 2ms)"),
        ("  commit_max_delay: 1001ms", "1001ms is out of range; write a duration from 0s to 1s (the default is 2ms)"),
        ("  commit_max_delay: 2", #""2" has no unit; add one of ns, us, ms, s, m, h, d, e.g. 2s or 2ms"#),
        ("  commit_max_delay: { ms: 2 }", "expected a duration from 0s to 1s, e.g. 2ms; found a mapping"),
        ("  dedup_window: 59m", "59m is out of range; write a duration of at least 1h (the default is 35d)"),
        ("  dedup_window: 35days", #""35days" has an unknown unit "days"; use one of ns, us, ms, s, m, h, d, for example 2ms, 5m or 35d"#),
        ("  max_future_skew: -5m", "durations cannot be negative; write a positive one, for example 2ms, 5m or 35d"),
        ("  socket_mode: 660", #""660" is not an octal file mode; write the permission bits as a quoted octal string, e.g. socket_mode: "0660" ("0660" if 660 is meant as octal)"#),
        ("  socket_mode: \"0990\"", #""0990" is not an octal file mode; write the permission bits as a quoted octal string, e.g. socket_mode: "0660""#),
        ("  socket_mode: rw-rw----", #""rw-rw----" is not an octal file mode; write the permission bits as a quoted octal string, e.g. socket_mode: "0660""#),
        ("  socket: \"\"", "the value is empty; write one, e.g. socket: tally.sock"),
    ])
    func ingestValueProblems(line: String, message: String) throws {
        let problem = try #require(onlyProblem(ingestConfig(line)))
        #expect(problem.line == 2)
        #expect(problem.path == "ingest." + line.split(separator: ":")[0].trimmingCharacters(in: .whitespaces))
        #expect(problem.message == message)
    }

    @Test func theListenBacklogIsRead() throws {
        #expect(IngestSettings().listenBacklog == 4096)
        #expect(try load(ingestConfig("  commit_max_events: 10")).ingest.listenBacklog == 4096)
        #expect(try load(ingestConfig("  listen_backlog: 1")).ingest.listenBacklog == 1)
        #expect(try load(ingestConfig("  listen_backlog: 1048576")).ingest.listenBacklog == 1_048_576)
        #expect(try load(ingestConfig("  listen_backlog: 16384")).ingest == IngestSettings(listenBacklog: 16_384))
    }

    @Test func theBufferBudgetIsRead() throws {
        #expect(IngestSettings().maxBufferedBytes == 256 << 20)
        #expect(try load(ingestConfig("  commit_max_events: 10")).ingest.maxBufferedBytes == 268_435_456)
        #expect(try load(ingestConfig("  max_buffered_bytes: 1048576")).ingest.maxBufferedBytes == 1 << 20)
        #expect(try load(ingestConfig("  max_buffered_bytes: 1099511627776")).ingest == IngestSettings(maxBufferedBytes: 1 << 40))
        #expect(try load(ingestConfig("  max_buffered_bytes: 64MiB")).ingest.maxBufferedBytes == 64 << 20)
        #expect(try load(ingestConfig("  max_buffered_bytes: 1TiB")).ingest.maxBufferedBytes == 1 << 40)
    }

    @Test func socketModesAreOctal() throws {
        #expect(try load(ingestConfig("  socket_mode: \"0640\"")).ingest.socketMode == 0o640)
        #expect(try load(ingestConfig("  socket_mode: 0600")).ingest.socketMode == 0o600)
        #expect(try load(ingestConfig("  socket_mode: '0777'")).ingest.socketMode == 0o777)
    }

    @Test func aSocketPathLongerThanAUnixSocketHoldsIsRefused() throws {
        let path = "/" + String(repeating: "s", count: 107)
        let problem = try #require(onlyProblem(ingestConfig("  socket: \(path)")))
        #expect(problem.line == 2)
        #expect(problem.message.contains("108 bytes long"))
        #expect(try load(ingestConfig("  socket: \(path.dropLast())")).ingest.socket.utf8.count == 107)
    }

    @Test func aSectionOfTheWrongShape() throws {
        let problem = try #require(onlyProblem("meters: [{ code: a, aggregation: sum }]\ningest: 5\n"))
        #expect(problem.line == 2)
        #expect(problem.column == 9)
        #expect(problem.path == "ingest")
        #expect(problem.message == #"ingest must be a mapping of settings, e.g. ingest: { commit_max_events: 8192 }; found "5""#)
    }

    @Test func billingPeriodNearMiss() throws {
        let problem = try #require(onlyProblem("billing:\n  period: monthy\nmeters: [{ code: a, aggregation: sum }]"))
        #expect(problem.line == 2)
        #expect(problem.column == 11)
        #expect(problem.path == "billing.period")
        #expect(problem.message == #""monthy" is not a known billing period; did you mean "monthly"? use one of daily, weekly, monthly, yearly"#)
    }

    @Test func billingPeriodFarMiss() throws {
        let problem = try #require(onlyProblem("billing:\n  period: fortnightly\nmeters: [{ code: a, aggregation: sum }]"))
        #expect(problem.message == #""fortnightly" is not a known billing period; use one of daily, weekly, monthly, yearly"#)
    }

    @Test func roundingMustBeKnown() throws {
        let problem = try #require(onlyProblem("billing:\n  rounding: bankers\nmeters: [{ code: a, aggregation: sum }]"))
        #expect(problem.line == 2)
        #expect(problem.path == "billing.rounding")
        #expect(problem.message.contains("use one of half_away_from_zero, half_even"))
    }

    @Test(arguments: ["2026-02-30", "2026-13-01", "15.01.2026", "2026-1-5"])
    func anchorMustBeADate(text: String) throws {
        let problem = try #require(onlyProblem("billing:\n  period: monthly\n  anchor: \(text)\nmeters: [{ code: a, aggregation: sum }]"))
        #expect(problem.line == 3)
        #expect(problem.path == "billing.anchor")
        #expect(problem.message.contains("YYYY-MM-DD"))
    }

    @Test func dailyPeriodsTakeNoAnchor() throws {
        let problem = try #require(onlyProblem("billing:\n  anchor: 2026-01-15\n  period: daily\nmeters: [{ code: a, aggregation: sum }]"))
        #expect(problem.line == 2)
        #expect(problem.path == "billing.anchor")
        #expect(problem.message.contains("remove anchor"))
    }
}

@Suite struct ConfigMeterTests {
    @Test func metersAreRequired() throws {
        let problem = try #require(onlyProblem("store: { path: data }\n"))
        #expect(problem.line == nil)
        #expect(problem.path == "meters")
        #expect(problem.message.contains("meters: [{ code: api_calls, aggregation: count }]"))
    }

    @Test func anEmptyFileNeedsMeters() throws {
        let problem = try #require(onlyProblem("# nothing yet\n"))
        #expect(problem.path == "meters")
        #expect(problem.message.contains("empty"))
    }

    @Test func anEmptyMeterListIsRefused() throws {
        let problem = try #require(onlyProblem("store: { path: data }\nmeters: []\n"))
        #expect(problem.line == 2)
        #expect(problem.path == "meters")
        #expect(problem.message.contains("at least one meter"))
    }

    @Test func metersMustBeAList() throws {
        let problem = try #require(onlyProblem("meters:\n  api_calls: count\n"))
        #expect(problem.line == 2)
        #expect(problem.message.contains("must be a list"))
    }

    @Test func aMeterMustBeAMapping() throws {
        let problem = try #require(onlyProblem("meters:\n  - { code: a, aggregation: sum }\n  - api_calls\n"))
        #expect(problem.line == 3)
        #expect(problem.path == "meters[1]")
        #expect(problem.message.contains("each meter is a mapping"))
    }

    @Test func codeIsRequired() throws {
        let problem = try #require(onlyProblem("meters:\n  - { code: a, aggregation: sum }\n  - aggregation: count\n"))
        #expect(problem.line == 3)
        #expect(problem.column == 5)
        #expect(problem.path == "meters[1]")
        #expect(problem.message == "this meter has no code; add one, e.g. code: api_calls")
    }

    @Test(arguments: [
        ("API-Calls", "api_calls"),
        ("api calls", "api_calls"),
        ("\"\"", nil),
        (String(repeating: "a", count: 65), String(repeating: "a", count: 64)),
    ] as [(String, String?)])
    func codesAreLowercaseNames(code: String, suggestion: String?) throws {
        let problem = try #require(onlyProblem("meters:\n  - code: \(code)\n    aggregation: sum\n"))
        #expect(problem.line == 2)
        #expect(problem.path == "meters[0].code")
        if let suggestion {
            #expect(problem.message.hasSuffix("e.g. code: \(suggestion)"))
            #expect(problem.message.contains("lowercase letters, digits and _"))
        } else {
            #expect(problem.message == "the value is empty; write one, e.g. code: api_calls")
        }
    }

    @Test func aSixtyFourCharacterCodeIsFine() throws {
        let code = String(repeating: "z", count: 60) + "_0_9"
        #expect(try load("meters: [{ code: \(code), aggregation: sum }]").meters.first?.code == code)
    }

    @Test func codesAreUnique() throws {
        let problem = try #require(onlyProblem("""
            meters:
              - { code: api_calls, aggregation: count }
              - { code: tokens, aggregation: sum }
              - { code: api_calls, aggregation: sum }
            """))
        #expect(problem.line == 4)
        #expect(problem.path == "meters[2].code")
        #expect(problem.message == #"the meter code "api_calls" is already used by meters[0] (line 2); give each meter its own code"#)
    }

    @Test func aggregationIsRequired() throws {
        let problem = try #require(onlyProblem("meters:\n  - code: api_calls\n"))
        #expect(problem.line == 2)
        #expect(problem.path == "meters[0]")
        #expect(problem.message == "this meter has no aggregation; add one: aggregation: sum | count | max | min | latest | unique_count")
    }

    @Test func aggregationMustBeKnown() throws {
        let problem = try #require(onlyProblem("meters:\n  - code: latency\n    aggregation: average\n"))
        #expect(problem.line == 3)
        #expect(problem.column == 18)
        #expect(problem.path == "meters[0].aggregation")
        #expect(problem.message == #""average" is not a known aggregation; use one of sum, count, max, min, latest, unique_count"#)
    }

    @Test func aggregationNearMiss() throws {
        let problem = try #require(onlyProblem("meters:\n  - { code: users, aggregation: unique-count, property: id }\n"))
        #expect(problem.message.contains(#"did you mean "unique_count"?"#))
    }

    @Test func uniqueCountNeedsAProperty() throws {
        let problem = try #require(onlyProblem("meters:\n  - { code: a, aggregation: sum }\n  - { code: users, aggregation: unique_count }\n"))
        #expect(problem.line == 3)
        #expect(problem.path == "meters[1]")
        #expect(problem.message.contains("property: user_id"))
    }

    @Test func otherAggregationsTakeNoProperty() throws {
        let problem = try #require(onlyProblem("meters:\n  - code: tokens\n    aggregation: sum\n    property: model\n"))
        #expect(problem.line == 4)
        #expect(problem.path == "meters[0].property")
        #expect(problem.message.contains("only used by unique_count"))
    }

    @Test func filterValuesMustBeScalars() throws {
        let found = problems("""
            meters:
              - code: tokens
                aggregation: sum
                filter:
                  billable: [true, false]
                  region: { eu: 1 }
                  tier:
            """)
        #expect(found.map(\.line) == [5, 6, 7])
        #expect(found.map(\.path) == ["meters[0].filter.billable", "meters[0].filter.region", "meters[0].filter.tier"])
        #expect(found[0].message == #"filter values must be single values, compared with the property as text, e.g. billable: "true"; found a list"#)
        #expect(found[2].message.hasSuffix("found no value"))
    }

    @Test func filterMustBeAMapping() throws {
        let problem = try #require(onlyProblem("meters:\n  - { code: a, aggregation: sum, filter: [billable] }\n"))
        #expect(problem.path == "meters[0].filter")
        #expect(problem.message.contains(#"e.g. filter: { billable: "true" }; found a list"#))
    }

    @Test func groupByMustBeAList() throws {
        let problem = try #require(onlyProblem("meters:\n  - { code: a, aggregation: sum, group_by: region }\n"))
        #expect(problem.line == 2)
        #expect(problem.path == "meters[0].group_by")
        #expect(problem.message == #"group_by must be a list of property names, e.g. group_by: [region]; found "region""#)
    }

    @Test func groupByNamesAreScalarAndUnique() throws {
        let found = problems("""
            meters:
              - code: a
                aggregation: sum
                group_by:
                  - region
                  - [nested]
                  - region
            """)
        #expect(found.map(\.line) == [6, 7])
        #expect(found.map(\.path) == ["meters[0].group_by[1]", "meters[0].group_by[2]"])
        #expect(found[1].message.contains("listed twice"))
    }
}

@Suite struct ConfigReportTests {
    static let broken = """
        meters:
          - { code: Tokens, aggregation: sum }
          - { code: b, aggregation: avg }
        ingest:
          commit_max_events: 0
          commit_max_delay: 5
          socket_mod: "0660"
        billing:
          period: monthly
          rounding: half_up
        """

    @Test func everyProblemIsReportedSortedByLine() {
        let found = problems(Self.broken)
        #expect(found.map(\.line) == [2, 3, 5, 6, 7, 10])
        #expect(found.map(\.path) == [
            "meters[0].code", "meters[1].aggregation", "ingest.commit_max_events", "ingest.commit_max_delay",
            "ingest.socket_mod", "billing.rounding",
        ])
    }

    @Test func problemsAreSortedEvenWhenFoundOutOfOrder() {
        let found = problems("""
            ingest:
              commit_max_events: 0
            meters:
              - { code: a, aggregation: sum }
            store:
              path: [x]
            """ + "\n" + "billing: { period: hourly }")
        #expect(found.map(\.line) == [2, 6, 7])
    }

    @Test func theDescriptionIsOneLinePerProblem() throws {
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(yaml: Self.broken, fileName: "config/tally.yaml") }
        let lines = try #require(error?.description.split(separator: "\n").map(String.init))
        #expect(lines.count == 6)
        #expect(lines[0].hasPrefix("config/tally.yaml:2:13: meters[0].code: the meter code \"Tokens\" may use only"))
        #expect(lines[4] == #"config/tally.yaml:7:3: ingest.socket_mod: unknown key "socket_mod"; did you mean "socket_mode"?"#)
        #expect(error?.fileName == "config/tally.yaml")
    }

    @Test func aProblemWithoutAPlaceRendersWithoutOne() {
        let problem = ConfigProblem(path: "meters", message: "add meters")
        #expect(ConfigError(fileName: "f.yaml", problems: [problem]).description == "f.yaml: meters: add meters")
        #expect(problem.description == "meters: add meters")
        let placed = ConfigProblem(line: 3, column: 7, path: "", message: "bad")
        #expect(ConfigError(fileName: "f.yaml", problems: [placed]).description == "f.yaml:3:7: bad")
    }
}

@Suite struct ConfigSyntaxTests {
    @Test func anUnterminatedQuoteNamesItsLine() throws {
        let problem = try #require(onlyProblem("""
            store:
              path: data
            ingest:
              socket: "tally.sock
            meters: [{ code: a, aggregation: sum }]
            """))
        #expect(problem.line == 5)
        #expect(problem.path == "")
        #expect(problem.message.hasPrefix("YAML syntax error: "))
        #expect(problem.message.contains("which started at line 4"))
    }

    @Test func badIndentationNamesItsLine() throws {
        let problem = try #require(onlyProblem("""
            ingest:
              socket: a.sock
             commit_max_events: 5
            meters: [{ code: a, aggregation: sum }]
            """))
        #expect(problem.line == 3)
        #expect(problem.message.hasPrefix("YAML syntax error: "))
    }

    @Test func aDuplicateKeyIsAProblem() throws {
        let problem = try #require(onlyProblem("""
            ingest:
              socket: a.sock
              socket: b.sock
            meters: [{ code: a, aggregation: sum }]
            """))
        #expect(problem.line == 2)
        #expect(problem.message.contains(#""socket" appears here and again later"#))
    }

    @Test func twoDocumentsAreRefused() throws {
        let problem = try #require(onlyProblem("---\nmeters: [{ code: a, aggregation: sum }]\n---\nstore: {}\n"))
        #expect(problem.line == 3)
        #expect(problem.message.contains("more than one YAML document"))
    }

    @Test func anUndefinedAliasIsAProblem() throws {
        let problem = try #require(onlyProblem("meters: [{ code: a, aggregation: sum }]\nstore: *missing\n"))
        #expect(problem.line == 2)
        #expect(problem.message == "YAML error: found undefined alias")
    }

    @Test func aTabIndentIsAProblem() throws {
        let problem = try #require(onlyProblem("meters:\n\t- code: a\n"))
        #expect(problem.line == 2)
        #expect(problem.message.hasPrefix("YAML syntax error: "))
    }

    @Test func aListAtTheTopIsNotAConfig() throws {
        let problem = try #require(onlyProblem("- store\n- meters\n"))
        #expect(problem.line == 1)
        #expect(problem.message.contains("must be a mapping of sections"))
    }
}

@Suite struct DurationTextTests {
    @Test(arguments: [
        ("0", 0), ("0s", 0), ("1ns", 1), ("500us", 500_000), ("2ms", 2_000_000), ("5s", 5_000_000_000),
        ("5m", 300_000_000_000), ("24h", 86_400_000_000_000), ("35d", 3_024_000_000_000_000),
        ("106751d", 9_223_286_400_000_000_000),
    ] as [(String, Int64)])
    func parses(text: String, nanoseconds: Int64) throws {
        #expect(try DurationText.parse(text) == nanoseconds)
    }

    @Test(arguments: [
        ("", "the duration is empty; write a whole number and a unit, for example 2ms, 5m or 35d"),
        ("5", #""5" has no unit; add one of ns, us, ms, s, m, h, d, e.g. 5s or 5ms"#),
        ("5x", #""5x" has an unknown unit "x"; use one of ns, us, ms, s, m, h, d, for example 2ms, 5m or 35d"#),
        ("5 s", #""5 s" has an unknown unit " s"; use one of ns, us, ms, s, m, h, d, for example 2ms, 5m or 35d"#),
        ("5S", #""5S" has an unknown unit "S"; use one of ns, us, ms, s, m, h, d, for example 2ms, 5m or 35d"#),
        ("ms", #""ms" is not a duration; write a whole number and a unit (ns, us, ms, s, m, h, d), for example 2ms, 5m or 35d"#),
        ("1.5h", #""1.5h" is not a whole number; use a smaller unit instead of a fraction, e.g. 90m, not 1.5h"#),
        ("-1s", "durations cannot be negative; write a positive one, for example 2ms, 5m or 35d"),
        ("106752d", #""106752d" is too long; durations go up to 106751d (about 292 years)"#),
        ("99999999999999999999s", #""99999999999999999999s" is too long; durations go up to 106751d (about 292 years)"#),
    ])
    func rejects(text: String, message: String) {
        let error = #expect(throws: DurationTextError.self) { try DurationText.parse(text) }
        #expect(error?.message == message)
        #expect(error?.text == text)
    }

    @Test(arguments: [
        (0, "0s"), (1, "1ns"), (1_500, "1500ns"), (500_000, "500us"), (2_000_000, "2ms"), (1_000_000_000, "1s"),
        (90_000_000_000, "90s"), (5_400_000_000_000, "90m"), (86_400_000_000_000, "1d"), (3_024_000_000_000_000, "35d"),
        (-2_000_000, "-2ms"), (Int64.min, "-9223372036854775808ns"),
    ] as [(Int64, String)])
    func formats(nanoseconds: Int64, text: String) {
        #expect(DurationText.format(nanoseconds: nanoseconds) == text)
    }

    @Test func formatThenParseRoundTrips() throws {
        for nanoseconds: Int64 in [0, 7, 1_001, 2_000_000, 61_000_000_000, 3_600_000_000_000, 172_800_000_000_000, Int64.max] {
            #expect(try DurationText.parse(DurationText.format(nanoseconds: nanoseconds)) == nanoseconds)
        }
    }
}

@Suite("http.api_keys and http.portal_secret_env")
struct APIKeysConfigTests {
    static let digest = String(repeating: "ab", count: 32)

    static func load(_ http: String) throws(ConfigError) -> TallyConfig {
        try ConfigLoader.parse(yaml: "meters:\n  - { code: api_calls, aggregation: count }\nhttp:\n" + http, fileName: "tally.yaml")
    }

    @Test("named keys with scopes, beside api_keys_sha256, and the portal secret's variable")
    func valid() throws {
        let config = try Self.load("""
              api_keys_sha256: ["\(Self.digest)"]
              api_keys:
                - { name: producer, sha256: "\(Self.digest.uppercased())", scopes: [ingest] }
                - { name: dashboard, sha256: "\(Self.digest)", scopes: [read, admin] }
              portal_secret_env: TALLY_PORTAL_SECRET
            """)
        #expect(config.http.apiKeySHA256 == [Self.digest])
        #expect(config.http.apiKeys == [APIKey(name: "producer", sha256: Self.digest, scopes: [.ingest]),
                                        APIKey(name: "dashboard", sha256: Self.digest, scopes: [.read, .admin])])
        #expect(config.http.portalSecretEnvironmentVariable == "TALLY_PORTAL_SECRET")
        #expect(config.http.portalFrameAncestors.isEmpty)
    }

    @Test("http.portal_frame_ancestors: origins (wildcard subdomains, ports) and 'self'")
    func frameAncestors() throws {
        let config = try Self.load("""
              portal_frame_ancestors: ["https://app.example.com", "https://*.example.org:8443", "http://localhost:3000", "'self'"]
            """)
        #expect(config.http.portalFrameAncestors == ["https://app.example.com", "https://*.example.org:8443", "http://localhost:3000", "'self'"])
    }

    @Test("mistakes are reported with their place, and digests are never echoed", arguments: [
        ("  api_keys: [{ name: p, sha256: \"abc\", scopes: [ingest] }]", "not a SHA-256 digest"),
        ("  api_keys: [{ name: p, sha256: \"\(digest)\", scopes: [write] }]", "unknown scope \"write\""),
        ("  api_keys: [{ name: p, sha256: \"\(digest)\", scopes: [] }]", "scopes must be a list of at least one"),
        ("  api_keys: [{ sha256: \"\(digest)\", scopes: [read] }]", "has no name"),
        ("  api_keys: [{ name: p, scopes: [read] }]", "has no sha256"),
        ("  api_keys: [{ name: p, sha256: \"\(digest)\" }]", "has no scopes"),
        ("  api_keys: [{ name: p, sha256: \"\(digest)\", scopes: [read] }, { name: p, sha256: \"\(digest)\", scopes: [read] }]", "two API keys are named \"p\""),
        ("  api_keys: [{ name: p, sha256: \"\(digest)\", scopes: [read], color: red }]", "color"),
        ("  api_keys: producer", "api_keys must be a list"),
        ("  portal_secret_env: \"my secret!\"", "not the secret itself"),
        ("  portal_frame_ancestors: https://app.example.com", "portal_frame_ancestors must be a list of origins"),
        ("  portal_frame_ancestors: [\"app.example.com\"]", "is not an origin: write a scheme and a host"),
        ("  portal_frame_ancestors: [\"https://app.example.com/embed\"]", "is not an origin"),
        ("  portal_frame_ancestors: [\"https://a.example.com; script-src *\"]", "is not an origin"),
        ("  portal_frame_ancestors: [~]", "expected an origin"),
    ])
    func invalid(yaml: String, expected: String) throws {
        do {
            _ = try Self.load(yaml)
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
            #expect(!error.description.contains("abc\"") || expected.contains("digest"))
        }
    }
}
