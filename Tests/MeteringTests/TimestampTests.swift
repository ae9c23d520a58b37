import Foundation
import Metering
import Testing

private let second: Int64 = 1_000_000_000
/// 2026-11-22T10:00:00Z (checked with Python's datetime).
private let referenceNanoseconds: Int64 = 1_795_341_600_000_000_000

private func unix(_ text: String) -> Timestamp? {
    Timestamp.fromUnix(ExactDecimal(text)!)
}

private let parseCases: [(String, Int64)] = [
    ("2026-11-22T10:00:00Z", referenceNanoseconds),
    ("2026-11-22t10:00:00z", referenceNanoseconds),
    ("2026-11-22T11:00:00+01:00", referenceNanoseconds),
    ("2026-11-22T04:30:00-05:30", referenceNanoseconds),
    ("2026-11-22T10:00:00+00:00", referenceNanoseconds),
    ("2026-11-22T10:00:00-00:00", referenceNanoseconds),
    ("2026-11-22T10:00:00.5Z", referenceNanoseconds + 500_000_000),
    ("2026-11-22T10:00:00.123456789Z", referenceNanoseconds + 123_456_789),
    ("2026-11-22T10:00:00.000000001Z", referenceNanoseconds + 1),
    ("2026-11-22T10:00:00.100+01:00", referenceNanoseconds - 3600 * second + 100_000_000),
    ("2016-12-31T23:59:60Z", 1_483_228_799 * second + 999_999_999),
    ("2016-12-31T23:59:60.5Z", 1_483_228_799 * second + 999_999_999),
    ("2024-02-29T12:30:45Z", 1_709_209_845 * second),
    ("2000-02-29T00:00:00Z", 951_782_400 * second),
    ("1970-01-01T00:00:00Z", 0),
    ("1969-12-31T23:59:59.999999999Z", -1),
    ("1677-09-21T00:12:43.145224192Z", Int64.min),
    ("2262-04-11T23:47:16.854775807Z", Int64.max),
]

private let formatCases: [(Int64, String)] = [
    (referenceNanoseconds, "2026-11-22T10:00:00Z"),
    (referenceNanoseconds + 500_000_000, "2026-11-22T10:00:00.5Z"),
    (referenceNanoseconds + 120_000_000, "2026-11-22T10:00:00.12Z"),
    (referenceNanoseconds + 1, "2026-11-22T10:00:00.000000001Z"),
    (0, "1970-01-01T00:00:00Z"),
    (-1, "1969-12-31T23:59:59.999999999Z"),
    (Int64.min, "1677-09-21T00:12:43.145224192Z"),
    (Int64.max, "2262-04-11T23:47:16.854775807Z"),
]

@Suite("Timestamp RFC 3339")
struct TimestampRFC3339Tests {
    @Test(arguments: parseCases)
    func parses(text: String, nanoseconds: Int64) throws {
        let parsed = try #require(Timestamp.parseRFC3339(text))
        #expect(parsed.nanosecondsSinceEpoch == nanoseconds)
    }

    @Test(arguments: [
        "", "2026-11-22", "2026-11-22T10:00:00", "2026-11-22T10:00Z", "2026-11-22 10:00:00Z",
        " 2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z ", "2026-11-22T10:00:00.Z", "2026-11-22T10:00:00.1234567891Z",
        "2026-11-22T10:00:00+01", "2026-11-22T10:00:00+0100", "2026-11-22T10:00:00+24:00", "2026-11-22T10:00:00+01:60",
        "2026-1-22T10:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-04-31T00:00:00Z",
        "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-22T24:00:00Z",
        "2026-11-22T10:60:00Z", "2026-11-22T10:00:61Z", "2026-11-22X10:00:00Z", "2026/11/22T10:00:00Z",
        "2026-11-22T10:00:00UTC", "2026-11-22T10:00:00Zjunk", "+2026-11-22T10:00:00Z", "１９７０-01-01T00:00:00Z",
        "1677-09-21T00:12:43.145224191Z", "2262-04-11T23:47:16.854775808Z", "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z", "1776130000", "2026-11-22T10:00:00.+01:00",
    ])
    func rejects(text: String) {
        #expect(Timestamp.parseRFC3339(text) == nil)
    }

    @Test(arguments: [
        ("2262-04-11T23:47:16.854775808Z", Timestamp.RFC3339Reading.afterRange), ("2262-04-12T00:00:00Z", .afterRange),
        ("9999-12-31T23:59:59Z", .afterRange), ("2300-01-01T00:00:00+23:59", .afterRange),
        ("1677-09-21T00:12:43.145224191Z", .beforeRange), ("0001-01-01T00:00:00Z", .beforeRange),
        ("0000-01-01T00:00:00Z", .beforeRange), ("1600-02-29T12:00:00-05:00", .beforeRange),
        ("2262-04-12T00:47:16+01:00", .time(Timestamp(nanosecondsSinceEpoch: Int64.max - 854_775_807))),
        ("2026-11-22T10:00:00Z", .time(Timestamp(nanosecondsSinceEpoch: referenceNanoseconds))),
        ("9999-13-01T00:00:00Z", .malformed), ("0001-02-29T00:00:00Z", .malformed), ("2262-04-11", .malformed),
        ("1776130000", .malformed), ("9999-12-31T23:59:59", .malformed),
    ])
    func readsTheSideOfTheRange(text: String, expected: Timestamp.RFC3339Reading) {
        #expect(Timestamp.readRFC3339(text) == expected)
        let bytes = Array(text.utf8)
        #expect(bytes.withUnsafeBytes { Timestamp.readRFC3339($0) } == expected)
        if case .time(let time) = expected { #expect(Timestamp.parseRFC3339(text) == time) } else { #expect(Timestamp.parseRFC3339(text) == nil) }
    }

    @Test func parsesRawBytes() {
        let bytes = Array("2026-11-22T10:00:00Z".utf8)
        let parsed = bytes.withUnsafeBytes { Timestamp.parseRFC3339($0) }
        #expect(parsed?.nanosecondsSinceEpoch == referenceNanoseconds)
    }

    @Test(arguments: formatCases)
    func formats(nanoseconds: Int64, text: String) {
        let time = Timestamp(nanosecondsSinceEpoch: nanoseconds)
        #expect(time.rfc3339 == text)
        #expect(time.description == text)
    }

    @Test func formatsFixedFractionDigits() {
        let time = Timestamp(nanosecondsSinceEpoch: referenceNanoseconds + 500_000_000)
        #expect(time.rfc3339(fractionDigits: 3) == "2026-11-22T10:00:00.500Z")
        #expect(time.rfc3339(fractionDigits: 0) == "2026-11-22T10:00:00Z")
        #expect(time.rfc3339(fractionDigits: 9) == "2026-11-22T10:00:00.500000000Z")
        #expect(time.rfc3339(fractionDigits: 42) == "2026-11-22T10:00:00.500000000Z")
        let truncated = Timestamp(nanosecondsSinceEpoch: referenceNanoseconds + 999_999_999)
        #expect(truncated.rfc3339(fractionDigits: 3) == "2026-11-22T10:00:00.999Z")
    }

    @Test func formatAndParseRoundTrip() throws {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            let time = Timestamp(nanosecondsSinceEpoch: Int64(bitPattern: generator.next()))
            let parsed = try #require(Timestamp.parseRFC3339(time.rfc3339))
            #expect(parsed == time)
        }
    }

    @Test func codableUsesRFC3339() throws {
        let time = Timestamp(nanosecondsSinceEpoch: referenceNanoseconds + 250_000_000)
        let json = try JSONEncoder().encode([time])
        #expect(String(decoding: json, as: UTF8.self) == #"["2026-11-22T10:00:00.25Z"]"#)
        #expect(try JSONDecoder().decode([Timestamp].self, from: json) == [time])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([Timestamp].self, from: Data(#"["2026-11-22"]"#.utf8))
        }
    }
}

@Suite("Timestamp Unix numbers")
struct TimestampUnixTests {
    @Test func readsSecondsAndMilliseconds() {
        #expect(unix("0")?.nanosecondsSinceEpoch == 0)
        #expect(unix("1795341600")?.nanosecondsSinceEpoch == referenceNanoseconds)
        #expect(unix("1795341600.5")?.nanosecondsSinceEpoch == referenceNanoseconds + 500_000_000)
        #expect(unix("1795341600123")?.nanosecondsSinceEpoch == referenceNanoseconds + 123_000_000)
        #expect(unix("1795341600123.4567")?.nanosecondsSinceEpoch == referenceNanoseconds + 123_456_700)
        #expect(unix("1.7953416e9")?.nanosecondsSinceEpoch == referenceNanoseconds)
        // Below a nanosecond is truncated.
        #expect(unix("1.0000000009")?.nanosecondsSinceEpoch == second)
        #expect(unix("1795341600123.0000009")?.nanosecondsSinceEpoch == referenceNanoseconds + 123_000_000)
    }

    @Test func millisecondThresholdIs1e11() {
        // 10^11 - 1 seconds is past 2262: out of range. 10^11 is read as milliseconds: 1973-03-03.
        #expect(unix("99999999999") == nil)
        #expect(unix("99999999999.999") == nil)
        #expect(unix("100000000000")?.rfc3339 == "1973-03-03T09:46:40Z")
        #expect(Timestamp.unixMillisecondsThreshold == ExactDecimal(100_000_000_000))
    }

    @Test func rejectsNegativeAndHugeValues() {
        #expect(unix("-1") == nil)
        #expect(unix("-0.5") == nil)
        #expect(unix("1e30") == nil)
        #expect(unix("170141183460469231731687303715884105727") == nil)
        #expect(unix("9223372036854775808") == nil)
        #expect(unix("9223372036854.775807")?.nanosecondsSinceEpoch == Int64.max)
        #expect(unix("9223372036854.775808") == nil)
    }
}

@Suite("Timestamp calendar")
struct TimestampCalendarTests {
    @Test func civilFields() throws {
        let time = try #require(Timestamp.parseRFC3339("2024-02-29T12:30:45.000000123Z"))
        #expect(time.civil == CivilDateTime(year: 2024, month: 2, day: 29, hour: 12, minute: 30, second: 45, nanosecond: 123))
        let before = Timestamp(nanosecondsSinceEpoch: -1).civil
        #expect(before == CivilDateTime(year: 1969, month: 12, day: 31, hour: 23, minute: 59, second: 59, nanosecond: 999_999_999))
    }

    @Test func civilInitializerValidates() throws {
        let time = try #require(Timestamp(year: 2026, month: 11, day: 22, hour: 10))
        #expect(time.nanosecondsSinceEpoch == referenceNanoseconds)
        #expect(Timestamp(CivilDateTime(year: 2026, month: 11, day: 22, hour: 10)) == time)
        #expect(Timestamp(year: 2024, month: 2, day: 29) != nil)
        #expect(Timestamp(year: 2023, month: 2, day: 29) == nil)
        #expect(Timestamp(year: 2026, month: 13, day: 1) == nil)
        #expect(Timestamp(year: 2026, month: 0, day: 1) == nil)
        #expect(Timestamp(year: 2026, month: 1, day: 0) == nil)
        #expect(Timestamp(year: 2026, month: 1, day: 1, hour: 24) == nil)
        #expect(Timestamp(year: 2026, month: 1, day: 1, minute: -1) == nil)
        #expect(Timestamp(year: 2026, month: 1, day: 1, second: 60) == nil)
        #expect(Timestamp(year: 2026, month: 1, day: 1, nanosecond: 1_000_000_000) == nil)
        #expect(Timestamp(year: 2263, month: 1, day: 1) == nil)
        #expect(Timestamp(year: 1600, month: 1, day: 1) == nil)
        #expect(Timestamp(year: Int.max, month: 1, day: 1) == nil)
    }

    @Test func weekdaysAreISO() throws {
        #expect(Timestamp(nanosecondsSinceEpoch: 0).weekday == 4)  // Thursday
        #expect(try #require(Timestamp(year: 2026, month: 11, day: 22)).weekday == 7)  // Sunday
        #expect(try #require(Timestamp(year: 2024, month: 2, day: 29, hour: 23)).weekday == 4)
        #expect(try #require(Timestamp(year: 1969, month: 12, day: 28)).weekday == 7)
        #expect(try #require(Timestamp(year: 1969, month: 12, day: 29)).weekday == 1)
        #expect(Timestamp(nanosecondsSinceEpoch: -1).weekday == 3)  // Wednesday 1969-12-31
    }

    @Test func daysInMonth() {
        #expect(Timestamp.daysInMonth(year: 2026, month: 1) == 31)
        #expect(Timestamp.daysInMonth(year: 2026, month: 4) == 30)
        #expect(Timestamp.daysInMonth(year: 2024, month: 2) == 29)
        #expect(Timestamp.daysInMonth(year: 2023, month: 2) == 28)
        #expect(Timestamp.daysInMonth(year: 2000, month: 2) == 29)
        #expect(Timestamp.daysInMonth(year: 2100, month: 2) == 28)
        #expect(Timestamp.daysInMonth(year: 2026, month: 13) == 0)
        #expect(Timestamp.isLeapYear(2000) && !Timestamp.isLeapYear(1900) && Timestamp.isLeapYear(2024))
    }

    @Test func dayNumbersRoundTrip() {
        #expect(Timestamp.daysSinceEpoch(year: 1970, month: 1, day: 1) == 0)
        #expect(Timestamp.daysSinceEpoch(year: 2026, month: 11, day: 22) == 20779)
        #expect(Timestamp.daysSinceEpoch(year: 1677, month: 9, day: 21) == -106_752)
        #expect(Timestamp.daysSinceEpoch(year: 2262, month: 4, day: 11) == 106_751)
        var previous = Timestamp.civilDate(daysSinceEpoch: -106_753)
        var failures: [Int64] = []
        for days in Int64(-106_752)...106_751 {
            let date = Timestamp.civilDate(daysSinceEpoch: days)
            var good = Timestamp.daysSinceEpoch(year: date.year, month: date.month, day: date.day) == days
            // Consecutive days step by one calendar day.
            if date.day != 1 {
                good = good && date.year == previous.year && date.month == previous.month && date.day == previous.day + 1
            } else {
                good = good && previous.day == Timestamp.daysInMonth(year: previous.year, month: previous.month)
                    && (date.month == previous.month % 12 + 1)
            }
            if !good { failures.append(days) }
            previous = date
        }
        #expect(failures.isEmpty)
        #expect(Timestamp(nanosecondsSinceEpoch: -1).daysSinceEpoch == -1)
        #expect(Timestamp(nanosecondsSinceEpoch: referenceNanoseconds).daysSinceEpoch == 20779)
    }

    @Test func arithmeticSaturates() {
        let time = Timestamp(nanosecondsSinceEpoch: referenceNanoseconds)
        #expect(time.adding(nanoseconds: second).nanosecondsSinceEpoch == referenceNanoseconds + second)
        #expect(time.adding(nanoseconds: -second).nanoseconds(since: time) == -second)
        #expect(Timestamp(nanosecondsSinceEpoch: .max - 1).adding(nanoseconds: 5).nanosecondsSinceEpoch == .max)
        #expect(Timestamp(nanosecondsSinceEpoch: .min + 1).adding(nanoseconds: -5).nanosecondsSinceEpoch == .min)
        #expect(Timestamp(nanosecondsSinceEpoch: .max).nanoseconds(since: Timestamp(nanosecondsSinceEpoch: -1)) == .max)
        #expect(Timestamp(nanosecondsSinceEpoch: .min).nanoseconds(since: Timestamp(nanosecondsSinceEpoch: 1)) == .min)
        #expect(Timestamp(nanosecondsSinceEpoch: 1) < Timestamp(nanosecondsSinceEpoch: 2))
    }

    @Test func nowIsTheWallClock() throws {
        let now = Timestamp.now()
        #expect(now > Timestamp(year: 2024, month: 1, day: 1)!)
        #expect(now < Timestamp(year: 2100, month: 1, day: 1)!)
        let foundation = Int64(time(nil))
        #expect(abs(now.nanosecondsSinceEpoch / second - foundation) <= 2)
    }
}
