import ArgumentParser
import Dashboard
import Foundation
import HTTPAPI
import Ingest
import Limits
import Logging
import Metering
import ServiceLifecycle
import Storage
import TallyConfiguration

/// `tally bench dashboard`: every dashboard page's server time at a realistic customer count.
struct DashboardBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Dashboard and portal page latency (p50, p99) with many customers and a month of buckets, over HTTP.",
        discussion: """
            Fills a temporary store as `tally bench api` does (--customers customers, three events
            each through the group commit, random order, one in ten on a second plan), adds a month
            of buckets for every customer (one quarter-hour bucket in every hour of the last 31
            days and the day buckets, on the tokens meter), takes the dashboard's snapshot once
            (timed), starts the HTTP server with the dashboard in this process, signs in through
            the form, then requests each page --samples times over one keep-alive connection:
            the overview, the customer list (first page and a search), a random customer's page
            (daily and hourly charts), a meter's page, and a portal page. The snapshot keeps
            refreshing in the background meanwhile, as it does in a running daemon.

            Example:
              tally bench dashboard --customers 100000
            """
    )

    @Option(help: "Customers with usage.") var customers = 100_000
    @Option(help: "Requests per page.") var samples = 200
    @Option(help: "Days of synthetic buckets per customer (0: none).") var bucketDays = 31
    @Option(name: .long, help: ArgumentHelp("Where to put the temporary store.", valueName: "dir")) var directory: String?
    @Flag(help: "Print one JSON object with every figure instead of text.") var json = false

    func validate() throws {
        guard customers > 0, samples > 0, bucketDays >= 0 else { throw ValidationError("--customers and --samples must be at least 1, --bucket-days at least 0") }
    }

    func run() async throws {
        LoggingSetup.bootstrap(level: .warning)
        let logger = Logger(label: "bench")
        let work = (directory ?? FileManager.default.temporaryDirectory.path) + "/tally-bench-dashboard-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let key = "bench-key"
        let portalVariable = "TALLY_BENCH_PORTAL_SECRET"
        setenv(portalVariable, "bench-portal-secret", 1)
        var config = APIBench.config(apiKeyDigest: HTTPAPIServer.apiKeyDigest(of: key))
        config.http.portalSecretEnvironmentVariable = portalVariable
        let store = try TallyStore(path: work + "/data", configuration: .init(meters: config.meters, billingPeriod: config.billing.period),
                                   access: .readWrite, logger: logger)
        let storeWriter = try StoreWriter(store: store)
        storeWriter.limitEvaluator = CommitLimitEvaluator(config: config)

        let fillStart = Date()
        let now = Timestamp.now()
        // The month of buckets first: synthetic rows are appended in key order to an empty table.
        if bucketDays > 0 {
            let today = BucketResolution.day.start(containing: now.nanosecondsSinceEpoch)
            try storeWriter.insertSyntheticBuckets(customers: customers, meter: "tokens",
                                                   from: Timestamp(nanosecondsSinceEpoch: today - Int64(bucketDays) * Timestamp.nanosecondsPerDay),
                                                   days: bucketDays)
        }
        let name = try APIBench.fill(storeWriter, config: config, customers: customers, eventsPerCustomer: 3)
        try storeWriter.foldLoggedUsage()
        let buckets = try store.bucketStatistics()
        let fillSeconds = Date().timeIntervalSince(fillStart)

        let dashboard = Dashboard(config: config, store: store, logger: logger)
        let snapshotStart = Date()
        let snapshot = try dashboard.snapshot.refresh()
        let snapshotSeconds = Date().timeIntervalSince(snapshotStart)
        guard snapshot.customersWithUsage == customers else {
            throw CommandFailure("the snapshot found \(snapshot.customersWithUsage) customers with usage, expected \(customers)")
        }

        let writer = GroupCommitWriter(writer: storeWriter, maximumEvents: 8192, maximumDelayNanoseconds: 1_000_000, logger: logger)
        writer.start()
        let parser = EventLineParser(meterCodes: Set(config.meters.map(\.code)))
        let server = HTTPAPIServer(config: config, store: store, writer: writer, parser: parser, host: "127.0.0.1", port: 0, logger: logger,
                                   routeGroups: [dashboard])
        let group = ServiceGroup(services: [server], logger: logger)
        let running = Task { try await group.run() }
        let port = try await server.listeningPort()
        let samples = self.samples
        let customers = self.customers
        let pages: [(name: String, p50: Double, p99: Double, bytes: Int)] = try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    let client = try BenchHTTPClient(port: port, key: nil)
                    defer { client.close() }
                    try Self.signIn(client, key: key)
                    let api = try BenchHTTPClient(port: port, key: key)
                    defer { api.close() }
                    let (minted, _, body) = try api.exchange("POST", "/v1/customers/\(name(0))/portal_tokens", form: "")
                    guard minted == 201, let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                          let token = object["token"] as? String else { throw CommandFailure("minting a portal token: \(minted) \(body)") }
                    let random = { name(Int.random(in: 0..<customers)) }
                    let pages: [(String, () -> String)] = [
                        ("overview /ui", { "/ui" }),
                        ("customers /ui/customers", { "/ui/customers" }),
                        ("search /ui/customers?query=…", { "/ui/customers?query=" + String(random().prefix(6)) }),
                        ("customer, daily /ui/customers/{id}", { "/ui/customers/" + random() }),
                        ("customer, hourly 7 days", { "/ui/customers/\(random())?chart=hourly" }),
                        ("meter /ui/meters/tokens", { "/ui/meters/tokens" }),
                        ("portal /portal/{id}", { "/portal/\(name(0))?token=\(token)" }),
                    ]
                    return try pages.map { page in
                        var latencies: [Double] = []
                        var bytes = 0
                        for _ in 0..<samples {
                            let path = page.1()
                            let start = DispatchTime.now().uptimeNanoseconds
                            let (status, body) = try client.get(path)
                            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                            guard status == 200 else { throw CommandFailure("GET \(path): \(status) \(body.prefix(300))") }
                            bytes = body.utf8.count
                        }
                        latencies.sort()
                        return (page.0, latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 99 / 100)], bytes)
                    }
                })
            }
        }
        await group.triggerGracefulShutdown()
        try await running.value
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                writer.stop()
                continuation.resume()
            }
        }
        if json {
            var fields = ["\"customers\":\(customers)", "\"buckets\":\(buckets.buckets)", "\"fill_s\":\(String(format: "%.1f", fillSeconds))",
                          "\"snapshot_s\":\(String(format: "%.2f", snapshotSeconds))"]
            for page in pages {
                fields.append("\"\(page.name)\":{\"p50_ms\":\(String(format: "%.2f", page.p50)),\"p99_ms\":\(String(format: "%.2f", page.p99)),\"bytes\":\(page.bytes)}")
            }
            print("{" + fields.joined(separator: ",") + "}")
            return
        }
        print("store: \(customers) customers, \(customers * 3) events, \(buckets.buckets) buckets, filled in \(String(format: "%.1f", fillSeconds)) s")
        print("snapshot (every customer's amount, each meter's top customers and days): \(String(format: "%.2f", snapshotSeconds)) s")
        for page in pages {
            print("\(page.name): p50 \(String(format: "%.2f", page.p50)) ms, p99 \(String(format: "%.2f", page.p99)) ms (\(page.bytes) bytes)")
        }
    }

    /// Signs `client` in through the form, as a browser does.
    static func signIn(_ client: BenchHTTPClient, key: String) throws {
        let (_, head, body) = try client.exchange("GET", "/ui/sign-in")
        guard let cookieLine = head.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("set-cookie: tally_signin=") }),
              let csrfRange = body.range(of: "name=\"csrf\" value=\"")
        else { throw CommandFailure("the sign-in page has no form") }
        let signInCookie = cookieLine.dropFirst("set-cookie: ".count).prefix { $0 != ";" }
        let csrf = body[csrfRange.upperBound...].prefix { $0 != "\"" }
        client.cookie = String(signInCookie)
        let (status, answer, _) = try client.exchange("POST", "/ui/sign-in", form: "key=\(key)&csrf=\(csrf)&next=%2Fui")
        guard status == 303, let session = answer.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("set-cookie: tally_session=") }) else {
            throw CommandFailure("signing in failed: \(status)")
        }
        client.cookie = String(session.dropFirst("set-cookie: ".count).prefix { $0 != ";" })
    }
}
