import Glibc

/// One response line of the ingest protocol (DESIGN.md §3), parsed.
///
/// ```swift
/// let response = try IngestResponse.parse(#"{"status":"rejected","error":{"code":"invalid_json","message":"bad"}}"#)
/// response.status      // .rejected
/// response.errorCode   // "invalid_json"
/// ```
public struct IngestResponse: Sendable, Hashable {
    /// What the server did with the line.
    public enum Status: String, Sendable, Hashable {
        /// The event was counted (and is durable).
        case accepted
        /// The event was seen before with the same content; counted nothing.
        case duplicate
        /// The event was refused; ``IngestResponse/errorCode`` says why.
        case rejected
    }

    /// What the server did with the line.
    public var status: Status
    /// The stable error code of a rejection, such as `invalid_json`; nil otherwise.
    public var errorCode: String?
    /// The server's human explanation of a rejection.
    public var message: String?
    /// The event field a rejection is about, when the server named one.
    public var field: String?
    /// True when the customer has crossed a limit whose action is `disable`.
    public var blocked: Bool

    /// Creates a response.
    public init(
        status: Status, errorCode: String? = nil, message: String? = nil, field: String? = nil,
        blocked: Bool = false
    ) {
        self.status = status
        self.errorCode = errorCode
        self.message = message
        self.field = field
        self.blocked = blocked
    }

    /// `{"status":"accepted"}`.
    public static let accepted = IngestResponse(status: .accepted)
    /// `{"status":"duplicate"}`.
    public static let duplicate = IngestResponse(status: .duplicate)

    /// Parses one response line (without its `\n`; a trailing `\r` is allowed).
    ///
    /// The two common lines are recognised by a byte comparison; anything else goes through a small
    /// JSON parser that understands string escapes and ignores unknown keys.
    /// - Throws: ``ClientError/Code/protocolViolation`` when the line is not a valid response.
    public static func parse(_ line: UnsafeRawBufferPointer) throws(ClientError) -> IngestResponse {
        var line = line
        if let last = line.last, last == UInt8(ascii: "\r") {
            line = UnsafeRawBufferPointer(rebasing: line.dropLast())
        }
        if matches(line, acceptedLine) { return .accepted }
        if matches(line, duplicateLine) { return .duplicate }
        var parser = ResponseParser(bytes: line)
        do throws(ResponseParseFailure) {
            return try parser.parseResponse()
        } catch {
            throw ClientError(
                code: .protocolViolation,
                message: "the server sent an invalid response line (\(error.reason) at byte \(parser.position)): "
                    + "\(preview(line)). Is the socket a Tally ingest socket of a compatible version?")
        }
    }

    /// Parses one response line given as bytes. See ``parse(_:)-(UnsafeRawBufferPointer)``.
    public static func parse(_ line: [UInt8]) throws(ClientError) -> IngestResponse {
        try withBytes(of: line) { (bytes) throws(ClientError) in try parse(bytes) }
    }

    /// Parses one response line given as text. See ``parse(_:)-(UnsafeRawBufferPointer)``.
    public static func parse(_ line: String) throws(ClientError) -> IngestResponse {
        try parse(Array(line.utf8))
    }

    private static let acceptedLine: StaticString = #"{"status":"accepted"}"#
    private static let duplicateLine: StaticString = #"{"status":"duplicate"}"#

    @inline(__always)
    private static func matches(_ line: UnsafeRawBufferPointer, _ expected: StaticString) -> Bool {
        line.count == expected.utf8CodeUnitCount
            && memcmp(line.baseAddress!, expected.utf8Start, line.count) == 0
    }

    /// The line for an error message: at most 200 bytes, invalid UTF-8 repaired.
    static func preview(_ line: UnsafeRawBufferPointer) -> String {
        let limit = 200
        let text = String(decoding: line.prefix(limit), as: UTF8.self)
        return "`" + text + (line.count > limit ? "…` (\(line.count) bytes)" : "`")
    }
}

/// Why a response line did not parse.
struct ResponseParseFailure: Error {
    var reason: String
}

/// A hand-written parser for exactly the response object of the ingest protocol.
struct ResponseParser {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func parseResponse() throws(ResponseParseFailure) -> IngestResponse {
        var status: IngestResponse.Status?
        var blocked = false
        var errorCode: String?
        var message: String?
        var field: String?

        skipWhitespace()
        try expect(UInt8(ascii: "{"))
        try parseMembers { (parser, key) throws(ResponseParseFailure) in
            switch key {
            case "status":
                let text = try parser.parseString()
                guard let value = IngestResponse.Status(rawValue: text) else {
                    throw ResponseParseFailure(reason: "unknown status \"\(text)\"")
                }
                status = value
            case "blocked":
                blocked = try parser.parseBool()
            case "error":
                if parser.parseNull() { return }
                try parser.expect(UInt8(ascii: "{"))
                try parser.parseMembers { (parser, key) throws(ResponseParseFailure) in
                    switch key {
                    case "code": errorCode = try parser.parseOptionalString()
                    case "message": message = try parser.parseOptionalString()
                    case "field": field = try parser.parseOptionalString()
                    default: try parser.skipValue(depth: 1)
                    }
                }
            default:
                try parser.skipValue(depth: 1)
            }
        }
        skipWhitespace()
        guard position == bytes.count else { throw ResponseParseFailure(reason: "extra bytes after the object") }
        guard let status else { throw ResponseParseFailure(reason: "no \"status\"") }
        if status == .rejected && errorCode == nil {
            throw ResponseParseFailure(reason: "a rejection without \"error\".\"code\"")
        }
        return IngestResponse(status: status, errorCode: errorCode, message: message, field: field, blocked: blocked)
    }

    /// Parses `"key": value, …}` after the opening brace, handing each key to `member`, which must
    /// consume the value.
    mutating func parseMembers(
        _ member: (inout ResponseParser, String) throws(ResponseParseFailure) -> Void
    ) throws(ResponseParseFailure) {
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            try member(&self, key)
            skipWhitespace()
            guard let next = peek() else { throw ResponseParseFailure(reason: "unterminated object") }
            position += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else { throw ResponseParseFailure(reason: "expected , or }") }
        }
    }

    @inline(__always)
    func peek() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8) throws(ResponseParseFailure) {
        guard peek() == byte else {
            throw ResponseParseFailure(reason: "expected \(String(UnicodeScalar(byte)))")
        }
        position += 1
    }

    mutating func parseLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count,
            memcmp(bytes.baseAddress! + position, literal.utf8Start, count) == 0
        else { return false }
        position += count
        return true
    }

    mutating func parseBool() throws(ResponseParseFailure) -> Bool {
        if parseLiteral("true") { return true }
        if parseLiteral("false") { return false }
        throw ResponseParseFailure(reason: "expected true or false")
    }

    mutating func parseNull() -> Bool {
        parseLiteral("null")
    }

    mutating func parseOptionalString() throws(ResponseParseFailure) -> String? {
        if parseLiteral("null") { return nil }
        return try parseString()
    }

    /// Parses a JSON string, decoding escapes.
    mutating func parseString() throws(ResponseParseFailure) -> String {
        try expect(UInt8(ascii: "\""))
        let start = position
        // Fast path: no escapes.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: bytes[start..<position], as: UTF8.self)
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw ResponseParseFailure(reason: "a control character inside a string") }
            position += 1
        }
        var decoded = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try decodeEscape(into: &decoded)
            case ..<0x20:
                throw ResponseParseFailure(reason: "a control character inside a string")
            default:
                decoded.append(byte)
            }
        }
        throw ResponseParseFailure(reason: "unterminated string")
    }

    private mutating func decodeEscape(into decoded: inout [UInt8]) throws(ResponseParseFailure) {
        guard let escaped = peek() else { throw ResponseParseFailure(reason: "unterminated escape") }
        position += 1
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escaped)
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard parseLiteral("\\u") else { throw ResponseParseFailure(reason: "a lone high surrogate") }
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw ResponseParseFailure(reason: "a high surrogate without a low one")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw ResponseParseFailure(reason: "a lone low surrogate")
            }
            decoded.append(contentsOf: String(Character(UnicodeScalar(scalar)!)).utf8)
        default:
            throw ResponseParseFailure(reason: "an invalid escape \\\(String(UnicodeScalar(escaped)))")
        }
    }

    private mutating func parseHex4() throws(ResponseParseFailure) -> UInt32 {
        guard bytes.count - position >= 4 else { throw ResponseParseFailure(reason: "a short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw ResponseParseFailure(reason: "a bad hex digit in a \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// Skips any JSON value (for keys this client does not know).
    mutating func skipValue(depth: Int) throws(ResponseParseFailure) {
        guard depth < 64 else { throw ResponseParseFailure(reason: "nesting too deep") }
        skipWhitespace()
        guard let first = peek() else { throw ResponseParseFailure(reason: "expected a value") }
        switch first {
        case UInt8(ascii: "\""):
            _ = try parseString()
        case UInt8(ascii: "{"):
            position += 1
            try parseMembers { (parser, _) throws(ResponseParseFailure) in try parser.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            position += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                position += 1
                return
            }
            while true {
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard let next = peek() else { throw ResponseParseFailure(reason: "unterminated array") }
                position += 1
                if next == UInt8(ascii: "]") { return }
                guard next == UInt8(ascii: ",") else { throw ResponseParseFailure(reason: "expected , or ]") }
            }
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            _ = try parseBool()
        case UInt8(ascii: "n"):
            guard parseNull() else { throw ResponseParseFailure(reason: "expected null") }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try skipNumber()
        default:
            throw ResponseParseFailure(reason: "expected a value")
        }
    }

    /// Skips a JSON number, checking its grammar.
    private mutating func skipNumber() throws(ResponseParseFailure) {
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard skipDigits() > 0 else { throw ResponseParseFailure(reason: "a malformed number") }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard skipDigits() > 0 else { throw ResponseParseFailure(reason: "a malformed number") }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard skipDigits() > 0 else { throw ResponseParseFailure(reason: "a malformed number") }
        }
    }

    private mutating func skipDigits() -> Int {
        let start = position
        while let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
        return position - start
    }
}
