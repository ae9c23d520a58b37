/// Parses and validates one NDJSON event line into a ``UsageEvent``: the ingest hot path.
///
/// One pass over the bytes, no Foundation, no binary floating point; strings are decoded only when
/// they hold escapes. Every failure is an ``IngestError`` with a stable code and, when a field is at
/// fault, that field.
///
/// **Error precedence** when several things are wrong (the first applies):
/// 1. `invalid_json`: syntax, invalid UTF-8, raw control characters or bad escapes in strings,
///    bytes after the object, a top level that is not an object;
/// 2. `invalid_field` for an unknown or repeated top-level key (the first one in the line);
/// 3. `id`, 4. `customer`, 5. `meter`, 6. `value`, 7. `time`, 8. `properties`, each checked in full
///    before the next (`id` and `customer`: type, empty, longer than 255 bytes, then control
///    characters U+0000...U+001F and U+007F, which they may not hold even escaped).
///
/// ```swift
/// let parser = EventLineParser(meterCodes: ["api_calls"])
/// switch parser.parse(lineBytes, receivedAt: .now()) {
/// case .success(let event): …
/// case .failure(let error): …   // error.code, error.message, error.field
/// }
/// ```
public struct EventLineParser: Sendable {
    /// Time limits applied to an event's `time`.
    public struct Limits: Sendable, Hashable {
        /// How far ahead of the receive time an event's `time` may be (default 5 minutes).
        public var maxFutureSkewNanoseconds: Int64
        /// How far behind the receive time an event's `time` may be (default 35 days, the dedup window).
        public var dedupWindowNanoseconds: Int64

        /// Creates limits; negative values count as zero.
        public init(
            maxFutureSkewNanoseconds: Int64 = 5 * Timestamp.nanosecondsPerMinute,
            dedupWindowNanoseconds: Int64 = 35 * Timestamp.nanosecondsPerDay
        ) {
            self.maxFutureSkewNanoseconds = maxFutureSkewNanoseconds
            self.dedupWindowNanoseconds = dedupWindowNanoseconds
        }
    }

    /// The meter codes from the config; any other `meter` is `unknown_meter`.
    public var meterCodes: Set<String>
    /// The time limits.
    public var limits: Limits

    /// The top-level fields an event may have, in the order they are validated.
    public static let allowedFields = ["id", "customer", "meter", "value", "time", "properties"]
    /// The longest `id`, `customer` or property key, in UTF-8 bytes.
    public static let maxIdentifierBytes = 255
    /// The most properties an event may have.
    public static let maxProperties = 64
    /// The most fractional digits a `value` may have.
    public static let maxValueFractionalDigits = 12
    /// Every `value` must be below this: 10^18.
    public static let valueLimit = ExactDecimal(normalizedSignificand: 1_000_000_000_000_000_000, scale: 0)

    /// Creates a parser accepting the given meter codes.
    public init(meterCodes: Set<String>, limits: Limits = Limits()) {
        self.meterCodes = meterCodes
        self.limits = limits
    }

    /// Whether `line` holds only spaces, tabs and carriage returns (or nothing): such lines are
    /// skipped without an answer.
    public static func isBlank(_ line: UnsafeRawBufferPointer) -> Bool {
        for byte in line where byte != ASCIIByte.space && byte != ASCIIByte.tab && byte != ASCIIByte.carriageReturn {
            return false
        }
        return true
    }

    /// Parses and validates one line (without its `\n`; a trailing `\r` is whitespace).
    ///
    /// `receivedAt` is the server's receive time, used for the `time` window. A line without `time`
    /// gives an event whose `time` is nil.
    public func parse(_ line: UnsafeRawBufferPointer, receivedAt: Timestamp) -> Result<UsageEvent, IngestError> {
        var scan = LineScan(scanner: JSONScanner(line))
        do throws(JSONSyntaxError) {
            try scan.run()
        } catch {
            return .failure(Self.jsonError(error, line))
        }
        return validate(scan, receivedAt: receivedAt)
    }

    /// Parses and validates one line given as a `String` (see ``parse(_:receivedAt:)-(UnsafeRawBufferPointer,_)``).
    public func parse(_ line: String, receivedAt: Timestamp) -> Result<UsageEvent, IngestError> {
        var line = line
        return line.withUTF8 { parse(UnsafeRawBufferPointer($0), receivedAt: receivedAt) }
    }

    // MARK: Validation

    private func validate(_ scan: LineScan, receivedAt: Timestamp) -> Result<UsageEvent, IngestError> {
        if let error = scan.keyError { return .failure(error) }
        let scanner = scan.scanner

        let id: String
        switch identifier(scan.id, name: "id", scanner) {
        case .success(let value): id = value
        case .failure(let error): return .failure(error)
        }
        let customer: String
        switch identifier(scan.customer, name: "customer", scanner) {
        case .success(let value): customer = value
        case .failure(let error): return .failure(error)
        }

        let meter: String
        switch scan.meter {
        case .absent, .other(.null):
            return .failure(Self.missing("meter", "a meter code from the config"))
        case .string(let token):
            meter = scanner.string(token)
            guard meterCodes.contains(meter) else {
                return .failure(
                    IngestError(
                        code: .unknownMeter,
                        message: "unknown meter \(IngestError.quoted(meter)); add it to the meters in the config, or send one of the configured meter codes",
                        field: "meter"))
            }
        case .number, .other:
            return .failure(Self.wrongType("meter", scan.meter, "a string naming a meter from the config"))
        }

        let value: ExactDecimal
        switch Self.value(scan.value, scanner) {
        case .success(let parsed): value = parsed
        case .failure(let error): return .failure(error)
        }

        var time: Timestamp?
        if case .absent = scan.time {
            time = nil
        } else {
            let parsed: Timestamp?
            switch scan.time {
            case .string(let token):
                parsed =
                    token.escaped
                    ? Timestamp.parseRFC3339(scanner.string(token)) : Timestamp.parseRFC3339(scanner.raw(token))
            case .number(let number): parsed = number.flatMap(Timestamp.fromUnix)
            case .absent, .other: parsed = nil
            }
            guard let parsed else { return .failure(Self.invalidTime(scan.time, scanner)) }
            if let error = checkWindow(parsed, receivedAt: receivedAt) { return .failure(error) }
            time = parsed
        }

        if let error = scan.propertiesError { return .failure(error) }
        return .success(
            UsageEvent(id: id, customer: customer, meter: meter, value: value, time: time, properties: scan.properties))
    }

    /// `id` and `customer`: a string of 1...255 bytes.
    private func identifier(_ field: RawField, name: String, _ scanner: JSONScanner) -> Result<String, IngestError> {
        switch field {
        case .absent, .other(.null):
            return .failure(Self.missing(name, "a string of 1 to \(Self.maxIdentifierBytes) bytes"))
        case .string(let token):
            let text = scanner.string(token)
            let length = token.escaped ? text.utf8.count : token.end - token.start
            if length == 0 {
                return .failure(
                    IngestError(
                        code: .invalidField,
                        message: "\"\(name)\" is empty; send a string of 1 to \(Self.maxIdentifierBytes) bytes",
                        field: name))
            }
            if length > Self.maxIdentifierBytes {
                return .failure(
                    IngestError(
                        code: .idTooLong,
                        message: "\"\(name)\" is \(length) bytes long; the maximum is \(Self.maxIdentifierBytes) bytes of UTF-8",
                        field: name))
            }
            if let control = Self.firstControlCharacter(token.escaped ? nil : scanner.raw(token), text) {
                return .failure(
                    IngestError(
                        code: .invalidField,
                        message: "\"\(name)\" holds a control character (U+\(Self.hexScalar(control))); control characters (U+0000 to U+001F and U+007F) are not allowed in \"\(name)\": send printable text",
                        field: name))
            }
            return .success(text)
        case .number, .other:
            return .failure(Self.wrongType(name, field, "a string of 1 to \(Self.maxIdentifierBytes) bytes"))
        }
    }

    /// The first control character (U+0000...U+001F or U+007F) of an identifier, or nil. An unescaped
    /// token (`raw` given) can only hold U+007F, since the scanner rejects raw bytes below 0x20; an
    /// escaped one is checked in its decoded `text`.
    private static func firstControlCharacter(_ raw: UnsafeRawBufferPointer?, _ text: String) -> UInt8? {
        if let raw {
            for byte in raw where byte == 0x7F { return byte }
            return nil
        }
        for byte in text.utf8 where byte < 0x20 || byte == 0x7F { return byte }
        return nil
    }

    private static func hexScalar(_ byte: UInt8) -> String {
        "00" + hexByte(byte).uppercased()
    }

    private static func value(_ field: RawField, _ scanner: JSONScanner) -> Result<ExactDecimal, IngestError> {
        let parsed: ExactDecimal?
        switch field {
        case .absent:
            return .success(.one)
        case .number(let number):
            parsed = number
        case .string(let token):
            var outcome: DecimalOutcome
            if token.escaped {
                var text = scanner.string(token)
                outcome = text.withUTF8 { decimal(UnsafeRawBufferPointer($0)) }
            } else {
                outcome = decimal(scanner.raw(token))
            }
            switch outcome {
            case .value(let number): parsed = number
            case .outOfRange: parsed = nil
            case .syntax:
                return .failure(
                    invalidValue(
                        "\"value\" \(IngestError.quoted(scanner.string(token))) is not a decimal number; write it like 12.5 or \"12.5\" (digits, an optional '.', no thousands separators or spaces)"
                    ))
            }
        case .other(let kind):
            return .failure(invalidValue("\"value\" must be a decimal number like 12.5 or a decimal string like \"12.5\", not \(kind.phrase)"))
        }
        guard let value = parsed else {
            return .failure(
                invalidValue("\"value\" is out of range: it must be below 10^18 with at most \(maxValueFractionalDigits) fractional digits"))
        }
        if value.isNegative {
            return .failure(invalidValue("\"value\" must be zero or more, not \(value)"))
        }
        if value.scale > maxValueFractionalDigits {
            return .failure(
                invalidValue("\"value\" \(value) has \(value.scale) fractional digits; at most \(maxValueFractionalDigits) are allowed"))
        }
        if !(value < valueLimit) {
            return .failure(invalidValue("\"value\" \(value) is too large: it must be below 10^18 (1000000000000000000)"))
        }
        return .success(value)
    }

    private enum DecimalOutcome {
        case value(ExactDecimal), syntax, outOfRange
    }

    private static func decimal(_ bytes: UnsafeRawBufferPointer) -> DecimalOutcome {
        do throws(DecimalParseError) {
            return .value(try ExactDecimal.parse(bytes))
        } catch {
            return error.reason == .syntax ? .syntax : .outOfRange
        }
    }

    private func checkWindow(_ time: Timestamp, receivedAt: Timestamp) -> IngestError? {
        let skew = max(limits.maxFutureSkewNanoseconds, 0)
        if time > receivedAt.adding(nanoseconds: skew) {
            let ahead = time.nanoseconds(since: receivedAt) / Timestamp.nanosecondsPerSecond
            return IngestError(
                code: .timestampInFuture,
                message: "\"time\" \(time) is \(ahead) s ahead of the server's clock (\(receivedAt)); at most \(skew / Timestamp.nanosecondsPerSecond) s ahead is allowed: check the producer's clock",
                field: "time")
        }
        let window = max(limits.dedupWindowNanoseconds, 0)
        if time < receivedAt.adding(nanoseconds: -window) {
            return IngestError(
                code: .timestampTooOld,
                message: "\"time\" \(time) is older than the dedup window of \(Self.describeDuration(window)) before the server's clock (\(receivedAt)); such events cannot be deduplicated and are not accepted",
                field: "time")
        }
        return nil
    }

    // MARK: Messages

    private static func missing(_ name: String, _ expected: String) -> IngestError {
        IngestError(code: .missingField, message: "missing \"\(name)\": every event needs \(expected)", field: name)
    }

    private static func wrongType(_ name: String, _ field: RawField, _ expected: String) -> IngestError {
        IngestError(code: .invalidField, message: "\"\(name)\" must be \(expected), not \(field.phrase)", field: name)
    }

    private static func invalidValue(_ message: String) -> IngestError {
        IngestError(code: .invalidValue, message: message, field: "value")
    }

    private static func invalidTime(_ field: RawField, _ scanner: JSONScanner) -> IngestError {
        let got: String
        switch field {
        case .string(let token): got = IngestError.quoted(scanner.string(token))
        case .number(let number): got = number.map { "\($0)" } ?? "an out-of-range number"
        default: got = field.phrase
        }
        return IngestError(
            code: .invalidField,
            message: "\"time\" \(got) is not a valid time; send an RFC 3339 string like \"2026-11-22T10:00:00Z\" or \"2026-11-22T11:00:00.5+01:00\", or Unix seconds or milliseconds as a number (1795341600 or 1795341600000)",
            field: "time")
    }

    private static func describeDuration(_ nanoseconds: Int64) -> String {
        if nanoseconds % Timestamp.nanosecondsPerDay == 0 { return "\(nanoseconds / Timestamp.nanosecondsPerDay) days" }
        return "\(nanoseconds / Timestamp.nanosecondsPerSecond) s"
    }

    static func jsonError(_ error: JSONSyntaxError, _ line: UnsafeRawBufferPointer) -> IngestError {
        if error.invalidUTF8 {
            return IngestError(
                code: .invalidJSON,
                message: "invalid UTF-8 at byte \(error.offset) (0x\(hexByte(line[error.offset]))); send the line as UTF-8")
        }
        let found: String
        if error.offset >= line.count {
            found = "the end of the line"
        } else {
            let byte = line[error.offset]
            switch byte {
            case 0x21...0x7E: found = "'\(Character(Unicode.Scalar(byte)))'"
            case ASCIIByte.space: found = "a space"
            default: found = "byte 0x\(hexByte(byte))"
            }
        }
        return IngestError(code: .invalidJSON, message: "invalid JSON at byte \(error.offset): \(error.expected), found \(found)")
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}

// MARK: - The scan

extension EventLineParser {
    /// A top-level field as scanned: absent, a string token, an exact number (nil when out of range), or
    /// another kind of value.
    enum RawField {
        case absent
        case string(JSONScanner.StringToken)
        case number(ExactDecimal?)
        case other(JSONScanner.Kind)

        var phrase: String {
            switch self {
            case .absent: "absent"
            case .string: "a string"
            case .number: "a number"
            case .other(let kind): kind.phrase
            }
        }
    }

    /// One pass over a line: checks the JSON and collects the fields for validation.
    struct LineScan {
        enum Field: Int {
            case id, customer, meter, value, time, properties
        }

        var scanner: JSONScanner
        var id = RawField.absent
        var customer = RawField.absent
        var meter = RawField.absent
        var value = RawField.absent
        var time = RawField.absent
        var properties: [UsageEvent.Property] = []
        /// The first problem with `properties`, if any.
        var propertiesError: IngestError?
        /// The first unknown or repeated top-level key, if any.
        var keyError: IngestError?
        private var seen: UInt8 = 0

        init(scanner: JSONScanner) {
            self.scanner = scanner
        }

        mutating func run() throws(JSONSyntaxError) {
            scanner.skipWhitespace()
            guard scanner.current == ASCIIByte.openBrace else {
                throw JSONSyntaxError(scanner.position, "expected a JSON object ('{')")
            }
            scanner.position += 1
            scanner.skipWhitespace()
            if scanner.current == ASCIIByte.closeBrace {
                scanner.position += 1
            } else {
                while true {
                    guard scanner.current == ASCIIByte.quote else {
                        throw JSONSyntaxError(scanner.position, "expected '\"' to start a field name")
                    }
                    let key = try scanner.scanString()
                    scanner.skipWhitespace()
                    try scanner.expect(ASCIIByte.colon, "expected ':' after a field name")
                    scanner.skipWhitespace()
                    try scanField(key)
                    scanner.skipWhitespace()
                    if scanner.current == ASCIIByte.comma {
                        scanner.position += 1
                        scanner.skipWhitespace()
                    } else if scanner.current == ASCIIByte.closeBrace {
                        scanner.position += 1
                        break
                    } else {
                        throw JSONSyntaxError(scanner.position, "expected ',' or '}' after a field value")
                    }
                }
            }
            scanner.skipWhitespace()
            guard scanner.isAtEnd else {
                throw JSONSyntaxError(scanner.position, "expected the end of the line after the JSON object")
            }
            if propertiesError == nil && properties.count > 1 { sortProperties() }
        }

        private mutating func scanField(_ key: JSONScanner.StringToken) throws(JSONSyntaxError) {
            guard let field = identify(key) else {
                if keyError == nil {
                    keyError = IngestError(
                        code: .invalidField,
                        message: "unknown field \(IngestError.quoted(scanner.string(key))); allowed fields are id, customer, meter, value, time, properties",
                        field: scanner.string(key))
                }
                _ = try scanner.skipValue(depth: 2)
                return
            }
            let bit: UInt8 = 1 << UInt8(field.rawValue)
            if seen & bit != 0 {
                if keyError == nil {
                    let name = EventLineParser.allowedFields[field.rawValue]
                    keyError = IngestError(
                        code: .invalidField, message: "field \"\(name)\" appears twice; send each field once", field: name)
                }
                _ = try scanner.skipValue(depth: 2)
                return
            }
            seen |= bit
            switch field {
            case .id: id = try scanValue()
            case .customer: customer = try scanValue()
            case .meter: meter = try scanValue()
            case .value: value = try scanValue()
            case .time: time = try scanValue()
            case .properties:
                if scanner.current == ASCIIByte.openBrace {
                    try scanProperties()
                } else {
                    let kind = try scanner.skipValue(depth: 2)
                    propertiesError = IngestError(
                        code: .invalidField,
                        message: "\"properties\" must be a flat object of strings, numbers and bools, not \(kind.phrase)",
                        field: "properties")
                }
            }
        }

        private mutating func scanValue() throws(JSONSyntaxError) -> RawField {
            switch scanner.current {
            case ASCIIByte.quote: return .string(try scanner.scanString())
            case ASCIIByte.minus, ASCIIByte.zero...ASCIIByte.nine: return .number(try scanner.scanNumber())
            default: return .other(try scanner.skipValue(depth: 2))
            }
        }

        private func identify(_ key: JSONScanner.StringToken) -> Field? {
            if key.escaped {
                var text = scanner.string(key)
                return text.withUTF8 { Self.field(named: UnsafeRawBufferPointer($0)) }
            }
            return Self.field(named: scanner.raw(key))
        }

        private static func field(named name: UnsafeRawBufferPointer) -> Field? {
            switch name.count {
            case 2: return equals(name, "id") ? .id : nil
            case 4: return equals(name, "time") ? .time : nil
            case 5: return equals(name, "value") ? .value : (equals(name, "meter") ? .meter : nil)
            case 8: return equals(name, "customer") ? .customer : nil
            case 10: return equals(name, "properties") ? .properties : nil
            default: return nil
            }
        }

        @inline(__always)
        private static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
            let text = literal.utf8Start
            for index in 0..<bytes.count where bytes[index] != text[index] { return false }
            return true
        }

        private mutating func scanProperties() throws(JSONSyntaxError) {
            scanner.position += 1
            scanner.skipWhitespace()
            if scanner.current == ASCIIByte.closeBrace {
                scanner.position += 1
                return
            }
            while true {
                guard scanner.current == ASCIIByte.quote else {
                    throw JSONSyntaxError(scanner.position, "expected '\"' to start a property key")
                }
                let key = try scanner.scanString()
                scanner.skipWhitespace()
                try scanner.expect(ASCIIByte.colon, "expected ':' after a property key")
                scanner.skipWhitespace()
                let value: PropertyValue?
                var problem: String?
                switch scanner.current {
                case ASCIIByte.quote:
                    value = .string(scanner.string(try scanner.scanString()))
                case ASCIIByte.minus, ASCIIByte.zero...ASCIIByte.nine:
                    if let number = try scanner.scanNumber() {
                        value = .number(number)
                    } else {
                        value = nil
                        problem = "is a number out of range (at most 36 fractional digits and about 38 digits in all)"
                    }
                case UInt8(ascii: "t"):
                    try scanner.scanLiteral("true")
                    value = .bool(true)
                case UInt8(ascii: "f"):
                    try scanner.scanLiteral("false")
                    value = .bool(false)
                default:
                    let kind = try scanner.skipValue(depth: 3)
                    value = nil
                    problem = "must be a string, number or bool, not \(kind.phrase)"
                }
                if propertiesError == nil {
                    addProperty(key, value, problem)
                }
                scanner.skipWhitespace()
                if scanner.current == ASCIIByte.comma {
                    scanner.position += 1
                    scanner.skipWhitespace()
                } else if scanner.current == ASCIIByte.closeBrace {
                    scanner.position += 1
                    return
                } else {
                    throw JSONSyntaxError(scanner.position, "expected ',' or '}' after a property value")
                }
            }
        }

        private mutating func addProperty(_ keyToken: JSONScanner.StringToken, _ value: PropertyValue?, _ problem: String?) {
            let key = scanner.string(keyToken)
            func fail(_ message: String) {
                propertiesError = IngestError(code: .invalidField, message: message, field: "properties")
            }
            if let problem { return fail("property \(IngestError.quoted(key)) \(problem)") }
            let length = key.utf8.count
            if length == 0 { return fail("property keys must not be empty") }
            if length > EventLineParser.maxIdentifierBytes {
                return fail("property key \(IngestError.quoted(key)) is \(length) bytes long; the maximum is \(EventLineParser.maxIdentifierBytes) bytes")
            }
            if properties.count == EventLineParser.maxProperties {
                return fail("\"properties\" has more than \(EventLineParser.maxProperties) entries; send at most \(EventLineParser.maxProperties)")
            }
            if properties.isEmpty { properties.reserveCapacity(4) }
            properties.append(UsageEvent.Property(key: key, value: value!))
        }

        /// Sorts by key bytes and rejects repeated keys.
        private mutating func sortProperties() {
            properties.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for index in 1..<properties.count where properties[index - 1].key.utf8.elementsEqual(properties[index].key.utf8) {
                let key = properties[index].key
                propertiesError = IngestError(
                    code: .invalidField, message: "property \(IngestError.quoted(key)) appears twice; send each key once",
                    field: "properties")
                properties = []
                return
            }
        }
    }
}
