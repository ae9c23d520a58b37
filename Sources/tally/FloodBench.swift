import Foundation
import IngestClient

/// What `tally bench ingest --flood N` adds: a flood beside the measured producer, and the daemon's
/// anonymous memory before, during and after it.
struct FloodFigures {
    var connections: Int
    var readsAnswers: Bool
    var distinct: Bool
    var mebibytesSent: Int
    /// RssAnon (MiB) with the daemon idle before the flood, once it has served a second of traffic.
    var idle: Int
    /// The highest RssAnon sampled from the flood's start to the last sample after it.
    var peak: Int
    /// RssAnon every half second for 10 s after the flood ended (its connections closed).
    var after: [Int]

    /// Runs `load` with `connections` flooding beside it; the flood starts 2 s before the load and
    /// stops when it ends.
    static func measure(_ load: IngestLoad, daemon: Int32, socketPath: String, connections: Int, readsAnswers: Bool,
                        distinct: Bool, say: (String) -> Void) throws -> (IngestLoad.Result, FloodFigures) {
        // The baseline of a daemon in service: its tables and pools made by a second of traffic.
        let warmUp = try Flood(path: socketPath, connections: 1, readsAnswers: true, meter: "m0")
        warmUp.start()
        usleep(1_000_000)
        _ = warmUp.stop()
        usleep(2_000_000)
        let idle = IngestBench.memory(daemon).anonymous
        let flood = try Flood(path: socketPath, connections: connections, readsAnswers: readsAnswers, meter: "m0",
                              distinct: distinct)
        flood.start()
        say("  flood: \(connections) connections \(readsAnswers ? "reading" : "not reading") their answers; RssAnon idle \(idle) MiB")
        let sampler = PeakSampler(pid: daemon)
        sampler.start()
        usleep(2_000_000)
        let result: IngestLoad.Result
        do {
            result = try load.run()
        } catch {
            flood.stop()
            _ = sampler.stop()
            throw error
        }
        let sent = flood.stop()
        var after: [Int] = []
        for _ in 0..<20 {
            usleep(500_000)
            after.append(IngestBench.memory(daemon).anonymous)
        }
        let peak = sampler.stop()
        return (result, FloodFigures(connections: connections, readsAnswers: readsAnswers, distinct: distinct, mebibytesSent: sent >> 20,
                                     idle: idle, peak: peak, after: after))
    }

    var json: [(String, String)] {
        [("flood", "\(connections)"), ("flood_reads", readsAnswers ? "true" : "false"),
         ("flood_distinct", distinct ? "true" : "false"), ("flood_mib_sent", "\(mebibytesSent)"),
         ("rss_anon_idle_mib", "\(idle)"), ("rss_anon_flood_peak_mib", "\(peak)"),
         ("rss_anon_after_flood_mib", "[" + after.map(String.init).joined(separator: ",") + "]")]
    }

    var text: String {
        "  flood: \(connections) connections sent \(mebibytesSent) MiB; RssAnon idle \(idle) MiB, peak \(peak) MiB, "
            + "after the flood (every 0.5 s for 10 s): \(after.map(String.init).joined(separator: " ")) MiB"
    }
}

/// Samples a process's RssAnon every 100 ms on a thread of its own and keeps the highest.
private final class PeakSampler: @unchecked Sendable {
    private let pid: Int32
    private let lock = NSLock()
    private var peak = 0
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init(pid: Int32) { self.pid = pid }

    func start() {
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let now = IngestBench.memory(pid).anonymous
                lock.withLock { peak = max(peak, now) }
                usleep(100_000)
            }
            done.signal()
        }
    }

    func stop() -> Int {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { peak }
    }
}
