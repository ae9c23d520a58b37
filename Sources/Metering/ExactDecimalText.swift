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
