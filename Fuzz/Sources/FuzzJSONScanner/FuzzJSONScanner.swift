import Foundation
import FuzzSupport
import Metering

// The JSON scanner under `EventLineParser` (internal to Metering: every line reaches it through
// `EventLineParser.parse`), checked against Foundation's `JSONSerialization` on syntax.
//
// Property: a line the scanner accepts as JSON (any answer but `invalid_json`) is a JSON object to
// Foundation too; and a line Foundation reads as an object of at most 64 levels, with no duplicate
// top-level key, is JSON to the scanner, unless Foundation lets through what RFC 8259 forbids
// (see `foundationIsLax`).

@_cdecl("FuzzJSONScanner_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzOneInput)
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let line = FuzzDriver.buffer(start, count)
    let scannerAccepts: Bool
    switch EventLines.parse(line) {
    case .failure(let error) where error.code == .invalidJSON: scannerAccepts = false
    default: scannerAccepts = true
    }
    let data = Data(line)
    let object = try? JSONSerialization.jsonObject(with: data, options: [])
    let foundationAccepts = object is [String: Any]
    if scannerAccepts {
        // Foundation also refuses numbers a Double cannot hold (`1e400`, or 400 digits); the
        // grammar allows them.
        let smallNumbers = try? JSONSerialization.jsonObject(with: withSmallNumbers(data), options: [])
        require(foundationAccepts || smallNumbers is [String: Any],
                "the scanner accepts '\(String(decoding: data, as: UTF8.self))', Foundation does not")
    } else if foundationAccepts, let object, depth(object) <= 64, !foundationIsLax(line) {
        require(false, "Foundation reads '\(String(decoding: data, as: UTF8.self))' as an object, the scanner rejects it as JSON")
    }
    return 0
}

/// The nesting depth of a JSONSerialization result (an object or array counts one level).
func depth(_ value: Any) -> Int {
    if let object = value as? [String: Any] { return 1 + (object.values.map(depth).max() ?? 0) }
    if let array = value as? [Any] { return 1 + (array.map(depth).max() ?? 0) }
    return 0
}

/// Input Foundation may accept where RFC 8259 or the scanner's documented rules do not: a NUL or
/// other control byte, a byte that is not UTF-8 text, an escaped lone surrogate, a byte-order mark,
/// a trailing comma (`{"a":1,}`).
func foundationIsLax(_ line: UnsafeRawBufferPointer) -> Bool {
    guard String(validating: line, as: UTF8.self) != nil else { return true }
    if line.starts(with: [0xEF, 0xBB, 0xBF]) { return true }
    return line.contains { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
        || String(decoding: line, as: UTF8.self).lowercased().contains("\\ud")
        || hasTrailingComma(line)
}

/// Whether a `,` outside strings is followed, after whitespace, by `}` or `]`.
func hasTrailingComma(_ line: UnsafeRawBufferPointer) -> Bool {
    var inString = false
    var escaped = false
    var afterComma = false
    for byte in line {
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch byte {
        case UInt8(ascii: "\""): inString = true; afterComma = false
        case UInt8(ascii: ","): afterComma = true
        case UInt8(ascii: "}"), UInt8(ascii: "]"): if afterComma { return true }
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): break
        default: afterComma = false
        }
    }
    return false
}

/// `data` with the exponent of every number (`e+25341600`, `E-7`) written as `e0` and every run of
/// more than 17 digits cut to 17, so every number fits a Double. (Digits inside strings change too,
/// which does not change whether the text is an object.)
func withSmallNumbers(_ data: Data) -> Data {
    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    var output = Data()
    var index = data.startIndex
    var run = 0
    while index < data.endIndex {
        let byte = data[index]
        index += 1
        run = isDigit(byte) ? run + 1 : 0
        if run <= 17 { output.append(byte) }
        guard isDigit(byte), index < data.endIndex,
            data[index] == UInt8(ascii: "e") || data[index] == UInt8(ascii: "E")
        else { continue }
        var end = index + 1
        if end < data.endIndex && (data[end] == UInt8(ascii: "+") || data[end] == UInt8(ascii: "-")) { end += 1 }
        let digits = end
        while end < data.endIndex && isDigit(data[end]) { end += 1 }
        guard end > digits else { continue }
        output.append(contentsOf: Array("e0".utf8))
        index = end
        run = 0
    }
    return output
}
