public import Metering

/// The rating of one quantity with one price in one currency: what `tally quote` prints.
///
/// ```swift
/// let price = Price(model: .perUnit(unitAmount: ExactDecimal("10.00")!,
///     transform: .init(divideBy: ExactDecimal(60), round: .up)))  // or PriceParser.parse(text)
/// let quote = try Quote.parse(price: price, quantity: "150")
/// quote.json
/// // {"quantity":"150","currency":"USD","amount":"30.00","exact_amount":"30","lines":[{"tier":null,
/// //  "quantity":"3","unit_amount":"10","flat_amount":"0","amount":"30"}]}
/// ```
public struct Quote: Sendable, Hashable {
    /// The quantity rated.
    public var quantity: ExactDecimal
    /// The currency the amount is rounded to.
    public var currency: Currency
    /// The rounding applied to the exact amount.
    public var rounding: RoundingMode
    /// The exact rating, with its lines.
    public var rating: Rating
    /// `rating.exactAmount` rounded once to the currency's minor unit.
    public var amount: ExactDecimal

    /// Rates `quantity` with `price` (already resolved for a group) and rounds the amount.
    ///
    /// - Throws: `DecimalOverflow` when the rating does not fit an `ExactDecimal`.
    public init(price: Price, quantity: ExactDecimal, currency: Currency, rounding: RoundingMode) throws(DecimalOverflow) {
        self.quantity = quantity
        self.currency = currency
        self.rounding = rounding
        self.rating = try Rater.rate(price, quantity: quantity)
        self.amount = Rater.round(rating.exactAmount, currency: currency, mode: rounding)
    }

    /// Validates `tally quote`'s arguments as typed and rates them with a price already read
    /// (`PriceParser` in `Configuration` reads one from JSON or YAML text).
    ///
    /// - Parameters:
    ///   - price: the price.
    ///   - quantity: a decimal, 0 or more, at most 12 decimal places.
    ///   - currency: an ISO 4217 code such as `USD`.
    ///   - rounding: `half_away_from_zero` or `half_even`.
    ///   - group: `property=value` pairs selecting the price's dimension overrides.
    /// - Throws: `QuoteError` saying which argument is wrong and what to write instead.
    public static func parse(
        price parsedPrice: Price, quantity: String, currency: String = "USD",
        rounding: String = RoundingMode.halfAwayFromZero.rawValue, group: [String] = []
    ) throws(QuoteError) -> Quote {
        guard let amount = ExactDecimal(quantity) else {
            throw QuoteError(code: .invalidQuantity, message: "--quantity \"\(quantity)\" is not a decimal number; "
                + "write digits with an optional fraction, e.g. --quantity 1500 or --quantity 2.75")
        }
        guard !amount.isNegative else {
            throw QuoteError(code: .invalidQuantity, message: "--quantity \(quantity) is negative; quantities are 0 or more")
        }
        guard amount.scale <= EventLineParser.maxValueFractionalDigits else {
            throw QuoteError(code: .invalidQuantity, message: "--quantity \(quantity) has \(amount.scale) decimal places; "
                + "at most \(EventLineParser.maxValueFractionalDigits) are allowed, as in events")
        }
        guard let money = Currency.named(currency) else {
            let upper = currency.uppercased()
            let hint = Currency.named(upper) != nil ? "write it in capitals: --currency \(upper)"
                : "write an active ISO 4217 code, e.g. --currency USD, EUR or JPY"
            throw QuoteError(code: .unknownCurrency, message: "\"\(currency)\" is not an ISO 4217 currency code; \(hint)")
        }
        guard let mode = RoundingMode(rawValue: rounding) else {
            let names = RoundingMode.allCases.map(\.rawValue).joined(separator: " or ")
            throw QuoteError(code: .invalidRounding, message: "--rounding \"\(rounding)\" is not a rounding mode; use \(names)")
        }
        var properties = [String: String]()
        for pair in group {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw QuoteError(code: .invalidGroup, message: "--group \"\(pair)\" is not property=value; "
                    + "write e.g. --group model=large")
            }
            let property = String(pair[..<equals])
            guard properties[property] == nil else {
                throw QuoteError(code: .invalidGroup, message: "--group gives \(property) twice; give each property once")
            }
            guard parsedPrice.dimensions.contains(where: { $0.property == property }) else {
                let used = Set(parsedPrice.dimensions.map(\.property)).sorted()
                let known = used.isEmpty ? "the price has no dimensions" : "its dimensions use \(used.joined(separator: ", "))"
                throw QuoteError(code: .invalidGroup, message: "--group \(property)=… changes nothing: \(known)")
            }
            properties[property] = String(pair[pair.index(after: equals)...])
        }
        do {
            return try Quote(price: parsedPrice.price(forGroup: properties), quantity: amount, currency: money, rounding: mode)
        } catch {
            throw QuoteError(code: .overflow, message: "the amount cannot be computed exactly: \(error.message)")
        }
    }

    /// One line of JSON, keys in this order, every number a decimal string (`tier` a number or null):
    /// `{"quantity","currency","amount","exact_amount","lines":[{"tier","quantity","unit_amount","flat_amount","amount"}]}`.
    /// `amount` has exactly the currency's decimals ("39.00", JPY "1235"); the other figures are
    /// canonical exact decimals ("39", "6.5").
    public var json: String {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("quantity"); writer.string(quantity.description)
        writer.raw(","); writer.key("currency"); writer.string(currency.code)
        writer.raw(","); writer.key("amount"); writer.string(currency.formatted(amount))
        writer.raw(","); writer.key("exact_amount"); writer.string(rating.exactAmount.description)
        writer.raw(","); writer.key("lines"); RatingJSON.lines(rating.lines, into: &writer)
        writer.raw("}")
        return writer.output
    }
}

/// Why `tally quote` could not rate: a stable `code` and a message saying what to write instead.
public struct QuoteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stable reason.
    public var code: Code
    /// What was wrong and what to do.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }

    /// A stable error code; an open set of constants, so new codes never break callers.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The code, e.g. `"invalid_price"`.
        public var rawValue: String

        /// Wraps a raw code string.
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// The raw value.
        public var description: String { rawValue }

        /// The price text is not valid JSON/YAML or not a valid price (the message lists every problem).
        public static let invalidPrice = Code(rawValue: "invalid_price")
        /// The quantity is not a non-negative decimal with at most 12 decimal places.
        public static let invalidQuantity = Code(rawValue: "invalid_quantity")
        /// The currency is not an active ISO 4217 code.
        public static let unknownCurrency = Code(rawValue: "unknown_currency")
        /// The rounding mode is not `half_away_from_zero` or `half_even`.
        public static let invalidRounding = Code(rawValue: "invalid_rounding")
        /// A `--group` argument is not `property=value`, repeats a property, or matches no dimension.
        public static let invalidGroup = Code(rawValue: "invalid_group")
        /// The amount does not fit an exact decimal.
        public static let overflow = Code(rawValue: "overflow")
    }
}

/// The JSON of rating lines, shared by `tally quote` and statements:
/// `[{"tier","quantity","unit_amount","flat_amount","amount"}]`, `tier` a number or null, every
/// figure a canonical decimal string.
public enum RatingJSON {
    public static func lines(_ lines: [RatingLine], into writer: inout JSONWriter) {
        writer.raw("[")
        for (index, line) in lines.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("tier"); writer.raw(line.tier.map(String.init) ?? "null")
            writer.raw(","); writer.key("quantity"); writer.string(line.quantity.description)
            writer.raw(","); writer.key("unit_amount"); writer.string(line.unitAmount.description)
            writer.raw(","); writer.key("flat_amount"); writer.string(line.flatAmount.description)
            writer.raw(","); writer.key("amount"); writer.string(line.amount.description)
            writer.raw("}")
        }
        writer.raw("]")
    }
}
