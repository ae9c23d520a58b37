import Hummingbird
import Prometheus
import Storage

/// The HTTP API's Prometheus metrics, kept in the registry that `/metrics` exposes.
final class APIMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let identities: Gauge
    private let events: Gauge
    private let aggregates: Gauge
    private let mapSize: Gauge
    private let eventsAccepted: Counter
    private let eventsDuplicate: Counter
    private let eventsRejected: Counter

    static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
        .milliseconds(500), .seconds(1), .seconds(5),
    ]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        identities = registry.makeGauge(descriptor: Self.name("store", "identities", help: "Event identities the store remembers for deduplication."))
        events = registry.makeGauge(descriptor: Self.name("store", "events", help: "Events held in the store."))
        aggregates = registry.makeGauge(descriptor: Self.name("store", "aggregates", help: "Usage aggregates (customer, meter, group, period) in the store."))
        mapSize = registry.makeGauge(descriptor: Self.name("store", "map_size", unit: "bytes", help: "The size of the store's LMDB map."))
        let eventsName = Self.name("http", "events", unit: "total", help: "Events posted to POST /v1/events, by outcome.")
        eventsAccepted = registry.makeCounter(descriptor: eventsName, labels: [("status", "accepted")])
        eventsDuplicate = registry.makeCounter(descriptor: eventsName, labels: [("status", "duplicate")])
        eventsRejected = registry.makeCounter(descriptor: eventsName, labels: [("status", "rejected")])
        // The request families are on /metrics from the start, with the series every scrape counts.
        _ = registry.makeCounter(descriptor: Self.requestsName, labels: [("method", "GET"), ("route", "/metrics"), ("status", "200")])
        _ = registry.makeDurationHistogram(descriptor: Self.durationName, labels: [("route", "/metrics")], buckets: Self.durationBuckets)
    }

    /// `tally_<subsystem>_<name>[_<unit>]`.
    static func name(_ subsystem: String, _ name: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "tally", subsystem: subsystem, metricName: name, unitName: unit, helpText: help)
    }

    static var requestsName: MetricNameDescriptor { name("http", "requests", unit: "total", help: "HTTP API requests answered, by method, route and status.") }
    static var durationName: MetricNameDescriptor { name("http", "request_duration", unit: "seconds", help: "Time to answer an HTTP API request, by route.") }

    /// Counts one answered request and its duration.
    func recordRequest(method: String, route: String, status: Int, duration: Duration) {
        registry.makeCounter(descriptor: Self.requestsName,
                             labels: [("method", method), ("route", route), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: Self.durationName, labels: [("route", route)],
                                       buckets: Self.durationBuckets).record(duration)
    }

    /// Counts the outcomes of one `POST /v1/events`.
    func recordEvents(accepted: Int, duplicate: Int, rejected: Int) {
        if accepted > 0 { eventsAccepted.increment(by: Int64(accepted)) }
        if duplicate > 0 { eventsDuplicate.increment(by: Int64(duplicate)) }
        if rejected > 0 { eventsRejected.increment(by: Int64(rejected)) }
    }

    /// Prometheus text: the store's statistics read now, then every metric in the registry.
    func scrape(store: TallyStore) throws(StoreError) -> [UInt8] {
        let statistics = try store.statistics()
        identities.set(Int64(statistics.identities))
        events.set(Int64(statistics.events))
        aggregates.set(Int64(statistics.aggregates))
        mapSize.set(Int64(statistics.mapSize))
        return registry.emitToBuffer()
    }
}

/// Counts every answered request in the metrics (route as matched, e.g. `/v1/customers/{customer}/usage`).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: APIMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let clock = ContinuousClock()
        let started = clock.now
        let response = try await next(request, context)
        let route = context.endpointPath ?? "unknown"
        metrics.recordRequest(method: request.method.rawValue, route: route == "NotFound" ? "unmatched" : route,
                              status: response.status.code, duration: clock.now - started)
        return response
    }
}
