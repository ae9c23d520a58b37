import TallyConfiguration
import Metering
import Testing

private func decimal(_ text: String) -> ExactDecimal {
    guard let value = ExactDecimal(text) else { fatalError("bad decimal literal \(text)") }
    return value
}

private func load(_ yaml: String) throws -> TallyConfig {
    try ConfigLoader.parse(yaml: yaml, fileName: "tally.yaml")
}

private func problems(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigProblem] {
    do {
        let config = try ConfigLoader.parse(yaml: yaml, fileName: "tally.yaml")
        Issue.record("expected problems, but the config loaded: \(config.plans)", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.problems
    }
}

/// Meters on lines 2–4, one plan `starter` in USD whose prices start at line 9.
private func planConfig(_ prices: String) -> String {
    """
    meters:
      - { code: api_calls, aggregation: count }
      - { code: tokens, aggregation: sum, group_by: [model, region] }
      - { code: storage_gb, aggregation: max }
    plans:
      - code: starter
        currency: USD
        prices:
    \(prices)
    """
}

@Suite struct PlanLoadingTests {
    @Test func theDesignExamplePlansAreRead() throws {
        let config = try load("""
            meters:
              - { code: api_calls, aggregation: count }
              - { code: storage_gb, aggregation: max }
              - { code: tokens, aggregation: sum, group_by: [model], filter: { billable: "true" } }
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
            limits: [{ plan: starter, amount: "100", action: warning }]
            """)
        #expect(config.plans == [
            Plan(code: "starter", currency: "USD", prices: [
                Price(meter: "api_calls", model: .graduated([
                    Tier(upTo: 1000, unitAmount: 0),
                    Tier(upTo: 100_000, unitAmount: decimal("0.002")),
                    Tier(upTo: nil, unitAmount: decimal("0.001"), flatAmount: 5),
                ])),
                Price(meter: "storage_gb", model: .perUnit(unitAmount: decimal("0.1"), freeUnits: 5, transform: nil)),
                Price(
                    meter: "tokens",
                    model: .package(size: 1000, amount: decimal("0.02"), freeUnits: 0, round: .up),
                    dimensions: [
                        PriceDimension(property: "model", value: "large", overrides: PriceOverride(packageAmount: decimal("0.06"))),
                    ]),
            ]),
        ])
        #expect(config.defaultPlan == "starter")
        #expect(config.customers == [CustomerPlanAssignment(customer: "cus_42", plan: "starter")])
        #expect(config.ignoredSections.isEmpty)
        #expect(config.plan("starter")?.price(forMeter: "storage_gb")?.model.name == "per_unit")
        #expect(config.plan("starter")?.price(forMeter: "nope") == nil)
        #expect(config.plan("nope") == nil)
    }

    @Test func dimensionsResolvePerGroup() throws {
        let config = try load(planConfig("""
                  - meter: tokens
                    model: package
                    package_size: 1000
                    package_amount: "0.02"
                    minimum: "1"
                    dimensions:
                      model: { large: { package_amount: "0.06" }, huge: { package_amount: "0.10" } }
            """))
        let price = try #require(config.plans.first?.price(forMeter: "tokens"))
        let large = price.price(forGroup: ["model": "large", "region": "eu"])
        #expect(large.model == .package(size: 1000, amount: decimal("0.06"), freeUnits: 0, round: .up))
        #expect(large.dimensions.isEmpty)
        #expect(large.minimum == 1)
        #expect(price.price(forGroup: ["model": "huge"]).model
            == .package(size: 1000, amount: decimal("0.1"), freeUnits: 0, round: .up))
        #expect(price.price(forGroup: ["model": "small"]).model == price.model)
        #expect(price.price(forGroup: [:]).model == price.model)
        #expect(price.price(forGroup: ["region": "large"]).model == price.model)
    }

    @Test func dimensionsOnDifferentPropertiesCombine() throws {
        let price = try PriceParser.parse("""
            model: graduated
            tiers: [{ up_to: inf, unit_amount: "1" }]
            dimensions:
              region: { eu: { tiers: [{ up_to: inf, unit_amount: "2" }] } }
            """)
        #expect(price.price(forGroup: ["region": "eu"]).model == .graduated([Tier(upTo: nil, unitAmount: 2)]))
        #expect(price.price(forGroup: ["region": "us"]).model == .graduated([Tier(upTo: nil, unitAmount: 1)]))
    }

    @Test func everyModelIsRead() throws {
        let config = try load(planConfig("""
                  - { meter: api_calls, model: per_unit, unit_amount: "10.00", transform: { divide_by: 60, round: down } }
                  - { meter: tokens, model: volume, tiers: [{ up_to: 5, unit_amount: 7, flat_amount: 1 }, { up_to: inf, flat_amount: "2" }] }
                  - { meter: storage_gb, model: flat, amount: "49.99", minimum: 0, maximum: "100" }
            """))
        let prices = try #require(config.plans.first?.prices)
        #expect(prices[0].model == .perUnit(
            unitAmount: 10, freeUnits: 0, transform: PriceModel.Transform(divideBy: 60, round: .down)))
        #expect(prices[1].model == .volume([
            Tier(upTo: 5, unitAmount: 7, flatAmount: 1), Tier(upTo: nil, unitAmount: 0, flatAmount: 2),
        ]))
        #expect(prices[2].model == .flat(amount: decimal("49.99")))
        #expect(prices[2].minimum == 0)
        #expect(prices[2].maximum == 100)
        #expect(prices.map(\.model.name) == ["per_unit", "volume", "flat"])
    }

    @Test func packageRoundsDownWhenAsked() throws {
        let config = try load(planConfig("""
                  - { meter: api_calls, model: package, package_size: "2.5", package_amount: 1, free_units: 10, round: down }
            """))
        #expect(config.plans.first?.prices.first?.model
            == .package(size: decimal("2.5"), amount: 1, freeUnits: 10, round: .down))
    }

    @Test(arguments: [
        ("0.1", "0.1"), ("\"0.10\"", "0.1"), ("'0.000000000001'", "0.000000000001"), ("1e-3", "0.001"),
        ("12", "12"), ("0", "0"), ("999999999999999999.999999999999", "999999999999999999.999999999999"),
    ])
    func numbersAreReadExactlyFromTheirText(written: String, expected: String) throws {
        let config = try load(planConfig("      - { meter: api_calls, model: per_unit, unit_amount: \(written) }"))
        #expect(config.plans.first?.prices.first?.model
            == .perUnit(unitAmount: decimal(expected), freeUnits: 0, transform: nil))
    }

    @Test func plansMayComeBeforeMeters() throws {
        let config = try load("""
            customers: [{ id: cus_1, plan: pro }]
            default_plan: free
            plans:
              - { code: free, currency: EUR, prices: [] }
              - { code: pro, currency: JPY, prices: [{ meter: api_calls, model: flat, amount: 1000 }] }
            meters: [{ code: api_calls, aggregation: count }]
            """)
        #expect(config.plans.map(\.code) == ["free", "pro"])
        #expect(config.plans.map(\.currency) == ["EUR", "JPY"])
        #expect(config.plan(forCustomer: "cus_1")?.code == "pro")
        #expect(config.plan(forCustomer: "cus_other")?.code == "free")
    }

    @Test func withoutADefaultPlanUnlistedCustomersHaveNone() throws {
        let config = try load(planConfig("      - { meter: api_calls, model: flat, amount: 1 }")
            + "\ncustomers: [{ id: cus_1, plan: starter }]")
        #expect(config.defaultPlan == nil)
        #expect(config.plan(forCustomer: "cus_1")?.code == "starter")
        #expect(config.plan(forCustomer: "cus_2") == nil)
    }

    @Test func emptySectionsMeanNone() throws {
        let config = try load("meters: [{ code: a, aggregation: sum }]\nplans:\ndefault_plan:\ncustomers:\n")
        #expect(config.plans.isEmpty)
        #expect(config.defaultPlan == nil)
        #expect(config.customers.isEmpty)
    }

    @Test func theMemberwiseInitializerStillWorksWithoutPlans() {
        let config = TallyConfig(meters: [Meter(code: "a", aggregation: .sum)])
        #expect(config.plans.isEmpty && config.customers.isEmpty && config.defaultPlan == nil)
        #expect(config.plan(forCustomer: "x") == nil)
    }
}

@Suite struct PriceProblemTests {
    /// A plan price on line 9 with one problem: where it is and what the message says.
    @Test(arguments: [
        ("      - { meter: api_calls, model: tiered }", "plans[0].prices[0].model", "did you mean \"tiered\"|is not a known price model"),
        ("      - { meter: api_calls, unit_amount: 1 }", "plans[0].prices[0]", "has no model; add one: model: per_unit | graduated"),
        ("      - { meter: api_calls, model: per_unit }", "plans[0].prices[0]", "a per_unit price needs unit_amount"),
        ("      - { meter: api_calls, model: flat }", "plans[0].prices[0]", "a flat price needs amount"),
        ("      - { meter: api_calls, model: graduated }", "plans[0].prices[0]", "a graduated price needs tiers"),
        ("      - { meter: api_calls, model: package, package_amount: 1 }", "plans[0].prices[0]", "a package price needs package_size"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: \"-1\" }", "plans[0].prices[0].unit_amount", "-1 is negative"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: \"0.0000000000001\" }", "plans[0].prices[0].unit_amount", "has 13 decimal places; at most 12"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: abc }", "plans[0].prices[0].unit_amount", "\"abc\" is not a decimal number"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: .5 }", "plans[0].prices[0].unit_amount", "0.5, not .5"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: 1_000 }", "plans[0].prices[0].unit_amount", "without digit separators"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: 1000000000000000000 }", "plans[0].prices[0].unit_amount", "below 10^18"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: [1] }", "plans[0].prices[0].unit_amount", "found a list"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: }", "plans[0].prices[0].unit_amount", "has no value"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: 1, free_units: -5 }", "plans[0].prices[0].free_units", "negative"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: 1, tiers: [] }", "plans[0].prices[0].tiers", "tiers is not used by per_unit prices (only by graduated and volume prices)"),
        ("      - { meter: api_calls, model: graduated, unit_amount: 1, tiers: [{ up_to: inf, unit_amount: 1 }] }", "plans[0].prices[0].unit_amount", "inside each tier"),
        ("      - { meter: api_calls, model: per_unit, unit_amout: 1 }", "plans[0].prices[0].unit_amout", "did you mean \"unit_amount\""),
        ("      - { model: per_unit, unit_amount: 1 }", "plans[0].prices[0]", "names no meter"),
        ("      - { meter: api_cals, model: per_unit, unit_amount: 1 }", "plans[0].prices[0].meter", "unknown meter \"api_cals\"; did you mean \"api_calls\"?"),
        ("      - { meter: api_calls, model: graduated, tiers: [] }", "plans[0].prices[0].tiers", "tiers is empty"),
        ("      - { meter: api_calls, model: graduated, tiers: { up_to: inf } }", "plans[0].prices[0].tiers", "tiers must be a list"),
        ("      - { meter: api_calls, model: volume, tiers: [{ up_to: 10, unit_amount: 1 }] }", "plans[0].prices[0].tiers[0].up_to", "the last tier must be up_to: inf"),
        ("      - { meter: api_calls, model: volume, tiers: [{ up_to: inf, unit_amount: 1 }, { up_to: inf, unit_amount: 1 }] }", "plans[0].prices[0].tiers[0].up_to", "only the last tier can be up_to: inf"),
        ("      - { meter: api_calls, model: volume, tiers: [{ up_to: 10, unit_amount: 1 }, { up_to: 10, unit_amount: 1 }, { up_to: inf, unit_amount: 1 }] }", "plans[0].prices[0].tiers[1].up_to", "up_to 10 is not above the previous tier's up_to 10 (plans[0].prices[0].tiers[0])"),
        ("      - { meter: api_calls, model: volume, tiers: [{ up_to: 0, unit_amount: 1 }, { up_to: inf, unit_amount: 1 }] }", "plans[0].prices[0].tiers[0].up_to", "must be above 0"),
        ("      - { meter: api_calls, model: volume, tiers: [{ up_to: .inf, unit_amount: 1 }] }", "plans[0].prices[0].tiers[0].up_to", "write up_to: inf"),
        ("      - { meter: api_calls, model: volume, tiers: [{ up_to: inf }] }", "plans[0].prices[0].tiers[0]", "this tier has no price"),
        ("      - { meter: api_calls, model: volume, tiers: [{ unit_amount: 1 }] }", "plans[0].prices[0].tiers[0]", "this tier has no up_to"),
        ("      - { meter: api_calls, model: volume, tiers: [5] }", "plans[0].prices[0].tiers[0]", "each tier is a mapping"),
        ("      - { meter: api_calls, model: package, package_size: 0, package_amount: 1 }", "plans[0].prices[0].package_size", "0 must be above 0"),
        ("      - { meter: api_calls, model: package, package_size: 10, package_amount: 1, round: nearest }", "plans[0].prices[0].round", "is not a known rounding; use one of up, down"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: 1, transform: { divide_by: 0, round: up } }", "plans[0].prices[0].transform.divide_by", "must be above 0"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: 1, transform: { divide_by: 60 } }", "plans[0].prices[0].transform", "transform needs round: up"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: 1, transform: { round: up } }", "plans[0].prices[0].transform", "transform needs divide_by"),
        ("      - { meter: api_calls, model: per_unit, unit_amount: 1, transform: 60 }", "plans[0].prices[0].transform", "transform must be a mapping"),
        ("      - { meter: api_calls, model: flat, amount: 1, minimum: 10, maximum: 5 }", "plans[0].prices[0].minimum", "minimum 10 is above maximum 5"),
        ("      - { meter: api_calls, model: flat, amount: 1, dimensions: { model: { large: { amount: 2 } } } }", "plans[0].prices[0].dimensions", "dimensions apply only to meters with group_by, and meter api_calls has none"),
        ("      - { meter: tokens, model: flat, amount: 1, dimensions: { tier: { gold: { amount: 2 } } } }", "plans[0].prices[0].dimensions.tier", "\"tier\" is not in meter tokens's group_by [model, region]"),
        ("      - { meter: tokens, model: flat, amount: 1, dimensions: { model: { large: { unit_amount: 2 } } } }", "plans[0].prices[0].dimensions.model.large.unit_amount", "a flat price cannot override unit_amount; its groups may override amount only"),
        ("      - { meter: tokens, model: flat, amount: 1, dimensions: { model: { large: {} } } }", "plans[0].prices[0].dimensions.model.large", "the overrides for a group are a mapping"),
        ("      - { meter: tokens, model: flat, amount: 1, dimensions: { model: { large: { amount: -2 } } } }", "plans[0].prices[0].dimensions.model.large.amount", "negative"),
        ("      - { meter: tokens, model: flat, amount: 1, dimensions: { model: [large] } }", "plans[0].prices[0].dimensions.model", "must map property values to overrides"),
        ("      - { meter: tokens, model: flat, amount: 1, dimensions: { model: { large: { amount: 2 } }, region: { eu: { amount: 3 } } } }", "plans[0].prices[0].dimensions.region.eu", "both model and region override amount"),
        ("      - 42", "plans[0].prices[0]", "a price is a mapping"),
    ])
    func onePriceProblem(price: String, path: String, fragment: String) {
        let found = problems(planConfig(price))
        #expect(found.count == 1, "\(found)")
        guard let problem = found.first else { return }
        #expect(problem.line == 9)
        #expect(problem.path == path)
        let fragments = fragment.split(separator: "|").map(String.init)
        #expect(fragments.contains { problem.message.contains($0) }, "\(problem.message)")
    }

    @Test func aPriceForAMeterThatIsItselfWrongIsNotReportedTwice() {
        let found = problems("""
            meters: [{ code: broken, aggregation: total }]
            plans: [{ code: p, currency: USD, prices: [{ meter: broken, model: flat, amount: 1 }] }]
            """)
        #expect(found.count == 1)
        #expect(found.first?.path == "meters[0].aggregation")
    }

    @Test func twoPricesForOneMeterInAPlan() {
        let found = problems(planConfig("""
                  - { meter: api_calls, model: flat, amount: 1 }
                  - { meter: api_calls, model: flat, amount: 2 }
            """))
        #expect(found.count == 1)
        #expect(found.first?.line == 10)
        #expect(found.first?.path == "plans[0].prices[1].meter")
        #expect(found.first?.message.contains("already has a price in this plan, plans[0].prices[0] (line 9)") == true)
    }

    @Test func everyProblemIsReportedWithItsLine() {
        let found = problems(planConfig("""
                  - meter: api_calls
                    model: graduated
                    tiers:
                      - { up_to: 100, unit_amount: "-1" }
                      - { up_to: 50, unit_amount: "1" }
                  - { meter: tokens, model: package, package_size: 0, package_amount: "0.0000000000001" }
            """))
        #expect(found.map(\.line) == [12, 13, 13, 14, 14])
        #expect(found[2].message.contains("the last tier must be up_to: inf"))
        #expect(found.map(\.path) == [
            "plans[0].prices[0].tiers[0].unit_amount", "plans[0].prices[0].tiers[1].up_to", "plans[0].prices[0].tiers[1].up_to",
            "plans[0].prices[1].package_size", "plans[0].prices[1].package_amount",
        ])
    }

    @Test func theErrorDescriptionNamesFileLineAndColumn() {
        do {
            _ = try ConfigLoader.parse(
                yaml: planConfig("      - { meter: api_calls, model: per_unit, unit_amount: \"-1\" }"), fileName: "tally.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("tally.yaml:9:59: plans[0].prices[0].unit_amount: -1 is negative"))
        }
    }
}

@Suite struct PlanProblemTests {
    private func only(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigProblem? {
        let found = problems(yaml, sourceLocation: sourceLocation)
        #expect(found.count == 1, "\(found)", sourceLocation: sourceLocation)
        return found.first
    }

    private let meters = "meters: [{ code: api_calls, aggregation: count }]\n"

    @Test func currencyMustBeISO4217() {
        let lower = only(meters + "plans: [{ code: p, currency: usd, prices: [] }]")
        #expect(lower?.line == 2)
        #expect(lower?.path == "plans[0].currency")
        #expect(lower?.message == "\"usd\" is not an ISO 4217 currency code; write it in capitals: currency: USD")
        let unknown = only(meters + "plans: [{ code: p, currency: ABC, prices: [] }]")
        #expect(unknown?.message.contains("write an active ISO 4217 code") == true)
        let withdrawn = only(meters + "plans: [{ code: p, currency: HRK, prices: [] }]")
        #expect(withdrawn?.path == "plans[0].currency")
    }

    @Test func aPlanNeedsCodeCurrencyAndPrices() {
        let found = problems(meters + "plans:\n  - { prices: [] }\n  - { code: q, currency: EUR }\n  - { code: r, currency: EUR, prices: [], extra: 1 }")
        #expect(found.map(\.line) == [3, 3, 4, 5])
        #expect(found[0].message.contains("this plan has no code"))
        #expect(found[1].message.contains("this plan has no currency"))
        #expect(found[2].message.contains("this plan has no prices"))
        #expect(found[3].message.contains("unknown key \"extra\""))
    }

    @Test func planCodesAreUnique() {
        let problem = only(meters + "plans:\n  - { code: p, currency: USD, prices: [] }\n  - { code: p, currency: EUR, prices: [] }")
        #expect(problem?.line == 4)
        #expect(problem?.path == "plans[1].code")
        #expect(problem?.message.contains("already used by plans[0] (line 3)") == true)
    }

    @Test func planCodesAreNames() {
        let problem = only(meters + "plans: [{ code: \"my plan\", currency: USD, prices: [] }]")
        #expect(problem?.message.contains("may use only letters, digits") == true)
    }

    @Test func plansMustBeAList() {
        let problem = only(meters + "plans: { code: p }")
        #expect(problem?.message.contains("plans must be a list of plans") == true)
        let prices = only(meters + "plans: [{ code: p, currency: USD, prices: { meter: api_calls } }]")
        #expect(prices?.message.contains("prices must be a list of prices") == true)
    }

    @Test func defaultPlanMustNameAPlan() {
        let problem = only(meters + "plans: [{ code: starter, currency: USD, prices: [] }]\ndefault_plan: startr")
        #expect(problem?.line == 3)
        #expect(problem?.path == "default_plan")
        #expect(problem?.message == "there is no plan \"startr\"; did you mean \"starter\"? use one of the plans defined under plans: starter")
        let none = only(meters + "default_plan: starter")
        #expect(none?.message.contains("the config defines no plans") == true)
    }

    @Test func aPlanWithProblemsIsStillAKnownName() {
        let found = problems(meters + "plans: [{ code: starter, currency: XXX, prices: [] }]\ndefault_plan: starter\n"
            + "customers: [{ id: c, plan: starter }]")
        #expect(found.map(\.path) == ["plans[0].currency"])
    }

    @Test func customersNameAPlan() {
        let yaml = meters + "plans: [{ code: starter, currency: USD, prices: [] }]\ncustomers:\n  - { id: cus_1, plan: pro }"
        let problem = only(yaml)
        #expect(problem?.line == 4)
        #expect(problem?.path == "customers[0].plan")
        #expect(problem?.message.contains("there is no plan \"pro\"") == true)
    }

    @Test func customerIdsAreUniqueAndShort() {
        let plans = meters + "plans: [{ code: starter, currency: USD, prices: [] }]\ncustomers:\n"
        let duplicate = only(plans + "  - { id: cus_1, plan: starter }\n  - { id: cus_1, plan: starter }")
        #expect(duplicate?.line == 5)
        #expect(duplicate?.path == "customers[1].id")
        #expect(duplicate?.message.contains("already listed at customers[0] (line 4)") == true)
        let long = only(plans + "  - { id: \(String(repeating: "x", count: 256)), plan: starter }")
        #expect(long?.message.contains("256 bytes long; ids are 1 to 255 bytes") == true)
        let longest = try? load(plans + "  - { id: \(String(repeating: "é", count: 127))x, plan: starter }")
        #expect(longest?.customers.first?.customer.utf8.count == 255)
        let empty = only(plans + "  - { id: \"\", plan: starter }")
        #expect(empty?.message.contains("the value is empty") == true)
        let missing = problems(plans + "  - { plan: starter }\n  - { id: c }\n  - cus_9")
        #expect(missing.map(\.line) == [4, 5, 6])
        #expect(missing[0].message.contains("this customer has no id"))
        #expect(missing[1].message.contains("this customer has no plan"))
        #expect(missing[2].message.contains("each customer is a mapping"))
    }
}

@Suite struct PriceParserTests {
    @Test func jsonAndYAMLGiveTheSamePrice() throws {
        let json = try PriceParser.parse(#"""
            {"model": "graduated", "minimum": "1.50",
             "tiers": [{"up_to": 5, "unit_amount": "7.00"}, {"up_to": "inf", "unit_amount": 6.5, "flat_amount": 1}]}
            """#)
        let yaml = try PriceParser.parse("""
            model: graduated
            minimum: 1.5
            tiers:
              - { up_to: 5, unit_amount: "7" }
              - { up_to: inf, unit_amount: "6.50", flat_amount: "1" }
            """)
        #expect(json == yaml)
        #expect(json == Price(
            model: .graduated([Tier(upTo: 5, unitAmount: 7), Tier(upTo: nil, unitAmount: decimal("6.5"), flatAmount: 1)]),
            minimum: decimal("1.5")))
    }

    @Test func aStandalonePriceMayNameAnyMeterOrNone() throws {
        #expect(try PriceParser.parse(#"{"model":"flat","amount":"5"}"#).meter == nil)
        #expect(try PriceParser.parse(#"{"meter":"anything","model":"flat","amount":"5"}"#).meter == "anything")
    }

    @Test func aStandalonePriceKeepsItsDimensions() throws {
        let price = try PriceParser.parse(#"{"model":"per_unit","unit_amount":"1","dimensions":{"region":{"eu":{"unit_amount":"2"}}}}"#)
        #expect(price.dimensions == [PriceDimension(property: "region", value: "eu", overrides: PriceOverride(unitAmount: 2))])
        #expect(price.price(forGroup: ["region": "eu"]).model == .perUnit(unitAmount: 2))
    }

    @Test func problemsHaveLinesAndColumnsInMultiLineJSON() {
        let text = """
            {
              "model": "volume",
              "tiers": [
                {"up_to": 10, "unit_amount": "1"},
                {"up_to": 5, "unit_amount": "-1"}
              ]
            }
            """
        do {
            _ = try PriceParser.parse(text, sourceName: "price.json")
            Issue.record("expected an error")
        } catch {
            #expect(error.fileName == "price.json")
            #expect(error.problems.map(\.line) == [5, 5, 5])
            #expect(error.problems.map(\.path) == ["tiers[1].up_to", "tiers[1].up_to", "tiers[1].unit_amount"])
            #expect(error.description.contains("price.json:5:15: tiers[1].up_to: up_to 5 is not above"))
        }
    }

    @Test func syntaxErrorsAndEmptyTextAreReported() {
        #expect(throws: ConfigError.self) { try PriceParser.parse("{\"model\": \"flat\", ") }
        do {
            _ = try PriceParser.parse("   ")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "--price: the price is empty; write one, e.g. {\"model\": \"per_unit\", \"unit_amount\": \"0.002\"}")
        }
        do {
            _ = try PriceParser.parse("[1, 2]")
            Issue.record("expected an error")
        } catch {
            #expect(error.problems.first?.message.contains("a price is a mapping") == true)
        }
    }

    @Test func unknownKeysAtTheTopAreNamed() {
        do {
            _ = try PriceParser.parse(#"{"model":"flat","amont":"5"}"#)
            Issue.record("expected an error")
        } catch {
            // The near miss is the only problem: "needs amount" would say the same again.
            #expect(error.problems.map(\.path) == ["amont"])
            #expect(error.problems.first?.message == "unknown key \"amont\"; did you mean \"amount\"?")
        }
        do {
            _ = try PriceParser.parse(#"{"model":"flat","price":"5"}"#)
            Issue.record("expected an error")
        } catch {
            #expect(error.problems.map(\.path) == ["", "price"])
            #expect(error.problems.first?.message == "a flat price needs amount; add it, e.g. amount: \"49.00\"")
            #expect(error.problems.last?.message.hasPrefix("unknown key \"price\"; the keys allowed at the top level are meter, model") == true)
        }
    }
}

@Suite struct ISO4217Tests {
    @Test func minorUnitsOfWellKnownCurrencies() {
        let expected = [
            "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "XOF": 0,
            "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3, "CLF": 4, "UYW": 4,
        ]
        for (code, units) in expected {
            #expect(ISO4217.minorUnits(of: code) == units, "\(code)")
        }
        #expect(ISO4217.name(of: "JPY") == "Yen")
    }

    @Test func onlyActiveCodesWithAMinorUnit() {
        for code in ["usd", "US", "USDD", "", "XAU", "XXX", "XTS", "XDR", "HRK", "ZWL"] {
            #expect(ISO4217.minorUnits(of: code) == nil, "\(code)")
        }
        #expect(ISO4217.codes.count >= 155)
        #expect(ISO4217.codes == ISO4217.codes.sorted())
        #expect(Set(ISO4217.codes).count == ISO4217.codes.count)
        #expect(ISO4217.codes.allSatisfy { code in
            code.utf8.count == 3 && code.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
        })
    }
}
