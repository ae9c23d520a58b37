import ArgumentParser
import Billing
import Foundation
import IngestClient
import TallyConfiguration
import Metering

struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Stream NDJSON events from a file or stdin to the daemon (the reference client).",
        discussion: """
            Every non-blank line is one event; every line is answered in order once durable. When the
            connection drops, send reconnects and resends every unanswered line (dedup makes that
            safe). Prints a summary; writes each rejected line with its reason to --rejects.

            Exit status: 0 when every line was accepted or duplicate, 1 when any line was rejected,
            2 when the daemon could not be reached or the connection could not be restored.

            Examples:
              tally send examples/events.ndjson
              produce-events | tally send --socket /run/tally.sock --rejects rejects.ndjson
            """
    )

    @Argument(help: ArgumentHelp("The NDJSON file; '-' or nothing reads stdin.", valueName: "file"))
    var file: String?

    @OptionGroup var options: StoreOptions

    @Option(name: .long, help: ArgumentHelp("Write each rejected line, with its reason, as NDJSON to this file.", valueName: "file"))
    var rejects: String?

    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false

    @Flag(name: .long, help: "No progress line, even on a terminal.")
    var quiet = false

    func run() throws {
        let socketPath = try resolveSocketPath()
        let descriptor: Int32
        if let file, file != "-" {
            descriptor = open(file, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw CommandFailure("cannot read '\(file)': \(String(cString: strerror(errno)))")
            }
        } else {
            descriptor = STDIN_FILENO
        }
        defer { if descriptor != STDIN_FILENO { close(descriptor) } }

        var rejectsFile: FileHandle?
        if let rejects {
            guard FileManager.default.createFile(atPath: rejects, contents: nil),
                  let handle = FileHandle(forWritingAtPath: rejects)
            else { throw CommandFailure("cannot write the rejects file '\(rejects)': check the path and its directory") }
            rejectsFile = handle
        }
        defer { try? rejectsFile?.close() }

        let progress = Progress(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        var reader = LineReader(fileDescriptor: descriptor)
        let summary: LineSender.Summary
        do {
            summary = try LineSender(socketPath: socketPath).run(source: &reader) { outcome in
                progress.count(outcome.response.status)
                if outcome.response.status == .rejected, let rejectsFile {
                    rejectsFile.write(Data(Self.rejectRecord(outcome).utf8))
                }
            }
        } catch {
            progress.finish()
            printError("error: \(error.message)")
            if error.code == .connectFailed {
                printError("Is `tally serve` running? Start it, or pass --socket with the daemon's socket path.")
            } else if let unanswered = error.unansweredLines {
                printError("\(unanswered) lines were not answered: send the same input again (dedup makes resending safe).")
            }
            throw ExitCode(2)
        }
        progress.finish()
        print(json ? Self.summaryJSON(summary) : Self.summaryText(summary))
        if summary.rejected > 0 { throw ExitCode(1) }
    }

    private func resolveSocketPath() throws -> String {
        if let socket = options.socket { return socket }
        if FileManager.default.fileExists(atPath: options.config) {
            return try options.loadConfig().ingest.socket
        }
        return IngestSettings().socket
    }

    static func rejectRecord(_ outcome: LineOutcome) -> String {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("line"); writer.raw(String(outcome.index + 1))
        writer.raw(","); writer.key("error"); writer.raw("{")
        writer.key("code"); writer.string(outcome.response.errorCode ?? "unknown")
        writer.raw(","); writer.key("message"); writer.string(outcome.response.message ?? "")
        if let field = outcome.response.field { writer.raw(","); writer.key("field"); writer.string(field) }
        writer.raw("},"); writer.key("input"); writer.string(String(decoding: outcome.line, as: UTF8.self))
        writer.raw("}\n")
        return writer.output
    }

    static func summaryText(_ summary: LineSender.Summary) -> String {
        var text = "\(summary.answered) events: \(summary.accepted) accepted, \(summary.duplicate) duplicate, \(summary.rejected) rejected"
        for (code, count) in summary.rejectedByCode.sorted(by: { $0.key < $1.key }) {
            text += "\n  rejected \(code): \(count)"
        }
        if summary.reconnects > 0 {
            text += "\n  reconnected \(summary.reconnects) times, resent \(summary.resentLines) unanswered lines"
        }
        return text
    }

    static func summaryJSON(_ summary: LineSender.Summary) -> String {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("accepted"); writer.raw(String(summary.accepted))
        writer.raw(","); writer.key("duplicate"); writer.raw(String(summary.duplicate))
        writer.raw(","); writer.key("rejected"); writer.raw(String(summary.rejected))
        writer.raw(","); writer.key("rejected_by_code"); writer.raw("{")
        for (index, entry) in summary.rejectedByCode.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { writer.raw(",") }
            writer.key(entry.key); writer.raw(String(entry.value))
        }
        writer.raw("},"); writer.key("reconnects"); writer.raw(String(summary.reconnects))
        writer.raw(","); writer.key("resent"); writer.raw(String(summary.resentLines))
        writer.raw("}")
        return writer.output
    }
}

/// A one-line progress display on a terminal's standard error, refreshed at most 10 times a second.
final class Progress {
    private let enabled: Bool
    private var accepted = 0
    private var duplicate = 0
    private var rejected = 0
    private var lastDraw: UInt64 = 0
    private var drawn = false

    init(enabled: Bool) { self.enabled = enabled }

    func count(_ status: IngestResponse.Status) {
        switch status {
        case .accepted: accepted += 1
        case .duplicate: duplicate += 1
        case .rejected: rejected += 1
        }
        guard enabled, (accepted + duplicate + rejected) & 1023 == 0 else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastDraw > 100_000_000 else { return }
        lastDraw = now
        drawn = true
        FileHandle.standardError.write(Data("\r\u{1B}[K\(accepted + duplicate + rejected) answered: \(accepted) accepted, \(duplicate) duplicate, \(rejected) rejected".utf8))
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
