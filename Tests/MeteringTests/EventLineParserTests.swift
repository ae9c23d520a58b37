import Metering
import Testing

/// 2026-11-22T10:00:00Z, the receive time of every line below.
private let received = Timestamp(nanosecondsSinceEpoch: 1_795_341_600_000_000_000)
private let parser = EventLineParser(meterCodes: ["api_calls", "storage_gb", "tokens"])
private let base = #""id":"evt_1","customer":"cus_42","meter":"api_calls""#

private func parse(_ line: String, with parser: EventLineParser = parser) -> Result<UsageEvent, IngestError> {
    parser.parse(line, receivedAt: received)
}

private func parseBytes(_ bytes: [UInt8]) -> Result<UsageEvent, IngestError> {
    bytes.withUnsafeBytes { parser.parse($0, receivedAt: received) }
}

private func event(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> UsageEvent {
    switch parse(line) {
    case .success(let event): return event
    case .failure(let error):
        Issue.record("expected success, got \(error)", sourceLocation: sourceLocation)
        throw error
    }
}

private func failure(_ result: Result<UsageEvent, IngestError>) -> IngestError? {
    if case .failure(let error) = result { return error }
    return nil
}

private func d(_ text: String) -> ExactDecimal { ExactDecimal(text)! }

@Suite("EventLineParser accepts")
struct EventLineParserAcceptTests {
    @Test func fullEvent() throws {
        let line = #"{"id":"evt_01J9X","customer":"cus_42","meter":"api_calls","value":1,"time":"2026-11-22T10:00:00Z","properties":{"region":"eu"}}"#
        let parsed = try event(line)
        #expect(parsed.id == "evt_01J9X")
        #expect(parsed.customer == "cus_42")
        #expect(parsed.meter == "api_calls")
        #expect(parsed.value == 1)
        #expect(parsed.time == received)
        #expect(parsed.properties == [UsageEvent.Property(key: "region", value: .string("eu"))])
        #expect(parsed.property("region") == .string("eu"))
        #expect(parsed.property("missing") == nil)
    }

    @Test func minimalEventUsesDefaults() throws {
        let parsed = try event("{\(base)}")
        #expect(parsed == UsageEvent(id: "evt_1", customer: "cus_42", meter: "api_calls"))
        #expect(parsed.value == 1)
        #expect(parsed.time == nil)
        #expect(parsed.properties.isEmpty)
    }

    @Test(arguments: [
        "  { \"id\" : \"evt_1\" ,\t\"customer\":\"cus_42\",\r\n\"meter\":\"api_calls\" }  ",
        "{\(base)}\r",
        "\t{\(base)}\r",
        "{\"meter\":\"api_calls\",\"customer\":\"cus_42\",\"id\":\"evt_1\"}",
        "{\(base),\"properties\":{}}",
        "{\"\\u0069d\":\"evt_1\",\"customer\":\"cus_42\",\"meter\":\"api_calls\"}",
    ])
    func whitespaceOrderAndEscapedKeys(line: String) throws {
        let parsed = try event(line)
        #expect(parsed == UsageEvent(id: "evt_1", customer: "cus_42", meter: "api_calls"))
    }

    @Test(arguments: [
        (#""a\nb""#, "a\nb"), (#""caf\u00e9""#, "café"), (#""\ud83d\ude00""#, "😀"), (#""x\/y""#, "x/y"),
        (#""q\"q""#, "q\"q"), (#""b\\s""#, "b\\s"), (#""\b\f\r\t""#, "\u{8}\u{C}\r\t"), (#""\u00E9\u20ac""#, "é€"),
        ("\"客户🙂\"", "客户🙂"), (#""\u0000""#, "\u{0}"), (#""\uD83D\uDE00!""#, "😀!"),
    ])
    func decodesStrings(json: String, expected: String) throws {
        // Decoded in a property value; in `id` and `customer` too unless it holds a control
        // character, which identifiers may not (see EventLineParserRejectTests.controlCharactersInIdentifiers).
        let inProperty = try event("{\(base),\"properties\":{\"k\":\(json)}}")
        #expect(inProperty.property("k") == .string(expected))
        guard !expected.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return }
        let parsed = try event("{\"id\":\(json),\"customer\":\(json),\"meter\":\"api_calls\"}")
        #expect(parsed.id == expected)
        #expect(parsed.customer == expected)
    }

    @Test(arguments: [
        ("1e3", "1000"), ("0.1", "0.1"), (#""0.1""#, "0.1"), (#""1e3""#, "1000"), ("0", "0"), ("-0", "0"),
        ("12.500", "12.5"), ("0.000000000001", "0.000000000001"), (#""\u0031.5""#, "1.5"),
        ("999999999999999999.999999999999", "999999999999999999.999999999999"), ("1.5E+2", "150"),
        ("1000000000000000000e-1", "100000000000000000"), ("0.0000000000010000", "0.000000000001"),
    ])
    func valueForms(json: String, expected: String) throws {
        let parsed = try event("{\(base),\"value\":\(json)}")
        #expect(parsed.value == d(expected))
        #expect(parsed.value.description == expected)
    }

    @Test func tenthsSumExactly() throws {
        var sum = ExactDecimal.zero
        for _ in 0..<10 { sum = try sum.adding(event("{\(base),\"value\":0.1}").value) }
        #expect(sum == 1)
    }

    @Test(arguments: [
        (#""2026-11-22T11:00:00+01:00""#, Int64(0)), (#""2026-11-22t10:00:00z""#, 0),
        (#""2026-11-22T09:59:59.999Z""#, -1_000_000), (#""2026-11-22T05:00:00-05:00""#, 0),
        ("1795341600", 0), ("1795341600000", 0), ("1795341600.5", 500_000_000), ("1795341600123", 123_000_000),
        ("1795341599.999999999", -1), ("1.7953416e9", 0), (#""2026-11-22T10:00:00\u005a""#, 0),
    ])
    func timeForms(json: String, offset: Int64) throws {
        let parsed = try event("{\(base),\"time\":\(json)}")
        #expect(parsed.time == received.adding(nanoseconds: offset))
    }

    @Test func propertiesAreSortedAndTyped() throws {
        let line = "{\(base),\"properties\":{\"z\":\"1\",\"a\":2,\"m\":true,\"b\":false,\"n\":1.50,\"e\":\"\\u00e9\"}}"
        let parsed = try event(line)
        #expect(parsed.properties.map(\.key) == ["a", "b", "e", "m", "n", "z"])
        #expect(parsed.property("a") == .number(2))
        #expect(parsed.property("b") == .bool(false))
        #expect(parsed.property("e") == .string("é"))
        #expect(parsed.property("m") == .bool(true))
        #expect(parsed.property("n") == .number(d("1.5")))
        #expect(parsed.property("z") == .string("1"))
        #expect(parsed.properties.map(\.value.text) == ["2", "false", "é", "true", "1.5", "1"])
    }

    @Test func propertiesSortByUTF8Bytes() throws {
        let parsed = try event("{\(base),\"properties\":{\"é\":1,\"a\":1,\"Z\":1,\"B\":1,\"ab\":1}}")
        #expect(parsed.properties.map(\.key) == ["B", "Z", "a", "ab", "é"])
    }

    @Test func sixtyFourPropertiesAreAllowed() throws {
        let entries = (0..<64).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        let parsed = try event("{\(base),\"properties\":{\(entries)}}")
        #expect(parsed.properties.count == 64)
        #expect(parsed.properties.first?.key == "k0")
        #expect(parsed.properties.last?.key == "k9")
    }

    @Test func identifierLengthsAreInBytesAfterUnescaping() throws {
        let longest = String(repeating: "x", count: 255)
        #expect(try event("{\"id\":\"\(longest)\",\"customer\":\"\(longest)\",\"meter\":\"api_calls\"}").id == longest)
        // 200 escapes of 6 bytes each decode to 2 bytes each: 400 bytes.
        let escaped = String(repeating: "\\u00e9", count: 100)
        #expect(try event("{\"id\":\"\(escaped)\",\"customer\":\"c\",\"meter\":\"api_calls\"}").id.utf8.count == 200)
    }

    @Test func rawBytesAndStringAgree() throws {
        let line = "{\(base),\"value\":\"2.5\",\"properties\":{\"r\":\"eu\"}}"
        let fromBytes = parseBytes(Array(line.utf8))
        #expect(try fromBytes.get() == event(line))
    }
}

@Suite("EventLineParser rejects")
struct EventLineParserRejectTests {
    @Test(arguments: [
        "", "not json", "{", "}", "{\"id\":}", "{\"id\":\"e1\",}", "{\"id\":\"e1\"} x", "{\"id\":\"e1\"}{}",
        "[1]", "\"str\"", "42", "null", "{'id':'e1'}", "{\"id\":\"a\tb\"}", "{\"id\":\"a\\xb\"}",
        "{\"id\":\"\\ud83d\"}", "{\"id\":\"\\ude00\"}", "{\"id\":\"\\ud83d\\u0041\"}", "{\"id\":\"\\u12\"}",
        "{\"id\":\"\\u12G4\"}", "{\"id\":01}", "{\"value\":1.}", "{\"value\":+1}", "{\"value\":.5}", "{\"value\":NaN}",
        "{\"value\":Infinity}", "{\"value\":1e}", "{\"value\":--1}", "{\"id\":\"e1\" \"customer\":\"c\"}",
        "{\"id\":\"e1", "{\"id\" \"e1\"}", "{\"id\":tru}", "{\"id\":nul}", "{\"id\":True}", "{id:\"e1\"}",
        "{\"id\":\"e1\"}}", "{\"properties\":{\"a\":1,}}", "{\"properties\":{\"a\" 1}}", "{\"x\":[1,2,]}",
        "{\"x\":[1 2]}", "{\"x\":{\"a\":1]}", "{\"id\":\"e1\"\u{0}}", "\u{FEFF}{\(base)}",
        "{\(base)}\u{A0}", "{\"vaule\":1,\"id\":}", "{\"id\":1.5.3}",
    ])
    func invalidJSON(line: String) {
        let error = failure(parse(line))
        #expect(error?.code == .invalidJSON, "\(line.debugDescription) gave \(String(describing: error))")
        #expect(error?.field == nil)
        #expect(error?.message.contains("at byte") == true)
    }

    @Test func invalidJSONMessageSaysWhereAndWhat() {
        let error = failure(parse("{\"id\":\"e1\",}"))
        #expect(error?.message == "invalid JSON at byte 11: expected '\"' to start a field name, found '}'")
        let end = failure(parse("{\"id\":\"e1\""))
        #expect(end?.message == "invalid JSON at byte 10: expected ',' or '}' after a field value, found the end of the line")
        let top = failure(parse("[1]"))
        #expect(top?.message.contains("expected a JSON object") == true)
        let control = failure(parse("{\"id\":\"a\u{1}b\"}"))
        #expect(control?.message.contains("byte 8") == true)
        #expect(control?.message.contains("byte 0x01") == true)
    }

    @Test func deepNestingIsInvalidJSON() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(failure(parse("{\(base),\"x\":\(deep)}"))?.code == .invalidJSON)
        let nested = String(repeating: "{\"a\":", count: 70) + "1" + String(repeating: "}", count: 70)
        #expect(failure(parse("{\(base),\"properties\":\(nested)}"))?.code == .invalidJSON)
        // Up to 64 levels is valid JSON: the unknown field is what is wrong.
        let ok = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect(failure(parse("{\(base),\"x\":\(ok)}"))?.code == .invalidField)
        // A pathological line does not overflow the stack.
        let huge = String(repeating: "[", count: 60_000)
        #expect(failure(parse("{\"x\":\(huge)}"))?.code == .invalidJSON)
    }

    @Test(arguments: [
        [0xFF], [0xC0, 0x80], [0xC1, 0xBF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF5, 0x80, 0x80, 0x80],
        [0xF4, 0x90, 0x80, 0x80], [0xE0, 0x80, 0x80], [0xF0, 0x80, 0x80, 0x80], [0x80], [0xC3, 0x28],
    ] as [[UInt8]])
    func invalidUTF8InStrings(bytes: [UInt8]) {
        let line = Array("{\"id\":\"a".utf8) + bytes + Array("b\",\"customer\":\"c\",\"meter\":\"api_calls\"}".utf8)
        let error = failure(parseBytes(line))
        #expect(error?.code == .invalidJSON)
        #expect(error?.message.contains("UTF-8") == true)
        #expect(error?.message.contains("byte 8") == true)
    }

    @Test func invalidUTF8OutsideStrings() {
        let line = Array("{\(base)}".utf8) + [0xC3, 0xA9]
        #expect(failure(parseBytes(line))?.code == .invalidJSON)
        let key = Array("{\"".utf8) + [0xFF] + Array("\":1}".utf8)
        #expect(failure(parseBytes(key))?.code == .invalidJSON)
    }

    @Test(arguments: [
        ("{\(base),\"vaule\":2}", "vaule"), ("{\(base),\"Value\":2}", "Value"), ("{\"idd\":\"e1\"}", "idd"),
        ("{\(base),\"id\":\"evt_2\"}", "id"), ("{\(base),\"meter\":\"tokens\"}", "meter"),
        ("{\(base),\"value\":1,\"value\":2}", "value"), ("{\(base),\"time\":1,\"time\":1}", "time"),
        ("{\(base),\"properties\":{},\"properties\":{}}", "properties"), ("{\(base),\"x\":{\"nested\":[1,{}]}}", "x"),
        ("{\(base),\"\":1}", ""),
    ])
    func unknownAndRepeatedFields(line: String, field: String) {
        let error = failure(parse(line))
        #expect(error?.code == .invalidField)
        #expect(error?.field == field)
    }

    @Test func unknownFieldMessageListsAllowedFields() {
        let error = failure(parse("{\(base),\"vaule\":2}"))
        #expect(error?.message.contains("\"vaule\"") == true)
        #expect(error?.message.contains("id, customer, meter, value, time, properties") == true)
    }

    @Test(arguments: [
        ("{\"customer\":\"c\",\"meter\":\"api_calls\"}", "id"), ("{\"id\":null,\"customer\":\"c\",\"meter\":\"api_calls\"}", "id"),
        ("{\"id\":\"e\",\"meter\":\"api_calls\"}", "customer"), ("{\"id\":\"e\",\"customer\":null,\"meter\":\"api_calls\"}", "customer"),
        ("{\"id\":\"e\",\"customer\":\"c\"}", "meter"), ("{\"id\":\"e\",\"customer\":\"c\",\"meter\":null}", "meter"),
        ("{}", "id"), ("{\"meter\":\"nope\"}", "id"),
    ])
    func missingFields(line: String, field: String) {
        let error = failure(parse(line))
        #expect(error?.code == .missingField)
        #expect(error?.field == field)
        #expect(error?.message.contains("missing \"\(field)\"") == true)
    }

    @Test(arguments: [
        ("{\"id\":1,\"customer\":\"c\",\"meter\":\"api_calls\"}", "id"), ("{\"id\":\"\",\"customer\":\"c\",\"meter\":\"api_calls\"}", "id"),
        ("{\"id\":true,\"customer\":\"c\",\"meter\":\"api_calls\"}", "id"), ("{\"id\":{},\"customer\":\"c\",\"meter\":\"api_calls\"}", "id"),
        ("{\"id\":[\"e\"],\"customer\":\"c\",\"meter\":\"api_calls\"}", "id"), ("{\"id\":\"e\",\"customer\":[],\"meter\":\"api_calls\"}", "customer"),
        ("{\"id\":\"e\",\"customer\":\"\",\"meter\":\"api_calls\"}", "customer"), ("{\"id\":\"e\",\"customer\":42,\"meter\":\"api_calls\"}", "customer"),
        ("{\"id\":\"e\",\"customer\":\"c\",\"meter\":7}", "meter"), ("{\"id\":\"e\",\"customer\":\"c\",\"meter\":false}", "meter"),
    ])
    func wrongTypesAndEmptyIdentifiers(line: String, field: String) {
        let error = failure(parse(line))
        #expect(error?.code == .invalidField)
        #expect(error?.field == field)
    }

    @Test(arguments: [
        (#""a\u0000b""#, "0000"), (#""a\nb""#, "000A"), (#""\t""#, "0009"), (#""x\u001f""#, "001F"),
        ("\"a\u{7F}b\"", "007F"), (#""\u007f""#, "007F"), (#""\r""#, "000D"), (#""caf\u00e9\b""#, "0008"),
    ])
    func controlCharactersInIdentifiers(json: String, scalar: String) {
        for field in ["id", "customer"] {
            let line =
                field == "id"
                ? "{\"id\":\(json),\"customer\":\"c\",\"meter\":\"api_calls\"}"
                : "{\"id\":\"e\",\"customer\":\(json),\"meter\":\"api_calls\"}"
            let error = failure(parse(line))
            #expect(error?.code == .invalidField, "\(field) \(json) gave \(String(describing: error))")
            #expect(error?.field == field)
            #expect(error?.message.contains("control character (U+\(scalar))") == true)
            #expect(error?.message.contains("not allowed in \"\(field)\"") == true)
        }
    }

    @Test(arguments: [#""a b""#, #""caf\u00e9""#, "\"\u{80}\u{9F}\"", #""~!""#])
    func printableIdentifiersAreNotControlCharacters(json: String) throws {
        let parsed = try event("{\"id\":\(json),\"customer\":\(json),\"meter\":\"api_calls\"}")
        #expect(parsed.id == parsed.customer)
    }

    @Test func identifiersLongerThan255Bytes() {
        let long = String(repeating: "x", count: 256)
        let id = failure(parse("{\"id\":\"\(long)\",\"customer\":\"c\",\"meter\":\"api_calls\"}"))
        #expect(id?.code == .idTooLong)
        #expect(id?.field == "id")
        #expect(id?.message.contains("256 bytes") == true)
        let customer = failure(parse("{\"id\":\"e\",\"customer\":\"\(long)\",\"meter\":\"api_calls\"}"))
        #expect(customer?.code == .idTooLong)
        #expect(customer?.field == "customer")
        // 128 two-byte characters are 256 bytes, escaped or not.
        let accents = String(repeating: "é", count: 128)
        #expect(failure(parse("{\"id\":\"\(accents)\",\"customer\":\"c\",\"meter\":\"api_calls\"}"))?.code == .idTooLong)
        let escaped = String(repeating: "\\u00e9", count: 128)
        #expect(failure(parse("{\"id\":\"\(escaped)\",\"customer\":\"c\",\"meter\":\"api_calls\"}"))?.code == .idTooLong)
    }

    @Test(arguments: ["bogus", "", "API_CALLS", "api_calls "])
    func unknownMeters(meter: String) {
        let error = failure(parse("{\"id\":\"e\",\"customer\":\"c\",\"meter\":\"\(meter)\"}"))
        #expect(error?.code == .unknownMeter)
        #expect(error?.field == "meter")
        #expect(error?.message.contains("\"\(meter)\"") == true)
        #expect(error?.message.contains("config") == true)
    }

    @Test(arguments: [
        "true", "{}", "[]", "null", "\"abc\"", "\"1,5\"", "\" 1\"", "\"1 \"", "\"\"", "\"+1\"", "\".5\"", "\"0x10\"",
        "\"NaN\"", "-1", "-0.5", "\"-2\"", "0.0000000000001", "\"0.1234567890123\"", "1e18", "\"1000000000000000000\"",
        "1000000000000000000.5", "1e-40", "1e400", "\"1e400\"", "170141183460469231731687303715884105728",
    ])
    func invalidValues(json: String) {
        let error = failure(parse("{\(base),\"value\":\(json)}"))
        #expect(error?.code == .invalidValue, "\(json) gave \(String(describing: error))")
        #expect(error?.field == "value")
    }

    @Test func invalidValueMessages() {
        #expect(failure(parse("{\(base),\"value\":-1}"))?.message.contains("zero or more") == true)
        #expect(failure(parse("{\(base),\"value\":\"1,5\"}"))?.message.contains("\"1,5\" is not a decimal number") == true)
        #expect(failure(parse("{\(base),\"value\":0.0000000000001}"))?.message.contains("13 fractional digits") == true)
        #expect(failure(parse("{\(base),\"value\":true}"))?.message.contains("not a bool") == true)
        #expect(failure(parse("{\(base),\"value\":1e18}"))?.message.contains("10^18") == true)
    }

    @Test(arguments: [
        "\"yesterday\"", "\"2026-11-22\"", "\"2026-11-22T10:00:00\"", "\"2026-11-22 10:00:00Z\"", "true", "null", "{}",
        "[]", "-5", "99999999999", "\"1795341600\"", "1e30", "\"\"",
    ])
    func invalidTimes(json: String) {
        let error = failure(parse("{\(base),\"time\":\(json)}"))
        #expect(error?.code == .invalidField, "\(json) gave \(String(describing: error))")
        #expect(error?.field == "time")
        #expect(error?.message.contains("RFC 3339") == true)
    }

    @Test func timeWindow() {
        let minute: Int64 = 60_000_000_000
        func line(_ time: Timestamp) -> String { "{\(base),\"time\":\"\(time.rfc3339)\"}" }
        // Exactly at the limits is accepted.
        #expect((try? parse(line(received.adding(nanoseconds: 5 * minute))).get()) != nil)
        #expect((try? parse(line(received.adding(nanoseconds: -35 * 1440 * minute))).get()) != nil)
        let future = failure(parse(line(received.adding(nanoseconds: 5 * minute + 1))))
        #expect(future?.code == .timestampInFuture)
        #expect(future?.field == "time")
        #expect(future?.message.contains("ahead") == true)
        let old = failure(parse(line(received.adding(nanoseconds: -35 * 1440 * minute - 1))))
        #expect(old?.code == .timestampTooOld)
        #expect(old?.field == "time")
        #expect(old?.message.contains("35 days") == true)
        // Unix numbers are checked the same way.
        #expect(failure(parse("{\(base),\"time\":1795342000}"))?.code == .timestampInFuture)
        #expect(failure(parse("{\(base),\"time\":1}"))?.code == .timestampTooOld)
    }

    @Test(arguments: [
        (#""2262-04-12T00:00:00Z""#, IngestError.Code.timestampInFuture), (#""9999-12-31T23:59:59.999Z""#, .timestampInFuture),
        (#""2262-04-11T23:47:16.854775808Z""#, .timestampInFuture), (#""3000-01-01T00:00:00\u002B01:00""#, .timestampInFuture),
        (#""0001-01-01T00:00:00Z""#, .timestampTooOld), (#""1677-09-21T00:12:43Z""#, .timestampTooOld),
        (#""0000-03-01T00:00:00-01:00""#, .timestampTooOld),
    ])
    func validTimesOutsideTheRepresentableRange(json: String, code: IngestError.Code) {
        let error = failure(parse("{\(base),\"time\":\(json)}"))
        #expect(error?.code == code, "\(json) gave \(String(describing: error))")
        #expect(error?.field == "time")
        #expect(error?.message.contains(code == .timestampInFuture ? "latest time Tally can represent" : "earliest time Tally can represent") == true)
        // Malformed times keep invalid_field, whatever their year.
        #expect(failure(parse("{\(base),\"time\":\"9999-12-31\"}"))?.code == .invalidField)
        #expect(failure(parse("{\(base),\"time\":\"0001-02-30T00:00:00Z\"}"))?.code == .invalidField)
    }

    @Test func customLimits() {
        let strict = EventLineParser(
            meterCodes: ["api_calls"],
            limits: .init(maxFutureSkewNanoseconds: 0, dedupWindowNanoseconds: 3_600_000_000_000))
        let ahead = "{\(base),\"time\":\"2026-11-22T10:00:00.000000001Z\"}"
        #expect(failure(parse(ahead, with: strict))?.code == .timestampInFuture)
        #expect(failure(parse(ahead))?.code == nil)
        let hourAgo = "{\(base),\"time\":\"2026-11-22T08:59:59Z\"}"
        #expect(failure(parse(hourAgo, with: strict))?.code == .timestampTooOld)
        #expect(failure(parse(hourAgo, with: strict))?.message.contains("3600 s") == true)
        #expect(EventLineParser.Limits().maxFutureSkewNanoseconds == 300_000_000_000)
        #expect(EventLineParser.Limits().dedupWindowNanoseconds == 35 * 86_400_000_000_000)
    }

    @Test(arguments: [
        ("\"eu\"", "must be a flat object"), ("[]", "not an array"), ("null", "not null"), ("1", "not a number"),
        ("{\"a\":{}}", "\"a\" must be a string, number or bool, not an object"),
        ("{\"a\":[1]}", "\"a\" must be a string, number or bool, not an array"),
        ("{\"ok\":1,\"b\":null}", "\"b\" must be a string, number or bool, not null"),
        ("{\"\":1}", "must not be empty"), ("{\"a\":1,\"a\":2}", "\"a\" appears twice"),
        ("{\"a\":1e99}", "\"a\" is a number out of range"),
        ("{\"\(String(repeating: "k", count: 256))\":1}", "256 bytes"),
    ])
    func invalidProperties(json: String, messagePart: String) {
        let error = failure(parse("{\(base),\"properties\":\(json)}"))
        #expect(error?.code == .invalidField)
        #expect(error?.field == "properties")
        #expect(error?.message.contains(messagePart) == true, "\(String(describing: error?.message))")
    }

    @Test func tooManyProperties() {
        let entries = (0..<65).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
        let error = failure(parse("{\(base),\"properties\":{\(entries)}}"))
        #expect(error?.code == .invalidField)
        #expect(error?.field == "properties")
        #expect(error?.message.contains("64") == true)
    }

    @Test(arguments: [
        // JSON syntax beats everything.
        ("{\"vaule\":1,\"meter\":\"nope\",\"value\":-1,\"id\":", IngestError.Code.invalidJSON, nil as String?),
        // Unknown keys beat field checks.
        ("{\"meter\":\"nope\",\"idd\":\"e1\"}", .invalidField, "idd"),
        // Then id, customer, meter, value, time, properties.
        ("{\"meter\":\"nope\",\"value\":-1}", .missingField, "id"),
        ("{\"id\":\"e\",\"meter\":\"nope\",\"value\":-1}", .missingField, "customer"),
        ("{\"id\":\"e\",\"customer\":\"c\",\"meter\":\"nope\",\"value\":-1}", .unknownMeter, "meter"),
        ("{\(base),\"value\":-1,\"time\":\"x\",\"properties\":1}", .invalidValue, "value"),
        ("{\(base),\"time\":\"x\",\"properties\":1}", .invalidField, "time"),
        ("{\(base),\"time\":1,\"properties\":1}", .timestampTooOld, "time"),
        ("{\(base),\"properties\":1}", .invalidField, "properties"),
        ("{\"properties\":{\"a\":{}},\"value\":true,\"id\":\"e\",\"customer\":\"c\",\"meter\":\"api_calls\"}", .invalidValue, "value"),
    ])
    func errorPrecedence(line: String, code: IngestError.Code, field: String?) {
        let error = failure(parse(line))
        #expect(error?.code == code)
        #expect(error?.field == field)
    }
}

@Suite("EventLineParser blank lines and errors")
struct EventLineParserMiscTests {
    @Test(arguments: [("", true), ("   ", true), ("\t \r", true), ("\r", true), (" x", false), ("{}", false),
        ("\n", false), ("\u{A0}", false), (" \r\0", false)])
    func blankLines(line: String, blank: Bool) {
        var line = line
        #expect(line.withUTF8 { EventLineParser.isBlank(UnsafeRawBufferPointer($0)) } == blank)
    }

    @Test func ingestErrorCodes() {
        #expect(IngestError.Code.allCodes.map(\.rawValue) == [
            "invalid_json", "missing_field", "invalid_field", "unknown_meter", "invalid_value", "id_too_long",
            "line_too_long", "timestamp_in_future", "timestamp_too_old", "period_closed", "idempotency_conflict",
            "unavailable",
        ])
        #expect(Set(IngestError.Code.allCodes).count == 12)
        #expect(IngestError.Code(rawValue: "invalid_json") == .invalidJSON)
    }

    @Test func ingestErrorHelpers() {
        let long = IngestError.lineTooLong(maxLineBytes: 65_536)
        #expect(long.code == .lineTooLong)
        #expect(long.message.contains("65536"))
        #expect(IngestError.periodClosed(period: "2026-10").field == "time")
        let conflict = IngestError.idempotencyConflict(customer: "cus_42", id: String(repeating: "é", count: 100))
        #expect(conflict.code == .idempotencyConflict)
        #expect(conflict.message.contains("…"))
        #expect(IngestError.unavailable("the disk is full").message.contains("retry later"))
        #expect(IngestError(code: .invalidValue, message: "m", field: "value").description == "invalid_value (value): m")
    }

    @Test func propertyValueText() {
        #expect(PropertyValue.string("eu").text == "eu")
        #expect(PropertyValue.number(ExactDecimal("1.50")!).text == "1.5")
        #expect(PropertyValue.bool(true).text == "true")
        #expect(PropertyValue.bool(false).text == "false")
    }

    @Test func manyLinesParseConsistently() throws {
        // A mix of good and bad lines, parsed twice: same results (no hidden state).
        var lines: [String] = []
        for index in 0..<500 {
            switch index % 4 {
            case 0: lines.append("{\"id\":\"evt_\(index)\",\"customer\":\"cus_\(index % 7)\",\"meter\":\"tokens\",\"value\":\(index).25}")
            case 1: lines.append("{\"id\":\"evt_\(index)\",\"customer\":\"c\",\"meter\":\"tokens\",\"value\":\"x\(index)\"}")
            case 2: lines.append("{\"id\":\"evt_\(index)\",\"customer\":\"c\",\"meter\":\"api_calls\",\"properties\":{\"i\":\(index)}}")
            default: lines.append("{\"id\":\"evt_\(index)\"")
            }
        }
        let first = lines.map { parse($0) }
        let second = lines.map { parse($0) }
        #expect(first == second)
        #expect(first.filter { (try? $0.get()) != nil }.count == 250)
        #expect(try first[4].get().value == ExactDecimal("4.25")!)
    }
}


@Suite("EventLineParser robustness")
struct EventLineParserRobustnessTests {
    /// 20,000 random mutations (byte replacements, insertions, deletions, truncations) of valid lines:
    /// the parser never traps, answers deterministically with a known code, and every event it
    /// accepts satisfies the documented invariants.
    @Test func mutatedLinesNeverBreakTheInvariants() throws {
        let seeds = [
            #"{"id":"evt_01J9X","customer":"cus_42","meter":"api_calls","value":1.5e2,"time":"2026-11-22T10:00:00Z","properties":{"region":"eu","n":-0.5,"b":true}}"#,
            #"{"id":"a\u00e9\ud83d\ude00\n","customer":"c","meter":"api_calls","value":"0.1","x":[1,{"a":null},[]]}"#,
            "{\"id\":\"客户\",\"customer\":\"c\",\"meter\":\"tokens\",\"time\":1795341600.25,\"properties\":{\"é\":\"x\",\"a\":1}}",
        ]
        let alphabet = Array("{}[]\":,\\u0123456789abcdefABCDEF-+.eE tnrfl\r\n\t".utf8) + [0xC3, 0xA9, 0xFF, 0x80, 0xED, 0xF0, 0x00]
        let knownCodes = Set(IngestError.Code.allCodes)
        var generator = SplitMix64(seed: 31337)
        var accepted = 0
        for index in 0..<20_000 {
            var bytes = Array(seeds[index % seeds.count].utf8)
            for _ in 0...(generator.next() % 4) {
                let position = bytes.isEmpty ? 0 : Int(generator.next() % UInt64(bytes.count))
                let byte = alphabet[Int(generator.next() % UInt64(alphabet.count))]
                switch generator.next() % 4 {
                case 0: if !bytes.isEmpty { bytes[position] = byte }
                case 1: bytes.insert(byte, at: position)
                case 2: if !bytes.isEmpty { bytes.remove(at: position) }
                default: bytes.removeSubrange(position...)
                }
            }
            let result = parseBytes(bytes)
            #expect(result == parseBytes(bytes))
            switch result {
            case .failure(let error):
                #expect(knownCodes.contains(error.code))
                #expect(!error.message.isEmpty)
            case .success(let event):
                accepted += 1
                #expect((1...255).contains(event.id.utf8.count) && (1...255).contains(event.customer.utf8.count))
                #expect(["api_calls", "storage_gb", "tokens"].contains(event.meter))
                #expect(!event.value.isNegative && event.value.scale <= 12 && event.value < EventLineParser.valueLimit)
                let keys = event.properties.map { Array($0.key.utf8) }
                #expect(zip(keys, keys.dropFirst()).allSatisfy { $0.lexicographicallyPrecedes($1) })
            }
        }
        #expect(accepted > 100)
    }
}
