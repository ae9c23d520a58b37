import TallyConfiguration
import Metering
import Rating
import Testing

extension Quote {
    /// `tally quote`'s path: the price read from JSON or YAML text by `PriceParser`, then rated.
    fileprivate static func parse(
        price: String, sourceName: String = "--price", quantity: String, currency: String = "USD",
        rounding: String = RoundingMode.halfAwayFromZero.rawValue, group: [String] = []
    ) throws(QuoteError) -> Quote {
        let parsed: Price
        do {
            parsed = try PriceParser.parse(price, sourceName: sourceName)
        } catch {
            throw QuoteError(code: .invalidPrice, message: "the price has problems:\n\(error.description)")
        }
        return try parse(price: parsed, quantity: quantity, currency: currency, rounding: rounding, group: group)
    }
}

private let stripeGraduated = #"""
    {"model":"graduated","tiers":[{"up_to":5,"unit_amount":"7.00"},{"up_to":10,"unit_amount":"6.50"},
    {"up_to":"inf","unit_amount":"6.00"}]}
    """#

private func quoteError(
    price: String = #"{"model":"flat","amount":"5"}"#, quantity: String = "1", currency: String = "USD",
    rounding: String = "half_away_from_zero", group: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
) -> QuoteError? {
    do {
        let quote = try Quote.parse(price: price, quantity: quantity, currency: currency, rounding: rounding, group: group)
        Issue.record("expected an error, got \(quote.json)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

@Suite struct QuoteOutputTests {
    @Test func theStripeExampleAsJSON() throws {
        let quote = try Quote.parse(price: stripeGraduated, quantity: "6")
        #expect(quote.json == #"{"quantity":"6","currency":"USD","amount":"41.50","exact_amount":"41.5","lines":["#
            + #"{"tier":1,"quantity":"5","unit_amount":"7","flat_amount":"0","amount":"35"},"#
            + #"{"tier":2,"quantity":"1","unit_amount":"6.5","flat_amount":"0","amount":"6.5"}]}"#)
    }

    @Test func volumeAtTwentyFive() throws {
        let price = stripeGraduated.replacingOccurrences(of: "graduated", with: "volume")
        let quote = try Quote.parse(price: price, quantity: "25.0")
        #expect(quote.json == #"{"quantity":"25","currency":"USD","amount":"150.00","exact_amount":"150","lines":["#
            + #"{"tier":3,"quantity":"25","unit_amount":"6","flat_amount":"0","amount":"150"}]}"#)
    }

    @Test func untieredLinesHaveANullTier() throws {
        let quote = try Quote.parse(price: "{model: per_unit, unit_amount: \"10.00\", transform: {divide_by: 60, round: up}}", quantity: "150")
        #expect(quote.json == #"{"quantity":"150","currency":"USD","amount":"30.00","exact_amount":"30","lines":["#
            + #"{"tier":null,"quantity":"3","unit_amount":"10","flat_amount":"0","amount":"30"}]}"#)
    }

    @Test func yenHasNoDecimals() throws {
        let quote = try Quote.parse(price: "{model: per_unit, unit_amount: 1}", quantity: "1234.5", currency: "JPY")
        #expect(quote.json.hasPrefix(#"{"quantity":"1234.5","currency":"JPY","amount":"1235","exact_amount":"1234.5","#))
        let even = try Quote.parse(price: "{model: per_unit, unit_amount: 1}", quantity: "1234.5", currency: "JPY", rounding: "half_even")
        #expect(even.amount == 1234)
        #expect(even.json.contains(#""amount":"1234","#))
    }

    @Test func dinarsHaveThreeDecimals() throws {
        let quote = try Quote.parse(price: "{model: flat, amount: \"2.5\"}", quantity: "0", currency: "BHD")
        #expect(quote.json == #"{"quantity":"0","currency":"BHD","amount":"2.500","exact_amount":"2.5","lines":["#
            + #"{"tier":null,"quantity":"0","unit_amount":"0","flat_amount":"2.5","amount":"2.5"}]}"#)
    }

    @Test func halfCentsFollowTheRoundingMode() throws {
        let price = #"{"model":"per_unit","unit_amount":"0.001"}"#
        #expect(try Quote.parse(price: price, quantity: "2345").json.contains(#""amount":"2.35","exact_amount":"2.345""#))
        #expect(try Quote.parse(price: price, quantity: "2345", rounding: "half_even").json
            .contains(#""amount":"2.34","exact_amount":"2.345""#))
    }

    @Test func theMinimumShowsAsALastLine() throws {
        let quote = try Quote.parse(price: #"{"model":"per_unit","unit_amount":"0.5","minimum":"10"}"#, quantity: "4")
        #expect(quote.json == #"{"quantity":"4","currency":"USD","amount":"10.00","exact_amount":"10","lines":["#
            + #"{"tier":null,"quantity":"4","unit_amount":"0.5","flat_amount":"0","amount":"2"},"#
            + #"{"tier":null,"quantity":"0","unit_amount":"0","flat_amount":"8","amount":"8"}]}"#)
    }

    @Test func aGroupSelectsItsDimension() throws {
        let price = #"{"model":"package","package_size":1000,"package_amount":"0.02","dimensions":{"model":{"large":{"package_amount":"0.06"}}}}"#
        #expect(try Quote.parse(price: price, quantity: "2500").amount == d("0.06"))
        #expect(try Quote.parse(price: price, quantity: "2500", group: ["model=large"]).amount == d("0.18"))
        #expect(try Quote.parse(price: price, quantity: "2500", group: ["model=small"]).amount == d("0.06"))
        #expect(try Quote.parse(price: price, quantity: "2500", group: ["model="]).amount == d("0.06"))
    }

    @Test func theQuoteKeepsItsParts() throws {
        let quote = try Quote.parse(price: stripeGraduated, quantity: "25", currency: "EUR", rounding: "half_even")
        #expect(quote.currency == Currency(code: "EUR", minorUnits: 2))
        #expect(quote.rounding == .halfEven)
        #expect(quote.quantity == 25)
        #expect(quote.rating.exactAmount == d("157.5"))
        #expect(quote.amount == d("157.5"))
    }
}

@Suite struct QuoteErrorTests {
    @Test func aBadPriceListsItsProblemsWithLines() {
        let error = quoteError(price: "model: graduated\ntiers:\n  - { up_to: 5, unit_amount: \"-7\" }\n")
        #expect(error?.code == .invalidPrice)
        let lines = error?.message.split(separator: "\n").map(String.init) ?? []
        #expect(lines.count == 3)
        #expect(lines.first == "the price has problems:")
        #expect(lines.dropFirst().first?.hasPrefix("--price:3:14: tiers[0].up_to: the last tier must be up_to: inf") == true)
        #expect(lines.last?.hasPrefix("--price:3:30: tiers[0].unit_amount: -7 is negative") == true)
    }

    @Test func theSourceNameIsTheFile() {
        do {
            _ = try Quote.parse(price: "model: flat", sourceName: "price.yaml", quantity: "1")
            Issue.record("expected an error")
        } catch {
            #expect(error.message == "the price has problems:\nprice.yaml:1:1: a flat price needs amount; add it, e.g. amount: \"49.00\"")
        }
    }

    @Test func invalidJSONIsASyntaxError() {
        let error = quoteError(price: #"{"model": "flat", "amount": }"#)
        #expect(error?.code == .invalidPrice)
        #expect(error?.message.contains("--price:1:") == true)
    }

    @Test(arguments: ["abc", "", "1,5", "+1", ".5", "1e", "NaN"])
    func aQuantityMustBeADecimal(text: String) {
        let error = quoteError(quantity: text)
        #expect(error?.code == .invalidQuantity)
        #expect(error?.message.contains("is not a decimal number") == true)
    }

    @Test func aQuantityIsNotNegativeAndHasAtMostTwelveDecimals() {
        #expect(quoteError(quantity: "-1")?.message == "--quantity -1 is negative; quantities are 0 or more")
        #expect(quoteError(quantity: "0.0000000000001")?.message.contains("has 13 decimal places; at most 12") == true)
        #expect((try? Quote.parse(price: #"{"model":"flat","amount":"5"}"#, quantity: "1e3"))?.quantity == 1000)
    }

    @Test func theCurrencyMustBeKnown() {
        let lower = quoteError(currency: "usd")
        #expect(lower?.code == .unknownCurrency)
        #expect(lower?.message == "\"usd\" is not an ISO 4217 currency code; write it in capitals: --currency USD")
        #expect(quoteError(currency: "XYZ")?.message.contains("write an active ISO 4217 code") == true)
        #expect(quoteError(currency: "XAU")?.code == .unknownCurrency)
    }

    @Test func theRoundingModeMustBeKnown() {
        let error = quoteError(rounding: "up")
        #expect(error?.code == .invalidRounding)
        #expect(error?.message == "--rounding \"up\" is not a rounding mode; use half_away_from_zero or half_even")
    }

    @Test func groupsMustBePropertyValuePairsThePriceUses() {
        let price = #"{"model":"flat","amount":"5","dimensions":{"model":{"large":{"amount":"9"}}}}"#
        #expect(quoteError(price: price, group: ["large"])?.code == .invalidGroup)
        #expect(quoteError(price: price, group: ["=large"])?.message.contains("is not property=value") == true)
        #expect(quoteError(price: price, group: ["model=a", "model=b"])?.message.contains("gives model twice") == true)
        #expect(quoteError(price: price, group: ["region=eu"])?.message == "--group region=… changes nothing: its dimensions use model")
        #expect(quoteError(group: ["region=eu"])?.message == "--group region=… changes nothing: the price has no dimensions")
    }

    @Test func anAmountBeyondTheRangeIsReported() {
        let error = quoteError(price: #"{"model":"per_unit","unit_amount":"999999999999999999.999999999999"}"#,
                               quantity: "99999999999999999999999999.999999999999")
        #expect(error?.code == .overflow)
        #expect(error?.message.hasPrefix("the amount cannot be computed exactly: ") == true)
    }
}

@Suite struct CurrencyTests {
    @Test func namedCurrenciesCarryTheirMinorUnit() {
        let expected = ["USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3,
                        "IQD": 3, "LYD": 3, "CLF": 4, "UYW": 4]
        for (code, units) in expected {
            #expect(Currency.named(code) == Currency(code: code, minorUnits: units))
        }
        #expect(Currency.named("usd") == nil)
        #expect(Currency.named("XXX") == nil)
    }

    @Test func everyActiveCurrencyIsListed() {
        #expect(Currency.all.count >= 155)
        #expect(Currency.all.allSatisfy { (0...4).contains($0.minorUnits) })
        #expect(Currency.all.contains(Currency(code: "XCG", minorUnits: 2)))
        #expect(Currency.all.contains(Currency(code: "ZWG", minorUnits: 2)))
    }

    @Test func amountsAreWrittenWithTheMinorUnitsDecimals() {
        #expect(Currency(code: "USD", minorUnits: 2).formatted(39) == "39.00")
        #expect(Currency(code: "JPY", minorUnits: 0).formatted(1235) == "1235")
        #expect(Currency(code: "BHD", minorUnits: 3).formatted(d("-0.5")) == "-0.500")
    }
}
