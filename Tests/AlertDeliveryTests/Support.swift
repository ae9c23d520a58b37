import AlertDelivery
import Foundation
import Logging
import Metering
import NIOCore
import NIOHTTP1
import NIOPosix
import Storage
import Synchronization
import Testing

/// A temporary store, removed when the value goes away.
final class TemporaryStore {
    let directory: String
    let store: TallyStore

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-alerts-\(UUID().uuidString.prefix(8))").path
        store = try TallyStore(path: directory + "/store",
                               configuration: .init(meters: [Meter(code: "api_calls", aggregation: .count)], billingPeriod: .monthly,
                                                    initialMapSize: 1 << 20),
                               access: .readWrite, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Records `count` new alerts, numbered from `first`; returns them with their sequences.
    @discardableResult
    func record(_ count: Int, from first: Int = 1) throws -> [Alert] {
        var alerts = (first..<(first + count)).map(makeAlert)
        let sequences = try store.recordAlerts(alerts)
        for index in alerts.indices { alerts[index].sequence = sequences[index] }
        return alerts
    }
}

func makeAlert(_ number: Int) -> Alert {
    let periodStart = Timestamp(nanosecondsSinceEpoch: 1_793_491_200 * Timestamp.nanosecondsPerSecond)   // 2026-11-01
    return Alert(sequence: 0, id: "alt_\(number)_cus_42", customer: "cus_42", limitID: "customer:cus_42:api_calls",
                 meter: number % 2 == 0 ? nil : "api_calls", used: ExactDecimal(1000 + number), limit: ExactDecimal(1000),
                 percent: 100, action: .warning, periodStart: periodStart,
                 resetsAt: periodStart.adding(nanoseconds: 30 * Timestamp.nanosecondsPerDay),
                 firedAt: periodStart.adding(nanoseconds: Int64(number) * Timestamp.nanosecondsPerSecond))
}

/// Log lines a test can inspect.
final class LogCapture: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
    }

    private let entries = Mutex<[Entry]>([])

    var logger: Logger {
        Logger(label: "alerts-test") { _ in CapturingHandler(capture: self) }
    }

    func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    func messages(at level: Logger.Level) -> [String] {
        entries.withLock { $0.filter { $0.level == level }.map(\.message) }
    }
}

struct CapturingHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        capture.append(.init(level: event.level, message: event.message.description))
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Runs `dispatcher` in a task for the body, then cancels it and waits for it to return.
func running(_ dispatcher: AlertDispatcher, _ body: () async throws -> Void) async throws {
    let task = Task { try await dispatcher.run() }
    do {
        try await body()
        task.cancel()
        try await task.value
    } catch {
        task.cancel()
        _ = try? await task.value
        throw error
    }
}

/// A tiny HTTP server on 127.0.0.1 that records requests and answers each with a scripted status.
final class Receiver: Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: [String: String]
        var body: [UInt8]
    }

    let port: Int
    private let channel: any Channel
    private let state: Mutex<[Request]>
    /// The status for the n-th request (0-based).
    private let respond: @Sendable (Int) -> Int

    var requests: [Request] { state.withLock { $0 } }

    private init(channel: any Channel, respond: @escaping @Sendable (Int) -> Int, box: RequestBox) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.state = Mutex([])
        self.respond = respond
        box.receiver.withLock { $0 = self }
    }

    /// Starts a receiver on 127.0.0.1 (`port` 0 picks a free one).
    static func start(port: Int = 0, respond: @escaping @Sendable (Int) -> Int) async throws -> Receiver {
        let box = RequestBox()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(RecordingHandler(box: box))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return Receiver(channel: channel, respond: respond, box: box)
    }

    /// Records a request and returns the status to answer.
    fileprivate func record(_ request: Request) -> Int {
        let index = state.withLock { requests in
            requests.append(request)
            return requests.count - 1
        }
        return respond(index)
    }

    func stop() async throws {
        try await channel.close()
    }
}

/// Lets the handlers reach the receiver created after the bind.
final class RequestBox: Sendable {
    let receiver = Mutex<Receiver?>(nil)
}

final class RecordingHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let box: RequestBox
    var head: HTTPRequestHead?
    var body: [UInt8] = []

    init(box: RequestBox) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else { return }
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            let request = Receiver.Request(method: "\(head.method)", uri: head.uri, headers: headers, body: body)
            let status = box.receiver.withLock { $0 }?.record(request) ?? 503
            var responseHeaders = HTTPHeaders()
            responseHeaders.add(name: "Content-Length", value: "2")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status),
                                                                 headers: responseHeaders))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "ok")))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound once, then released).
func unusedPort() async throws -> Int {
    let receiver = try await Receiver.start { _ in 200 }
    let port = receiver.port
    try await receiver.stop()
    return port
}

/// A unique environment variable name for a test.
func uniqueVariable() -> String { "TALLY_TEST_SECRET_\(UUID().uuidString.prefix(8))" }

/// A tiny backoff for tests.
let quickBackoff = Backoff(base: .milliseconds(1), cap: .milliseconds(20))

/// Records every `onDelivery` call.
final class DeliveryCounter: Sendable {
    private let calls = Mutex<[(sink: String, success: Bool)]>([])

    var callback: @Sendable (String, Bool) -> Void {
        { sink, success in self.calls.withLock { $0.append((sink, success)) } }
    }

    func count(sink: String, success: Bool) -> Int {
        calls.withLock { $0.filter { $0.sink == sink && $0.success == success }.count }
    }
}
