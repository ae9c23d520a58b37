import Foundation
public import Ingest
import Metering
public import NATS
import Storage

/// Any node answers any producer: a connection's batch goes through this router, which keeps the
/// events of partitions this node owns (or that have no owner now: the recorder answers those
/// `unavailable`) for the local writer and forwards the others to their owner over NATS
/// request/reply (`tally.forward.<node>`), then hands the batch back with every outcome in line
/// order. The writer thread never waits for another node, so two nodes forwarding to each other
/// cannot deadlock.
public final class ClusterRouter: IngestSubmitter, @unchecked Sendable {
    private let writer: GroupCommitWriter
    private let recorder: ClusterRecorder
    private let connection: NATSConnection
    private let timeout: Duration
    /// Threads of its own: each forward blocks one until its owner answers (a commit there), so
    /// the number in flight is the number of threads (a dispatch queue would run about one per core).
    private let forwarding = BlockingThreadPool(name: "tally-forward", count: 64)

    public var budget: BufferBudget { writer.budget }

    public init(writer: GroupCommitWriter, recorder: ClusterRecorder, connection: NATSConnection, timeout: Duration = .seconds(10)) {
        self.writer = writer
        self.recorder = recorder
        self.connection = connection
        self.timeout = timeout
    }

    public static func subject(node: String) -> String { "tally.forward.\(node)" }

    public func submit(_ batch: IngestBatch) {
        let owners = recorder.owners
        var local: [Int] = []
        var remote: [String: [Int]] = [:]
        for (index, pending) in batch.events.enumerated() {
            let partition = recorder.map.partition(of: pending.event.customer)
            if partition < owners.count, let owner = owners[partition], owner != recorder.node {
                remote[owner, default: []].append(index)
            } else {
                local.append(index)
            }
        }
        guard !remote.isEmpty else {
            writer.submit(batch)
            return
        }
        let routed = RoutedBatch(parent: batch, parts: remote.count + (local.isEmpty ? 0 : 1))
        if !local.isEmpty {
            writer.submit(IngestBatch(events: local.map { batch.events[$0] }, sink: PartSink(routed, indices: local), tag: 0))
        }
        for (owner, indices) in remote {
            let events = indices.map { batch.events[$0] }
            recorder.metrics.forwarded.increment(by: events.count)
            forwarding.run { [connection, timeout] in
                let (outcomes, blocked) = Self.forward(events, to: owner, connection: connection, timeout: timeout)
                routed.fill(indices, outcomes: outcomes, blocked: blocked)
            }
        }
    }

    /// The owner's outcomes for `events` (with the limits blocking their customers), or
    /// `unavailable` for each when it could not answer.
    static func forward(_ events: [PendingEvent], to owner: String, connection: NATSConnection, timeout: Duration)
        -> (outcomes: [RecordOutcome], blocked: [BlockingLimit?]) {
        do {
            let reply = try connection.request(subject: subject(node: owner), payload: EventBatchCodec.encode(events), timeout: timeout)
            guard let decoded = RecordOutcomeCodec.decodeWithBlocked(reply.payload), decoded.outcomes.count == events.count else {
                throw ClusterError(.damaged, "node \(owner) answered a forwarded batch with something this version does not read")
            }
            return decoded
        } catch {
            let reason = (error as? NATSError)?.message ?? (error as? ClusterError)?.message ?? "\(error)"
            let unavailable = IngestError(code: .unavailable,
                                          message: "this event's partition is owned by node \(owner), which could not be reached (\(reason)); nothing was recorded here, retry",
                                          field: nil)
            return (Array(repeating: .rejected(unavailable), count: events.count), [])
        }
    }
}

/// A batch split between the local writer and other nodes: handed back once every part answered.
private final class RoutedBatch: @unchecked Sendable {
    private let parent: IngestBatch
    private let lock = NSLock()
    private var remaining: Int
    private var outcomes: [RecordOutcome]
    private var blocked: [BlockingLimit?] = []

    init(parent: IngestBatch, parts: Int) {
        self.parent = parent
        remaining = parts
        outcomes = Array(repeating: .duplicate, count: parent.events.count)
    }

    func fill(_ indices: [Int], outcomes partOutcomes: [RecordOutcome], blocked partBlocked: [BlockingLimit?] = []) {
        lock.lock()
        for (offset, index) in indices.enumerated() { outcomes[index] = partOutcomes[offset] }
        if !partBlocked.isEmpty {
            if blocked.isEmpty { blocked = Array(repeating: nil, count: parent.events.count) }
            for (offset, index) in indices.enumerated() { blocked[index] = partBlocked[offset] }
        }
        remaining -= 1
        let done = remaining == 0
        lock.unlock()
        guard done else { return }
        parent.complete(outcomes: outcomes, blocked: blocked)
        parent.sink.batchesCompleted([parent])
    }
}

/// The local part of a routed batch, as the writer hands it back.
private final class PartSink: IngestBatchSink, @unchecked Sendable {
    private let routed: RoutedBatch
    private let indices: [Int]

    init(_ routed: RoutedBatch, indices: [Int]) {
        self.routed = routed
        self.indices = indices
    }

    func batchesCompleted(_ batches: [IngestBatch]) {
        for batch in batches { routed.fill(indices, outcomes: batch.outcomes, blocked: batch.blocked) }
    }
}

/// The owner's side of forwarding: batches other nodes forward arrive on `tally.forward.<node>`,
/// go to the local writer like a connection's, and are answered with their outcomes.
public final class ForwardServer: @unchecked Sendable {
    private let connection: NATSConnection
    private let writer: GroupCommitWriter
    private let node: String
    private var subscription: NATSSubscription?

    public init(connection: NATSConnection, writer: GroupCommitWriter, node: String) {
        self.connection = connection
        self.writer = writer
        self.node = node
    }

    public func start() throws(NATSError) {
        let connection = self.connection
        let writer = self.writer
        subscription = try connection.subscribe(subject: ClusterRouter.subject(node: node)) { message in
            guard let events = EventBatchCodec.decode(message.payload) else {
                try? connection.respond(to: message, payload: [])
                return
            }
            writer.submit(IngestBatch(events: events, sink: ReplySink(connection: connection, request: message), tag: 0))
        }
    }

    public func stop() {
        subscription?.cancel()
        subscription = nil
    }
}

/// Answers one forwarded batch once the writer has its outcomes.
private final class ReplySink: IngestBatchSink, @unchecked Sendable {
    private let connection: NATSConnection
    private let request: NATSMessage

    init(connection: NATSConnection, request: NATSMessage) {
        self.connection = connection
        self.request = request
    }

    func batchesCompleted(_ batches: [IngestBatch]) {
        for batch in batches { try? connection.respond(to: request, payload: RecordOutcomeCodec.encode(batch.outcomes, blocked: batch.blocked)) }
    }
}
