/// Splits the body of `POST /v1/events` (a JSON array) into the byte ranges of its elements, without
/// decoding them, so that each element can go to `EventLineParser` exactly as a socket line would.
///
/// It checks only the structure it needs to find element boundaries: the top level is one array,
/// strings are closed (escapes respected), brackets and braces nest and match, no element is empty,
/// nothing but whitespace follows the array. Whatever is wrong inside an element (a bad literal, a
/// missing colon) is left to the parser, which rejects that element alone as `invalid_json`.
enum EventArraySplitter {
    /// Why the body cannot be split.
    enum Failure: Error, Equatable {
        /// The top-level value is not an array (or the body is empty).
        case notAnArray
        /// The array is malformed at `offset`: what was expected there.
        case malformed(offset: Int, expected: String)
        /// The array holds more than the allowed number of elements.
        case tooManyElements(maximum: Int)
    }

    /// The element ranges of the array in `bytes`, in order; at most `maximumCount` of them.
    static func split(_ bytes: UnsafeRawBufferPointer, maximumCount: Int) throws(Failure) -> [Range<Int>] {
        let end = bytes.count
        var index = skipWhitespace(bytes, from: 0)
        guard index < end, bytes[index] == UInt8(ascii: "[") else { throw .notAnArray }
        index = skipWhitespace(bytes, from: index + 1)
        var ranges: [Range<Int>] = []
        if index < end, bytes[index] == UInt8(ascii: "]") {
            try expectEnd(bytes, from: index + 1)
            return ranges
        }
        // Closers expected for the brackets and braces open inside the current element.
        var closers: [UInt8] = []
        while true {
            let start = index
            var lastSignificant = index
            scan: while true {
                guard index < end else {
                    throw .malformed(offset: end, expected: closers.isEmpty ? "',' or ']'" : "'\(Character(UnicodeScalar(closers.last!)))'")
                }
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index = try skipString(bytes, from: index)
                    lastSignificant = index
                    continue scan
                case UInt8(ascii: "["):
                    closers.append(UInt8(ascii: "]"))
                case UInt8(ascii: "{"):
                    closers.append(UInt8(ascii: "}"))
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    if let expected = closers.last {
                        guard expected == byte else {
                            throw .malformed(offset: index, expected: "'\(Character(UnicodeScalar(expected)))'")
                        }
                        closers.removeLast()
                    } else if byte == UInt8(ascii: "]") {
                        break scan
                    } else {
                        throw .malformed(offset: index, expected: "',' or ']'")
                    }
                case UInt8(ascii: ","):
                    if closers.isEmpty { break scan }
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                    index += 1
                    continue scan
                default:
                    break
                }
                index += 1
                lastSignificant = index
            }
            guard lastSignificant > start else { throw .malformed(offset: index, expected: "an event object") }
            guard ranges.count < maximumCount else { throw .tooManyElements(maximum: maximumCount) }
            ranges.append(start..<lastSignificant)
            if bytes[index] == UInt8(ascii: "]") {
                try expectEnd(bytes, from: index + 1)
                return ranges
            }
            index = skipWhitespace(bytes, from: index + 1)
        }
    }

    /// The index just after the string that starts with the quote at `start`.
    private static func skipString(_ bytes: UnsafeRawBufferPointer, from start: Int) throws(Failure) -> Int {
        var index = start + 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""): return index + 1
            case UInt8(ascii: "\\"): index += 2
            default: index += 1
            }
        }
        throw .malformed(offset: bytes.count, expected: "the end of the string that starts at byte \(start)")
    }

    private static func skipWhitespace(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        while index < bytes.count, isWhitespace(bytes[index]) { index += 1 }
        return index
    }

    private static func expectEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) throws(Failure) {
        let index = skipWhitespace(bytes, from: start)
        if index < bytes.count { throw .malformed(offset: index, expected: "nothing after the array") }
    }

    @inline(__always)
    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }
}
