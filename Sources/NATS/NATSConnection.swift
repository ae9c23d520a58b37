import CNATS
import Glibc

/// A connection to a NATS cluster (the C client's `natsConnection`), which reconnects on its own
/// to any server of its list. Thread-safe, as the C client is: calls block the calling thread, so
/// call them from a thread of your own (Tally's writer thread), never from an event loop.
///
/// ```swift
/// let connection = try NATSConnection(servers: ["nats://127.0.0.1:4222"], name: "tally-node-1")
/// let stream = try connection.jetStream()
/// ```
public final class NATSConnection: @unchecked Sendable {
    /// The C connection; valid until `close()` (the object keeps it alive).
    let handle: OpaquePointer

    /// Connects to the first reachable server of `servers` (URLs such as `nats://127.0.0.1:4222`).
    /// - Parameters:
    ///   - name: shown by the servers' monitoring, to tell nodes apart.
    ///   - timeout: how long one connection attempt may take.
    ///   - reconnectWait: the pause between reconnection attempts once connected (forever, to any server of the list).
    public init(servers: [String], name: String, timeout: Duration = .seconds(2), reconnectWait: Duration = .milliseconds(250))
        throws(NATSError) {
        guard !servers.isEmpty else {
            throw NATSError(code: .invalidArgument, operation: "natsOptions_SetServers", message: "no NATS server URL given; name at least one, such as nats://127.0.0.1:4222")
        }
        NATSLibrary.open()
        var options: OpaquePointer?
        try NATSCall.check(natsOptions_Create(&options), "natsOptions_Create")
        defer { natsOptions_Destroy(options) }
        try withCStrings(servers) { (pointers, count) throws(NATSError) in
            try NATSCall.check(natsOptions_SetServers(options, pointers, Int32(count)), "natsOptions_SetServers")
        }
        try NATSCall.check(natsOptions_SetName(options, name), "natsOptions_SetName")
        try NATSCall.check(natsOptions_SetTimeout(options, timeout.milliseconds), "natsOptions_SetTimeout")
        try NATSCall.check(natsOptions_SetAllowReconnect(options, true), "natsOptions_SetAllowReconnect")
        try NATSCall.check(natsOptions_SetMaxReconnect(options, -1), "natsOptions_SetMaxReconnect")
        try NATSCall.check(natsOptions_SetReconnectWait(options, reconnectWait.milliseconds), "natsOptions_SetReconnectWait")
        var connection: OpaquePointer?
        try NATSCall.check(natsConnection_Connect(&connection, options), "natsConnection_Connect")
        guard let connection else {
            throw NATSError(code: .failed, operation: "natsConnection_Connect", message: "the client returned no connection")
        }
        handle = connection
    }

    deinit {
        natsConnection_Destroy(handle)
    }

    /// Closes the connection: later calls fail with `.connectionClosed`.
    public func close() {
        natsConnection_Close(handle)
    }

    /// Whether the connection is up now (not reconnecting, not closed).
    public var isConnected: Bool {
        natsConnection_Status(handle) == NATS_CONN_STATUS_CONNECTED
    }

    /// The URL of the server the connection is on now, if any.
    public var connectedServer: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard natsConnection_GetConnectedUrl(handle, &buffer, buffer.count) == NATS_OK else { return nil }
        let url = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return url.isEmpty ? nil : url
    }

    /// A JetStream context on this connection; `timeout` bounds each JetStream API call and publish.
    public func jetStream(timeout: Duration = .seconds(5)) throws(NATSError) -> JetStream {
        try JetStream(connection: self, timeout: timeout)
    }

    /// Publishes `payload` on `subject` (core NATS: at most once, no acknowledgement) and flushes.
    public func publish(subject: String, payload: [UInt8]) throws(NATSError) {
        let status = payload.withUnsafeBytes { natsConnection_Publish(handle, subject, $0.baseAddress, Int32($0.count)) }
        try NATSCall.check(status, "natsConnection_Publish")
    }

    /// Sends `payload` to `subject` and waits up to `timeout` for one reply: `.noResponders` when
    /// nothing listens, `.timeout` when nothing answered.
    public func request(subject: String, payload: [UInt8], timeout: Duration) throws(NATSError) -> NATSMessage {
        var reply: OpaquePointer?
        let status = payload.withUnsafeBytes {
            natsConnection_Request(&reply, handle, subject, $0.baseAddress, Int32($0.count), timeout.milliseconds)
        }
        try NATSCall.check(status, "natsConnection_Request")
        guard let reply else { throw NATSError(code: .failed, operation: "natsConnection_Request", message: "the client returned no reply") }
        defer { natsMsg_Destroy(reply) }
        return NATSMessage(reply)
    }

    /// Calls `handler` on the client's delivery thread for every message on `subject` (a queue group
    /// shares them out among its members); a message with a reply subject can be answered with
    /// `respond(to:payload:)`. The subscription lasts until `NATSSubscription.cancel()`.
    public func subscribe(subject: String, queue: String? = nil, handler: @escaping @Sendable (NATSMessage) -> Void)
        throws(NATSError) -> NATSSubscription {
        let box = Unmanaged.passRetained(SubscriptionHandler(handler))
        var subscription: OpaquePointer?
        let status: natsStatus
        if let queue {
            status = natsConnection_QueueSubscribe(&subscription, handle, subject, queue, natsDeliver, box.toOpaque())
        } else {
            status = natsConnection_Subscribe(&subscription, handle, subject, natsDeliver, box.toOpaque())
        }
        guard status == NATS_OK, let subscription else {
            box.release()
            throw NATSCall.error(status, "natsConnection_Subscribe")
        }
        try NATSCall.check(natsConnection_FlushTimeout(handle, 2_000), "natsConnection_FlushTimeout")
        return NATSSubscription(handle: subscription, box: box)
    }

    /// Answers a request received by a subscription.
    public func respond(to message: NATSMessage, payload: [UInt8]) throws(NATSError) {
        guard let reply = message.replySubject else {
            throw NATSError(code: .invalidArgument, operation: "natsConnection_Publish", message: "the message has no reply subject: it was not a request")
        }
        try publish(subject: reply, payload: payload)
    }
}

/// A message as Swift values: copied out of the C message, which is freed at once.
public struct NATSMessage: Sendable, Hashable {
    public var subject: String
    public var replySubject: String?
    public var payload: [UInt8]
    /// The stream sequence, for a message read from a JetStream stream; 0 otherwise.
    public var sequence: UInt64
    /// The `Nats-Msg-Id` it was published with, for a message read from a JetStream stream.
    public var messageID: String?

    public init(subject: String, replySubject: String? = nil, payload: [UInt8], sequence: UInt64 = 0) {
        self.subject = subject
        self.replySubject = replySubject
        self.payload = payload
        self.sequence = sequence
    }

    init(_ message: OpaquePointer, sequence: UInt64 = 0) {
        subject = natsMsg_GetSubject(message).map { String(cString: $0) } ?? ""
        replySubject = natsMsg_GetReply(message).map { String(cString: $0) }
        let count = Int(natsMsg_GetDataLength(message))
        if count > 0, let data = natsMsg_GetData(message) {
            payload = Array(UnsafeRawBufferPointer(start: data, count: count))
        } else {
            payload = []
        }
        self.sequence = sequence
    }
}

/// A subscription made by `NATSConnection.subscribe`.
public final class NATSSubscription: @unchecked Sendable {
    private let handle: OpaquePointer
    private let box: Unmanaged<SubscriptionHandler>
    private var cancelled = false

    init(handle: OpaquePointer, box: Unmanaged<SubscriptionHandler>) {
        self.handle = handle
        self.box = box
    }

    /// Stops delivery; the handler is not called after this returns.
    public func cancel() {
        guard !cancelled else { return }
        cancelled = true
        // Draining waits for a callback that may be running; only then is the handler released
        // (if the drain cannot complete, the handler's few bytes are left rather than freed under it).
        let drained = natsSubscription_Drain(handle) == NATS_OK && natsSubscription_WaitForDrainCompletion(handle, 2_000) == NATS_OK
        natsSubscription_Destroy(handle)
        if drained { box.release() }
    }

    deinit { cancel() }
}

final class SubscriptionHandler {
    let handler: @Sendable (NATSMessage) -> Void
    init(_ handler: @escaping @Sendable (NATSMessage) -> Void) { self.handler = handler }
}

/// The C callback of every subscription: hands the message to the subscription's Swift handler.
private let natsDeliver: natsMsgHandler = { _, _, message, closure in
    guard let message, let closure else { return }
    let handler = Unmanaged<SubscriptionHandler>.fromOpaque(closure).takeUnretainedValue()
    let copied = NATSMessage(message)
    natsMsg_Destroy(message)
    handler.handler(copied)
}

/// The C library's global state, opened once per process.
enum NATSLibrary {
    private static let opened: Bool = nats_Open(-1) == NATS_OK
    static func open() { _ = opened }
}

extension Duration {
    /// Whole milliseconds, as the C client takes timeouts.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Calls `body` with `strings` as an array of C strings, valid for the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, Int) throws(NATSError) -> R)
    throws(NATSError) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    var pointers = copies.map { UnsafePointer<CChar>($0) }
    return try pointers.withUnsafeMutableBufferPointer { (buffer) throws(NATSError) -> R in try body(buffer.baseAddress!, buffer.count) }
}

/// Calls `body` with a C copy of `string`, valid for the call (`String.withCString` does not
/// pass a typed error through).
func withCString<R>(_ string: String, _ body: (UnsafePointer<CChar>) throws(NATSError) -> R) throws(NATSError) -> R {
    guard let copy = strdup(string) else { throw NATSError(code: .failed, operation: "strdup", message: "out of memory") }
    defer { free(copy) }
    return try body(copy)
}
