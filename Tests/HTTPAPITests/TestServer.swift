import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdTesting
import Ingest
import Limits
import Logging
import TallyConfiguration
import Metering
import ServiceLifecycle
import Storage
import Testing

/// The key the test servers accept, and its SHA-256 as the config holds it.
let testAPIKey = "test-key-1"
let testAPIKeyDigest = "1255558df586ae279007fffa27ec17451d1507f7ac5442add9ffbc070f9f623b"

let quietLogger = Logger(label: "tally.http.test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Meters, one plan, limits and the test key.
///
/// - `cus_42` is on `starter` in the config and has a `disable` limit of 5 API calls with a step
///   every 20%, so five calls fire five alerts and block it.
/// - `starter` has an amount `warning` limit of 100; `cus_amount` has its own `disable` limit of 2 (USD).
func testConfig(maxLineBytes: Int = 65_536, apiKeys: [String] = [testAPIKeyDigest]) -> TallyConfig {
    TallyConfig(
        ingest: IngestSettings(maxLineBytes: maxLineBytes),
        meters: [
            Meter(code: "api_calls", aggregation: .count),
            Meter(code: "tokens", aggregation: .sum, groupBy: ["model"]),
            Meter(code: "storage_gb", aggregation: .max),
        ],
        plans: [
            Plan(code: "starter", currency: "USD", prices: [
                Price(meter: "api_calls", model: .perUnit(unitAmount: ExactDecimal("1")!)),
                Price(meter: "tokens", model: .perUnit(unitAmount: ExactDecimal("0.001")!)),
            ]),
        ],
        defaultPlan: "starter",
        customers: [CustomerPlanAssignment(customer: "cus_42", plan: "starter")],
        limits: [
            UsageLimit(id: "starter-spend", scope: .plan("starter"), threshold: .amount(ExactDecimal("100")!),
                       action: .warning, notifyAt: [50, 100]),
            UsageLimit(id: "cus_42-calls", scope: .customer("cus_42"), threshold: .quantity(meter: "api_calls", ExactDecimal("5")!),
                       action: .disable, notifyAt: [20, 40, 60, 80, 100]),
            UsageLimit(id: "cus_amount-spend", scope: .customer("cus_amount"), threshold: .amount(ExactDecimal("2")!),
                       action: .disable),
        ],
        http: HTTPSettings(listen: "127.0.0.1:0", apiKeySHA256: apiKeys))
}

/// A response as the tests look at it.
struct APIResponse {
    var status: Int
    var body: String
    var headers: HTTPFields

    /// The body as a JSON object.
    func object() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "not a JSON object: \(body)")
    }

    /// The `{"error":{"code","message"}}` body's code; fails when the body has another shape.
    func errorCode() throws -> String {
        let error = try #require(try object()["error"] as? [String: Any], "no error object in \(body)")
        let message = try #require(error["message"] as? String)
        #expect(!message.isEmpty)
        #expect(Set(error.keys).isSubset(of: ["code", "message", "field", "details"]), "error has extra keys: \(body)")
        return try #require(error["code"] as? String)
    }
}

/// A running HTTP API on a temporary store, with a client connected to it.
struct TestServer: Sendable {
    let config: TallyConfig
    let store: TallyStore
    let server: HTTPAPIServer
    let port: Int
    let client: TestClient

    /// Sends a request with the test key (or `key`, or none with `key: nil`).
    func send(_ method: HTTPRequest.Method, _ path: String, body: String? = nil, key: String? = testAPIKey,
              contentType: String = "application/json") async throws -> APIResponse {
        var headers: HTTPFields = [:]
        if let key { headers[.authorization] = "Bearer \(key)" }
        if body != nil { headers[.contentType] = contentType }
        let response = try await client.execute(.init(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
        return APIResponse(status: response.status.code, body: response.body.map { String(buffer: $0) } ?? "", headers: response.headers)
    }

    func get(_ path: String, key: String? = testAPIKey) async throws -> APIResponse { try await send(.get, path, key: key) }
    func post(_ path: String, _ body: String, key: String? = testAPIKey) async throws -> APIResponse { try await send(.post, path, body: body, key: key) }
    func delete(_ path: String, key: String? = testAPIKey) async throws -> APIResponse { try await send(.delete, path, key: key) }
    func put(_ path: String, _ body: String, key: String? = testAPIKey) async throws -> APIResponse { try await send(.put, path, body: body, key: key) }

    /// Posts events (objects as JSON text) and returns the results array.
    func postEvents(_ events: [String]) async throws -> [[String: Any]] {
        let response = try await post("/v1/events", "[" + events.joined(separator: ",") + "]")
        #expect(response.status == 200, "POST /v1/events: \(response.status) \(response.body)")
        return try #require(try response.object()["results"] as? [[String: Any]])
    }

    /// Opens another connection to the server, for concurrent requests.
    func withAnotherClient<T: Sendable>(_ body: @escaping @Sendable (TestServer) async throws -> T) async throws -> T {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await body(TestServer(config: config, store: store, server: server, port: port, client: client))
        }
    }
}

/// Starts the server (with a store, a store writer evaluating limits and a group-commit writer),
/// runs `body`, then shuts everything down in order: the HTTP server, then the writer.
func withTestServer(config: TallyConfig = testConfig(), _ body: @escaping @Sendable (TestServer) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-http-\(UUID().uuidString.prefix(8))").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let store = try TallyStore(path: directory + "/data",
                               configuration: .init(meters: config.meters, billingPeriod: config.billing.period),
                               access: .readWrite, logger: quietLogger)
    let storeWriter = try StoreWriter(store: store)
    storeWriter.limitEvaluator = CommitLimitEvaluator(config: config)
    let writer = GroupCommitWriter(writer: storeWriter, maximumEvents: 8192, maximumDelayNanoseconds: 1_000_000, logger: quietLogger)
    writer.start()
    let parser = EventLineParser(meterCodes: Set(config.meters.map(\.code)))
    let server = HTTPAPIServer(config: config, store: store, writer: writer, parser: parser, host: "127.0.0.1", port: 0, logger: quietLogger)
    let group = ServiceGroup(services: [server], logger: quietLogger)
    let running = Task { try await group.run() }
    var failure: (any Error)?
    do {
        let port = try await server.listeningPort()
        #expect(server.boundPort == port)
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await body(TestServer(config: config, store: store, server: server, port: port, client: client))
        }
    } catch {
        failure = error
    }
    await group.triggerGracefulShutdown()
    try await running.value
    #expect(server.boundPort == nil)
    await stopWriter(writer)
    if let failure { throw failure }
}

/// Stops the writer thread without blocking the cooperative pool.
func stopWriter(_ writer: GroupCommitWriter) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        Thread.detachNewThread {
            writer.stop()
            continuation.resume()
        }
    }
}

/// One event line: `{"id","customer","meter","value"?,"properties"?}` with the time left to the server.
func event(_ id: String, customer: String = "cus_42", meter: String = "api_calls", value: String? = nil,
           properties: String? = nil) -> String {
    var text = #"{"id":"\#(id)","customer":"\#(customer)","meter":"\#(meter)""#
    if let value { text += #","value":\#(value)"# }
    if let properties { text += #","properties":\#(properties)"# }
    return text + "}"
}

/// The `status` of each result.
func statuses(_ results: [[String: Any]]) -> [String] {
    results.map { $0["status"] as? String ?? "?" }
}
