import Hummingbird
import Logging
import NIOCore
import NIOHTTPTypes
import TallyConfiguration

/// Closes an HTTP/1 connection whose client is too slow to send a request: its head (request line
/// and headers) must be in within `headerTimeout` of the connection opening or of the previous
/// response ending (`http.header_timeout`), its body within `bodyTimeout` of the head
/// (`http.body_timeout`). A late client gets `408 request_timeout` (the API's JSON error) when no
/// response has started, then the connection is closed, so a client sending a byte a second holds
/// nothing for long. A kept-alive connection that has been answered and sends no next request
/// within `headerTimeout` is closed without a 408: an idle pooled connection, which HTTP clients
/// expect the server to close, not to answer unasked.
///
/// It sits after Hummingbird's HTTP decoder (`HTTP1Channel.Configuration.additionalChannelHandlers`),
/// so it sees whole heads, body parts and ends; while the server computes a response no clock runs.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What the connection waits for from the client.
    private enum Phase {
        /// A request's head: the header clock runs.
        case head
        /// The rest of a request's body: the body clock runs.
        case body
        /// Nothing: the request is in, the server answers it.
        case answering
    }

    private let headerTimeout: TimeAmount
    private let bodyTimeout: TimeAmount
    private let logger: Logger
    private var phase = Phase.head
    private var deadline: Scheduled<Void>?
    /// Whether a response head was written and its end not yet.
    private var responseInProgress = false
    /// Whether a request has been answered on this connection (then waiting for a head is idling).
    private var answeredOne = false

    init(headerTimeout: TimeAmount, bodyTimeout: TimeAmount, logger: Logger) {
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(.head, context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancel()
    }

    func channelActive(context: ChannelHandlerContext) {
        if deadline == nil, phase == .head { arm(.head, context: context) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(.body, context: context)
        case .body: break
        case .end:
            cancel()
            phase = .answering
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.kind != .informational: responseInProgress = true
        case .head, .body: break
        case .end:
            responseInProgress = false
            answeredOne = true
            // The next request's head is due from now, on a kept-alive connection.
            if phase == .answering { arm(.head, context: context) }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ next: Phase, context: ChannelHandlerContext) {
        cancel()
        phase = next
        let timeout = next == .head ? headerTimeout : bodyTimeout
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            timedOut(context: context)
        }
    }

    private func cancel() {
        deadline?.cancel()
        deadline = nil
    }

    private func timedOut(context: ChannelHandlerContext) {
        deadline = nil
        guard phase != .answering, context.channel.isActive else { return }
        let what = phase == .head ? "its request headers" : "its request body"
        let limit = phase == .head ? ("http.header_timeout", headerTimeout) : ("http.body_timeout", bodyTimeout)
        let seconds = DurationText.format(nanoseconds: limit.1.nanoseconds)
        logger.debug("closing a slow HTTP connection", metadata: ["waited_for": "\(what)", "timeout": "\(seconds)"])
        // No 408 while a response is being written, nor to an idle kept-alive connection: the
        // decoder before this handler hides whether part of a next head arrived, and an answer
        // nobody asked for on a pooled connection confuses clients.
        guard !responseInProgress, phase == .body || !answeredOne else {
            context.close(promise: nil)
            return
        }
        let error = HTTPAPIError(
            status: 408, code: .requestTimeout,
            message: "the connection did not send \(what) within \(seconds) (\(limit.0)); send the whole request promptly and retry")
        let body = ByteBuffer(string: error.json)
        let head = HTTPResponse(status: .requestTimeout, headerFields: [
            .contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes), .connection: "close",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
