public import Metering

/// A currency and its minor unit: the number of decimal places its amounts are rounded to.
///
/// ```swift
/// Currency.named("USD")?.minorUnits   // 2
/// Currency.named("JPY")?.minorUnits   // 0
/// Currency.named("BHD")?.minorUnits   // 3
/// Currency.named("usd")               // nil: codes are three capital letters
/// ```
/// The table holds every active ISO 4217 currency (`Metering.ISO4217`).
public struct Currency: Sendable, Hashable {
    /// The ISO 4217 code, such as `USD`.
    public let code: String
    /// Decimal places of the minor unit: 2 for USD (cents), 0 for JPY, 3 for BHD, 4 for CLF.
    public let minorUnits: Int

    /// Creates a currency from its parts; prefer `named(_:)`, which knows every ISO 4217 minor unit.
    public init(code: String, minorUnits: Int) {
        self.code = code
        self.minorUnits = minorUnits
    }

    /// The active ISO 4217 currency with this code (three capital letters), or nil.
    public static func named(_ code: String) -> Currency? {
        ISO4217.minorUnits(of: code).map { Currency(code: code, minorUnits: $0) }
    }

    /// Every active ISO 4217 currency, by code.
    public static var all: [Currency] {
        ISO4217.codes.compactMap(named)
    }

    /// `amount` written with exactly `minorUnits` decimals (`"39.00"`, JPY `"1235"`). The amount must
    /// already be rounded (`Rater.round`): extra digits are kept, never cut.
    public func formatted(_ amount: ExactDecimal) -> String {
        amount.formatted(minimumScale: minorUnits)
    }
}
