import AlertDelivery
import Foundation
import TallyConfiguration
import Metering
import Storage
import Synchronization
import Testing

@Suite struct AlertLogTests {
    let store: TemporaryStore
    let logPath: String

    init() throws {
        store = try TemporaryStore()
        // A directory that does not exist yet: the sink creates it.
        logPath = store.directory + "/logs/nested/alerts.ndjson"
    }

    func dispatcher(pollInterval: Duration = .seconds(60), log: LogCapture = LogCapture(),
                    onDelivery: @escaping @Sendable (String, Bool) -> Void = { _, _ in }) -> AlertDispatcher {
        AlertDispatcher(store: store.store, settings: AlertSettings(log: logPath), logger: log.logger,
                        pollInterval: pollInterval, backoff: quickBackoff, onDelivery: onDelivery)
    }

    func lines() -> [String] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    func fileText() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func cursor() throws -> UInt64 { try store.store.deliveryCursor(sink: AlertDispatcher.logSinkName) }

    @Test func writesEachAlertOnceInOrderAsItsJSON() async throws {
        let first = try store.record(3)
        let counter = DeliveryCounter()
        let dispatcher = dispatcher(onDelivery: counter.callback)
        #expect(dispatcher.sinkNames == ["log"])
        #expect(dispatcher.status(sink: "log")?.state == .waiting)
        try await running(dispatcher) {
            // Alerts already in the outbox go out when the loop starts.
            #expect(await eventually { (try? cursor()) == 3 })
            #expect(lines() == first.map(\.json))
            // Later alerts go out on notify() alone (the poll interval is a minute).
            let second = try store.record(2, from: 4)
            dispatcher.notify()
            #expect(await eventually { (try? cursor()) == 5 })
            #expect(lines() == (first + second).map(\.json))
            #expect(dispatcher.status(sink: "log") == SinkStatus(sink: "log", state: .running, deliveredThrough: 5))
        }
        #expect(fileText().hasSuffix("}\n"))
        #expect(counter.count(sink: "log", success: true) == 5)
        #expect(counter.count(sink: "log", success: false) == 0)
        #expect(dispatcher.status(sink: "log")?.state == .stopped)
        let attributes = try FileManager.default.attributesOfItem(atPath: logPath)
        let mode = try #require(attributes[.posixPermissions] as? Int)
        #expect(mode & 0o600 == 0o600 && mode & ~0o640 == 0, "mode \(String(mode, radix: 8)) should be 0640 (less the umask)")
    }

    @Test func pollsWithoutNotify() async throws {
        let dispatcher = dispatcher(pollInterval: .milliseconds(20))
        try await running(dispatcher) {
            #expect(await eventually { dispatcher.status(sink: "log")?.state == .running })
            let alerts = try store.record(2)
            #expect(await eventually { (try? cursor()) == 2 })
            #expect(lines() == alerts.map(\.json))
        }
    }

    @Test func crashAfterAppendBeforeCursorWritesNoDuplicate() async throws {
        let alerts = try store.record(3)
        try await running(dispatcher()) {
            #expect(await eventually { (try? cursor()) == 3 })
        }
        // The crash: the append of alerts 2 and 3 reached the file, the cursor update did not.
        try store.store.setDeliveryCursor(sink: "log", to: 1)
        let more = try store.record(1, from: 4)
        let log = LogCapture()
        let counter = DeliveryCounter()
        try await running(dispatcher(log: log, onDelivery: counter.callback)) {
            #expect(await eventually { (try? cursor()) == 4 })
        }
        #expect(lines() == (alerts + more).map(\.json))
        #expect(counter.count(sink: "log", success: true) == 1)
        #expect(log.messages(at: .notice).contains { $0.contains("not writing them again") })
    }

    @Test func crashWithCursorAtZeroAndWholeBatchWritten() async throws {
        let alerts = try store.record(2)
        try await running(dispatcher()) {
            #expect(await eventually { (try? cursor()) == 2 })
        }
        try store.store.setDeliveryCursor(sink: "log", to: 0)
        try await running(dispatcher()) {
            #expect(await eventually { (try? cursor()) == 2 })
        }
        #expect(lines() == alerts.map(\.json))
    }

    @Test func tornLastLineIsCutAndRewritten() async throws {
        let alerts = try store.record(3)
        try FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // Alert 1 complete, alert 2 torn by a crash mid-write; the cursor says 1.
        let torn = alerts[0].json + "\n" + alerts[1].json.prefix(20)
        try torn.write(toFile: logPath, atomically: false, encoding: .utf8)
        try store.store.setDeliveryCursor(sink: "log", to: 1)
        let log = LogCapture()
        try await running(dispatcher(log: log)) {
            #expect(await eventually { (try? cursor()) == 3 })
        }
        #expect(lines() == alerts.map(\.json))
        #expect(log.messages(at: .warning).contains { $0.contains("incomplete line") })
    }

    @Test func unrelatedLastLineIsKeptAndAlertsAppendAfterIt() async throws {
        let alerts = try store.record(2)
        try FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try "{\"id\":\"from_an_older_store\"}\n".write(toFile: logPath, atomically: false, encoding: .utf8)
        try await running(dispatcher()) {
            #expect(await eventually { (try? cursor()) == 2 })
        }
        #expect(lines() == ["{\"id\":\"from_an_older_store\"}"] + alerts.map(\.json))
    }

    @Test func unwritableLogRetriesAndDeliversNothing() async throws {
        try store.record(2)
        // The log's directory would have to be inside a regular file: every attempt fails.
        let blocker = store.directory + "/blocker"
        try "x".write(toFile: blocker, atomically: false, encoding: .utf8)
        let log = LogCapture()
        let counter = DeliveryCounter()
        let dispatcher = AlertDispatcher(store: store.store, settings: AlertSettings(log: blocker + "/alerts.ndjson"), logger: log.logger,
                                         pollInterval: .milliseconds(20), backoff: quickBackoff, onDelivery: counter.callback)
        try await running(dispatcher) {
            #expect(await eventually { (dispatcher.status(sink: "log")?.consecutiveFailures ?? 0) >= 3 })
            let status = try #require(dispatcher.status(sink: "log"))
            #expect(status.state == .retrying)
            #expect(status.lastError?.contains("alert log") == true)
            #expect(status.deliveredThrough == 0)
        }
        #expect(try cursor() == 0)
        #expect(counter.count(sink: "log", success: true) == 0)
        #expect(log.messages(at: .warning).contains { $0.contains("alert delivery failed") })
    }

    @Test func noLogConfiguredMeansNoSinkAndRunWaitsForShutdown() async throws {
        try store.record(1)
        let dispatcher = AlertDispatcher(store: store.store, settings: AlertSettings(log: nil), logger: LogCapture().logger)
        #expect(dispatcher.sinkNames.isEmpty)
        let returned = Atomic(false)
        let task = Task {
            try await dispatcher.run()
            returned.store(true, ordering: .sequentiallyConsistent)
        }
        try await Task.sleep(for: .milliseconds(100))
        // A service that returned early would stop the daemon's whole service group.
        let returnedEarly = returned.load(ordering: .sequentiallyConsistent)
        #expect(!returnedEarly)
        task.cancel()
        try await task.value
        #expect(try cursor() == 0)
        #expect(!FileManager.default.fileExists(atPath: logPath))
    }
}
