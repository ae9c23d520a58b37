@testable import Dashboard
import Foundation
import Metering
import Rating
import Testing

@Suite("Dashboard pieces")
struct DashboardUnitTests {
    @Test("numbers: thousands grouped, money in its currency's minor units and symbol")
    func numbers() {
        #expect(NumberText.grouped(ExactDecimal("1234567.125")!) == "1,234,567.125")
        #expect(NumberText.grouped(ExactDecimal("-1000")!) == "-1,000")
        #expect(NumberText.grouped(ExactDecimal("999")!) == "999")
        #expect(NumberText.money(ExactDecimal("1234.5")!, currency: Currency.named("USD")) == "$1,234.50")
        #expect(NumberText.money(ExactDecimal("12")!, currency: Currency.named("EUR")) == "€12.00")
        #expect(NumberText.money(ExactDecimal("1235")!, currency: Currency.named("JPY")) == "¥1,235")
        #expect(NumberText.money(ExactDecimal("-3.5")!, currency: Currency.named("GBP")) == "−£3.50")
        #expect(NumberText.money(ExactDecimal("7")!, currency: Currency.named("CHF")) == "CHF 7.00")
        #expect(NumberText.money(ExactDecimal("7.25")!, currency: nil) == "7.25")
        #expect(NumberText.amount(ExactDecimal("0.7")!, currency: Currency.named("USD")) == #"data-amount="0.70">$0.70"#)
    }

    @Test("HTML escaping and percent-encoding")
    func escaping() {
        #expect(escape(#"<a href="x">'&'</a>"#) == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        #expect(percentEncoded("cus 42/ä?&") == "cus%2042%2F%C3%A4%3F%26")
    }

    @Test("bar chart: one bar per window, heights in the quantities' order, zero is flat, a round axis")
    func barChart() throws {
        let start = Timestamp(nanosecondsSinceEpoch: 1_764_547_200 * Timestamp.nanosecondsPerSecond)
        let quantities = ["5", "20", "0", "12.5"].map { ExactDecimal($0)! }
        let bars = quantities.enumerated().map { index, quantity in
            BarChart.Bar(start: start.adding(nanoseconds: Int64(index) * Timestamp.nanosecondsPerDay),
                         end: start.adding(nanoseconds: Int64(index + 1) * Timestamp.nanosecondsPerDay), quantity: quantity)
        }
        let svg = BarChart(id: "c", cssClass: "usage-chart", meter: "api_calls", title: "t", unit: "api_calls per day", bars: bars,
                           edges: [.init(time: start, label: "period start")], label: { $0.rfc3339 }).render()
        let heights = try Self.attributeValues("height", ofTag: "<rect class=\"bar\"", in: svg).map { try #require(Double($0)) }
        #expect(heights.count == 4)
        #expect(heights[1] > heights[3] && heights[3] > heights[0] && heights[2] == 0)
        // The axis goes to 20, a round number: the highest bar fills the plot.
        #expect(heights[1] == Double(BarChart.plotHeight))
        #expect(svg.contains(">20</text>") && svg.contains(">10</text>") && svg.contains("api_calls per day"))
        #expect(svg.contains("data-quantity=\"12.5\"") && svg.contains("data-start=\"\(start.rfc3339)\""))
        #expect(svg.contains("class=\"edge\"") && svg.contains("period start"))
        #expect(!svg.contains("NaN"))
        let empty = BarChart(id: nil, cssClass: "x", meter: nil, title: "t", unit: "u", bars: [], label: { _ in "" }).render()
        #expect(empty.hasSuffix("</svg>") && !empty.contains("<rect"))
    }

    @Test("round axis maxima: 1, 2 or 5 times a power of ten")
    func roundCeiling() {
        #expect(BarChart.roundCeiling(.zero) == 1)
        #expect(BarChart.roundCeiling(ExactDecimal("3")!) == 5)
        #expect(BarChart.roundCeiling(ExactDecimal("7")!) == 10)
        #expect(BarChart.roundCeiling(ExactDecimal("10")!) == 10)
        #expect(BarChart.roundCeiling(ExactDecimal("0.03")!) == ExactDecimal("0.05")!)
        #expect(BarChart.roundCeiling(ExactDecimal("12345")!) == 20000)
        #expect(BarChart.scaled(ExactDecimal("1")!, of: 3, to: 2000) == 667)
    }

    @Test("sessions: signed, expiring, bound to their scope; CSRF tokens bound to the session")
    func sessions() throws {
        let signer = SessionSigner(secret: Array(repeating: 7, count: 32))
        let now = Timestamp(nanosecondsSinceEpoch: 1_800_000_000 * Timestamp.nanosecondsPerSecond)
        let session = signer.newSession(keyName: "ops team", admin: false, now: now)
        let cookie = signer.cookieValue(session)
        #expect(signer.session(fromCookie: cookie, now: now) == session)
        // Claiming admin, another name, or a later expiry breaks the signature.
        #expect(signer.session(fromCookie: cookie.replacingOccurrences(of: ".r.", with: ".a."), now: now) == nil)
        let parts = cookie.split(separator: ".").map(String.init)
        let later = [parts[0], parts[1], parts[2], String(session.expiresAt + 3600), parts[4], parts[5]].joined(separator: ".")
        #expect(signer.session(fromCookie: later, now: now) == nil)
        #expect(SessionSigner(secret: Array(repeating: 8, count: 32)).session(fromCookie: cookie, now: now) == nil)
        #expect(signer.session(fromCookie: cookie, now: now.adding(nanoseconds: SessionSigner.lifetimeSeconds * Timestamp.nanosecondsPerSecond)) == nil)
        #expect(signer.session(fromCookie: "garbage", now: now) == nil)
        let token = signer.csrfToken(nonce: session.nonce)
        #expect(signer.checkCSRF(token, nonce: session.nonce))
        #expect(!signer.checkCSRF(token, nonce: SessionSigner.nonce()))
        #expect(!signer.checkCSRF(nil, nonce: session.nonce))
        #expect(!signer.checkCSRF(String(token.dropLast()), nonce: session.nonce))
        let signIn = signer.signInCookieValue(nonce: "abc", now: now)
        #expect(signer.signInNonce(fromCookie: signIn, now: now) == "abc")
        #expect(signer.signInNonce(fromCookie: signIn.replacingOccurrences(of: "abc", with: "abd"), now: now) == nil)
        #expect(signer.signInNonce(fromCookie: signIn, now: now.adding(nanoseconds: 601 * Timestamp.nanosecondsPerSecond)) == nil)
    }

    @Test("form bodies and cookie headers")
    func forms() {
        let fields = formFields(Array("plan=pro+max&from=2026-12-01&csrf=a%2Fb%3D&empty=&plan=second&bad=%zz&broken=%C3".utf8))
        #expect(fields["plan"] == "pro max")
        #expect(fields["from"] == "2026-12-01")
        #expect(fields["csrf"] == "a/b=")
        #expect(fields["empty"] == "")
        #expect(fields["bad"] == "%zz")
        #expect(fields["broken"] == nil, "not UTF-8 after decoding")
        let jar = cookies("a=1; tally_session=v1.x.y; a=2;junk")
        #expect(jar["a"] == "1" && jar["tally_session"] == "v1.x.y" && jar["junk"] == nil)
    }

    static func attributeValues(_ name: String, ofTag prefix: String, in text: String) -> [String] {
        text.components(separatedBy: prefix).dropFirst().compactMap { tag in
            guard let range = tag.range(of: " \(name)=\"") else { return nil }
            return String(tag[range.upperBound...].prefix { $0 != "\"" })
        }
    }
}
