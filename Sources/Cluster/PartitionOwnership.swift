import Foundation
public import NATS
import TallyConfiguration

/// Which node owns which partition, through leases in a JetStream key-value bucket.
///
/// A lease is the key `p.NNNN` holding the owner's node name; the bucket's time-to-live is the
/// fail-over time (`cluster.failover`), so a lease its owner stops renewing disappears by itself
/// and another node can take the partition. Every write is a compare-and-set: a node claims a
/// partition only if it has no lease (`create`), and renews only the revision it holds
/// (`update`), so two nodes never both hold a lease; a node whose renewal loses has lost the
/// partition. Leases alone do not stop a deposed owner that has not noticed yet: the partition's
/// log does (`PartitionLog`'s fence).
///
/// Live nodes heartbeat a key of their own in a second bucket with the same time-to-live; each
/// node claims free partitions up to its fair share, ⌈partitions ÷ live nodes⌉, and reports what
/// it holds above that as surplus, to release once it stopped writing to them.
///
/// Owned by one thread (the node's cluster agent), which calls `round()` a few times per fail-over
/// time (hence `@unchecked Sendable`: it is handed to that thread once, never shared).
public final class PartitionOwnership: @unchecked Sendable {
    public let node: String
    public let partitions: PartitionMap
    let leases: KeyValueBucket
    let nodes: KeyValueBucket
    /// The partitions this node holds a lease for, with the lease's revision.
    public private(set) var owned: [Int: UInt64] = [:]

    /// What one round changed.
    public struct Round: Sendable, Hashable {
        /// Leases this node claimed: start serving (after catching up from the log).
        public var gained: [Int] = []
        /// Leases this node held and lost (another node has them): stop writing at once.
        public var lost: [Int] = []
        /// Leases held above the fair share: release them (`release`) once their writes stopped.
        public var surplus: [Int] = []

        public init(gained: [Int] = [], lost: [Int] = [], surplus: [Int] = []) {
            self.gained = gained
            self.lost = lost
            self.surplus = surplus
        }
    }

    /// The buckets of a cluster (created on first use), with `failover` as their time-to-live.
    public static func buckets(on stream: JetStream, failover: Duration, replicas: Int) throws(ClusterError)
        -> (leases: KeyValueBucket, nodes: KeyValueBucket) {
        do {
            let leases = try stream.keyValue(.init(bucket: "tally-partitions", replicas: replicas, timeToLive: failover))
            let nodes = try stream.keyValue(.init(bucket: "tally-nodes", replicas: replicas, timeToLive: failover))
            return (leases, nodes)
        } catch {
            throw ClusterError(error, while: "creating the cluster's lease buckets")
        }
    }

    public init(node: String, partitions: PartitionMap, leases: KeyValueBucket, nodes: KeyValueBucket) throws(ClusterError) {
        guard ClusterSettings.isValidNodeName(node) else {
            throw ClusterError(.invalidSettings, "cluster.node must be a name of at most 64 printable ASCII characters without spaces, '.', '*' or '>', got '\(node)'")
        }
        self.node = node
        self.partitions = partitions
        self.leases = leases
        self.nodes = nodes
    }

    static func key(_ partition: Int) -> String { "p." + PartitionMap.name(partition) }

    /// One round: heartbeat (with `status`, what `tally cluster status` shows of this node), renew
    /// every lease held (a lost renewal is in `lost`), claim free partitions up to the fair share
    /// (`gained`), and name the leases above it (`surplus`).
    ///
    /// `owners`: every partition's owner as the previous round's table had it. A node with more than
    /// ⌊partitions ÷ live nodes⌋ hands one more partition over while a live node has fewer, so the
    /// shares even out (⌈…⌉ alone can settle at 6, 6 and 4 for three nodes and sixteen partitions).
    public func round(status: NodeStatus = NodeStatus(), owners: [String?] = []) throws(ClusterError) -> Round {
        var result = Round()
        do {
            try nodes.put(node, status.encoded)
            for (partition, revision) in owned.sorted(by: { $0.key < $1.key }) {
                switch try leases.update(Self.key(partition), Array(node.utf8), expectedRevision: revision) {
                case .written(let renewed): owned[partition] = renewed
                case .conflict:
                    owned[partition] = nil
                    result.lost.append(partition)
                }
            }
            let live = try nodes.keys()
            let liveNodes = max(1, live.count)
            let share = (partitions.count + liveNodes - 1) / liveNodes
            let floor = partitions.count / liveNodes
            if owned.count < share {
                // Each node starts its search at its own place, so nodes starting together do not all
                // race for partition 0; a create on a held lease loses at once.
                let start = partitions.partition(of: node)
                for step in 0..<partitions.count where owned.count < share {
                    let partition = (start + step) % partitions.count
                    guard owned[partition] == nil else { continue }
                    if case .written(let revision) = try leases.create(Self.key(partition), Array(node.utf8)) {
                        owned[partition] = revision
                        result.gained.append(partition)
                    }
                }
            }
            if owned.count > share {
                result.surplus = Array(owned.keys.sorted().suffix(owned.count - share))
            } else if owned.count > floor {
                var counts: [String: Int] = Dictionary(uniqueKeysWithValues: live.map { ($0, 0) })
                for owner in owners.compactMap({ $0 }) where counts[owner] != nil { counts[owner]! += 1 }
                if counts.contains(where: { $0.key != node && $0.value < floor }), let last = owned.keys.max() {
                    result.surplus = [last]
                }
            }
        } catch {
            throw ClusterError(error, while: "renewing and claiming partition leases")
        }
        result.gained.sort()
        return result
    }

    /// Gives up `partition` (its writes stopped): its lease is deleted, so another node takes it
    /// in its next round instead of after the fail-over time. Deletes only this node's own lease.
    public func release(_ partition: Int) throws(ClusterError) {
        guard let revision = owned.removeValue(forKey: partition) else { return }
        do {
            // Overwrite-then-delete would race a new owner: write an empty value at our revision
            // first (fails if someone else holds it), then delete.
            guard case .written = try leases.update(Self.key(partition), [], expectedRevision: revision) else { return }
            try leases.delete(Self.key(partition))
        } catch {
            throw ClusterError(error, while: "releasing partition \(partition)")
        }
    }

    /// Releases every lease held and removes the node's heartbeat: a clean stop.
    public func leave() throws(ClusterError) {
        for partition in owned.keys.sorted() { try release(partition) }
        do { try nodes.delete(node) } catch { throw ClusterError(error, while: "leaving the cluster") }
    }

    /// Every partition's owner now (nil: none) and the live nodes with their status, for `tally cluster status`.
    public static func table(leases: KeyValueBucket, nodes: KeyValueBucket, partitions: PartitionMap) throws(ClusterError)
        -> (owners: [String?], nodes: [String: NodeStatus]) {
        do {
            var owners = [String?](repeating: nil, count: partitions.count)
            for partition in 0..<partitions.count {
                guard let entry = try leases.get(key(partition)), !entry.value.isEmpty else { continue }
                owners[partition] = String(decoding: entry.value, as: UTF8.self)
            }
            let live = Dictionary(uniqueKeysWithValues: try nodes.entries().map { ($0.key, NodeStatus(decoding: $0.value)) })
            return (owners, live)
        } catch {
            throw ClusterError(error, while: "reading partition leases")
        }
    }
}

/// What a node reports in its heartbeat: for each partition it serves, the newest log sequence its
/// store holds. One line per partition, `partition sequence`.
public struct NodeStatus: Sendable, Hashable {
    public var appliedSequences: [Int: UInt64]

    public init(appliedSequences: [Int: UInt64] = [:]) {
        self.appliedSequences = appliedSequences
    }

    var encoded: [UInt8] {
        Array(appliedSequences.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)\n" }.joined().utf8)
    }

    init(decoding bytes: [UInt8]) {
        var sequences: [Int: UInt64] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let partition = Int(parts[0]), let sequence = UInt64(parts[1]) { sequences[partition] = sequence }
        }
        appliedSequences = sequences
    }
}
