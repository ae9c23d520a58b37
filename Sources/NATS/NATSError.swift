import CNATS

/// A failed NATS or JetStream call: a stable code, the C call that failed, and a message that says
/// what went wrong and what to do.
///
/// Outcomes a caller decides on are values, not errors: a missing message or key is `nil`, a
/// compare-and-set that lost is `.conflict` in its result (see `KeyValueBucket`, `JetStream.publish`).
public struct NATSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Stable codes, for programs and logs.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// No server of the list could be reached.
        public static let noServer = Code(rawValue: "nats_no_server")
        /// The server did not answer in time (or JetStream has no quorum to answer with).
        public static let timeout = Code(rawValue: "nats_timeout")
        /// The connection is closed.
        public static let connectionClosed = Code(rawValue: "nats_connection_closed")
        /// Nothing listens on the subject of a request.
        public static let noResponders = Code(rawValue: "nats_no_responders")
        /// The stream does not exist.
        public static let streamNotFound = Code(rawValue: "nats_stream_not_found")
        /// A stream of that name exists with another configuration.
        public static let streamExists = Code(rawValue: "nats_stream_exists")
        /// The message is larger than the stream or the server takes.
        public static let messageTooLarge = Code(rawValue: "nats_message_too_large")
        /// JetStream is not enabled on the server.
        public static let jetStreamUnavailable = Code(rawValue: "nats_jetstream_unavailable")
        /// An argument the C client refused.
        public static let invalidArgument = Code(rawValue: "nats_invalid_argument")
        /// Any other failure; the message has the client's or the server's text.
        public static let failed = Code(rawValue: "nats_failed")
    }

    public var code: Code
    /// The C call that failed, such as `"js_Publish"`.
    public var operation: String
    /// The client's status (`natsStatus`).
    public var status: Int32
    /// JetStream's error code (`jsErrCode`, such as 10071 for a wrong last sequence); 0 when none.
    public var jetStreamCode: Int
    public var message: String

    public init(code: Code, operation: String, status: Int32 = 0, jetStreamCode: Int = 0, message: String) {
        self.code = code
        self.operation = operation
        self.status = status
        self.jetStreamCode = jetStreamCode
        self.message = message
    }

    /// `"<operation> failed (<code>): <message>"`.
    public var description: String { "\(operation) failed (\(code)): \(message)" }
}

/// JetStream error codes the wrapper turns into values.
enum JetStreamCode {
    static let noMessageFound = Int(JSNoMessageFoundErr.rawValue)
    static let streamNotFound = Int(JSStreamNotFoundErr.rawValue)
    static let streamNameExists = Int(JSStreamNameExistErr.rawValue)
    static let wrongLastSequence = Int(JSStreamWrongLastSequenceErr.rawValue)
    static let messageTooLarge = Int(JSStreamMessageExceedsMaximumErr.rawValue)
}

/// The one chokepoint every C call's status goes through.
enum NATSCall {
    /// Returns when `status` is `NATS_OK`; otherwise throws the error for it.
    @inline(__always)
    static func check(_ status: natsStatus, _ operation: StaticString, jetStream: jsErrCode = jsErrCode(rawValue: 0)) throws(NATSError) {
        guard status != NATS_OK else { return }
        throw error(status, operation, jetStream: jetStream)
    }

    /// The error for a failed call, with the client's last error text. Out of line: only failures pay.
    @inline(never)
    static func error(_ status: natsStatus, _ operation: StaticString, jetStream: jsErrCode = jsErrCode(rawValue: 0)) -> NATSError {
        let jetStreamCode = Int(jetStream.rawValue)
        var lastStatus = NATS_OK
        let detail = nats_GetLastError(&lastStatus).map { String(cString: $0) }
        let text = detail.flatMap { $0.isEmpty ? nil : $0 } ?? String(cString: natsStatus_GetText(status))
        let code: NATSError.Code
        let hint: String
        switch (status, jetStreamCode) {
        case (_, JetStreamCode.streamNotFound):
            (code, hint) = (.streamNotFound, "create the stream first")
        case (_, JetStreamCode.streamNameExists):
            (code, hint) = (.streamExists, "a stream of that name exists with other settings: delete it or use its settings")
        case (_, JetStreamCode.messageTooLarge), (NATS_MAX_PAYLOAD, _):
            (code, hint) = (.messageTooLarge, "split the payload, or raise the server's max_payload and the stream's max message size")
        case (NATS_NO_SERVER, _), (NATS_NOT_YET_CONNECTED, _):
            (code, hint) = (.noServer, "check that nats-server runs with JetStream (-js) at the configured URLs")
        case (NATS_TIMEOUT, _):
            (code, hint) = (.timeout, "the servers did not answer in time: check that a quorum of them runs")
        case (NATS_CONNECTION_CLOSED, _), (NATS_CONNECTION_DISCONNECTED, _), (NATS_STALE_CONNECTION, _):
            (code, hint) = (.connectionClosed, "the connection to NATS is closed; it reconnects on its own while servers remain")
        case (NATS_NO_RESPONDERS, _):
            (code, hint) = (.noResponders, "nothing listens on that subject: is JetStream enabled (-js), is the receiver running?")
        case (NATS_INVALID_ARG, _):
            (code, hint) = (.invalidArgument, "a bug in the caller: report it")
        default:
            (code, hint) = (.failed, "see the NATS server's log")
        }
        return NATSError(code: code, operation: operation.description, status: Int32(status.rawValue), jetStreamCode: jetStreamCode,
                         message: "\(text); \(hint)")
    }
}
