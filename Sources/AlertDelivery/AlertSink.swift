import Storage

/// Why one delivery attempt failed: said in words for the log and `SinkStatus.lastError`.
struct DeliveryFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// One destination of alerts, owned by its delivery loop (one task): never shared.
protocol AlertSink: AnyObject {
    /// The sink's name and the key of its delivery cursor.
    var name: String { get }

    /// Gets ready to deliver the alerts after `cursor` (the stored delivery cursor) and returns the
    /// sequence through which alerts are already delivered (at least `cursor`). Retried with backoff
    /// until it succeeds.
    func start(cursor: UInt64, store: TallyStore) async throws(DeliveryFailure) -> UInt64

    /// Delivers `alerts` (consecutive, oldest first) in order. Calls `delivered(count, through)`
    /// whenever the first not-yet-reported alerts up to sequence `through` are delivered for good;
    /// throws at the first failure, having reported what was delivered before it.
    func deliver(_ alerts: [Alert], delivered: (_ count: Int, _ through: UInt64) -> Void) async throws(DeliveryFailure)
}
