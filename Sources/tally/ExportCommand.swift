import ArgumentParser
import Foundation
import Metering
import Storage

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Stream stored events as NDJSON, in a normalised form `tally send` can ingest again.",
        discussion: """
            Every event once, archived ones (`tally archive`) first, segment by segment, then the live \
            store's, each in the order it was committed: {"id","customer","meter","value","time",
            "properties"}, value a decimal string, time the event's own time or, when it had none,
            when it was received. Ingesting the export into an empty store gives the same aggregates.
            Reads the store directly (works while `tally serve` runs). --from is inclusive, --to
            exclusive; both are RFC 3339 times or YYYY-MM-DD (UTC midnight).

            Examples:
              tally export > events.ndjson
              tally export --from 2026-11-01 --to 2026-12-01 --customer cus_42
            """
    )

    @OptionGroup var options: StoreOptions
    @Option(help: "Only events at or after this time.") var from: String?
    @Option(help: "Only events before this time.") var to: String?
    @Option(help: "Only this customer's events.") var customer: String?
    @Option(help: "Only this meter's events.") var meter: String?

    func run() throws {
        let config = try options.loadConfig()
        let start = try from.map(parseDate)
        let end = try to.map(parseDate)
        let store: TallyStore
        do {
            store = try options.openStore(config, access: .readOnly)
        } catch {
            throw CommandFailure(error.message)
        }
        let output = try StatementOutput(directory: nil, format: "ndjson")
        do {
            try EventArchive(store: store).forEachEvent(from: start, to: end) { stored in
                if let customer, stored.event.customer != customer { return true }
                if let meter, stored.event.meter != meter { return true }
                output.append(bytes: Self.line(stored))
                try output.flushIfFull()
                return true
            }
            try output.flush()
        } catch let error as StoreError {
            throw CommandFailure(error.message)
        }
    }

    /// One normalised event line, `\n` included.
    static func line(_ stored: StoredEvent) -> [UInt8] {
        let event = stored.event
        var writer = JSONWriter()
        writer.raw("{"); writer.key("id"); writer.string(event.id)
        writer.raw(","); writer.key("customer"); writer.string(event.customer)
        writer.raw(","); writer.key("meter"); writer.string(event.meter)
        writer.raw(","); writer.key("value"); writer.string(event.value.description)
        writer.raw(","); writer.key("time"); writer.string(stored.effectiveTime.rfc3339)
        if !event.properties.isEmpty {
            writer.raw(","); writer.key("properties"); writer.raw("{")
            for (index, property) in event.properties.enumerated() {
                if index > 0 { writer.raw(",") }
                writer.key(property.key)
                switch property.value {
                case .string(let text): writer.string(text)
                case .number(let number): writer.raw(number.description)
                case .bool(let flag): writer.raw(flag ? "true" : "false")
                }
            }
            writer.raw("}")
        }
        writer.raw("}\n")
        return writer.bytes
    }
}
