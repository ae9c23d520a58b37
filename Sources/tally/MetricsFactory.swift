import Cluster
import Ingest
import Metrics
import Prometheus

/// The swift-metrics factory `tally serve` bootstraps: `PrometheusMetricsFactory`'s instruments in
/// the registry `/metrics` serves, each family created with its help text, so every family has a
/// `# HELP` line (`promtool check metrics` asks for one). A label without help text here gets none,
/// which the metrics lint test reports.
struct DocumentedPrometheusFactory: MetricsFactory {
    /// The help text of every swift-metrics family the daemon records, by label.
    static let help: [String: String] = IngestMetricFamilies.help.merging(ClusterMetricFamilies.help) { first, _ in first }.merging([
        alertDeliveries: "Alert webhook deliveries, by result (delivered, failed); a failed one is retried with backoff.",
    ]) { first, _ in first }

    /// Alert deliveries, by `result`.
    static let alertDeliveries = "tally_alert_deliveries_total"

    /// An `AlertDispatcher`'s `onDelivery` that counts each attempt in `alertDeliveries`.
    static func countingAlertDeliveries() -> @Sendable (_ sink: String, _ success: Bool) -> Void {
        let delivered = Counter(label: alertDeliveries, dimensions: [("result", "delivered")])
        let failed = Counter(label: alertDeliveries, dimensions: [("result", "failed")])
        return { _, success in (success ? delivered : failed).increment() }
    }

    let registry: PrometheusCollectorRegistry
    private let inner: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        inner = PrometheusMetricsFactory(registry: registry)
    }

    /// The family named exactly `label`, with its help text.
    private func family(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: Self.help[label] ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: family(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: family(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: family(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: family(label), labels: dimensions) }
        let buckets = inner.valueHistogramBuckets[label] ?? inner.defaultValueHistogramBuckets
        return registry.makeValueHistogram(descriptor: family(label), labels: dimensions, buckets: buckets)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = inner.durationHistogramBuckets[label] ?? inner.defaultDurationHistogramBuckets
        return registry.makeDurationHistogram(descriptor: family(label), labels: dimensions, buckets: buckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { inner.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { inner.destroyFloatingPointCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { inner.destroyMeter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { inner.destroyRecorder(handler) }
    func destroyTimer(_ handler: any TimerHandler) { inner.destroyTimer(handler) }
}
