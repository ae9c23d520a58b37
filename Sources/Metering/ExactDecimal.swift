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

// MARK: - Parsing

extension ExactDecimal {
    /// Parses a decimal in JSON number syntax, exactly: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    ///
    /// Exponents are applied exactly (`"1.5e-3"` is `0.0015`). Returns nil for anything else (a
    /// leading `+`, `"01"`, `"1."`, `".5"`, `"NaN"`, whitespace, empty text) and for values out of range.
    public init?(_ text: some StringProtocol) {
        let parsed: ExactDecimal?? = text.utf8.withContiguousStorageIfAvailable { buffer in
            try? Self.parse(UnsafeRawBufferPointer(buffer))
        }
        if let parsed {
            guard let parsed else { return nil }
            self = parsed
        } else {
            let bytes = Array(text.utf8)
            guard let value = bytes.withUnsafeBytes({ try? Self.parse($0) }) else { return nil }
            self = value
        }
    }

    /// Parses a decimal in JSON number syntax from raw bytes, exactly, without allocating.
    ///
    /// Grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, with the exponent applied exactly.
    /// `"-0"` is zero. A value whose normalized form needs more than 36 fractional digits or a
    /// significand beyond `Int128` throws ``DecimalParseError/Reason/outOfRange``; the whole input is
    /// checked for syntax first, so malformed input always throws ``DecimalParseError/Reason/syntax``.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(DecimalParseError) -> ExactDecimal {
        let count = bytes.count
        var index = 0
        var negative = false
        if count > 0 && bytes[0] == ASCIIByte.minus {
            negative = true
            index = 1
        }
        // The value is magnitude × 10^(exponent + pendingZeros). Zeros are held back in
        // `pendingZeros` until a non-zero digit follows, so trailing zeros never fill the significand.
        var magnitude: UInt128 = 0
        var pendingZeros = 0
        var exponent = 0
        var overflow = false

        @inline(__always)
        func accumulate(_ digit: UInt8) {
            if digit == 0 {
                pendingZeros &+= 1
                return
            }
            if overflow { return }
            if magnitude == 0 {
                magnitude = UInt128(digit)
            } else if pendingZeros == 0 {
                let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt128(digit))
                magnitude = sum
                overflow = o1 || o2
            } else if pendingZeros + 1 <= 38 {
                let (shifted, o1) = magnitude.multipliedReportingOverflow(by: Self.powersOfTen[pendingZeros + 1])
                let (sum, o2) = shifted.addingReportingOverflow(UInt128(digit))
                magnitude = sum
                overflow = o1 || o2
            } else {
                overflow = true
            }
            pendingZeros = 0
        }

        // Integer part.
        guard index < count else { throw .syntax(index, "expected a digit") }
        let first = bytes[index] &- ASCIIByte.zero
        if first == 0 {
            index += 1
        } else if first < 10 {
            while index < count {
                let digit = bytes[index] &- ASCIIByte.zero
                guard digit < 10 else { break }
                accumulate(digit)
                index += 1
            }
        } else {
            throw .syntax(index, "expected a digit")
        }
        // Fraction.
        if index < count && bytes[index] == ASCIIByte.dot {
            index += 1
            let start = index
            while index < count {
                let digit = bytes[index] &- ASCIIByte.zero
                guard digit < 10 else { break }
                accumulate(digit)
                exponent -= 1
                index += 1
            }
            guard index > start else { throw .syntax(index, "expected a digit after '.'") }
        }
        // Exponent.
        if index < count && (bytes[index] | 0x20) == ASCIIByte.lowerE {
            index += 1
            var exponentNegative = false
            if index < count && (bytes[index] == ASCIIByte.plus || bytes[index] == ASCIIByte.minus) {
                exponentNegative = bytes[index] == ASCIIByte.minus
                index += 1
            }
            let start = index
            var value = 0
            while index < count {
                let digit = bytes[index] &- ASCIIByte.zero
                guard digit < 10 else { break }
                if value < 1_000_000_000 { value = value * 10 + Int(digit) }
                index += 1
            }
            guard index > start else { throw .syntax(index, "expected a digit in the exponent") }
            exponent += exponentNegative ? -value : value
        }
        guard index == count else {
            throw .syntax(index, "unexpected character in a number")
        }
        if overflow { throw .outOfRange }
        if magnitude == 0 { return .zero }
        exponent += pendingZeros
        let maxMagnitude = UInt128(Int128.max)
        if exponent >= 0 {
            guard exponent <= 38 else { throw .outOfRange }
            let (scaled, o) = magnitude.multipliedReportingOverflow(by: Self.powersOfTen[exponent])
            guard !o, scaled <= maxMagnitude else { throw .outOfRange }
            let significand = Int128(scaled)
            return ExactDecimal(normalizedSignificand: negative ? -significand : significand, scale: 0)
        }
        guard -exponent <= maxScale, magnitude <= maxMagnitude else { throw .outOfRange }
        let significand = Int128(magnitude)
        return ExactDecimal(normalizedSignificand: negative ? -significand : significand, scale: -exponent)
    }
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
        let (quotient, rest) = significand.magnitude.quotientAndRemainder(dividingBy: divisor)
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

// MARK: - Text

extension ExactDecimal: CustomStringConvertible {
    /// Canonical plain notation without exponent: `"0"`, `"0.1"`, `"1000"`, `"-2.5"`, `"0.000000000001"`.
    public var description: String { formatted(minimumScale: 0) }

    /// Plain notation with at least `minimumScale` fractional digits, padded with zeros:
    /// `30` with `minimumScale: 2` is `"30.00"`. Never rounds: extra digits stay.
    public func formatted(minimumScale: Int) -> String {
        let fractionDigits = max(scale, minimumScale)
        let negative = significand < 0
        let magnitude = significand.magnitude
        let scale = self.scale
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 48) { digits in
            // Digits least significant first.
            var count = 0
            var rest = magnitude
            if rest > UInt128(UInt64.max) {
                let (high, low) = rest.quotientAndRemainder(dividingBy: 10_000_000_000_000_000_000)
                var chunk = UInt64(low)
                for _ in 0..<19 {
                    digits[count] = ASCIIByte.zero &+ UInt8(chunk % 10)
                    chunk /= 10
                    count += 1
                }
                rest = high
            }
            var chunk = UInt64(rest)
            repeat {
                digits[count] = ASCIIByte.zero &+ UInt8(chunk % 10)
                chunk /= 10
                count += 1
            } while chunk != 0
            // A zero significand printed one "0": it is the integer part, never a fraction digit.
            if magnitude == 0 { count = 0 }
            let integerDigits = max(count - scale, 1)
            let total = (negative ? 1 : 0) + integerDigits + (fractionDigits > 0 ? 1 + fractionDigits : 0)
            return String(unsafeUninitializedCapacity: total) { out in
                var position = 0
                @inline(__always) func put(_ byte: UInt8) {
                    out[position] = byte
                    position += 1
                }
                if negative { put(ASCIIByte.minus) }
                if count <= scale {
                    put(ASCIIByte.zero)
                } else {
                    for index in stride(from: count - 1, through: scale, by: -1) { put(digits[index]) }
                }
                if fractionDigits > 0 {
                    put(ASCIIByte.dot)
                    for _ in 0..<max(scale - count, 0) { put(ASCIIByte.zero) }
                    for index in stride(from: min(count, scale) - 1, through: 0, by: -1) { put(digits[index]) }
                    for _ in 0..<(fractionDigits - scale) { put(ASCIIByte.zero) }
                }
                return position
            }
        }
    }
}

extension ExactDecimal: ExpressibleByIntegerLiteral {
    /// Creates an integer value from a literal: `let limit: ExactDecimal = 1000`.
    public init(integerLiteral value: Int) {
        self.init(value)
    }
}

extension ExactDecimal: Codable {
    /// Decodes a decimal string (`"0.002"`); a plain integer is accepted too. Fractional numbers must
    /// be strings, since a decoder would read them through binary floating point.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let value = ExactDecimal(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container,
                    debugDescription: "\"\(text)\" is not an exact decimal: write digits like \"12.50\" (at most 36 fractional digits)")
            }
            self = value
        } else if let integer = try? container.decode(Int64.self) {
            self.init(Int(integer))
        } else {
            throw DecodingError.typeMismatch(
                ExactDecimal.self,
                DecodingError.Context(
                    codingPath: decoder.codingPath,
                    debugDescription: "expected a decimal string such as \"0.002\" (or an integer)"))
        }
    }

    /// Encodes the canonical decimal string (``description``).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

// MARK: - Binary form

extension ExactDecimal {
    /// Writes the fixed 17-byte form: byte 0 is the scale, bytes 1...16 the significand as big-endian
    /// two's complement.
    ///
    /// - Precondition: `buffer.count >= 17`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.encodedSize, "ExactDecimal.encode needs 17 bytes")
        buffer[0] = UInt8(scale)
        buffer.storeBytes(of: significand.bigEndian, toByteOffset: 1, as: Int128.self)
    }

    /// Reads the 17-byte form written by ``encode(into:)``; nil unless `encoded` is exactly 17 bytes
    /// holding a normalized in-range value.
    public init?(encoded: UnsafeRawBufferPointer) {
        guard encoded.count == Self.encodedSize else { return nil }
        let scale = Int(encoded[0])
        let significand = Int128(bigEndian: encoded.loadUnaligned(fromByteOffset: 1, as: Int128.self))
        guard scale <= Self.maxScale, significand != .min else { return nil }
        let value = Self.normalized(significand, scale)
        guard value.scale == scale else { return nil }
        self = value
    }
}

// MARK: - Internals

extension ExactDecimal {
    /// Strips trailing zeros. Assumes `significand != .min` and `scale >= 0`; does not check the
    /// maximum scale.
    @inline(__always)
    static func normalized(_ significand: Int128, _ scale: Int) -> ExactDecimal {
        if significand == 0 { return .zero }
        var value = significand
        var scale = scale
        while scale > 0 && value & 1 == 0 {
            let (quotient, rest) = value.quotientAndRemainder(dividingBy: 10)
            if rest != 0 { break }
            value = quotient
            scale -= 1
        }
        return ExactDecimal(normalizedSignificand: value, scale: scale)
    }

    /// `a + b.significand × 10^-b.scale`, exactly.
    static func sum(_ a: ExactDecimal, _ bSignificand: Int128, _ bScale: Int) throws(DecimalOverflow)
        -> ExactDecimal
    {
        let scale = max(a.scale, bScale)
        var x = a.significand
        var y = bSignificand
        var fits = true
        if a.scale < scale {
            let (scaled, overflow) = x.multipliedReportingOverflow(by: Int128(Self.powersOfTen[scale - a.scale]))
            x = scaled
            fits = !overflow
        } else if bScale < scale {
            let (scaled, overflow) = y.multipliedReportingOverflow(by: Int128(Self.powersOfTen[scale - bScale]))
            y = scaled
            fits = !overflow
        }
        if fits {
            let (total, overflow) = x.addingReportingOverflow(y)
            if !overflow && total != .min { return normalized(total, scale) }
        }
        // Wide path: both aligned magnitudes fit in 256 bits with room to spare.
        let xWide = WideMagnitude.product(a.significand.magnitude, Self.powersOfTen[scale - a.scale])
        let yWide = WideMagnitude.product(bSignificand.magnitude, Self.powersOfTen[scale - bScale])
        let xNegative = a.significand < 0
        let yNegative = bSignificand < 0
        if xNegative == yNegative {
            return try make(negative: xNegative, magnitude: xWide.adding(yWide), scale: scale)
        }
        if xWide < yWide {
            return try make(negative: yNegative, magnitude: yWide.subtracting(xWide), scale: scale)
        }
        return try make(negative: xNegative, magnitude: xWide.subtracting(yWide), scale: scale)
    }

    /// Normalizes a wide result and checks that it fits.
    static func make(negative: Bool, magnitude: WideMagnitude, scale: Int) throws(DecimalOverflow)
        -> ExactDecimal
    {
        var magnitude = magnitude
        var scale = scale
        if magnitude.isZero { return .zero }
        while scale > 0 {
            let (quotient, rest) = magnitude.dividedBy10()
            if rest != 0 { break }
            magnitude = quotient
            scale -= 1
        }
        guard scale <= maxScale else { throw .tooManyFractionalDigits }
        guard magnitude.high == 0, magnitude.low <= UInt128(Int128.max) else { throw .tooLarge }
        let value = Int128(magnitude.low)
        return ExactDecimal(normalizedSignificand: negative ? -value : value, scale: scale)
    }

    /// Applies `rule` to a truncated magnitude `quotient` whose discarded part is `remainder`; nil
    /// when incrementing overflows.
    static func round(_ quotient: UInt128, _ remainder: RemainderClass, negative: Bool, rule: RoundingRule)
        -> UInt128?
    {
        let increment: Bool
        switch rule {
        case .down: increment = false
        case .up: increment = remainder != .zero
        case .ceiling: increment = remainder != .zero && !negative
        case .floor: increment = remainder != .zero && negative
        case .halfAwayFromZero: increment = remainder == .half || remainder == .aboveHalf
        case .halfEven: increment = remainder == .aboveHalf || (remainder == .half && quotient & 1 == 1)
        }
        guard increment else { return quotient }
        let (next, overflow) = quotient.addingReportingOverflow(1)
        return overflow ? nil : next
    }
}

extension ExactDecimal {
    /// Where a discarded remainder lies relative to half of the divisor.
    enum RemainderClass: Equatable {
        case zero, belowHalf, half, aboveHalf

        /// Classifies `remainder / divisor` (`remainder < divisor`) without overflowing.
        @inline(__always)
        init(_ remainder: UInt128, of divisor: UInt128) {
            if remainder == 0 {
                self = .zero
                return
            }
            let rest = divisor - remainder
            self = remainder < rest ? .belowHalf : (remainder == rest ? .half : .aboveHalf)
        }
    }

    /// An unsigned 256-bit integer, just enough for exact decimal arithmetic's slow paths.
    struct WideMagnitude: Equatable {
        var high: UInt128
        var low: UInt128

        static func product(_ a: UInt128, _ b: UInt128) -> WideMagnitude {
            let (high, low) = a.multipliedFullWidth(by: b)
            return WideMagnitude(high: high, low: low)
        }

        var isZero: Bool { high == 0 && low == 0 }

        /// The sum; callers keep operands far below 2^255.
        func adding(_ other: WideMagnitude) -> WideMagnitude {
            let (low, carry) = low.addingReportingOverflow(other.low)
            return WideMagnitude(high: high &+ other.high &+ (carry ? 1 : 0), low: low)
        }

        /// The difference; requires `self >= other`.
        func subtracting(_ other: WideMagnitude) -> WideMagnitude {
            let (low, borrow) = low.subtractingReportingOverflow(other.low)
            return WideMagnitude(high: high &- other.high &- (borrow ? 1 : 0), low: low)
        }

        static func < (a: WideMagnitude, b: WideMagnitude) -> Bool {
            a.high != b.high ? a.high < b.high : a.low < b.low
        }

        func dividedBy10() -> (WideMagnitude, UInt128) {
            let (highQuotient, highRest) = high.quotientAndRemainder(dividingBy: 10)
            let (lowQuotient, rest) = UInt128(10).dividingFullWidth((high: highRest, low: low))
            return (WideMagnitude(high: highQuotient, low: lowQuotient), rest)
        }
    }
}

extension ExactDecimal {
    /// 10^0 ... 10^38 (10^38 is the largest power of ten below `UInt128.max`).
    static let powersOfTen: [UInt128] = {
        var table: [UInt128] = [1]
        for _ in 1...38 { table.append(table[table.count - 1] * 10) }
        return table
    }()
}

/// ASCII bytes used by the parsers.
enum ASCIIByte {
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let lowerE = UInt8(ascii: "e")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
}
