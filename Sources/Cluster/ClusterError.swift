public import NATS

/// A cluster-mode failure: a stable code and a message that says what to do.
public struct ClusterError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Another node wrote to the partition's log: this node no longer owns it and must stop writing.
        public static let fenced = Code(rawValue: "cluster_fenced")
        /// A setting out of range (partitions, replicas, the fail-over time).
        public static let invalidSettings = Code(rawValue: "cluster_invalid_settings")
        /// A message of the log or of a snapshot is not what this version writes.
        public static let damaged = Code(rawValue: "cluster_damaged")
        /// NATS failed; the message has its code and text.
        public static let nats = Code(rawValue: "cluster_nats")
    }

    public var code: Code
    public var message: String
    /// The NATS error underneath, for `.nats`.
    public var underlying: NATSError?

    public init(_ code: Code, _ message: String, underlying: NATSError? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    init(_ error: NATSError, while doing: String) {
        self.init(.nats, "\(doing): \(error.description)", underlying: error)
    }

    public var description: String { "\(code): \(message)" }
}
