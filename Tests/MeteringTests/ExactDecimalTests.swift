import Foundation
import Metering
import Testing

/// Parses test input that must be valid.
private func d(_ text: String) -> ExactDecimal {
    guard let value = ExactDecimal(text) else { fatalError("test input \(text) is not a decimal") }
    return value
}

private func parseReason(_ text: String) -> DecimalParseError.Reason? {
    var text = text
    return text.withUTF8 { buffer -> DecimalParseError.Reason? in
        do throws(DecimalParseError) {
            _ = try ExactDecimal.parse(UnsafeRawBufferPointer(buffer))
            return nil
        } catch {
            return error.reason
        }
    }
}

@Suite("ExactDecimal parsing")
struct ExactDecimalParsingTests {
    @Test(arguments: [
        ("0", Int128(0), 0), ("-0", 0, 0), ("0.000", 0, 0), ("0e99999999999999", 0, 0), ("1", 1, 0),
        ("1.0", 1, 0), ("1.50", 15, 1), ("-2.5", -25, 1), ("100", 100, 0), ("1e3", 1000, 0),
        ("1E+2", 100, 0), ("1.5e-3", 15, 4), ("0.1e1", 1, 0), ("10.05", 1005, 2),
        ("0.000000000001", 1, 12), ("1e-36", 1, 36), ("1e38", Int128(10).power(38), 0),
        ("1.5000000000000000000000000000000000000000000000000", 15, 1),
        ("10000000000000000000000000000000000000000e-10", Int128(10).power(30), 0),
        ("0.00000000000000000000000000000000000000000000000000e5", 0, 0),
        ("170141183460469231731687303715884105727", Int128.max, 0),
        ("-170141183460469231731687303715884105727", -Int128.max, 0),
    ])
    func parsesExactly(text: String, significand: Int128, scale: Int) throws {
        let value = try #require(ExactDecimal(text))
        #expect(value.significand == significand)
        #expect(value.scale == scale)
    }

    @Test(arguments: [
        "", "-", "+1", "01", "-01", "00", "1.", ".5", "-.5", "NaN", "Infinity", "-Infinity", " 1", "1 ", "1e",
        "1e+", "1E-", "1.2.3", "0x10", "1,5", "--1", "1e1.5", "1ee2", "one", "\u{200B}1", "1_000",
        "99999999999999999999999999999999999999999999x",
    ])
    func rejectsBadSyntax(text: String) {
        #expect(ExactDecimal(text) == nil)
        #expect(parseReason(text) == .syntax)
    }

    @Test(arguments: [
        "170141183460469231731687303715884105728", "-170141183460469231731687303715884105728", "1e39", "2e38",
        "1e-37", "0.0000000000000000000000000000000000001", "123456789012345678901234567890123456789012",
        "1e999999999999999999999", "1e-999999999999999999", "1.00000000000000000000000000000000000001",
        "-1.70141183460469231731687303715884105727",
    ])
    func rejectsOutOfRange(text: String) {
        #expect(ExactDecimal(text) == nil)
        #expect(parseReason(text) == .outOfRange)
    }

    @Test func syntaxErrorReportsOffset() {
        var text = "12.x"
        let error = text.withUTF8 { buffer -> DecimalParseError? in
            do throws(DecimalParseError) {
                _ = try ExactDecimal.parse(UnsafeRawBufferPointer(buffer))
                return nil
            } catch {
                return error
            }
        }
        #expect(error?.reason == .syntax)
        #expect(error?.offset == 3)
        #expect(error?.message.contains("digit") == true)
    }

    @Test func parsesSubstrings() {
        let line = "value=12.50;"
        let slice = line.dropFirst(6).dropLast()
        #expect(ExactDecimal(slice) == d("12.5"))
    }

    @Test func initializersNormalize() {
        let value = ExactDecimal(significand: 1500, scale: 3)
        #expect(value.significand == 15)
        #expect(value.scale == 1)
        #expect(value.fractionalDigitCount == 1)
        #expect(ExactDecimal(significand: 0, scale: 7) == .zero)
        #expect(ExactDecimal(significand: 0, scale: 7).scale == 0)
        #expect(ExactDecimal(-42) == d("-42"))
        let literal: ExactDecimal = 1000
        #expect(literal == d("1e3"))
        #expect(ExactDecimal(significand: Int128(10).power(38), scale: 38) == 1)
    }
}

@Suite("ExactDecimal text")
struct ExactDecimalTextTests {
    @Test(arguments: [
        ("0", "0"), ("-0", "0"), ("0.1", "0.1"), ("1000", "1000"), ("1e3", "1000"), ("-2.50", "-2.5"),
        ("0.000000000001", "0.000000000001"), ("-0.05", "-0.05"), ("123.456", "123.456"),
        ("170141183460469231731687303715884105727", "170141183460469231731687303715884105727"),
        ("-170141183460469231731687303715884105727", "-170141183460469231731687303715884105727"),
        ("1.70141183460469231731687303715884105727e2", "170.141183460469231731687303715884105727"),
        ("18446744073709551616", "18446744073709551616"), ("1e-36", "0." + String(repeating: "0", count: 35) + "1"),
        ("10000000000000000000.5", "10000000000000000000.5"),
    ])
    func canonicalDescription(input: String, expected: String) {
        #expect(d(input).description == expected)
        // Canonical text parses back to the same value.
        #expect(ExactDecimal(expected) == d(input))
    }

    @Test func formattedPadsWithoutRounding() {
        #expect(d("30").formatted(minimumScale: 2) == "30.00")
        #expect(d("0").formatted(minimumScale: 2) == "0.00")
        #expect(d("-0.5").formatted(minimumScale: 3) == "-0.500")
        #expect(d("1.23456").formatted(minimumScale: 2) == "1.23456")
        #expect(d("0.001").formatted(minimumScale: 2) == "0.001")
        #expect(d("7").formatted(minimumScale: 0) == "7")
        #expect(d("7").formatted(minimumScale: -3) == "7")
    }
}

@Suite("ExactDecimal arithmetic")
struct ExactDecimalArithmeticTests {
    @Test func tenthsSumExactly() throws {
        var sum = ExactDecimal.zero
        for _ in 0..<10 { sum = try sum.adding(d("0.1")) }
        #expect(sum == 1)
        #expect(sum.scale == 0)
        #expect(try d("0.1").adding(d("0.2")) == d("0.3"))
    }

    @Test func addsAndSubtractsAcrossScales() throws {
        #expect(try d("1.25").adding(d("-0.25")) == 1)
        #expect(try d("1").subtracting(d("0.001")) == d("0.999"))
        #expect(try d("-5").subtracting(d("-5.5")) == d("0.5"))
        #expect(try d("0.5").subtracting(d("0.5")) == .zero)
        #expect(try d("123456789.123456789").adding(d("0.876543211")) == d("123456790"))
    }

    @Test func wideAdditionAvoidsFalseOverflow() throws {
        // Aligning 2e37 to scale 1 overflows Int128, but the exact sum fits.
        let a = d("20000000000000000000000000000000000000")
        let b = d("-14999999999999999999999999999999999999.9")
        let sum = try a.adding(b)
        #expect(sum == d("5000000000000000000000000000000000000.1"))
        #expect(try b.adding(a) == sum)
        #expect(try a.subtracting(b.negated()) == sum)
    }

    @Test func additionOverflowThrows() {
        let max = ExactDecimal(significand: .max, scale: 0)
        #expect(throws: DecimalOverflow.self) { try max.adding(1) }
        #expect(throws: DecimalOverflow.self) { try max.negated().subtracting(1) }
        #expect(throws: DecimalOverflow.self) { try max.adding(d("0.5")) }
        #expect((try? max.subtracting(max)) == .zero)
    }

    @Test func multipliesExactly() throws {
        #expect(try d("1.5").multiplied(by: d("1.5")) == d("2.25"))
        #expect(try d("0.002").multiplied(by: 1000) == 2)
        #expect(try d("-0.5").multiplied(by: d("0.2")) == d("-0.1"))
        #expect(try d("0").multiplied(by: d("-3.7")) == .zero)
        #expect(try d("1e-18").multiplied(by: d("1e-18")) == d("1e-36"))
        // Wide path: the raw product overflows Int128 but normalizes into range.
        let big = d("10000000000000000000000000")  // 1e25
        #expect(try big.multiplied(by: d("1e-20")) == d("100000"))
        let product = try d("12345678901234567890.000000000000000001").multiplied(by: d("1e10"))
        #expect(product == d("123456789012345678900000000000.00000001"))
    }

    @Test func multiplicationOverflowThrows() {
        #expect(throws: DecimalOverflow.self) { try d("1e-20").multiplied(by: d("1e-20")) }
        #expect(throws: DecimalOverflow.self) { try d("1e20").multiplied(by: d("1e20")) }
        let max = ExactDecimal(significand: .max, scale: 0)
        #expect(throws: DecimalOverflow.self) { try max.multiplied(by: -2) }
        #expect((try? max.multiplied(by: -1)) == max.negated())
    }

    @Test(arguments: [
        (RoundingRule.up, "0.34", "-0.34"), (.down, "0.33", "-0.33"), (.ceiling, "0.34", "-0.33"),
        (.floor, "0.33", "-0.34"), (.halfAwayFromZero, "0.33", "-0.33"), (.halfEven, "0.33", "-0.33"),
    ])
    func dividesOneThird(rule: RoundingRule, positive: String, negative: String) throws {
        #expect(try ExactDecimal(1).divided(by: 3, scale: 2, rounding: rule) == d(positive))
        #expect(try ExactDecimal(-1).divided(by: 3, scale: 2, rounding: rule) == d(negative))
        #expect(try ExactDecimal(1).divided(by: -3, scale: 2, rounding: rule) == d(negative))
    }

    @Test func divisionTiesFollowTheRule() throws {
        #expect(try ExactDecimal(1).divided(by: 8, scale: 2, rounding: .halfEven) == d("0.12"))
        #expect(try ExactDecimal(1).divided(by: 8, scale: 2, rounding: .halfAwayFromZero) == d("0.13"))
        #expect(try ExactDecimal(3).divided(by: 8, scale: 2, rounding: .halfEven) == d("0.38"))
        #expect(try ExactDecimal(-3).divided(by: 8, scale: 2, rounding: .halfAwayFromZero) == d("-0.38"))
        #expect(try ExactDecimal(10).divided(by: 4, scale: 0, rounding: .halfEven) == 2)
        #expect(try ExactDecimal(10).divided(by: 4, scale: 0, rounding: .halfAwayFromZero) == 3)
        #expect(try ExactDecimal(2).divided(by: 3, scale: 2, rounding: .halfEven) == d("0.67"))
        #expect(try ExactDecimal(6).divided(by: 3, scale: 5, rounding: .up) == 2)
    }

    @Test func divisionIsExactAtFullScale() throws {
        let seventh = try ExactDecimal(1).divided(by: 7, scale: 36, rounding: .halfEven)
        #expect(seventh.description == "0." + String(repeating: "142857", count: 6))
        #expect(try d("0.002").divided(by: d("0.0004"), scale: 0, rounding: .down) == 5)
        #expect(try ExactDecimal(1).divided(by: d("1e-36"), scale: 0, rounding: .down) == d("1e36"))
        // The divisor scaled to the target exceeds 128 bits: the quotient is a sliver above zero.
        #expect(try d("1e-30").divided(by: d("1e30"), scale: 0, rounding: .up) == 1)
        #expect(try d("1e-30").divided(by: d("1e30"), scale: 0, rounding: .halfAwayFromZero) == .zero)
        #expect(try d("-1e-30").divided(by: d("1e30"), scale: 0, rounding: .floor) == -1)
        #expect(try ExactDecimal.zero.divided(by: 7, scale: 3, rounding: .up) == .zero)
        // Scale is clamped to 0...36.
        #expect(try ExactDecimal(1).divided(by: 3, scale: 99, rounding: .down).scale == 36)
        #expect(try ExactDecimal(7).divided(by: 2, scale: -4, rounding: .down) == 3)
    }

    @Test func divisionFailuresThrow() {
        #expect(throws: DecimalOverflow.self) { try ExactDecimal(1).divided(by: .zero, scale: 2, rounding: .down) }
        #expect(throws: DecimalOverflow.self) {
            try d("1e38").divided(by: d("1e-36"), scale: 0, rounding: .down)
        }
        let error = #expect(throws: DecimalOverflow.self) {
            try ExactDecimal(1).divided(by: .zero, scale: 2, rounding: .down)
        }
        #expect(error?.message.contains("division by zero") == true)
    }

    @Test(arguments: [
        ("2.345", 2, RoundingRule.halfAwayFromZero, "2.35"), ("2.345", 2, .halfEven, "2.34"),
        ("2.355", 2, .halfEven, "2.36"), ("-2.345", 2, .floor, "-2.35"), ("-2.345", 2, .ceiling, "-2.34"),
        ("-2.345", 2, .up, "-2.35"), ("-2.345", 2, .down, "-2.34"), ("1.999", 0, .up, "2"),
        ("1.999", 0, .down, "1"), ("1.5", 5, .up, "1.5"), ("0.5", 0, .halfEven, "0"), ("1.5", 0, .halfEven, "2"),
        ("-0.5", 0, .halfAwayFromZero, "-1"), ("9.99", -2, .halfAwayFromZero, "10"), ("0.004", 2, .halfEven, "0"),
        ("170.141183460469231731687303715884105727", 0, .up, "171"),
    ])
    func rounds(input: String, scale: Int, rule: RoundingRule, expected: String) {
        let rounded = d(input).rounded(scale: scale, rule: rule)
        #expect(rounded == d(expected))
        #expect(rounded.description == expected)
    }

    @Test func signHelpers() {
        #expect(d("-1.5").negated() == d("1.5"))
        #expect(ExactDecimal.zero.negated() == .zero)
        #expect(d("-1.5").magnitude == d("1.5"))
        #expect(d("-1.5").isNegative)
        #expect(!ExactDecimal.zero.isNegative)
        #expect(ExactDecimal.zero.isZero)
        #expect(!d("0.001").isZero)
        let max = ExactDecimal(significand: .max, scale: 0)
        #expect(max.negated().negated() == max)
    }
}

@Suite("ExactDecimal comparison")
struct ExactDecimalComparisonTests {
    @Test func equalityIsNumeric() {
        #expect(d("1.0") == 1)
        #expect(d("1.000") == d("1e0"))
        #expect(Set([d("1"), d("1.0"), d("1.00"), d("10e-1")]).count == 1)
        #expect(d("0.1") != d("0.01"))
    }

    @Test func ordersExactlyAcrossScales() {
        #expect(d("0.1") < d("0.2"))
        #expect(d("-1") < d("0.5"))
        #expect(d("-0.5") < d("-0.25"))
        #expect(!(d("0.25") < d("0.25")))
        #expect(d("0.999999999999999999999999999999999999") < 1)
        #expect(d("-1") < d("-0.999999999999999999999999999999999999"))
        // Aligning 1e38 to scale 36 would overflow: compare exactly anyway.
        #expect(d("170.141183460469231731687303715884105727") < d("1e38"))
        #expect(d("-1e38") < d("-170.141183460469231731687303715884105727"))
        #expect(ExactDecimal.zero < d("1e-36"))
        #expect(d("-1e-36") < .zero)
        #expect(max(d("2.5"), d("2.49")) == d("2.5"))
        #expect(min(d("-2.5"), d("-2.49")) == d("-2.5"))
        let sorted = ["3", "-1.5", "0", "0.001", "-0.001", "1e3", "2.99"].map(d).sorted()
        #expect(sorted.map(\.description) == ["-1.5", "-0.001", "0", "0.001", "2.99", "3", "1000"])
    }

    @Test func randomValuesAgreeWithSubtraction() throws {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let a = randomDecimal(&generator)
            let b = randomDecimal(&generator)
            let difference = try a.subtracting(b)
            #expect((a < b) == difference.isNegative)
            #expect((a == b) == difference.isZero)
            #expect(try difference.adding(b) == a)
            #expect(try a.adding(b) == b.adding(a))
            #expect(ExactDecimal(a.description) == a)
        }
    }
}

@Suite("ExactDecimal storage forms")
struct ExactDecimalStorageTests {
    private func encoded(_ value: ExactDecimal) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xAA, count: ExactDecimal.encodedSize)
        bytes.withUnsafeMutableBytes { value.encode(into: $0) }
        return bytes
    }

    @Test func binaryLayout() {
        #expect(ExactDecimal.encodedSize == 17)
        #expect(encoded(d("1.5")) == [1] + [UInt8](repeating: 0, count: 15) + [15])
        #expect(encoded(-1) == [0] + [UInt8](repeating: 0xFF, count: 16))
        #expect(encoded(d("0.000000000001")) == [12] + [UInt8](repeating: 0, count: 15) + [1])
        #expect(encoded(256) == [0] + [UInt8](repeating: 0, count: 14) + [1, 0])
    }

    @Test(arguments: ["0", "1", "-1", "0.1", "-2.5", "1e-36", "170141183460469231731687303715884105727",
        "-170141183460469231731687303715884105727", "123456.789"])
    func binaryRoundTrip(text: String) throws {
        let value = d(text)
        let bytes = encoded(value)
        let decoded = try #require(bytes.withUnsafeBytes { ExactDecimal(encoded: $0) })
        #expect(decoded == value)
        #expect(decoded.scale == value.scale)
    }

    @Test func binaryRejectsCorruptInput() {
        func decode(_ bytes: [UInt8]) -> ExactDecimal? { bytes.withUnsafeBytes { ExactDecimal(encoded: $0) } }
        let zeros = [UInt8](repeating: 0, count: 16)
        #expect(decode([0] + zeros) == .zero)
        #expect(decode(zeros) == nil)  // 16 bytes
        #expect(decode([0] + zeros + [0]) == nil)  // 18 bytes
        #expect(decode([37] + zeros.dropLast() + [1]) == nil)  // scale 37
        #expect(decode([1] + zeros.dropLast() + [10]) == nil)  // 1.0 is not normalized
        #expect(decode([1] + zeros) == nil)  // zero with scale 1
        #expect(decode([0, 0x80] + [UInt8](repeating: 0, count: 15)) == nil)  // Int128.min
    }

    @Test func codableUsesDecimalStrings() throws {
        struct Price: Codable, Equatable {
            var amount: ExactDecimal
        }
        let json = try JSONEncoder().encode(Price(amount: d("0.002")))
        #expect(String(decoding: json, as: UTF8.self) == #"{"amount":"0.002"}"#)
        #expect(try JSONDecoder().decode(Price.self, from: Data(#"{"amount":"12.50"}"#.utf8)) == Price(amount: d("12.5")))
        #expect(try JSONDecoder().decode(Price.self, from: Data(#"{"amount":42}"#.utf8)) == Price(amount: 42))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Price.self, from: Data(#"{"amount":"1,5"}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Price.self, from: Data(#"{"amount":1.5}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Price.self, from: Data(#"{"amount":true}"#.utf8))
        }
    }
}

/// A decimal with up to 18 digits and a scale up to 18 (so sums of two always fit), for property checks.
private func randomDecimal(_ generator: inout SplitMix64) -> ExactDecimal {
    let digits = Int(generator.next() % 18) + 1
    var significand: Int128 = 0
    for _ in 0..<digits { significand = significand * 10 + Int128(generator.next() % 10) }
    if generator.next() & 1 == 1 { significand = -significand }
    return ExactDecimal(significand: significand, scale: Int(generator.next() % 19))
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

extension Int128 {
    fileprivate func power(_ exponent: Int) -> Int128 {
        var result: Int128 = 1
        for _ in 0..<exponent { result *= self }
        return result
    }
}

@Suite("ExactDecimal differential")
struct ExactDecimalDifferentialTests {
    /// 600 random operations (add, subtract, multiply, divide with a random scale and rule, round,
    /// compare) on random operands of 1–38 digits and scale 0–36, drawn from SplitMix64 (seed 0xdec1).
    /// The expected results came from Python's `decimal` module at 400 digits of precision, by the
    /// same draw sequence; the test compares an FNV-1a digest of all 600 result lines ("overflow"
    /// where the result does not fit) and a few individual lines.
    @Test func differentialAgainstPythonDecimal() {
        var generator = SplitMix64(seed: 0xdec1)
        func operand() -> ExactDecimal {
            let digits = Int(generator.next() % 38) + 1
            var significand: Int128 = 0
            for _ in 0..<digits { significand = significand * 10 + Int128(generator.next() % 10) }
            if generator.next() & 1 == 1 { significand = -significand }
            return ExactDecimal(significand: significand, scale: Int(generator.next() % 37))
        }
        let rules: [RoundingRule] = [.up, .down, .ceiling, .floor, .halfAwayFromZero, .halfEven]
        func text(_ result: () throws(DecimalOverflow) -> ExactDecimal) -> String {
            do throws(DecimalOverflow) { return try result().description } catch { return "overflow" }
        }
        var lines: [String] = []
        for index in 0..<600 {
            let a = operand()
            let b = operand()
            switch index % 6 {
            case 0: lines.append(text { () throws(DecimalOverflow) in try a.adding(b) })
            case 1: lines.append(text { () throws(DecimalOverflow) in try a.subtracting(b) })
            case 2: lines.append(text { () throws(DecimalOverflow) in try a.multiplied(by: b) })
            case 3:
                let scale = Int(generator.next() % 37)
                let rule = rules[Int(generator.next() % 6)]
                lines.append(text { () throws(DecimalOverflow) in try a.divided(by: b, scale: scale, rounding: rule) })
            case 4:
                let scale = Int(generator.next() % 37)
                let rule = rules[Int(generator.next() % 6)]
                lines.append(a.rounded(scale: scale, rule: rule).description)
            default:
                lines.append(a < b ? "<" : (a == b ? "=" : ">"))
            }
        }
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325
        for line in lines {
            for byte in (line + "\n").utf8 {
                digest ^= UInt64(byte)
                digest = digest &* 0x0000_0100_0000_01b3
            }
        }
        #expect(lines[0] == "-828897494553624461919.5981865296374723")
        #expect(lines[1] == "0.0000000000739373385347")
        #expect(lines[2] == "overflow")
        #expect(lines[3] == "-1324399208147351.606")
        #expect(lines[4] == "228767661122186483463486402.795477268")
        #expect(lines[5] == "<")
        #expect(lines[9] == "-0.12897246682155844196775")
        #expect(lines[15] == "-0.000001211662")
        #expect(lines[27] == "0")
        #expect(lines.filter { $0 == "overflow" }.count == 169)
        #expect(digest == 0x8551_943d_e3c1_6ba0)
    }
}
