import TallyConfiguration
import Metering
import Testing

/// SHA-256 of `test-key`, as `printf %s test-key | sha256sum` prints it.
private let testKeyDigest = "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef"

/// The example config of DESIGN.md §11, verbatim.
private let designExampleVerbatim = """
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
"""

/// Meters and plans (lines 1–6) for the limits of these tests.
private let meterAndPlanLines = """
meters:
  - { code: api_calls, aggregation: count }
  - { code: storage_gb, aggregation: max }
plans:
  - { code: starter, currency: USD, prices: [{ meter: api_calls, model: per_unit, unit_amount: "0.002" }] }
  - { code: pro, currency: EUR, prices: [] }
"""

/// A config with meters and plans whose `limits:` key is on line 7, so the first limit is on line 8.
private func limitsConfig(_ lines: String) -> String {
    meterAndPlanLines + "\nlimits:\n" + lines + "\n"
}

/// A config with one meter on line 1, then `lines` from line 2 (an `alerts:` or `http:` section).
private func sectionConfig(_ lines: String) -> String {
    "meters: [{ code: api_calls, aggregation: count }]\n" + lines + "\n"
}

private func load(_ yaml: String) throws -> TallyConfig {
    try ConfigLoader.parse(yaml: yaml, fileName: "tally.yaml")
}

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

private func decimal(_ text: String) -> ExactDecimal {
    ExactDecimal(text)!
}

// MARK: - Whole files

@Suite struct LimitsConfigExampleTests {
    @Test func theDesignExampleLoadsWithARealDigest() throws {
        let yaml = designExampleVerbatim.replacing("<hex sha256 of a key>", with: testKeyDigest)
        let config = try load(yaml)
        #expect(config.limits == [
            UsageLimit(id: "plan:starter:amount", scope: .plan("starter"), threshold: .amount(100), action: .warning,
                       notifyAt: [50, 80, 100]),
            UsageLimit(id: "customer:cus_42:api_calls", scope: .customer("cus_42"),
                       threshold: .quantity(meter: "api_calls", 1_000_000), action: .disable, notifyAt: [100]),
        ])
        #expect(config.alerts == AlertSettings(log: "alerts.ndjson", webhooks: [
            WebhookSettings(url: "http://127.0.0.1:9000/hooks/tally", secretEnvironmentVariable: "TALLY_WEBHOOK_SECRET"),
        ]))
        #expect(config.http == HTTPSettings(listen: "127.0.0.1:8080", apiKeySHA256: [testKeyDigest]))
        #expect(config.ignoredSections.isEmpty)
        #expect(ConfigLoader.ignoredSectionNames.isEmpty)
    }

    @Test func theDesignExamplesPlaceholderDigestIsTheOnlyProblem() throws {
        let problem = try #require(onlyProblem(designExampleVerbatim))
        #expect(problem.line == 47)
        #expect(problem.column == 21)
        #expect(problem.path == "http.api_keys_sha256[0]")
        #expect(problem.message == "this entry is not a SHA-256 digest: it is 21 characters long, not 64; list the "
            + "SHA-256 digest of each key (64 hexadecimal characters), not the key itself; "
            + "printf %s \"$KEY\" | sha256sum prints it")
    }

    @Test func theTaskContractExampleLoads() throws {
        let config = try load(limitsConfig("""
              - { plan: starter, amount: "100", action: warning, notify_at: [50, 80, 100] }
              - { customer: cus_42, meter: api_calls, quantity: 1000000, action: disable }
              - { id: big-spender, customer: cus_7, amount: "5000", action: warning }
            """))
        #expect(config.limits.map(\.id) == ["plan:starter:amount", "customer:cus_42:api_calls", "big-spender"])
        #expect(config.limits[2] == UsageLimit(id: "big-spender", scope: .customer("cus_7"), threshold: .amount(5000),
                                               action: .warning))
    }

    @Test func limitsAreReadAfterPlansWhereverTheyStand() throws {
        let config = try load("""
            limits:
              - { plan: pro, meter: storage_gb, quantity: "2.5", action: warning }
            plans:
              - { code: pro, currency: EUR, prices: [] }
            meters: [{ code: storage_gb, aggregation: max }]
            """)
        #expect(config.limits == [
            UsageLimit(id: "plan:pro:storage_gb", scope: .plan("pro"), threshold: .quantity(meter: "storage_gb", decimal("2.5")),
                       action: .warning),
        ])
    }

    @Test func everyProblemInEverySectionIsReportedAtOnce() {
        let found = problems("""
            meters: [{ code: api_calls, aggregation: count }]
            limits:
              - { customer: cus_1, amount: "0", action: warning }
              - { plan: gold, meter: api_calls, quantity: 5, action: block }
            alerts:
              webhooks: [{ url: "ftp://example.com" }]
            http:
              listen: "8080"
              api_keys_sha256: [abc]
            """)
        #expect(found.map(\.line) == [3, 4, 4, 6, 8, 9])
        #expect(found.map(\.path) == [
            "limits[0].amount", "limits[1].plan", "limits[1].action", "alerts.webhooks[0].url", "http.listen",
            "http.api_keys_sha256[0]",
        ])
    }
}

// MARK: - Defaults

@Suite struct LimitsConfigDefaultTests {
    @Test func absentSectionsGiveTheDefaults() throws {
        let config = try load("meters: [{ code: api_calls, aggregation: count }]")
        #expect(config.limits.isEmpty)
        #expect(config.alerts.log == "alerts.ndjson")
        #expect(config.alerts.webhooks.isEmpty)
        #expect(config.http.listen == nil)
        #expect(config.http.apiKeySHA256.isEmpty)
        #expect(config.ignoredSections.isEmpty)
    }

    @Test func emptySectionsGiveTheDefaults() throws {
        let config = try load(sectionConfig("limits:\nalerts:\nhttp:"))
        #expect(config.limits.isEmpty)
        #expect(config.alerts == AlertSettings())
        #expect(config.http == HTTPSettings())
        let lists = try load(sectionConfig("limits: []\nalerts: { webhooks: [] }\nhttp: { api_keys_sha256: [] }"))
        #expect(lists.limits.isEmpty)
        #expect(lists.alerts == AlertSettings())
        #expect(lists.http == HTTPSettings())
    }

    @Test func anAbsentLogKeyKeepsTheDefaultLog() throws {
        let config = try load(sectionConfig("alerts:\n  webhooks: [{ url: \"https://hooks.example.com/t\" }]"))
        #expect(config.alerts.log == "alerts.ndjson")
        #expect(config.alerts.webhooks == [WebhookSettings(url: "https://hooks.example.com/t", secretEnvironmentVariable: nil)])
    }

    @Test func aLimitDefaultsToNotifyAtOneHundredAndADerivedID() throws {
        let config = try load(limitsConfig("""
              - { customer: cus_42, amount: 250.5, action: disable }
              - { plan: starter, meter: api_calls, quantity: 1e6, action: warning }
            """))
        #expect(config.limits == [
            UsageLimit(id: "customer:cus_42:amount", scope: .customer("cus_42"), threshold: .amount(decimal("250.5")),
                       action: .disable, notifyAt: [100]),
            UsageLimit(id: "plan:starter:api_calls", scope: .plan("starter"),
                       threshold: .quantity(meter: "api_calls", 1_000_000), action: .warning, notifyAt: [100]),
        ])
    }

    @Test func anHTTPSectionWithoutListenHasNoAddress() throws {
        let config = try load(sectionConfig("http:\n  api_keys_sha256: [\"\(testKeyDigest.uppercased())\"]"))
        #expect(config.http.listen == nil)
        #expect(config.http.apiKeySHA256 == [testKeyDigest])
    }
}

// MARK: - Limits

@Suite struct LimitsConfigScopeTests {
    @Test func customerAndPlanTogetherAreRefused() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { customer: cus_1, plan: starter, amount: 5, action: warning }")))
        #expect(problem.line == 8)
        #expect(problem.column == 30)
        #expect(problem.path == "limits[0].plan")
        #expect(problem.message == "a limit applies to one customer or to every customer on a plan, not both; remove "
            + "customer or plan (a customer's own limit overrides its plan's limit on the same target)")
    }

    @Test func aLimitForNobodyIsRefused() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { amount: 5, action: warning }")))
        #expect(problem.line == 8)
        #expect(problem.column == 5)
        #expect(problem.path == "limits[0]")
        #expect(problem.message == "this limit applies to nobody; add customer: cus_42 (one customer) or plan: starter "
            + "(every customer on the plan)")
    }

    @Test func anUnknownPlanSuggestsTheNearest() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { plan: startr, amount: 5, action: warning }")))
        #expect(problem.line == 8)
        #expect(problem.column == 13)
        #expect(problem.path == "limits[0].plan")
        #expect(problem.message == #"there is no plan "startr"; did you mean "starter"? use one of the plans defined "#
            + "under plans: starter, pro")
    }

    @Test func aPlanLimitNeedsPlans() throws {
        let problem = try #require(onlyProblem(sectionConfig("limits: [{ plan: starter, amount: 5, action: warning }]")))
        #expect(problem.line == 2)
        #expect(problem.path == "limits[0].plan")
        #expect(problem.message == #"there is no plan "starter": the config defines no plans; add it under plans:, "#
            + "or limit one customer instead, e.g. customer: cus_42")
    }

    @Test func aPlanWithItsOwnProblemIsNotReportedAgain() throws {
        let problem = try #require(onlyProblem("""
            meters: [{ code: api_calls, aggregation: count }]
            plans: [{ code: gold, currency: usd, prices: [] }]
            limits: [{ plan: gold, amount: 5, action: warning }]
            """))
        #expect(problem.line == 2)
        #expect(problem.path == "plans[0].currency")
    }

    @Test func anAmountLimitOnAPlanWithoutPricesIsFine() throws {
        let config = try load(limitsConfig("  - { plan: pro, amount: \"20\", action: warning }"))
        #expect(config.limits.first?.threshold == .amount(20))
        #expect(config.limits.first?.scope == .plan("pro"))
    }

    @Test func customerIDsAreOneTo255Bytes() throws {
        let longest = String(repeating: "c", count: 255)
        let config = try load(limitsConfig("  - { customer: \(longest), amount: 5, action: warning }"))
        #expect(config.limits.first?.scope == .customer(longest))

        let tooLong = try #require(onlyProblem(limitsConfig("  - { customer: \(longest)x, amount: 5, action: warning }")))
        #expect(tooLong.line == 8)
        #expect(tooLong.path == "limits[0].customer")
        #expect(tooLong.message == "the customer id is 256 bytes long; ids are 1 to 255 bytes of UTF-8, as events send them")

        let empty = try #require(onlyProblem(limitsConfig("  - { customer: \"\", amount: 5, action: warning }")))
        #expect(empty.path == "limits[0].customer")
        #expect(empty.message == "the value is empty; write one, e.g. customer: cus_42")
    }
}

@Suite struct LimitsConfigThresholdTests {
    @Test func amountAndMeterTogetherAreRefused() throws {
        let problem = try #require(onlyProblem(limitsConfig(
            "  - { customer: c, amount: 5, meter: api_calls, quantity: 9, action: warning }")))
        #expect(problem.line == 8)
        #expect(problem.column == 28)
        #expect(problem.path == "limits[0].amount")
        #expect(problem.message == "a limit is on the period's amount or on one meter's quantity, not both; remove "
            + "amount or meter and quantity (write a second limit for the other)")
    }

    @Test func aMeterNeedsAQuantityAndAQuantityAMeter() throws {
        let found = problems(limitsConfig("""
              - { customer: c, meter: api_calls, action: warning }
              - { customer: c, quantity: 10, action: warning }
            """))
        #expect(found.map(\.line) == [8, 9])
        #expect(found.map(\.path) == ["limits[0]", "limits[1]"])
        #expect(found.first?.message == "this limit names a meter but no quantity; add the quantity the limit allows, "
            + "e.g. quantity: 1000000")
        #expect(found.last?.message == "this limit has a quantity but no meter; add the meter it counts, e.g. meter: api_calls")
    }

    @Test func aLimitWithoutThresholdIsRefused() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { customer: c, action: warning }")))
        #expect(problem.line == 8)
        #expect(problem.path == "limits[0]")
        #expect(problem.message == "this limit has no threshold; add amount: \"500\" (the period's amount, in the plan's "
            + "currency), or a meter and its quantity: meter: api_calls, quantity: 1000000")
    }

    @Test func anUnknownMeterSuggestsTheNearest() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { customer: c, meter: api_call, quantity: 5, action: warning }")))
        #expect(problem.line == 8)
        #expect(problem.column == 27)
        #expect(problem.path == "limits[0].meter")
        #expect(problem.message == #"unknown meter "api_call"; did you mean "api_calls"? the meters are api_calls, storage_gb"#)
    }

    @Test func aMeterWithItsOwnProblemIsNotReportedAgain() throws {
        let problem = try #require(onlyProblem("""
            meters: [{ code: seats, aggregation: average }]
            limits: [{ customer: c, meter: seats, quantity: 5, action: warning }]
            """))
        #expect(problem.line == 1)
        #expect(problem.path == "meters[0].aggregation")
    }

    @Test(arguments: [
        ("\"0\"", "0 is not above 0; a limit's amount must be above 0, e.g. amount: \"500\" (remove the limit to have none)"),
        ("-5", "-5 is not above 0; a limit's amount must be above 0, e.g. amount: \"500\" (remove the limit to have none)"),
        ("\"1.0000000000001\"", "1.0000000000001 has 13 decimal places; at most 12 are allowed: round it, e.g. to 1"),
        ("\"1000000000000000000\"", "1000000000000000000 is too large; a limit's amount must be below 10^18"),
        ("\"1,5\"", "\"1,5\" is not a decimal number; write digits with an optional fraction, with . as the decimal "
            + "point and no digit grouping, e.g. amount: \"500\""),
        ("[5]", "expected a decimal above 0, e.g. amount: \"500\"; found a list"),
        ("", "this key has no value; write a decimal above 0, e.g. amount: \"500\""),
    ])
    func badAmounts(value: String, message: String) throws {
        let problem = try #require(onlyProblem(limitsConfig("  - customer: c\n    amount: \(value)\n    action: warning")))
        #expect(problem.line == 9)
        #expect(problem.path == "limits[0].amount")
        #expect(problem.message == message)
    }

    @Test func theLargestAmountAndTheFinestQuantityAreAccepted() throws {
        let config = try load(limitsConfig("""
              - { customer: c, amount: "999999999999999999.999999999999", action: warning }
              - { customer: c, meter: api_calls, quantity: "0.000000000001", action: warning }
            """))
        #expect(config.limits.map(\.threshold.value) == [
            decimal("999999999999999999.999999999999"), decimal("0.000000000001"),
        ])
    }

    @Test func quantitiesFollowTheSameRules() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { customer: c, meter: api_calls, quantity: 0, action: warning }")))
        #expect(problem.line == 8)
        #expect(problem.path == "limits[0].quantity")
        #expect(problem.message == "0 is not above 0; a limit's quantity must be above 0, e.g. quantity: 1000000 "
            + "(remove the limit to have none)")
    }
}

@Suite struct LimitsConfigBalanceTests {
    @Test func balanceLimitsReadWithTheirOwnIDs() throws {
        let config = try load(limitsConfig("""
              - { plan: starter, balance_below: "20", action: warning }
              - { customer: cus_1, balance_percent_below: 10, action: disable }
            """))
        #expect(config.limits.map(\.threshold) == [.balanceBelow(decimal("20")), .balancePercentBelow(decimal("10"))])
        #expect(config.limits.map(\.id) == ["plan:starter:balance_below", "customer:cus_1:balance_percent_below"])
        #expect(config.limits.allSatisfy { $0.threshold.isBalance && $0.threshold.meter == nil })
    }

    @Test func balanceLimitsRefuseOtherThresholdsStepsAndPercentagesPast100() {
        let mixed = problems(limitsConfig("  - { plan: starter, balance_below: \"20\", amount: \"5\", action: warning }"))
        #expect(mixed.contains { $0.message.contains("a balance limit watches the credit balance only") }, "\(mixed)")
        let steps = problems(limitsConfig("  - { plan: starter, balance_below: \"20\", notify_at: [50], action: warning }"))
        #expect(steps.contains { $0.message.contains("remove notify_at") }, "\(steps)")
        let percent = problems(limitsConfig("  - { plan: starter, balance_percent_below: 150, action: warning }"))
        #expect(percent.contains { $0.message.contains("from above 0 to 100") }, "\(percent)")
        let negative = problems(limitsConfig("  - { plan: starter, balance_below: \"-1\", action: warning }"))
        #expect(!negative.isEmpty)
    }
}

@Suite struct LimitsConfigActionTests {
    @Test func aMissingActionIsRefused() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { customer: c, amount: 5 }")))
        #expect(problem.line == 8)
        #expect(problem.path == "limits[0]")
        #expect(problem.message == "this limit has no action; add action: warning (alerts only) or action: disable "
            + "(alerts, and the customer's events are blocked from 100% until the period resets)")
    }

    @Test func aNearMissActionSuggestsIt() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { customer: c, amount: 5, action: disabled }")))
        #expect(problem.line == 8)
        #expect(problem.column == 39)
        #expect(problem.path == "limits[0].action")
        #expect(problem.message == #""disabled" is not a known limit action; did you mean "disable"? use one of warning, disable"#)
    }

    @Test func aMisspelledKeyIsReportedOnceWithASuggestion() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { customer: c, amount: 5, acton: warning }")))
        #expect(problem.line == 8)
        #expect(problem.column == 31)
        #expect(problem.path == "limits[0].acton")
        #expect(problem.message == #"unknown key "acton"; did you mean "action"?"#)
        let notify = try #require(onlyProblem(limitsConfig("  - { customer: c, amount: 5, action: warning, notify_a: [50] }")))
        #expect(notify.message == #"unknown key "notify_a"; did you mean "notify_at"?"#)
    }
}

@Suite struct LimitsConfigNotifyAtTests {
    @Test func stepsAreRead() throws {
        let config = try load(limitsConfig("  - { customer: c, amount: 5, action: warning, notify_at: [1, \"80\", 1000] }"))
        #expect(config.limits.first?.notifyAt == [1, 80, 1000])
    }

    @Test func stepsMustRiseStrictly() {
        let found = problems(limitsConfig("  - { customer: c, amount: 5, action: warning, notify_at: [80, 50, 80, 90] }"))
        #expect(found.map(\.line) == [8, 8])
        #expect(found.map(\.column) == [64, 68])
        #expect(found.map(\.path) == ["limits[0].notify_at[1]", "limits[0].notify_at[2]"])
        #expect(found.first?.message == "50 does not rise above the step before it (80); list each percent once, in "
            + "increasing order, e.g. notify_at: [50, 80, 100]")
    }

    @Test(arguments: [
        ("[0]", "limits[0].notify_at[0]", "0 is out of range; each step is a whole percent from 1 to 1000, e.g. notify_at: [50, 80, 100]"),
        ("[1001]", "limits[0].notify_at[0]", "1001 is out of range; each step is a whole percent from 1 to 1000, e.g. notify_at: [50, 80, 100]"),
        ("[-5]", "limits[0].notify_at[0]", "-5 is out of range; each step is a whole percent from 1 to 1000, e.g. notify_at: [50, 80, 100]"),
        ("[12.5]", "limits[0].notify_at[0]", "12.5 is not a whole number; each step is a whole percent from 1 to 1000, e.g. notify_at: [50, 80, 100]"),
        ("[80%]", "limits[0].notify_at[0]", "80% is not a whole number; each step is a whole percent from 1 to 1000 (write 80, without %), e.g. notify_at: [50, 80, 100]"),
        ("[[50]]", "limits[0].notify_at[0]", "each step is a whole percent from 1 to 1000, e.g. notify_at: [50, 80, 100]; found a list"),
        ("80", "limits[0].notify_at", "notify_at must be a list of percents, e.g. notify_at: [80]; found \"80\""),
        ("[]", "limits[0].notify_at", "notify_at is empty; list at least one percent, e.g. notify_at: [50, 80, 100], or remove notify_at for the default [100]"),
        ("", "limits[0].notify_at", "notify_at has no value; list the percents that fire an alert, e.g. notify_at: [50, 80, 100], or remove notify_at for the default [100]"),
    ])
    func badSteps(value: String, path: String, message: String) throws {
        let problem = try #require(onlyProblem(limitsConfig("  - customer: c\n    amount: 5\n    action: warning\n    notify_at: \(value)")))
        #expect(problem.line == 11)
        #expect(problem.path == path)
        #expect(problem.message == message)
    }

    @Test func aDisableLimitNeedNotListOneHundred() throws {
        let config = try load(limitsConfig("  - { customer: c, amount: 5, action: disable, notify_at: [50, 80] }"))
        #expect(config.limits.first?.notifyAt == [50, 80])
        #expect(config.limits.first?.action == .disable)
    }
}

@Suite struct LimitsConfigIDTests {
    @Test func idsUseLettersDigitsAndFourMarks() throws {
        let longest = String(repeating: "a", count: 128)
        let config = try load(limitsConfig("""
              - { id: "Big_spender-1.v2:eu", customer: c, amount: 5, action: warning }
              - { id: \(longest), customer: c, amount: 6, action: warning }
            """))
        #expect(config.limits.map(\.id) == ["Big_spender-1.v2:eu", longest])
    }

    @Test func aBadIDSuggestsAValidOne() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - { id: \"big spender!\", customer: c, amount: 5, action: warning }")))
        #expect(problem.line == 8)
        #expect(problem.column == 11)
        #expect(problem.path == "limits[0].id")
        #expect(problem.message == #"the limit id "big spender!" may use only letters, digits, _, -, . and : "#
            + "(1 to 128 of them), e.g. id: big-spender-")
        let tooLong = try #require(onlyProblem(limitsConfig(
            "  - { id: \(String(repeating: "a", count: 129)), customer: c, amount: 5, action: warning }")))
        #expect(tooLong.path == "limits[0].id")
        #expect(tooLong.message.contains("(1 to 128 of them)"))
    }

    @Test func aDuplicateIDIsReportedAtTheSecondLimit() throws {
        let problem = try #require(onlyProblem(limitsConfig("""
              - { id: cap, customer: a, amount: 5, action: warning }
              - { customer: b, amount: 5, action: warning }
              - { id: cap, customer: c, amount: 9, action: disable }
            """)))
        #expect(problem.line == 10)
        #expect(problem.column == 11)
        #expect(problem.path == "limits[2].id")
        #expect(problem.message == #"the limit id "cap" is already used by limits[0] (line 8); give each limit its own id"#)
    }

    @Test func aDuplicateDerivedIDSuggestsAddingAnID() throws {
        let problem = try #require(onlyProblem(limitsConfig("""
              - { plan: starter, amount: 100, action: warning }
              - { plan: starter, amount: 200, action: disable }
            """)))
        #expect(problem.line == 9)
        #expect(problem.path == "limits[1]")
        #expect(problem.message == #"this limit's id would be "plan:starter:amount" (from its plan and amount), which "#
            + "limits[0] (line 8) already has; limits on the same target need ids of their own: add one, "
            + "e.g. id: plan:starter:amount-2")
        let fixed = try load(limitsConfig("""
              - { plan: starter, amount: 100, action: warning }
              - { id: starter-hard-cap, plan: starter, amount: 200, action: disable }
            """))
        #expect(fixed.limits.map(\.id) == ["plan:starter:amount", "starter-hard-cap"])
    }

    @Test func anExplicitIDMayNotTakeADerivedOne() throws {
        let problem = try #require(onlyProblem(limitsConfig("""
              - { customer: cus_1, meter: api_calls, quantity: 5, action: warning }
              - { id: "customer:cus_1:api_calls", customer: cus_2, amount: 5, action: warning }
            """)))
        #expect(problem.line == 9)
        #expect(problem.path == "limits[1].id")
    }

    @Test func theSameTargetOnOtherOwnersIsNoDuplicate() throws {
        let config = try load(limitsConfig("""
              - { plan: starter, amount: 100, action: warning }
              - { customer: starter, amount: 100, action: warning }
              - { plan: starter, meter: api_calls, quantity: 100, action: warning }
            """))
        #expect(config.limits.map(\.id) == ["plan:starter:amount", "customer:starter:amount", "plan:starter:api_calls"])
    }
}

@Suite struct LimitsConfigShapeTests {
    @Test func limitsMustBeAList() throws {
        let problem = try #require(onlyProblem(sectionConfig("limits:\n  customer: c")))
        #expect(problem.line == 3)
        #expect(problem.path == "limits")
        #expect(problem.message == "limits must be a list of limits, e.g. - { customer: cus_42, amount: \"500\", "
            + "action: warning }; found a mapping")
    }

    @Test func eachLimitMustBeAMapping() throws {
        let problem = try #require(onlyProblem(limitsConfig("  - cus_42")))
        #expect(problem.line == 8)
        #expect(problem.path == "limits[0]")
        #expect(problem.message.hasPrefix("each limit is a mapping, e.g. - { customer: cus_42"))
        #expect(problem.message.hasSuffix("found \"cus_42\""))
    }

    @Test func oneBadLimitDoesNotHideTheOthersProblems() {
        let found = problems(limitsConfig("""
              - { customer: c, amount: nope, action: warning, notify_at: [0] }
              - { plan: starter }
            """))
        #expect(found.map(\.line) == [8, 8, 9, 9])
        #expect(found.map(\.path) == ["limits[0].amount", "limits[0].notify_at[0]", "limits[1]", "limits[1]"])
        #expect(found[2].message.hasPrefix("this limit has no threshold"))
        #expect(found[3].message.hasPrefix("this limit has no action"))
    }
}

// MARK: - Alerts

@Suite struct AlertsConfigTests {
    @Test func logAndWebhooksAreRead() throws {
        let config = try load(sectionConfig("""
            alerts:
              log: /var/log/tally/alerts.ndjson
              webhooks:
                - { url: "https://hooks.example.com/tally?x=1", secret_env: _HOOK_SECRET_2 }
                - url: http://10.0.0.7:9000/
            """))
        #expect(config.alerts == AlertSettings(log: "/var/log/tally/alerts.ndjson", webhooks: [
            WebhookSettings(url: "https://hooks.example.com/tally?x=1", secretEnvironmentVariable: "_HOOK_SECRET_2"),
            WebhookSettings(url: "http://10.0.0.7:9000/", secretEnvironmentVariable: nil),
        ]))
    }

    @Test func logOffTurnsTheLogOff() throws {
        let config = try load(sectionConfig("alerts: { log: off }"))
        #expect(config.alerts.log == nil)
        let quoted = try load(sectionConfig("alerts: { log: \"false\" }"))
        #expect(quoted.alerts.log == "false")
    }

    @Test(arguments: [
        ("false", "\"false\" is taken for a switch, not a path; write log: off for no alert log, or the log's path, "
            + "e.g. log: alerts.ndjson (quote a file really named so: log: \"false\")"),
        ("", "log has no value; write the alert log's path, e.g. log: alerts.ndjson, or log: off for no alert log"),
        ("\"\"", "the value is empty; write the alert log's path, e.g. log: alerts.ndjson, or log: off for no alert log"),
        ("[a]", "log must be a single value; write the alert log's path, e.g. log: alerts.ndjson, or log: off for "
            + "no alert log; found a list"),
    ])
    func badLogs(value: String, message: String) throws {
        let problem = try #require(onlyProblem(sectionConfig("alerts:\n  log: \(value)")))
        #expect(problem.line == 3)
        #expect(problem.path == "alerts.log")
        #expect(problem.message == message)
    }

    @Test(arguments: [
        ("\"ftp://example.com/x\"", "\"ftp://example.com/x\" is not an http or https URL; write it with its scheme, "
            + "e.g. url: \"https://hooks.example.com/tally\""),
        ("hooks.example.com/tally", "\"hooks.example.com/tally\" is not an http or https URL; write it with its scheme, "
            + "e.g. url: \"https://hooks.example.com/tally\" (here: url: \"https://hooks.example.com/tally\")"),
        ("\"http://\"", "\"http://\" has no host; write the server's name or address after the //, "
            + "e.g. url: \"https://hooks.example.com/tally\""),
        ("\"https:///tally\"", "\"https:///tally\" has no host; write the server's name or address after the //, "
            + "e.g. url: \"https://hooks.example.com/tally\""),
        ("\"https://hooks.example.com/my hook\"", "\"https://hooks.example.com/my hook\" contains a space or a control "
            + "character; percent-encode it (a space is %20), e.g. url: \"https://hooks.example.com/tally\""),
        ("\"http://ex%ample.com/\"", "\"http://ex%ample.com/\" is not a valid URL; percent-encode spaces and other "
            + "special characters, e.g. url: \"https://hooks.example.com/tally\""),
        ("\"http://h:99999/\"", "\"http://h:99999/\" has the port 99999; a port is a whole number from 1 to 65535, "
            + "e.g. url: \"https://hooks.example.com:8443/tally\""),
        ("\"http://user@/x\"", "\"http://user@/x\" has no host; write the server's name or address after the //, "
            + "e.g. url: \"https://hooks.example.com/tally\""),
    ])
    func badURLs(value: String, message: String) throws {
        let problem = try #require(onlyProblem(sectionConfig("alerts:\n  webhooks:\n    - url: \(value)")))
        #expect(problem.line == 4)
        #expect(problem.column == 12)
        #expect(problem.path == "alerts.webhooks[0].url")
        #expect(problem.message == message)
    }

    @Test func aWebhookNeedsAURL() throws {
        let problem = try #require(onlyProblem(sectionConfig("alerts:\n  webhooks:\n    - secret_env: HOOK")))
        #expect(problem.line == 4)
        #expect(problem.path == "alerts.webhooks[0]")
        #expect(problem.message == "this webhook has no url; add the address alerts are POSTed to, "
            + "e.g. url: \"https://hooks.example.com/tally\"")
    }

    @Test(arguments: ["1HOOK", "\"hunter2-s3cret!\"", "\"MY SECRET\""])
    func aBadSecretEnvIsRefusedWithoutEchoingIt(value: String) throws {
        let problem = try #require(onlyProblem(sectionConfig("alerts:\n  webhooks:\n    - { url: \"http://h\", secret_env: \(value) }")))
        #expect(problem.line == 4)
        #expect(problem.path == "alerts.webhooks[0].secret_env")
        #expect(problem.message == "secret_env is the name of the environment variable that holds the signing secret, "
            + "not the secret itself; write a name of letters, digits and _ that does not start with a digit, "
            + "e.g. secret_env: TALLY_WEBHOOK_SECRET")
        #expect(!problem.description.contains(value.replacing("\"", with: "")))
    }

    @Test func unknownKeysAreErrors() {
        let found = problems(sectionConfig("""
            alerts:
              logs: a.ndjson
              webhooks:
                - { url: "http://h", secret_evn: HOOK }
            """))
        #expect(found.map(\.line) == [3, 5])
        #expect(found.map(\.path) == ["alerts.logs", "alerts.webhooks[0].secret_evn"])
        #expect(found.map(\.message) == [#"unknown key "logs"; did you mean "log"?"#, #"unknown key "secret_evn"; did you mean "secret_env"?"#])
    }

    @Test func shapesAreChecked() {
        let found = problems(sectionConfig("""
            alerts:
              webhooks: http://h
            """))
        #expect(found.map(\.path) == ["alerts.webhooks"])
        #expect(found.first?.message == "webhooks must be a list of webhooks, e.g. webhooks: [{ url: "
            + "\"https://hooks.example.com/tally\", secret_env: TALLY_WEBHOOK_SECRET }]; found \"http://h\"")

        let item = problems(sectionConfig("alerts:\n  webhooks: [\"http://h\"]"))
        #expect(item.map(\.path) == ["alerts.webhooks[0]"])
        #expect(item.first?.message.contains("(here: - { url: \"http://h\" })") == true)

        let section = problems(sectionConfig("alerts: [log]"))
        #expect(section.map(\.line) == [2])
        #expect(section.first?.message == "alerts must be a mapping of settings, e.g. alerts: { log: alerts.ndjson }; found a list")
    }
}

// MARK: - HTTP

@Suite struct HTTPConfigTests {
    @Test(arguments: ["127.0.0.1:8080", "[::1]:8080", "localhost:1", "0.0.0.0:65535", "[2001:db8::7]:443", "api-1.internal:80"])
    func validAddresses(listen: String) throws {
        let config = try load(sectionConfig("http: { listen: \"\(listen)\" }"))
        #expect(config.http.listen == listen)
    }

    @Test(arguments: [
        ("127.0.0.1", "\"127.0.0.1\" has no port; write HOST:PORT, e.g. listen: 127.0.0.1:8080 (0.0.0.0:8080 for "
            + "every interface, [::1]:8080 for IPv6)"),
        ("8080", "\"8080\" has no host; write the address to listen on before the port, e.g. listen: 127.0.0.1:8080"),
        (":8080", "\":8080\" has no host; write HOST:PORT, e.g. listen: 127.0.0.1:8080 (0.0.0.0:8080 for every "
            + "interface, [::1]:8080 for IPv6)"),
        ("::1:8080", "\"::1:8080\" looks like an IPv6 address without brackets; write it as [ADDRESS]:PORT, "
            + "e.g. listen: [::1]:8080"),
        ("127.0.0.1:0", "\"127.0.0.1:0\" has the port \"0\"; a port is a whole number from 1 to 65535, e.g. listen: 127.0.0.1:8080"),
        ("127.0.0.1:65536", "\"127.0.0.1:65536\" has the port \"65536\"; a port is a whole number from 1 to 65535, "
            + "e.g. listen: 127.0.0.1:8080"),
        ("127.0.0.1:http", "\"127.0.0.1:http\" has the port \"http\"; a port is a whole number from 1 to 65535, "
            + "e.g. listen: 127.0.0.1:8080"),
        ("127.0.0.1:", "\"127.0.0.1:\" has no port; a port is a whole number from 1 to 65535, e.g. listen: 127.0.0.1:8080"),
        ("[::1]", "\"[::1]\" has no port; write it after the ], e.g. listen: [::1]:8080"),
        ("[::1:8080", "\"[::1:8080\" opens a [ it does not close; write HOST:PORT, e.g. listen: 127.0.0.1:8080 "
            + "(0.0.0.0:8080 for every interface, [::1]:8080 for IPv6)"),
        ("[local]:80", "\"local\" is not an IPv6 address; brackets hold one, e.g. listen: [::1]:8080"),
        ("http://h:80/x", "\"http://h:80/x\" is a URL; listen takes HOST:PORT without a scheme, e.g. listen: h:80"),
        ("my host:80", "\"my host\" is not a host name or IP address; write HOST:PORT, e.g. listen: 127.0.0.1:8080 "
            + "(0.0.0.0:8080 for every interface, [::1]:8080 for IPv6)"),
    ])
    func badAddresses(listen: String, message: String) throws {
        let problem = try #require(onlyProblem(sectionConfig("http:\n  listen: \"\(listen)\"")))
        #expect(problem.line == 3)
        #expect(problem.column == 11)
        #expect(problem.path == "http.listen")
        #expect(problem.message == message)
    }

    @Test func digestsAreNormalizedToLowercase() throws {
        let other = "580843D03D2216FF1A275D0991BAD66E4D1AF871171D929E9DE604B7959F9BCA"
        let config = try load(sectionConfig("http:\n  api_keys_sha256:\n    - \(testKeyDigest)\n    - \"\(other)\""))
        #expect(config.http.apiKeySHA256 == [testKeyDigest, other.lowercased()])
    }

    @Test func badDigestsSayHowToComputeOneWithoutEchoingTheEntry() {
        let key = "sk_live_abcdef"
        let nonHex = String(testKeyDigest.dropLast()) + "g"
        let found = problems(sectionConfig("""
            http:
              api_keys_sha256:
                - \(key)
                - \(testKeyDigest)
                - \(nonHex)
                - [x]
            """))
        #expect(found.map(\.line) == [4, 6, 7])
        #expect(found.map(\.path) == ["http.api_keys_sha256[0]", "http.api_keys_sha256[2]", "http.api_keys_sha256[3]"])
        let advice = "list the SHA-256 digest of each key (64 hexadecimal characters), not the key itself; "
            + "printf %s \"$KEY\" | sha256sum prints it"
        #expect(found.map(\.message) == [
            "this entry is not a SHA-256 digest: it is 14 characters long, not 64; \(advice)",
            "this entry is not a SHA-256 digest: it has characters that are not hexadecimal (0-9, a-f); \(advice)",
            "expected a digest; found a list; \(advice)",
        ])
        #expect(!found.map(\.description).joined().contains(key))
    }

    @Test func digestsMustBeAList() throws {
        let problem = try #require(onlyProblem(sectionConfig("http:\n  api_keys_sha256: \(testKeyDigest)")))
        #expect(problem.line == 3)
        #expect(problem.path == "http.api_keys_sha256")
        #expect(problem.message == "api_keys_sha256 must be a list of digests, e.g. api_keys_sha256: [\"<64 hex "
            + "characters>\"]; found a single value; list the SHA-256 digest of each key (64 hexadecimal characters), "
            + "not the key itself; printf %s \"$KEY\" | sha256sum prints it")
        #expect(!problem.message.contains(testKeyDigest))
    }

    @Test func unknownKeysAndShapesAreErrors() {
        let found = problems(sectionConfig("http:\n  listen_on: 127.0.0.1:80\n  secret: []"))
        #expect(found.map(\.path) == ["http.listen_on", "http.secret"])
        #expect(found.first?.message == #"unknown key "listen_on"; did you mean "listen"?"#)
        #expect(found.last?.message == "unknown key \"secret\"; the keys allowed in http are listen, api_keys_sha256, api_keys, portal_secret_env, header_timeout, body_timeout, portal_frame_ancestors")
        let section = problems(sectionConfig("http: 8080"))
        #expect(section.first?.message == "http must be a mapping of settings, e.g. http: { listen: 127.0.0.1:8080 }; "
            + "found \"8080\"")
    }
}
