import Benchmark
import Foundation
import Logging
import Metering
import Storage

/// Micro-benchmarks of the ingest hot path: time and malloc counts (which do not drift with noise).
let benchmarks: @Sendable () -> Void = {
    // 1. One event line through the parser; 1000 parses per iteration, results scaled per parse.
    let line = Array(#"{"id":"6f1c2a9e-4b7d-4c3e-9a51-0d2f7e8b1c44","customer":"cus_42","meter":"tokens","value":"12.5","time":"2026-11-22T10:00:00Z","properties":{"model":"large","region":"eu"}}"#.utf8)
    let parser = EventLineParser(meterCodes: ["api_calls", "tokens"], limits: .init())
    let receivedAt = Timestamp(year: 2026, month: 11, day: 22, hour: 10, minute: 0, second: 30, nanosecond: 0)!

    Benchmark(
        "parse one event line",
        configuration: .init(
            metrics: [.wallClock, .mallocCountTotal], scalingFactor: .kilo, maxDuration: .seconds(3),
            setup: {
                // Guard: the line must parse, or this would time the error path.
                if case .failure(let error) = line.withUnsafeBytes({ parser.parse($0, receivedAt: receivedAt) }) {
                    throw error
                }
            })
    ) { benchmark in
        line.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                blackHole(parser.parse(bytes, receivedAt: receivedAt))
            }
        }
    }

    // 2. One group commit of 8192 new events into one store that lives across iterations (opened in
    //    setup, deleted in teardown). Only `record` is measured; building the batch is not.
    let commit = GroupCommitFixture()
    Benchmark(
        "group commit of 8192 events (dedup insert, event append, aggregate update, fsync)",
        configuration: .init(
            metrics: [.wallClock, .mallocCountTotal, .throughput], maxDuration: .seconds(10), maxIterations: 100,
            setup: { try commit.open() }, teardown: { commit.close() })
    ) { benchmark throws in
        let events = commit.nextBatch()
        benchmark.startMeasurement()
        blackHole(try commit.writer!.record(events))
        benchmark.stopMeasurement()
    }
}

/// A temporary store and its writer, shared by the iterations of the group-commit benchmark.
final class GroupCommitFixture: @unchecked Sendable {
    static let batchSize = 8192
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("tally-micro-\(UUID().uuidString.prefix(8))").path
    var writer: StoreWriter?
    var counter = 0
    var random = SystemRandomNumberGenerator()

    func open() throws {
        let meters = [Meter(code: "api_calls", aggregation: .count), Meter(code: "tokens", aggregation: .sum)]
        let store = try TallyStore(
            path: directory, configuration: .init(meters: meters, billingPeriod: .monthly),
            access: .readWrite, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
        writer = try StoreWriter(store: store)
    }

    func close() {
        writer = nil
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// 8192 events with fresh ids, over 1000 customers and both meters.
    func nextBatch() -> [PendingEvent] {
        let receivedAt = Timestamp.now()
        return (0..<Self.batchSize).map { _ in
            counter += 1
            let event = UsageEvent(
                id: String(random.next(), radix: 16) + String(counter), customer: "cus_\(counter % 1000)",
                meter: counter % 2 == 0 ? "api_calls" : "tokens", value: ExactDecimal(counter % 100),
                time: nil, properties: [])
            return PendingEvent(event: event, receivedAt: receivedAt)
        }
    }
}
