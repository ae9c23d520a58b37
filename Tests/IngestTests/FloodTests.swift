import Foundation
import IngestClient
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hostile load against the real daemon (issue 12): 200 connections flooding, a well-behaved
/// producer beside them, one buffer budget over all of it, and memory given back afterwards.
@Suite("Flood: fairness and the buffer budget through the daemon")
struct FloodTests {
    static let key = "flood-test-key"
    /// `printf %s flood-test-key | sha256sum`.
    static let digest = "c3d34a81e02bb30de179e731fff0daa9ad7883c8ce37246e5f6edbb78327440c"

    /// A daemon with HTTP (for /metrics) and a small budget, so the flood reaches it in a moment.
    private static func daemon(budget: Int) throws -> (DaemonHarness, Int) {
        let daemon = try DaemonHarness(config: DaemonHarness.defaultConfig.replacingOccurrences(
            of: "  max_line_bytes: 65536", with: "  max_line_bytes: 65536\n  max_buffered_bytes: \(budget)") + """

            http:
              api_keys_sha256: ["\(digest)"]
            """)
        let port = try freePort()
        try daemon.start(extraArguments: ["--http", "127.0.0.1:\(port)"])
        guard daemon.waitForHTTP(port: port) == 200 else { throw HarnessError("no HTTP:\n\(daemon.log())") }
        return (daemon, port)
    }

    @Test("a well-behaved producer is answered while 200 connections flood; reading stays within the budget; memory comes back",
          arguments: [false, true])
    func wellBehavedBesideAFlood(floodReadsAnswers: Bool) throws {
        // Small enough that 200 connections' first reads pass it, whatever their fair shares.
        let budget = 4 << 20
        let (daemon, port) = try Self.daemon(budget: budget)
        let pid = try #require(daemon.process?.processIdentifier)
        // Warm up (the runtime's first allocations), then take the idle baseline.
        let warm = (0..<2000).map { eventLine(id: "warm-\($0)", customer: "warm") + "\n" }.joined()
        #expect(try daemon.exchange(warm).allSatisfy { $0 == acceptedLine })
        usleep(1_000_000)
        let idle = try #require(anonymousKilobytes(of: pid))

        let flood = try Flood(path: daemon.socketPath, connections: 200, readsAnswers: floodReadsAnswers, meter: "api_calls")
        let sampler = BufferedBytesSampler(port: port, key: Self.key, pid: pid)
        flood.start()
        sampler.start()
        usleep(1_000_000)

        // The well-behaved producer: one line at a time, each answered before the next.
        let good = try daemon.connect()
        for index in 0..<50 {
            try good.sendAll(Array((eventLine(id: "good-\(index)", customer: "good") + "\n").utf8))
            #expect(try good.readResponse() == .accepted)
        }
        good.close()
        let (buffered, peak) = sampler.stop()
        let metrics = try httpRequest(port: port, method: "GET", path: "/metrics", key: Self.key).body
        let sent = flood.stop()
        #expect(sent > budget, "the flood sent only \(sent) bytes")

        // The flood reached the budget and was paused by it, and reading never ran far past it:
        // at most one read (16 KiB of lines, charged with their parsed form) per connection beyond.
        if !floodReadsAnswers {
            #expect(Self.sample("tally_ingest_read_pauses_total", in: metrics) ?? 0 > 0, "\(metrics)")
        }
        let bound = budget + 200 * 64 * 1024 + (2 << 20)
        #expect(buffered.max() ?? 0 > budget / 2, "buffered: \(buffered)")
        #expect(buffered.allSatisfy { $0 <= bound }, "buffered past \(bound): \(buffered.max() ?? 0)")

        // Every good line counted once.
        #expect(try daemon.usage(customer: "good").quantity("api_calls") == "50")

        // After the flood, anonymous memory stays near the idle baseline: a generous bound, as what
        // stays depends on how the heap fragmented (on a loaded machine a few MiB more); the budget
        // keeps the peak small here, and BENCHMARKS.md has the curve of a flood without it.
        let memoryBound = idle + 32 * 1024
        var after = Int.max
        for _ in 0..<60 where after > memoryBound {
            usleep(500_000)
            after = anonymousKilobytes(of: pid) ?? Int.max
        }
        #expect(after <= memoryBound, "RssAnon idle \(idle) KiB, peak \(peak) KiB, after the flood \(after) KiB")
        #expect(daemon.terminate() == 0)
    }

    @Test("HTTP bodies share the budget: concurrent bodies past it wait their turn and all succeed")
    func httpBodiesShareTheBudget() throws {
        // Each body (1,000 events of about 1.6 KB) is past the budget alone: a second one read
        // beside it must wait.
        let (daemon, port) = try Self.daemon(budget: 1 << 20)
        let padding = String(repeating: "x", count: 1500)
        let results = ResultBox()
        let group = DispatchGroup()
        for request in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                let events = (0..<1000).map {
                    #"{"id":"h\#(request)-\#($0)","customer":"http","meter":"api_calls","properties":{"pad":"\#(padding)"}}"#
                }
                let outcome = try? httpRequest(port: port, method: "POST", path: "/v1/events", key: Self.key,
                                               body: "[" + events.joined(separator: ",") + "]")
                results.add(outcome)
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 120) == .success)
        let answers = results.all
        #expect(answers.count == 8)
        for answer in answers {
            #expect(answer?.status == 200)
            #expect(answer?.body.components(separatedBy: #""status":"accepted""#).count == 1001)
        }
        #expect(try daemon.usage(customer: "http").quantity("api_calls") == "8000")
        let metrics = try httpRequest(port: port, method: "GET", path: "/metrics", key: Self.key).body
        #expect(Self.sample("tally_ingest_buffered_bytes", in: metrics) == 0)
        #expect(Self.sample("tally_ingest_read_pauses_total", in: metrics) ?? 0 > 0, "\(metrics)")
        #expect(daemon.terminate() == 0)
    }

    /// The value of an unlabelled sample in the Prometheus text format.
    static func sample(_ name: String, in text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ")[1]).map { Int($0) }
        }
        return nil
    }
}

/// Scrapes `tally_ingest_buffered_bytes` and reads the daemon's RssAnon every 50 ms until stopped.
private final class BufferedBytesSampler: @unchecked Sendable {
    private let port: Int
    private let key: String
    private let pid: Int32
    private var peakKilobytes = 0
    private let lock = NSLock()
    private var samples: [Int] = []
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init(port: Int, key: String, pid: Int32) {
        self.port = port
        self.key = key
        self.pid = pid
    }

    func start() {
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                if let text = try? httpRequest(port: port, method: "GET", path: "/metrics", key: key).body,
                   let value = FloodTests.sample("tally_ingest_buffered_bytes", in: text) {
                    lock.withLock { samples.append(value) }
                }
                if let now = anonymousKilobytes(of: pid) {
                    lock.withLock { peakKilobytes = max(peakKilobytes, now) }
                }
                usleep(50_000)
            }
            done.signal()
        }
    }

    /// The budget samples, and the highest RssAnon seen in KiB.
    func stop() -> ([Int], Int) {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { (samples, peakKilobytes) }
    }
}

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [(status: Int, body: String)?] = []
    var all: [(status: Int, body: String)?] { lock.withLock { results } }
    func add(_ result: (status: Int, body: String)?) { lock.withLock { results.append(result) } }
}

/// RssAnon of a process in KiB, from /proc.
func anonymousKilobytes(of pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("RssAnon:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}
