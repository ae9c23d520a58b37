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
            Rates every customer with a plan or usage in the period (or only --customer): one
            statement per customer, as one JSON object per line (or CSV rows, one per statement line),
            then a summary. With --out, writes DIR/statements.json (or .csv) and DIR/summary.json
            (or .csv); without it, prints the statements and then the summary.
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
        if let cluster = config.cluster {
            try ClusterRate.run(self, config: config, cluster: cluster, period: interval)
            return
        }
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
        report(summary)
    }

    /// With --out, what the run wrote, on standard output.
    func report(_ summary: RatingRunSummary) {
        guard let out else { return }
        print("rated \(summary.customers) customers, \(summary.lines) lines for period \(summary.period.label) into \(out)")
        for total in summary.totals {
            let amount = Currency.named(total.currency)?.formatted(total.amount) ?? total.amount.description
            print("  \(total.currency): \(amount) (exact \(total.exactAmount))")
        }
    }
}

/// Where statements go: `statements.<format>` and `summary.<format>` in a directory, or standard output.
///
/// One file holds every statement (one JSON object per line, or CSV rows), written through one
/// buffered descriptor: a run over 100,000 customers would otherwise spend more time creating
/// 100,000 small files than rating them.
final class StatementOutput {
    private let directory: String?
    private let format: String
    private let descriptor: Int32
    private let path: String
    private var buffer: [UInt8] = []

    init(directory: String?, format: String) throws {
        self.directory = directory
        self.format = format
        if let directory {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw CommandFailure("cannot create '\(directory)': \(error.localizedDescription)")
            }
            path = directory + "/statements." + format
            descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw CommandFailure("cannot write '\(path)': \(String(cString: strerror(errno)))") }
        } else {
            path = "standard output"
            descriptor = STDOUT_FILENO
        }
        buffer.reserveCapacity(1 << 20)
        if format == "csv" { append(StatementFormat.csvHeader + "\n") }
    }

    deinit {
        if directory != nil { close(descriptor) }
    }

    func write(_ statement: Statement) throws {
        if format == "csv" {
            append(StatementFormat.csv(statement))
        } else {
            buffer.append(contentsOf: StatementFormat.jsonBytes(statement))
            buffer.append(UInt8(ascii: "\n"))
        }
        if buffer.count >= 1 << 20 { try flush() }
    }

    func finish(_ summary: RatingRunSummary) throws {
        let text = format == "csv" ? StatementFormat.csv(summary) : StatementFormat.json(summary) + "\n"
        if let directory {
            try flush()
            try Self.writeAll(Array(text.utf8), to: directory + "/summary." + format)
        } else {
            if format == "json" { append(text) }
            try flush()
        }
    }

    private func append(_ text: String) {
        buffer.append(contentsOf: text.utf8)
    }

    /// Appends bytes as they are (one line of `tally export`).
    func append(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
    }

    /// Writes the buffer out once it holds a megabyte.
    func flushIfFull() throws {
        if buffer.count >= 1 << 20 { try flush() }
    }

    func flush() throws {
        try Self.write(buffer, descriptor: descriptor, path: path)
        buffer.removeAll(keepingCapacity: true)
    }

    static func writeAll(_ bytes: [UInt8], to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw CommandFailure("cannot write '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        try write(bytes, descriptor: descriptor, path: path)
    }

    static func write(_ bytes: [UInt8], descriptor: Int32, path: String) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw CommandFailure("cannot write '\(path)': \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }
}

