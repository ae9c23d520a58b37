import AlertDelivery
import Crypto
import Foundation
import Logging
import TallyConfiguration
import Metering
import ServiceLifecycle
import Storage
import Testing

@Suite struct WebhookTests {
    let store: TemporaryStore

    init() throws {
        store = try TemporaryStore()
    }

    func url(_ port: Int) -> String { "http://127.0.0.1:\(port)/hooks/tally" }

    func cursor(_ url: String) throws -> UInt64 {
        try store.store.deliveryCursor(sink: AlertDispatcher.webhookSinkName(url: url))
    }

    /// The hex HMAC-SHA256 of `"<t>.<body>"`, computed here independently of the code under test.
    func expectedSignature(secret: String, timestamp: String, body: [UInt8]) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return code.map { String(format: "%02x", $0) }.joined()
    }

    @Test func retriesTheSameAlertUntil2xxThenDeliversTheNextInOrder() async throws {
        let alerts = try store.record(2)
        let receiver = try await Receiver.start { index in index < 2 ? 500 : 200 }
        let variable = uniqueVariable()
        let secret = "whsec_\(UUID().uuidString)"
        setenv(variable, secret, 1)
        defer { unsetenv(variable) }
        let webhook = url(receiver.port)
        let counter = DeliveryCounter()
        let dispatcher = AlertDispatcher(store: store.store,
                                         settings: AlertSettings(log: nil, webhooks: [WebhookSettings(url: webhook, secretEnvironmentVariable: variable)]),
                                         logger: LogCapture().logger, pollInterval: .seconds(60), backoff: quickBackoff, onDelivery: counter.callback)
        #expect(dispatcher.sinkNames == ["webhook:" + webhook])
        try await running(dispatcher) {
            #expect(await eventually { (try? cursor(webhook)) == 2 })
        }
        try await receiver.stop()

        let requests = receiver.requests
        // Three attempts at the first alert (500, 500, 200), then the second, never before.
        #expect(requests.map { $0.headers["tally-alert-id"] } == [alerts[0].id, alerts[0].id, alerts[0].id, alerts[1].id])
        for (request, alert) in zip(requests, [alerts[0], alerts[0], alerts[0], alerts[1]]) {
            #expect(request.method == "POST")
            #expect(request.uri == "/hooks/tally")
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.body == Array(alert.json.utf8))
            let header = try #require(request.headers["tally-signature"])
            let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").map { part in
                let pair = part.split(separator: "=", maxSplits: 1)
                return (String(pair[0]), String(pair[1]))
            })
            let timestamp = try #require(parts["t"])
            #expect(parts["v1"] == expectedSignature(secret: secret, timestamp: timestamp, body: request.body))
            #expect(parts["v1"] == AlertDispatcher.signature(secret: secret, timestamp: Int(timestamp) ?? -1, body: request.body))
            let now = Int(Timestamp.now().nanosecondsSinceEpoch / Timestamp.nanosecondsPerSecond)
            #expect(abs(now - (Int(timestamp) ?? 0)) < 60)
        }
        #expect(counter.count(sink: "webhook:" + webhook, success: false) == 2)
        #expect(counter.count(sink: "webhook:" + webhook, success: true) == 2)
        #expect(dispatcher.status(sink: "webhook:" + webhook)?.deliveredThrough == 2)
    }

    @Test func unsignedWithoutSecretAndAnyTwoXXDelivers() async throws {
        let alerts = try store.record(1)
        let receiver = try await Receiver.start { _ in 204 }
        let webhook = url(receiver.port)
        let dispatcher = AlertDispatcher(store: store.store, settings: AlertSettings(log: nil, webhooks: [WebhookSettings(url: webhook)]),
                                         logger: LogCapture().logger, backoff: quickBackoff)
        try await running(dispatcher) {
            #expect(await eventually { (try? cursor(webhook)) == 1 })
        }
        try await receiver.stop()
        #expect(receiver.requests.count == 1)
        #expect(receiver.requests.first?.headers["tally-signature"] == nil)
        #expect(receiver.requests.first?.headers["tally-alert-id"] == alerts[0].id)
    }

    @Test func redirectIsNotFollowedButRetried() async throws {
        try store.record(1)
        let receiver = try await Receiver.start { index in index == 0 ? 302 : 200 }
        let webhook = url(receiver.port)
        let dispatcher = AlertDispatcher(store: store.store, settings: AlertSettings(log: nil, webhooks: [WebhookSettings(url: webhook)]),
                                         logger: LogCapture().logger, backoff: quickBackoff)
        try await running(dispatcher) {
            #expect(await eventually { (try? cursor(webhook)) == 1 })
        }
        try await receiver.stop()
        #expect(receiver.requests.map(\.uri) == ["/hooks/tally", "/hooks/tally"])
    }

    @Test func receiverDownThenUpGetsTheAlertAfterItComesUp() async throws {
        let alerts = try store.record(1)
        let port = try await unusedPort()
        let webhook = url(port)
        let dispatcher = AlertDispatcher(store: store.store, settings: AlertSettings(log: nil, webhooks: [WebhookSettings(url: webhook)]),
                                         logger: LogCapture().logger, backoff: quickBackoff)
        try await running(dispatcher) {
            // Connection refused, again and again; the cursor stays put.
            #expect(await eventually { (dispatcher.status(sink: "webhook:" + webhook)?.consecutiveFailures ?? 0) >= 3 })
            let status = try #require(dispatcher.status(sink: "webhook:" + webhook))
            #expect(status.state == .retrying)
            #expect(status.lastError?.contains("POST") == true)
            #expect(try cursor(webhook) == 0)

            let receiver = try await Receiver.start(port: port) { _ in 200 }
            #expect(await eventually { (try? cursor(webhook)) == 1 })
            try await receiver.stop()
            #expect(receiver.requests.map { $0.headers["tally-alert-id"] } == [alerts[0].id])
            #expect(dispatcher.status(sink: "webhook:" + webhook) == SinkStatus(sink: "webhook:" + webhook, state: .running, deliveredThrough: 1))
        }
    }

    @Test func namedButUnsetSecretRefusesTheSinkAndDeliversNothing() async throws {
        try store.record(2)
        let receiver = try await Receiver.start { _ in 200 }
        let variable = uniqueVariable()
        unsetenv(variable)
        let webhook = url(receiver.port)
        let log = LogCapture()
        let dispatcher = AlertDispatcher(store: store.store,
                                         settings: AlertSettings(log: nil, webhooks: [WebhookSettings(url: webhook, secretEnvironmentVariable: variable)]),
                                         logger: log.logger, pollInterval: .milliseconds(20), backoff: quickBackoff)
        let status = try #require(dispatcher.status(sink: "webhook:" + webhook))
        #expect(status.state == .refused)
        #expect(status.lastError?.contains(variable) == true)
        #expect(status.lastError?.contains("not set") == true)
        try await running(dispatcher) {
            #expect(await eventually { !log.messages(at: .error).isEmpty })
            dispatcher.notify()
            try await Task.sleep(for: .milliseconds(200))
        }
        try await receiver.stop()
        #expect(receiver.requests.isEmpty)
        #expect(try cursor(webhook) == 0)
        #expect(dispatcher.status(sink: "webhook:" + webhook)?.state == .refused)
        let errors = log.messages(at: .error)
        #expect(errors.count == 1)
        #expect(errors.first?.contains("set it in tally serve's environment") == true)
        #expect(errors.first?.contains(variable) == true)
    }

    @Test func emptySecretAndBadURLAreRefusedToo() throws {
        let variable = uniqueVariable()
        setenv(variable, "", 1)
        defer { unsetenv(variable) }
        let log = LogCapture()
        let dispatcher = AlertDispatcher(store: store.store, settings: AlertSettings(log: "", webhooks: [
            WebhookSettings(url: "http://127.0.0.1:1/a", secretEnvironmentVariable: variable),
            WebhookSettings(url: "ftp://127.0.0.1/b"),
            WebhookSettings(url: "http://127.0.0.1:1/c"),
            WebhookSettings(url: "http://127.0.0.1:1/c", secretEnvironmentVariable: variable),
        ]), logger: log.logger)
        #expect(dispatcher.sinkNames == ["log", "webhook:http://127.0.0.1:1/a", "webhook:ftp://127.0.0.1/b", "webhook:http://127.0.0.1:1/c"])
        #expect(dispatcher.statuses.map(\.state) == [.refused, .refused, .refused, .waiting])
        #expect(log.messages(at: .error).contains { $0.contains("lists http://127.0.0.1:1/c twice") })
        #expect(dispatcher.status(sink: "log")?.lastError?.contains("alerts.log is empty") == true)
        #expect(dispatcher.status(sink: "webhook:ftp://127.0.0.1/b")?.lastError?.contains("not http or https") == true)
        #expect(dispatcher.status(sink: "webhook:http://127.0.0.1:1/a")?.lastError?.contains("is not set or is empty") == true)
    }

    @Test func oneFailingWebhookDoesNotHoldUpTheLog() async throws {
        let alerts = try store.record(2)
        let receiver = try await Receiver.start { _ in 500 }
        let webhook = url(receiver.port)
        let logPath = store.directory + "/alerts.ndjson"
        let dispatcher = AlertDispatcher(store: store.store, settings: AlertSettings(log: logPath, webhooks: [WebhookSettings(url: webhook)]),
                                         logger: LogCapture().logger, backoff: quickBackoff)
        try await running(dispatcher) {
            #expect(await eventually { (try? store.store.deliveryCursor(sink: "log")) == 2 })
            #expect(await eventually { (dispatcher.status(sink: "webhook:" + webhook)?.consecutiveFailures ?? 0) >= 2 })
            let webhookCursor = try cursor(webhook)
            #expect(webhookCursor == 0)
        }
        try await receiver.stop()
        #expect(try String(contentsOfFile: logPath, encoding: .utf8) == alerts.map { $0.json + "\n" }.joined())
        #expect(Set(receiver.requests.compactMap { $0.headers["tally-alert-id"] }) == [alerts[0].id])
    }

    @Test func gracefulShutdownReturnsPromptlyWhileAWebhookIsBackingOff() async throws {
        try store.record(1)
        let receiver = try await Receiver.start { _ in 500 }
        let webhook = url(receiver.port)
        // A long backoff and grace period: only the shutdown signal can end the wait quickly.
        let dispatcher = AlertDispatcher(store: store.store, settings: AlertSettings(log: nil, webhooks: [WebhookSettings(url: webhook)]),
                                         logger: LogCapture().logger, backoff: Backoff(base: .seconds(30), cap: .seconds(30)),
                                         shutdownGracePeriod: .seconds(30))
        let group = ServiceGroup(services: [dispatcher], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(await eventually { (dispatcher.status(sink: "webhook:" + webhook)?.consecutiveFailures ?? 0) >= 1 })
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        try await receiver.stop()
        #expect(try cursor(webhook) == 0)
        #expect(dispatcher.status(sink: "webhook:" + webhook)?.state == .stopped)
        // The last pass tried once more, without retrying (a third request only if the first random
        // wait, 0...30 s, happened to end before the shutdown).
        #expect((2...3).contains(receiver.requests.count))
    }
}
