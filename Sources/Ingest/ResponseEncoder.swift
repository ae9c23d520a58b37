import Metering
import NIOCore
import Storage

/// Writes the protocol's response lines (DESIGN §3): one JSON object and `\n` per answered line.
enum ResponseEncoder {
    static let accepted = Array(#"{"status":"accepted"}"#.utf8) + [UInt8(ascii: "\n")]
    static let duplicate = Array(#"{"status":"duplicate"}"#.utf8) + [UInt8(ascii: "\n")]

    /// Appends the response for an event's outcome; `blocked` adds `"blocked":true` and the
    /// limit: `,"limit":{"id","meter","used","limit","resets_at"}`.
    static func append(_ outcome: RecordOutcome, blocked: BlockingLimit? = nil, to buffer: inout ByteBuffer) {
        switch (outcome, blocked) {
        case (.accepted, nil): buffer.writeBytes(accepted)
        case (.duplicate, nil): buffer.writeBytes(duplicate)
        case (.accepted, let limit?), (.duplicate, let limit?):
            buffer.writeString(outcome == .accepted ? #"{"status":"accepted""# : #"{"status":"duplicate""#)
            appendBlocked(limit, to: &buffer)
        case (.rejected(let error), _): append(error, blocked: blocked, to: &buffer)
        }
    }

    /// `,"blocked":true,"limit":{…}}` and the newline.
    private static func appendBlocked(_ limit: BlockingLimit, to buffer: inout ByteBuffer) {
        buffer.writeString(#","blocked":true,"limit":"#)
        buffer.writeString(limit.json)
        buffer.writeString("}\n")
    }

    /// Appends a `rejected` response.
    static func append(_ error: IngestError, blocked: BlockingLimit? = nil, to buffer: inout ByteBuffer) {
        buffer.writeString(#"{"status":"rejected","error":{"code":""#)
        buffer.writeString(error.code.rawValue)
        buffer.writeString(#"","message":""#)
        appendEscaped(error.message, to: &buffer)
        buffer.writeString("\"")
        if let field = error.field {
            buffer.writeString(#","field":""#)
            appendEscaped(field, to: &buffer)
            buffer.writeString("\"")
        }
        if let blocked {
            buffer.writeString("}")
            appendBlocked(blocked, to: &buffer)
        } else {
            buffer.writeString("}}\n")
        }
    }

    /// Appends `text` as the inside of a JSON string.
    static func appendEscaped(_ text: String, to buffer: inout ByteBuffer) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeString("\\\\")
            case UInt8(ascii: "\n"): buffer.writeString("\\n")
            case UInt8(ascii: "\r"): buffer.writeString("\\r")
            case UInt8(ascii: "\t"): buffer.writeString("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeBytes([UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                   hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: buffer.writeInteger(byte)
            }
        }
    }
}
