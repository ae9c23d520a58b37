/// Durations as the config file writes them: a whole number and a unit, `2ms`, `5m`, `35d`.
///
/// ```swift
/// try DurationText.parse("2ms")                 // 2_000_000 (nanoseconds)
/// DurationText.format(nanoseconds: 3_024_000_000_000_000) // "35d"
/// ```
/// Units: `ns`, `us`, `ms`, `s`, `m` (minutes), `h`, `d` (24 hours). A bare `0` is zero.
public enum DurationText {
    /// The units, in the order error messages list them.
    public static let unitNames: [String] = units.map(\.name)

    private static let units: [(name: String, nanoseconds: Int64)] = [
        ("ns", 1),
        ("us", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ]

    /// Reads a duration such as `2ms` or `35d` into nanoseconds.
    ///
    /// - Throws: `DurationTextError` whose message says what to write instead.
    public static func parse(_ text: String) throws(DurationTextError) -> Int64 {
        let bytes = Array(text.utf8)
        let digitCount = bytes.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }.count
        let unitText = String(decoding: bytes[digitCount...], as: UTF8.self)
        let example = "for example 2ms, 5m or 35d"

        if bytes.isEmpty {
            throw DurationTextError(text: text, message: "the duration is empty; write a whole number and a unit, \(example)")
        }
        if bytes.first == UInt8(ascii: "-") {
            throw DurationTextError(text: text, message: "durations cannot be negative; write a positive one, \(example)")
        }
        if digitCount == 0 {
            throw DurationTextError(
                text: text,
                message: "\"\(text)\" is not a duration; write a whole number and a unit (\(unitList)), \(example)"
            )
        }
        if unitText.first == "." || unitText.first == "," {
            throw DurationTextError(
                text: text,
                message: "\"\(text)\" is not a whole number; use a smaller unit instead of a fraction, e.g. 90m, not 1.5h"
            )
        }
        var amount: Int64 = 0
        for digit in bytes[..<digitCount] {
            let (times10, overflow1) = amount.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int64(digit - UInt8(ascii: "0")))
            if overflow1 || overflow2 { throw tooLong(text) }
            amount = sum
        }
        if unitText.isEmpty {
            if amount == 0 { return 0 }
            throw DurationTextError(
                text: text,
                message: "\"\(text)\" has no unit; add one of \(unitList), e.g. \(text)s or \(text)ms"
            )
        }
        guard let unit = units.first(where: { $0.name == unitText }) else {
            throw DurationTextError(
                text: text,
                message: "\"\(text)\" has an unknown unit \"\(unitText)\"; use one of \(unitList), \(example)"
            )
        }
        let (nanoseconds, overflow) = amount.multipliedReportingOverflow(by: unit.nanoseconds)
        if overflow { throw tooLong(text) }
        return nanoseconds
    }

    /// Writes nanoseconds in the largest unit that states them exactly: `2ms`, `35d`, `90m`, `0s`.
    /// `parse(format(n)) == n` for every `n >= 0`.
    public static func format(nanoseconds: Int64) -> String {
        if nanoseconds == 0 { return "0s" }
        let sign = nanoseconds < 0 ? "-" : ""
        let magnitude = nanoseconds.magnitude
        for unit in units.reversed() where magnitude % UInt64(unit.nanoseconds) == 0 {
            return "\(sign)\(magnitude / UInt64(unit.nanoseconds))\(unit.name)"
        }
        return "\(sign)\(magnitude)ns"
    }

    private static var unitList: String { unitNames.joined(separator: ", ") }

    private static func tooLong(_ text: String) -> DurationTextError {
        DurationTextError(text: text, message: "\"\(text)\" is too long; durations go up to 106751d (about 292 years)")
    }
}

/// A duration text that could not be read; `message` says what to write instead.
public struct DurationTextError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The text as written.
    public var text: String
    /// What is wrong and what to write instead.
    public var message: String

    /// Creates an error for `text`.
    public init(text: String, message: String) {
        self.text = text
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
