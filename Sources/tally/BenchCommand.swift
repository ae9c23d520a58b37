import ArgumentParser
import Foundation
import IngestClient
import Logging
import TallyConfiguration
import Metering
import Storage

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print the figures BENCHMARKS.md records.",
        discussion: """
            Example:
              tally bench ingest --events 1000000 --identities-prefill 1000000
            """,
        subcommands: [IngestBench.self, RateBench.self, ArchiveBench.self]
    )
}

struct IngestBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Durable ingest throughput and ack latency through the real daemon and socket.",
        discussion: """
            Starts `tally serve` on a temporary store, optionally fills it with remembered identities
            first, streams synthetic events with random UUIDv4 ids over the socket, and prints durable
            events/s (acknowledged after fsync) and the ack latency p50/p99.

            Example:
              tally bench ingest --events 1000000 --identities-prefill 50000000
            """
    )

    @Option(help: "Events to stream.") var events = 1_000_000
    @Option(help: "Distinct customers.") var customers = 1_000
    @Option(help: "Meters (the first counts, the others sum).") var meters = 3
    @Option(name: .customLong("identities-prefill"), help: "Identities the store remembers before the run.")
    var identitiesPrefill = 1_000_000
    @Option(name: .long, help: "ingest.commit_max_events for the run.") var commitMaxEvents = 8192
    @Option(name: .long, help: ArgumentHelp("Where to put the temporary store (default: the system's temporary directory).", valueName: "dir"))
    var directory: String?
    @Option(name: .long, help: "Lines the client keeps unanswered (default: 2 × commit-max-events).") var window: Int?
    @Flag(help: "Keep the temporary store afterwards.") var keep = false
    @Flag(help: "Put an amount limit (50/80/100% steps) on every customer, through a priced default plan.") var limits = false

    func validate() throws {
        guard events > 0, customers > 0, meters > 0, identitiesPrefill >= 0, (window ?? 1) > 0 else {
            throw ValidationError("--events, --customers, --meters and --window must be at least 1, --identities-prefill at least 0")
        }
    }

    func run() throws {
        LoggingSetup.bootstrap(level: .warning)
        let base = directory ?? FileManager.default.temporaryDirectory.path
        let work = base + "/tally-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(atPath: work) } }
        let storePath = work + "/data"
        let socketPath = work + "/tally.sock"
        let configPath = work + "/tally.yaml"
        var meterLines = ""
        for index in 0..<meters {
            meterLines += "  - { code: m\(index), aggregation: \(index == 0 ? "count" : "sum") }\n"
        }
        var yaml = """
            ingest:
              commit_max_events: \(commitMaxEvents)
              commit_max_delay: 2ms
            meters:
            \(meterLines)
            """
        if limits {
            yaml += "plans:\n  - code: bench\n    currency: USD\n    prices:\n"
            for index in 0..<meters {
                yaml += "      - { meter: m\(index), model: per_unit, unit_amount: \"0.001\" }\n"
            }
            yaml += "default_plan: bench\n"
            yaml += "limits:\n  - { plan: bench, amount: \"1000000\", action: warning, notify_at: [50, 80, 100] }\n"
        }
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: configPath)

        print("tally bench ingest: \(events) events, \(customers) customers, \(meters) meters, \(identitiesPrefill) identities prefilled"
              + (limits ? ", an amount limit on every customer" : ""))
        if identitiesPrefill > 0 {
            let started = Date()
            try prefill(config: config, storePath: storePath)
            print("  prefill: \(identitiesPrefill) identities in \(Self.seconds(since: started)) s")
        }

        let lines = Self.makeLines(events: events, customers: customers, meters: meters)

        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        daemon.arguments = ["serve", "--config", configPath, "--store", storePath, "--socket", socketPath, "--log-level", "warning"]
        daemon.currentDirectoryURL = URL(fileURLWithPath: work)  // relative paths (the alert log) stay in the run's directory
        let started = Date()
        try daemon.run()
        defer {
            if daemon.isRunning {
                kill(daemon.processIdentifier, SIGKILL)
                daemon.waitUntilExit()
            }
        }
        try Self.waitForSocket(socketPath, daemon: daemon)
        print("  daemon ready in \(Self.seconds(since: started)) s (identity index loaded)")

        var latencies: [UInt64] = []
        latencies.reserveCapacity(events)
        let sender = LineSender(socketPath: socketPath, options: .init(windowLines: window ?? 2 * commitMaxEvents))
        let summary = try sender.run(lines: lines.lazy.map { ArraySlice($0) }) { outcome in
            latencies.append(outcome.latencyNanoseconds)
        }
        let resident = Self.residentMegabytes(daemon.processIdentifier)
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()

        latencies.sort()
        let seconds = Double(summary.elapsedNanoseconds) / 1e9
        let rate = Double(summary.accepted) / seconds
        func percentile(_ fraction: Double) -> String {
            guard !latencies.isEmpty else { return "-" }
            let value = latencies[min(latencies.count - 1, Int(Double(latencies.count) * fraction))]
            return String(format: "%.2f", Double(value) / 1e6)
        }
        print(String(format: "  durable: %.0f events/s (%d accepted, %d duplicate, %d rejected in %.2f s)",
                     rate, summary.accepted, summary.duplicate, summary.rejected, seconds))
        print("  ack latency: p50 \(percentile(0.50)) ms, p99 \(percentile(0.99)) ms")
        print("  daemon resident memory at the end: \(resident) MiB; exit status \(daemon.terminationStatus)")
        if summary.accepted != events {
            throw CommandFailure("only \(summary.accepted) of \(events) events were accepted: the benchmark is not valid")
        }
    }

    private func prefill(config: TallyConfig, storePath: String) throws {
        let store = try TallyStore(
            path: storePath,
            configuration: .init(meters: config.meters, billingPeriod: config.billing.period),
            access: .readWrite,
            logger: Logger(label: "tally.bench"))
        let writer = try StoreWriter(store: store)
        let interactive = isatty(STDERR_FILENO) == 1
        try writer.insertSyntheticIdentities(count: identitiesPrefill) { written in
            if interactive { FileHandle.standardError.write(Data("\r  prefilling: \(written)".utf8)) }
        }
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    /// Synthetic events: random UUIDv4 ids, customers and meters round-robin, small integer values, a time.
    static func makeLines(events: Int, customers: Int, meters: Int, time: Timestamp = .now()) -> [[UInt8]] {
        var random = FastRandom()
        let hex = Array("0123456789abcdef".utf8)
        let time = time.rfc3339
        var lines: [[UInt8]] = []
        lines.reserveCapacity(events)
        for index in 0..<events {
            var line: [UInt8] = []
            line.reserveCapacity(140)
            line.append(contentsOf: #"{"id":""#.utf8)
            let high = random.next()
            let low = random.next()
            for nibble in 0..<32 {
                if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 { line.append(UInt8(ascii: "-")) }
                var value = Int(((nibble < 16 ? high : low) >> UInt64(60 - (nibble % 16) * 4)) & 0xF)
                if nibble == 12 { value = 4 }                     // version 4
                if nibble == 16 { value = 8 | (value & 0x3) }     // RFC 4122 variant
                line.append(hex[value])
            }
            line.append(contentsOf: #"","customer":"cus_\#(index % customers)","meter":"m\#(index % meters)","value":\#(1 + Int(random.next() % 100)),"time":"\#(time)"}"#.utf8)
            lines.append(line)
        }
        return lines
    }

    static func waitForSocket(_ path: String, daemon: Process) throws {
        let deadline = Date().addingTimeInterval(1800)
        while Date() < deadline {
            if let connection = try? IngestConnection.connect(path: path) {
                connection.close()
                return
            }
            guard daemon.isRunning else { throw CommandFailure("the daemon exited with status \(daemon.terminationStatus) before listening") }
            usleep(20_000)
        }
        throw CommandFailure("the daemon did not listen on \(path) within 30 minutes")
    }

    static func seconds(since start: Date) -> String {
        String(format: "%.2f", Date().timeIntervalSince(start))
    }

    static func residentMegabytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
            return kilobytes / 1024
        }
        return 0
    }
}

/// xoshiro256**: fast, seeded once from the system's generator; for synthetic ids only.
struct FastRandom: RandomNumberGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var seed = SystemRandomNumberGenerator()
        state = (seed.next(), seed.next(), seed.next(), seed.next() | 1)
    }

    mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }
}
