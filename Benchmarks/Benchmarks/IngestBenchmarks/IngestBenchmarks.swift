import Benchmark
import Foundation
import Logging
import Metering
import Storage

/// Micro-benchmarks of the ingest hot path: time and malloc counts (which do not drift with noise).
let benchmarks: @Sendable () -> Void = {
    let line = Array(#"{"id":"6f1c2a9e-4b7d-4c3e-9a51-0d2f7e8b1c44","customer":"cus_42","meter":"tokens","value":"12.5","time":"2026-11-22T10:00:00Z","properties":{"model":"large","region":"eu"}}"#.utf8)
    let parser = EventLineParser(meterCodes: ["api_calls", "tokens"], limits: .init())
    let receivedAt = Timestamp(year: 2026, month: 11, day: 22, hour: 10, minute: 0, second: 30, nanosecond: 0)!

    Benchmark("parse one event line",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal, .instructions], scalingFactor: .kilo)) { benchmark in
        line.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                blackHole(parser.parse(bytes, receivedAt: receivedAt))
            }
        }
    }

    Benchmark("group commit of 8192 events (dedup insert, event append, aggregate update, fsync)",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], maxIterations: 200)) { benchmark in
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-micro-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let meters = [Meter(code: "api_calls", aggregation: .count), Meter(code: "tokens", aggregation: .sum)]
        let store = try TallyStore(path: directory, configuration: .init(meters: meters, billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "bench"))
        let writer = try StoreWriter(store: store)
        var counter = 0
        var random = SystemRandomNumberGenerator()
        func batch() -> [PendingEvent] {
            (0..<8192).map { _ in
                counter += 1
                let event = UsageEvent(id: String(random.next(), radix: 16) + String(counter), customer: "cus_\(counter % 1000)",
                                       meter: counter % 2 == 0 ? "api_calls" : "tokens", value: ExactDecimal(counter % 100),
                                       time: nil, properties: [])
                return PendingEvent(event: event, receivedAt: .now())
            }
        }
        for _ in benchmark.scaledIterations {
            let events = batch()
            benchmark.startMeasurement()
            blackHole(try writer.record(events))
            benchmark.stopMeasurement()
        }
    }
}
