import ArgumentParser
import Billing
import Foundation
import IngestClient
import Logging
import TallyConfiguration
import Metering
import Storage

struct RateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rate",
        abstract: "Batch rating throughput (usage rows/s, statements written) and estimate latency.",
        discussion: """
            Fills a temporary store with synthetic usage (customers × meters rows in one period,
            priced by a plan mixing graduated, volume, per-unit and package prices), runs `tally rate`'s
            code with statements written as JSON files, then times `tally estimate`'s code for a
            sample of customers in-process.

            Example:
              tally bench rate --rows 1000000 --customers 100000
            """
    )

    @Option(help: "Usage rows (customer, meter) to rate.") var rows = 1_000_000
    @Option(help: "Customers (rows ÷ customers meters each).") var customers = 100_000
    @Option(help: "Customers whose estimate is timed.") var estimates = 2_000
    @Option(name: .long, help: ArgumentHelp("Where to put the temporary store.", valueName: "dir")) var directory: String?

    func validate() throws {
        guard customers > 0, rows >= customers, rows % customers == 0, estimates > 0 else {
            throw ValidationError("--rows must be a positive multiple of --customers, --estimates at least 1")
        }
    }

    func run() throws {
        LoggingSetup.bootstrap(level: .warning)
        let work = (directory ?? FileManager.default.temporaryDirectory.path) + "/tally-bench-rate-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let meterCount = rows / customers
        let models = [
            #"{ model: graduated, tiers: [{ up_to: 1000, unit_amount: "0" }, { up_to: 100000, unit_amount: "0.002" }, { up_to: inf, unit_amount: "0.001", flat_amount: "5" }] }"#,
            #"{ model: volume, tiers: [{ up_to: 10000, unit_amount: "0.01" }, { up_to: inf, unit_amount: "0.005" }] }"#,
            #"{ model: per_unit, unit_amount: "0.000125", free_units: 100 }"#,
            #"{ model: package, package_size: 1000, package_amount: "0.02" }"#,
        ]
        var yaml = "meters:\n"
        for index in 0..<meterCount { yaml += "  - { code: m\(index), aggregation: sum }\n" }
        yaml += "plans:\n  - code: bench\n    currency: USD\n    prices:\n"
        for index in 0..<meterCount {
            let model = models[index % models.count]
            yaml += "      - { meter: m\(index), " + model.dropFirst(2) + "\n"
        }
        yaml += "default_plan: bench\n"
        let configPath = work + "/tally.yaml"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: configPath)
        let period = config.billing.period.interval(containing: .now())
        let storePath = work + "/data"

        print("tally bench rate: \(rows) usage rows (\(customers) customers × \(meterCount) meters)")
        let filled = Date()
        do {
            let store = try TallyStore(path: storePath, configuration: .init(meters: config.meters, billingPeriod: config.billing.period),
                                       access: .readWrite, logger: Logger(label: "tally.bench"))
            try StoreWriter(store: store).insertSyntheticUsage(customers: customers, meters: config.meters.map(\.code), periodStart: period.start)
        }
        print(String(format: "  synthetic usage written in %.2f s", Date().timeIntervalSince(filled)))

        let store = try TallyStore(path: storePath, configuration: .init(meters: config.meters, billingPeriod: config.billing.period),
                                   access: .readOnly, logger: Logger(label: "tally.bench"))
        let output = try StatementOutput(directory: work + "/out", format: "json")
        let started = DispatchTime.now().uptimeNanoseconds
        let summary = try RatingRun(config: config, period: period).run(store: store) { try output.write($0) }
        try output.finish(summary)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        print(String(format: "  rating run: %.0f usage rows/s (%d rows, %d statements, %d lines written in %.2f s)",
                     Double(summary.usageRows) / seconds, summary.usageRows, summary.customers, summary.lines, seconds))
        print("  total: \(summary.totals.map { "\($0.currency) \($0.amount)" }.joined(separator: ", "))")

        let estimator = Estimator(config: config, resolver: try PlanResolver(config: config, store: store))
        var timings: [UInt64] = []
        var random = FastRandom()
        for _ in 0..<estimates {
            let customer = "cus_\(random.next() % UInt64(customers))"
            let begin = DispatchTime.now().uptimeNanoseconds
            _ = try estimator.estimate(customer: customer, store: store)
            timings.append(DispatchTime.now().uptimeNanoseconds - begin)
        }
        timings.sort()
        func milliseconds(_ fraction: Double) -> String {
            String(format: "%.3f", Double(timings[min(timings.count - 1, Int(Double(timings.count) * fraction))]) / 1e6)
        }
        print("  estimate for one customer (\(meterCount) meters, \(estimates) customers): p50 \(milliseconds(0.5)) ms, p99 \(milliseconds(0.99)) ms, max \(milliseconds(1.0)) ms")
    }
}
