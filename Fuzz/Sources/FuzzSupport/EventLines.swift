public import Metering

/// The parser and receive time both event-line targets use: the meters of `config/tally.yaml`,
/// the default limits, and a fixed clock (2026-11-22T10:00:00Z) so that runs are reproducible.
public enum EventLines {
    /// The meter codes of `config/tally.yaml` and `examples/events.ndjson`.
    public static let parser = EventLineParser(meterCodes: ["api_calls", "tokens", "storage_gb", "active_users"])
    /// When the fuzzer "received" every line.
    public static let receivedAt = Timestamp(nanosecondsSinceEpoch: 1_795_341_600 * 1_000_000_000)

    /// The line's event or error, the way the socket and `POST /v1/events` parse a line.
    public static func parse(_ line: UnsafeRawBufferPointer) -> Result<UsageEvent, IngestError> {
        parser.parse(line, receivedAt: receivedAt)
    }

    /// `event` as an event line, every field written out (the `tally export` form: `value` as a
    /// decimal string, `time` in RFC 3339 with nanoseconds).
    public static func line(_ event: UsageEvent) -> [UInt8] {
        var writer = JSONWriter()
        writer.raw("{")
        writer.key("id")
        writer.string(event.id)
        writer.raw(",")
        writer.key("customer")
        writer.string(event.customer)
        writer.raw(",")
        writer.key("meter")
        writer.string(event.meter)
        writer.raw(",")
        writer.key("value")
        writer.string(event.value.description)
        if let time = event.time {
            writer.raw(",")
            writer.key("time")
            writer.string(time.rfc3339(fractionDigits: 9))
        }
        writer.raw(",")
        writer.key("properties")
        writer.raw("{")
        for (index, property) in event.properties.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.key(property.key)
            switch property.value {
            case .string(let text): writer.string(text)
            case .number(let number): writer.raw(number.description)
            case .bool(let bool): writer.raw(bool ? "true" : "false")
            }
        }
        writer.raw("}}")
        return writer.bytes
    }
}
