import Foundation
import IngestClient
import TallyConfiguration
import Metering
import Storage
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Shutdown and crash recovery: nothing acknowledged is lost, nothing is counted twice.
@Suite("Daemon recovery", .serialized)
struct DaemonRecoveryTests {
    @Test("SIGTERM answers every line already read, commits, and exits 0")
    func sigtermDrains() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let count = 20_000
        let lines = (0..<count).map { eventLine(id: "drain-\($0)", customer: "cus_\($0 % 3)") + "\n" }
        let connection = try daemon.connect()
        defer { connection.close() }
        try connection.sendAll(Array(lines.joined().utf8))
        // Wait for the first answer, so the daemon is mid-stream, then ask it to stop.
        var answers: [String] = []
        if let first = try connection.readLine() { answers.append(String(decoding: first, as: UTF8.self)) }
        let process = try #require(daemon.process)
        kill(process.processIdentifier, SIGTERM)
        while let line = try? connection.readLine() {
            answers.append(String(decoding: line, as: UTF8.self))
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(answers.count >= 1 && answers.count <= count)
        #expect(answers.allSatisfy { $0 == acceptedLine })
        // The stopped daemon left its identity index beside the store, and the next one reads it.
        #expect(FileManager.default.fileExists(atPath: daemon.storePath + "/identity-index.snapshot"))
        // Every answered line is durable: after a restart the whole stream gives `duplicate` exactly
        // for the answered prefix and `accepted` for the rest.
        try daemon.start()
        #expect(daemon.log().contains("identity index read from its snapshot"))
        let replay = try daemon.exchange(lines.joined())
        #expect(replay.count == count)
        #expect(replay.prefix(answers.count).allSatisfy { $0 == duplicateLine })
        var total = 0
        for customer in 0..<3 {
            total += Int(try daemon.usage(customer: "cus_\(customer)").quantity("api_calls") ?? "0") ?? 0
        }
        #expect(total == count)
        #expect(daemon.terminate() == 0)
    }

    @Test("SIGKILL mid-stream of 200,000 events, restart, resend: aggregates equal the unique events exactly")
    func crashRecovery() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let total = 200_000
        let customers = 10
        var lines: [[UInt8]] = []
        lines.reserveCapacity(total)
        var expectedTokens = [Int](repeating: 0, count: customers)
        for index in 0..<total {
            let customer = (index / 2) % customers
            if index % 2 == 0 {
                lines.append(Array(eventLine(id: "k\(index)", customer: "cus_\(customer)").utf8))
            } else {
                let value = index % 7
                expectedTokens[customer] += value
                lines.append(Array(eventLine(id: "k\(index)", customer: "cus_\(customer)", meter: "tokens", value: "\(value)",
                                             extra: #","properties":{"model":"m","billable":true}"#).utf8))
            }
        }
        let state = CrashState()
        let killAfter = 60_000
        let firstProcess = try #require(daemon.process)
        let sender = LineSender(socketPath: daemon.socketPath, options: .init(
            windowLines: 16_384, reconnectAttempts: 60, initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(500)))
        let finished = DispatchSemaphore(value: 0)
        let allLines = lines
        nonisolated(unsafe) var firstRun: Result<LineSender.Summary, ClientError>?
        Thread.detachNewThread {
            firstRun = Result { () throws(ClientError) -> LineSender.Summary in
                try sender.run(lines: allLines.lazy.map { ArraySlice($0) }) { outcome in
                    state.record(outcome, killAfter: killAfter, pid: firstProcess.processIdentifier)
                }
            }
            finished.signal()
        }
        // Wait for the kill, then restart the daemon on the same store while the sender retries.
        while !state.killed { usleep(5_000) }
        firstProcess.waitUntilExit()
        #expect(firstProcess.terminationReason == .uncaughtSignal)
        try daemon.start()
        finished.wait()
        let summary = try #require(try firstRun?.get())
        #expect(summary.reconnects >= 1)
        #expect(summary.rejected == 0)
        #expect(summary.accepted + summary.duplicate == total)
        let acceptedBeforeKill = state.acceptedBeforeKill
        #expect(acceptedBeforeKill.count >= killAfter)

        // Resend everything: every event is already there, so every answer is `duplicate`,
        // including each one answered `accepted` before the kill.
        let replay = DuplicateCounter()
        let second = try LineSender(socketPath: daemon.socketPath).run(lines: lines.lazy.map { ArraySlice($0) }) { outcome in
            replay.record(outcome)
        }
        #expect(second.duplicate == total)
        #expect(replay.nonDuplicates.isEmpty)
        #expect(daemon.terminate() == 0)

        // The aggregates equal the unique events exactly.
        let store = try TallyStore(path: daemon.storePath, configuration: .init(
            meters: try ConfigLoader.load(path: daemon.configPath).meters, billingPeriod: .monthly),
            access: .readOnly, logger: Logger(label: "test"))
        let period = BillingPeriod.monthly.interval(containing: .now())
        var calls = 0
        for customer in 0..<customers {
            let records = try store.usage(customer: "cus_\(customer)", periodStart: period.start)
            calls += Int(records.first { $0.meter == "api_calls" }?.quantity.description ?? "0") ?? 0
            let tokens = records.first { $0.meter == "tokens" }?.quantity ?? 0
            #expect(tokens == ExactDecimal(expectedTokens[customer]), "cus_\(customer)")
        }
        #expect(calls == total / 2)
        #expect(try store.statistics().events == total)

        // Usage over time agrees: the hourly windows around now add up to the unique events.
        let day: TimeInterval = 86_400
        let formatter = ISO8601DateFormatter()
        let midnight = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / day).rounded(.down) * day)
        var windowCalls = 0
        for customer in 0..<customers {
            let result = try daemon.tally(["usage", "--config", daemon.configPath, "--customer", "cus_\(customer)",
                                           "--from", formatter.string(from: midnight - day), "--to", formatter.string(from: midnight + 2 * day),
                                           "--window", "hour", "--json"])
            #expect(result.status == 0, "\(result.error)")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
            for meter in body["meters"] as? [[String: Any]] ?? [] {
                let windows = (meter["windows"] as? [[String: Any]] ?? []).compactMap { Int($0["quantity"] as? String ?? "") }
                switch meter["meter"] as? String {
                case "api_calls":
                    windowCalls += windows.reduce(0, +)
                    #expect(meter["total"] as? String == String(windows.reduce(0, +)))
                case "tokens":
                    #expect(windows.reduce(0, +) == expectedTokens[customer], "cus_\(customer)")
                default: break
                }
            }
        }
        #expect(windowCalls == total / 2)
    }
}

/// Shared between the thread running the sender (which calls `onResponse`) and the test.
final class CrashState: @unchecked Sendable {
    private let lock = NSLock()
    private var accepted = 0
    private var acceptedIndexes: [Int] = []
    private var hasKilled = false

    var killed: Bool { lock.withLock { hasKilled } }
    var acceptedBeforeKill: [Int] { lock.withLock { acceptedIndexes } }

    func record(_ outcome: LineOutcome, killAfter: Int, pid: Int32) {
        lock.withLock {
            guard !hasKilled, outcome.response.status == .accepted else { return }
            accepted += 1
            acceptedIndexes.append(outcome.index)
            if accepted == killAfter {
                kill(pid, SIGKILL)
                hasKilled = true
            }
        }
    }
}

final class DuplicateCounter: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var nonDuplicates: [Int] = []
    func record(_ outcome: LineOutcome) {
        lock.withLock {
            if outcome.response.status != .duplicate { nonDuplicates.append(outcome.index) }
        }
    }
}

/// A store that cannot take writes answers `unavailable`, records nothing of those events, and
/// loses nothing already acknowledged.
@Suite("Store full")
struct StoreFullTests {
    @Test("past store.max_size lines are answered unavailable; after raising it, a resend completes the stream")
    func unavailableWhenFull() throws {
        let small = DaemonHarness.defaultConfig.replacingOccurrences(of: "  path: data", with: "  path: data\n  max_size: 1MiB")
        let daemon = try DaemonHarness(config: small)
        try daemon.start()
        let padding = String(repeating: "p", count: 2000)
        let lines = (0..<3000).map {
            eventLine(id: "full-\($0)", extra: #","properties":{"pad":"\#(padding)\#($0)"}"#)
        }
        let text = lines.joined(separator: "\n") + "\n"
        let responses = try daemon.exchange(text)
        #expect(responses.count == lines.count)
        let accepted = responses.filter { $0 == acceptedLine }.count
        let unavailable = responses.filter { rejectionCode($0) == "unavailable" }.count
        #expect(accepted > 0)
        #expect(unavailable > 0)
        #expect(accepted + unavailable == lines.count)
        let message = try IngestResponse.parse(try #require(responses.first { rejectionCode($0) == "unavailable" })).message ?? ""
        #expect(message.contains("max_size"))
        // Only the accepted events count; the daemon is still up and answers.
        #expect(try daemon.usage(customer: "cus_1").quantity("api_calls") == String(accepted))
        #expect(daemon.terminate() == 0)

        // Room again: resending everything records exactly the missing events.
        try DaemonHarness.defaultConfig.write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        try daemon.start()
        let replay = try daemon.exchange(text)
        #expect(replay.filter { $0 == duplicateLine }.count == accepted)
        #expect(replay.filter { $0 == acceptedLine }.count == unavailable)
        #expect(try daemon.usage(customer: "cus_1").quantity("api_calls") == String(lines.count))
        #expect(daemon.terminate() == 0)
    }
}

/// `tally send` and `tally check-config` as a user runs them.
@Suite("Commands")
struct CommandTests {
    @Test("tally send: summary, rejects file, exit status 1 on rejects and 2 without a daemon")
    func send() throws {
        let daemon = try DaemonHarness()
        try daemon.start()
        let input = [eventLine(id: "s1"), "", "{bad", eventLine(id: "s1"), eventLine(id: "s2", meter: "nope"), eventLine(id: "s3")]
            .joined(separator: "\n") + "\n"
        let inputPath = daemon.directory + "/input.ndjson"
        try input.write(toFile: inputPath, atomically: true, encoding: .utf8)
        let rejectsPath = daemon.directory + "/rejects.ndjson"
        let result = try daemon.tally(["send", inputPath, "--socket", daemon.socketPath, "--rejects", rejectsPath])
        #expect(result.status == 1)
        #expect(result.output.contains("5 events: 2 accepted, 1 duplicate, 2 rejected"))
        #expect(result.output.contains("rejected invalid_json: 1"))
        #expect(result.output.contains("rejected unknown_meter: 1"))
        let rejects = try String(contentsOfFile: rejectsPath, encoding: .utf8).split(separator: "\n")
        #expect(rejects.count == 2)
        struct Reject: Decodable {
            struct Reason: Decodable { var code: String; var message: String }
            var line: Int
            var error: Reason
            var input: String
        }
        let first = try JSONDecoder().decode(Reject.self, from: Data(rejects[0].utf8))
        #expect(first.line == 3 && first.error.code == "invalid_json" && first.input == "{bad")
        let second = try JSONDecoder().decode(Reject.self, from: Data(rejects[1].utf8))
        #expect(second.line == 5 && second.error.code == "unknown_meter")

        // From stdin, all good: exit 0, JSON summary.
        let clean = try daemon.tally(["send", "--socket", daemon.socketPath, "--json"],
                                     standardInput: Data((eventLine(id: "s4") + "\n" + eventLine(id: "s1") + "\n").utf8))
        #expect(clean.status == 0)
        #expect(clean.output.contains(#"{"accepted":1,"duplicate":1,"rejected":0,"rejected_by_code":{}"#))
        #expect(daemon.terminate() == 0)

        // No daemon: exit 2 and a hint.
        let down = try daemon.tally(["send", inputPath, "--socket", daemon.socketPath])
        #expect(down.status == 2)
        #expect(down.error.contains("tally serve"))
    }

    @Test("check-config lists every mistake with its line; serve refuses a bad config the same way")
    func badConfig() throws {
        let daemon = try DaemonHarness(config: """
            ingest:
              commit_max_event: 10
              max_line_bytes: 12
            meters:
              - { code: api_calls, aggregation: total }
            """)
        let check = try daemon.tally(["check-config", daemon.configPath])
        #expect(check.status == 1)
        #expect(check.error.contains("tally.yaml:2:"))
        #expect(check.error.contains("commit_max_events"))
        #expect(check.error.contains("tally.yaml:3:"))
        #expect(check.error.contains("tally.yaml:5:"))
        let serve = try daemon.tally(["serve", "--config", daemon.configPath, "--store", daemon.storePath, "--socket", daemon.socketPath])
        #expect(serve.status != 0)
        #expect(serve.error.contains("tally.yaml:5:"))
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))

        let good = try DaemonHarness.run(["check-config", "config/tally.yaml"], in: FileManager.default.currentDirectoryPath)
        #expect(good.status == 0)
        #expect(good.output.contains("OK"))
    }

    @Test("usage rejects a malformed period with a hint, and a missing store with what to do")
    func usageErrors() throws {
        let daemon = try DaemonHarness()
        let missing = try daemon.tally(["usage", "--config", daemon.configPath, "--store", daemon.storePath, "--customer", "c"])
        #expect(missing.status != 0)
        #expect(missing.error.contains("tally serve"))
        let badPeriod = try daemon.tally(["usage", "--config", daemon.configPath, "--customer", "c", "--period", "2026-13"])
        #expect(badPeriod.status != 0)
        #expect(badPeriod.error.contains("YYYY-MM"))
    }
}
