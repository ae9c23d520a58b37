/// Builds JSON text with keys in the documented order; decimals are written as strings by callers.
///
/// Tally's machine-readable outputs (`--json`, statements) are interfaces: their key order is
/// fixed here rather than left to an encoder.
public struct JSONWriter: Sendable {
    public private(set) var output = ""

    public init() {}

    /// Appends text as it is (punctuation, numbers).
    public mutating func raw(_ text: String) { output += text }

    /// Appends a JSON string.
    public mutating func string(_ text: String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case let control where control.value < 0x20:
                let hex = String(control.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    /// Appends `"name":`.
    public mutating func key(_ name: String) {
        string(name)
        output += ":"
    }
}
