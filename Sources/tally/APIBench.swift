import ArgumentParser
import Foundation
import HTTPAPI
import Ingest
import Limits
import Logging
import Metering
import ServiceLifecycle
import Storage
import TallyConfiguration

#if canImport(Glibc)
import Glibc
#endif

/// `tally bench api`: the back-office routes at a realistic customer count, over real HTTP.
struct APIBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "GET /v1/customers/{id} latency and paging through every customer, over HTTP.",
        discussion: """
            Ingests --events-per-customer events for each of --customers customers (random order,
            three meters, one in ten customers on an assigned plan, a plan limit) through the group
            commit into a temporary store, starts the HTTP API on it in this process, then over one
            keep-alive connection: GET /v1/customers/{id} for --samples random customers (p50, p99)
            and GET /v1/customers?limit=100 page after page through every customer (total time).

            Example:
              tally bench api --customers 100000
            """
    )

    @Option(help: "Customers with usage.") var customers = 100_000
    @Option(help: "Events per customer (spread over its three meters).") var eventsPerCustomer = 3
    @Option(help: "Customer states read.") var samples = 2_000
    @Option(name: .long, help: ArgumentHelp("Where to put the temporary store.", valueName: "dir")) var directory: String?

    func validate() throws {
        guard customers > 0, eventsPerCustomer > 0, samples > 0 else { throw ValidationError("every count must be at least 1") }
    }

    func run() async throws {
        LoggingSetup.bootstrap(level: .warning)
        let logger = Logger(label: "bench")
        let work = (directory ?? FileManager.default.temporaryDirectory.path) + "/tally-bench-api-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let key = "bench-key"
        let config = Self.config(apiKeyDigest: HTTPAPIServer.apiKeyDigest(of: key))
        let store = try TallyStore(path: work + "/data", configuration: .init(meters: config.meters, billingPeriod: config.billing.period),
                                   access: .readWrite, logger: logger)
        let storeWriter = try StoreWriter(store: store)
        storeWriter.limitEvaluator = CommitLimitEvaluator(config: config)

        let fillStart = Date()
        let name = try Self.fill(storeWriter, config: config, customers: customers, eventsPerCustomer: eventsPerCustomer)
        let fillSeconds = Date().timeIntervalSince(fillStart)

        let writer = GroupCommitWriter(writer: storeWriter, maximumEvents: 8192, maximumDelayNanoseconds: 1_000_000, logger: logger)
        writer.start()
        let parser = EventLineParser(meterCodes: Set(config.meters.map(\.code)))
        let server = HTTPAPIServer(config: config, store: store, writer: writer, parser: parser, host: "127.0.0.1", port: 0, logger: logger)
        let group = ServiceGroup(services: [server], logger: logger)
        let running = Task { try await group.run() }
        let port = try await server.listeningPort()
        let samples = self.samples
        let customers = self.customers
        let figures: (p50: Double, p99: Double, listSeconds: Double, listed: Int, pages: Int) = try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    let client = try BenchHTTPClient(port: port, key: key)
                    defer { client.close() }
                    var latencies: [Double] = []
                    for _ in 0..<samples {
                        let customer = name(Int.random(in: 0..<customers))
                        let start = DispatchTime.now().uptimeNanoseconds
                        let (status, body) = try client.get("/v1/customers/" + customer)
                        latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                        guard status == 200, body.contains("\"entitlements\"") else { throw CommandFailure("GET /v1/customers/\(customer): \(status) \(body)") }
                    }
                    latencies.sort()
                    var listed = 0
                    var pages = 0
                    var cursor: String?
                    let listStart = DispatchTime.now().uptimeNanoseconds
                    repeat {
                        let (status, body) = try client.get("/v1/customers?limit=100" + (cursor.map { "&cursor=" + $0 } ?? ""))
                        guard status == 200, let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                              let data = object["data"] as? [Any] else { throw CommandFailure("GET /v1/customers: \(status) \(body)") }
                        listed += data.count
                        pages += 1
                        cursor = object["next_cursor"] as? String
                    } while cursor != nil
                    let listSeconds = Double(DispatchTime.now().uptimeNanoseconds - listStart) / 1e9
                    return (latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 99 / 100)], listSeconds, listed, pages)
                })
            }
        }
        await group.triggerGracefulShutdown()
        try await running.value
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                writer.stop()
                continuation.resume()
            }
        }
        print("store: \(customers) customers, \(customers * eventsPerCustomer) events, filled in \(String(format: "%.1f", fillSeconds)) s")
        print("GET /v1/customers/{id} (\(samples) random customers): p50 \(String(format: "%.2f", figures.p50)) ms, p99 \(String(format: "%.2f", figures.p99)) ms")
        print("GET /v1/customers?limit=100 through every customer: \(figures.listed) customers in \(figures.pages) pages, \(String(format: "%.2f", figures.listSeconds)) s")
        guard figures.listed == customers else { throw CommandFailure("listed \(figures.listed) customers, expected \(customers)") }
    }

    /// Every customer's events through the group commit, in random customer order, 8,192 a
    /// commit, the meters in turn (customer `slot % customers`, meter `slot / customers`); then one
    /// in ten customers on the plan `pro`. Returns how customer `index` is named (`cus_` and the
    /// zero-padded index).
    static func fill(_ storeWriter: StoreWriter, config: TallyConfig, customers: Int, eventsPerCustomer: Int) throws -> @Sendable (Int) -> String {
        let width = String(customers - 1).count
        let name: @Sendable (Int) -> String = { index in
            let digits = String(index)
            return "cus_" + String(repeating: "0", count: width - digits.count) + digits
        }
        var order = Array(0..<(customers * eventsPerCustomer))
        order.shuffle()
        let now = Timestamp.now()
        var batch: [PendingEvent] = []
        for (number, slot) in order.enumerated() {
            let customer = name(slot % customers)
            let meter = config.meters[(slot / customers) % config.meters.count]
            let event = UsageEvent(id: "e\(number)", customer: customer, meter: meter.code, value: ExactDecimal(1 + number % 7), time: now, properties: [])
            batch.append(PendingEvent(event: event, receivedAt: now))
            if batch.count == 8_192 || number == order.count - 1 {
                _ = try storeWriter.record(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        for index in stride(from: 0, to: customers, by: 10) {
            try storeWriter.store.setPlan(customer: name(index), plan: "pro", from: Timestamp(year: 2026, month: 1, day: 1)!)
        }
        return name
    }

    /// Three meters, a default plan and a second one, and a plan limit, as a SaaS config has them.
    static func config(apiKeyDigest: String) -> TallyConfig {
        TallyConfig(
            meters: [
                Meter(code: "api_calls", aggregation: .count),
                Meter(code: "tokens", aggregation: .sum),
                Meter(code: "storage_gb", aggregation: .max),
            ],
            plans: [
                Plan(code: "starter", currency: "USD", prices: [
                    Price(meter: "api_calls", model: .perUnit(unitAmount: ExactDecimal("0.002")!)),
                    Price(meter: "tokens", model: .graduated([Tier(upTo: 1000, unitAmount: 0), Tier(upTo: nil, unitAmount: ExactDecimal("0.0001")!)])),
                ]),
                Plan(code: "pro", currency: "USD", prices: [
                    Price(meter: "api_calls", model: .perUnit(unitAmount: ExactDecimal("0.001")!)),
                    Price(meter: "storage_gb", model: .perUnit(unitAmount: ExactDecimal("0.1")!)),
                ]),
            ],
            defaultPlan: "starter",
            limits: [UsageLimit(id: "starter-spend", scope: .plan("starter"), threshold: .amount(100), action: .warning, notifyAt: [80, 100])],
            http: HTTPSettings(listen: "127.0.0.1:0", apiKeySHA256: [apiKeyDigest]))
    }
}

/// A blocking HTTP/1.1 client on one keep-alive loopback connection: enough to time the API.
final class BenchHTTPClient {
    private let socket: Int32
    private let key: String?
    private var buffer: [UInt8] = []
    /// Sent as `Cookie:` with every request once set (a dashboard session).
    var cookie: String?

    init(port: Int, key: String?) throws {
        self.key = key
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw CommandFailure("cannot connect to the HTTP API on port \(port)") }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    func close() { Glibc.close(socket) }

    /// GET `path`: the status and the body (Content-Length framed).
    func get(_ path: String) throws -> (Int, String) {
        let (status, _, body) = try exchange("GET", path)
        return (status, body)
    }

    /// One request on the connection: the status, the head and the body (Content-Length framed).
    func exchange(_ method: String, _ path: String, form: String? = nil) throws -> (Int, String, String) {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let key { text += "Authorization: Bearer \(key)\r\n" }
        if let cookie { text += "Cookie: \(cookie)\r\n" }
        if let form { text += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n\r\n\(form)" } else { text += "\r\n" }
        let request = Array(text.utf8)
        guard request.withUnsafeBytes({ send(socket, $0.baseAddress, $0.count, 0) }) == request.count else { throw CommandFailure("send failed") }
        let separator: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            if let range = buffer.firstRange(of: separator) { headerEnd = range.upperBound } else { try fill() }
        }
        let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw CommandFailure("malformed answer: \(head)")
        }
        guard let lengthLine = lines.first(where: { $0.lowercased().hasPrefix("content-length:") }),
              let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) else {
            throw CommandFailure("an answer without Content-Length: \(head)")
        }
        while buffer.count < headerEnd! + length { try fill() }
        let body = String(decoding: buffer[headerEnd!..<(headerEnd! + length)], as: UTF8.self)
        buffer.removeFirst(headerEnd! + length)
        return (status, head, body)
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw CommandFailure("the HTTP API closed the connection") }
        buffer.append(contentsOf: chunk[..<count])
    }
}
