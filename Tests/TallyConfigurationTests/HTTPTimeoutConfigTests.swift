import Testing

@testable import TallyConfiguration

@Suite("http.header_timeout and http.body_timeout")
struct HTTPTimeoutConfigTests {
    private static let meters = "meters: [{ code: calls, aggregation: count }]\n"

    @Test("defaults of 10 s and 30 s; durations as for every other key")
    func timeouts() throws {
        let defaults = try ConfigLoader.parse(yaml: Self.meters, fileName: "t.yaml")
        #expect(defaults.http.headerTimeoutNanoseconds == 10_000_000_000)
        #expect(defaults.http.bodyTimeoutNanoseconds == 30_000_000_000)
        #expect(HTTPSettings() == defaults.http)
        let set = try ConfigLoader.parse(yaml: Self.meters + "http:\n  header_timeout: 1s\n  body_timeout: 2m\n", fileName: "t.yaml")
        #expect(set.http.headerTimeoutNanoseconds == 1_000_000_000)
        #expect(set.http.bodyTimeoutNanoseconds == 120_000_000_000)
        let bounds = try ConfigLoader.parse(yaml: Self.meters + "http: { header_timeout: 1ms, body_timeout: 1d }\n", fileName: "t.yaml")
        #expect(bounds.http.headerTimeoutNanoseconds == 1_000_000)
        #expect(bounds.http.bodyTimeoutNanoseconds == 86_400_000_000_000)
    }

    @Test(arguments: [
        ("header_timeout: 0s", "0s is out of range; write a duration from 1ms to 1d (the default is 10s)"),
        ("header_timeout: 10", #""10" has no unit; add one of ns, us, ms, s, m, h, d, e.g. 10s or 10ms"#),
        ("body_timeout: 2d", "2d is out of range; write a duration from 1ms to 1d (the default is 30s)"),
        ("body_timeout: -1s", "durations cannot be negative; write a positive one, for example 2ms, 5m or 35d"),
        ("body_timeout: [30s]", "expected a duration from 1ms to 1d, e.g. 30s; found a list"),
    ])
    func badTimeoutsAreReportedWithTheirLine(line: String, message: String) {
        do {
            _ = try ConfigLoader.parse(yaml: Self.meters + "http:\n  " + line + "\n", fileName: "t.yaml")
            Issue.record("\(line) was accepted")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems.first?.line == 3)
            #expect(error.problems.first?.path == "http." + line.prefix { $0 != ":" })
            #expect(error.problems.first?.message == message)
        }
    }
}
