/// What one sink is doing, for `tally alerts`-style status output, health checks and tests.
public struct SinkStatus: Sendable, Hashable {
    /// A sink's state.
    public enum State: Sendable, Hashable {
        /// Configured; `run()` has not started it yet.
        case waiting
        /// Delivering, or idle with nothing left to deliver.
        case running
        /// The last attempt failed; retrying with backoff (`lastError` says why).
        case retrying
        /// Misconfigured, so never started (`lastError` says what to fix); it delivers nothing.
        case refused
        /// `run()` has returned.
        case stopped
    }

    /// The sink's name, also the key of its delivery cursor: `log` or `webhook:<url>`.
    public var sink: String
    /// Whether the sink runs, retries, was refused or has stopped.
    public var state: State
    /// The last alert sequence this sink has delivered (its cursor as this process knows it).
    public var deliveredThrough: UInt64
    /// Failed attempts since the last success.
    public var consecutiveFailures: Int
    /// Why the last attempt failed, or why the sink was refused; nil after a success.
    public var lastError: String?

    /// A status.
    public init(sink: String, state: State, deliveredThrough: UInt64 = 0, consecutiveFailures: Int = 0, lastError: String? = nil) {
        self.sink = sink
        self.state = state
        self.deliveredThrough = deliveredThrough
        self.consecutiveFailures = consecutiveFailures
        self.lastError = lastError
    }
}
