import Metering
import Testing

// An independent, deliberately naive calendar for the expectations: it counts days year by year and
// month by month, sharing no code with BillingPeriod's arithmetic.

private func naiveIsLeap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

private func naiveMonthLength(_ year: Int, _ month: Int) -> Int {
    [31, naiveIsLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
}

private func naiveDays(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
    var days: Int64 = 0
    if year >= 1970 {
        for y in 1970..<year { days += naiveIsLeap(y) ? 366 : 365 }
    } else {
        for y in year..<1970 { days -= naiveIsLeap(y) ? 366 : 365 }
    }
    for m in 1..<month { days += Int64(naiveMonthLength(year, m)) }
    return days + Int64(day - 1)
}

private func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

private let nanosecondsPerSecond: Int64 = 1_000_000_000

/// A UTC instant.
private func at(_ year: Int, _ month: Int, _ day: Int, _ hour: Int64 = 0, _ minute: Int64 = 0, _ second: Int64 = 0,
                nanoseconds: Int64 = 0) -> Timestamp {
    let seconds = naiveDays(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
    return Timestamp(nanosecondsSinceEpoch: seconds * nanosecondsPerSecond + nanoseconds)
}

private func justBefore(_ timestamp: Timestamp) -> Timestamp {
    Timestamp(nanosecondsSinceEpoch: timestamp.nanosecondsSinceEpoch - 1)
}

private func anchor(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> BillingPeriod.Anchor {
    try #require(BillingPeriod.Anchor(text), sourceLocation: sourceLocation)
}

private func expectInterval(
    _ interval: PeriodInterval, _ label: String, from start: Timestamp, to end: Timestamp,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(interval.label == label, sourceLocation: sourceLocation)
    #expect(interval.start == start, "start", sourceLocation: sourceLocation)
    #expect(interval.end == end, "end", sourceLocation: sourceLocation)
}

@Suite struct MonthlyPeriodTests {
    let period = BillingPeriod.monthly

    @Test func calendarMonths() {
        expectInterval(period.interval(containing: at(2026, 11, 22, 10)), "2026-11", from: at(2026, 11, 1), to: at(2026, 12, 1))
    }

    @Test func aBoundaryBelongsToThePeriodStartingThere() {
        expectInterval(period.interval(containing: at(2026, 12, 1)), "2026-12", from: at(2026, 12, 1), to: at(2027, 1, 1))
        expectInterval(period.interval(containing: justBefore(at(2026, 12, 1))), "2026-11", from: at(2026, 11, 1), to: at(2026, 12, 1))
    }

    @Test func decemberEndsAtTheNewYear() {
        expectInterval(period.interval(containing: at(2026, 12, 31, 23, 59, 59)), "2026-12", from: at(2026, 12, 1), to: at(2027, 1, 1))
    }

    @Test func februaryInLeapAndCommonYears() {
        expectInterval(period.interval(containing: at(2028, 2, 29, 12)), "2028-02", from: at(2028, 2, 1), to: at(2028, 3, 1))
        expectInterval(period.interval(containing: at(2026, 2, 28, 12)), "2026-02", from: at(2026, 2, 1), to: at(2026, 3, 1))
        expectInterval(period.interval(containing: at(2100, 2, 28, 12)), "2100-02", from: at(2100, 2, 1), to: at(2100, 3, 1))
        expectInterval(period.interval(containing: at(2000, 2, 29)), "2000-02", from: at(2000, 2, 1), to: at(2000, 3, 1))
    }

    @Test func anchorOnThe31stClampsToShortMonths() throws {
        let period = BillingPeriod(kind: .monthly, anchor: try anchor("2026-01-31"))
        expectInterval(period.interval(containing: at(2026, 2, 15)), "2026-01-31", from: at(2026, 1, 31), to: at(2026, 2, 28))
        expectInterval(period.interval(containing: at(2026, 2, 28)), "2026-02-28", from: at(2026, 2, 28), to: at(2026, 3, 31))
        expectInterval(period.interval(containing: at(2026, 3, 30)), "2026-02-28", from: at(2026, 2, 28), to: at(2026, 3, 31))
        expectInterval(period.interval(containing: at(2026, 4, 30, 1)), "2026-04-30", from: at(2026, 4, 30), to: at(2026, 5, 31))
        expectInterval(period.interval(containing: at(2028, 2, 29)), "2028-02-29", from: at(2028, 2, 29), to: at(2028, 3, 31))
        expectInterval(period.interval(containing: at(2028, 2, 28)), "2028-01-31", from: at(2028, 1, 31), to: at(2028, 2, 29))
    }

    @Test func anchoredPeriodsFollowEachOther() throws {
        let period = BillingPeriod(kind: .monthly, anchor: try anchor("2025-05-31"))
        var interval = period.interval(containing: at(2026, 1, 31))
        var labels = [interval.label]
        for _ in 0..<6 {
            interval = period.next(interval)
            labels.append(interval.label)
        }
        #expect(labels == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30", "2026-07-31"])
    }

    @Test func anchorMidMonthCrossesTheYear() throws {
        let period = BillingPeriod(kind: .monthly, anchor: try anchor("2026-01-15"))
        expectInterval(period.interval(containing: justBefore(at(2026, 11, 15))), "2026-10-15", from: at(2026, 10, 15), to: at(2026, 11, 15))
        expectInterval(period.interval(containing: at(2026, 11, 15)), "2026-11-15", from: at(2026, 11, 15), to: at(2026, 12, 15))
        expectInterval(period.interval(containing: at(2027, 1, 2)), "2026-12-15", from: at(2026, 12, 15), to: at(2027, 1, 15))
    }

    @Test func everyMonthFrom1900To2261HasItsBounds() {
        // Covers a leap century (2000) and common ones (1900, 2100, 2200).
        var day = naiveDays(1900, 1, 1)
        for year in 1900..<2262 {  // Int64 nanoseconds end in April 2262
            for month in 1...12 {
                let expectedLabel = "\(year)-\(twoDigits(month))"
                let start = Timestamp(nanosecondsSinceEpoch: day * 86_400 * nanosecondsPerSecond)
                day += Int64(naiveMonthLength(year, month))
                let end = Timestamp(nanosecondsSinceEpoch: day * 86_400 * nanosecondsPerSecond)
                let interval = period.interval(containing: justBefore(end))
                if interval.label != expectedLabel || interval.start != start || interval.end != end {
                    Issue.record("\(year)-\(month): got \(interval.label) \(interval.start)..<\(interval.end)")
                    return
                }
            }
        }
    }
}

@Suite struct DailyPeriodTests {
    let period = BillingPeriod.daily

    @Test func midnightToMidnight() {
        expectInterval(period.interval(containing: at(2026, 11, 22, 10)), "2026-11-22", from: at(2026, 11, 22), to: at(2026, 11, 23))
        expectInterval(period.interval(containing: at(2026, 11, 23)), "2026-11-23", from: at(2026, 11, 23), to: at(2026, 11, 24))
        expectInterval(period.interval(containing: at(2028, 2, 29, 23, 59, 59, nanoseconds: 999_999_999)), "2028-02-29",
                       from: at(2028, 2, 29), to: at(2028, 3, 1))
        expectInterval(period.interval(containing: at(2026, 12, 31, 18)), "2026-12-31", from: at(2026, 12, 31), to: at(2027, 1, 1))
    }

    @Test func everyDayFrom1900To2100HasItsDate() {
        var expected: (year: Int, month: Int, day: Int) = (1900, 1, 1)
        var dayNumber = naiveDays(1900, 1, 1)
        while expected.year < 2100 {
            let label = "\(expected.year)-\(twoDigits(expected.month))-\(twoDigits(expected.day))"
            let noon = Timestamp(nanosecondsSinceEpoch: (dayNumber * 86_400 + 43_200) * nanosecondsPerSecond)
            let interval = period.interval(containing: noon)
            if interval.label != label || interval.start.nanosecondsSinceEpoch != dayNumber * 86_400 * nanosecondsPerSecond {
                Issue.record("day \(dayNumber): expected \(label), got \(interval.label)")
                return
            }
            dayNumber += 1
            expected.day += 1
            if expected.day > naiveMonthLength(expected.year, expected.month) {
                expected.day = 1
                expected.month += 1
                if expected.month > 12 { expected = (expected.year + 1, 1, 1) }
            }
        }
    }
}

@Suite struct WeeklyPeriodTests {
    @Test func weeksStartOnMonday() {
        let period = BillingPeriod.weekly
        // 2026-11-16 is a Monday.
        expectInterval(period.interval(containing: at(2026, 11, 22, 23)), "2026-11-16", from: at(2026, 11, 16), to: at(2026, 11, 23))
        expectInterval(period.interval(containing: at(2026, 11, 16)), "2026-11-16", from: at(2026, 11, 16), to: at(2026, 11, 23))
        expectInterval(period.interval(containing: justBefore(at(2026, 11, 16))), "2026-11-09", from: at(2026, 11, 9), to: at(2026, 11, 16))
        // 1970-01-01 was a Thursday: its week began on Monday 1969-12-29.
        expectInterval(period.interval(containing: at(1970, 1, 1)), "1969-12-29", from: at(1969, 12, 29), to: at(1970, 1, 5))
    }

    @Test func aWeekCanSpanTheNewYear() {
        expectInterval(BillingPeriod.weekly.interval(containing: at(2026, 12, 31)), "2026-12-28", from: at(2026, 12, 28), to: at(2027, 1, 4))
    }

    @Test func anAnchorSetsTheWeekday() throws {
        // 2026-11-18 is a Wednesday; the anchor's year does not matter, only its weekday.
        let period = BillingPeriod(kind: .weekly, anchor: try anchor("2026-11-18"))
        expectInterval(period.interval(containing: at(2026, 11, 17, 12)), "2026-11-11", from: at(2026, 11, 11), to: at(2026, 11, 18))
        expectInterval(period.interval(containing: at(2026, 11, 18)), "2026-11-18", from: at(2026, 11, 18), to: at(2026, 11, 25))
        expectInterval(period.interval(containing: at(2020, 1, 1)), "2020-01-01", from: at(2020, 1, 1), to: at(2020, 1, 8))
    }

    @Test func everyWeekIsSevenDaysAndStartsOnTheAnchorWeekday() throws {
        let period = BillingPeriod(kind: .weekly, anchor: try anchor("1999-12-26"))  // a Sunday
        var interval = period.interval(containing: at(1960, 1, 1))
        for _ in 0..<5_000 {
            let next = period.next(interval)
            #expect(next.start == interval.end)
            #expect(next.end.nanosecondsSinceEpoch - next.start.nanosecondsSinceEpoch == 7 * 86_400 * nanosecondsPerSecond)
            // A Sunday is 3 days after a Thursday (1970-01-01), so day numbers ≡ 3 (mod 7).
            let dayNumber = next.start.nanosecondsSinceEpoch / (86_400 * nanosecondsPerSecond)
            #expect(((dayNumber % 7) + 7) % 7 == 3)
            interval = next
        }
    }
}

@Suite struct YearlyPeriodTests {
    @Test func calendarYears() {
        let period = BillingPeriod.yearly
        expectInterval(period.interval(containing: at(2026, 7, 4)), "2026", from: at(2026, 1, 1), to: at(2027, 1, 1))
        expectInterval(period.interval(containing: at(2027, 1, 1)), "2027", from: at(2027, 1, 1), to: at(2028, 1, 1))
        expectInterval(period.interval(containing: justBefore(at(2027, 1, 1))), "2026", from: at(2026, 1, 1), to: at(2027, 1, 1))
        let leap = period.interval(containing: at(2028, 12, 31))
        #expect(leap.end.nanosecondsSinceEpoch - leap.start.nanosecondsSinceEpoch == 366 * 86_400 * nanosecondsPerSecond)
    }

    @Test func aLeapDayAnchorClampsInCommonYears() throws {
        let period = BillingPeriod(kind: .yearly, anchor: try anchor("2024-02-29"))
        expectInterval(period.interval(containing: at(2026, 3, 1)), "2026-02-28", from: at(2026, 2, 28), to: at(2027, 2, 28))
        expectInterval(period.interval(containing: at(2027, 2, 27)), "2026-02-28", from: at(2026, 2, 28), to: at(2027, 2, 28))
        expectInterval(period.interval(containing: at(2028, 2, 29)), "2028-02-29", from: at(2028, 2, 29), to: at(2029, 2, 28))
        expectInterval(period.interval(containing: at(2028, 2, 28)), "2027-02-28", from: at(2027, 2, 28), to: at(2028, 2, 29))
    }

    @Test func aMidYearAnchor() throws {
        let period = BillingPeriod(kind: .yearly, anchor: try anchor("2020-07-01"))
        expectInterval(period.interval(containing: at(2026, 6, 30, 23)), "2025-07-01", from: at(2025, 7, 1), to: at(2026, 7, 1))
        expectInterval(period.interval(containing: at(2026, 7, 1)), "2026-07-01", from: at(2026, 7, 1), to: at(2027, 7, 1))
    }
}

@Suite struct PeriodLabelTests {
    @Test func monthlyLabels() throws {
        let november = try #require(BillingPeriod.monthly.interval(label: "2026-11"))
        expectInterval(november, "2026-11", from: at(2026, 11, 1), to: at(2026, 12, 1))
        #expect(BillingPeriod.monthly.interval(label: "2026-11-22") == november)
        #expect(BillingPeriod.monthly.interval(label: "2026")?.label == "2026-01")
    }

    @Test func labelsOfOtherKinds() {
        #expect(BillingPeriod.daily.interval(label: "2026-11-22")?.label == "2026-11-22")
        #expect(BillingPeriod.daily.interval(label: "2026-11")?.label == "2026-11-01")
        #expect(BillingPeriod.weekly.interval(label: "2026-11-22")?.label == "2026-11-16")
        #expect(BillingPeriod.yearly.interval(label: "2026-11-22")?.label == "2026")
        #expect(BillingPeriod.yearly.interval(label: "1969")?.start == at(1969, 1, 1))
    }

    @Test func anchoredLabelsNameTheContainingPeriod() throws {
        let period = BillingPeriod(kind: .monthly, anchor: try anchor("2026-01-15"))
        #expect(period.interval(label: "2026-11")?.label == "2026-10-15")
        #expect(period.interval(label: "2026-11-15")?.label == "2026-11-15")
    }

    @Test func everyLabelNamesItsOwnInterval() throws {
        let periods = [
            BillingPeriod.daily, .weekly, .monthly, .yearly,
            BillingPeriod(kind: .monthly, anchor: try anchor("2026-01-31")),
            BillingPeriod(kind: .yearly, anchor: try anchor("2024-02-29")),
        ]
        for period in periods {
            var interval = period.interval(containing: at(2023, 12, 30))
            for _ in 0..<60 {
                #expect(period.interval(label: interval.label) == interval, "\(period): \(interval.label)")
                interval = period.next(interval)
            }
        }
    }

    @Test(arguments: [
        "", "2026-13", "2026-00", "2026-02-30", "2027-02-29", "26-11", "2026-1", "2026-11-", "2026-11-1", "abcd",
        "2026/11", "+2026", "2026-11-22T00:00", " 2026", "20261", "0001", "9999-12-31",
    ])
    func malformedOrUnrepresentableLabelsAreNil(label: String) {
        #expect(BillingPeriod.monthly.interval(label: label) == nil)
    }

    @Test func aLeapDayLabelIsValidInLeapYears() {
        #expect(BillingPeriod.daily.interval(label: "2028-02-29")?.start == at(2028, 2, 29))
    }
}

@Suite struct PeriodNavigationTests {
    @Test func nextAndPreviousCrossTheYear() {
        let december = BillingPeriod.monthly.interval(containing: at(2026, 12, 5))
        let january = BillingPeriod.monthly.next(december)
        expectInterval(january, "2027-01", from: at(2027, 1, 1), to: at(2027, 2, 1))
        #expect(BillingPeriod.monthly.previous(january) == december)
        #expect(BillingPeriod.yearly.previous(BillingPeriod.yearly.interval(containing: at(2026, 1, 1))).label == "2025")
    }

    @Test func periodsTileTimeWithoutGaps() throws {
        let periods = [
            BillingPeriod.daily, .weekly, .monthly, .yearly,
            BillingPeriod(kind: .monthly, anchor: try anchor("2026-01-29")),
            BillingPeriod(kind: .yearly, anchor: try anchor("2024-02-29")),
        ]
        for period in periods {
            var interval = period.interval(containing: at(1968, 6, 1))
            while interval.end.nanosecondsSinceEpoch < at(2200, 1, 1).nanosecondsSinceEpoch {
                let next = period.next(interval)
                #expect(next.start == interval.end, "\(period) after \(interval.label)")
                #expect(period.previous(next) == interval, "\(period) before \(next.label)")
                #expect(next.contains(next.start) && !next.contains(next.end) && !next.contains(justBefore(next.start)))
                interval = next
            }
        }
    }

    @Test func timesBefore1970Work() {
        let t = at(1969, 12, 31, 23, 59, 59, nanoseconds: 999_999_999)
        #expect(BillingPeriod.monthly.interval(containing: t).label == "1969-12")
        #expect(BillingPeriod.daily.interval(containing: t).label == "1969-12-31")
        #expect(BillingPeriod.yearly.interval(containing: at(1800, 3, 1)).label == "1800")
        expectInterval(BillingPeriod.monthly.interval(containing: at(1800, 2, 10)), "1800-02", from: at(1800, 2, 1), to: at(1800, 3, 1))
    }

    @Test func theEdgesOfTimestampDoNotCrash() {
        let latest = Timestamp(nanosecondsSinceEpoch: .max)  // 2262-04-11T23:47:16Z
        let earliest = Timestamp(nanosecondsSinceEpoch: .min)  // 1677-09-21T00:12:43Z
        for period in [BillingPeriod.daily, .weekly, .monthly, .yearly] {
            let last = period.interval(containing: latest)
            #expect(last.end == latest, "clamped")
            #expect(last.start.nanosecondsSinceEpoch <= latest.nanosecondsSinceEpoch)
            _ = period.next(last)
            let first = period.interval(containing: earliest)
            #expect(first.start == earliest, "clamped")
            #expect(first.contains(earliest))
            _ = period.previous(first)
        }
        #expect(BillingPeriod.monthly.interval(containing: latest).label == "2262-04")
        #expect(BillingPeriod.daily.interval(containing: earliest).label == "1677-09-21")
    }
}

@Suite struct BillingAnchorTests {
    @Test func anchorsAreValidDates() {
        #expect(BillingPeriod.Anchor(year: 2026, month: 2, day: 29) == nil)
        #expect(BillingPeriod.Anchor(year: 2028, month: 2, day: 29) != nil)
        #expect(BillingPeriod.Anchor(year: 2026, month: 4, day: 31) == nil)
        #expect(BillingPeriod.Anchor(year: 2026, month: 0, day: 1) == nil)
        #expect(BillingPeriod.Anchor(year: 2026, month: 1, day: 0) == nil)
        #expect(BillingPeriod.Anchor("2026-01-31")?.day == 31)
        #expect(BillingPeriod.Anchor("2026-01")  == nil)
        #expect(BillingPeriod.Anchor("2026-01-31")?.description == "2026-01-31")
    }

    @Test func descriptions() throws {
        #expect(BillingPeriod.monthly.description == "monthly")
        #expect(BillingPeriod(kind: .yearly, anchor: try anchor("2026-07-01")).description == "yearly from 2026-07-01")
        #expect(BillingPeriod.monthly.interval(containing: at(2026, 11, 2)).description == "2026-11")
    }
}
