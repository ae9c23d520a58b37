/// How an amount is rounded to the currency's minor unit (`billing.rounding`).
public enum RoundingMode: String, Sendable, Hashable, CaseIterable {
    /// 2.345 → 2.35, −2.345 → −2.35 (the default).
    case halfAwayFromZero = "half_away_from_zero"
    /// Banker's rounding: 2.345 → 2.34, 2.355 → 2.36.
    case halfEven = "half_even"
}

/// How a meter turns events into a quantity for a period.
public enum Aggregation: String, Sendable, Hashable, CaseIterable {
    /// The sum of the events' values.
    case sum
    /// The number of events (values are ignored).
    case count
    /// The largest value.
    case max
    /// The smallest value.
    case min
    /// The value of the event with the latest time.
    case latest
    /// The number of distinct values of the meter's `property`.
    case uniqueCount = "unique_count"
}

/// One meter from `meters:`.
///
/// ```yaml
/// - { code: tokens, aggregation: sum, group_by: [model], filter: { billable: "true" } }
/// ```
public struct Meter: Sendable, Hashable {
    /// The code events name in their `meter` field: `[a-z0-9_]{1,64}`, unique.
    public var code: String
    /// How events become a quantity.
    public var aggregation: Aggregation
    /// The property whose distinct values `unique_count` counts; nil for every other aggregation.
    public var property: String?
    /// Only events whose properties equal all of these (compared as text) count.
    public var filter: [String: String]
    /// Properties that split usage into groups (for example `region`), in order.
    public var groupBy: [String]

    /// Creates a meter.
    public init(
        code: String,
        aggregation: Aggregation,
        property: String? = nil,
        filter: [String: String] = [:],
        groupBy: [String] = []
    ) {
        self.code = code
        self.aggregation = aggregation
        self.property = property
        self.filter = filter
        self.groupBy = groupBy
    }
}
