import Foundation
public import Ingest
public import Logging
public import Metering
public import Storage

/// A cluster node's group commits: each commit's events go to the partitions they belong to; each
/// partition this node owns has its own store (`<store>/partitions/NNNN`, an LMDB environment)
/// and records its share in its own transaction, which publishes the accepted events to the
/// partition's log (`PartitionLog`) and waits for the acknowledgement before it commits. So an
/// answer `accepted` means the event is in LMDB here and on a majority of the NATS servers.
/// Events of partitions this node does not own are answered `unavailable`, naming the owner.
///
/// Called on the writer thread (`GroupCommitWriter`), which also runs `open` and `close` as jobs
/// between commits when the node gains or loses a partition; the partitions of one commit record
/// side by side on a thread pool, each partition on one thread until the commit returns.
public final class ClusterRecorder: GroupCommitRecorder, @unchecked Sendable {
    /// One owned partition.
    final class Partition: @unchecked Sendable {
        let number: Int
        let store: TallyStore
        let writer: StoreWriter
        /// The newest sequence of the partition's log this node knows of (what its next append is fenced on).
        var logEnd: UInt64
        /// The log may hold events the store lacks (a commit failed after its publish): replay before the next commit.
        var needsCatchUp = false
        /// Another node wrote to the partition's log: this node no longer owns it.
        var fenced = false
        /// Snapshots and reads for other nodes, which `close` waits for.
        let use = PartitionUse()
        /// Its alert delivery, while served.
        var companion: (any PartitionCompanion)?
        /// The partition's newest snapshot in JetStream, as this node knows it (the snapshot thread's).
        var newestSnapshot: SnapshotManifest?
        /// When this node last snapshotted the partition (or opened it).
        var snapshotAttempted = ContinuousClock.now

        init(number: Int, store: TallyStore, writer: StoreWriter, logEnd: UInt64) {
            self.number = number
            self.store = store
            self.writer = writer
            self.logEnd = logEnd
        }
    }

    public let node: String
    public let map: PartitionMap
    let log: PartitionLog
    let snapshots: PartitionSnapshots?
    let root: String
    let storeConfiguration: TallyStore.Configuration
    let logger: Logger
    /// Part of every message id: ids stay unique across restarts of this node within the dedup window.
    private let nonce = String(UInt64.random(in: .min ... .max), radix: 36)
    private var commits: UInt64 = 0
    private let commitsLock = NSLock()
    /// Partitions of one group commit record side by side, each its own transaction on one
    /// thread of this pool, so their publishes and fsyncs overlap instead of queuing.
    private let partitionThreads = BlockingThreadPool(name: "tally-partition", count: 8)
    private(set) var partitions: [Int: Partition] = [:]
    /// `partitions`, for threads other than the writer's (reads for other nodes).
    private var servedPartitions: [Int: Partition] = [:]
    private let servedLock = NSLock()
    private let ownersLock = NSLock()
    private var knownOwners: [String?] = []
    public private(set) var lastCommit = CommitSummary()
    /// Each partition's limit evaluator, made when it opens (nil: no limits).
    public var makeLimitEvaluator: @Sendable () -> (any LimitEvaluator)? = { nil }
    /// What runs beside each served partition (alert delivery), made after its catch-up (nil: nothing).
    public var makeCompanion: (@Sendable (_ partition: Int, _ store: TallyStore) throws -> (any PartitionCompanion)?)?
    let metrics = ClusterMetrics()

    /// - Parameter root: the node's store directory; partition `N` lives in `root/partitions/NNNN`.
    /// - Parameter snapshots: where partition snapshots go and come from (nil: none, tests of the log alone).
    public init(node: String, map: PartitionMap, log: PartitionLog, snapshots: PartitionSnapshots? = nil, root: String,
                storeConfiguration: TallyStore.Configuration, logger: Logger) {
        self.node = node
        self.map = map
        self.log = log
        self.snapshots = snapshots
        self.root = root
        self.storeConfiguration = storeConfiguration
        self.logger = logger
    }

    /// The seed of partition `number`'s alert ids (`TallyStore.Configuration.alertIDSeed`): the
    /// same on every node, so a crossing keeps its id when the partition moves.
    public static func alertIDSeed(partition number: Int) -> UInt64 { 0x7061_7274_0000_0000 | UInt64(number) }

    /// Where partition `number`'s store lives under `root`.
    public static func storePath(root: String, partition number: Int) -> String {
        "\(root)/partitions/\(PartitionMap.name(number))"
    }

    /// The partitions this node serves now, with the log sequence each store holds (writer thread).
    public var served: [Int: UInt64] {
        partitions.mapValues { (try? $0.store.logSequence()) ?? 0 }
    }

    /// Runs `body` with the store of partition `number` if this node serves it (nil otherwise), and
    /// keeps the partition open until it returns. Any thread; reads only.
    public func withServedStore<T>(_ number: Int, _ body: (TallyStore) throws -> T) throws -> T? {
        guard let partition = servedLock.withLock({ servedPartitions[number] }), !partition.fenced else { return nil }
        return try partition.use.run { try body(partition.store) }
    }

    /// The owners as of the node's last round, for the message of an event this node does not own
    /// and for forwarding. Any thread.
    public func updateOwners(_ owners: [String?]) {
        ownersLock.withLock { knownOwners = owners }
    }

    /// Every partition's owner as of the node's last round (nil: none known). Any thread.
    public var owners: [String?] { ownersLock.withLock { knownOwners } }

    // MARK: Taking and giving up partitions (jobs on the writer thread)

    /// Opens partition `number`'s store (created when new; replaced by the partition's newest
    /// snapshot when that covers more of the log) and catches up from its log: after this the store
    /// holds every event the log holds for the partition, and the node serves it.
    public func open(_ number: Int) throws {
        guard partitions[number] == nil else { return }
        let path = Self.storePath(root: root, partition: number)
        let newestSnapshot = try restoreIfBehind(number, path: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var configuration = storeConfiguration
        configuration.alertIDSeed = Self.alertIDSeed(partition: number)
        let store = try TallyStore(path: path, configuration: configuration, access: .readWrite, logger: logger)
        let writer = try StoreWriter(store: store)
        // Before the replay, so the replay fires the alerts the previous owner's commits fired, at the same outbox sequences.
        writer.limitEvaluator = makeLimitEvaluator()
        // Sealed first: from here on the previous owner cannot append, so the replay below sees everything.
        let seal = try log.seal(partition: number, by: node, messageID: "\(idPrefix)\(nextCommitNumber())")
        let partition = Partition(number: number, store: store, writer: writer, logEnd: seal)
        partition.newestSnapshot = newestSnapshot
        writer.replicate = { [unowned self, unowned partition] accepted throws(StoreError) -> UInt64 in
            try self.replicate(accepted, of: partition)
        }
        let started = ContinuousClock.now
        let replayed = try catchUp(partition, ownWritesOnlyAfter: seal)
        partition.companion = try makeCompanion?(number, store)
        partitions[number] = partition
        servedLock.withLock { servedPartitions[number] = partition }
        metrics.served.record(partitions.count)
        metrics.lag(0, partition: number)
        logger.info("serving partition", metadata: [
            "partition": "\(number)", "log_sequence": "\(partition.logEnd)", "replayed_events": "\(replayed)",
            "catch_up": "\(ContinuousClock.now - started)",
        ])
    }

    /// Stops serving partition `number`: its logged usage is folded and its identity index saved,
    /// as a single-node daemon does at stop, and its store closed.
    public func close(_ number: Int) {
        guard let partition = partitions.removeValue(forKey: number) else { return }
        servedLock.withLock { _ = servedPartitions.removeValue(forKey: number) }
        partition.companion?.stop()
        partition.companion = nil
        partition.use.close()
        metrics.served.record(partitions.count)
        metrics.forget(partition: number)
        do {
            try partition.writer.foldLoggedUsage()
            try partition.writer.saveIdentityIndex()
        } catch {
            logger.warning("partition closed without its final fold; the next owner of this store reads its log", metadata: [
                "partition": "\(number)", "error": "\(error.message)",
            ])
        }
        logger.info("stopped serving partition", metadata: ["partition": "\(number)"])
    }

    /// Catches up every served partition whose log holds more than its store (a commit failed after
    /// its publish, or an acknowledgement was lost and the message landed later), so an idle
    /// partition does not stay behind its log until its next commit. A job on the writer thread,
    /// once per lease round.
    public func reconcile() {
        for partition in partitions.values where !partition.fenced {
            do {
                let end = try log.lastSequence(of: partition.number)
                let applied = try partition.store.logSequence()
                metrics.lag(end > applied ? end - applied : 0, partition: partition.number)
                guard partition.needsCatchUp || end > partition.logEnd || applied < end else { continue }
                try catchUp(partition, ownWritesOnlyAfter: partition.logEnd)
                let caughtUp = try partition.store.logSequence()
                metrics.lag(end > caughtUp ? end - caughtUp : 0, partition: partition.number)
            } catch {
                logger.warning("could not catch a partition up with its log; retrying next round", metadata: [
                    "partition": "\(partition.number)", "error": "\(error)",
                ])
            }
        }
    }

    /// Partitions whose log another node wrote to since: this node must give them up.
    public var fencedPartitions: [Int] { partitions.values.filter(\.fenced).map(\.number).sorted() }

    /// Stops serving every partition.
    public func closeAll() {
        for number in partitions.keys.sorted() { close(number) }
    }

    /// The prefix of every message id this process writes.
    var idPrefix: String { "\(node)-\(nonce)-" }

    /// Replays the log after what the store holds; returns how many events the replay recorded.
    /// Past `ownWritesOnlyAfter` (what this node knows it wrote last) every message must be this
    /// process's own (a publish whose acknowledgement was lost): one from another node means
    /// another node owns the partition now, so the replay stops there and the partition is fenced,
    /// instead of taking that node's end as its own and writing after it.
    @discardableResult
    private func catchUp(_ partition: Partition, ownWritesOnlyAfter known: UInt64) throws -> Int {
        var replayed = 0
        let applied = try partition.store.logSequence()
        let prefix = idPrefix
        try log.replay(partition: partition.number, after: applied) { sequence, events, messageID throws(ClusterError) in
            if sequence > known, !(messageID?.hasPrefix(prefix) ?? false) {
                partition.fenced = true
                throw ClusterError(.fenced, "partition \(partition.number)'s log has message \(sequence) from another writer (\(messageID ?? "no id")): another node owns the partition now")
            }
            do {
                _ = try partition.writer.record(events, replicatedAs: sequence)
            } catch {
                throw ClusterError(.damaged, "replaying message \(sequence) of partition \(partition.number)'s log failed: \((error as? StoreError)?.message ?? "\(error)")")
            }
            replayed += events.count
            partition.logEnd = max(partition.logEnd, sequence)
        }
        partition.needsCatchUp = false
        return replayed
    }

    private func replicate(_ accepted: [PendingEvent], of partition: Partition) throws(StoreError) -> UInt64 {
        do {
            let started = ContinuousClock.now
            let end = try log.append(accepted, partition: partition.number, after: partition.logEnd, commitID: "\(idPrefix)\(nextCommitNumber())")
            metrics.record(metrics.publish, since: started)
            // The log has them, whatever LMDB does next: a failed commit is caught up from the log.
            partition.logEnd = end
            return end
        } catch {
            if error.code == .fenced {
                partition.fenced = true
                metrics.fenced.increment()
            }
            throw StoreError(.unavailable, error.message)
        }
    }

    func nextCommitNumber() -> UInt64 {
        commitsLock.withLock {
            commits += 1
            return commits
        }
    }

    // MARK: Group commits

    public func record(_ pending: [PendingEvent]) throws(StoreError) -> [RecordOutcome] {
        var byPartition: [Int: [Int]] = [:]
        for (index, item) in pending.enumerated() { byPartition[map.partition(of: item.event.customer), default: []].append(index) }
        let results = PartitionResults(count: pending.count)
        var work: [(Partition, [Int])] = []
        for (number, indices) in byPartition.sorted(by: { $0.key < $1.key }) {
            guard let partition = partitions[number], !partition.fenced else {
                results.fill(indices, with: Array(repeating: .rejected(notServed(number)), count: indices.count), summary: nil)
                continue
            }
            work.append((partition, indices))
        }
        let done = DispatchGroup()
        for (partition, indices) in work {
            let events = indices.map { pending[$0] }
            let job: @Sendable () -> Void = { [self] in
                let (outcomes, summary) = record(events, in: partition)
                results.fill(indices, with: outcomes, summary: summary)
                done.leave()
            }
            done.enter()
            // The last partition runs here: a commit of one partition (the common case with few) costs no hand-off.
            if partition === work.last?.0 { job() } else { partitionThreads.run(job) }
        }
        done.wait()
        lastCommit = results.summary
        return results.outcomes
    }

    /// One partition's share of a group commit, in its own transaction (on whichever thread runs it).
    private func record(_ events: [PendingEvent], in partition: Partition) -> ([RecordOutcome], CommitSummary?) {
        do {
            if partition.needsCatchUp { try catchUp(partition, ownWritesOnlyAfter: partition.logEnd) }
            let recorded = try partition.writer.record(events, replicatedAs: nil)
            if !partition.writer.lastCommit.alertsFired.isEmpty { partition.companion?.notify() }
            return (recorded, partition.writer.lastCommit)
        } catch {
            if !partition.fenced { partition.needsCatchUp = true }
            let message = (error as? StoreError)?.message ?? (error as? ClusterError)?.message ?? "\(error)"
            logger.error("partition commit failed; answering its events unavailable", metadata: [
                "partition": "\(partition.number)", "events": "\(events.count)", "error": "\(message)",
            ])
            let unavailable = IngestError(code: .unavailable, message: "partition \(partition.number) could not take this commit (\(message)); nothing was recorded, retry", field: nil)
            return (Array(repeating: .rejected(unavailable), count: events.count), nil)
        }
    }

    private func notServed(_ number: Int) -> IngestError {
        let owners = self.owners
        let owner = number < owners.count ? owners[number] : nil
        let whom = owner.map { "node \($0)" } ?? "no node right now (a fail-over is under way)"
        return IngestError(code: .unavailable,
                           message: "this node (\(node)) does not serve partition \(number) of this customer: \(whom) owns it; send the event there, or retry",
                           field: nil)
    }

    public func foldLoggedUsage() throws(StoreError) {
        for partition in partitions.values { try partition.writer.foldLoggedUsage() }
    }

    public func saveIdentityIndex() throws(StoreError) {
        for partition in partitions.values { try partition.writer.saveIdentityIndex() }
    }
}

/// The outcomes of one group commit, filled in by the partitions' jobs.
private final class PartitionResults: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var outcomes: [RecordOutcome]
    private(set) var summary = CommitSummary()

    init(count: Int) {
        outcomes = Array(repeating: .duplicate, count: count)
    }

    func fill(_ indices: [Int], with partOutcomes: [RecordOutcome], summary part: CommitSummary?) {
        lock.withLock {
            for (offset, index) in indices.enumerated() { outcomes[index] = partOutcomes[offset] }
            if let part {
                summary.blocking.merge(part.blocking) { $1 }
                summary.alertsFired += part.alertsFired
            }
        }
    }
}
