import AlertDelivery
import Cluster
import Foundation
import Logging
import Storage
import TallyConfiguration

/// A served partition's alert delivery in cluster mode: an `AlertDispatcher` on the partition's
/// store, its webhooks' cursors started after what `AlertCursors` says the previous owner
/// delivered and copied there after every delivery.
final class PartitionAlerts: PartitionCompanion, @unchecked Sendable {
    private let dispatcher: AlertDispatcher
    private let done = DispatchSemaphore(value: 0)
    private var task: Task<Void, Never>?

    /// Starts delivering partition `number`'s alerts from `store` (nil when `settings` has no sinks).
    static func start(partition number: Int, store: TallyStore, settings: AlertSettings, cursors: AlertCursors,
                      onDelivery: @escaping @Sendable (String, Bool) -> Void) throws -> PartitionAlerts? {
        guard settings.log != nil || !settings.webhooks.isEmpty else { return nil }
        var partitionLogger = Logger(label: "tally.alerts")
        partitionLogger[metadataKey: "partition"] = "\(number)"
        let logger = partitionLogger
        let dispatcher = AlertDispatcher(
            store: store, settings: settings, logger: logger, shutdownGracePeriod: .seconds(2), onDelivery: onDelivery,
            onCursorRecorded: { sink, through in
                do {
                    try cursors.record(partition: number, sink: sink, through: through)
                } catch {
                    logger.warning("could not copy an alert cursor to JetStream; a new owner of the partition may deliver those alerts again (same Tally-Alert-Id)",
                                   metadata: ["sink": "\(sink)", "error": "\(error)"])
                }
            })
        // The previous owner may have delivered past what this store's cursor says (its store came
        // from an older snapshot, or from a replay of the whole log).
        for sink in dispatcher.sinkNames {
            let delivered = try cursors.cursor(partition: number, sink: sink)
            if delivered > (try store.deliveryCursor(sink: sink)) {
                try store.setDeliveryCursor(sink: sink, to: delivered)
            }
        }
        let alerts = PartitionAlerts(dispatcher: dispatcher)
        alerts.task = Task { [dispatcher, done = alerts.done] in
            try? await dispatcher.run()
            done.signal()
        }
        return alerts
    }

    private init(dispatcher: AlertDispatcher) {
        self.dispatcher = dispatcher
    }

    func notify() { dispatcher.notify() }

    func stop() {
        guard let task else { return }
        task.cancel()
        done.wait()
        self.task = nil
    }
}
