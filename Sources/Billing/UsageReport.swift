public import TallyConfiguration
public import Metering
public import Storage

/// A customer's usage in one period, as `tally usage` and `GET /v1/customers/{id}/usage` show it.
///
/// Every configured meter appears, in config order (a meter without usage as one row of quantity 0),
/// split by group where the meter has `group_by`; then usage of meters the config no longer has,
/// with aggregation `unknown`.
///
/// ```swift
/// let records = try store.usage(customer: "cus_42", periodStart: period.start)
/// print(UsageReport(config: config, customer: "cus_42", period: period, records: records).json)
/// ```
public struct UsageReport: Sendable {
    /// One meter (and group) with its quantity.
    public struct Row: Sendable, Hashable {
        /// The meter code.
        public var meter: String
        /// The meter's aggregation (`sum`, `count`, …), or `unknown` for a meter the config no longer has.
        public var aggregation: String
        /// The group-by values; empty without `group_by`.
        public var group: [GroupValue]
        /// The aggregated quantity.
        public var quantity: ExactDecimal
        /// How many events were counted into it.
        public var eventCount: UInt64

        /// Creates a row.
        public init(meter: String, aggregation: String, group: [GroupValue], quantity: ExactDecimal, eventCount: UInt64) {
            self.meter = meter
            self.aggregation = aggregation
            self.group = group
            self.quantity = quantity
            self.eventCount = eventCount
        }
    }

    /// The customer id.
    public var customer: String
    /// The billing period reported.
    public var period: PeriodInterval
    /// The rows, in the order described on the type.
    public var rows: [Row]

    /// Builds the report from the store's aggregates of `customer` in `period`.
    public init(config: TallyConfig, customer: String, period: PeriodInterval, records: [UsageRecord]) {
        self.customer = customer
        self.period = period
        rows = Self.rows(config: config, records: records)
    }

    /// Every configured meter in config order (0 without usage), then meters the config no longer has.
    public static func rows(config: TallyConfig, records: [UsageRecord]) -> [Row] {
        var rows: [Row] = []
        for meter in config.meters {
            let matching = records.filter { $0.meter == meter.code }
            if matching.isEmpty {
                rows.append(Row(meter: meter.code, aggregation: meter.aggregation.rawValue, group: [], quantity: 0, eventCount: 0))
            }
            for record in matching {
                rows.append(Row(meter: meter.code, aggregation: meter.aggregation.rawValue, group: record.group,
                                quantity: record.quantity, eventCount: record.eventCount))
            }
        }
        let configured = Set(config.meters.map(\.code))
        for record in records where !configured.contains(record.meter) {
            rows.append(Row(meter: record.meter, aggregation: "unknown", group: record.group,
                            quantity: record.quantity, eventCount: record.eventCount))
        }
        return rows
    }

    /// `tally usage --json`: `{"customer","period":{"start","end"},"meters":[{"meter","aggregation","group":{},"quantity"}]}`,
    /// quantities as decimal strings.
    public var json: String {
        var writer = JSONWriter()
        writer.raw("{")
        writer.key("customer"); writer.string(customer)
        writer.raw(","); writer.key("period"); StatementFormat.bounds(period, into: &writer)
        writer.raw(","); writer.key("meters"); appendRows(to: &writer)
        writer.raw("}")
        return writer.output
    }

    /// The `meters` array of ``json``: `[{"meter","aggregation","group":{},"quantity"}]`.
    public func appendRows(to writer: inout JSONWriter) {
        writer.raw("[")
        for (index, row) in rows.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("meter"); writer.string(row.meter)
            writer.raw(","); writer.key("aggregation"); writer.string(row.aggregation)
            writer.raw(","); writer.key("group"); StatementFormat.group(row.group, into: &writer)
            writer.raw(","); writer.key("quantity"); writer.string(row.quantity.description)
            writer.raw("}")
        }
        writer.raw("]")
    }
}
