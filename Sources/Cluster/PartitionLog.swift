public import NATS
public import Storage

/// The replicated event log of a cluster: one JetStream stream, one subject per partition
/// (`tally.events.NNNN`), each message one group commit's accepted events of that partition
/// (`EventBatchCodec`; a commit over `maxMessageBytes` becomes several messages).
///
/// The owner appends a commit and waits for the stream's acknowledgement, which comes once a
/// majority of the stream's servers (`cluster.replicas`) stored it, **before** it commits LMDB and
/// answers the producer, so the log holds every acknowledged event. Each message is fenced on the
/// partition's last sequence as the owner knows it: once another node has written to the
/// partition, a deposed owner's append fails with `.fenced` and stores nothing. Each message has
/// an id (`Nats-Msg-Id`: the commit's id and the piece's number), so a publish retried after a lost
/// acknowledgement is not stored twice.
public final class PartitionLog: @unchecked Sendable {
    public let stream: JetStream
    public let name: String
    public let subjectPrefix: String
    /// The largest message, under NATS's default max_payload (1 MiB) with room for headers.
    public let maxMessageBytes: Int
    /// How long the stream recognises a message id again (its duplicate window): the log is never
    /// trimmed of messages younger than this.
    public let duplicateWindowMilliseconds: Int64

    /// Binds to (or creates) the log's stream.
    public init(stream: JetStream, name: String = "TALLY_EVENTS", subjectPrefix: String = "tally.events", replicas: Int,
                duplicateWindow: Duration = .seconds(120), maxMessageBytes: Int = 1_000_000) throws(ClusterError) {
        self.stream = stream
        self.name = name
        self.subjectPrefix = subjectPrefix
        self.maxMessageBytes = maxMessageBytes
        self.duplicateWindowMilliseconds = duplicateWindow.milliseconds
        do {
            try stream.addStream(.init(name: name, subjects: ["\(subjectPrefix).*"], replicas: replicas, duplicateWindow: duplicateWindow))
        } catch {
            throw ClusterError(error, while: "creating the event log stream \(name)")
        }
    }

    public func subject(_ partition: Int) -> String { "\(subjectPrefix).\(PartitionMap.name(partition))" }

    /// The sequence of the partition's newest message, 0 when it has none: where a new owner's fence starts.
    public func lastSequence(of partition: Int) throws(ClusterError) -> UInt64 {
        do {
            return try stream.lastMessage(stream: name, subject: subject(partition))?.sequence ?? 0
        } catch {
            throw ClusterError(error, while: "reading the end of partition \(partition)'s log")
        }
    }

    /// Removes the partition's messages up to `sequence` (a snapshot covers them), always keeping
    /// its newest message, which the next append is fenced on. Returns the sequence the partition's
    /// log now starts at or after.
    @discardableResult
    public func trim(partition: Int, through sequence: UInt64) throws(ClusterError) -> UInt64 {
        guard sequence > 0 else { return 0 }
        let below = min(sequence + 1, try lastSequence(of: partition))
        guard below > 1 else { return 0 }
        do {
            try stream.purge(stream: name, subject: subject(partition), below: below)
        } catch {
            throw ClusterError(error, while: "trimming partition \(partition)'s log below \(below)")
        }
        return below
    }

    /// Appends one commit's accepted events of `partition` after `lastSequence` (the partition's
    /// newest sequence as this owner knows it) and returns the new newest sequence. `.fenced`
    /// when another node wrote to the partition since: nothing of this commit is then stored
    /// past the fence, and this node must stop writing to the partition.
    public func append(_ events: [PendingEvent], partition: Int, after lastSequence: UInt64, commitID: String) throws(ClusterError) -> UInt64 {
        guard !events.isEmpty else { return lastSequence }
        var last = lastSequence
        let subject = subject(partition)
        for (piece, payload) in EventBatchCodec.encode(events, maxBytes: maxMessageBytes).enumerated() {
            let outcome: JetStream.PublishOutcome
            do {
                outcome = try stream.publish(subject: subject, payload: payload, messageID: "\(commitID).\(piece)", expectedLastSubjectSequence: last)
            } catch {
                throw ClusterError(error, while: "appending to partition \(partition)'s log")
            }
            switch outcome {
            case .stored(let sequence), .duplicate(let sequence): last = sequence
            case .fenced:
                throw ClusterError(.fenced, "another node wrote to partition \(partition)'s log after sequence \(last): this node no longer owns the partition and stopped writing to it")
            }
        }
        return last
    }

    /// Seals the partition for a new owner: appends an empty batch after the log's end, so that an
    /// append by the previous owner, which may not know yet that it lost the partition, is fenced
    /// from now on (without the seal it would go through until the new owner's first own append,
    /// and the new owner, having replayed already, would miss it). Returns the seal's sequence:
    /// the end of what the new owner replays.
    ///
    /// `messageID`: the seal's id, in the new owner's own id scheme (what `replay` reports).
    public func seal(partition: Int, by node: String, messageID: String) throws(ClusterError) -> UInt64 {
        let subject = subject(partition)
        for attempt in 0..<100 {
            let end = try lastSequence(of: partition)
            let outcome: JetStream.PublishOutcome
            do {
                outcome = try stream.publish(subject: subject, payload: EventBatchCodec.encode([]), messageID: "\(messageID).\(attempt)",
                                             expectedLastSubjectSequence: end)
            } catch {
                throw ClusterError(error, while: "sealing partition \(partition)'s log")
            }
            switch outcome {
            case .stored(let sequence), .duplicate(let sequence): return sequence
            case .fenced: continue  // the previous owner appended meanwhile: read the end again
            }
        }
        throw ClusterError(.fenced, "partition \(partition)'s log kept moving while node \(node) sealed it: another node still writes to it")
    }

    /// Calls `body` with every message of `partition` after `sequence`, in order, with its
    /// sequence and events: how a new owner catches up from its snapshot (or from nothing).
    public func replay(partition: Int, after sequence: UInt64, _ body: (UInt64, [PendingEvent]) throws(ClusterError) -> Void) throws(ClusterError) {
        try replay(partition: partition, after: sequence) { (sequence, events, _) throws(ClusterError) in try body(sequence, events) }
    }

    /// `replay`, with each message's id (`Nats-Msg-Id`): who wrote it.
    public func replay(partition: Int, after sequence: UInt64, _ body: (UInt64, [PendingEvent], String?) throws(ClusterError) -> Void) throws(ClusterError) {
        var next = sequence + 1
        let subject = subject(partition)
        while true {
            let message: NATSMessage?
            do {
                message = try stream.nextMessage(stream: name, subject: subject, from: next)
            } catch {
                throw ClusterError(error, while: "replaying partition \(partition)'s log")
            }
            guard let message else { return }
            guard let events = EventBatchCodec.decode(message.payload) else {
                throw ClusterError(.damaged, "message \(message.sequence) of partition \(partition)'s log is not an event batch this version reads")
            }
            try body(message.sequence, events, message.messageID)
            next = message.sequence + 1
        }
    }
}
