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

    @Test("ingest.listen_backlog is the socket's backlog: a stopped daemon queues exactly that many connects")
    func listenBacklog() throws {
        // With the daemon stopped (SIGSTOP) nothing is accepted, so how many non-blocking connects
        // succeed before EAGAIN is the backlog itself, whatever the machine's speed.
        let small = try DaemonHarness(config: DaemonHarness.defaultConfig.replacingOccurrences(
            of: "  max_line_bytes: 65536", with: "  max_line_bytes: 65536\n  listen_backlog: 8"))
        let smallProcess = try small.start()
        try stop(smallProcess.processIdentifier)
        let queued = try burst(small.socketPath, count: 100)
        kill(smallProcess.processIdentifier, SIGCONT)
        #expect((8...9).contains(queued.connected), "connected \(queued.connected), EAGAIN \(queued.refused)")  // Linux queues backlog + 1
        #expect(queued.refused == 100 - queued.connected)
        #expect(small.terminate() == 0)

        // The default, 4096: a burst of 1,000 connects to a daemon that accepts none of them yet all succeed.
        let daemon = try DaemonHarness()
        let process = try daemon.start()
        try stop(process.processIdentifier)
        let big = try burst(daemon.socketPath, count: 1000)
        kill(process.processIdentifier, SIGCONT)
        #expect(big.connected == 1000, "EAGAIN for \(big.refused) of 1000")
        // …and they are served once it runs again.
        #expect(try daemon.exchange(eventLine(id: "after-burst") + "\n") == [acceptedLine])
        #expect(daemon.terminate() == 0)
    }

    /// Stops `pid` with SIGSTOP and waits until every one of its threads is stopped, so none of
    /// them can accept a connection after this returns (kill only queues the signal).
    private func stop(_ pid: Int32) throws {
        kill(pid, SIGSTOP)
        for _ in 0..<5000 {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let stopped = !tasks.isEmpty && tasks.allSatisfy { task in
                guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { return false }
                // The state follows the command name in parentheses: "T" (stopped) or "t" (traced).
                return stat[stat.index(close, offsetBy: 2)...].first.map { $0 == "T" || $0 == "t" } ?? false
            }
            if stopped { return }
            usleep(1_000)
        }
        throw HarnessError("the daemon \(pid) did not stop on SIGSTOP")
    }

    /// Opens `count` non-blocking connections to `path` at once, counts the ones that connected and
    /// the ones refused with EAGAIN, then closes them all.
    private func burst(_ path: String, count: Int) throws -> (connected: Int, refused: Int) {
        var descriptors: [Int32] = []
        defer { for descriptor in descriptors { close(descriptor) } }
        var connected = 0
        var refused = 0
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        for _ in 0..<count {
            let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard descriptor >= 0 else { throw HarnessError("socket failed: \(String(cString: strerror(errno)))") }
            descriptors.append(descriptor)
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if result == 0 {
                connected += 1
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                refused += 1
            } else {
                throw HarnessError("connect failed: \(String(cString: strerror(errno)))")
            }
        }
        return (connected, refused)
    }
}
