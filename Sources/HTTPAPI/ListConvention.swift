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
            guard let bytes = ListCursor.decode(String(text)) else {
                throw .badRequest(.invalidParameter, "cursor \(quoted(String(text))) is not a cursor this API gave out: pass next_cursor from the previous page as it is", field: "cursor")
            }
            after = bytes
        }
    }

}

extension JSONWriter {
    /// `,"has_more":…,"next_cursor":…` after a `"data"` array; the cursor names the position of
    /// the page's last item, nil on the last page.
    mutating func listTail(nextCursor: [UInt8]?) {
        listTail(nextCursor: nextCursor.map(ListCursor.encode))
    }

    /// `,"has_more":…,"next_cursor":…` with the cursor's text.
    mutating func listTail(nextCursor: String?) {
        raw(","); key("has_more"); raw(nextCursor == nil ? "false" : "true")
        raw(","); key("next_cursor")
        if let nextCursor { string(nextCursor) } else { raw("null") }
    }
}
