/// A byte-level JSON lexer over one line, used by ``EventLineParser``: validates syntax and UTF-8 as
/// it goes, hands back string tokens as byte ranges (decoded only when needed) and numbers as exact
/// decimals. No Foundation, no binary floating point, no allocation except when decoding strings.
struct JSONScanner {
    /// A string's content between its quotes (`start..<end`), and whether it has escapes to decode.
    struct StringToken {
        var start: Int
        var end: Int
        var escaped: Bool
    }

    /// The kind of a JSON value, for messages and type checks.
    enum Kind {
        case string, number, bool, null, object, array

        /// "a string", "an object", … for messages.
        var phrase: String {
            switch self {
            case .string: "a string"
            case .number: "a number"
            case .bool: "a bool"
            case .null: "null"
            case .object: "an object"
            case .array: "an array"
            }
        }
    }

    /// The deepest nesting accepted (the line's object is level 1); deeper input is invalid JSON.
    static let maxDepth = 64

    let bytes: UnsafeRawBufferPointer
    let count: Int
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.count = bytes.count
    }

    /// The byte at the current position, or 0 at the end (a NUL is never valid outside strings).
    @inline(__always)
    var current: UInt8 { position < count ? bytes[position] : 0 }

    @inline(__always)
    var isAtEnd: Bool { position >= count }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < count {
            let byte = bytes[position]
            guard byte == ASCIIByte.space || byte == ASCIIByte.tab || byte == ASCIIByte.newline || byte == ASCIIByte.carriageReturn
            else { return }
            position += 1
        }
    }

    @inline(__always)
    mutating func expect(_ byte: UInt8, _ message: String) throws(JSONSyntaxError) {
        guard position < count && bytes[position] == byte else { throw JSONSyntaxError(position, message) }
        position += 1
    }

    /// The bytes of `token` as they appear in the line (escapes not decoded).
    @inline(__always)
    func raw(_ token: StringToken) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[token.start..<token.end])
    }

    // MARK: Strings

    /// Scans a string starting at its opening quote; validates escapes (including surrogate pairs)
    /// and UTF-8, rejects raw control characters.
    mutating func scanString() throws(JSONSyntaxError) -> StringToken {
        position += 1
        let start = position
        var escaped = false
        while position < count {
            let byte = bytes[position]
            if byte == ASCIIByte.quote {
                let token = StringToken(start: start, end: position, escaped: escaped)
                position += 1
                return token
            }
            if byte == ASCIIByte.backslash {
                escaped = true
                try scanEscape()
            } else if byte < 0x20 {
                throw JSONSyntaxError(position, "expected an escape sequence such as \\n instead of a raw control character in a string")
            } else if byte < 0x80 {
                position += 1
            } else {
                try scanMultibyteCharacter()
            }
        }
        throw JSONSyntaxError(position, "expected '\"' to close the string")
    }

    private mutating func scanEscape() throws(JSONSyntaxError) {
        let escapeStart = position
        position += 1
        guard position < count else { throw JSONSyntaxError(position, "expected an escape character after '\\'") }
        switch bytes[position] {
        case ASCIIByte.quote, ASCIIByte.backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            position += 1
        case UInt8(ascii: "u"):
            position += 1
            let unit = try scanHex4()
            if unit >= 0xD800 && unit <= 0xDBFF {
                guard position + 1 < count, bytes[position] == ASCIIByte.backslash, bytes[position + 1] == UInt8(ascii: "u")
                else {
                    throw JSONSyntaxError(escapeStart, "expected a high surrogate escape to be followed by a low surrogate \\uDC00-\\uDFFF")
                }
                let lowStart = position
                position += 2
                let low = try scanHex4()
                guard low >= 0xDC00 && low <= 0xDFFF else {
                    throw JSONSyntaxError(lowStart, "expected a low surrogate \\uDC00-\\uDFFF after a high surrogate")
                }
            } else if unit >= 0xDC00 && unit <= 0xDFFF {
                throw JSONSyntaxError(escapeStart, "expected a character, not a lone low surrogate escape")
            }
        default:
            throw JSONSyntaxError(position, "expected an escape such as \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX")
        }
    }

    private mutating func scanHex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard position < count, let digit = hexValue(bytes[position]) else {
                throw JSONSyntaxError(position, "expected 4 hex digits after \\u")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    /// Validates one UTF-8 sequence of 2–4 bytes (Unicode Table 3-7: no overlongs, no surrogates,
    /// nothing above U+10FFFF).
    private mutating func scanMultibyteCharacter() throws(JSONSyntaxError) {
        let lead = bytes[position]
        var following: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: following = 1
        case 0xE0: following = 2; lower = 0xA0
        case 0xE1...0xEC, 0xEE, 0xEF: following = 2
        case 0xED: following = 2; upper = 0x9F
        case 0xF0: following = 3; lower = 0x90
        case 0xF1...0xF3: following = 3
        case 0xF4: following = 3; upper = 0x8F
        default: throw JSONSyntaxError(invalidUTF8At: position)
        }
        guard position + following < count else { throw JSONSyntaxError(invalidUTF8At: position) }
        let second = bytes[position + 1]
        guard second >= lower && second <= upper else { throw JSONSyntaxError(invalidUTF8At: position) }
        var index = 2
        while index <= following {
            guard bytes[position + index] & 0xC0 == 0x80 else { throw JSONSyntaxError(invalidUTF8At: position) }
            index += 1
        }
        position += following + 1
    }

    /// The decoded text of a scanned string token.
    func string(_ token: StringToken) -> String {
        let raw = raw(token)
        if !token.escaped { return String(decoding: raw, as: UTF8.self) }
        return String(unsafeUninitializedCapacity: raw.count) { out in
            // Escapes only shrink: "\n" is 2 bytes for 1, "\uXXXX" 6 bytes for at most 3, a surrogate
            // pair 12 bytes for 4.
            var input = 0
            var output = 0
            @inline(__always) func put(_ byte: UInt8) {
                out[output] = byte
                output += 1
            }
            while input < raw.count {
                let byte = raw[input]
                guard byte == ASCIIByte.backslash else {
                    put(byte)
                    input += 1
                    continue
                }
                let escape = raw[input + 1]
                input += 2
                switch escape {
                case UInt8(ascii: "b"): put(0x08)
                case UInt8(ascii: "f"): put(0x0C)
                case UInt8(ascii: "n"): put(0x0A)
                case UInt8(ascii: "r"): put(0x0D)
                case UInt8(ascii: "t"): put(0x09)
                case UInt8(ascii: "u"):
                    var scalar = Self.hex4(raw, input)
                    input += 4
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        let low = Self.hex4(raw, input + 2)
                        input += 6
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    if scalar < 0x80 {
                        put(UInt8(scalar))
                    } else if scalar < 0x800 {
                        put(0xC0 | UInt8(scalar >> 6))
                        put(0x80 | UInt8(scalar & 0x3F))
                    } else if scalar < 0x10000 {
                        put(0xE0 | UInt8(scalar >> 12))
                        put(0x80 | UInt8(scalar >> 6 & 0x3F))
                        put(0x80 | UInt8(scalar & 0x3F))
                    } else {
                        put(0xF0 | UInt8(scalar >> 18))
                        put(0x80 | UInt8(scalar >> 12 & 0x3F))
                        put(0x80 | UInt8(scalar >> 6 & 0x3F))
                        put(0x80 | UInt8(scalar & 0x3F))
                    }
                default: put(escape)  // '"', '\\', '/'
                }
            }
            return output
        }
    }

    private static func hex4(_ raw: UnsafeRawBufferPointer, _ index: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 4 | (hexValue(raw[index + offset]) ?? 0) }
        return value
    }

    // MARK: Numbers and other values

    /// Scans a number in JSON syntax; returns it exactly, or nil when it is well formed but out of
    /// ``ExactDecimal``'s range.
    mutating func scanNumber() throws(JSONSyntaxError) -> ExactDecimal? {
        let start = position
        while position < count {
            let byte = bytes[position]
            let isDigit = byte &- ASCIIByte.zero < 10
            guard isDigit || byte == ASCIIByte.minus || byte == ASCIIByte.plus || byte == ASCIIByte.dot || byte | 0x20 == ASCIIByte.lowerE
            else { break }
            position += 1
        }
        do throws(DecimalParseError) {
            return try ExactDecimal.parse(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        } catch {
            guard error.reason == .syntax else { return nil }
            position = start + error.offset
            throw JSONSyntaxError(position, "expected a number in JSON syntax such as 12, 0.5 or 1e3 (\(error.message))")
        }
    }

    /// Scans `true`, `false` or `null` at the current position.
    mutating func scanLiteral(_ literal: StaticString) throws(JSONSyntaxError) {
        let length = literal.utf8CodeUnitCount
        let text = literal.utf8Start
        for index in 0..<length {
            guard position < count, bytes[position] == text[index] else {
                throw JSONSyntaxError(position, "expected a value (a string, number, object, array, true, false or null)")
            }
            position += 1
        }
    }

    /// Scans any value, validating it, and returns its kind. `depth` is the nesting level of the value.
    mutating func skipValue(depth: Int) throws(JSONSyntaxError) -> Kind {
        switch current {
        case ASCIIByte.quote:
            _ = try scanString()
            return .string
        case ASCIIByte.minus, ASCIIByte.zero...ASCIIByte.nine:
            _ = try scanNumber()
            return .number
        case UInt8(ascii: "t"):
            try scanLiteral("true")
            return .bool
        case UInt8(ascii: "f"):
            try scanLiteral("false")
            return .bool
        case UInt8(ascii: "n"):
            try scanLiteral("null")
            return .null
        case ASCIIByte.openBrace:
            guard depth <= Self.maxDepth else {
                throw JSONSyntaxError(position, "expected at most \(Self.maxDepth) levels of nesting")
            }
            position += 1
            skipWhitespace()
            if current == ASCIIByte.closeBrace {
                position += 1
                return .object
            }
            while true {
                guard current == ASCIIByte.quote else { throw JSONSyntaxError(position, "expected '\"' to start a key") }
                _ = try scanString()
                skipWhitespace()
                try expect(ASCIIByte.colon, "expected ':' after a key")
                skipWhitespace()
                _ = try skipValue(depth: depth + 1)
                skipWhitespace()
                if current == ASCIIByte.comma {
                    position += 1
                    skipWhitespace()
                } else if current == ASCIIByte.closeBrace {
                    position += 1
                    return .object
                } else {
                    throw JSONSyntaxError(position, "expected ',' or '}' after a value in an object")
                }
            }
        case ASCIIByte.openBracket:
            guard depth <= Self.maxDepth else {
                throw JSONSyntaxError(position, "expected at most \(Self.maxDepth) levels of nesting")
            }
            position += 1
            skipWhitespace()
            if current == ASCIIByte.closeBracket {
                position += 1
                return .array
            }
            while true {
                _ = try skipValue(depth: depth + 1)
                skipWhitespace()
                if current == ASCIIByte.comma {
                    position += 1
                    skipWhitespace()
                } else if current == ASCIIByte.closeBracket {
                    position += 1
                    return .array
                } else {
                    throw JSONSyntaxError(position, "expected ',' or ']' after a value in an array")
                }
            }
        default:
            throw JSONSyntaxError(position, "expected a value (a string, number, object, array, true, false or null)")
        }
    }
}

/// Where and why a line is not valid JSON.
struct JSONSyntaxError: Error {
    /// The byte offset of the offending byte (the line's length when it ended too early).
    var offset: Int
    /// What was expected there.
    var expected: String
    /// The bytes there are not valid UTF-8.
    var invalidUTF8 = false

    init(_ offset: Int, _ expected: String) {
        self.offset = offset
        self.expected = expected
    }

    init(invalidUTF8At offset: Int) {
        self.offset = offset
        self.expected = "valid UTF-8"
        self.invalidUTF8 = true
    }
}

@inline(__always)
private func hexValue(_ byte: UInt8) -> UInt32? {
    switch byte {
    case ASCIIByte.zero...ASCIIByte.nine: UInt32(byte &- ASCIIByte.zero)
    case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte &- UInt8(ascii: "a") &+ 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte &- UInt8(ascii: "A") &+ 10)
    default: nil
    }
}
