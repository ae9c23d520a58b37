import Foundation
import IngestClient
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The socket protocol of DESIGN §3, against the real daemon on a temporary socket and store.
@Suite("Daemon protocol")
struct DaemonProtocolTests {
    @Test("accepted, duplicate and idempotency_conflict")
    func acceptedDuplicateConflict() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let responses = try daemon.exchange([
            eventLine(id: "a", meter: "tokens", value: "5", extra: #","properties":{"model":"m","billable":true}"#),
            eventLine(id: "a", meter: "tokens", value: "5.0", extra: #","properties":{"billable":true,"model":"m"}"#),
            eventLine(id: "a", meter: "tokens", value: "6", extra: #","properties":{"model":"m","billable":true}"#),
            eventLine(id: "a", customer: "cus_2", meter: "tokens", value: "6", extra: #","properties":{"model":"m","billable":true}"#),
        ].joined(separator: "\n") + "\n")
        #expect(responses.count == 4)
        #expect(responses[0] == acceptedLine)
        #expect(responses[1] == duplicateLine)  // same content: 5.0 == 5, properties in another order
        #expect(rejectionCode(responses[2]) == "idempotency_conflict")
        #expect(responses[3] == acceptedLine)  // identity is (customer, id)

        // A conflict is reported again after a restart: identities survive.
        #expect(daemon.terminate() == 0)
        try daemon.start()
        let again = try daemon.exchange(eventLine(id: "a", meter: "tokens", value: "7", extra: #","properties":{"model":"m","billable":true}"#) + "\n")
        #expect(rejectionCode(again[0]) == "idempotency_conflict")
        let usage = try daemon.usage(customer: "cus_1")
        #expect(usage.quantity("tokens", group: ["model": "m"]) == "5")
        #expect(daemon.terminate() == 0)
    }

    @Test("an event without time is a duplicate when resent later, not a conflict")
    func resendWithoutTime() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let line = eventLine(id: "no-time") + "\n"
        #expect(try daemon.exchange(line) == [acceptedLine])
        usleep(5_000)
        #expect(try daemon.exchange(line) == [duplicateLine])
        #expect(daemon.terminate() == 0)
    }

    @Test("responses come in line order across group-commit boundaries, bad lines in between")
    func orderAcrossCommits() throws {
        let daemon = try DaemonHarness(config: DaemonHarness.defaultConfig.replacingOccurrences(
            of: "commit_max_events: 8192", with: "commit_max_events: 7"))
        try daemon.start()
        var lines: [String] = []
        var expected: [String] = []
        for index in 0..<500 {
            switch index % 10 {
            case 3:
                lines.append(#"{"id":"x"#)  // cut off
                expected.append("invalid_json")
            case 6:
                lines.append(eventLine(id: "o\(index)", meter: "nope"))
                expected.append("unknown_meter")
            case 8:
                lines.append(eventLine(id: "o\(index - 1)"))  // the id of line index-1, same content
                expected.append(index % 20 == 8 ? "duplicate" : "duplicate")
            default:
                lines.append(eventLine(id: "o\(index)"))
                expected.append("accepted")
            }
        }
        let responses = try daemon.exchange(lines.joined(separator: "\n") + "\n")
        #expect(responses.count == lines.count)
        for (index, response) in responses.enumerated() {
            let got: String
            if response == acceptedLine { got = "accepted" } else if response == duplicateLine { got = "duplicate" } else { got = rejectionCode(response) ?? response }
            #expect(got == expected[index], "line \(index)")
        }
        let usage = try daemon.usage(customer: "cus_1")
        #expect(usage.quantity("api_calls") == String(expected.filter { $0 == "accepted" }.count))
        #expect(daemon.terminate() == 0)
    }

    @Test("a line over max_line_bytes is rejected and skipped; the connection stays up")
    func lineTooLong() throws {
        let daemon = try DaemonHarness(config: DaemonHarness.defaultConfig.replacingOccurrences(
            of: "max_line_bytes: 65536", with: "max_line_bytes: 1024"))
        try daemon.start()
        let long = eventLine(id: "long", extra: #","properties":{"pad":""# + String(repeating: "x", count: 300_000) + #""}"#)
        let responses = try daemon.exchange([
            eventLine(id: "before"), long, eventLine(id: "after"), long, eventLine(id: "last"),
        ].joined(separator: "\n") + "\n")
        #expect(responses.count == 5)
        #expect(responses[0] == acceptedLine)
        #expect(rejectionCode(responses[1]) == "line_too_long")
        #expect(responses[2] == acceptedLine)
        #expect(rejectionCode(responses[3]) == "line_too_long")
        #expect(responses[4] == acceptedLine)
        #expect(try daemon.usage(customer: "cus_1").quantity("api_calls") == "3")
        #expect(daemon.terminate() == 0)
    }

    @Test("CRLF, blank and whitespace-only lines; a final line without newline")
    func crlfAndBlankLines() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let text = "\n\r\n" + eventLine(id: "c1") + "\r\n   \n\t\r\n" + eventLine(id: "c2") + "\r\n\n" + eventLine(id: "c3")
        let responses = try daemon.exchange(text)
        #expect(responses == [acceptedLine, acceptedLine, acceptedLine])
        #expect(daemon.terminate() == 0)
    }

    @Test("every error code a line can get")
    func errorCodes() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let future = Int(Date().timeIntervalSince1970) + 3600
        let cases: [(String, String)] = [
            ("not json", "invalid_json"),
            (#"{"customer":"c","meter":"api_calls"}"#, "missing_field"),
            (#"{"id":7,"customer":"c","meter":"api_calls"}"#, "invalid_field"),
            (eventLine(id: "e1", meter: "bogus"), "unknown_meter"),
            (eventLine(id: "e2", meter: "tokens", value: "\"ten\""), "invalid_value"),
            (eventLine(id: "e3", meter: "tokens", value: "-1"), "invalid_value"),
            (eventLine(id: String(repeating: "i", count: 256)), "id_too_long"),
            (eventLine(id: "e4", extra: #","time":\#(future)"#), "timestamp_in_future"),
            (eventLine(id: "e5", extra: #","time":"2001-01-01T00:00:00Z""#), "timestamp_too_old"),
            (eventLine(id: "e6", extra: #","vaule":3"#), "invalid_field"),
        ]
        let responses = try daemon.exchange(cases.map(\.0).joined(separator: "\n") + "\n")
        #expect(responses.count == cases.count)
        for (index, response) in responses.enumerated() {
            #expect(rejectionCode(response) == cases[index].1, "case \(index): \(response)")
            let parsed = try IngestResponse.parse(response)
            #expect(!(parsed.message ?? "").isEmpty)
        }
        #expect(daemon.terminate() == 0)
    }

    @Test("aggregations are exact: ten events of 0.1 sum to 1; max, min, latest, unique_count, filter, group_by")
    func aggregations() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        var lines: [String] = []
        for index in 0..<10 {
            lines.append(eventLine(id: "t\(index)", meter: "tokens", value: "0.1", extra: #","properties":{"model":"small","billable":"true"}"#))
        }
        lines.append(eventLine(id: "t-large", meter: "tokens", value: "\"2.5\"", extra: #","properties":{"model":"large","billable":true}"#))
        lines.append(eventLine(id: "t-free", meter: "tokens", value: "100", extra: #","properties":{"model":"small","billable":false}"#))
        lines.append(eventLine(id: "s1", meter: "storage_gb", value: "3.5"))
        lines.append(eventLine(id: "s2", meter: "storage_gb", value: "12.25"))
        lines.append(eventLine(id: "s3", meter: "storage_gb", value: "4"))
        lines.append(eventLine(id: "l1", meter: "low_water", value: "7"))
        lines.append(eventLine(id: "l2", meter: "low_water", value: "0.5"))
        let base = Int(Date().timeIntervalSince1970)
        lines.append(eventLine(id: "seat2", meter: "seats", value: "9", extra: #","time":\#(base - 60)"#))
        lines.append(eventLine(id: "seat1", meter: "seats", value: "5", extra: #","time":\#(base - 120)"#))
        for (index, user) in ["u1", "u2", "u1", "u3", "u2"].enumerated() {
            lines.append(eventLine(id: "au\(index)", meter: "active_users", extra: #","properties":{"user_id":"\#(user)"}"#))
        }
        let responses = try daemon.exchange(lines.joined(separator: "\n") + "\n")
        #expect(responses.allSatisfy { $0 == acceptedLine })
        let usage = try daemon.usage(customer: "cus_1")
        #expect(usage.quantity("tokens", group: ["model": "small"]) == "1")
        #expect(usage.quantity("tokens", group: ["model": "large"]) == "2.5")
        #expect(usage.quantity("storage_gb") == "12.25")
        #expect(usage.quantity("low_water") == "0.5")
        #expect(usage.quantity("seats") == "9")  // the latest by event time, not by arrival
        #expect(usage.quantity("active_users") == "3")
        #expect(usage.quantity("api_calls") == "0")
        #expect(daemon.terminate() == 0)
    }

    @Test("two clients sending the same ids at once: each identity is counted once")
    func concurrentSameIds() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let lines = (0..<5000).map { eventLine(id: "shared-\($0)", customer: "cus_\($0 % 5)", meter: "tokens", value: "1.5",
                                               extra: #","properties":{"model":"m","billable":true}"#) }
        let text = lines.joined(separator: "\n") + "\n"
        let results = NSLock()
        nonisolated(unsafe) var all: [[String]] = []
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            Thread.detachNewThread {
                let responses = (try? daemon.exchange(text)) ?? []
                results.lock(); all.append(responses); results.unlock()
                group.leave()
            }
        }
        group.wait()
        #expect(all.count == 2 && all.allSatisfy { $0.count == 5000 })
        for index in 0..<5000 {
            let pair = [all[0][index], all[1][index]].sorted()
            #expect(pair == [acceptedLine, duplicateLine], "line \(index)")
        }
        var total = ExactSum()
        for customer in 0..<5 {
            total.add(try daemon.usage(customer: "cus_\(customer)").quantity("tokens", group: ["model": "m"]) ?? "0")
        }
        #expect(total.integerPart == 7500)
        #expect(daemon.terminate() == 0)
    }

    @Test("socket mode 0660; a live daemon's socket is never stolen; a stale one is replaced")
    func socketOwnership() throws {
        let daemon = try DaemonHarness()
        let first = try daemon.start()
        var status = stat()
        #expect(stat(daemon.socketPath, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o660)

        // A second daemon on the same socket (another store) must refuse, and the first keeps serving.
        let result = try daemon.tally(["serve", "--config", daemon.configPath, "--store", daemon.directory + "/other",
                                       "--socket", daemon.socketPath])
        #expect(result.status != 0)
        #expect(result.error.contains("already listening"))
        #expect(try daemon.exchange(eventLine(id: "still") + "\n") == [acceptedLine])

        // A second daemon on the same store (another socket) must refuse too.
        let sameStore = try daemon.tally(["serve", "--config", daemon.configPath, "--store", daemon.storePath,
                                          "--socket", daemon.directory + "/second.sock"])
        #expect(sameStore.status != 0)
        #expect(sameStore.error.contains("another process"))

        // After SIGKILL the socket file stays behind; a new daemon replaces it.
        daemon.killHard()
        #expect(!first.isRunning)
        #expect(FileManager.default.fileExists(atPath: daemon.socketPath))
        try daemon.start()
        #expect(try daemon.exchange(eventLine(id: "still") + "\n") == [duplicateLine])
        #expect(daemon.terminate() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
    }

    @Test("a client that does not read its answers: memory stays bounded, other clients are served")
    func nonReadingClient() throws {
        let daemon = try DaemonHarness()
        let process = try daemon.start()
        let greedy = try daemon.connect()
        defer { greedy.close() }
        // Write events without ever reading an answer, until the daemon stops reading us.
        var chunk = ""
        for index in 0..<2000 { chunk += eventLine(id: "greedy-\(index)-XXXXXXXX", customer: "cus_greedy") + "\n" }
        let bytes = Array(chunk.utf8)
        var written = 0
        var stalledSince: Date?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let sent = try greedy.sendSome(bytes)
            if sent == 0 {
                if stalledSince == nil { stalledSince = Date() }
                if Date().timeIntervalSince(stalledSince!) > 1.5 { break }
                usleep(10_000)
            } else {
                stalledSince = nil
                written += sent
            }
        }
        #expect(stalledSince != nil, "the daemon kept reading a client that never reads its answers")
        // The daemon stopped reading after a bounded amount: far less than a client could push.
        #expect(written < 256 * 1024 * 1024)
        let resident = residentKilobytes(of: process.processIdentifier) ?? 0
        #expect(resident < 512 * 1024, "daemon resident memory \(resident) KiB")
        // Another client is served normally meanwhile.
        #expect(try daemon.exchange(eventLine(id: "polite", customer: "cus_polite") + "\n") == [acceptedLine])
        // SIGTERM while the greedy client still does not read: shutdown is bounded (a hang guard,
        // not a speed threshold: the daemon gives such a peer 10 s), exit 0.
        let stopping = Date()
        #expect(daemon.terminate() == 0)
        #expect(Date().timeIntervalSince(stopping) < 60)
    }
}

/// Adds decimal strings exactly (for checking sums in tests without Double).
struct ExactSum {
    var integerPart = 0
    var fractionMillionths = 0
    mutating func add(_ text: String) {
        let parts = text.split(separator: ".", maxSplits: 1)
        integerPart += Int(parts[0]) ?? 0
        if parts.count == 2 {
            let digits = String(parts[1].prefix(6)).padding(toLength: 6, withPad: "0", startingAt: 0)
            fractionMillionths += Int(digits) ?? 0
        }
        integerPart += fractionMillionths / 1_000_000
        fractionMillionths %= 1_000_000
    }
}
