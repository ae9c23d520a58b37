/// Why a usage query cannot run: a stable code and a message that says what to do.
///
/// The CLI prints the message and exits 1; the HTTP API answers 400 (404 for `unknown_meter`)
/// with `{"error":{"code","message"}}`.
public struct UsageQueryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable error code.
    public struct Code: RawRepresentable, Sendable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// `from` or `to` is neither RFC 3339 nor a date.
        public static let invalidTime = Code(rawValue: "invalid_time")
        /// `window` is not `hour`, `day` or `month`.
        public static let invalidWindow = Code(rawValue: "invalid_window")
        /// `tz` is not an IANA time zone this machine knows.
        public static let unknownTimeZone = Code(rawValue: "unknown_time_zone")
        /// `from` or `to` is not on an edge of the window in the zone.
        public static let unalignedTime = Code(rawValue: "unaligned_time")
        /// `to` is not after `from`.
        public static let invalidRange = Code(rawValue: "invalid_range")
        /// The range holds more than `UsageQuery.maximumWindows` windows.
        public static let tooManyWindows = Code(rawValue: "too_many_windows")
        /// The meter is not configured.
        public static let unknownMeter = Code(rawValue: "unknown_meter")
        /// `group_by` names a property that is not among the meter's `group_by`.
        public static let unknownGroupBy = Code(rawValue: "unknown_group_by")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
