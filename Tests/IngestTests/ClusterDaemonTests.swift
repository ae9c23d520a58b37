import Cluster
import Foundation
import IngestClient
import NATSTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Cluster mode end to end: real nats-server processes as a JetStream cluster (R=3) and real
/// `tally serve` nodes, producers on random nodes, nodes and servers killed mid-stream.
@Suite("Cluster mode", .serialized)
struct ClusterDaemonTests {
    static let partitions = 16

    static func config(node: String, urls: [String], metricsPort: Int? = nil) -> String {
        """
        store:
          path: data
        ingest:
          socket: tally.sock
          commit_max_events: 8192
          commit_max_delay: 2ms
        meters:
          - { code: api_calls, aggregation: count }
        cluster:
          node: \(node)
          nats: [\(urls.joined(separator: ", "))]
          partitions: \(partitions)
          replicas: 3
          failover: 2s
          snapshot_interval: 1s
        """ + (metricsPort.map { "\n  metrics_listen: 127.0.0.1:\($0)\n" } ?? "")
    }

    /// `tally cluster status --json`, parsed: partition → owner, and the live nodes.
    static func status(_ node: DaemonHarness) throws -> (owners: [String?], nodes: [String], lags: [Int?]) {
        let result = try node.tally(["cluster", "status", "--config", node.configPath, "--json"])
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
              let partitions = object["partitions"] as? [[String: Any]], let nodes = object["nodes"] as? [[String: Any]] else {
            throw HarnessError("cluster status failed: \(result.output) \(result.error)")
        }
        return (partitions.map { $0["owner"] as? String }, nodes.compactMap { $0["node"] as? String }, partitions.map { $0["lag"] as? Int })
    }

    /// Waits until `expected` nodes are live and own every partition, each caught up.
    static func waitForBalance(_ node: DaemonHarness, nodes expected: Set<String>, within seconds: Double = 60) throws {
        try eventually(within: seconds) {
            let status = try status(node)
            guard Set(status.nodes) == expected, status.owners.allSatisfy({ $0.map(expected.contains) ?? false }),
                  status.lags.allSatisfy({ $0 == 0 }) else {
                throw HarnessError("not balanced yet: \(status)")
            }
        }
    }

    /// A customer's api_calls count as its owner reports it.
    static func calls(of customer: String, owner: DaemonHarness) throws -> Int {
        let result = try owner.tally(["usage", "--config", owner.configPath, "--store", owner.storePath, "--customer", customer, "--json"])
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
              let meters = object["meters"] as? [[String: Any]],
              let quantity = meters.first(where: { $0["meter"] as? String == "api_calls" })?["quantity"] as? String else {
            throw HarnessError("usage of \(customer) failed: \(result.output) \(result.error)")
        }
        return Int(quantity) ?? -1
    }

    @Test("3 NATS servers (R=3) and 3 nodes; 4 producers stream 300,000 events to random nodes; a node SIGKILLed with its data directory deleted (its partitions start elsewhere from their snapshots), then a NATS server killed, mid-stream; unanswered and unavailable lines resent: every customer's usage equals its unique events, nothing lost or counted twice")
    func failover() throws {
        let nats = try NATSServers(count: 3)
        defer { nats.stop() }
        let nodes = try (1...3).map { try DaemonHarness(config: Self.config(node: "n\($0)", urls: nats.urls)) }
        for node in nodes { try node.start() }
        do {
            try Self.waitForBalance(nodes[1], nodes: ["n1", "n2", "n3"])
        } catch {
            Issue.record("\(error)\n\(nodes[0].log().prefix(6_000))")
            throw error
        }

        let total = 300_000
        let customers = 60
        let lines = (0..<total).map { Array(eventLine(id: "c\($0)", customer: "cus_\($0 % customers)").utf8) }
        let run = ProducerRun(lines: lines, nodes: nodes.map(\.socketPath))
        let producers = (0..<4).map { producer in
            Thread { run.produce(indices: Array(stride(from: producer, to: total, by: 4))) }
        }
        producers.forEach { $0.start() }
        // A third of the way: node n1 dies with its disk. Two thirds: one NATS server dies.
        try eventually(within: 300) { guard run.answeredCount >= total / 3 else { throw HarnessError("waiting") } }
        nodes[0].killHard()
        run.markDead(0)
        try FileManager.default.removeItem(atPath: nodes[0].storePath)
        try eventually(within: 300) { guard run.answeredCount >= 2 * total / 3 else { throw HarnessError("waiting") } }
        nats.kill(2)
        try eventually(within: 600) { guard run.finishedProducers == 4 else { throw HarnessError("producing: \(run.answeredCount)") } }

        #expect(run.unexpected.isEmpty, "unexpected answers: \(run.unexpected.prefix(5))")
        #expect(run.answeredCount == total)
        #expect(run.acceptedCount <= total)
        // The survivors own everything and have applied their whole logs.
        do {
            try Self.waitForBalance(nodes[1], nodes: ["n2", "n3"])
        } catch {
            let problems = (nodes[1].log() + nodes[2].log()).split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" warning ") }
            Issue.record("\(error)\n\(problems.suffix(30).joined(separator: "\n"))")
            throw error
        }
        // n1's partitions moved to nodes that never held them: they started from n1's snapshots,
        // which the status shows.
        #expect((nodes[1].log() + nodes[2].log()).contains("partition started from its newest snapshot"))
        let statusJSON = try nodes[1].tally(["cluster", "status", "--config", nodes[1].configPath, "--json"]).output
        #expect(statusJSON.contains(#""snapshot_sequence":"#) && !statusJSON.contains(#""snapshot_sequence":null"#), "\(statusJSON.prefix(600))")
        let status = try Self.status(nodes[1])
        let map = try PartitionMap(count: Self.partitions)
        for customer in 0..<customers {
            let name = "cus_\(customer)"
            let owner = try #require(status.owners[map.partition(of: name)])
            let harness = owner == "n2" ? nodes[1] : nodes[2]
            #expect(try Self.calls(of: name, owner: harness) == total / customers, "\(name) at \(owner)")
        }
        // Everything sent again, to one node (forwarded to the owners): no line is accepted again
        // (a line answered unavailable while a partition moves between the survivors goes again).
        var pending = Array(lines.indices)
        var duplicates = 0
        try eventually(within: 120) {
            let answers = OutcomeLog()
            let batch = pending
            _ = try LineSender(socketPath: nodes[1].socketPath).run(lines: batch.lazy.map { ArraySlice(lines[$0]) }) { outcome in
                answers.add(batch[outcome.index], outcome.response)
            }
            var settled = Set<Int>()
            for (index, response) in answers.all {
                #expect(response.status != .accepted, "line \(index) was counted again")
                if response.status == .duplicate { settled.insert(index) }
            }
            duplicates += settled.count
            pending = pending.filter { !settled.contains($0) }
            guard pending.isEmpty else { throw HarnessError("\(pending.count) lines unanswered or unavailable") }
        }
        #expect(duplicates == total)
        for customer in 0..<customers {
            let name = "cus_\(customer)"
            // Partitions may still move between the survivors: read at the owner of the moment.
            let owner = try eventually(within: 30) { () throws -> String in
                guard let owner = try Self.status(nodes[1]).owners[map.partition(of: name)] else { throw HarnessError("no owner yet") }
                return owner
            }
            #expect(try Self.calls(of: name, owner: owner == "n2" ? nodes[1] : nodes[2]) == total / customers, "\(name) at \(owner) after the resend")
            // Any node answers: the one that does not own the partition asks its owner.
            #expect(try Self.calls(of: name, owner: owner == "n2" ? nodes[2] : nodes[1]) == total / customers, "\(name) read away from \(owner)")
        }
        // An estimate from the node that does not own the customer's partition: the owner's answer.
        let name = "cus_0"
        let owner = try #require(try Self.status(nodes[1]).owners[map.partition(of: name)])
        let away = owner == "n2" ? nodes[2] : nodes[1]
        let estimate = try away.tally(["estimate", "--config", away.configPath, "--customer", name, "--json"])
        #expect(estimate.status == 0 && estimate.output.contains("\"customer\":\"cus_0\""), "\(estimate.output) \(estimate.error)")
        let badWindow = try away.tally(["usage", "--config", away.configPath, "--customer", name, "--window", "week", "--from", "2026-01-01", "--to", "2026-02-01"])
        #expect(badWindow.status != 0 && badWindow.error.contains("week"), "the owner's error comes back: \(badWindow.error)")

        // tally rate over the cluster, from either survivor: every partition rebuilt from its
        // snapshot and log, one statement per customer, one summary, byte-identical runs.
        let month = String(ISO8601DateFormatter().string(from: Date()).prefix(7))
        var runs: [(statements: Data, summary: Data)] = []
        for (index, node) in [nodes[1], nodes[2], nodes[1]].enumerated() {
            let out = node.directory + "/rate-\(index)"
            let rate = try node.tally(["rate", "--config", node.configPath, "--period", month, "--out", out, "--quiet"])
            #expect(rate.status == 0 && rate.output.contains("rated \(customers) customers"), "\(rate.output) \(rate.error)")
            runs.append((try Data(contentsOf: URL(fileURLWithPath: out + "/statements.json")), try Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))))
        }
        #expect(runs.allSatisfy { $0.statements == runs[0].statements && $0.summary == runs[0].summary })
        let statements = String(decoding: runs[0].statements, as: UTF8.self).split(separator: "\n")
        #expect(statements.count == customers)
        #expect(Set(statements.compactMap { line in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["customer"] as? String
        }) == Set((0..<customers).map { "cus_\($0)" }))
        #expect(nodes[1].terminate() == 0)
        #expect(nodes[2].terminate() == 0)
    }

    @Test("a deposed owner: SIGSTOPped past its leases, its partitions move; SIGCONTed, it writes nothing to them, and its answers for them come from the new owner")
    func deposedOwner() throws {
        let nats = try NATSServers(count: 3)
        defer { nats.stop() }
        let metricsPort = try freePort()
        let nodes = try (1...2).map { try DaemonHarness(config: Self.config(node: "n\($0)", urls: nats.urls, metricsPort: $0 == 2 ? metricsPort : nil)) }
        for node in nodes { try node.start() }
        try Self.waitForBalance(nodes[1], nodes: ["n1", "n2"])
        let map = try PartitionMap(count: Self.partitions)
        let before = try Self.status(nodes[1])
        // Customers whose partitions n1 owns now.
        let theirs = (0..<400).map { "cus_\($0)" }.filter { before.owners[map.partition(of: $0)] == "n1" }.prefix(20)
        #expect(theirs.count == 20)
        let first = theirs.enumerated().map { Array(eventLine(id: "a\($0.offset)", customer: $0.element).utf8) }
        #expect(try LineSender(socketPath: nodes[0].socketPath).run(lines: first.lazy.map { ArraySlice($0) }) { _ in }.accepted == first.count)

        let paused = try #require(nodes[0].process).processIdentifier
        kill(paused, SIGSTOP)
        try Self.waitForBalance(nodes[1], nodes: ["n2"])
        let second = theirs.enumerated().map { Array(eventLine(id: "b\($0.offset)", customer: $0.element).utf8) }
        #expect(try LineSender(socketPath: nodes[1].socketPath).run(lines: second.lazy.map { ArraySlice($0) }) { _ in }.accepted == second.count)

        // n2's /metrics: it serves all 16, gained them, published to their logs, and shows each one's lag.
        let scraped = try httpRequest(port: metricsPort, method: "GET", path: "/metrics").body
        let families = try MetricsText.lint(scraped)
        for family in ["tally_cluster_publish_duration", "tally_cluster_partitions_served", "tally_cluster_partition_lag_messages",
                       "tally_cluster_ownership_changes_total", "tally_cluster_snapshots_total", "tally_events_total"] {
            #expect(families[family] != nil, "\(family) is missing:\n\(scraped)")
        }
        #expect(scraped.contains("tally_cluster_partitions_served \(Self.partitions)"), "\(scraped)")
        #expect(scraped.contains(#"tally_cluster_ownership_changes_total{change="gained"}"#))
        #expect(scraped.contains(#"tally_cluster_partition_lag_messages{partition="0000"}"#))
        #expect(!scraped.contains("tally_cluster_publish_duration_count 0"), "n2 published commits to the log")

        kill(paused, SIGCONT)
        // Straight after waking, n1 may still believe it owns them: whatever it answers, it must not
        // count anything itself (its appends are fenced), and every answer is one a producer can act on.
        let third = theirs.enumerated().map { Array(eventLine(id: "c\($0.offset)", customer: $0.element).utf8) }
        var settled = Set<Int>()
        try eventually(within: 60) {
            let pending = third.indices.filter { !settled.contains($0) }
            let outcomes = OutcomeLog()
            _ = try LineSender(socketPath: nodes[0].socketPath).run(lines: pending.lazy.map { ArraySlice(third[$0]) }) { outcome in
                outcomes.add(pending[outcome.index], outcome.response)
            }
            for (index, response) in outcomes.all {
                if response.status == .accepted || response.status == .duplicate { settled.insert(index) }
                #expect(response.status != .rejected || response.errorCode == "unavailable", "\(response)")
            }
            guard settled.count == third.count else { throw HarnessError("unsettled: \(third.count - settled.count)") }
        }
        #expect(nodes[0].log().contains("partition lost to another node") || nodes[0].log().contains("cluster_fenced"))
        // It rejoins: the two nodes share the partitions again, and every count is exact.
        try Self.waitForBalance(nodes[1], nodes: ["n1", "n2"])
        let after = try Self.status(nodes[1])
        for customer in theirs {
            let owner = try #require(after.owners[map.partition(of: customer)])
            #expect(try Self.calls(of: customer, owner: owner == "n1" ? nodes[0] : nodes[1]) == 3, "\(customer) at \(owner)")
        }
        #expect(nodes[0].terminate() == 0)
        #expect(nodes[1].terminate() == 0)
    }

    @Test("commands over a cluster whose NATS servers cannot be reached exit 1 saying so")
    func natsUnreachable() throws {
        let harness = try DaemonHarness(config: Self.config(node: "n1", urls: ["nats://127.0.0.1:1"]))
        for arguments in [["usage", "--customer", "cus_1"], ["estimate", "--customer", "cus_1"], ["rate", "--period", "2026-11", "--quiet"],
                          ["cluster", "status"]] {
            let result = try harness.tally(arguments + ["--config", harness.configPath])
            #expect(result.status == 1 && result.error.contains("cannot reach NATS at nats://127.0.0.1:1"), "\(arguments): \(result.error)")
        }
    }

    @Test("limits in cluster mode: a disable limit's blocked answers come back also through forwarding; alerts stay exactly once across a fail-over: the new owner replays the partition's whole log (no snapshot), fires the same alerts again in its store, and delivers none of those the old owner delivered")
    func alertsAcrossFailover() throws {
        let receiver = try LoopbackReceiver(status: 200)
        defer { receiver.stop() }
        let nats = try NATSServers(count: 3)
        defer { nats.stop() }
        let alerting = """

            plans:
              - code: basic
                currency: USD
                prices:
                  - { meter: api_calls, model: per_unit, unit_amount: "0.5" }
            default_plan: basic
            limits:
              - { id: calls, plan: basic, meter: api_calls, quantity: 10, notify_at: [50, 100], action: warning }
              - { id: stop, plan: basic, meter: api_calls, quantity: 5, action: disable }
            alerts:
              webhooks:
                - { url: "http://127.0.0.1:\(receiver.port)/hooks/tally" }
            """
        let nodes = try (1...2).map { number in
            try DaemonHarness(config: Self.config(node: "n\(number)", urls: nats.urls)
                .replacingOccurrences(of: "snapshot_interval: 1s", with: "snapshot_interval: 1h") + alerting)
        }
        for node in nodes { try node.start() }
        try Self.waitForBalance(nodes[1], nodes: ["n1", "n2"])
        let customers = (0..<20).map { "cus_\($0)" }
        struct Payload: Decodable, Hashable { var id: String; var customer: String; var percent: String }
        func delivered() -> [Payload] {
            receiver.received.filter { $0.status == 200 }.compactMap { try? JSONDecoder().decode(Payload.self, from: Data($0.body.utf8)) }
        }
        /// Sends each customer's events `range`; returns the customers whose answers said blocked.
        @discardableResult
        func send(_ range: Range<Int>, to node: DaemonHarness) throws -> Set<String> {
            let lines = customers.flatMap { customer in range.map { (customer, Array(eventLine(id: "\(customer)-\($0)", customer: customer).utf8)) } }
            var blocked = Set<String>()
            try eventually(within: 60) {
                let answers = OutcomeLog()
                let sent = try LineSender(socketPath: node.socketPath).run(lines: lines.lazy.map { ArraySlice($0.1) }) { outcome in
                    answers.add(outcome.index, outcome.response)
                }
                // Over every attempt: a line accepted (and flagged) in an earlier attempt is a duplicate in a later one.
                blocked.formUnion(answers.all.filter { $0.1.blocked }.map { lines[$0.0].0 })
                guard sent.accepted + sent.duplicate == lines.count else { throw HarnessError("not all settled: \(sent)") }
            }
            return blocked
        }
        // 6 of 10: every customer crosses 50 %, on whichever node owns it; and 5, where a disable
        // limit blocks it: the answers say so also for the customers whose lines n1 forwarded to n2.
        // Once the shares are even (8 and 8), the partitions stay put until n1 dies.
        let owners = try eventually(within: 60) { () throws -> [String?] in
            let owners = try Self.status(nodes[1]).owners
            guard owners.filter({ $0 == "n1" }).count == Self.partitions / 2, owners.filter({ $0 == "n2" }).count == Self.partitions / 2 else {
                throw HarnessError("shares not even yet: \(owners)")
            }
            return owners
        }
        let map = try PartitionMap(count: Self.partitions)
        #expect(customers.contains { owners[map.partition(of: $0)] == "n2" }, "some lines are forwarded")
        #expect(try send(0..<6, to: nodes[0]) == Set(customers))
        #expect(receiver.wait(seconds: 60) { _ in Set(delivered().map(\.id)).count >= 2 * customers.count })
        Thread.sleep(forTimeInterval: 2)  // the cursors reach JetStream after each delivery
        nodes[0].killHard()
        try FileManager.default.removeItem(atPath: nodes[0].storePath)
        // Read at once, while the dead n1 still holds its leases: the read waits for the new owner.
        let orphan = try #require(customers.first { owners[map.partition(of: $0)] == "n1" })
        #expect(try Self.calls(of: orphan, owner: nodes[1]) == 6)
        try Self.waitForBalance(nodes[1], nodes: ["n2"])
        // 11 of 10: every customer crosses 100 %, all on n2 now.
        try send(6..<11, to: nodes[1])
        #expect(receiver.wait(seconds: 60) { _ in Set(delivered().map(\.id)).count >= 3 * customers.count })
        Thread.sleep(forTimeInterval: 3)  // room for a second delivery, which must not come
        let payloads = delivered()
        #expect(Set(payloads.map(\.id)).count == 3 * customers.count)
        #expect(payloads.count == 3 * customers.count, "each alert delivered once: \(payloads.count) deliveries")
        for customer in customers {
            // calls at 50 % and 100 %, stop at 100 %.
            #expect(payloads.filter { $0.customer == customer }.map(\.percent).sorted() == ["100", "100", "50"], "\(customer)")
        }
        #expect(nodes[1].terminate() == 0)
    }
}

/// Producers that send their lines to random live nodes until each line is answered accepted or
/// duplicate: unanswered lines (a node died) and `unavailable` ones (a fail-over under way) go again.
private final class ProducerRun: @unchecked Sendable {
    let lines: [[UInt8]]
    let nodes: [String]
    private let lock = NSLock()
    private var dead = Set<Int>()
    private var answered = 0
    private var accepted = 0
    private var finished = 0
    private(set) var unexpected: [String] = []

    init(lines: [[UInt8]], nodes: [String]) {
        self.lines = lines
        self.nodes = nodes
    }

    var answeredCount: Int { lock.withLock { answered } }
    var acceptedCount: Int { lock.withLock { accepted } }
    var finishedProducers: Int { lock.withLock { finished } }
    func markDead(_ node: Int) { _ = lock.withLock { dead.insert(node) } }

    func produce(indices: [Int]) {
        var remaining = indices
        let deadline = Date().addingTimeInterval(600)
        while !remaining.isEmpty, Date() < deadline {
            let live = lock.withLock { nodes.indices.filter { !dead.contains($0) } }
            let socket = nodes[live.randomElement()!]
            let batch = remaining
            let done = OutcomeLog()
            let sender = LineSender(socketPath: socket, options: .init(windowLines: 4_096, reconnectAttempts: 2, initialBackoff: .milliseconds(50),
                                                                        maxBackoff: .milliseconds(200)))
            _ = try? sender.run(lines: batch.lazy.map { ArraySlice(self.lines[$0]) }) { outcome in
                done.add(batch[outcome.index], outcome.response)
            }
            var settled = Set<Int>()
            lock.withLock {
                for (index, response) in done.all {
                    switch response.status {
                    case .accepted:
                        settled.insert(index)
                        answered += 1
                        accepted += 1
                    case .duplicate:
                        settled.insert(index)
                        answered += 1
                    case .rejected:
                        if response.errorCode != "unavailable" { unexpected.append("\(index): \(response)") }
                    }
                }
            }
            remaining = remaining.filter { !settled.contains($0) }
            if settled.isEmpty { usleep(200_000) }
        }
        lock.withLock { finished += 1 }
    }
}

private final class OutcomeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var outcomes: [(Int, IngestResponse)] = []
    func add(_ index: Int, _ response: IngestResponse) { lock.withLock { outcomes.append((index, response)) } }
    var all: [(Int, IngestResponse)] { lock.withLock { outcomes } }
}
