import Metering
import Rating
import Testing

/// An exact decimal from a literal known to be valid.
func d(_ text: String) -> ExactDecimal {
    guard let value = ExactDecimal(text) else { fatalError("bad decimal literal \(text)") }
    return value
}

let usd = Currency.named("USD")!

/// `amount` rounded to USD with the default mode and written with cents: what a statement shows.
func dollars(_ rating: Rating) -> String {
    usd.formatted(Rater.round(rating.exactAmount, currency: usd, mode: .halfAwayFromZero))
}

/// Stripe's published example: up to 5 at 7.00, up to 10 at 6.50, then 6.00.
let stripeTiers = [Tier(upTo: 5, unitAmount: d("7.00")), Tier(upTo: 10, unitAmount: d("6.50")), Tier(upTo: nil, unitAmount: d("6.00"))]
/// Stripe's example with flat amounts: 5/10/15/20/inf, unit 5/4/3/2/1, flat 10/20/30/40/50.
let stripeFlatTiers = [
    Tier(upTo: 5, unitAmount: 5, flatAmount: 10), Tier(upTo: 10, unitAmount: 4, flatAmount: 20),
    Tier(upTo: 15, unitAmount: 3, flatAmount: 30), Tier(upTo: 20, unitAmount: 2, flatAmount: 40),
    Tier(upTo: nil, unitAmount: 1, flatAmount: 50),
]

private func rate(_ model: PriceModel, _ quantity: String, minimum: String? = nil, maximum: String? = nil) throws -> Rating {
    try Rater.rate(Price(model: model, minimum: minimum.map(d), maximum: maximum.map(d)), quantity: d(quantity))
}

private func line(_ tier: Int?, _ quantity: String, _ unit: String, _ flat: String, _ amount: String) -> RatingLine {
    RatingLine(tier: tier, quantity: d(quantity), unitAmount: d(unit), flatAmount: d(flat), amount: d(amount))
}

@Suite struct StripeExampleTests {
    @Test func volumeAndGraduatedAtSixAndTwentyFive() throws {
        #expect(dollars(try rate(.volume(stripeTiers), "6")) == "39.00")
        #expect(dollars(try rate(.graduated(stripeTiers), "6")) == "41.50")
        #expect(dollars(try rate(.volume(stripeTiers), "25")) == "150.00")
        #expect(dollars(try rate(.graduated(stripeTiers), "25")) == "157.50")
    }

    @Test func flatAmountsPerTier() throws {
        #expect(dollars(try rate(.volume(stripeFlatTiers), "12")) == "66.00")
        #expect(dollars(try rate(.graduated(stripeFlatTiers), "12")) == "111.00")
        #expect(dollars(try rate(.volume(stripeFlatTiers), "0")) == "10.00")
        #expect(dollars(try rate(.graduated(stripeFlatTiers), "0")) == "10.00")
    }

    @Test func graduatedLinesAtTwelve() throws {
        let rating = try rate(.graduated(stripeFlatTiers), "12")
        #expect(rating.lines == [line(1, "5", "5", "10", "35"), line(2, "5", "4", "20", "40"), line(3, "2", "3", "30", "36")])
        #expect(rating.exactAmount == 111)
        #expect(rating.adjustment == 0)
        #expect(rating.quantity == 12)
    }

    @Test func perUnitWithATransformRoundingUp() throws {
        let model = PriceModel.perUnit(unitAmount: d("10.00"), transform: .init(divideBy: 60, round: .up))
        let rating = try rate(model, "150")
        #expect(dollars(rating) == "30.00")
        #expect(rating.lines == [line(nil, "3", "10", "0", "30")])
    }
}

@Suite struct GraduatedTests {
    @Test(arguments: [
        ("0", "0", 1), ("1", "7", 1), ("5", "35", 1), ("5.5", "38.25", 2), ("10", "67.5", 2),
        ("10.000000000001", "67.500000000006", 3), ("11", "73.5", 3), ("0.25", "1.75", 1),
    ])
    func aroundTierBoundaries(quantity: String, amount: String, lineCount: Int) throws {
        let rating = try rate(.graduated(stripeTiers), quantity)
        #expect(rating.exactAmount == d(amount))
        #expect(rating.lines.count == lineCount)
        #expect(rating.lines.map(\.tier) == Array(1...lineCount))
    }

    @Test func aTierIsReachedOnlyAboveThePreviousBound() throws {
        // At exactly 5 the second tier (and its flat amount) is not reached; just above it is.
        #expect(try rate(.graduated(stripeFlatTiers), "5").lines == [line(1, "5", "5", "10", "35")])
        #expect(try rate(.graduated(stripeFlatTiers), "5.1").lines == [line(1, "5", "5", "10", "35"), line(2, "0.1", "4", "20", "20.4")])
    }

    @Test func zeroChargesTheFirstTiersFlatAmountOnly() throws {
        #expect(try rate(.graduated(stripeFlatTiers), "0").lines == [line(1, "0", "5", "10", "10")])
        #expect(try rate(.graduated(stripeTiers), "0").lines == [line(1, "0", "7", "0", "0")])
    }

    @Test func theDesignExampleTiers() throws {
        let tiers = [
            Tier(upTo: 1000, unitAmount: 0), Tier(upTo: 100_000, unitAmount: d("0.002")),
            Tier(upTo: nil, unitAmount: d("0.001"), flatAmount: 5),
        ]
        #expect(try rate(.graduated(tiers), "1000").exactAmount == 0)
        #expect(try rate(.graduated(tiers), "1001").exactAmount == d("0.002"))
        #expect(try rate(.graduated(tiers), "250000").exactAmount == d("353"))  // 198 + 150 + 5
    }

    @Test func aFiniteLastTierIsTreatedAsUnbounded() throws {
        let rating = try rate(.graduated([Tier(upTo: 5, unitAmount: 1), Tier(upTo: 10, unitAmount: 2)]), "12")
        #expect(rating.lines == [line(1, "5", "1", "0", "5"), line(2, "7", "2", "0", "14")])
    }

    @Test func noTiersRateToZero() throws {
        #expect(try rate(.graduated([]), "5").exactAmount == 0)
        #expect(try rate(.volume([]), "5").lines.isEmpty)
    }
}

@Suite struct VolumeTests {
    @Test(arguments: [
        ("0", "0", 1), ("5", "35", 1), ("5.5", "35.75", 2), ("10", "65", 2), ("10.5", "63", 3), ("0.5", "3.5", 1),
    ])
    func aroundTierBoundaries(quantity: String, amount: String, tier: Int) throws {
        let rating = try rate(.volume(stripeTiers), quantity)
        #expect(rating.exactAmount == d(amount))
        #expect(rating.lines.count == 1)
        #expect(rating.lines.first?.tier == tier)
        #expect(rating.lines.first?.quantity == d(quantity))
    }

    @Test func theWholeQuantityAtOneTierPlusItsFlatAmount() throws {
        #expect(try rate(.volume(stripeFlatTiers), "12").lines == [line(3, "12", "3", "30", "66")])
        #expect(try rate(.volume(stripeFlatTiers), "20").lines == [line(4, "20", "2", "40", "80")])
        #expect(try rate(.volume(stripeFlatTiers), "20.5").lines == [line(5, "20.5", "1", "50", "70.5")])
        #expect(try rate(.volume(stripeFlatTiers), "0").lines == [line(1, "0", "5", "10", "10")])
    }

    @Test func aQuantityBeyondAFiniteLastTierUsesTheLastTier() throws {
        #expect(try rate(.volume([Tier(upTo: 5, unitAmount: 1), Tier(upTo: 10, unitAmount: 2)]), "12").lines
            == [line(2, "12", "2", "0", "24")])
    }
}

@Suite struct PerUnitTests {
    @Test(arguments: [("0", "0"), ("3", "0"), ("5", "0"), ("5.5", "0.05"), ("7.25", "0.225"), ("105", "10")])
    func freeUnits(quantity: String, amount: String) throws {
        let rating = try rate(.perUnit(unitAmount: d("0.10"), freeUnits: 5), quantity)
        #expect(rating.exactAmount == d(amount))
        #expect(rating.lines.count == 1)
        #expect(rating.lines.first?.unitAmount == d("0.1"))
        #expect(rating.lines.first?.tier == nil)
    }

    @Test(arguments: [
        ("0", QuantityRounding.up, "0"), ("1", .up, "1"), ("60", .up, "1"), ("61", .up, "2"), ("150", .up, "3"),
        ("0.001", .up, "1"), ("1", .down, "0"), ("119.999", .down, "1"), ("120", .down, "2"), ("150", .down, "2"),
    ])
    func transformRoundsToWholeUnits(quantity: String, round: QuantityRounding, units: String) throws {
        let model = PriceModel.perUnit(unitAmount: d("10.00"), transform: .init(divideBy: 60, round: round))
        let rating = try rate(model, quantity)
        #expect(rating.lines.first?.quantity == d(units))
        #expect(try rating.exactAmount == d(units).multiplied(by: 10))
    }

    @Test func transformAppliesAfterFreeUnits() throws {
        // 150 seconds, 30 free: 120 billed → 2 minutes.
        let model = PriceModel.perUnit(unitAmount: 1, freeUnits: 30, transform: .init(divideBy: 60, round: .up))
        #expect(try rate(model, "150").lines.first?.quantity == 2)
        #expect(try rate(model, "20").lines.first?.quantity == 0)
    }

    @Test func aFractionalDivisor() throws {
        let model = PriceModel.perUnit(unitAmount: 1, transform: .init(divideBy: d("0.5"), round: .up))
        #expect(try rate(model, "1.2").exactAmount == 3)
    }

    @Test func aNegativeQuantityIsPricedAsZero() throws {
        let rating = try rate(.perUnit(unitAmount: 2), "-5")
        #expect(rating.exactAmount == 0)
        #expect(rating.quantity == -5)
        #expect(try rate(.graduated(stripeFlatTiers), "-1").exactAmount == 10)
    }
}

@Suite struct PackageAndFlatTests {
    @Test(arguments: [
        ("0", QuantityRounding.up, "0"), ("1", .up, "1"), ("1000", .up, "1"), ("1000.5", .up, "2"), ("2500", .up, "3"),
        ("999", .down, "0"), ("1999", .down, "1"), ("2000", .down, "2"),
    ])
    func packagesRound(quantity: String, round: QuantityRounding, packages: String) throws {
        let rating = try rate(.package(size: 1000, amount: d("0.02"), round: round), quantity)
        #expect(try rating.lines == [line(nil, packages, "0.02", "0", d(packages).multiplied(by: d("0.02")).description)])
    }

    @Test func freeUnitsNeverMakeANegativePackageCount() throws {
        let model = PriceModel.package(size: 10, amount: 3, freeUnits: 25)
        #expect(try rate(model, "0").lines.first?.quantity == 0)
        #expect(try rate(model, "24").exactAmount == 0)
        #expect(try rate(model, "25").exactAmount == 0)
        #expect(try rate(model, "25.1").exactAmount == 3)
        #expect(try rate(model, "46").exactAmount == 9)
    }

    @Test func flatChargesOnceWhateverTheQuantity() throws {
        for quantity in ["0", "1", "123456.789"] {
            let rating = try rate(.flat(amount: d("49.99")), quantity)
            #expect(rating.exactAmount == d("49.99"))
            #expect(rating.lines == [line(nil, quantity, "0", "49.99", "49.99")])
        }
    }
}

@Suite struct MinimumMaximumTests {
    private let model = PriceModel.perUnit(unitAmount: d("0.5"))

    @Test func theMinimumAddsAnAdjustmentLine() throws {
        let rating = try rate(model, "4", minimum: "10", maximum: "100")
        #expect(rating.exactAmount == 10)
        #expect(rating.adjustment == 8)
        #expect(rating.lines.count == 2)
        let adjustment = try #require(rating.lines.last)
        #expect(adjustment == RatingLine(tier: nil, quantity: 0, unitAmount: 0, flatAmount: 8, amount: 8, isAdjustment: true))
        #expect(rating.lines.first?.isAdjustment == false)
    }

    @Test func theMinimumAppliesToZeroUsage() throws {
        let rating = try rate(model, "0", minimum: "10")
        #expect(rating.exactAmount == 10)
        #expect(rating.adjustment == 10)
    }

    @Test func theMaximumRemovesTheExcess() throws {
        let rating = try rate(model, "500", minimum: "10", maximum: "100")
        #expect(rating.exactAmount == 100)
        #expect(rating.adjustment == -150)
        #expect(rating.lines.last == RatingLine(
            tier: nil, quantity: 0, unitAmount: 0, flatAmount: -150, amount: -150, isAdjustment: true))
    }

    @Test(arguments: ["20", "200"])
    func withinTheBoundsNothingChanges(quantity: String) throws {
        let rating = try rate(model, quantity, minimum: "10", maximum: "100")
        #expect(rating.adjustment == 0)
        #expect(rating.lines.count == 1)
        #expect(try rating.exactAmount == d(quantity).multiplied(by: d("0.5")))
    }

    @Test func tieredAmountsAreClampedToo() throws {
        let rating = try rate(.graduated(stripeTiers), "25", maximum: "150.25")
        #expect(rating.exactAmount == d("150.25"))
        #expect(rating.adjustment == d("-7.25"))
        #expect(rating.lines.map(\.tier) == [1, 2, 3, nil])
    }
}

@Suite struct RoundingTests {
    @Test(arguments: [
        ("2.345", "2.35", "2.34"), ("2.355", "2.36", "2.36"), ("2.3449", "2.34", "2.34"), ("0.005", "0.01", "0"),
        ("0.015", "0.02", "0.02"), ("-2.345", "-2.35", "-2.34"), ("39", "39", "39"), ("41.5", "41.5", "41.5"),
    ])
    func halfCentsInBothModes(exact: String, awayFromZero: String, even: String) {
        #expect(Rater.round(d(exact), currency: usd, mode: .halfAwayFromZero) == d(awayFromZero))
        #expect(Rater.round(d(exact), currency: usd, mode: .halfEven) == d(even))
    }

    @Test func aZeroDecimalCurrency() throws {
        let yen = try #require(Currency.named("JPY"))
        #expect(yen.minorUnits == 0)
        #expect(Rater.round(d("1234.5"), currency: yen, mode: .halfAwayFromZero) == 1235)
        #expect(Rater.round(d("1234.5"), currency: yen, mode: .halfEven) == 1234)
        #expect(Rater.round(d("1235.5"), currency: yen, mode: .halfEven) == 1236)
        #expect(Rater.round(d("0.4"), currency: yen, mode: .halfAwayFromZero) == 0)
        #expect(yen.formatted(Rater.round(d("1234.5"), currency: yen, mode: .halfAwayFromZero)) == "1235")
    }

    @Test func aThreeDecimalCurrency() throws {
        let dinar = try #require(Currency.named("BHD"))
        #expect(dinar.minorUnits == 3)
        #expect(Rater.round(d("1.2345"), currency: dinar, mode: .halfAwayFromZero) == d("1.235"))
        #expect(Rater.round(d("1.2345"), currency: dinar, mode: .halfEven) == d("1.234"))
        #expect(dinar.formatted(Rater.round(d("2"), currency: dinar, mode: .halfEven)) == "2.000")
        #expect(dinar.formatted(d("0.5")) == "0.500")
    }

    @Test func roundingHappensOncePerLineNotPerEvent() throws {
        // 1000 events of 1 unit at 0.005: rounding each event would charge 1000 × 0.01 = 10.00.
        let rating = try Rater.rate(Price(model: .perUnit(unitAmount: d("0.005"))), quantity: 1000)
        #expect(rating.exactAmount == 5)
        #expect(dollars(rating) == "5.00")
        #expect(Rater.round(d("0.005"), currency: usd, mode: .halfAwayFromZero) == d("0.01"))
    }
}

@Suite struct OverflowTests {
    @Test func anAmountTooLargeThrows() {
        let huge = ExactDecimal(significand: 100_000_000_000_000_000_000_000_000_000_000_000, scale: 0)  // 10^35
        #expect(throws: DecimalOverflow.self) {
            try Rater.rate(Price(model: .perUnit(unitAmount: huge)), quantity: huge)
        }
    }
}
