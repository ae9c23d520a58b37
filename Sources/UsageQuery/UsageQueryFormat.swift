import Foundation
public import Metering

/// The JSON and CSV of a usage query: the shapes `tally usage --window` and the HTTP API print.
public enum UsageQueryFormat {
    /// `{"from","to","window","tz","meters":[{"meter","aggregation","customer","group":{},"windows":[{"start","end","quantity"}],"total"}]}`,
    /// with the list convention's `"data"` (the same series as `meters`), `"has_more"` and
    /// `"next_cursor"` after `meters` when `paged`.
    public static func json(_ result: UsageQueryResult, paged: Bool = false) -> String {
        let plan = result.plan
        let edges = plan.edges.map { WindowPlan.format(Timestamp(nanosecondsSinceEpoch: $0), in: plan.timeZone) }
        var writer = JSONWriter()
        writer.raw("{"); writer.key("from"); writer.string(edges[0])
        writer.raw(","); writer.key("to"); writer.string(edges[edges.count - 1])
        writer.raw(","); writer.key("window"); writer.string(plan.window.rawValue)
        writer.raw(","); writer.key("tz"); writer.string(plan.zoneName)
        writer.raw(","); writer.key("meters")
        let seriesStart = writer.output.utf8.count
        writer.raw("[")
        for (index, series) in result.series.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{"); writer.key("meter"); writer.string(series.meter)
            writer.raw(","); writer.key("aggregation"); writer.string(series.aggregation.rawValue)
            writer.raw(","); writer.key("customer"); writer.string(series.customer)
            writer.raw(","); writer.key("group"); writer.raw("{")
            for (position, entry) in series.group.enumerated() {
                if position > 0 { writer.raw(",") }
                writer.key(entry.property); writer.string(entry.value)
            }
            writer.raw("}"); writer.raw(","); writer.key("windows"); writer.raw("[")
            for (window, quantity) in series.quantities.enumerated() {
                if window > 0 { writer.raw(",") }
                writer.raw("{"); writer.key("start"); writer.string(edges[window])
                writer.raw(","); writer.key("end"); writer.string(edges[window + 1])
                writer.raw(","); writer.key("quantity"); writer.string(quantity.description)
                writer.raw("}")
            }
            writer.raw("]"); writer.raw(","); writer.key("total"); writer.string(series.total.description)
            writer.raw("}")
        }
        writer.raw("]")
        if paged {
            let series = String(writer.output.utf8.dropFirst(seriesStart))!
            writer.raw(","); writer.key("data"); writer.raw(series)
            writer.raw(","); writer.key("has_more"); writer.raw(result.nextCursor == nil ? "false" : "true")
            writer.raw(","); writer.key("next_cursor")
            if let cursor = result.nextCursor { writer.string(cursor) } else { writer.raw("null") }
        }
        writer.raw("}")
        return writer.output
    }

    /// A header `meter,customer,group,start,end,quantity` and one row per window; the group as
    /// `key=value` pairs joined by `;`; fields quoted as RFC 4180 asks when they need it.
    public static func csv(_ result: UsageQueryResult) -> String {
        let plan = result.plan
        let edges = plan.edges.map { WindowPlan.format(Timestamp(nanosecondsSinceEpoch: $0), in: plan.timeZone) }
        var text = "meter,customer,group,start,end,quantity\n"
        for series in result.series {
            let group = series.group.map { "\($0.property)=\($0.value)" }.joined(separator: ";")
            let prefix = CSV.field(series.meter) + "," + CSV.field(series.customer) + "," + CSV.field(group) + ","
            for (window, quantity) in series.quantities.enumerated() {
                text += prefix + edges[window] + "," + edges[window + 1] + "," + quantity.description + "\n"
            }
        }
        return text
    }
}
