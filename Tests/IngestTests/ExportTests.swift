import Foundation
import Testing

@Suite("Export")
struct ExportTests {
    @Test("export gives every accepted event once; ingesting it into an empty store gives identical aggregates")
    func roundTrip() throws {
        let source = try DaemonHarness()
        try source.start()
        var lines: [String] = []
        for index in 0..<300 {
            switch index % 4 {
            case 0: lines.append(eventLine(id: "e\(index)", customer: "cus_\(index % 7)"))
            case 1: lines.append(eventLine(id: "e\(index)", customer: "cus_\(index % 7)", meter: "tokens", value: "\"0.\(index)\"",
                                           extra: #","properties":{"model":"m\#(index % 3)","billable":true,"n":1.50}"#))
            case 2: lines.append(eventLine(id: "e\(index)", customer: "cus_\(index % 7)", meter: "storage_gb", value: "\(index)"))
            default: lines.append(eventLine(id: "e\(index)", customer: "cus_\(index % 7)", meter: "active_users",
                                            extra: #","properties":{"user_id":"u\#(index % 11)"}"#))
            }
        }
        lines.append(eventLine(id: "e0", customer: "cus_0"))                 // a duplicate: exported once
        lines.append(eventLine(id: "e1", customer: "cus_1", meter: "nope"))  // rejected: not exported
        _ = try source.exchange(lines.joined(separator: "\n") + "\n")
        let common = ["--config", source.configPath, "--store", source.storePath]
        let export = try source.tally(["export"] + common)
        #expect(export.status == 0, "\(export.error)")
        let exported = export.output.split(separator: "\n")
        #expect(exported.count == 300)
        #expect(Set(exported.map { $0.split(separator: ",")[0] }).count == 300)  // every id once
        let filtered = try source.tally(["export", "--customer", "cus_3", "--meter", "tokens"] + common)
        #expect(filtered.output.split(separator: "\n").allSatisfy { $0.contains(#""customer":"cus_3""#) && $0.contains(#""meter":"tokens""#) })
        #expect(try source.tally(["export", "--to", "2001-01-01"] + common).output.isEmpty)

        let target = try DaemonHarness()
        try target.start()
        let resent = try target.tally(["send", "--socket", target.socketPath, "--json"], standardInput: Data(export.output.utf8))
        #expect(resent.output.contains(#""accepted":300,"duplicate":0,"rejected":0"#))
        for customer in 0..<7 {
            let original = try source.usage(customer: "cus_\(customer)")
            let copy = try target.usage(customer: "cus_\(customer)")
            #expect(original.meters.map { [$0.meter, $0.group.description, $0.quantity] } == copy.meters.map { [$0.meter, $0.group.description, $0.quantity] })
        }
        #expect(source.terminate() == 0)
        #expect(target.terminate() == 0)
    }
}
