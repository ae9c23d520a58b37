import Foundation
public import Logging
public import TallyConfiguration
public import Metering
import NIOCore
import NIOPosix
public import ServiceLifecycle
public import Storage

/// The ingest daemon as a service: the writer thread and the socket server, started together and
/// shut down in pipeline order on SIGTERM/SIGINT (stop accepting, answer what was read, commit, stop).
public final class IngestDaemon: Service, Sendable {
    private let config: TallyConfig
    private let store: TallyStore?
    private let makeRecorder: (@Sendable () throws -> any GroupCommitRecorder)?
    private let makeSubmitter: (@Sendable (GroupCommitWriter) -> any IngestSubmitter)?
    private let socketPath: String
    private let logger: Logger
    private let ready: @Sendable () -> Void
    private let makeLimitEvaluator: @Sendable () -> (any LimitEvaluator)?
    private let onAlerts: @Sendable ([Alert]) -> Void
    private let frontEnds: @Sendable (GroupCommitWriter, EventLineParser) -> [any Service]

    /// - Parameters:
    ///   - store: the store, opened `.readWrite`; nil with `makeRecorder`.
    ///   - makeRecorder: cluster mode: what records the group commits instead of one store's writer
    ///     (made on the daemon's start; no archive schedule runs).
    ///   - makeSubmitter: cluster mode: where the socket's connections hand their batches (a router
    ///     in front of the writer); nil: the writer.
    ///   - socketPath: where to listen (the config's `ingest.socket` or `--socket`).
    ///   - ready: called once the socket accepts connections.
    ///   - makeLimitEvaluator: creates the writer's limit evaluator (on the writer's side); nil: no limits.
    ///   - onAlerts: called after a commit that fired alerts (they are durable in the outbox).
    ///   - frontEnds: more services that feed the same writer (the HTTP API) or follow the store
    ///     (the alert dispatcher); they start after the socket and stop before it.
    public init(config: TallyConfig, store: TallyStore?, makeRecorder: (@Sendable () throws -> any GroupCommitRecorder)? = nil,
                makeSubmitter: (@Sendable (GroupCommitWriter) -> any IngestSubmitter)? = nil,
                socketPath: String, logger: Logger,
                makeLimitEvaluator: @escaping @Sendable () -> (any LimitEvaluator)? = { nil },
                onAlerts: @escaping @Sendable ([Alert]) -> Void = { _ in },
                frontEnds: @escaping @Sendable (GroupCommitWriter, EventLineParser) -> [any Service] = { _, _ in [] },
                ready: @escaping @Sendable () -> Void = {}) {
        self.config = config
        self.store = store
        self.makeRecorder = makeRecorder
        self.makeSubmitter = makeSubmitter
        self.socketPath = socketPath
        self.logger = logger
        self.makeLimitEvaluator = makeLimitEvaluator
        self.onAlerts = onAlerts
        self.frontEnds = frontEnds
        self.ready = ready
    }

    public func run() async throws {
        Heap.configure()
        let recorder: any GroupCommitRecorder
        var storeWriter: StoreWriter?
        if let makeRecorder {
            recorder = try makeRecorder()
        } else if let store {
            let writer = try StoreWriter(store: store)
            writer.limitEvaluator = makeLimitEvaluator()
            storeWriter = writer
            recorder = writer
        } else {
            throw StoreError(.unavailable, "the daemon was given neither a store nor a recorder")
        }
        let logger = self.logger
        let onAlerts = self.onAlerts
        let writer = GroupCommitWriter(
            writer: recorder,
            maximumEvents: config.ingest.commitMaxEvents,
            maximumDelayNanoseconds: config.ingest.commitMaxDelayNanoseconds,
            logger: logger,
            budget: BufferBudget(limit: config.ingest.maxBufferedBytes),
            onCommit: { report in
                logger.trace("group commit", metadata: ["events": "\(report.events)", "accepted": "\(report.accepted)",
                                                        "micros": "\(report.durationNanoseconds / 1000)"])
                if !report.alertsFired.isEmpty {
                    for alert in report.alertsFired {
                        logger.info("alert fired", metadata: ["id": "\(alert.id)", "customer": "\(alert.customer)",
                                                              "limit": "\(alert.limitID)", "percent": "\(alert.percent)"])
                    }
                    onAlerts(report.alertsFired)
                }
            })
        let parser = EventLineParser(
            meterCodes: Set(config.meters.map(\.code)),
            limits: .init(maxFutureSkewNanoseconds: config.ingest.maxFutureSkewNanoseconds,
                          dedupWindowNanoseconds: config.ingest.dedupWindowNanoseconds))
        let threads = max(1, min(4, System.coreCount - 1))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let server = IngestServer(
            settings: .init(socketPath: socketPath, socketMode: config.ingest.socketMode,
                            limits: ConnectionLimits(maximumLineBytes: config.ingest.maxLineBytes,
                                                     maximumUnansweredLines: max(4 * config.ingest.commitMaxEvents, 1024)),
                            backlog: config.ingest.listenBacklog),
            parser: parser, writer: makeSubmitter?(writer) ?? writer, group: group, logger: logger)
        writer.start()
        do {
            try await server.start()
        } catch {
            await Self.stop(writer)
            try? await group.shutdownGracefully()
            throw error
        }
        var schedule: ArchiveSchedule?
        if config.archive.intervalNanoseconds > 0, let store {
            schedule = ArchiveSchedule(archive: EventArchive(store: store), writer: writer,
                                       intervalNanoseconds: config.archive.intervalNanoseconds, ingest: config.ingest, logger: logger)
            schedule?.start()
        } else {
            ArchiveSchedule.declareMetrics()
        }
        let front = ServiceGroup(configuration: .init(services: frontEnds(writer, parser).map { .init(service: $0) }, logger: logger))
        let frontTask = Task { try await front.run() }
        ready()
        // Wait for SIGTERM/SIGINT (or cancellation), or a front end that failed; then drain in
        // pipeline order: front ends first (they submit to the writer), the socket, the writer.
        var frontError: (any Error)?
        await withTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                try? await gracefulShutdown()
                return nil
            }
            group.addTask {
                do {
                    // A group without services returns at once: then only a signal ends the daemon.
                    try await frontTask.value
                    try? await gracefulShutdown()
                    return nil
                } catch {
                    return error
                }
            }
            frontError = await group.next() ?? nil
            group.cancelAll()
        }
        logger.info("shutting down: answering every line already read")
        await front.triggerGracefulShutdown()
        _ = try? await frontTask.value
        if let schedule { await Self.stop(schedule) }
        await server.shutdown()
        await Self.stop(writer)
        try? await group.shutdownGracefully()
        logger.info("stopped", metadata: storeWriter.map { ["identities": "\($0.identityCount)"] } ?? [:])
        if let frontError { throw frontError }
    }

    /// Stops the archive schedule (a run in progress ends at its next step) without blocking the cooperative pool.
    private static func stop(_ schedule: ArchiveSchedule) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                schedule.stop()
                continuation.resume()
            }
        }
    }

    /// Stops the writer thread without blocking the cooperative pool.
    private static func stop(_ writer: GroupCommitWriter) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                writer.stop()
                continuation.resume()
            }
        }
    }
}
