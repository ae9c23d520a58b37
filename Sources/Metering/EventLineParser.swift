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
                let reading =
                    token.escaped
                    ? Timestamp.readRFC3339(scanner.string(token)) : Timestamp.readRFC3339(scanner.raw(token))
                switch reading {
                case .time(let time): parsed = time
                case .malformed: parsed = nil
                case .beforeRange, .afterRange:
                    return .failure(Self.outOfRange(scanner.string(token), after: reading == .afterRange, receivedAt: receivedAt))
                }
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

    /// A valid RFC 3339 `time` outside 1677-09-21...2262-04-11: necessarily past the allowed skew
    /// or older than the dedup window, so answered with that side's code.
    private static func outOfRange(_ text: String, after: Bool, receivedAt: Timestamp) -> IngestError {
        let edge = Timestamp(nanosecondsSinceEpoch: after ? .max : .min)
        if after {
            return IngestError(
                code: .timestampInFuture,
                message: "\"time\" \(IngestError.quoted(text)) is past \(edge), the latest time Tally can represent, so far ahead of the server's clock (\(receivedAt)): check the producer's clock",
                field: "time")
        }
        return IngestError(
            code: .timestampTooOld,
            message: "\"time\" \(IngestError.quoted(text)) is before \(edge), the earliest time Tally can represent, so older than the dedup window before the server's clock (\(receivedAt)); such events are not accepted",
            field: "time")
    }

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
