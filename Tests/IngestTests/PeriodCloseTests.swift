import Foundation
import Metering
import Testing

@Suite("Closing periods")
struct PeriodCloseTests {
    @Test("period close while serve runs; a late event for it is period_closed; the open period still counts")
    func closeThenLateEvent() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let current = BillingPeriod.monthly.interval(containing: .now())
        let previous = BillingPeriod.monthly.previous(current)
        let lateTime = previous.end.adding(nanoseconds: -3_600_000_000_000).rfc3339
        // Before closing, a late event for the previous period counts there.
        #expect(try daemon.exchange(eventLine(id: "late-1", extra: #","time":"\#(lateTime)""#) + "\n") == [acceptedLine])

        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        let closed = try daemon.tally(["period", "close", previous.label] + common)
        #expect(closed.status == 0, "\(closed.error)")
        #expect(closed.output.contains("closed period \(previous.label)"))
        let again = try daemon.tally(["period", "close", previous.label] + common)
        #expect(again.output.contains("already closed"))
        let notEnded = try daemon.tally(["period", "close", current.label] + common)
        #expect(notEnded.status != 0)
        #expect(notEnded.error.contains("has not ended"))

        let responses = try daemon.exchange([
            eventLine(id: "late-2", extra: #","time":"\#(lateTime)""#),
            eventLine(id: "late-1", extra: #","time":"\#(lateTime)""#),
            eventLine(id: "now-1"),
        ].joined(separator: "\n") + "\n")
        #expect(rejectionCode(responses[0]) == "period_closed")
        #expect(responses[1] == duplicateLine)  // already counted before the close: still a duplicate
        #expect(responses[2] == acceptedLine)
        #expect(try daemon.usage(customer: "cus_1", period: previous.label).quantity("api_calls") == "1")
        #expect(try daemon.usage(customer: "cus_1").quantity("api_calls") == "1")
        let list = try daemon.tally(["period", "list"] + common)
        #expect(list.output.contains(previous.label))
        #expect(daemon.terminate() == 0)
    }
}
