#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in time: nanoseconds since 1970-01-01T00:00:00Z (UTC), from 1677-09-21 to 2262-04-11.
///
/// Parsing, formatting and calendar math are integer-only. Civil dates use the proleptic Gregorian
/// calendar in UTC (Howard Hinnant's `days_from_civil` algorithms).
///
/// ```swift
/// let time = Timestamp.parseRFC3339("2026-11-22T11:00:00+01:00")!
/// time.rfc3339   // "2026-11-22T10:00:00Z"
/// ```
public struct Timestamp: Sendable, Hashable, Comparable {
    /// Nanoseconds since the Unix epoch, UTC; negative before 1970.
    public var nanosecondsSinceEpoch: Int64

    /// Creates a timestamp from nanoseconds since the Unix epoch.
    public init(nanosecondsSinceEpoch: Int64) {
        self.nanosecondsSinceEpoch = nanosecondsSinceEpoch
    }

    /// Orders by time.
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }

    /// Nanoseconds in one second.
    public static let nanosecondsPerSecond: Int64 = 1_000_000_000
    /// Nanoseconds in one minute.
    public static let nanosecondsPerMinute: Int64 = 60 * nanosecondsPerSecond
    /// Nanoseconds in one hour.
    public static let nanosecondsPerHour: Int64 = 3_600 * nanosecondsPerSecond
    /// Nanoseconds in one day (a UTC day; leap seconds are not counted).
    public static let nanosecondsPerDay: Int64 = 86_400 * nanosecondsPerSecond

    /// The current wall-clock time (`CLOCK_REALTIME`).
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(nanosecondsSinceEpoch: Int64(spec.tv_sec) &* nanosecondsPerSecond &+ Int64(spec.tv_nsec))
    }

    /// This time moved by `nanoseconds` (negative moves back), saturating at the ends of the range.
    public func adding(nanoseconds: Int64) -> Timestamp {
        let (sum, overflow) = nanosecondsSinceEpoch.addingReportingOverflow(nanoseconds)
        if overflow { return Timestamp(nanosecondsSinceEpoch: nanoseconds < 0 ? .min : .max) }
        return Timestamp(nanosecondsSinceEpoch: sum)
    }

    /// `self - earlier` in nanoseconds, saturating at the ends of `Int64`.
    public func nanoseconds(since earlier: Timestamp) -> Int64 {
        let (difference, overflow) = nanosecondsSinceEpoch.subtractingReportingOverflow(earlier.nanosecondsSinceEpoch)
        if overflow { return earlier.nanosecondsSinceEpoch > 0 ? .min : .max }
        return difference
    }
}

// MARK: - Civil calendar

/// A UTC calendar date and time of day, as ``Timestamp/civil`` returns it.
public struct CivilDateTime: Sendable, Hashable {
    /// The year (proleptic Gregorian; 1677...2262 for timestamps).
    public var year: Int
    /// The month, 1...12.
    public var month: Int
    /// The day of the month, 1...31.
    public var day: Int
    /// The hour, 0...23.
    public var hour: Int
    /// The minute, 0...59.
    public var minute: Int
    /// The second, 0...59.
    public var second: Int
    /// The nanosecond within the second, 0...999_999_999.
    public var nanosecond: Int

    /// Creates a civil date-time; fields are not validated here (``Timestamp/init(_:)`` does).
    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, nanosecond: Int = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.nanosecond = nanosecond
    }
}

extension Timestamp {
    /// The UTC time for a civil date and time; nil when a field is out of range (month 1...12, day
    /// within the month, hour 0...23, minute 0...59, second 0...59, nanosecond 0...999_999_999) or the
    /// time is outside 1677-09-21...2262-04-11.
    public init?(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, nanosecond: Int = 0) {
        guard (-1_000_000...1_000_000).contains(year), (1...12).contains(month),
            day >= 1, day <= Self.daysInMonth(year: year, month: month),
            (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second),
            (0...999_999_999).contains(nanosecond)
        else { return nil }
        let days = Self.daysSinceEpoch(year: year, month: month, day: day)
        let seconds = Int64(hour * 3600 + minute * 60 + second)
        guard let value = Self.combine(days: days, seconds: seconds, nanoseconds: Int64(nanosecond)) else { return nil }
        self.init(nanosecondsSinceEpoch: value)
    }

    /// The UTC time for `civil`; nil when a field is out of range (see
    /// ``init(year:month:day:hour:minute:second:nanosecond:)``).
    public init?(_ civil: CivilDateTime) {
        self.init(
            year: civil.year, month: civil.month, day: civil.day, hour: civil.hour, minute: civil.minute,
            second: civil.second, nanosecond: civil.nanosecond)
    }

    /// The UTC calendar date and time of day.
    public var civil: CivilDateTime {
        let days = daysSinceEpoch
        let nanosecondOfDay = nanosecondsSinceEpoch &- days &* Self.nanosecondsPerDay
        let date = Self.civilDate(daysSinceEpoch: days)
        let secondOfDay = Int(nanosecondOfDay / Self.nanosecondsPerSecond)
        return CivilDateTime(
            year: date.year, month: date.month, day: date.day,
            hour: secondOfDay / 3600, minute: secondOfDay / 60 % 60, second: secondOfDay % 60,
            nanosecond: Int(nanosecondOfDay % Self.nanosecondsPerSecond))
    }

    /// Whole days since 1970-01-01 (UTC), rounded down: -1 for any time on 1969-12-31.
    public var daysSinceEpoch: Int64 {
        let days = nanosecondsSinceEpoch / Self.nanosecondsPerDay
        return nanosecondsSinceEpoch % Self.nanosecondsPerDay < 0 ? days - 1 : days
    }

    /// The ISO weekday in UTC: Monday = 1 … Sunday = 7.
    public var weekday: Int {
        // 1970-01-01 was a Thursday (4).
        let offset = (daysSinceEpoch + 3) % 7
        return Int(offset < 0 ? offset + 7 : offset) + 1
    }

    /// Whether `year` is a Gregorian leap year.
    public static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// The number of days in `month` (1...12) of `year`; 0 for a month outside 1...12.
    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 1, 3, 5, 7, 8, 10, 12: return 31
        case 4, 6, 9, 11: return 30
        case 2: return isLeapYear(year) ? 29 : 28
        default: return 0
        }
    }

    /// Days from 1970-01-01 to the given civil date (Hinnant's `days_from_civil`); the date is not
    /// validated, so a day past the month's end rolls over.
    public static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The civil date `days` after 1970-01-01 (Hinnant's `civil_from_days`).
    public static func civilDate(daysSinceEpoch days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    /// `days × 86400 s + seconds + nanoseconds`, or nil when it does not fit in `Int64`.
    static func combine(days: Int64, seconds: Int64, nanoseconds: Int64) -> Int64? {
        // Int128 holds any intermediate: |days| < 2^40 for the years callers allow.
        let total = (Int128(days) * 86_400 + Int128(seconds)) * Int128(nanosecondsPerSecond) + Int128(nanoseconds)
        return Int64(exactly: total)
    }
}

// MARK: - RFC 3339

extension Timestamp {
    /// Parses an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    ///
    /// `T`/`t` and `Z`/`z` are accepted; the fraction has 1...9 digits; month, day (leap years), hour,
    /// minute and second are range-checked; second 60 (a leap second) reads as 59.999999999 of that
    /// minute; the offset is applied to give UTC. Anything else (a date alone, no offset, a space
    /// separator, more than 9 fraction digits, surrounding whitespace) returns nil.
    public static func parseRFC3339(_ bytes: UnsafeRawBufferPointer) -> Timestamp? {
        if case .time(let time) = readRFC3339(bytes) { return time }
        return nil
    }

    /// What ``readRFC3339(_:)`` found: a time, text that is not an RFC 3339 date-time, or a valid
    /// RFC 3339 date-time outside the range a `Timestamp` holds (1677-09-21...2262-04-11).
    public enum RFC3339Reading: Sendable, Hashable {
        /// A time in range.
        case time(Timestamp)
        /// Not an RFC 3339 date-time (see ``Timestamp/parseRFC3339(_:)-(UnsafeRawBufferPointer)``).
        case malformed
        /// A valid date-time before 1677-09-21T00:12:43.145224192Z, such as year 0001.
        case beforeRange
        /// A valid date-time after 2262-04-11T23:47:16.854775807Z, such as year 9999.
        case afterRange
    }

    /// Reads an RFC 3339 date-time like ``parseRFC3339(_:)-(UnsafeRawBufferPointer)``, telling a
    /// malformed text from a valid date-time outside the representable range, and on which side.
    public static func readRFC3339(_ bytes: UnsafeRawBufferPointer) -> RFC3339Reading {
        let count = bytes.count
        guard count >= 20 else { return .malformed }

        @inline(__always) func digit(_ index: Int) -> Int? {
            let value = bytes[index] &- ASCIIByte.zero
            return value < 10 ? Int(value) : nil
        }
        @inline(__always) func twoDigits(_ index: Int) -> Int? {
            guard let high = digit(index), let low = digit(index + 1) else { return nil }
            return high * 10 + low
        }

        guard let century = twoDigits(0), let yearOfCentury = twoDigits(2), bytes[4] == ASCIIByte.minus,
            let month = twoDigits(5), bytes[7] == ASCIIByte.minus, let day = twoDigits(8),
            bytes[10] | 0x20 == UInt8(ascii: "t"),
            let hour = twoDigits(11), bytes[13] == ASCIIByte.colon, let minute = twoDigits(14),
            bytes[16] == ASCIIByte.colon, var second = twoDigits(17)
        else { return .malformed }
        let year = century * 100 + yearOfCentury
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
            hour <= 23, minute <= 59, second <= 60
        else { return .malformed }

        var index = 19
        var nanosecond = 0
        if bytes[index] == ASCIIByte.dot {
            index += 1
            let start = index
            while index < count, let value = digit(index) {
                guard index - start < 9 else { return .malformed }
                nanosecond = nanosecond * 10 + value
                index += 1
            }
            let digits = index - start
            guard digits > 0 else { return .malformed }
            for _ in digits..<9 { nanosecond *= 10 }
        }
        if second == 60 {
            second = 59
            nanosecond = 999_999_999
        }

        guard index < count else { return .malformed }
        var offsetSeconds = 0
        let zone = bytes[index]
        if zone | 0x20 == UInt8(ascii: "z") {
            index += 1
        } else if zone == ASCIIByte.plus || zone == ASCIIByte.minus {
            guard count - index >= 6, let offsetHour = twoDigits(index + 1), bytes[index + 3] == ASCIIByte.colon,
                let offsetMinute = twoDigits(index + 4), offsetHour <= 23, offsetMinute <= 59
            else { return .malformed }
            offsetSeconds = (offsetHour * 3600 + offsetMinute * 60) * (zone == ASCIIByte.minus ? -1 : 1)
            index += 6
        } else {
            return .malformed
        }
        guard index == count else { return .malformed }

        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = Int64(hour * 3600 + minute * 60 + second - offsetSeconds)
        guard let value = combine(days: days, seconds: seconds, nanoseconds: Int64(nanosecond)) else {
            return days < 0 ? .beforeRange : .afterRange
        }
        return .time(Timestamp(nanosecondsSinceEpoch: value))
    }

    /// Parses an RFC 3339 date-time from text (see ``parseRFC3339(_:)-(UnsafeRawBufferPointer)``).
    public static func parseRFC3339(_ text: some StringProtocol) -> Timestamp? {
        if let result = text.utf8.withContiguousStorageIfAvailable({ parseRFC3339(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(text.utf8).withUnsafeBytes { parseRFC3339($0) }
    }

    /// Reads an RFC 3339 date-time from text (see ``readRFC3339(_:)-(UnsafeRawBufferPointer)``).
    public static func readRFC3339(_ text: some StringProtocol) -> RFC3339Reading {
        if let result = text.utf8.withContiguousStorageIfAvailable({ readRFC3339(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(text.utf8).withUnsafeBytes { readRFC3339($0) }
    }

    /// The time in RFC 3339 UTC, with a fraction only when it is non-zero, trimmed of trailing zeros:
    /// `"2026-11-22T10:00:00Z"`, `"2026-11-22T10:00:00.5Z"`.
    public var rfc3339: String { format(fractionDigits: nil) }

    /// The time in RFC 3339 UTC with exactly `fractionDigits` (clamped to 0...9) fraction digits,
    /// truncated: `rfc3339(fractionDigits: 3)` gives `"2026-11-22T10:00:00.500Z"`.
    public func rfc3339(fractionDigits: Int) -> String {
        format(fractionDigits: min(max(fractionDigits, 0), 9))
    }

    private func format(fractionDigits requested: Int?) -> String {
        let time = civil
        var fraction = time.nanosecond
        var digits: Int
        if let requested {
            digits = requested
            for _ in requested..<9 { fraction /= 10 }
        } else if fraction == 0 {
            digits = 0
        } else {
            digits = 9
            while fraction % 10 == 0 {
                fraction /= 10
                digits -= 1
            }
        }
        // Years of Int64-nanosecond timestamps are always four digits (1677...2262).
        let length = 20 + (digits > 0 ? digits + 1 : 0)
        return String(unsafeUninitializedCapacity: length) { out in
            @inline(__always) func put(_ value: Int, at index: Int, width: Int) {
                var value = value
                for position in stride(from: index + width - 1, through: index, by: -1) {
                    out[position] = ASCIIByte.zero &+ UInt8(value % 10)
                    value /= 10
                }
            }
            put(time.year, at: 0, width: 4)
            out[4] = ASCIIByte.minus
            put(time.month, at: 5, width: 2)
            out[7] = ASCIIByte.minus
            put(time.day, at: 8, width: 2)
            out[10] = UInt8(ascii: "T")
            put(time.hour, at: 11, width: 2)
            out[13] = ASCIIByte.colon
            put(time.minute, at: 14, width: 2)
            out[16] = ASCIIByte.colon
            put(time.second, at: 17, width: 2)
            var index = 19
            if digits > 0 {
                out[19] = ASCIIByte.dot
                put(fraction, at: 20, width: digits)
                index = 20 + digits
            }
            out[index] = UInt8(ascii: "Z")
            return index + 1
        }
    }
}

extension Timestamp: CustomStringConvertible {
    /// The RFC 3339 form (``rfc3339``).
    public var description: String { rfc3339 }
}

// MARK: - Unix time

extension Timestamp {
    /// Unix values at or above this are read as milliseconds by ``fromUnix(_:)``: 10^11 seconds is
    /// in the year 5138, far past the timestamp range, while 10^11 milliseconds is 1973-03-03.
    public static let unixMillisecondsThreshold: ExactDecimal = 100_000_000_000

    /// A time from a Unix timestamp: seconds, or milliseconds when `value >= 100_000_000_000`
    /// (10^11 seconds would be the year 5138).
    ///
    /// A fractional part is kept to the nanosecond (truncated below). Returns nil for negative values
    /// and times past 2262-04-11 (the end of the `Int64` nanosecond range).
    public static func fromUnix(_ value: ExactDecimal) -> Timestamp? {
        guard !value.isNegative else { return nil }
        // Nanoseconds per unit, as a power of ten: 10^9 for seconds, 10^6 for milliseconds.
        let unitExponent = value < unixMillisecondsThreshold ? 9 : 6
        var nanoseconds = value.significand
        if value.scale <= unitExponent {
            let (scaled, overflow) = nanoseconds.multipliedReportingOverflow(
                by: Int128(ExactDecimal.powersOfTen[unitExponent - value.scale]))
            guard !overflow else { return nil }
            nanoseconds = scaled
        } else {
            nanoseconds /= Int128(ExactDecimal.powersOfTen[value.scale - unitExponent])
        }
        guard let exact = Int64(exactly: nanoseconds) else { return nil }
        return Timestamp(nanosecondsSinceEpoch: exact)
    }
}

// MARK: - Codable

extension Timestamp: Codable {
    /// Decodes an RFC 3339 string.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Timestamp.parseRFC3339(text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "\"\(text)\" is not an RFC 3339 time: write it like \"2026-11-22T10:00:00Z\"")
        }
        self = value
    }

    /// Encodes the ``rfc3339`` string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rfc3339)
    }
}
