import FuzzSupport
import Metering

// ExactDecimal's text and arithmetic. The input is `A` or `A\nB`: `A` goes through
// `ExactDecimal.parse` (what every `value`, price amount and quantity in Tally is read with);
// when both parse, they are also added, subtracted, multiplied, divided and compared.
//
// Properties: parse → text → parse gives an equal value (also for the padded and the 17-byte
// binary forms); arithmetic throws `DecimalOverflow` instead of trapping, and a + b − b == a when
// it does not; rounding never traps.

@_cdecl("FuzzDecimal_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzOneInput)
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzDriver.buffer(start, count)
    let newline = input.firstIndex(of: UInt8(ascii: "\n"))
    let first = UnsafeRawBufferPointer(rebasing: input[..<(newline ?? input.count)])
    guard let a = checkedParse(first) else { return 0 }
    if let newline, let b = checkedParse(UnsafeRawBufferPointer(rebasing: input[(newline + 1)...])) {
        checkArithmetic(a, b)
    }
    return 0
}

/// Parses `bytes`; for a value, checks that each text and binary form reads back equal.
func checkedParse(_ bytes: UnsafeRawBufferPointer) -> ExactDecimal? {
    let value: ExactDecimal
    do {
        value = try ExactDecimal.parse(bytes)
    } catch {
        require(error.offset >= 0 && error.offset <= bytes.count, "error offset \(error.offset) outside the input")
        return nil
    }
    require(value.scale >= 0 && value.scale <= ExactDecimal.maxScale, "scale \(value.scale) out of range")
    let text = value.description
    require(ExactDecimal(text) == value, "'\(text)' does not read back as \(value)")
    require(ExactDecimal(text)?.description == text, "'\(text)' is not canonical")
    let padded = value.formatted(minimumScale: ExactDecimal.maxScale)
    require(ExactDecimal(padded) == value, "'\(padded)' does not read back as \(value)")
    let decoded = withUnsafeTemporaryAllocation(byteCount: ExactDecimal.encodedSize, alignment: 1) { buffer in
        value.encode(into: buffer)
        return ExactDecimal(encoded: UnsafeRawBufferPointer(buffer))
    }
    require(decoded == value, "the binary form of \(value) reads back as \(String(describing: decoded))")
    require(value.negated().negated() == value, "-(-\(value)) != \(value)")
    require(value.magnitude >= .zero, "|\(value)| is negative")
    for scale in [0, 1, 2, 6, 12, 35] {
        for rule in [RoundingRule.up, .down, .ceiling, .floor, .halfAwayFromZero, .halfEven] {
            let rounded = value.rounded(scale: scale, rule: rule)
            require(rounded.scale <= scale, "\(value) rounded to \(scale) has scale \(rounded.scale)")
        }
    }
    return value
}

func checkArithmetic(_ a: ExactDecimal, _ b: ExactDecimal) {
    require((a < b) == (b > a) && (a == b) == !(a < b || b < a), "\(a) and \(b) are not ordered consistently")
    if let sum = try? a.adding(b) {
        require(sum == (try? b.adding(a)), "\(a) + \(b) is not commutative")
        if let back = try? sum.subtracting(b) { require(back == a, "\(a) + \(b) - \(b) = \(back)") }
    }
    if let difference = try? a.subtracting(b) {
        if let back = try? difference.adding(b) { require(back == a, "\(a) - \(b) + \(b) = \(back)") }
    }
    if let product = try? a.multiplied(by: b) {
        require(product == (try? b.multiplied(by: a)), "\(a) × \(b) is not commutative")
    }
    for scale in [0, 2, 12, 36] {
        if let quotient = try? a.divided(by: b, scale: scale, rounding: .halfEven) {
            require(quotient.scale <= scale, "\(a) / \(b) at scale \(scale) has scale \(quotient.scale)")
        }
    }
}
