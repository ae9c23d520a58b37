import Metering
import Rating

/// Text made safe for HTML: element content and double-quoted attribute values.
func escape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for character in text.unicodeScalars {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(character)
        }
    }
    return out
}

/// A path segment or query value, percent-encoded (RFC 3986 unreserved characters stay).
func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16, uppercase: true)
            out += byte < 16 ? "%0" + hex : "%" + hex
        }
    }
    return out
}

/// Numbers as people read them: thousands separated, money in its currency.
enum NumberText {
    /// `1234567.5` → `1,234,567.5`; the digits are the decimal's own, none added or cut.
    static func grouped(_ value: ExactDecimal) -> String {
        grouped(text: value.description)
    }

    /// Thousands separators in the integer part of a decimal's text.
    static func grouped(text: String) -> String {
        var text = Substring(text)
        var sign = ""
        if text.hasPrefix("-") { sign = "-"; text = text.dropFirst() }
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let integer = Array(parts[0])
        var out = ""
        for (index, digit) in integer.enumerated() {
            if index > 0, (integer.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        if parts.count == 2 { out += "." + parts[1] }
        return sign + out
    }

    /// `$1,234.50`, `€12.00`, `¥1,235`, `CHF 12.00`: the amount in `currency`'s minor units (it is
    /// already rounded); without a currency, the plain number.
    static func money(_ amount: ExactDecimal, currency: Currency?) -> String {
        guard let currency else { return grouped(amount) }
        let digits = grouped(text: currency.formatted(amount))
        let negative = digits.hasPrefix("-")
        let magnitude = negative ? String(digits.dropFirst()) : digits
        let sign = negative ? "−" : ""
        if let symbol = symbols[currency.code] { return sign + symbol + magnitude }
        return sign + currency.code + " " + magnitude
    }

    /// ` data-amount="0.70">$0.70`: the end of a tag carrying the amount as `tally estimate
    /// --json` writes it, and the amount as people read it, for an element's content.
    static func amount(_ amount: ExactDecimal, currency: Currency?) -> String {
        "data-amount=\"\(currency?.formatted(amount) ?? amount.description)\">\(escape(money(amount, currency: currency)))"
    }

    private static let symbols = ["USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CAD": "CA$", "AUD": "A$",
                                  "BRL": "R$", "KRW": "₩", "CNY": "CN¥", "MXN": "MX$", "NZD": "NZ$"]

    /// `2026-12-07 14:00 UTC`.
    static func time(_ time: Timestamp) -> String {
        let text = time.rfc3339
        guard text.count >= 16 else { return text }
        let date = text.prefix(10)
        let clock = text.dropFirst(11).prefix(5)
        return "\(date) \(clock) UTC"
    }
}

/// One page: its title, the signed-in navigation (or none), and the body.
struct PageLayout {
    var title: String
    /// Where the navigation marks the current page: "overview", "customers", "meters", or nil.
    var section: String?
    /// The signed-in user's key name and the sign-out form's token; nil on the sign-in page and the portal.
    var signedIn: (name: String, csrf: String)?
    /// The meters, for the navigation.
    var meters: [String] = []

    func render(body: String) -> String {
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title)) · Tally</title>
        <link rel="stylesheet" href="/ui/assets/tally.css">
        </head>
        <body>
        <header class="top">
        <a class="brand" href="\(signedIn == nil ? "#" : "/ui")">Tally</a>

        """
        if let signedIn {
            html += "<nav aria-label=\"Main\">"
            html += link("/ui", "Overview", current: section == "overview")
            html += link("/ui/customers", "Customers", current: section == "customers")
            for meter in meters {
                html += link("/ui/meters/\(percentEncoded(meter))", meter, current: section == "meter:\(meter)")
            }
            html += "</nav>"
            html += """
            <form id="sign-out" method="post" action="/ui/sign-out"><input type="hidden" name="csrf" value="\(escape(signedIn.csrf))">\
            <span class="who">\(escape(signedIn.name))</span> <button type="submit">Sign out</button></form>
            """
        }
        html += "</header>\n<main>\n"
        html += body
        html += "\n</main>\n</body>\n</html>\n"
        return html
    }

    private func link(_ href: String, _ text: String, current: Bool) -> String {
        "<a href=\"\(escape(href))\"\(current ? " aria-current=\"page\"" : "")>\(escape(text))</a>"
    }
}
