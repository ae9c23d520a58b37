import Metering
import Testing

/// Reads RFC 4180 CSV back into records, strictly: the inverse of `CSV.row`, for round trips.
func readCSV(_ text: String) -> [[String]]? {
    var records: [[String]] = []
    var record: [String] = []
    var field: [Unicode.Scalar] = []
    var scalars = Array(text.unicodeScalars)[...]
    var atFieldStart = true
    while let scalar = scalars.popFirst() {
        if atFieldStart && scalar == "\"" {
            // A quoted field runs to the next quote not doubled.
            while true {
                guard let next = scalars.popFirst() else { return nil }
                if next == "\"" {
                    if scalars.first == "\"" { scalars.removeFirst(); field.append("\"") } else { break }
                } else {
                    field.append(next)
                }
            }
            atFieldStart = false
            guard let after = scalars.first, after == "," || after == "\n" else { return nil }
            continue
        }
        switch scalar {
        case ",":
            record.append(String(String.UnicodeScalarView(field))); field = []; atFieldStart = true
        case "\n":
            record.append(String(String.UnicodeScalarView(field))); field = []; atFieldStart = true
            records.append(record); record = []
        case "\"", "\r":
            return nil  // not allowed unquoted
        default:
            field.append(scalar); atFieldStart = false
        }
    }
    guard field.isEmpty, record.isEmpty else { return nil }
    return records
}

@Suite("CSV (RFC 4180)")
struct CSVTests {
    @Test(arguments: ["plain", "", "cus_42", "model=gpt;region=eu", "12.50", "café 🙂", " spaced ", "tab\there", "a\u{0}b"])
    func fieldsThatNeedNoQuotingAreUnchanged(value: String) {
        #expect(CSV.field(value) == value)
    }

    @Test(arguments: [
        ("a,b", "\"a,b\""), ("say \"hi\"", "\"say \"\"hi\"\"\""), ("line\nbreak", "\"line\nbreak\""),
        ("cr\ronly", "\"cr\ronly\""), ("crlf\r\nend", "\"crlf\r\nend\""), ("\"", "\"\"\"\""), (",", "\",\""),
        ("\r\n", "\"\r\n\""), ("\"a\",\"b\"", "\"\"\"a\"\",\"\"b\"\"\""),
    ])
    func fieldsWithCommasQuotesAndLineBreaksAreQuoted(value: String, expected: String) {
        #expect(CSV.field(value) == expected)
    }

    @Test func rowsReadBackAsTheSameFieldsWhateverTheyHold() throws {
        let awkward = ["", ",", "\"", "\r", "\n", "\r\n", "a\"b,c\r\nd", "x\u{0}\u{1F}\u{7F}y", "é,\"🙂\"", " lead", "trail "]
        var fields: [String] = []
        for first in awkward {
            for second in awkward { fields.append(first + second) }
        }
        for start in stride(from: 0, to: fields.count, by: 5) {
            let record = Array(fields[start..<min(start + 5, fields.count)])
            let row = CSV.row(record)
            #expect(row.hasSuffix("\n"))
            #expect(readCSV(row) == [record], "\(record.debugDescription) as \(row.debugDescription)")
        }
        #expect(CSV.row(["a", "b", "c"]) == "a,b,c\n")
    }
}
