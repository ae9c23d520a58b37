import Metering

/// A bar chart drawn as inline SVG on the server: one bar per window, a y axis from zero to a
/// round maximum with its unit, time labels under the bars, and dashed lines at period edges.
///
/// Heights are exact decimals scaled to the plot (a tenth of a pixel), never binary floats; each
/// bar carries its window's start and quantity (`data-start`, `data-quantity`) and a tooltip.
struct BarChart {
    struct Bar {
        var start: Timestamp
        var end: Timestamp
        var quantity: ExactDecimal
    }

    /// A vertical marker at `time`: a period's start or end.
    struct Edge {
        var time: Timestamp
        var label: String
    }

    var id: String?
    var cssClass: String
    /// `data-meter` on the `svg`, when the chart is one meter's.
    var meter: String?
    /// The accessible name: what the chart shows.
    var title: String
    /// The y axis's unit: "events", "api_calls (count)".
    var unit: String
    var bars: [Bar]
    var edges: [Edge] = []
    /// How a bar's start is written under the axis: "12-03" for days, "14:00" for hours.
    var label: (Timestamp) -> String

    static let width = 720
    static let height = 190
    static let left = 64
    static let right = 12
    static let top = 22
    static let bottom = 26
    static var plotWidth: Int { width - left - right }
    static var plotHeight: Int { height - top - bottom }

    func render() -> String {
        let maximum = bars.map(\.quantity).max() ?? .zero
        let ceiling = Self.roundCeiling(maximum)
        var svg = "<svg"
        if let id { svg += " id=\"\(escape(id))\"" }
        svg += " class=\"chart \(escape(cssClass))\""
        if let meter { svg += " data-meter=\"\(escape(meter))\"" }
        svg += " viewBox=\"0 0 \(Self.width) \(Self.height)\" role=\"img\" aria-label=\"\(escape(title))\""
        svg += " data-windows=\"\(bars.count)\" preserveAspectRatio=\"xMinYMin meet\">"
        svg += "<title>\(escape(title))</title>"
        // The y axis: 0, half, the round maximum, with the unit.
        svg += "<g class=\"axis y\">"
        for (index, value) in [ExactDecimal.zero, Self.half(ceiling), ceiling].enumerated() {
            let y = Self.top + Self.plotHeight - Self.plotHeight * index / 2
            svg += "<line class=\"grid\" x1=\"\(Self.left)\" x2=\"\(Self.width - Self.right)\" y1=\"\(y)\" y2=\"\(y)\"/>"
            svg += "<text x=\"\(Self.left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(escape(NumberText.grouped(value)))</text>"
        }
        svg += "<text class=\"unit\" x=\"\(Self.left)\" y=\"\(Self.top - 8)\">\(escape(unit))</text>"
        svg += "</g>"
        guard !bars.isEmpty else { return svg + "</svg>" }
        // Bars, each a tenth of a pixel exact.
        let gap = bars.count > 60 ? 0 : max(1, Self.plotWidth * 10 / bars.count / 6)
        svg += "<g class=\"bars\">"
        for (index, bar) in bars.enumerated() {
            let x = Self.left * 10 + Self.plotWidth * 10 * index / bars.count
            let width = Self.plotWidth * 10 * (index + 1) / bars.count - Self.plotWidth * 10 * index / bars.count - gap
            let height = ceiling.isZero ? 0 : Self.scaled(bar.quantity, of: ceiling, to: Self.plotHeight * 10)
            let y = (Self.top + Self.plotHeight) * 10 - height
            svg += "<rect class=\"bar\" x=\"\(Self.tenths(x))\" y=\"\(Self.tenths(y))\" width=\"\(Self.tenths(max(width, 1)))\" height=\"\(Self.tenths(height))\""
            svg += " data-start=\"\(bar.start.rfc3339)\" data-quantity=\"\(bar.quantity.description)\">"
            svg += "<title>\(escape(NumberText.time(bar.start))): \(escape(NumberText.grouped(bar.quantity)))</title></rect>"
        }
        svg += "</g>"
        // Time labels: at most seven, evenly spread, always the first.
        svg += "<g class=\"axis x\">"
        let step = max(1, (bars.count + 6) / 7)
        for index in stride(from: 0, to: bars.count, by: step) {
            let x = Self.left * 10 + Self.plotWidth * 10 * index / bars.count
            svg += "<line x1=\"\(Self.tenths(x))\" x2=\"\(Self.tenths(x))\" y1=\"\(Self.top + Self.plotHeight)\" y2=\"\(Self.top + Self.plotHeight + 4)\"/>"
            svg += "<text x=\"\(Self.tenths(x))\" y=\"\(Self.top + Self.plotHeight + 16)\">\(escape(label(bars[index].start)))</text>"
        }
        svg += "</g>"
        // Period edges inside the range.
        if let first = bars.first?.start, let last = bars.last?.end {
            let span = last.nanosecondsSinceEpoch - first.nanosecondsSinceEpoch
            for edge in edges where span > 0 && edge.time >= first && edge.time <= last {
                let offset = edge.time.nanosecondsSinceEpoch - first.nanosecondsSinceEpoch
                let x = Self.left * 10 + Int((Int128(Self.plotWidth * 10) * Int128(offset)) / Int128(span))
                // The label sits inside the plot, on the side of the line with room.
                let anchor = x > (Self.left + Self.plotWidth / 2) * 10 ? "end" : "start"
                let textX = anchor == "end" ? x - 40 : x + 40
                svg += "<g class=\"edge\"><line x1=\"\(Self.tenths(x))\" x2=\"\(Self.tenths(x))\" y1=\"\(Self.top)\" y2=\"\(Self.top + Self.plotHeight)\"/>"
                svg += "<text x=\"\(Self.tenths(textX))\" y=\"\(Self.top + 26)\" text-anchor=\"\(anchor)\">\(escape(edge.label))</text></g>"
            }
        }
        return svg + "</svg>"
    }

    /// `value` / `ceiling` × `span`, rounded to a whole number (of tenths of a pixel).
    static func scaled(_ value: ExactDecimal, of ceiling: ExactDecimal, to span: Int) -> Int {
        guard let product = try? value.multiplied(by: ExactDecimal(span)),
              let quotient = try? product.divided(by: ceiling, scale: 0, rounding: .halfAwayFromZero)
        else { return 0 }
        let whole = Int(quotient.description) ?? 0
        return min(max(whole, 0), span)
    }

    /// Tenths as text: 123 → "12.3", 120 → "12".
    static func tenths(_ value: Int) -> String {
        let sign = value < 0 ? "-" : ""
        let magnitude = abs(value)
        return magnitude % 10 == 0 ? "\(sign)\(magnitude / 10)" : "\(sign)\(magnitude / 10).\(magnitude % 10)"
    }

    /// The smallest 1, 2 or 5 × 10^k at or above `value` (1 for zero and below).
    static func roundCeiling(_ value: ExactDecimal) -> ExactDecimal {
        guard value > .zero else { return 1 }
        for exponent in -6...30 {
            for mantissa in [1, 2, 5] {
                let candidate = exponent >= 0
                    ? ExactDecimal(significand: Int128(mantissa) * power(exponent), scale: 0)
                    : ExactDecimal(significand: Int128(mantissa), scale: -exponent)
                if candidate >= value { return candidate }
            }
        }
        return value
    }

    static func half(_ value: ExactDecimal) -> ExactDecimal {
        (try? value.divided(by: 2, scale: 6, rounding: .halfAwayFromZero)) ?? value
    }

    private static func power(_ exponent: Int) -> Int128 {
        var result: Int128 = 1
        for _ in 0..<exponent { result *= 10 }
        return result
    }
}
