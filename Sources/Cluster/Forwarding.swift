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
    private let forwarding = ForwardingThreads(count: 64)

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
            forwarding.run { [connection, timeout] in
                routed.fill(indices, outcomes: Self.forward(events, to: owner, connection: connection, timeout: timeout))
            }
        }
    }

    /// The owner's outcomes for `events`, or `unavailable` for each when it could not answer.
    static func forward(_ events: [PendingEvent], to owner: String, connection: NATSConnection, timeout: Duration) -> [RecordOutcome] {
        do {
            let reply = try connection.request(subject: subject(node: owner), payload: EventBatchCodec.encode(events), timeout: timeout)
            guard let outcomes = OutcomeCodec.decode(reply.payload), outcomes.count == events.count else {
                throw ClusterError(.damaged, "node \(owner) answered a forwarded batch with something this version does not read")
            }
            return outcomes
        } catch {
            let reason = (error as? NATSError)?.message ?? (error as? ClusterError)?.message ?? "\(error)"
            let unavailable = IngestError(code: .unavailable,
                                          message: "this event's partition is owned by node \(owner), which could not be reached (\(reason)); nothing was recorded here, retry",
                                          field: nil)
            return Array(repeating: .rejected(unavailable), count: events.count)
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
        for batch in batches { try? connection.respond(to: request, payload: OutcomeCodec.encode(batch.outcomes)) }
    }
}

/// Outcomes on the wire: u32 count, then per outcome u8 kind (0 accepted, 1 duplicate, 2 rejected:
/// u8 length ‖ code, u32 length ‖ message, u8 length ‖ field (0: none)).
enum OutcomeCodec {
    static func encode(_ outcomes: [RecordOutcome]) -> [UInt8] {
        var bytes: [UInt8] = []
        append(UInt32(outcomes.count), to: &bytes)
        for outcome in outcomes {
            switch outcome {
            case .accepted: bytes.append(0)
            case .duplicate: bytes.append(1)
            case .rejected(let error):
                bytes.append(2)
                let code = Array(error.code.rawValue.utf8.prefix(255))
                bytes.append(UInt8(code.count))
                bytes += code
                let message = Array(error.message.utf8)
                append(UInt32(message.count), to: &bytes)
                bytes += message
                let field = Array((error.field ?? "").utf8.prefix(255))
                bytes.append(UInt8(field.count))
                bytes += field
            }
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8]) -> [RecordOutcome]? {
        var offset = 0
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, offset + count <= bytes.count else { return nil }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }
        func u32() -> Int? { take(4).map { $0.reduce(0) { $0 << 8 | Int($1) } } }
        guard let count = u32() else { return nil }
        var outcomes: [RecordOutcome] = []
        for _ in 0..<count {
            guard let kind = take(1)?.first else { return nil }
            switch kind {
            case 0: outcomes.append(.accepted)
            case 1: outcomes.append(.duplicate)
            case 2:
                guard let codeLength = take(1)?.first, let code = take(Int(codeLength)), let messageLength = u32(),
                      let message = take(messageLength), let fieldLength = take(1)?.first, let field = take(Int(fieldLength)) else { return nil }
                outcomes.append(.rejected(IngestError(code: IngestError.Code(rawValue: String(decoding: code, as: UTF8.self)),
                                                      message: String(decoding: message, as: UTF8.self),
                                                      field: field.isEmpty ? nil : String(decoding: field, as: UTF8.self))))
            default: return nil
            }
        }
        return offset == bytes.count ? outcomes : nil
    }

    private static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}

/// A fixed set of threads that run blocking jobs in submission order.
final class ForwardingThreads: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []

    init(count: Int) {
        for index in 0..<count {
            let thread = Thread { [self] in
                while true {
                    condition.lock()
                    while jobs.isEmpty { condition.wait() }
                    let job = jobs.removeFirst()
                    condition.unlock()
                    job()
                }
            }
            thread.name = "tally-forward-\(index)"
            thread.start()
        }
    }

    func run(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }
}
