import Foundation
import IngestClient
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
        // Every answered line is durable: after a restart the whole stream gives `duplicate` exactly
        // for the answered prefix and `accepted` for the rest.
        try daemon.start()
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
