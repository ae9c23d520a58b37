import ArgumentParser
import Billing
import Foundation
import Metering
import Rating
import Storage

struct RateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rate",
        abstract: "A batch rating run: one statement per customer for a period, and a summary.",
        discussion: """
            Rates every customer with a plan or usage in the period (or only --customer). With --out,
            writes DIR/statements/<customer>.json (or .csv) and DIR/summary.json (or .csv); without
            it, prints the statements (one JSON object per line, or CSV rows) and then the summary.
            Runs are deterministic: the same data gives byte-identical output. Close the period first
            (`tally period close`) so that late events cannot change it afterwards.

            Examples:
              tally rate --period 2026-11 --out statements/2026-11
              tally rate --period 2026-11 --customer cus_42 --format csv
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case json, csv }

    @OptionGroup var options: StoreOptions

    @Option(name: .long, help: ArgumentHelp("The period: YYYY-MM, YYYY-MM-DD or YYYY.", valueName: "period"))
    var period: String

    @Option(name: .long, help: "Only this customer.")
    var customer: String?

    @Option(name: .long, help: "json or csv.")
    var format: Format = .json

    @Option(name: .long, help: ArgumentHelp("Write files into this directory.", valueName: "dir"))
    var out: String?

    @Flag(name: .long, help: "No progress line, even on a terminal.")
    var quiet = false

    func run() throws {
        let config = try options.loadConfig()
        let interval = try resolvePeriod(period, config: config)
        let store: TallyStore
        do {
            store = try options.openStore(config, access: .readOnly)
        } catch {
            throw CommandFailure(error.message)
        }
        let output = try StatementOutput(directory: out, format: format.rawValue)
        let interactive = !quiet && isatty(STDERR_FILENO) == 1
        var lastDraw = DispatchTime.now().uptimeNanoseconds
        let summary = try RatingRun(config: config, period: interval).run(store: store, customer: customer, progress: { done, total in
            guard interactive, done & 255 == 0 || done == total else { return }
            let now = DispatchTime.now().uptimeNanoseconds
            guard now - lastDraw > 100_000_000 || done == total else { return }
            lastDraw = now
            FileHandle.standardError.write(Data("\r\u{1B}[Krated \(done)/\(total) customers".utf8))
        }) { statement in
            try output.write(statement)
        }
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        try output.finish(summary)
        if out != nil {
            print("rated \(summary.customers) customers, \(summary.lines) lines for period \(interval.label) into \(out!)")
            for total in summary.totals {
                let amount = Currency.named(total.currency)?.formatted(total.amount) ?? total.amount.description
                print("  \(total.currency): \(amount) (exact \(total.exactAmount))")
            }
        }
    }
}

/// Where statements go: files in a directory, or standard output.
final class StatementOutput {
    private let directory: String?
    private let format: String
    private var standardOutput = FileHandle.standardOutput
    private var wroteHeader = false

    init(directory: String?, format: String) throws {
        self.directory = directory
        self.format = format
        if let directory {
            do {
                try FileManager.default.createDirectory(atPath: directory + "/statements", withIntermediateDirectories: true)
            } catch {
                throw CommandFailure("cannot create '\(directory)/statements': \(error.localizedDescription)")
            }
        }
    }

    func write(_ statement: Statement) throws {
        let text = format == "csv" ? StatementFormat.csv(statement) : StatementFormat.json(statement) + "\n"
        if let directory {
            let header = format == "csv" ? StatementFormat.csvHeader + "\n" : ""
            try Self.writeFile(directory + "/statements/" + Self.fileName(statement.customer) + "." + format, header + text)
        } else {
            if format == "csv", !wroteHeader {
                standardOutput.write(Data((StatementFormat.csvHeader + "\n").utf8))
                wroteHeader = true
            }
            standardOutput.write(Data(text.utf8))
        }
    }

    func finish(_ summary: RatingRunSummary) throws {
        let text = format == "csv" ? StatementFormat.csv(summary) : StatementFormat.json(summary) + "\n"
        if let directory {
            try Self.writeFile(directory + "/summary." + format, text)
        } else if format == "json" {
            standardOutput.write(Data(text.utf8))
        }
    }

    /// A file name for a customer id: letters, digits, `.`, `_` and `-` as they are, every other
    /// byte as `%XX`, so that any id maps to one file and back.
    static func fileName(_ customer: String) -> String {
        var name = ""
        for byte in customer.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
                name.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                name += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        if name.allSatisfy({ $0 == "." }) { name = String(repeating: "%2E", count: name.count) }
        return name
    }

    static func writeFile(_ path: String, _ text: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw CommandFailure("cannot write '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var text = text
        try text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw CommandFailure("cannot write '\(path)': \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
