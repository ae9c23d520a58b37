import Metering

/// Which partition a customer belongs to: a stable hash of its id, the same on every node and in
/// every release (a change would move customers between partitions and split their usage), so it
/// uses SipHash-2-4 with fixed keys, not the store's random ones.
public struct PartitionMap: Sendable, Hashable {
    /// How many partitions the cluster has (`cluster.partitions`), fixed for the cluster's life.
    public let count: Int

    /// The largest partition count: a partition is an LMDB environment and a log subject, and
    /// each node holds several.
    public static let maximumCount = 4_096

    public init(count: Int) throws(ClusterError) {
        guard (1...Self.maximumCount).contains(count) else {
            throw ClusterError(.invalidSettings, "cluster.partitions must be between 1 and \(Self.maximumCount), got \(count); 64 suits clusters of up to 16 nodes")
        }
        self.count = count
    }

    /// The partition of `customer`, in 0..<count.
    public func partition(of customer: String) -> Int {
        var hasher = SipHasher24(key0: 0x7461_6C6C_792D_7061, key1: 0x7274_6974_696F_6E73)  // "tally-pa", "rtitions"
        var customer = customer
        customer.withUTF8 { hasher.combine(UnsafeRawBufferPointer($0)) }
        return Int(hasher.finalize() % UInt64(count))
    }

    /// The partition's name in subjects and keys: four digits, so names sort in partition order.
    public static func name(_ partition: Int) -> String {
        let digits = String(partition)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
