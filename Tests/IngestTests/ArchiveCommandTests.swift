import Foundation
import Metering
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The harness config with daily periods (so that yesterday can be closed inside the dedup window)
/// and, optionally, an archive schedule.
private func dailyConfig(archiveInterval: String = "0") -> String {
    DaemonHarness.defaultConfig.replacingOccurrences(of: "period: monthly", with: "period: daily")
        + "\narchive:\n  interval: \(archiveInterval)\n"
}

private let yesterday = BillingPeriod.daily.previous(BillingPeriod.daily.interval(containing: .now()))

/// Event lines at times spread over yesterday, across meters and customers.
private func yesterdayLines(count: Int, prefix: String = "y") -> [String] {
    let span = yesterday.end.nanosecondsSinceEpoch - yesterday.start.nanosecondsSinceEpoch
    return (0..<count).map { index in
        let time = Timestamp(nanosecondsSinceEpoch: yesterday.start.nanosecondsSinceEpoch + span / Int64(count + 1) * Int64(index + 1)).rfc3339
        switch index % 3 {
        case 0:
            return eventLine(id: "\(prefix)\(index)", customer: "cus_\(index % 5)", extra: #","time":"\#(time)""#)
        case 1:
            return eventLine(id: "\(prefix)\(index)", customer: "cus_\(index % 5)", meter: "tokens", value: "\"\(index % 97).25\"",
                             extra: #","time":"\#(time)","properties":{"model":"m\#(index % 2)","billable":"true"}"#)
        default:
            return eventLine(id: "\(prefix)\(index)", customer: "cus_\(index % 5)", meter: "active_users",
                             extra: #","time":"\#(time)","properties":{"user_id":"u\#(index % 13)"}"#)
        }
    }
}

private func usageRows(_ daemon: DaemonHarness, period: String?) throws -> [String] {
    try (0..<5).flatMap { customer in
        try daemon.usage(customer: "cus_\(customer)", period: period).meters.map { "cus_\(customer) \($0.meter) \($0.group) \($0.quantity)" }
    }.sorted()
}

private func segmentFiles(_ daemon: DaemonHarness) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: daemon.storePath + "/archive")) ?? []).filter { $0.hasSuffix(".tseg") }.sorted()
}

@Suite("Archive command")
struct ArchiveCommandTests {
    @Test("ingest → close period → archive → export gives every accepted event once; re-ingested, identical aggregates")
    func archiveThenExport() throws {
        let source = try DaemonHarness(config: dailyConfig())
        try source.start()
        let common = ["--config", source.configPath, "--store", source.storePath]
        let old = yesterdayLines(count: 900)
        let today = (0..<100).map { eventLine(id: "t\($0)", customer: "cus_\($0 % 5)") }
        let sent = try source.tally(["send", "--socket", source.socketPath, "--json"],
                                    standardInput: Data((old + today + [old[0], today[0]]).joined(separator: "\n").utf8 + [10]))
        #expect(sent.output.contains(#""accepted":1000,"duplicate":2,"rejected":0"#), "\(sent.output) \(sent.error)")
        let exportBefore = try source.tally(["export"] + common).output
        let usageBefore = try usageRows(source, period: yesterday.label)

        #expect(try source.tally(["period", "close", yesterday.label] + common).status == 0)
        let archived = try source.tally(["archive", "--json"] + common)  // beside the running daemon
        #expect(archived.status == 0, "\(archived.error)")
        #expect(archived.output.contains(#""events":900"#), "\(archived.output)")
        #expect(!segmentFiles(source).isEmpty)
        let again = try source.tally(["archive"] + common)
        #expect(again.output.contains("nothing to archive"), "\(again.output)")

        let export = try source.tally(["export"] + common)
        #expect(export.status == 0, "\(export.error)")
        let lines = export.output.split(separator: "\n")
        #expect(lines.count == 1000)
        #expect(Set(lines) == Set(exportBefore.split(separator: "\n")))  // the same events, each once
        #expect(try usageRows(source, period: yesterday.label) == usageBefore)
        let onlyYesterday = try source.tally(["export", "--from", yesterday.start.rfc3339, "--to", yesterday.end.rfc3339] + common)
        #expect(onlyYesterday.output.split(separator: "\n").count == 900)
        // The daemon still deduplicates archived events (their identities are within the window)
        // and refuses new ones for the closed period.
        let replies = try source.exchange(old[1] + "\n" + eventLine(id: "t0", customer: "cus_0") + "\n")
        #expect(replies == [duplicateLine, duplicateLine])

        let target = try DaemonHarness(config: dailyConfig())
        try target.start()
        let resent = try target.tally(["send", "--socket", target.socketPath, "--json"], standardInput: Data(export.output.utf8))
        #expect(resent.output.contains(#""accepted":1000,"duplicate":0,"rejected":0"#), "\(resent.output)")
        #expect(try usageRows(target, period: yesterday.label) == usageBefore)
        #expect(try usageRows(target, period: nil) == (try usageRows(source, period: nil)))
        #expect(source.terminate() == 0)
        #expect(target.terminate() == 0)
    }

    @Test("rerate reads a period's archived events: the same config gives no difference, a new price the expected one")
    func rerateArchivedPeriod() throws {
        let priced = dailyConfig() + """
            plans:
              - code: basic
                currency: USD
                prices:
                  - { meter: api_calls, model: per_unit, unit_amount: "0.01" }
            default_plan: basic

            """
        let daemon = try DaemonHarness(config: priced)
        try daemon.start()
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        _ = try daemon.tally(["send", "--socket", daemon.socketPath], standardInput: Data(yesterdayLines(count: 600).joined(separator: "\n").utf8))
        #expect(try daemon.tally(["period", "close", yesterday.label] + common).status == 0)
        let rated = try daemon.tally(["rate", "--period", yesterday.label] + common)
        #expect(try daemon.tally(["archive"] + common).status == 0)
        #expect(try daemon.tally(["archive", "--verify"] + common).output.contains("600 events"))
        // api_calls: every third event of 600, 40 per customer → 0.40 each.
        let same = try daemon.tally(["rerate", "--period", yesterday.label, "--original-config", daemon.configPath, "--json"] + common)
        #expect(same.status == 0, "\(same.error)")
        #expect(same.output.contains(#""summary":{"#) && same.output.contains(#""changed":0"#), "\(same.output)")
        #expect(same.output.contains(#""total":"0.40""#))
        let statements = rated.output.split(separator: "\n").filter { $0.contains(#""customer""#) && !$0.contains(#""summary""#) }
        #expect(statements.count == 5)
        for statement in statements { #expect(same.output.contains(String(statement)), "\(statement)") }

        let newPrices = daemon.directory + "/new-prices.yaml"
        try priced.replacingOccurrences(of: #"unit_amount: "0.01""#, with: #"unit_amount: "0.015""#).write(toFile: newPrices, atomically: true, encoding: .utf8)
        let changed = try daemon.tally(["rerate", "--period", yesterday.label, "--config", newPrices, "--store", daemon.storePath,
                                        "--original-config", daemon.configPath, "--json"])
        #expect(changed.status == 0, "\(changed.error)")
        #expect(changed.output.contains(#""changed":5"#), "\(changed.output)")
        #expect(changed.output.contains(#"{"currency":"USD","original":"2.00","rerated":"3.00","difference":"1.00"}"#), "\(changed.output)")
        #expect(daemon.terminate() == 0)
    }

    @Test("a damaged segment: verify and export name the file and fail; usage, rating and ingest are unaffected")
    func damagedSegment() throws {
        let daemon = try DaemonHarness(config: dailyConfig())
        try daemon.start()
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        _ = try daemon.tally(["send", "--socket", daemon.socketPath], standardInput: Data(yesterdayLines(count: 300).joined(separator: "\n").utf8))
        #expect(try daemon.tally(["period", "close", yesterday.label] + common).status == 0)
        #expect(try daemon.tally(["archive"] + common).status == 0)
        let verified = try daemon.tally(["archive", "--verify"] + common)
        #expect(verified.status == 0)
        #expect(verified.output.contains("300 events: every segment matches"), "\(verified.output)")

        let file = daemon.storePath + "/archive/" + segmentFiles(daemon)[0]
        var bytes = try #require(FileManager.default.contents(atPath: file))
        bytes[bytes.count - 5] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: file))
        let broken = try daemon.tally(["archive", "--verify"] + common)
        #expect(broken.status != 0)
        #expect(broken.error.contains(file) && broken.error.contains("damaged"), "\(broken.error)")
        let export = try daemon.tally(["export"] + common)
        #expect(export.status != 0)
        #expect(export.error.contains(file), "\(export.error)")
        #expect(try daemon.usage(customer: "cus_1", period: yesterday.label).meters.count >= 3)
        #expect(try daemon.tally(["rate", "--period", yesterday.label] + common).status == 0)
        #expect(try daemon.exchange(eventLine(id: "after") + "\n") == [acceptedLine])
        #expect(daemon.terminate() == 0)
    }

    @Test("serve archives on its schedule while ingesting, without losing or doubling an event")
    func scheduledArchive() throws {
        let digest = "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef"  // sha256("test-key")
        let port = try freePort()
        let daemon = try DaemonHarness(config: dailyConfig(archiveInterval: "1s") + "http:\n  api_keys_sha256: [\"\(digest)\"]\n")
        try daemon.start(extraArguments: ["--http", "127.0.0.1:\(port)"])
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        _ = try daemon.tally(["send", "--socket", daemon.socketPath], standardInput: Data(yesterdayLines(count: 3000).joined(separator: "\n").utf8))
        #expect(try daemon.tally(["period", "close", yesterday.label] + common).status == 0)
        // Keep ingesting today's events while the schedule archives yesterday's.
        var todayAccepted = 0
        let deadline = Date().addingTimeInterval(30)
        var archivedAll = false
        var round = 0
        while Date() < deadline, !archivedAll {
            let batch = (0..<200).map { eventLine(id: "t\(round)-\($0)", customer: "cus_\($0 % 5)") }
            todayAccepted += try daemon.exchange(batch.joined(separator: "\n") + "\n").filter { $0 == acceptedLine }.count
            round += 1
            let verified = try daemon.tally(["archive", "--verify"] + common)
            archivedAll = verified.output.contains("3000 events")
        }
        #expect(archivedAll, "the schedule did not archive within 30 s:\n\(daemon.log())")
        let export = try daemon.tally(["export"] + common).output.split(separator: "\n")
        #expect(export.count == 3000 + todayAccepted)
        #expect(Set(export).count == export.count)
        // The counters move when the run ends (after the index sweep): wait for it.
        var metrics = ""
        let metricsDeadline = Date().addingTimeInterval(10)
        while Date() < metricsDeadline, !metrics.contains("tally_archived_events_total 3000") {
            metrics = try httpRequest(port: port, method: "GET", path: "/metrics", key: "test-key").body
            if !metrics.contains("tally_archived_events_total 3000") { usleep(50_000) }
        }
        #expect(metrics.contains("tally_archived_events_total 3000"), "\(metrics)")
        #expect(metrics.contains("tally_maintenance_step_duration"))
        #expect(daemon.terminate() == 0)
        #expect(daemon.log().contains("archive run finished"))
    }

    @Test("SIGKILL of serve in the middle of its scheduled archive: after the restart its schedule completes the step, each event once")
    func daemonKilledMidArchive() throws {
        let daemon = try DaemonHarness(config: dailyConfig(archiveInterval: "1s"))
        try daemon.start()
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        let total = 120_000
        let lines = yesterdayLines(count: total)
        let sent = try daemon.tally(["send", "--socket", daemon.socketPath, "--json"], standardInput: Data(lines.joined(separator: "\n").utf8))
        #expect(sent.output.contains(#""accepted":\#(total)"#), "\(sent.output)")
        let usageBefore = try usageRows(daemon, period: yesterday.label)
        #expect(try daemon.tally(["period", "close", yesterday.label] + common).status == 0)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, segmentFiles(daemon).count < 2 { usleep(200) }
        daemon.killHard()
        let recorded = try daemon.tally(["archive", "--verify"] + common)
        #expect(recorded.status == 0, "\(recorded.error)")
        #expect((Int(recorded.output.prefix { $0 != " " }) ?? 0) >= 1, "\(recorded.output)")

        try daemon.start()
        var complete = false
        let restartDeadline = Date().addingTimeInterval(30)
        while Date() < restartDeadline, !complete {
            complete = try daemon.tally(["archive", "--verify"] + common).output.contains("\(total) events")
            if !complete { usleep(100_000) }
        }
        #expect(complete, "the restarted daemon did not finish the archive:\n\(daemon.log())")
        let export = try daemon.tally(["export"] + common).output.split(separator: "\n")
        #expect(export.count == total)
        #expect(Set(export).count == total)
        #expect(try usageRows(daemon, period: yesterday.label) == usageBefore)
        #expect(try daemon.exchange(lines[5] + "\n") == [duplicateLine])
        #expect(daemon.terminate() == 0)
    }

    @Test("SIGKILL in the middle of archiving: nothing lost or doubled, and the next run completes the step")
    func killedMidArchive() throws {
        let daemon = try DaemonHarness(config: dailyConfig())
        try daemon.start()
        let common = ["--config", daemon.configPath, "--store", daemon.storePath]
        let total = 120_000
        let lines = yesterdayLines(count: total)
        let sent = try daemon.tally(["send", "--socket", daemon.socketPath, "--json"],
                                    standardInput: Data(lines.joined(separator: "\n").utf8))
        #expect(sent.output.contains(#""accepted":\#(total)"#), "\(sent.output)")
        #expect(daemon.terminate() == 0)
        #expect(try daemon.tally(["period", "close", yesterday.label] + common).status == 0)
        let usageBefore = try usageRows(daemon, period: yesterday.label)

        // Kill `tally archive` once its second segment file appears: the first segment is then
        // recorded (segments move one after the other) and the second is written, maybe not recorded.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DaemonHarness.tallyBinary)
        process.arguments = ["archive"] + common
        process.currentDirectoryURL = URL(fileURLWithPath: daemon.directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let archiveDirectory = daemon.storePath + "/archive"
        while process.isRunning {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: archiveDirectory)) ?? []
            if names.filter({ $0.hasSuffix(".tseg") }).count >= 2 { break }
            usleep(200)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let verified = try daemon.tally(["archive", "--verify"] + common)
        #expect(verified.status == 0, "\(verified.error)")
        let partial = try daemon.tally(["export"] + common).output.split(separator: "\n")
        let recordedBeforeKill = Int(verified.output.prefix { $0 != " " }) ?? 0
        #expect(recordedBeforeKill >= 1, "\(verified.output)")
        #expect(partial.count == total)
        #expect(Set(partial).count == total)

        let finished = try daemon.tally(["archive", "--json"] + common)
        #expect(finished.status == 0, "\(finished.error)")
        #expect(try daemon.tally(["archive"] + common).output.contains("nothing to archive"))
        let export = try daemon.tally(["export"] + common).output.split(separator: "\n")
        #expect(export.count == total)
        #expect(Set(export) == Set(partial))
        let files = segmentFiles(daemon)
        let listed = try daemon.tally(["archive", "--verify"] + common)
        #expect(listed.output.hasPrefix("\(files.count) segments, \(total) events"), "\(listed.output) \(files)")
        try daemon.start()
        #expect(try usageRows(daemon, period: yesterday.label) == usageBefore)
        #expect(try daemon.exchange(lines[0..<3].joined(separator: "\n") + "\n") == [duplicateLine, duplicateLine, duplicateLine])
        #expect(daemon.terminate() == 0)
    }
}
