import ArgumentParser
import Foundation
import Logging
import Metering
import Storage
import UsageQuery

struct QueryBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Usage-over-time query latency, and the room buckets take per million events.",
        discussion: """
            Fills a temporary store with a month of buckets for --customers customers (one
            quarter-hour bucket in every hour, and the day buckets), then times, in-process:
            one customer × meter over 31 days in hourly windows (p50/p99 over --samples random
            customers), and one meter over every customer for the month in daily windows (UTC, and
            Europe/Berlin, whose days are read from quarter-hours). Then ingests --events events
            (random customers, times spread over a day) into a second store through the group
            commit and prints the bytes per bucket and the store's growth per million events.

            Example:
              tally bench query --customers 10000
            """
    )

    @Option(help: "Customers with a month of usage.") var customers = 10_000
    @Option(help: "Single-customer queries timed.") var samples = 1_000
    @Option(help: "Events ingested to measure the store's growth (0: skip).") var events = 1_000_000
    @Option(name: .long, help: ArgumentHelp("Where to put the temporary stores.", valueName: "dir")) var directory: String?
    @Flag(help: "Print one JSON object with every figure instead of text.") var json = false

    func validate() throws {
        guard customers > 0, samples > 0, events >= 0 else { throw ValidationError("--customers and --samples must be at least 1, --events at least 0") }
    }

    func run() throws {
        LoggingSetup.bootstrap(level: .warning)
        let work = (directory ?? FileManager.default.temporaryDirectory.path) + "/tally-bench-query-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let meters = [Meter(code: "tokens", aggregation: .sum), Meter(code: "calls", aggregation: .count),
                      Meter(code: "peak", aggregation: .max)]
        let configuration = TallyStore.Configuration(meters: meters, billingPeriod: .monthly)
        let store = try TallyStore(path: work + "/query", configuration: configuration, access: .readWrite, logger: Logger(label: "bench"))
        let writer = try StoreWriter(store: store)
        let day = Timestamp.nanosecondsPerDay
        let today = BucketResolution.day.start(containing: Timestamp.now().nanosecondsSinceEpoch)
        let from = Timestamp(nanosecondsSinceEpoch: today - 31 * day)
        let to = Timestamp(nanosecondsSinceEpoch: today)
        let fillStart = Date()
        try writer.insertSyntheticBuckets(customers: customers, meter: "tokens", from: from, days: 31)
        let fillSeconds = Date().timeIntervalSince(fillStart)
        let filled = try store.bucketStatistics()
        let utc = try WindowPlan.timeZone("UTC")

        // One customer × meter, 31 days, hourly.
        let hourly = try UsageQuery(plan: try WindowPlan(from: from, to: to, window: .hour, timeZone: utc), meters: [meters[0]], groupBy: [])
        var generator = SystemRandomNumberGenerator()
        let width = String(max(1, customers - 1)).count
        var latencies: [Double] = []
        for _ in 0..<samples {
            let digits = String(Int(generator.next() % UInt64(customers)))
            let customer = "cus_" + String(repeating: "0", count: width - digits.count) + digits
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try hourly.run(store: store, customers: .only([customer]))
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            guard result.series.count == 1, result.series[0].quantities.count == 31 * 24 else { throw CommandFailure("the hourly query found no series") }
        }
        latencies.sort()
        let p50 = latencies[latencies.count / 2]
        let p99 = latencies[min(latencies.count - 1, latencies.count * 99 / 100)]

        // One meter × every customer, a month, daily: in UTC (day buckets) and in Berlin (quarter-hours).
        func acrossCustomers(_ zone: String) throws -> (ms: Double, series: Int) {
            let timeZone = try WindowPlan.timeZone(zone)
            let edgeFrom = try WindowPlan.parseTime(String(from.rfc3339.prefix(10)), name: "from", in: timeZone)
            let edgeTo = try WindowPlan.parseTime(String(to.rfc3339.prefix(10)), name: "to", in: timeZone)
            let query = try UsageQuery(plan: try WindowPlan(from: edgeFrom, to: edgeTo, window: .day, timeZone: timeZone), meters: [meters[0]], groupBy: [])
            var times: [Double] = []
            var count = 0
            for _ in 0..<5 {
                let start = DispatchTime.now().uptimeNanoseconds
                count = try query.run(store: store, customers: .all(after: nil, limit: .max)).series.count
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            return (times.sorted()[2], count)
        }
        let daily = try acrossCustomers("UTC")
        let berlin = try acrossCustomers("Europe/Berlin")
        guard daily.series == customers else { throw CommandFailure("the daily query found \(daily.series) customers, not \(customers)") }

        // The room buckets take when real events come in: 10,000 customers (or --customers), a day.
        var growth: (bucketBytes: Double, buckets: Int, bucketBytesPerMillion: Double, storeBytesPerMillion: Double)?
        if events > 0 {
            let ingestStore = try TallyStore(path: work + "/ingest", configuration: configuration, access: .readWrite, logger: Logger(label: "bench"))
            let ingestWriter = try StoreWriter(store: ingestStore)
            let before = allocatedBytes(work + "/ingest/data.mdb")
            let start = Timestamp.now().nanosecondsSinceEpoch - day
            var sent = 0
            while sent < events {
                let batch = (0..<min(8192, events - sent)).map { index in
                    let number = sent + index
                    let meter = meters[Int(generator.next() % 3)].code
                    let time = Timestamp(nanosecondsSinceEpoch: start + Int64(number) * (day / Int64(events)))
                    return PendingEvent(event: UsageEvent(id: UUID().uuidString, customer: "cus_\(generator.next() % UInt64(customers))", meter: meter,
                                                          value: ExactDecimal(Int(generator.next() % 1000)), time: time, properties: []),
                                        receivedAt: Timestamp.now())
                }
                _ = try ingestWriter.record(batch)
                sent += batch.count
            }
            try ingestWriter.foldLoggedUsage()
            let statistics = try ingestStore.bucketStatistics()
            let million = Double(events) / 1_000_000
            growth = (Double(statistics.bytes) / Double(max(1, statistics.buckets)), statistics.buckets,
                      Double(statistics.bytes) / million, Double(allocatedBytes(work + "/ingest/data.mdb") - before) / million)
        }

        if json {
            var fields = [
                "\"customers\":\(customers)", "\"buckets\":\(filled.buckets)", "\"fill_s\":\(String(format: "%.1f", fillSeconds))",
                "\"hourly_31_days_p50_ms\":\(String(format: "%.3f", p50))", "\"hourly_31_days_p99_ms\":\(String(format: "%.3f", p99))",
                "\"daily_month_all_customers_utc_ms\":\(String(format: "%.1f", daily.ms))",
                "\"daily_month_all_customers_berlin_ms\":\(String(format: "%.1f", berlin.ms))",
            ]
            if let growth {
                fields += ["\"ingested_events\":\(events)", "\"ingested_buckets\":\(growth.buckets)",
                           "\"bytes_per_bucket\":\(Int(growth.bucketBytes))",
                           "\"bucket_bytes_per_million_events\":\(Int(growth.bucketBytesPerMillion))",
                           "\"store_bytes_per_million_events\":\(Int(growth.storeBytesPerMillion))"]
            }
            print("{" + fields.joined(separator: ",") + "}")
        } else {
            print("store: \(customers) customers × 31 days, \(filled.buckets) buckets (\(filled.bytes / 1_048_576) MiB), written in \(String(format: "%.1f", fillSeconds)) s")
            print("one customer × meter, 31 days hourly (\(samples) random customers): p50 \(String(format: "%.3f", p50)) ms, p99 \(String(format: "%.3f", p99)) ms")
            print("one meter × \(customers) customers, a month daily: UTC \(String(format: "%.1f", daily.ms)) ms, Europe/Berlin \(String(format: "%.1f", berlin.ms)) ms (median of 5)")
            if let growth {
                print("ingest of \(events) events (\(customers) customers, 3 meters, over one day): \(growth.buckets) buckets, \(Int(growth.bucketBytes)) bytes per bucket; per million events: buckets \(Int(growth.bucketBytesPerMillion) / 1024) KiB, the whole store \(Int(growth.storeBytesPerMillion) / 1024) KiB")
            }
        }
    }

    private func allocatedBytes(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_blocks) * 512 : 0
    }
}
