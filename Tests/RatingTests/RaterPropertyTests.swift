import Metering
import PropertyBased
import Rating
import Testing

// MARK: - Generators

/// Non-negative decimals up to 2,000,000 with 0 to 4 fractional digits.
private let quantities = zip(Gen.int(in: 0...2_000_000), Gen.int(in: 0...4)).map { significand, scale in
    ExactDecimal(significand: Int128(significand), scale: scale)
}

/// Non-negative amounts up to 100 with 0 to 6 fractional digits.
private let amounts = zip(Gen.int(in: 0...100_000_000), Gen.int(in: 0...6)).map { significand, scale in
    ExactDecimal(significand: Int128(significand), scale: scale)
}

/// 1 to 6 tiers with strictly rising bounds (some fractional), the last one `inf`.
private let tierLists = zip(Gen.int(in: 1...50_000).array(of: 0...5), amounts.array(of: 6), amounts.array(of: 6))
    .map { parts -> [Tier] in
        let (increments, unitAmounts, flatAmounts) = parts
        var bound = ExactDecimal.zero
        var tiers = [Tier]()
        for (index, increment) in increments.enumerated() {
            bound = try! bound.adding(ExactDecimal(significand: Int128(increment), scale: 1))
            tiers.append(Tier(upTo: bound, unitAmount: unitAmounts[index], flatAmount: flatAmounts[index]))
        }
        tiers.append(Tier(upTo: nil, unitAmount: unitAmounts[increments.count], flatAmount: flatAmounts[increments.count]))
        return tiers
    }

/// A price of any model, sometimes with a minimum and/or a maximum.
private let prices = zip(Gen.int(in: 0...4), tierLists, amounts.array(of: 4), Gen.int(in: 0...3))
    .map { parts -> Price in
        let (kind, tiers, figures, bounds) = parts
        let model: PriceModel = switch kind {
        case 0: .perUnit(
            unitAmount: figures[0], freeUnits: figures[1],
            transform: figures[2].isZero ? nil : .init(divideBy: figures[2], round: figures[3] > 50 ? .up : .down))
        case 1: .graduated(tiers)
        case 2: .volume(tiers)
        case 3: .package(
            size: figures[0].isZero ? 1 : figures[0], amount: figures[1], freeUnits: figures[2],
            round: figures[3] > 50 ? .up : .down)
        default: .flat(amount: figures[0])
        }
        let low = min(figures[1], figures[3])
        let high = max(figures[1], figures[3])
        return Price(model: model, minimum: bounds & 1 == 1 ? low : nil, maximum: bounds & 2 == 2 ? high : nil)
    }

// MARK: - Properties

@Suite struct RaterPropertyTests {
    @Test func tieredAmountsAreNeverNegative() async {
        await propertyCheck(input: tierLists, quantities) { tiers, quantity in
            let graduated = try Rater.rate(Price(model: .graduated(tiers)), quantity: quantity)
            let volume = try Rater.rate(Price(model: .volume(tiers)), quantity: quantity)
            #expect(graduated.exactAmount >= .zero)
            #expect(volume.exactAmount >= .zero)
        }
    }

    @Test func graduatedAmountsRiseWithTheQuantity() async {
        await propertyCheck(input: tierLists, quantities, quantities) { tiers, first, second in
            let price = Price(model: .graduated(tiers))
            let (low, high) = (min(first, second), max(first, second))
            let lower = try Rater.rate(price, quantity: low)
            let higher = try Rater.rate(price, quantity: high)
            #expect(lower.exactAmount <= higher.exactAmount)
        }
    }

    @Test func theAmountIsTheSumOfTheLines() async {
        await propertyCheck(input: prices, quantities) { price, quantity in
            let rating = try Rater.rate(price, quantity: quantity)
            var sum = ExactDecimal.zero
            for line in rating.lines {
                sum = try sum.adding(line.amount)
                #expect(line.amount == (try line.unitAmount.multiplied(by: line.quantity).adding(line.flatAmount)))
            }
            #expect(sum == rating.exactAmount)
            #expect(rating.quantity == quantity)
        }
    }

    @Test func theExactAmountAloneIsTheRatingsExactAmount() async {
        let signed = zip(quantities, Gen.int(in: 0...3)).map { quantity, sign in sign == 0 ? (try! ExactDecimal.zero.subtracting(quantity)) : quantity }
        await propertyCheck(input: prices, signed) { price, quantity in
            let alone = try Rater.exactAmount(price, quantity: quantity)
            let rating = try Rater.rate(price, quantity: quantity)
            #expect(alone == rating.exactAmount)
        }
    }

    @Test func minimumAndMaximumBoundTheAmount() async {
        await propertyCheck(input: prices, quantities) { price, quantity in
            let rating = try Rater.rate(price, quantity: quantity)
            if let minimum = price.minimum { #expect(rating.exactAmount >= minimum) }
            if let maximum = price.maximum { #expect(rating.exactAmount <= maximum) }
            let unbounded = try Rater.rate(Price(model: price.model), quantity: quantity)
            #expect(try rating.exactAmount.subtracting(unbounded.exactAmount) == rating.adjustment)
            #expect(rating.lines.filter(\.isAdjustment).count == (rating.adjustment.isZero ? 0 : 1))
            #expect(rating.lines.dropLast().allSatisfy { !$0.isAdjustment })
        }
    }

    @Test func ratingIsIndependentOfHowTheQuantityWasSplitIntoEvents() async {
        await propertyCheck(input: prices, quantities.array(of: 1...40)) { price, events in
            // The usage aggregate is an exact sum, so every order and grouping of the events gives the
            // same quantity, and therefore the same rating.
            var forward = ExactDecimal.zero
            for value in events { forward = try forward.adding(value) }
            var backward = ExactDecimal.zero
            for value in events.reversed() { backward = try backward.adding(value) }
            var halves = ExactDecimal.zero
            let middle = events.count / 2
            var left = ExactDecimal.zero, right = ExactDecimal.zero
            for value in events[..<middle] { left = try left.adding(value) }
            for value in events[middle...] { right = try right.adding(value) }
            halves = try left.adding(right)
            #expect(forward == backward && forward == halves)
            let whole = try Rater.rate(price, quantity: forward)
            #expect(try Rater.rate(price, quantity: backward) == whole)
            #expect(try Rater.rate(price, quantity: halves) == whole)
        }
    }

    @Test func volumeChargesOneTier() async {
        await propertyCheck(input: tierLists, quantities) { tiers, quantity in
            let rating = try Rater.rate(Price(model: .volume(tiers)), quantity: quantity)
            #expect(rating.lines.count == 1)
            let line = try #require(rating.lines.first)
            let tier = tiers[try #require(line.tier) - 1]
            #expect(line.quantity == quantity)
            #expect(tier.upTo.map { quantity <= $0 } ?? true)
            if let index = line.tier, index > 1, let previous = tiers[index - 2].upTo { #expect(quantity > previous) }
        }
    }

    @Test func graduatedLinesCoverTheQuantityExactly() async {
        await propertyCheck(input: tierLists, quantities) { tiers, quantity in
            let rating = try Rater.rate(Price(model: .graduated(tiers)), quantity: quantity)
            var covered = ExactDecimal.zero
            for line in rating.lines { covered = try covered.adding(line.quantity) }
            #expect(covered == quantity)
            #expect(rating.lines.map(\.tier) == Array(1...rating.lines.count).map(Optional.some))
        }
    }

    @Test func roundingMovesLessThanHalfAMinorUnitAndIsStable() async {
        let currencies = Gen.element(of: ["USD", "JPY", "BHD", "CLF", "EUR", "KWD"]).map { Currency.named($0!)! }
        await propertyCheck(input: amounts, currencies, Gen.bool) { amount, currency, even in
            let mode: RoundingMode = even ? .halfEven : .halfAwayFromZero
            let rounded = Rater.round(amount, currency: currency, mode: mode)
            let half = ExactDecimal(significand: 5, scale: currency.minorUnits + 1)
            let moved = try rounded.subtracting(amount).magnitude
            #expect(moved <= half)
            #expect(rounded.scale <= currency.minorUnits)
            #expect(Rater.round(rounded, currency: currency, mode: mode) == rounded)
        }
    }
}
