/// An error from the ingest client: a stable ``code`` and a human ``message`` that says what went
/// wrong and what to do.
///
/// ```swift
/// do { _ = try sender.run(lines: lines) { _ in } }
/// catch { if error.code == .connectionLost { print(error.unansweredLines ?? 0) } }
/// ```
public struct ClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable error code. New codes may be added; switch with a `default` case.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case connectFailed = "connect_failed"
            case connectionLost = "connection_lost"
            case protocolViolation = "protocol_violation"
            case ioError = "io_error"
            case invalidArgument = "invalid_argument"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The socket could not be connected to (no socket at the path, nobody listening, no permission).
        public static let connectFailed = Code(.connectFailed)
        /// The connection dropped and every reconnect attempt failed; some lines stayed unanswered.
        public static let connectionLost = Code(.connectionLost)
        /// The server sent something that is not a valid response line, or more responses than lines.
        public static let protocolViolation = Code(.protocolViolation)
        /// A system call failed (reading the input, sending, receiving).
        public static let ioError = Code(.ioError)
        /// An argument was unusable (a socket path too long, a window of zero lines).
        public static let invalidArgument = Code(.invalidArgument)

        /// The code as a stable snake_case string, such as `connection_lost`.
        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong and what to do about it.
    public var message: String
    /// The `errno` value of the failed system call, when there was one.
    public var systemError: Int32?
    /// For ``Code/connectionLost``: how many lines were never answered (they may or may not have been
    /// recorded; resending them is safe because the server deduplicates).
    public var unansweredLines: Int?

    /// Creates an error.
    public init(code: Code, message: String, systemError: Int32? = nil, unansweredLines: Int? = nil) {
        self.code = code
        self.message = message
        self.systemError = systemError
        self.unansweredLines = unansweredLines
    }

    /// `code: message`, for logs and terminals.
    public var description: String { "\(code): \(message)" }
}
