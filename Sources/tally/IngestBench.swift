import ArgumentParser
import Credits
import Foundation
import IngestClient
import Logging
import TallyConfiguration
import Metering
import Storage

struct IngestBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Durable ingest throughput and ack latency through the real daemon and socket.",
        discussion: """
            Starts `tally serve` on a temporary store, optionally fills it with remembered identities
            first, streams synthetic events with random UUIDv4 ids over the socket, and prints durable
            events/s (acknowledged after fsync), the ack latency, the daemon's ready time and its
            anonymous resident memory (RssAnon).

            Customers are drawn uniformly at random by default (--customers-order), as real traffic
            arrives. --window 0 streams without a window (a firehose, as `tally send` of a big file);
            --rate sends at a fixed rate whatever the answers (an open-loop producer), its latency
            measured from when each line was due; --connections shares the load among producers.
            The daemon starts as after a clean stop (the identity index read from the snapshot the
            stop left); --after-crash starts it without one (the index rebuilt from LMDB).

            Examples:
              tally bench ingest --events 1000000 --identities-prefill 50000000
              tally bench ingest --customers 100000 --window 0
              tally bench ingest --customers 100000 --rate 150000 --json
            """
    )

    @Option(help: "Events to stream.") var events = 1_000_000
    @Option(help: "Distinct customers.") var customers = 1_000
    @Option(name: .customLong("customers-order"), help: ArgumentHelp(
        "How events pick their customer: uniform (at random), zipf (s = 1.1: a few send most) or round-robin.",
        valueName: "order"))
    var customersOrder: String = CustomerOrder.uniform.rawValue
    @Option(help: "Meters (the first counts, the others sum).") var meters = 3
    @Option(name: .customLong("identities-prefill"), help: "Identities the store remembers before the run.")
    var identitiesPrefill = 1_000_000
    @Option(name: .long, help: "ingest.commit_max_events for the run.") var commitMaxEvents = 8192
    @Option(name: .long, help: ArgumentHelp("Where to put the temporary store (default: the system's temporary directory).", valueName: "dir"))
    var directory: String?
    @Option(name: .long, help: "Lines each connection keeps unanswered (default: 2 × commit-max-events; 0: no window, a firehose).")
    var window: Int?
    @Option(name: .long, help: ArgumentHelp("Send at this many events/s in all, whatever the answers (an open-loop producer).", valueName: "events_per_s"))
    var rate: Int?
    @Option(name: .long, help: "Producer connections sharing the events.") var connections = 1
    @Option(name: .long, help: "Seed for the synthetic events (default: random).") var seed: UInt64?
    @Option(name: .long, help: ArgumentHelp("Hostile connections pushing lines as fast as the daemon takes them while the measured producer (with --rate) runs.", valueName: "connections"))
    var flood = 0
    @Flag(name: .customLong("flood-reads"), help: "The flooding connections read their answers (by default they never do).")
    var floodReads = false

    @Flag(name: .customLong("flood-distinct"), help: "The flood sends new events on every pass (stored and folded), not the same 1,000 again (duplicates).")
    var floodDistinct = false
    @Flag(name: .customLong("after-crash"), help: "Start the daemon as after a crash: without the identity index snapshot a clean stop leaves, so it rebuilds the index from LMDB.")
    var afterCrash = false

    @Flag(name: .customLong("without-buckets"), help: "Run the daemon without usage buckets (usage over time), to measure what they cost in the same run as a default one.")
    var withoutBuckets = false
    @Flag(help: "Keep the temporary store afterwards.") var keep = false
    @Flag(help: "Put an amount limit (50/80/100% steps) on every customer, through a priced default plan.") var limits = false
    @Flag(help: "Grant prepaid credits to every customer (through a priced default plan, with a balance_below limit) before the run: each commit burns them down.")
    var credits = false
    @Flag(help: "Print one JSON object with every figure instead of text.") var json = false

    func validate() throws {
        guard events > 0, customers > 0, meters > 0, identitiesPrefill >= 0 else {
            throw ValidationError("--events, --customers and --meters must be at least 1, --identities-prefill at least 0")
        }
        guard CustomerOrder(rawValue: customersOrder) != nil else {
            throw ValidationError("--customers-order must be one of \(CustomerOrder.allCases.map(\.rawValue).joined(separator: ", ")); got \"\(customersOrder)\"")
        }
        if let window, window < 0 { throw ValidationError("--window must be 0 (no window) or more") }
        if let rate, rate < 1 { throw ValidationError("--rate must be at least 1 event/s") }
        guard (1...256).contains(connections) else { throw ValidationError("--connections must be from 1 to 256") }
        guard connections <= events else { throw ValidationError("--connections must not exceed --events") }
        guard (0...10_000).contains(flood) else { throw ValidationError("--flood must be from 0 to 10000 connections") }
        if flood > 0, rate == nil {
            throw ValidationError("--flood measures a well-behaved producer beside the flood: give it a --rate (e.g. --flood 200 --rate 1000 --events 20000)")
        }
    }

    func run() throws {
        LoggingSetup.bootstrap(level: .warning)
        let order = CustomerOrder(rawValue: customersOrder)!
        let base = directory ?? FileManager.default.temporaryDirectory.path
        let work = base + "/tally-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(atPath: work) } }
        let storePath = work + "/data"
        let socketPath = work + "/tally.sock"
        let configPath = work + "/tally.yaml"
        try Self.benchConfig(meters: meters, commitMaxEvents: commitMaxEvents, limits: limits, priced: credits).write(toFile: configPath, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: configPath)

        let windowLines = window ?? 2 * commitMaxEvents
        say("tally bench ingest: \(events) events, \(customers) customers (\(order.rawValue)), \(meters) meters, \(identitiesPrefill) identities prefilled"
            + ", \(connections) connection(s), " + (rate.map { "open loop at \($0) events/s" } ?? (windowLines == 0 ? "no window" : "window \(windowLines)"))
            + (limits ? ", an amount limit on every customer" : "") + (credits ? ", a credit grant and a balance limit on every customer" : ""))
        if credits {
            let started = Date()
            try grantCredits(config: config, storePath: storePath)
            say("  credits: a grant to each of \(customers) customers in \(Self.seconds(since: started)) s")
        }
        if identitiesPrefill > 0 {
            let started = Date()
            try prefill(config: config, storePath: storePath)
            say("  prefill: \(identitiesPrefill) identities in \(Self.seconds(since: started)) s")
        }

        let random = seed.map { FastRandom(seed: $0) } ?? FastRandom()
        let lines = SyntheticEvents.lines(events: events, customers: customers, meters: meters, order: order,
                                          time: Timestamp.now().rfc3339, random: random)

        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        daemon.arguments = ["serve", "--config", configPath, "--store", storePath, "--socket", socketPath, "--log-level", "warning"]
        if withoutBuckets {
            daemon.environment = ProcessInfo.processInfo.environment.merging([ServeCommand.withoutBucketsVariable: "1"]) { $1 }
        }
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
        let ready = Date().timeIntervalSince(started)
        say("  daemon ready in \(String(format: "%.2f", ready)) s (identity index \(afterCrash ? "rebuilt from LMDB, as after a crash" : "read from its snapshot, as after a clean stop"))")

        let measured = IngestLoad(socketPath: socketPath, lines: lines, connections: connections,
                                  windowLines: windowLines == 0 ? events : windowLines, rate: rate.map(Double.init))
        let load: IngestLoad.Result
        var floodFigures: FloodFigures?
        if flood > 0 {
            (load, floodFigures) = try FloodFigures.measure(measured, daemon: daemon.processIdentifier, socketPath: socketPath,
                                                            connections: flood, readsAnswers: floodReads,
                                                            distinct: floodDistinct) { say($0) }
        } else {
            load = try measured.run()
        }
        let memory = Self.memory(daemon.processIdentifier)
        let cpu = Self.cpuSeconds(daemon.processIdentifier)
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()

        let seconds = Double(load.elapsedNanoseconds) / 1e9
        let eventsPerSecond = Double(load.accepted) / seconds
        let figures: [(String, String)] = [
            ("events_per_s", String(format: "%.0f", eventsPerSecond)),
            ("ack_p50_ms", load.percentile(0.50)), ("ack_p99_ms", load.percentile(0.99)),
            ("ack_p999_ms", load.percentile(0.999)), ("ack_max_ms", load.percentile(1.0)),
            ("ready_s", String(format: "%.2f", ready)),
            ("rss_anon_mib", "\(memory.anonymous)"), ("rss_mib", "\(memory.resident)"),
            ("daemon_cpu_s", String(format: "%.2f", cpu.process)), ("writer_cpu_s", String(format: "%.2f", cpu.writer)),
            ("customers", "\(customers)"), ("customers_order", "\"\(order.rawValue)\""),
            ("identities", "\(identitiesPrefill)"), ("events", "\(events)"), ("accepted", "\(load.accepted)"),
            ("start", afterCrash ? "\"after_crash\"" : "\"after_stop\""), ("connections", "\(connections)"), ("window", "\(windowLines)"), ("rate", rate.map { "\($0)" } ?? "null"),
            ("buckets", withoutBuckets ? "false" : "true"),
        ] + (rate == nil ? [] : [("ack_max_ms_by_second", load.maximaBySecondJSON)]) + (floodFigures?.json ?? [])
        if json {
            print("{" + figures.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
        } else {
            print(String(format: "  durable: %.0f events/s (%d accepted, %d duplicate, %d rejected in %.2f s)",
                         eventsPerSecond, load.accepted, load.duplicate, load.rejected, seconds))
            print("  ack latency\(rate == nil ? "" : " (from when each line was due)"): p50 \(load.percentile(0.50)) ms, "
                  + "p99 \(load.percentile(0.99)) ms, p99.9 \(load.percentile(0.999)) ms, max \(load.percentile(1.0)) ms")
            print("  daemon resident memory at the end: \(memory.resident) MiB (RssAnon \(memory.anonymous) MiB); exit status \(daemon.terminationStatus)")
            print(String(format: "  daemon CPU time: %.2f s, of which the writer thread %.2f s (steadier than events/s on a shared machine)",
                         cpu.process, cpu.writer))
            if let floodFigures { print(floodFigures.text) }
        }
        if load.accepted != events {
            throw CommandFailure("only \(load.accepted) of \(events) events were accepted: the benchmark is not valid")
        }
    }

    /// Progress lines go to standard error with --json, so standard output is the JSON alone.
    private func say(_ text: String) {
        if json { FileHandle.standardError.write(Data((text + "\n").utf8)) } else { print(text) }
    }

    static func benchConfig(meters: Int, commitMaxEvents: Int, limits: Bool, priced: Bool = false) -> String {
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
        if limits || priced {
            yaml += "plans:\n  - code: bench\n    currency: USD\n    prices:\n"
            for index in 0..<meters {
                yaml += "      - { meter: m\(index), model: per_unit, unit_amount: \"0.001\" }\n"
            }
            yaml += "default_plan: bench\n"
        }
        if limits || priced {
            yaml += "limits:\n"
        }
        if limits {
            yaml += "  - { plan: bench, amount: \"1000000\", action: warning, notify_at: [50, 80, 100] }\n"
        }
        if priced {
            yaml += "  - { plan: bench, balance_below: \"10\", action: warning }\n"
        }
        return yaml
    }

    /// A grant of 1,000,000 USD to every customer, written before the daemon starts.
    private func grantCredits(config: TallyConfig, storePath: String) throws {
        let store = try TallyStore(path: storePath, configuration: .init(meters: config.meters, billingPeriod: config.billing.period),
                                   access: .readWrite, logger: Logger(label: "bench"))
        let now = Timestamp.now()
        for index in 0..<customers {
            let grant = CreditGrant(id: "bench", customer: "cus_\(index)", amount: 1_000_000, currency: "USD", effectiveAt: now, grantedAt: now)
            _ = try store.grantCredits(grant, comparingEffectiveAt: false)
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
        // The prefill writer stands in for a daemon that stopped: a clean stop leaves the snapshot.
        if !afterCrash { try writer.saveIdentityIndex() }
    }

    /// Synthetic events with customers and meters round-robin (what `tally bench archive` records).
    static func makeLines(events: Int, customers: Int, meters: Int, time: Timestamp = .now()) -> [[UInt8]] {
        SyntheticEvents.lines(events: events, customers: customers, meters: meters, order: .roundRobin, time: time.rfc3339)
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

    /// CPU time (user + system, seconds) of a process since it started, and of its `tally-writer`
    /// thread (0 when unreadable).
    static func cpuSeconds(_ pid: Int32) -> (process: Double, writer: Double) {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        func seconds(_ statPath: String) -> Double {
            // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
            guard let stat = try? String(contentsOfFile: statPath, encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return 0 }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
            return (user + system) / ticks
        }
        var writer = 0.0
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        for task in tasks {
            let name = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)) ?? ""
            if name.hasPrefix("tally-writer") { writer += seconds("/proc/\(pid)/task/\(task)/stat") }
        }
        return (seconds("/proc/\(pid)/stat"), writer)
    }

    /// VmRSS and RssAnon of a process, in MiB (0 when unreadable).
    static func memory(_ pid: Int32) -> (resident: Int, anonymous: Int) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func mebibytes(_ field: String) -> Int {
            for line in status.split(separator: "\n") where line.hasPrefix(field) {
                return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0) / 1024
            }
            return 0
        }
        return (mebibytes("VmRSS:"), mebibytes("RssAnon:"))
    }
}

/// Producers of a benchmark: each connection on its own thread sends every `connections`-th line,
/// windowed or at a fixed rate; latencies of all lines, merged.
struct IngestLoad {
    let socketPath: String
    let lines: [[UInt8]]
    let connections: Int
    let windowLines: Int
    let rate: Double?

    struct Result {
        var accepted = 0
        var duplicate = 0
        var rejected = 0
        var elapsedNanoseconds: UInt64 = 0
        var latencies: [UInt64] = []
        /// With a rate: the largest latency of the lines due in each second of the run.
        var maximaBySecond: [UInt64] = []

        /// The largest latency of each second, in milliseconds, as a JSON array.
        var maximaBySecondJSON: String {
            "[" + maximaBySecond.map { String(format: "%.1f", Double($0) / 1e6) }.joined(separator: ",") + "]"
        }

        /// The latency at `fraction` (1.0: the maximum), in milliseconds with two decimals.
        func percentile(_ fraction: Double) -> String {
            guard !latencies.isEmpty else { return "null" }
            let value = latencies[min(latencies.count - 1, Int(Double(latencies.count) * fraction))]
            return String(format: "%.2f", Double(value) / 1e6)
        }
    }

    func run() throws -> Result {
        let lock = NSLock()
        nonisolated(unsafe) var results: [Int: Swift.Result<(LineSender.Summary, [UInt64], [UInt64]), ClientError>] = [:]
        let started = MonotonicClock.nanoseconds()
        let group = DispatchGroup()
        for connection in 0..<connections {
            group.enter()
            let thread = Thread { [self] in
                let outcome = send(connection)
                lock.withLock { results[connection] = outcome }
                group.leave()
            }
            thread.name = "tally-bench-producer-\(connection)"
            thread.start()
        }
        group.wait()
        var result = Result()
        result.elapsedNanoseconds = MonotonicClock.nanoseconds() - started
        for (_, outcome) in lock.withLock({ results }) {
            let (summary, latencies, maxima) = try outcome.get()
            if result.maximaBySecond.count < maxima.count {
                result.maximaBySecond += Array(repeating: 0, count: maxima.count - result.maximaBySecond.count)
            }
            for (second, maximum) in maxima.enumerated() {
                result.maximaBySecond[second] = max(result.maximaBySecond[second], maximum)
            }
            result.accepted += summary.accepted
            result.duplicate += summary.duplicate
            result.rejected += summary.rejected
            result.latencies.append(contentsOf: latencies)
        }
        result.latencies.sort()
        return result
    }

    private func send(_ connection: Int) -> Swift.Result<(LineSender.Summary, [UInt64], [UInt64]), ClientError> {
        let indexes = Array(stride(from: connection, to: lines.count, by: connections))
        var latencies: [UInt64] = []
        var maxima: [UInt64] = []
        latencies.reserveCapacity(indexes.count)
        let sender = LineSender(socketPath: socketPath, options: .init(windowLines: rate == nil ? windowLines : indexes.count))
        do throws(ClientError) {
            let summary: LineSender.Summary
            if let rate {
                let perConnection = rate / Double(connections)
                let start = MonotonicClock.nanoseconds() + 1_000_000
                var source = PacedLines(lines: lines, indexes: indexes, rate: perConnection, startNanoseconds: start)
                summary = try sender.run(source: &source) { outcome in
                    let due = PacedLines.dueNanoseconds(of: outcome.index, start: start, rate: perConnection)
                    let latency = outcome.receivedAtNanoseconds > due ? outcome.receivedAtNanoseconds - due : 0
                    latencies.append(latency)
                    let second = Int((due - start) / 1_000_000_000)
                    while maxima.count <= second { maxima.append(0) }
                    maxima[second] = max(maxima[second], latency)
                }
            } else {
                summary = try sender.run(lines: indexes.lazy.map { lines[$0][...] }) { outcome in
                    latencies.append(outcome.latencyNanoseconds)
                }
            }
            return .success((summary, latencies, maxima))
        } catch {
            return .failure(error)
        }
    }
}
