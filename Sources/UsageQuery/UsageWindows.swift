public import Foundation
public import Metering

/// The length of the windows a usage query splits its range into.
public enum UsageWindow: String, Sendable, CaseIterable {
    case hour, day, month

    var component: Calendar.Component {
        switch self {
        case .hour: .hour
        case .day: .day
        case .month: .month
        }
    }

    /// Parses `hour`, `day` or `month`.
    public static func parse(_ text: String) throws(UsageQueryError) -> UsageWindow {
        guard let window = UsageWindow(rawValue: text) else {
            throw UsageQueryError(.invalidWindow, "window '\(text)' is not a window: use hour, day or month")
        }
        return window
    }
}

/// The windows of one query: consecutive `[start, end)` intervals of a window length in a time
/// zone (a Europe/Berlin day in late March is 23 hours long), every edge on a UTC quarter-hour.
public struct WindowPlan: Sendable {
    /// The query's range and windows.
    public let from: Timestamp
    public let to: Timestamp
    public let window: UsageWindow
    public let timeZone: TimeZone
    /// The window edges: `edges[i] ..< edges[i + 1]` is window i.
    public let edges: [Int64]

    /// The most windows one query may have.
    public static let maximumWindows = 10_000

    /// Splits `[from, to)` into windows, or says why it cannot: `from` and `to` must be window
    /// edges in `timeZone`, `to` after `from`, at most `maximumWindows` windows.
    public init(from: Timestamp, to: Timestamp, window: UsageWindow, timeZone: TimeZone) throws(UsageQueryError) {
        guard from < to else {
            throw UsageQueryError(.invalidRange, "to (\(Self.format(to, in: timeZone))) must be after from (\(Self.format(from, in: timeZone))); to is exclusive")
        }
        let calendar = Self.calendar(timeZone)
        for (name, time) in [("from", from), ("to", to)] {
            let (start, end) = Self.window(window, containing: time, calendar: calendar)
            guard start == time.nanosecondsSinceEpoch else {
                throw UsageQueryError(.unalignedTime, "\(name) \(Self.format(time, in: timeZone)) is not on \(window == .hour ? "an" : "a") \(window.rawValue) edge in \(timeZone.identifier == "GMT" ? "UTC" : timeZone.identifier); the nearest edges are \(Self.format(Timestamp(nanosecondsSinceEpoch: start), in: timeZone)) and \(Self.format(Timestamp(nanosecondsSinceEpoch: end), in: timeZone))")
            }
        }
        let count = calendar.dateComponents([window.component], from: Self.date(from), to: Self.date(to))
            .value(for: window.component) ?? 0
        guard count <= Self.maximumWindows else {
            throw UsageQueryError(.tooManyWindows, "the range holds \(count) \(window.rawValue) windows; a query may have at most \(Self.maximumWindows): narrow the range or use a longer window")
        }
        var edges: [Int64] = [from.nanosecondsSinceEpoch]
        edges.reserveCapacity(count + 1)
        while edges.last! < to.nanosecondsSinceEpoch {
            let next = Self.window(window, containing: Timestamp(nanosecondsSinceEpoch: edges.last!), calendar: calendar).end
            guard next > edges.last!, edges.count <= Self.maximumWindows else {
                throw UsageQueryError(.tooManyWindows, "the range holds more than \(Self.maximumWindows) \(window.rawValue) windows: narrow the range or use a longer window")
            }
            edges.append(next)
        }
        let quarter = 15 * Timestamp.nanosecondsPerMinute
        if let odd = edges.first(where: { $0 % quarter != 0 }) {
            throw UsageQueryError(.unalignedTime, "\(timeZone.identifier) puts a \(window.rawValue) edge at \(Self.format(Timestamp(nanosecondsSinceEpoch: odd), in: timeZone)), which is not on a UTC quarter-hour; usage is kept per quarter-hour, so windows in this zone at that date cannot be exact")
        }
        self.from = from
        self.to = to
        self.window = window
        self.timeZone = timeZone
        self.edges = edges
    }

    /// How many windows.
    public var count: Int { edges.count - 1 }

    /// The zone's IANA name as queries print it (`UTC`, which Foundation calls GMT, stays `UTC`).
    public var zoneName: String { timeZone.identifier == "GMT" ? "UTC" : timeZone.identifier }

    /// The window holding the instant `time` (ns), or nil outside the range.
    public func windowIndex(of time: Int64) -> Int? {
        guard time >= edges[0], time < edges[edges.count - 1] else { return nil }
        var low = 0
        var high = edges.count - 1
        while high - low > 1 {
            let middle = (low + high) / 2
            if edges[middle] <= time { low = middle } else { high = middle }
        }
        return low
    }

    /// The UTC days wholly inside each window, and the quarter-hour ranges around them: the
    /// buckets that sum to the windows exactly, with as few rows as possible.
    func pieces() -> (days: [(from: Int64, to: Int64)], quarters: [(from: Int64, to: Int64)]) {
        let day = Timestamp.nanosecondsPerDay
        var days: [(from: Int64, to: Int64)] = []
        var quarters: [(from: Int64, to: Int64)] = []
        func add(_ list: inout [(from: Int64, to: Int64)], _ from: Int64, _ to: Int64) {
            guard from < to else { return }
            if let last = list.last, last.to == from { list[list.count - 1].to = to } else { list.append((from, to)) }
        }
        for index in 0..<count {
            let start = edges[index], end = edges[index + 1]
            let firstDay = start % day == 0 ? start : start - ((start % day) + day) % day + day
            let lastDay = end - ((end % day) + day) % day
            if firstDay < lastDay {
                add(&quarters, start, firstDay)
                add(&days, firstDay, lastDay)
                add(&quarters, lastDay, end)
            } else {
                add(&quarters, start, end)
            }
        }
        return (days, quarters)
    }

    // MARK: Time zones and text

    /// The IANA zone named `identifier` (default UTC), or an error naming it.
    public static func timeZone(_ identifier: String?) throws(UsageQueryError) -> TimeZone {
        guard let identifier, !identifier.isEmpty else { return TimeZone(identifier: "UTC")! }
        guard let zone = TimeZone(identifier: identifier) else {
            throw UsageQueryError(.unknownTimeZone, "time zone '\(identifier)' is not an IANA time zone this machine knows: use a name like UTC, Europe/Berlin or America/New_York")
        }
        return zone
    }

    /// An RFC 3339 time, or a date (`2026-03-29`: its midnight in `timeZone`).
    public static func parseTime(_ text: String, name: String, in timeZone: TimeZone) throws(UsageQueryError) -> Timestamp {
        if let time = Timestamp.parseRFC3339(text) { return time }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
           let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
           let date = calendar(timeZone).date(from: DateComponents(year: year, month: month, day: day)),
           calendar(timeZone).dateComponents([.year, .month, .day], from: date) == DateComponents(year: year, month: month, day: day) {
            return Timestamp(nanosecondsSinceEpoch: Int64(date.timeIntervalSince1970.rounded()) * Timestamp.nanosecondsPerSecond)
        }
        throw UsageQueryError(.invalidTime, "\(name) '\(text)' is not a time: write RFC 3339 (2026-03-29T00:00:00Z, 2026-03-29T00:00:00+02:00) or a date (2026-03-29, midnight in the query's time zone)")
    }

    /// `time` in RFC 3339 with the zone's offset at that instant (`Z` for UTC).
    public static func format(_ time: Timestamp, in timeZone: TimeZone) -> String {
        let seconds = time.nanosecondsSinceEpoch / Timestamp.nanosecondsPerSecond
        let offset = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
        guard offset != 0 else { return time.rfc3339 }
        let local = Timestamp(nanosecondsSinceEpoch: time.nanosecondsSinceEpoch + Int64(offset) * Timestamp.nanosecondsPerSecond).rfc3339
        let magnitude = abs(offset)
        let sign = offset < 0 ? "-" : "+"
        let hours = magnitude / 3600, minutes = magnitude % 3600 / 60
        return local.dropLast() + sign + (hours < 10 ? "0" : "") + String(hours) + ":" + (minutes < 10 ? "0" : "") + String(minutes)
    }

    private static func calendar(_ timeZone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }

    private static func date(_ time: Timestamp) -> Date {
        Date(timeIntervalSince1970: TimeInterval(time.nanosecondsSinceEpoch / Timestamp.nanosecondsPerSecond))
            + TimeInterval(time.nanosecondsSinceEpoch % Timestamp.nanosecondsPerSecond) / 1e9
    }

    /// The window of `length` in `calendar`'s zone that holds `time`: its start and end (ns).
    private static func window(_ length: UsageWindow, containing time: Timestamp, calendar: Calendar) -> (start: Int64, end: Int64) {
        let seconds = Int64((Double(time.nanosecondsSinceEpoch) / 1e9).rounded(.down))
        guard let interval = calendar.dateInterval(of: length.component, for: Date(timeIntervalSince1970: TimeInterval(seconds))) else {
            return (time.nanosecondsSinceEpoch, time.nanosecondsSinceEpoch)
        }
        let start = Int64(interval.start.timeIntervalSince1970.rounded()) * Timestamp.nanosecondsPerSecond
        let end = Int64(interval.end.timeIntervalSince1970.rounded()) * Timestamp.nanosecondsPerSecond
        return (start, end)
    }
}
