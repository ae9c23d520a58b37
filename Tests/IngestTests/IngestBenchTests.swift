import Foundation
import IngestClient
import Testing

@Suite("tally bench ingest: synthetic load")
struct IngestBenchTests {
    @Test("round-robin is index % customers; uniform covers every customer evenly and is not round-robin")
    func uniformAndRoundRobin() {
        var roundRobin = CustomerDraw(order: .roundRobin, customers: 7, random: FastRandom(seed: 1))
        #expect((0..<20).map { roundRobin.next(index: $0) } == (0..<20).map { $0 % 7 })

        var uniform = CustomerDraw(order: .uniform, customers: 10, random: FastRandom(seed: 2))
        var counts = [Int](repeating: 0, count: 10)
        var inTurn = 0
        for index in 0..<100_000 {
            let customer = uniform.next(index: index)
            counts[customer] += 1
            if customer == index % 10 { inTurn += 1 }
        }
        #expect(counts.allSatisfy { (9_000...11_000).contains($0) }, "\(counts)")
        #expect(inTurn < 12_000, "a uniform draw matches round-robin about one time in ten, not \(inTurn) in 100,000")
    }

    @Test("zipf: rank 0 is the most frequent and frequencies fall with rank, about as 1/(k+1)^1.1")
    func zipf() {
        var draw = CustomerDraw(order: .zipf, customers: 1_000, random: FastRandom(seed: 3))
        var counts = [Int](repeating: 0, count: 1_000)
        for index in 0..<200_000 { counts[draw.next(index: index)] += 1 }
        #expect(counts.max() == counts[0])
        #expect(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500])
        // The weight of rank 1 against rank 0 is 2^-1.1 ≈ 0.467.
        let ratio = Double(counts[1]) / Double(counts[0])
        #expect((0.42...0.52).contains(ratio), "rank 1 / rank 0 = \(ratio)")
    }

    @Test("a seed repeats the same events; lines are valid events with UUIDv4 ids")
    func lines() throws {
        let first = SyntheticEvents.lines(events: 50, customers: 5, meters: 3, order: .uniform, time: "2026-12-01T00:00:00Z",
                                          random: FastRandom(seed: 9))
        let again = SyntheticEvents.lines(events: 50, customers: 5, meters: 3, order: .uniform, time: "2026-12-01T00:00:00Z",
                                          random: FastRandom(seed: 9))
        #expect(first == again)
        let uuid = try Regex("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        for line in first {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            #expect(Set(object.keys) == ["id", "customer", "meter", "value", "time"])
            #expect((object["id"] as? String)?.wholeMatch(of: uuid) != nil)
            #expect(["cus_0", "cus_1", "cus_2", "cus_3", "cus_4"].contains(object["customer"] as? String ?? ""))
            #expect(["m0", "m1", "m2"].contains(object["meter"] as? String ?? ""))
        }
    }

    /// Runs `tally bench ingest` with `arguments` and returns its JSON figures.
    private func bench(_ arguments: [String]) throws -> [String: Any] {
        let directory = FileManager.default.temporaryDirectory.path
        let run = try DaemonHarness.run(["bench", "ingest", "--identities-prefill", "0", "--json", "--directory", directory] + arguments,
                                        in: directory)
        #expect(run.status == 0, "\(run.error)")
        return try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
    }

    @Test("end to end: a firehose without a window, an open-loop rate over two connections, zipf: every event accepted")
    func endToEnd() throws {
        let firehose = try bench(["--events", "3000", "--customers", "40", "--window", "0"])
        #expect(firehose["accepted"] as? Int == 3000)
        #expect(firehose["window"] as? Int == 0)
        #expect((firehose["rss_anon_mib"] as? Int ?? 0) > 0)

        let paced = try bench(["--events", "2000", "--customers", "40", "--rate", "4000", "--connections", "2"])
        #expect(paced["accepted"] as? Int == 2000)
        #expect(paced["connections"] as? Int == 2)
        #expect(paced["rate"] as? Int == 4000)
        // Open loop: 2,000 events at 4,000/s take about half a second, not as fast as the daemon can go.
        #expect((paced["events_per_s"] as? Int ?? .max) < 8_000)

        let skewed = try bench(["--events", "2000", "--customers", "1000", "--customers-order", "zipf", "--connections", "3"])
        #expect(skewed["accepted"] as? Int == 2000)
        #expect(skewed["customers_order"] as? String == "zipf")
    }

    @Test("--without-buckets runs the daemon without usage buckets and says so; the figures carry CPU times")
    func withoutBuckets() throws {
        let plain = try bench(["--events", "2000", "--customers", "40", "--window", "0"])
        #expect(plain["buckets"] as? Bool == true)
        let without = try bench(["--events", "2000", "--customers", "40", "--window", "0", "--without-buckets"])
        #expect(without["accepted"] as? Int == 2000)
        #expect(without["buckets"] as? Bool == false)
        for figures in [plain, without] {
            #expect((figures["daemon_cpu_s"] as? Double ?? 0) > 0)
            #expect((figures["writer_cpu_s"] as? Double ?? -1) >= 0)
            #expect((figures["writer_cpu_s"] as? Double ?? .infinity) <= (figures["daemon_cpu_s"] as? Double ?? 0))
        }
    }

    @Test("bad flags are refused with what to write")
    func badFlags() throws {
        let directory = FileManager.default.temporaryDirectory.path
        for (arguments, message) in [
            (["--rate", "0"], "--rate must be at least 1"),
            (["--customers-order", "random"], "--customers-order must be one of round-robin, uniform, zipf"),
            (["--window=-1"], "--window must be 0 (no window) or more"),
            (["--connections", "0"], "--connections must be from 1 to 256"),
        ] {
            let run = try DaemonHarness.run(["bench", "ingest"] + arguments, in: directory)
            #expect(run.status != 0)
            #expect(run.error.contains(message), "\(run.error)")
        }
    }
}
