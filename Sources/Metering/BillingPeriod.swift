/// How usage is cut into billing periods: daily, weekly, monthly or yearly, all in UTC, optionally
/// anchored to a date (`billing.period` and `billing.anchor` in the config).
///
/// ```swift
/// let period = BillingPeriod(kind: .monthly, anchor: BillingPeriod.Anchor("2026-01-31"))
/// period.interval(label: "2026-02")?.label   // "2026-01-31": Jan 31 to Feb 28
/// ```
///
/// - daily: midnight to midnight.
/// - weekly: from Monday 00:00, or from the anchor's weekday.
/// - monthly: from the 1st 00:00, or from the anchor's day of month, clamped to the month's last day
///   (anchor 31: Jan 31, Feb 28 or 29, Mar 31, Apr 30 …).
/// - yearly: from January 1, or from the anchor's month and day (an anchor of Feb 29 starts on
///   Feb 28 in common years).
///
/// A timestamp exactly at a boundary belongs to the period that starts there. Periods that would
/// reach past the range of `Timestamp` (about 1677…2262) are clamped to it.
public struct BillingPeriod: Sendable, Hashable, CustomStringConvertible {
    /// The length of a period.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// One UTC day.
        case daily
        /// Seven days.
        case weekly
        /// One calendar month.
        case monthly
        /// One calendar year.
        case yearly
    }

    /// A calendar date that fixes where periods start: weekly periods use its weekday, monthly ones
    /// its day of month, yearly ones its month and day. Daily periods ignore it.
    public struct Anchor: Sendable, Hashable, CustomStringConvertible {
        /// The year (only its weekday matters, for weekly periods).
        public let year: Int
        /// The month, 1…12.
        public let month: Int
        /// The day of the month, 1…31, valid for that month and year.
        public let day: Int

        /// A valid calendar date, or nil (for example for February 30).
        public init?(year: Int, month: Int, day: Int) {
            guard (1...12).contains(month), (1...lastDayOfMonth(year: year, month: month)).contains(day) else {
                return nil
            }
            self.year = year
            self.month = month
            self.day = day
        }

        /// Reads `YYYY-MM-DD`; nil for anything else or an invalid date.
        public init?(_ text: String) {
            guard let date = parseDateLabel(text), let month = date.month, let day = date.day else { return nil }
            self.init(year: date.year, month: month, day: day)
        }

        /// `YYYY-MM-DD`.
        public var description: String { dateText(year: year, month: month, day: day) }
    }

    /// The length of a period.
    public var kind: Kind
    /// Where periods start; nil for the calendar default (Monday, the 1st, January 1).
    public var anchor: Anchor?

    /// Creates a period rule.
    public init(kind: Kind, anchor: Anchor? = nil) {
        self.kind = kind
        self.anchor = anchor
    }

    /// UTC days.
    public static let daily = BillingPeriod(kind: .daily)
    /// Weeks from Monday 00:00 UTC.
    public static let weekly = BillingPeriod(kind: .weekly)
    /// Calendar months in UTC: the default.
    public static let monthly = BillingPeriod(kind: .monthly)
    /// Calendar years in UTC.
    public static let yearly = BillingPeriod(kind: .yearly)

    /// `monthly`, or `monthly from 2026-01-15` with an anchor.
    public var description: String {
        guard let anchor else { return kind.rawValue }
        return "\(kind.rawValue) from \(anchor)"
    }

    /// The period that contains `timestamp` (a period includes its start and excludes its end).
    public func interval(containing timestamp: Timestamp) -> PeriodInterval {
        let day = floorDivide(timestamp.nanosecondsSinceEpoch, nanosecondsPerDay)
        switch kind {
        case .daily:
            let date = civilDate(fromDays: day)
            return makeInterval(startDay: day, endDay: day + 1, label: dateText(date))
        case .weekly:
            let startWeekday = anchor.map { weekday(ofDays: daysFromCivil(year: $0.year, month: $0.month, day: $0.day)) } ?? 0
            let startDay = day - floorModulo(weekday(ofDays: day) - startWeekday, 7)
            return makeInterval(startDay: startDay, endDay: startDay + 7, label: dateText(civilDate(fromDays: startDay)))
        case .monthly:
            let anchorDay = anchor?.day ?? 1
            let date = civilDate(fromDays: day)
            var month = (year: date.year, month: date.month)
            if day < monthStart(month, anchorDay: anchorDay) { month = previousMonth(month) }
            let startDay = monthStart(month, anchorDay: anchorDay)
            let endDay = monthStart(nextMonth(month), anchorDay: anchorDay)
            let label = anchor == nil
                ? "\(fourDigits(month.year))-\(twoDigits(month.month))"
                : dateText(civilDate(fromDays: startDay))
            return makeInterval(startDay: startDay, endDay: endDay, label: label)
        case .yearly:
            let anchorMonth = anchor?.month ?? 1, anchorDay = anchor?.day ?? 1
            var year = civilDate(fromDays: day).year
            if day < yearStart(year, month: anchorMonth, day: anchorDay) { year -= 1 }
            let startDay = yearStart(year, month: anchorMonth, day: anchorDay)
            let endDay = yearStart(year + 1, month: anchorMonth, day: anchorDay)
            let label = anchor == nil ? fourDigits(year) : dateText(civilDate(fromDays: startDay))
            return makeInterval(startDay: startDay, endDay: endDay, label: label)
        }
    }

    /// The period named by a label: `2026-11` is the period containing 2026-11-01, `2026-11-22` the
    /// one containing that day, `2026` the one containing 2026-01-01. Nil for anything malformed
    /// (`2026-13`, `2026-02-30`, `26-11`) or outside the range of `Timestamp`.
    public func interval(label: String) -> PeriodInterval? {
        guard let date = parseDateLabel(label) else { return nil }
        let day = daysFromCivil(year: date.year, month: date.month ?? 1, day: date.day ?? 1)
        let (nanoseconds, overflow) = Int64(day).multipliedReportingOverflow(by: nanosecondsPerDay)
        if overflow { return nil }
        return interval(containing: Timestamp(nanosecondsSinceEpoch: nanoseconds))
    }

    /// The period right after `interval`.
    public func next(_ interval: PeriodInterval) -> PeriodInterval {
        self.interval(containing: interval.end)
    }

    /// The period right before `interval`.
    public func previous(_ interval: PeriodInterval) -> PeriodInterval {
        let start = interval.start.nanosecondsSinceEpoch
        guard start > Int64.min else { return self.interval(containing: interval.start) }
        return self.interval(containing: Timestamp(nanosecondsSinceEpoch: start - 1))
    }
}

/// One billing period: from `start` (included) to `end` (excluded), with its display label.
public struct PeriodInterval: Sendable, Hashable, CustomStringConvertible {
    /// The first instant of the period.
    public var start: Timestamp
    /// The first instant after the period.
    public var end: Timestamp
    /// `2026-11` (monthly), `2026` (yearly), `2026-11-22` (daily), the start date for weekly periods
    /// and for anchored monthly and yearly ones (`2026-11-15`).
    public var label: String

    /// Creates an interval.
    public init(start: Timestamp, end: Timestamp, label: String) {
        self.start = start
        self.end = end
        self.label = label
    }

    /// Whether `timestamp` falls in the period (`start <= timestamp < end`).
    public func contains(_ timestamp: Timestamp) -> Bool {
        start.nanosecondsSinceEpoch <= timestamp.nanosecondsSinceEpoch
            && timestamp.nanosecondsSinceEpoch < end.nanosecondsSinceEpoch
    }

    /// The label.
    public var description: String { label }
}

// MARK: - Civil calendar arithmetic (proleptic Gregorian, UTC), private to this file.

private let nanosecondsPerDay: Int64 = 86_400_000_000_000

private func floorDivide(_ value: Int64, _ divisor: Int64) -> Int {
    let quotient = value / divisor
    return Int(value % divisor < 0 ? quotient - 1 : quotient)
}

private func floorModulo(_ value: Int, _ divisor: Int) -> Int {
    let remainder = value % divisor
    return remainder < 0 ? remainder + divisor : remainder
}

private func isLeapYear(_ year: Int) -> Bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

private func lastDayOfMonth(year: Int, month: Int) -> Int {
    switch month {
    case 2: isLeapYear(year) ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
private func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
}

/// The date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
private func civilDate(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let shiftedMonth = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
    let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
}

/// 0 for Monday … 6 for Sunday (1970-01-01 was a Thursday).
private func weekday(ofDays days: Int) -> Int { floorModulo(days + 3, 7) }

private func monthStart(_ month: (year: Int, month: Int), anchorDay: Int) -> Int {
    daysFromCivil(year: month.year, month: month.month, day: min(anchorDay, lastDayOfMonth(year: month.year, month: month.month)))
}

private func yearStart(_ year: Int, month: Int, day: Int) -> Int {
    daysFromCivil(year: year, month: month, day: min(day, lastDayOfMonth(year: year, month: month)))
}

private func nextMonth(_ month: (year: Int, month: Int)) -> (year: Int, month: Int) {
    month.month == 12 ? (month.year + 1, 1) : (month.year, month.month + 1)
}

private func previousMonth(_ month: (year: Int, month: Int)) -> (year: Int, month: Int) {
    month.month == 1 ? (month.year - 1, 12) : (month.year, month.month - 1)
}

/// Midnight of a day as a timestamp, clamped to the range of `Int64` nanoseconds.
private func timestamp(ofDay day: Int) -> Timestamp {
    let (nanoseconds, overflow) = Int64(day).multipliedReportingOverflow(by: nanosecondsPerDay)
    if overflow { return Timestamp(nanosecondsSinceEpoch: day < 0 ? Int64.min : Int64.max) }
    return Timestamp(nanosecondsSinceEpoch: nanoseconds)
}

private func makeInterval(startDay: Int, endDay: Int, label: String) -> PeriodInterval {
    PeriodInterval(start: timestamp(ofDay: startDay), end: timestamp(ofDay: endDay), label: label)
}

/// Reads `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (exactly those digit counts); nil when malformed or invalid.
private func parseDateLabel(_ text: String) -> (year: Int, month: Int?, day: Int?)? {
    let parts = text.utf8.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
    guard (1...3).contains(parts.count) else { return nil }
    func number(_ part: Substring.UTF8View.SubSequence, digits: Int) -> Int? {
        guard part.count == digits else { return nil }
        var value = 0
        for byte in part {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }
    guard let year = number(parts[0], digits: 4) else { return nil }
    var month: Int?
    var day: Int?
    if parts.count >= 2 {
        guard let value = number(parts[1], digits: 2), (1...12).contains(value) else { return nil }
        month = value
    }
    if parts.count == 3, let month {
        guard let value = number(parts[2], digits: 2), (1...lastDayOfMonth(year: year, month: month)).contains(value) else {
            return nil
        }
        day = value
    }
    return (year, month, day)
}

private func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

private func fourDigits(_ value: Int) -> String {
    guard value >= 0, value < 1000 else { return "\(value)" }
    let text = "\(value)"
    return String(repeating: "0", count: 4 - text.count) + text
}

private func dateText(year: Int, month: Int, day: Int) -> String {
    "\(fourDigits(year))-\(twoDigits(month))-\(twoDigits(day))"
}

private func dateText(_ date: (year: Int, month: Int, day: Int)) -> String {
    dateText(year: date.year, month: date.month, day: date.day)
}
