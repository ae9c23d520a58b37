import Foundation
public import Ingest
public import Logging
public import NATS
public import ServiceLifecycle

/// A cluster node's agent, a `Service` beside the ingest socket: a few times per fail-over time it
/// renews this node's partition leases and claims free partitions (`PartitionOwnership`), then has
/// the writer thread open the partitions it gained (catching up from their logs) and close those it
/// lost or holds above its fair share; a surplus lease is released only after its store closed.
/// On stop it closes every partition and releases every lease, so other nodes take them at once.
public final class ClusterNode: Service, @unchecked Sendable {
    private let ownership: PartitionOwnership
    private let recorder: ClusterRecorder
    private let writer: GroupCommitWriter
    private let roundInterval: Duration
    private let snapshotInterval: Duration
    private let forwardServer: ForwardServer?
    private let readServer: ReadServer?
    private let logger: Logger
    private let condition = NSCondition()
    private var stopping = false
    private var stopped = false

    /// - Parameter roundInterval: how often to renew and claim: a quarter of the fail-over time.
    /// - Parameter snapshotInterval: how often a served partition that took events is snapshotted
    ///   (when the recorder has a snapshot stream).
    /// - Parameter connection: answers the batches other nodes forward to this one (nil: none, tests).
    /// - Parameter readAnswer: answers reads other nodes ask of this one's partitions (nil: none).
    public init(ownership: PartitionOwnership, recorder: ClusterRecorder, writer: GroupCommitWriter, roundInterval: Duration,
                snapshotInterval: Duration = .seconds(300), connection: NATSConnection?, readAnswer: ReadServer.Answer? = nil, logger: Logger) {
        self.ownership = ownership
        self.forwardServer = connection.map { ForwardServer(connection: $0, writer: writer, node: recorder.node) }
        if let connection, let readAnswer {
            readServer = ReadServer(connection: connection, recorder: recorder, answer: readAnswer)
        } else {
            readServer = nil
        }
        self.recorder = recorder
        self.writer = writer
        self.roundInterval = roundInterval
        self.snapshotInterval = snapshotInterval
        self.logger = logger
    }

    public func run() async throws {
        try forwardServer?.start()
        try readServer?.start()
        let thread = Thread { [self] in loop() }
        thread.name = "tally-cluster"
        thread.start()
        if recorder.snapshots != nil {
            let snapshotter = Thread { [self] in snapshotLoop() }
            snapshotter.name = "tally-snapshot"
            snapshotter.start()
        }
        try? await gracefulShutdown()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread { [self] in
                condition.lock()
                stopping = true
                condition.broadcast()
                while !stopped { condition.wait() }
                condition.unlock()
                continuation.resume()
            }
        }
    }

    private func loop() {
        while !isStopping {
            runRound()
            condition.lock()
            if !stopping { _ = condition.wait(until: Date().addingTimeInterval(Self.seconds(roundInterval))) }
            condition.unlock()
        }
        // A clean stop: stop taking forwarded batches and writing, then hand every partition over at once.
        forwardServer?.stop()
        readServer?.stop()
        _ = try? writer.perform { [recorder] _ in recorder.closeAll() }
        do {
            try ownership.leave()
        } catch {
            logger.warning("could not release the partition leases; other nodes take them after the fail-over time", metadata: ["error": "\(error.message)"])
        }
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Snapshots due partitions one at a time, beside the lease rounds (a large backup must not
    /// delay a renewal), until the node stops; `close` waits for a snapshot under way.
    private func snapshotLoop() {
        let check = min(snapshotInterval, roundInterval)
        while !isStopping {
            let interval = snapshotInterval
            let recorder = self.recorder
            for partition in (try? waitForWriter { recorder.partitionsDueForSnapshot(interval: interval) }) ?? [] {
                guard !isStopping else { break }
                do {
                    if try recorder.snapshot(partition) != nil { recorder.metrics.snapshotsPublished.increment() }
                } catch {
                    recorder.metrics.snapshotsFailed.increment()
                    logger.warning("partition snapshot failed; retrying after the snapshot interval", metadata: [
                        "partition": "\(partition.number)", "error": "\(error)",
                    ])
                }
            }
            condition.lock()
            if !stopping { _ = condition.wait(until: Date().addingTimeInterval(Self.seconds(check))) }
            condition.unlock()
        }
    }

    private var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    /// One round of ownership, and the partitions it opens and closes.
    func runRound() {
        let recorder = self.recorder
        _ = try? writer.perform { _ in recorder.reconcile() }
        let served = (try? waitForWriter { recorder.served }) ?? [:]
        let round: PartitionOwnership.Round
        do {
            round = try ownership.round(status: NodeStatus(appliedSequences: served), owners: recorder.owners)
        } catch {
            recorder.metrics.leaseRoundFailures.increment()
            logger.error("partition lease round failed; retrying", metadata: ["error": "\(error.message)"])
            return
        }
        var lost = round.lost
        if let fenced = try? waitForWriter({ recorder.fencedPartitions }) {
            lost += fenced.filter { !lost.contains($0) }
        }
        recorder.metrics.ownershipChanged("lost", by: lost.count)
        recorder.metrics.ownershipChanged("handed_over", by: round.surplus.count)
        for partition in lost {
            logger.warning("partition lost to another node", metadata: ["partition": "\(partition)"])
            _ = try? writer.perform { _ in recorder.close(partition) }
            if ownership.owned[partition] != nil { try? ownership.release(partition) }
        }
        for partition in round.gained {
            do {
                _ = try writer.perform { _ in try recorder.open(partition) }
                recorder.metrics.ownershipChanged("gained")
            } catch {
                logger.error("could not open a partition it claimed; releasing it", metadata: ["partition": "\(partition)", "error": "\(error)"])
                try? ownership.release(partition)
            }
        }
        for partition in round.surplus {
            _ = try? writer.perform { _ in recorder.close(partition) }
            try? ownership.release(partition)
        }
        if let table = try? ownership.owners() { recorder.updateOwners(table) }
    }

    private func waitForWriter<T: Sendable>(_ body: @escaping @Sendable () -> T) throws -> T {
        let box = ResultBox<T>()
        _ = try writer.perform { _ in box.value = body() }
        guard let value = box.value else { throw ClusterError(.nats, "the writer thread is stopping") }
        return value
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        TimeInterval(duration.nanoseconds) / 1e9
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

extension PartitionOwnership {
    /// Every partition's owner now (nil: none).
    func owners() throws(ClusterError) -> [String?] {
        try Self.table(leases: leases, nodes: nodes, partitions: partitions).owners
    }
}
