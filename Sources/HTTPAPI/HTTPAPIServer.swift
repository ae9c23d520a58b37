public import Hummingbird
public import Ingest
public import Logging
public import TallyConfiguration
public import Metering
public import Prometheus
public import ServiceLifecycle
public import Storage
import Synchronization

/// The HTTP API of DESIGN §9 as a service: JSON over HTTP for dashboards and back offices.
///
/// Events posted to `/v1/events` go through the same group-commit writer as the socket and are
/// answered after their commit is durable; a client too slow to send its request's headers or body
/// (`http.header_timeout`, `http.body_timeout`) gets 408 and is disconnected; a body that is not
/// JSON is refused with 415; the read routes read the store directly, so they reflect
/// every acknowledged event. Every route but `GET /healthz` needs `Authorization: Bearer <key>`.
///
/// ```swift
/// let server = HTTPAPIServer(config: config, store: store, writer: writer, parser: parser,
///                            host: "127.0.0.1", port: 8080, logger: logger)
/// let group = ServiceGroup(services: [server], logger: logger)   // or beside the ingest daemon
/// ```
///
/// Run it only while `writer` runs, and stop it (graceful shutdown) before stopping the writer:
/// a request whose events were submitted waits for their commit.
public struct HTTPAPIServer: Service {
    /// The address asked for; `port` 0 picks a free port (see ``boundPort``).
    public let host: String
    /// The port asked for.
    public let port: Int
    /// The registry `/metrics` exposes. The server adds its own metrics (`tally_http_*`,
    /// `tally_store_*`); an executable may bootstrap swift-metrics with it
    /// (`MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: server.metricsRegistry))`; `tally serve`
    /// bootstraps a factory that also gives each family its help text).
    public let metricsRegistry: PrometheusCollectorRegistry

    private let api: APIRoutes
    private let routeGroups: [any HTTPRouteGroup]
    private let logger: Logger
    private let listening: ListeningState
    private let onListening: @Sendable (Int) -> Void

    /// Creates the server; nothing is bound before ``run()``.
    ///
    /// - Parameters:
    ///   - config: the configuration (meters, plans, limits, `http.api_keys_sha256`).
    ///   - store: the daemon's store (opened `.readWrite`); read routes and limit changes use it.
    ///   - writer: the running group-commit writer that the socket server also uses.
    ///   - parser: the event parser the socket server uses (same meters and time limits).
    ///   - host: the address to bind, such as `127.0.0.1` or `::1`.
    ///   - port: the TCP port; 0 picks a free one.
    ///   - logger: where the server logs.
    ///   - metricsRegistry: the Prometheus registry to expose (a new one by default).
    ///   - routeGroups: more routes on the same server (the dashboard), each under its own path
    ///     prefixes, which the API's bearer-key and JSON-body checks leave alone.
    ///   - onListening: called with the bound port once the server accepts connections.
    public init(config: TallyConfig, store: TallyStore, writer: GroupCommitWriter, parser: EventLineParser,
                host: String, port: Int, logger: Logger,
                metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                routeGroups: [any HTTPRouteGroup] = [],
                onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.routeGroups = routeGroups
        self.host = host
        self.port = port
        self.logger = logger
        self.metricsRegistry = metricsRegistry
        self.onListening = onListening
        listening = ListeningState()
        api = APIRoutes(config: config, store: store, writer: writer, parser: parser, logger: logger,
                        metrics: APIMetrics(registry: metricsRegistry),
                        openAPIText: OpenAPIDocument.text(meters: config.meters.map(\.code), plans: config.plans.map(\.code)),
                        portalSecret: PortalToken.secret(fromEnvironmentVariable: config.http.portalSecretEnvironmentVariable))
    }

    /// The lowercase hex SHA-256 of `key`: what the config's key lists hold.
    public static func apiKeyDigest(of key: String) -> String { APIKeyAuthenticator.hexDigest(of: key) }

    /// The port the server listens on; nil before it listens and after it stopped.
    public var boundPort: Int? { listening.port }

    /// Waits until the server listens and returns its port; throws when ``run()`` failed (the
    /// address is taken, say) or ended before it listened.
    public func listeningPort() async throws -> Int {
        try await listening.wait()
    }

    /// Binds, serves until graceful shutdown (or cancellation), then finishes the requests in flight.
    public func run() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.middlewares.add(RequestMetricsMiddleware(metrics: api.metrics))
        router.middlewares.add(ErrorMiddleware(logger: logger))
        let ownPrefixes = routeGroups.flatMap(\.pathPrefixes)
        router.middlewares.add(AuthenticationMiddleware(
            authenticator: APIKeyAuthenticator(config: api.config.http), portalSecret: api.portalSecret,
            exemptPrefixes: ownPrefixes))
        router.middlewares.add(ContentTypeMiddleware(exemptPrefixes: ownPrefixes))
        api.register(on: router)
        for group in routeGroups { group.register(on: router) }
        let listening = self.listening
        let onListening = self.onListening
        let logger = self.logger
        let host = self.host
        let http = api.config.http
        let handlerLogger = logger
        let app = Application(
            router: router,
            server: .http1(configuration: .init(additionalChannelHandlers: [
                RequestDeadlineHandler(headerTimeout: .nanoseconds(http.headerTimeoutNanoseconds),
                                       bodyTimeout: .nanoseconds(http.bodyTimeoutNanoseconds), logger: handlerLogger),
            ])),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), backlog: api.config.ingest.listenBacklog),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("HTTP API listening", metadata: ["host": "\(host)", "port": "\(port)"])
                listening.started(port: port)
                onListening(port)
            },
            logger: logger)
        do {
            try await app.run()
        } catch {
            listening.finished(error: error)
            throw error
        }
        listening.finished(error: nil)
    }
}

/// Routes served beside the API by the same server (the dashboard): they authenticate their own
/// requests and read their own bodies, so the API's middleware leaves their paths alone.
public protocol HTTPRouteGroup: Sendable {
    /// Paths the group owns: each prefix itself and everything under `prefix/`.
    var pathPrefixes: [String] { get }
    /// Adds the group's routes.
    func register(on router: Router<BasicRequestContext>)
}

extension [String] {
    /// Whether `path` is one of these prefixes or lies under one.
    func owns(_ path: String) -> Bool {
        contains { path == $0 || path.hasPrefix($0 + "/") }
    }
}

/// `HOST:PORT` as written after `--http` or in `http.listen`: `127.0.0.1:8080`, `localhost:80`, `[::1]:8080`.
public struct HTTPListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address, without brackets.
    public var host: String
    /// The TCP port, 0…65535.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; nil when the text has no host, no port, or a port outside 0…65535.
    public init?(_ text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber),
              portText.count <= 5, let port = Int(portText), port <= 65535
        else { return nil }
        self.host = String(host)
        self.port = port
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The bound port, and the callers waiting for it.
final class ListeningState: Sendable {
    private struct State {
        var port: Int?
        var failure: (any Error)?
        var finished = false
        var waiters: [CheckedContinuation<Int, any Error>] = []
    }

    private let state = Mutex(State())

    var port: Int? { state.withLock { $0.port } }

    func started(port: Int) {
        let waiters = state.withLock { state in
            state.port = port
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    func finished(error: (any Error)?) {
        let waiters = state.withLock { state in
            state.port = nil
            state.finished = true
            state.failure = error
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        let failure = error ?? HTTPAPIError(status: 503, code: .unavailable, message: "the HTTP server stopped before it listened")
        for waiter in waiters { waiter.resume(throwing: failure) }
    }

    func wait() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<Int, any Error>? = state.withLock { state in
                if let port = state.port { return .success(port) }
                if state.finished {
                    return .failure(state.failure ?? HTTPAPIError(status: 503, code: .unavailable, message: "the HTTP server is not running"))
                }
                state.waiters.append(continuation)
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }
}
