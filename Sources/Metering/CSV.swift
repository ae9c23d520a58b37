/// RFC 4180 CSV fields and rows, shared by every CSV Tally writes (`tally rate --format csv`,
/// `tally usage --window … --csv`, `Accept: text/csv`).
///
/// A field is written as it is unless it holds a comma, a double quote, a carriage return or a line
/// feed; then it is enclosed in double quotes and each double quote in it is doubled. Whatever a
/// field holds, the row reads back as the same fields.
///
/// ```swift
/// CSV.field("cus_42")          // cus_42
/// CSV.field("say \"hi\", bye") // "say ""hi"", bye"
/// CSV.row(["a", "b,c"])        // a,"b,c"\n
/// ```
public enum CSV {
    /// `value` as one CSV field: unchanged when it needs no quoting, else quoted with `"` doubled.
    public static func field(_ value: String) -> String {
        // Bytes, not Characters: "\r\n" is one Character that equals neither "\r" nor "\n".
        guard value.utf8.contains(where: { $0 == comma || $0 == quote || $0 == lineFeed || $0 == carriageReturn }) else {
            return value
        }
        var quoted = "\""
        quoted.reserveCapacity(value.utf8.count + 2)
        for character in value.unicodeScalars {
            if character == "\"" { quoted.unicodeScalars.append("\"") }
            quoted.unicodeScalars.append(character)
        }
        quoted.unicodeScalars.append("\"")
        return quoted
    }

    /// The fields as one CSV record, each through ``field(_:)``, joined by commas and ended by `\n`.
    public static func row(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\n"
    }

    private static let comma = UInt8(ascii: ",")
    private static let quote = UInt8(ascii: "\"")
    private static let lineFeed = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")
}
