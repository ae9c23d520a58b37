import Foundation
import IngestClient
import Metering
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hostile and careless input against the real daemon (issue 12): control characters in
/// identifiers, times outside the representable range, CSV quoting, the listen backlog.
@Suite("Hostile input through the daemon")
struct HardeningTests {
    @Test("control characters in id or customer are invalid_field, escaped or raw DEL; nothing is recorded")
    func controlCharacters() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let lines = [
            #"{"id":"a\u0000b","customer":"cus_c","meter":"api_calls"}"#,
            #"{"id":"ok1","customer":"cus_c\n","meter":"api_calls"}"#,
            "{\"id\":\"del\u{7F}\",\"customer\":\"cus_c\",\"meter\":\"api_calls\"}",
            #"{"id":"ok2","customer":"cus\u001Fc","meter":"api_calls"}"#,
            #"{"id":"ok3","customer":"cus_c","meter":"api_calls","properties":{"note":"line\nbreak"}}"#,
        ]
        let responses = try daemon.exchange(lines.joined(separator: "\n") + "\n")
        #expect(responses.count == 5)
        let fields = ["id", "customer", "id", "customer"]
        for (index, response) in responses.prefix(4).enumerated() {
            let parsed = try IngestResponse.parse(response)
            #expect(parsed.errorCode == "invalid_field", "line \(index): \(response)")
            #expect(parsed.field == fields[index], "line \(index): \(response)")
            #expect(parsed.message?.contains("control characters") == true, "line \(index): \(response)")
        }
        #expect(responses[4] == acceptedLine)  // property values may hold them
        #expect(try daemon.usage(customer: "cus_c").quantity("api_calls") == "1")
        #expect(daemon.terminate() == 0)
    }

    @Test("valid RFC 3339 times past 2262 are timestamp_in_future, year 0001 timestamp_too_old; malformed ones invalid_field")
    func timesOutsideTheRange() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let cases: [(String, String)] = [
            ("2262-04-12T00:00:00Z", "timestamp_in_future"), ("9999-12-31T23:59:59Z", "timestamp_in_future"),
            ("0001-01-01T00:00:00Z", "timestamp_too_old"), ("1600-01-01T00:00:00+01:00", "timestamp_too_old"),
            ("9999-12-31", "invalid_field"), ("0001-13-01T00:00:00Z", "invalid_field"),
        ]
        let lines = cases.enumerated().map { eventLine(id: "t\($0.offset)", extra: #","time":"\#($0.element.0)""#) }
        let responses = try daemon.exchange(lines.joined(separator: "\n") + "\n")
        #expect(responses.count == cases.count)
        for (index, response) in responses.enumerated() {
            #expect(rejectionCode(response) == cases[index].1, "\(cases[index].0): \(response)")
        }
        #expect(daemon.terminate() == 0)
    }

    @Test("tally rate --format csv quotes commas, quotes and line breaks per RFC 4180")
    func csvQuoting() throws {
        let config = DaemonHarness.defaultConfig + """

            plans:
              - code: basic
                currency: USD
                prices:
                  - { meter: tokens, model: per_unit, unit_amount: "1" }
            default_plan: basic
            """
        let daemon = try DaemonHarness(config: config)
        try daemon.start()
        let lines = [
            eventLine(id: "q1", customer: #"cus,\"q\""#, meter: "tokens", value: "2",
                      extra: #","properties":{"model":"a\r\nb,\"c\"","billable":"true"}"#),
            eventLine(id: "q2", customer: "cus_plain", meter: "tokens", value: "3", extra: #","properties":{"model":"m","billable":"true"}"#),
        ]
        #expect(try daemon.exchange(lines.joined(separator: "\n") + "\n") == [acceptedLine, acceptedLine])
        let period = BillingPeriod.monthly.interval(containing: .now()).label
        let rate = try daemon.tally(["rate", "--period", period, "--format", "csv", "--config", daemon.configPath, "--store", daemon.storePath])
        #expect(rate.status == 0, "\(rate.error)")
        #expect(rate.output.contains("\"cus,\"\"q\"\"\",\(period),basic,USD,tokens,\"model=a\r\nb,\"\"c\"\"\",sum,2,per_unit,2,2.00\n"),
                "\(rate.output.debugDescription)")
        #expect(rate.output.contains("\ncus_plain,\(period),basic,USD,tokens,model=m,sum,3,per_unit,3,3.00\n"))
        #expect(daemon.terminate() == 0)
    }
}
