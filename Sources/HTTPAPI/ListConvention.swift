import Hummingbird
import Metering
import Storage

/// The one list convention of every list route: `?limit=&cursor=` in, and
/// `{"data":[…],"has_more":bool,"next_cursor":string|null}` out.
///
/// A cursor is opaque to clients: the hex of a position in the list's order (an id, a sequence),
/// so the next page starts after the last item of this one, and items added meanwhile neither
/// shift nor repeat what follows.
struct ListRequest {
    /// The page size, 1…100 (default 50).
    var limit: Int
    /// The position after which the page starts; nil for the first page.
    var after: [UInt8]?

    static let defaultLimit = 50
    static let maximumLimit = 100

    /// Reads `limit` and `cursor` from the query.
    init(_ request: Request) throws(HTTPAPIError) {
        let query = request.uri.queryParameters
        limit = Self.defaultLimit
        if let text = query["limit"], !text.isEmpty {
            guard text.utf8.count <= 3, let value = Int(text), (1...Self.maximumLimit).contains(value) else {
                throw .badRequest(.invalidParameter, "limit \(quoted(String(text))) must be a whole number from 1 to \(Self.maximumLimit)", field: "limit")
            }
            limit = value
        }
        if let text = query["cursor"], !text.isEmpty {
            guard let bytes = Self.decode(String(text)) else {
                throw .badRequest(.invalidParameter, "cursor \(quoted(String(text))) is not a cursor this API gave out: pass next_cursor from the previous page as it is", field: "cursor")
            }
            after = bytes
        }
    }

    /// The cursor text of a position.
    static func encode(_ bytes: [UInt8]) -> String { ListCursor.encode(bytes) }

    /// The position a cursor text names; nil when it is not one.
    static func decode(_ text: String) -> [UInt8]? { ListCursor.decode(text) }
}

extension JSONWriter {
    /// `,"has_more":…,"next_cursor":…` after a `"data"` array.
    mutating func listTail(nextCursor: [UInt8]?) {
        raw(","); key("has_more"); raw(nextCursor == nil ? "false" : "true")
        raw(","); key("next_cursor")
        if let nextCursor { string(ListRequest.encode(nextCursor)) } else { raw("null") }
    }
}

extension [UInt8] {
    /// Appends `value` big-endian: an alert sequence as a cursor position.
    mutating func appendBigEndianSequence(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}

extension UnsafeRawBufferPointer {
    /// The big-endian u64 at `offset`.
    func loadBigEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}
