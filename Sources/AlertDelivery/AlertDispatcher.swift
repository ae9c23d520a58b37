import AsyncHTTPClient
import Foundation
public import Logging
public import TallyConfiguration
import Metering
public import ServiceLifecycle
public import Storage
import Synchronization

/// Delivers fired alerts from the store's durable outbox (the `alerts` database) to the configured
/// sinks: the NDJSON alert log and each webhook, each from its own delivery cursor, in sequence order.
///
/// One delivery loop per sink. A loop wakes when ``notify()`` is called (the ingest writer calls it
/// after a commit that fired alerts) and every `pollInterval` as a fallback, then delivers every
/// alert after its cursor. A failed delivery is retried, same alert first, with ``Backoff``, forever;
/// the cursor only moves past delivered alerts. The log gets each alert exactly once (also across a
/// crash between its append and the cursor update); webhooks get each at least once (receivers
/// deduplicate by `Tally-Alert-Id`).
///
/// Run it in the daemon's `ServiceGroup`; on graceful shutdown (or cancellation) it makes one last
/// pass without retries, gives up after `shutdownGracePeriod`, and returns.
///
/// ```swift
/// let dispatcher = AlertDispatcher(store: store, settings: config.alerts, logger: logger)
/// // the writer, after a commit that fired alerts: dispatcher.notify()
/// let group = ServiceGroup(services: [writer, server, dispatcher], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
public final class AlertDispatcher: Service, Sendable {
    /// The delivery-cursor name of the alert log sink.
    public static let logSinkName = "log"

    /// The delivery-cursor name of the webhook sink for `url`.
    public static func webhookSinkName(url: String) -> String { "webhook:" + url }

    /// How many alerts a loop reads from the outbox at a time.
    static let batchLimit = 256

    private enum SinkPlan: Sendable {
        case log(path: String)
        case webhook(url: String, secret: String?)
        case refused
    }

    private struct Sink: Sendable {
        var name: String
        var plan: SinkPlan
        var wakeup: Wakeup
    }

    private struct SharedState {
        var statuses: [String: SinkStatus]
        var started = false
        var shuttingDown = false
    }

    private let store: TallyStore
    private let logger: Logger
    private let pollInterval: Duration
    private let backoff: Backoff
    private let shutdownGracePeriod: Duration
    private let onDelivery: @Sendable (_ sink: String, _ success: Bool) -> Void
    private let onCursorRecorded: @Sendable (_ sink: String, _ through: UInt64) -> Void
    private let sinks: [Sink]
    private let shutdown = OneShotSignal()
    private let state: Mutex<SharedState>

    /// Configures delivery to the sinks in `settings`; nothing is sent until ``run()``.
    ///
    /// A relative `settings.log` path is resolved now, against the current working directory. Each
    /// webhook's `secret_env` variable is read now: a webhook whose variable is named but unset (or
    /// empty), whose URL is not http(s), or whose URL is listed twice is refused — it delivers
    /// nothing, ``run()`` logs an error saying what to fix, and ``status(sink:)`` reports `.refused`.
    ///
    /// - Parameters:
    ///   - pollInterval: how often each loop looks at the outbox without a ``notify()``.
    ///   - backoff: the wait between failed attempts.
    ///   - shutdownGracePeriod: how long graceful shutdown may spend on a last pass before the loops
    ///     are cancelled.
    ///   - onDelivery: called after every attempt to deliver an alert, with the sink's name and whether
    ///     it succeeded (a seam for metrics); called from the delivery tasks, keep it cheap.
    ///   - onCursorRecorded: called after a sink's delivery cursor was stored, with the sink's name and
    ///     the sequence delivered through (a cluster node copies it to JetStream for the next owner).
    public init(
        store: TallyStore,
        settings: AlertSettings,
        logger: Logger,
        pollInterval: Duration = .seconds(1),
        backoff: Backoff = .standard,
        shutdownGracePeriod: Duration = .seconds(5),
        onDelivery: @escaping @Sendable (_ sink: String, _ success: Bool) -> Void = { _, _ in },
        onCursorRecorded: @escaping @Sendable (_ sink: String, _ through: UInt64) -> Void = { _, _ in }
    ) {
        self.store = store
        self.logger = logger
        self.pollInterval = pollInterval
        self.backoff = backoff
        self.shutdownGracePeriod = shutdownGracePeriod
        self.onDelivery = onDelivery
        self.onCursorRecorded = onCursorRecorded

        var sinks: [Sink] = []
        var statuses: [String: SinkStatus] = [:]
        func add(_ name: String, _ plan: SinkPlan, refusal: String? = nil) {
            sinks.append(Sink(name: name, plan: refusal == nil ? plan : .refused, wakeup: Wakeup()))
            statuses[name] = SinkStatus(sink: name, state: refusal == nil ? .waiting : .refused, lastError: refusal)
        }
        if let log = settings.log {
            if log.isEmpty {
                add(Self.logSinkName, .refused, refusal: "alerts.log is empty: set it to a file path, or remove it to turn the alert log off")
            } else {
                add(Self.logSinkName, .log(path: Self.absolutePath(log)))
            }
        }
        for webhook in settings.webhooks {
            let name = Self.webhookSinkName(url: webhook.url)
            if statuses[name] != nil {
                // Same cursor as the first one: deliver once, say so.
                logger.error("alerts.webhooks lists \(webhook.url) twice: it receives each alert once; remove the duplicate")
                continue
            }
            var secret: String?
            var refusal: String?
            if let variable = webhook.secretEnvironmentVariable {
                if let value = getenv(variable).map({ String(cString: $0) }), !value.isEmpty {
                    secret = value
                } else {
                    refusal = "the webhook \(webhook.url) is signed with the secret in the environment variable \(variable) (secret_env), but \(variable) is not set or is empty: set it in tally serve's environment and restart; until then this webhook receives nothing"
                }
            }
            if refusal == nil, let problem = Self.urlProblem(webhook.url) {
                refusal = "the webhook URL '\(webhook.url)' \(problem): fix alerts.webhooks and restart; until then this webhook receives nothing"
            }
            add(name, .webhook(url: webhook.url, secret: secret), refusal: refusal)
        }
        self.sinks = sinks
        self.state = Mutex(SharedState(statuses: statuses))
    }

    /// The sinks' names in configuration order (log first): the keys of their delivery cursors.
    public var sinkNames: [String] { sinks.map(\.name) }

    /// What `sink` is doing; nil when there is no such sink.
    public func status(sink: String) -> SinkStatus? {
        state.withLock { $0.statuses[sink] }
    }

    /// Every sink's status, in configuration order.
    public var statuses: [SinkStatus] {
        state.withLock { state in sinks.compactMap { state.statuses[$0.name] } }
    }

    /// Wakes every delivery loop to look at the outbox now. Cheap (no allocation, no store access);
    /// callable from any thread, also before ``run()`` (the loops then look as they start).
    public func notify() {
        for sink in sinks { sink.wakeup.signal() }
    }

    /// Delivers until graceful shutdown or cancellation, then makes one last pass (no retries, at
    /// most `shutdownGracePeriod`) and returns. Call it once.
    public func run() async throws {
        let alreadyStarted = state.withLock { state in
            defer { state.started = true }
            return state.started
        }
        precondition(!alreadyStarted, "AlertDispatcher.run() called twice: create one dispatcher per run")

        for sink in sinks {
            if let status = status(sink: sink.name), status.state == .refused {
                logger.error("alert sink refused: \(status.lastError ?? "misconfigured")", metadata: ["sink": "\(sink.name)"])
            }
        }
        let needsClient = sinks.contains { if case .webhook = $0.plan { true } else { false } }
        let client: HTTPClient? = needsClient ? Self.makeClient(logger: logger) : nil
        logger.info("alert delivery started", metadata: ["sinks": "\(sinkNames.joined(separator: ", "))"])

        await withTaskCancellationOrGracefulShutdownHandler {
            await deliverUntilShutdown(client: client)
        } onCancelOrGracefulShutdown: { [self] in
            beginShutdown()
        }

        if let client {
            do {
                try await client.shutdown()
            } catch {
                logger.warning("the webhook HTTP client did not shut down cleanly: \(error)")
            }
        }
        state.withLock { state in
            for name in state.statuses.keys where state.statuses[name]?.state != .refused {
                state.statuses[name]?.state = .stopped
            }
        }
        logger.info("alert delivery stopped")
    }

    // MARK: The loops

    private enum ChildResult: Sendable {
        case sinkFinished
        case shutdownRequested
        case gracePeriodOver
        case helperFinished
    }

    private func deliverUntilShutdown(client: HTTPClient?) async {
        await withTaskGroup(of: ChildResult.self) { group in
            var running = 0
            for sink in sinks {
                let plan = sink.plan
                let name = sink.name
                let wakeup = sink.wakeup
                switch plan {
                case .refused:
                    continue
                case .log(let path):
                    running += 1
                    group.addTask {
                        await self.runLoop(AlertLogSink(path: path, batchLimit: Self.batchLimit, logger: self.logger), wakeup: wakeup)
                        return .sinkFinished
                    }
                case .webhook(let url, let secret):
                    guard let client else { continue }
                    running += 1
                    group.addTask {
                        await self.runLoop(WebhookSink(name: name, url: url, secret: secret, client: client, logger: self.logger), wakeup: wakeup)
                        return .sinkFinished
                    }
                }
            }
            group.addTask {
                // The fallback poll.
                while !Task.isCancelled, !self.shutdown.hasFired {
                    try? await Task.sleep(for: self.pollInterval)
                    self.notify()
                }
                return .helperFinished
            }
            group.addTask {
                await self.shutdown.wait()
                return .shutdownRequested
            }

            var shutdownRequested = false
            while running > 0 || !shutdownRequested, let result = await group.next() {
                switch result {
                case .sinkFinished:
                    running -= 1
                case .shutdownRequested:
                    shutdownRequested = true
                    let grace = shutdownGracePeriod
                    group.addTask {
                        do {
                            try await Task.sleep(for: grace)
                            return .gracePeriodOver
                        } catch {
                            return .helperFinished
                        }
                    }
                case .gracePeriodOver:
                    logger.warning("alert delivery did not finish its last pass within \(grace: shutdownGracePeriod): stopping; the rest is delivered after the restart")
                    group.cancelAll()
                case .helperFinished:
                    break
                }
            }
            group.cancelAll()
        }
    }

    private func beginShutdown() {
        state.withLock { $0.shuttingDown = true }
        shutdown.fire()
        for sink in sinks { sink.wakeup.finish() }
    }

    private var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// One sink's loop: start (retried), then drain the outbox at every wake-up; a last pass when the
    /// wake-ups end (shutdown or cancellation).
    private func runLoop(_ sink: some AlertSink, wakeup: Wakeup) async {
        var sinkLogger = logger
        sinkLogger[metadataKey: "sink"] = "\(sink.name)"
        let logger = sinkLogger
        var failures = 0

        // Start: read the cursor and let the sink find what it already holds.
        var position: UInt64 = 0
        var persisted: UInt64 = 0
        while true {
            do throws(DeliveryFailure) {
                let cursor: UInt64
                do throws(StoreError) {
                    cursor = try store.deliveryCursor(sink: sink.name)
                } catch {
                    throw DeliveryFailure("cannot read the delivery cursor: \(error.message)")
                }
                persisted = cursor
                position = try await sink.start(cursor: cursor, store: store)
                update(sink.name) { $0.state = .running; $0.deliveredThrough = position; $0.lastError = nil; $0.consecutiveFailures = 0 }
                failures = 0
                break
            } catch {
                failures += 1
                recordFailure(sink.name, error, failures: failures, logger: logger)
                if isShuttingDown || Task.isCancelled { return }
                await waitBeforeRetry(failures: failures)
            }
        }

        var wakes = wakeup.wakes.makeAsyncIterator()
        while true {
            await drain(sink, position: &position, persisted: &persisted, failures: &failures, logger: logger)
            if await wakes.next() == nil { break }
        }
        // The last pass: no retries (the wake-ups ended because of shutdown or cancellation).
        await drain(sink, position: &position, persisted: &persisted, failures: &failures, logger: logger)
    }

    /// Delivers everything after `position`; retries failures with backoff unless shutting down.
    private func drain(_ sink: some AlertSink, position: inout UInt64, persisted: inout UInt64, failures: inout Int, logger: Logger) async {
        while true {
            do throws(DeliveryFailure) {
                // Never get more than one batch ahead of the stored cursor (the log's exactly-once rests on it).
                if persisted < position {
                    try persistCursor(sink.name, position)
                    persisted = position
                }
                let batch: [Alert]
                do throws(StoreError) {
                    batch = try store.alerts(after: position, limit: Self.batchLimit)
                } catch {
                    throw DeliveryFailure("cannot read the alert outbox: \(error.message)")
                }
                if batch.isEmpty { return }
                var deliveredThrough = position
                var cursorError: DeliveryFailure?
                defer { position = deliveredThrough }
                try await sink.deliver(batch) { count, through in
                    deliveredThrough = through
                    for _ in 0..<count { onDelivery(sink.name, true) }
                    if failures > 0 {
                        logger.info("alert delivered after \(failures) failed attempts", metadata: ["through_sequence": "\(through)"])
                        failures = 0
                    }
                    update(sink.name) { $0.state = .running; $0.deliveredThrough = through; $0.consecutiveFailures = 0; $0.lastError = nil }
                    do throws(DeliveryFailure) {
                        try persistCursor(sink.name, through)
                        persisted = through
                    } catch {
                        cursorError = error
                    }
                }
                if let cursorError { throw cursorError }
            } catch {
                // Cancelled: the attempt was cut short, not refused; the alert waits for the next run.
                if Task.isCancelled { return }
                failures += 1
                onDelivery(sink.name, false)
                recordFailure(sink.name, error, failures: failures, logger: logger)
                if isShuttingDown || Task.isCancelled { return }
                await waitBeforeRetry(failures: failures)
                if isShuttingDown || Task.isCancelled { return }
            }
        }
    }

    private func persistCursor(_ sink: String, _ sequence: UInt64) throws(DeliveryFailure) {
        do throws(StoreError) {
            try store.setDeliveryCursor(sink: sink, to: sequence)
        } catch {
            throw DeliveryFailure("cannot record the delivery cursor: \(error.message)")
        }
        onCursorRecorded(sink, sequence)
    }

    /// Sleeps the backoff delay, or less when shutdown begins.
    private func waitBeforeRetry(failures: Int) async {
        let delay = backoff.delay(afterFailure: failures)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: delay) }
            group.addTask { await self.shutdown.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Logs the 1st, 2nd, 4th, 8th… failure in a row (a receiver down for a day is a few dozen lines).
    private func recordFailure(_ sink: String, _ error: DeliveryFailure, failures: Int, logger: Logger) {
        update(sink) { $0.state = .retrying; $0.consecutiveFailures = failures; $0.lastError = error.message }
        if failures & (failures - 1) == 0 {
            logger.warning("alert delivery failed: \(error.message)", metadata: ["failures_in_a_row": "\(failures)"])
        }
    }

    private func update(_ sink: String, _ body: (inout SinkStatus) -> Void) {
        state.withLock { state in
            if var status = state.statuses[sink] {
                body(&status)
                state.statuses[sink] = status
            }
        }
    }

    // MARK: Configuration

    private static func makeClient(logger: Logger) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(WebhookSink.attemptTimeout), read: .seconds(WebhookSink.attemptTimeout))
        )
        configuration.connectionPool.idleTimeout = .seconds(30)
        // A refused connection fails the attempt at once; our backoff (not the pool's) paces retries.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration, backgroundActivityLogger: logger)
    }

    private static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }

    /// What is wrong with a webhook URL, or nil when it is a usable http(s) URL.
    private static func urlProblem(_ url: String) -> String? {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased() else { return "is not a URL" }
        guard scheme == "http" || scheme == "https" else { return "is not http or https" }
        guard let host = parsed.host, !host.isEmpty else { return "has no host" }
        return nil
    }
}

extension DefaultStringInterpolation {
    /// A duration as `5s` or `250ms`, for log messages.
    mutating func appendInterpolation(grace duration: Duration) {
        let milliseconds = Backoff.nanoseconds(duration) / 1_000_000
        appendLiteral(milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms")
    }
}
