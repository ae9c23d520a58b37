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
        if scale == 0 || significand & 1 != 0 { return ExactDecimal(normalizedSignificand: significand, scale: scale) }
        if let small = Int64(exactly: significand) {
            // Most quantities and amounts fit 64 bits, where dividing by 10 is a multiplication.
            let (value, scale) = strippingZeros(small, scale)
            return ExactDecimal(normalizedSignificand: Int128(value), scale: scale)
        }
        let (value, stripped) = strippingZeros(significand, scale)
        return ExactDecimal(normalizedSignificand: value, scale: stripped)
    }

    /// `value` and `scale` with the trailing decimal zeros of `value` taken off, while `scale > 0`.
    @inline(__always)
    private static func strippingZeros<Integer: FixedWidthInteger>(_ value: Integer, _ scale: Int) -> (Integer, Int) {
        var value = value
        var scale = scale
        while scale > 0 && value & 1 == 0 {
            let (quotient, rest) = value.quotientAndRemainder(dividingBy: 10)
            if rest != 0 { break }
            value = quotient
            scale -= 1
        }
        return (value, scale)
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
