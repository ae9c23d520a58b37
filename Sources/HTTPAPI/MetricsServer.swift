public import Hummingbird
public import Logging
public import Prometheus
public import ServiceLifecycle

/// Prometheus `/metrics` (and `GET /healthz`) over HTTP on an address of its own, without the API:
/// what a cluster node serves on `cluster.metrics_listen`. No authentication, as for a Prometheus
/// exporter: bind it to an address only the scraper reaches.
public struct MetricsServer: Service {
    public let host: String
    public let port: Int
    public let registry: PrometheusCollectorRegistry
    private let logger: Logger

    /// - Parameter port: the TCP port; 0 picks a free one (logged as "metrics listening").
    public init(host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.host = host
        self.port = port
        self.registry = registry
        self.logger = logger
    }

    public func run() async throws {
        let router = Router(context: BasicRequestContext.self)
        let registry = self.registry
        router.get("/healthz") { _, _ in Response.json(#"{"status":"ok"}"#) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        let (host, logger) = (self.host, self.logger)
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
            onServerRunning: { channel in
                logger.info("metrics listening", metadata: ["host": "\(host)", "port": "\(channel.localAddress?.port ?? 0)"])
            },
            logger: logger)
        try await app.run()
    }
}
