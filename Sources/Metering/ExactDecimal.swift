/// An exact decimal number: `significand × 10^-scale`.
///
/// Quantities and money in Tally are `ExactDecimal`s, never binary floating point, so `0.1` added ten
/// times is exactly `1`. The value is always kept **normalized**: no trailing zeros in the significand
/// while `scale > 0`, and zero is `(0, 0)`. Equality and hashing therefore mean numeric equality
/// (`1.0 == 1`).
///
/// The range: `scale` is `0...36` and `|significand| <= Int128.max` (about 1.7 × 10^38). The range is
/// symmetric, so ``negated()`` never overflows. Arithmetic never traps: it throws ``DecimalOverflow``
/// when a result does not fit.
///
/// ```swift
/// let sum = try ExactDecimal("0.1")!.adding(ExactDecimal("0.2")!)   // 0.3
/// let share = try ExactDecimal(10).divided(by: 3, scale: 2, rounding: .halfEven)   // 3.33
/// ```
public struct ExactDecimal: Sendable, Hashable {
    /// The digits of the value as an integer; the value is `significand × 10^-scale`.
    public let significand: Int128
    /// The number of fractional digits, `0...36`; always as small as the value allows.
    public let scale: Int

    /// The largest ``scale`` an exact decimal can have: 36 fractional digits.
    public static let maxScale = 36
    /// The number of bytes of the fixed binary form written by ``encode(into:)``.
    public static let encodedSize = 17
    /// Zero.
    public static let zero = ExactDecimal(normalizedSignificand: 0, scale: 0)
    /// One.
    public static let one = ExactDecimal(normalizedSignificand: 1, scale: 0)

    /// Trusts the caller: `significand` is normalized for `scale`, `scale` is in range.
    @inline(__always)
    init(normalizedSignificand: Int128, scale: Int) {
        self.significand = normalizedSignificand
        self.scale = scale
    }

    /// Creates `significand × 10^-scale`, normalizing it (`ExactDecimal(significand: 1500, scale: 3)`
    /// is `1.5`, with scale 1).
    ///
    /// - Precondition: `scale >= 0`, `significand != Int128.min`, and the normalized scale is at most
    ///   ``maxScale``. Use ``parse(_:)`` or `init?(_:)` for values from outside the program.
    public init(significand: Int128, scale: Int) {
        precondition(significand != .min, "ExactDecimal: Int128.min is outside the symmetric range")
        precondition(scale >= 0, "ExactDecimal: scale must not be negative")
        let value = Self.normalized(significand, scale)
        precondition(value.scale <= Self.maxScale, "ExactDecimal: more than 36 fractional digits")
        self = value
    }

    /// Creates the integer `value`.
    public init(_ value: Int) {
        self.init(normalizedSignificand: Int128(value), scale: 0)
    }

    /// The number of fractional digits (equal to ``scale``, since the value is normalized).
    public var fractionalDigitCount: Int { scale }

    /// Whether the value is zero.
    public var isZero: Bool { significand == 0 }

    /// Whether the value is below zero.
    public var isNegative: Bool { significand < 0 }

    /// The absolute value.
    public var magnitude: ExactDecimal {
        ExactDecimal(normalizedSignificand: significand < 0 ? -significand : significand, scale: scale)
    }

    /// The value with its sign flipped; never overflows, since the range is symmetric.
    public func negated() -> ExactDecimal {
        ExactDecimal(normalizedSignificand: -significand, scale: scale)
    }
}

// MARK: - Errors and rounding rules

/// A result that does not fit in an ``ExactDecimal``, or a division by zero.
public struct DecimalOverflow: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong and what to do about it.
    public var message: String

    /// Creates an overflow error with a human-readable message.
    public init(_ message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }

    static let tooLarge = DecimalOverflow(
        "result out of range: an exact decimal's significand holds at most about 38 digits; use smaller operands")
    static let tooManyFractionalDigits = DecimalOverflow(
        "result needs more than 36 fractional digits; round an operand first")
    static let divisionByZero = DecimalOverflow("division by zero; check the divisor before dividing")
}

/// Why text could not be read as an ``ExactDecimal``.
public struct DecimalParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Reason: Sendable, Hashable {
        /// The text is not a number in JSON number syntax.
        case syntax
        /// The number is well formed but needs more than 36 fractional digits or a significand beyond
        /// `Int128`.
        case outOfRange
    }

    /// The kind of failure.
    public var reason: Reason
    /// The byte offset of the first offending byte (the input's length when it ended too early);
    /// 0 for ``Reason/outOfRange``.
    public var offset: Int
    /// What was wrong and what was expected.
    public var message: String

    /// Creates a parse error.
    public init(reason: Reason, offset: Int, message: String) {
        self.reason = reason
        self.offset = offset
        self.message = message
    }

    /// The message.
    public var description: String { message }

    @inline(__always)
    static func syntax(_ offset: Int, _ message: String) -> DecimalParseError {
        DecimalParseError(reason: .syntax, offset: offset, message: message)
    }

    static let outOfRange = DecimalParseError(
        reason: .outOfRange, offset: 0,
        message: "number out of range: at most 36 fractional digits and about 38 significant digits")
}

/// How to round a value that falls between two representable results.
public enum RoundingRule: Sendable, Hashable {
    /// Away from zero: 1.21 → 1.3, -1.21 → -1.3.
    case up
    /// Toward zero (truncate): 1.29 → 1.2, -1.29 → -1.2.
    case down
    /// Toward positive infinity: 1.21 → 1.3, -1.29 → -1.2.
    case ceiling
    /// Toward negative infinity: 1.29 → 1.2, -1.21 → -1.3.
    case floor
    /// To the nearest; ties away from zero: 1.25 → 1.3, -1.25 → -1.3.
    case halfAwayFromZero
    /// To the nearest; ties to the even neighbour (banker's rounding): 1.25 → 1.2, 1.35 → 1.4.
    case halfEven
}


// MARK: - Arithmetic

extension ExactDecimal {
    /// The exact sum; throws when it does not fit.
    public func adding(_ other: ExactDecimal) throws(DecimalOverflow) -> ExactDecimal {
        try Self.sum(self, other.significand, other.scale)
    }

    /// The exact difference `self - other`; throws when it does not fit.
    public func subtracting(_ other: ExactDecimal) throws(DecimalOverflow) -> ExactDecimal {
        try Self.sum(self, -other.significand, other.scale)
    }

    /// The exact product; throws when it needs more than 36 fractional digits or does not fit.
    public func multiplied(by other: ExactDecimal) throws(DecimalOverflow) -> ExactDecimal {
        let scale = self.scale + other.scale
        let (product, overflow) = significand.multipliedReportingOverflow(by: other.significand)
        if !overflow && product != .min {
            let value = Self.normalized(product, scale)
            guard value.scale <= Self.maxScale else { throw .tooManyFractionalDigits }
            return value
        }
        let negative = (significand < 0) != (other.significand < 0)
        let wide = WideMagnitude.product(significand.magnitude, other.significand.magnitude)
        return try Self.make(negative: negative, magnitude: wide, scale: scale)
    }

    /// The quotient `self / divisor`, rounded to `scale` fractional digits with `rule`.
    ///
    /// The rounding sees the exact quotient, so `1 / 3` at scale 2 is `0.33` and `2 / 3` at scale 2
    /// with `.halfEven` is `0.67`. `scale` is clamped to `0...36`. Throws on division by zero or when
    /// the rounded quotient does not fit.
    public func divided(
        by divisor: ExactDecimal, scale: Int, rounding rule: RoundingRule
    ) throws(DecimalOverflow) -> ExactDecimal {
        guard !divisor.isZero else { throw .divisionByZero }
        let scale = min(max(scale, 0), Self.maxScale)
        if isZero { return .zero }
        let negative = (significand < 0) != (divisor.significand < 0)
        let numerator = significand.magnitude
        var denominator = divisor.significand.magnitude
        // quotient = numerator × 10^shift / denominator, rounded.
        let shift = scale + divisor.scale - self.scale
        var quotient: UInt128
        var remainder: RemainderClass
        if shift >= 0 {
            quotient = numerator / denominator
            var rest = numerator % denominator
            // Long division, one decimal digit at a time: rest < denominator, so each digit is < 10.
            for _ in 0..<shift {
                let (digit, nextRest) = denominator.dividingFullWidth(rest.multipliedFullWidth(by: 10))
                rest = nextRest
                let (times10, o1) = quotient.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(digit)
                guard !o1 && !o2 else { throw .tooLarge }
                quotient = sum
            }
            remainder = RemainderClass(rest, of: denominator)
        } else {
            let (scaled, overflow) = denominator.multipliedReportingOverflow(by: Self.powersOfTen[-shift])
            if overflow {
                // The divisor exceeds UInt128.max > 2 × numerator: the quotient is below one half.
                quotient = 0
                remainder = .belowHalf
            } else {
                denominator = scaled
                quotient = numerator / denominator
                remainder = RemainderClass(numerator % denominator, of: denominator)
            }
        }
        guard let rounded = Self.round(quotient, remainder, negative: negative, rule: rule),
            rounded <= UInt128(Int128.max)
        else { throw .tooLarge }
        let significand = Int128(rounded)
        return Self.normalized(negative ? -significand : significand, scale)
    }

    /// The value rounded to at most `scale` fractional digits with `rule` (`scale` below 0 counts
    /// as 0). Values that already fit are returned unchanged.
    public func rounded(scale target: Int, rule: RoundingRule) -> ExactDecimal {
        let target = max(target, 0)
        guard scale > target else { return self }
        let divisor = Self.powersOfTen[scale - target]
        let negative = significand < 0
        let magnitude = significand.magnitude
        let (quotient, rest): (UInt128, UInt128)
        if let small = UInt64(exactly: magnitude), let smallDivisor = UInt64(exactly: divisor) {
            // 64-bit division: a machine instruction rather than a 128-bit library call.
            let (q, r) = small.quotientAndRemainder(dividingBy: smallDivisor)
            (quotient, rest) = (UInt128(q), UInt128(r))
        } else {
            (quotient, rest) = magnitude.quotientAndRemainder(dividingBy: divisor)
        }
        // quotient <= Int128.max / 10, so rounding up cannot overflow.
        let rounded = Self.round(quotient, RemainderClass(rest, of: divisor), negative: negative, rule: rule)!
        let value = Int128(rounded)
        return Self.normalized(negative ? -value : value, target)
    }
}

// MARK: - Comparison

extension ExactDecimal: Comparable {
    /// Exact numeric order across scales (no rounding, no overflow).
    public static func < (lhs: ExactDecimal, rhs: ExactDecimal) -> Bool {
        if lhs.scale == rhs.scale { return lhs.significand < rhs.significand }
        let lhsNegative = lhs.significand < 0
        let rhsNegative = rhs.significand < 0
        if lhsNegative != rhsNegative { return lhsNegative }
        let order = magnitudeOrder(lhs, rhs)
        return lhsNegative ? order > 0 : order < 0
    }

    /// -1, 0 or 1 as |a| is below, equal to or above |b|. Only the operand with the smaller scale is
    /// scaled up; if that overflows UInt128 it is larger than the other (which fits in Int128).
    static func magnitudeOrder(_ a: ExactDecimal, _ b: ExactDecimal) -> Int {
        var x = a.significand.magnitude
        var y = b.significand.magnitude
        if a.scale < b.scale {
            let (scaled, overflow) = x.multipliedReportingOverflow(by: Self.powersOfTen[b.scale - a.scale])
            if overflow { return 1 }
            x = scaled
        } else if b.scale < a.scale {
            let (scaled, overflow) = y.multipliedReportingOverflow(by: Self.powersOfTen[a.scale - b.scale])
            if overflow { return -1 }
            y = scaled
        }
        return x < y ? -1 : (x == y ? 0 : 1)
    }
}
