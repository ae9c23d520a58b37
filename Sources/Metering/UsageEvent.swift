/// One usage event, as parsed and validated from an NDJSON line by ``EventLineParser``.
///
/// Its identity is (``customer``, ``id``); a later event with the same identity and the same content
/// is a duplicate, one with different content an idempotency conflict.
public struct UsageEvent: Sendable, Hashable {
    /// The producer's idempotency key, 1...255 bytes of UTF-8.
    public var id: String
    /// The company's own customer id, 1...255 bytes of UTF-8.
    public var customer: String
    /// A meter code from the config.
    public var meter: String
    /// The quantity: zero or more, at most 12 fractional digits, below 10^18 (1 when the line had none).
    public var value: ExactDecimal
    /// When the usage happened; nil when the line had no time: the server fills in the receive time.
    public var time: Timestamp?
    /// Flat properties, sorted by key (UTF-8 byte order), keys unique.
    public var properties: [Property]

    /// Creates an event. `properties` must already be sorted by key with unique keys (the parser
    /// guarantees this).
    public init(
        id: String, customer: String, meter: String, value: ExactDecimal = 1, time: Timestamp? = nil,
        properties: [Property] = []
    ) {
        self.id = id
        self.customer = customer
        self.meter = meter
        self.value = value
        self.time = time
        self.properties = properties
    }

    /// The value of property `key`, or nil.
    public func property(_ key: String) -> PropertyValue? {
        for property in properties where property.key == key { return property.value }
        return nil
    }

    /// One key-value pair of ``UsageEvent/properties``.
    public struct Property: Sendable, Hashable {
        /// The key, 1...255 bytes of UTF-8.
        public var key: String
        /// The value.
        public var value: PropertyValue

        /// Creates a property.
        public init(key: String, value: PropertyValue) {
            self.key = key
            self.value = value
        }
    }
}

/// A property value: a string, an exact number or a bool.
public enum PropertyValue: Sendable, Hashable {
    /// A string, as sent (after JSON unescaping).
    case string(String)
    /// A number, kept exactly.
    case number(ExactDecimal)
    /// `true` or `false`.
    case bool(Bool)

    /// The value as text, used by filters and group-by: a string as-is, a number in canonical form
    /// (`1.50` → `"1.5"`), a bool as `"true"`/`"false"`.
    public var text: String {
        switch self {
        case .string(let string): string
        case .number(let number): number.description
        case .bool(let bool): bool ? "true" : "false"
        }
    }
}

