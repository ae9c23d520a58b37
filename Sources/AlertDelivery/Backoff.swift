/// How long a sink waits before retrying a failed delivery: exponential backoff with full jitter
/// (AWS's "full jitter"): after the n-th consecutive failure, a uniformly random wait in
/// `0 ... min(cap, base · 2ⁿ⁻¹)`. Integer nanoseconds throughout.
///
/// ```swift
/// let backoff = Backoff.standard                       // 100 ms base, 60 s cap
/// let wait = backoff.delay(afterFailure: 3)            // somewhere in 0 ... 400 ms
/// ```
public struct Backoff: Sendable, Hashable {
    /// The ceiling of the first wait.
    public var base: Duration
    /// The largest ceiling any wait can have.
    public var cap: Duration

    /// A backoff whose ceiling starts at `base` and doubles up to `cap`.
    public init(base: Duration, cap: Duration) {
        self.base = base
        self.cap = cap
    }

    /// The daemon's backoff: 100 ms base, 60 s cap.
    public static let standard = Backoff(base: .milliseconds(100), cap: .seconds(60))

    /// The ceiling of the wait after `failures` consecutive failures (1 for the first failure).
    public func ceiling(afterFailure failures: Int) -> Duration {
        .nanoseconds(ceilingNanoseconds(afterFailure: failures))
    }

    /// A random wait in `0 ... ceiling(afterFailure: failures)`.
    public func delay(afterFailure failures: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterFailure: failures, using: &generator)
    }

    /// A random wait in `0 ... ceiling(afterFailure: failures)`, drawn from `generator`.
    public func delay(afterFailure failures: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceilingNanoseconds(afterFailure: failures)
        guard ceiling > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...ceiling, using: &generator))
    }

    private func ceilingNanoseconds(afterFailure failures: Int) -> Int64 {
        let base = max(0, Self.nanoseconds(base))
        let cap = max(0, Self.nanoseconds(cap))
        let doublings = max(0, failures - 1)
        guard base > 0 else { return 0 }
        // base << doublings, saturating at cap.
        if doublings >= 62 || base > cap >> doublings { return cap }
        return min(cap, base << doublings)
    }

    /// A duration in whole nanoseconds, saturating at `Int64`'s range.
    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflowSum) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflowSum { return seconds < 0 ? .min : .max }
        return sum
    }
}
