public import NATS

/// How far each alert sink has been delivered, per partition, in the JetStream KV bucket
/// `tally-alert-cursors` (key `p.NNNN.<sink name in hex>`, value the outbox sequence in decimal):
/// a partition's new owner, whose store may come from an older snapshot or a replay from nothing,
/// starts each sink after what the previous owner delivered, so a fail-over delivers no alert twice
/// (only a crash between a delivery and its cursor update resends one, with the same
/// `Tally-Alert-Id`, as in single-node mode).
public final class AlertCursors: @unchecked Sendable {
    let bucket: KeyValueBucket

    /// Binds to (or creates) the bucket.
    public init(on stream: JetStream, replicas: Int) throws(ClusterError) {
        do {
            bucket = try stream.keyValue(.init(bucket: "tally-alert-cursors", replicas: replicas))
        } catch {
            throw ClusterError(error, while: "creating the alert cursor bucket")
        }
    }

    static func key(partition: Int, sink: String) -> String {
        let hex = sink.utf8.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
        return "p.\(PartitionMap.name(partition)).\(hex)"
    }

    /// The sequence `sink` was delivered through for `partition`; 0 when none is recorded.
    public func cursor(partition: Int, sink: String) throws(ClusterError) -> UInt64 {
        do {
            guard let entry = try bucket.get(Self.key(partition: partition, sink: sink)) else { return 0 }
            return UInt64(String(decoding: entry.value, as: UTF8.self)) ?? 0
        } catch {
            throw ClusterError(error, while: "reading partition \(partition)'s alert cursor of \(sink)")
        }
    }

    /// Records that `sink` delivered `partition`'s alerts through `sequence`.
    public func record(partition: Int, sink: String, through sequence: UInt64) throws(ClusterError) {
        do {
            _ = try bucket.put(Self.key(partition: partition, sink: sink), Array(String(sequence).utf8))
        } catch {
            throw ClusterError(error, while: "recording partition \(partition)'s alert cursor of \(sink)")
        }
    }
}

/// What runs beside a served partition's store while this node serves it (its alert delivery):
/// made when the partition opens, after its catch-up, and stopped before it closes.
public protocol PartitionCompanion: AnyObject, Sendable {
    /// A commit of the partition fired alerts.
    func notify()
    /// Stops, and returns once nothing of it reads the store any more.
    func stop()
}
