import Metering
import Testing

/// Lines on which the `FuzzJSONScanner` target (Fuzz/, docs/FUZZING.md) found the scanner and
/// Foundation's `JSONSerialization` to disagree, read through the entry point it fuzzes. Both were
/// Foundation's leniency, not the scanner's: these tests keep the scanner to RFC 8259.
@Suite struct JSONScannerFuzzTests {
    private let parser = EventLineParser(meterCodes: ["api_calls", "active_users"])
    private let receivedAt = Timestamp(nanosecondsSinceEpoch: 1_795_341_600 * 1_000_000_000)

    private func error(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) -> IngestError? {
        guard case .failure(let error) = parser.parse(line, receivedAt: receivedAt) else {
            Issue.record("accepted: \(line)", sourceLocation: sourceLocation)
            return nil
        }
        return error
    }

    /// Foundation reads `{…,}` as an object; RFC 8259 has no trailing commas.
    @Test(arguments: [
        #"{"id":"evt_n4","customer":"cus_7","meter":"active_users","time":1595351600123,"properties":{"user":"u_\u00e9\n1"},}"#,
        #"{"id":"e","customer":"c","meter":"api_calls","properties":{"a":1,}}"#,
        #"{"id":"e","customer":"c","meter":"api_calls","properties":{"a":[1,]}}"#,
    ])
    func aTrailingCommaIsInvalidJSON(line: String) throws {
        #expect(try #require(error(line)).code == .invalidJSON)
    }

    /// Foundation refuses a 400-digit integer too (a CI run of the fuzzer found it); it is JSON, and
    /// only too large a value.
    @Test func aFourHundredDigitValueIsJSONAndAnInvalidValue() throws {
        let digits = String(repeating: "9", count: 400)
        let found = try #require(error(#"{"id":"e2","customer":"c","meter":"api_calls","value":\#(digits)}"#))
        #expect(found.code == .invalidValue)
        #expect(found.field == "value")
    }

    /// Foundation refuses `1791e+25341600` (no Double holds it); the grammar allows it, so the line
    /// is JSON and only its `time` is wrong.
    @Test func aHugeExponentIsJSONAndAnInvalidTime() throws {
        let found = try #require(error(#"{"id":"evt_n3","customer":"cus_7","meter":"api_calls","value":12.25,"time":1791e+25341600}"#))
        #expect(found.code != .invalidJSON)
        #expect(found.field == "time")
    }
}
