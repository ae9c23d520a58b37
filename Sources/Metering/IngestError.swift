/// Why an event line was rejected: a stable ``code`` for programs, a ``message`` for people, and the
/// ``field`` at fault when there is one.
///
/// The server answers `{"status":"rejected","error":{"code":…,"message":…,"field":…}}`.
///
/// ```swift
/// if case .failure(let error) = parser.parse(line, receivedAt: .now()), error.code == .unknownMeter { … }
/// ```
public struct IngestError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stable machine-readable reason.
    public var code: Code
    /// What was wrong and what to do about it.
    public var message: String
    /// The event field at fault (`"id"`, `"value"`, an unknown key, …), or nil.
    public var field: String?

    /// Creates an error.
    public init(code: Code, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    /// `"code: message"`, with the field when there is one.
    public var description: String {
        if let field { return "\(code.rawValue) (\(field)): \(message)" }
        return "\(code.rawValue): \(message)"
    }

    /// A stable error code; an open set of string constants, so new codes never break callers.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The code as it appears on the wire, e.g. `"invalid_json"`.
        public var rawValue: String

        /// Wraps a raw code string.
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// The raw value.
        public var description: String { rawValue }

        /// The line is not one valid JSON object (syntax, invalid UTF-8, trailing bytes).
        public static let invalidJSON = Code(rawValue: "invalid_json")
        /// A required field (`id`, `customer`, `meter`) is absent or null.
        public static let missingField = Code(rawValue: "missing_field")
        /// A field has the wrong type or form, is unknown, or appears twice.
        public static let invalidField = Code(rawValue: "invalid_field")
        /// The meter is not one of the configured meters.
        public static let unknownMeter = Code(rawValue: "unknown_meter")
        /// `value` is not a non-negative decimal in range.
        public static let invalidValue = Code(rawValue: "invalid_value")
        /// `id` or `customer` is longer than 255 bytes.
        public static let idTooLong = Code(rawValue: "id_too_long")
        /// The line is longer than the configured maximum.
        public static let lineTooLong = Code(rawValue: "line_too_long")
        /// `time` is further ahead of the server's clock than the allowed skew.
        public static let timestampInFuture = Code(rawValue: "timestamp_in_future")
        /// `time` is older than the dedup window.
        public static let timestampTooOld = Code(rawValue: "timestamp_too_old")
        /// `time` falls in a billing period that is already closed.
        public static let periodClosed = Code(rawValue: "period_closed")
        /// An event with the same customer and id but different content was already counted.
        public static let idempotencyConflict = Code(rawValue: "idempotency_conflict")
        /// The store cannot take writes; nothing was recorded: retry later.
        public static let unavailable = Code(rawValue: "unavailable")

        /// Every code Tally emits, in documentation order.
        public static let allCodes: [Code] = [
            .invalidJSON, .missingField, .invalidField, .unknownMeter, .invalidValue, .idTooLong,
            .lineTooLong, .timestampInFuture, .timestampTooOld, .periodClosed, .idempotencyConflict,
            .unavailable,
        ]
    }
}

extension IngestError {
    /// A line longer than `maxLineBytes`.
    public static func lineTooLong(maxLineBytes: Int) -> IngestError {
        IngestError(
            code: .lineTooLong,
            message: "line is longer than \(maxLineBytes) bytes; split the data or raise max_line_bytes in the config")
    }

    /// An event whose time falls in a closed billing period.
    public static func periodClosed(period: String) -> IngestError {
        IngestError(
            code: .periodClosed,
            message: "the billing period \(period) is closed; events for it are no longer accepted",
            field: "time")
    }

    /// An event with a known identity and different content.
    public static func idempotencyConflict(customer: String, id: String) -> IngestError {
        IngestError(
            code: .idempotencyConflict,
            message: "an event with customer \(IngestError.quoted(customer)) and id \(IngestError.quoted(id)) was already recorded with different content; use a new id for a new event",
            field: "id")
    }

    /// The store cannot take writes.
    public static func unavailable(_ reason: String) -> IngestError {
        IngestError(code: .unavailable, message: "\(reason); nothing was recorded, retry later")
    }
}

extension IngestError {
    /// `"text"` for an error message, cut to 64 bytes with an ellipsis so messages stay short.
    static func quoted(_ text: String) -> String {
        let utf8 = text.utf8
        if utf8.count <= 64 { return "\"\(text)\"" }
        var end = utf8.index(utf8.startIndex, offsetBy: 64)
        while end > utf8.startIndex && UTF8.isContinuation(utf8[end]) { end = utf8.index(before: end) }
        return "\"\(String(text[..<end]))…\""
    }
}
