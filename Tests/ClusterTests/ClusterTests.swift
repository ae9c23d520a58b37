import Cluster
import Foundation
import Metering
import NATS
import NATSTestSupport
import Storage
import Testing

@Suite("Partitions")
struct PartitionMapTests {
    @Test("a customer's partition is stable (fixed vectors: a change would split customers' usage) and spread evenly")
    func stable() throws {
        let map = try PartitionMap(count: 64)
        #expect(["cus_42", "cus_1", "acme", "", "ünïcode"].map(map.partition(of:)) == Self.vectors)
        var counts = [Int](repeating: 0, count: 64)
        for index in 0..<64_000 { counts[map.partition(of: "customer-\(index)")] += 1 }
        #expect(counts.allSatisfy { (850...1_150).contains($0) }, "partition sizes \(counts.min()!)…\(counts.max()!)")
        #expect(try PartitionMap(count: 1).partition(of: "anyone") == 0)
        #expect(PartitionMap.name(7) == "0007" && PartitionMap.name(4_095) == "4095")
    }

    static let vectors = [22, 49, 23, 28, 1]

    @Test("partition counts out of range are refused with the range")
    func invalid() {
        for count in [0, -1, 4_097] {
            let error = #expect(throws: ClusterError.self) { try PartitionMap(count: count) }
            #expect(error?.code == .invalidSettings)
            #expect(error?.message.contains("between 1 and 4096") == true)
        }
    }
}

func pendingEvents(_ range: Range<Int>, customer: String = "c1") -> [PendingEvent] {
    range.map { index in
        PendingEvent(event: UsageEvent(id: "e\(index)", customer: customer, meter: "calls", value: ExactDecimal(index),
                                       time: Timestamp(nanosecondsSinceEpoch: 1_800_000_000_000_000_000 + Int64(index)),
                                       properties: [.init(key: "model", value: .string("m\(index % 3)"))]),
                     receivedAt: Timestamp(nanosecondsSinceEpoch: 1_800_000_000_000_000_000))
    }
}

@Suite("The partition log", .serialized)
struct PartitionLogTests {
    @Test("appends are acknowledged in order and replayed exactly; a retried commit is stored once; a large commit is cut into messages")
    func appendAndReplay() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        let log = try eventually { try PartitionLog(stream: stream, replicas: 1, maxMessageBytes: 64 * 1_024) }
        #expect(try log.lastSequence(of: 3) == 0)
        let first = try log.append(pendingEvents(0..<10), partition: 3, after: 0, commitID: "n1-1")
        let second = try log.append(pendingEvents(10..<20), partition: 3, after: first, commitID: "n1-2")
        #expect(first == 1 && second == 2)
        // The acknowledgement of n1-2 was lost and the owner sends it again: not stored twice.
        #expect(try log.append(pendingEvents(10..<20), partition: 3, after: first, commitID: "n1-2") == second)
        // Another partition's subject has its own sequence line.
        #expect(try log.append(pendingEvents(0..<5, customer: "other"), partition: 4, after: 0, commitID: "n1-3") == 3)
        // 5,000 events of about 80 bytes do not fit one 64 KiB message.
        let large = pendingEvents(20..<5_020)
        let end = try log.append(large, partition: 3, after: second, commitID: "n1-4")
        #expect(end > 4)
        #expect(try log.lastSequence(of: 3) == end)
        var replayed: [PendingEvent] = []
        var sequences: [UInt64] = []
        try log.replay(partition: 3, after: 0) { sequence, events in
            sequences.append(sequence)
            replayed += events
        }
        #expect(sequences == [1, 2] + Array(4...end))  // then the pieces of n1-4 (3 is partition 4's)
        #expect(replayed.map(\.event) == pendingEvents(0..<5_020).map(\.event))
        #expect(replayed.map(\.receivedAt) == pendingEvents(0..<5_020).map(\.receivedAt))
        // A replay from a snapshot's sequence sees only what came after it.
        var after: [String] = []
        try log.replay(partition: 3, after: 1) { _, events in after += events.map(\.event.id) }
        #expect(after.first == "e10" && after.count == 5_010)
    }

    @Test("a deposed owner's append is fenced: another node wrote to the partition since the sequence it knows")
    func fenced() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        let log = try eventually { try PartitionLog(stream: stream, replicas: 1) }
        let known = try log.append(pendingEvents(0..<3), partition: 0, after: 0, commitID: "old-1")
        // The new owner read the end of the log and writes after it.
        let newOwner = try log.lastSequence(of: 0)
        _ = try log.append(pendingEvents(3..<6), partition: 0, after: newOwner, commitID: "new-1")
        // The old owner, unaware, appends after what it knew.
        let error = #expect(throws: ClusterError.self) { try log.append(pendingEvents(6..<9), partition: 0, after: known, commitID: "old-2") }
        #expect(error?.code == .fenced)
        #expect(error?.message.contains("no longer owns the partition") == true)
        var ids: [String] = []
        try log.replay(partition: 0, after: 0) { _, events in ids += events.map(\.event.id) }
        #expect(ids == (0..<6).map { "e\($0)" })
    }
}

extension PartitionLogTests {
    @Test("a new owner seals the log before it replays: the previous owner's next append is fenced even before the new owner wrote events")
    func sealed() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        let log = try eventually { try PartitionLog(stream: stream, replicas: 1) }
        let known = try log.append(pendingEvents(0..<3), partition: 5, after: 0, commitID: "old-1")
        let seal = try log.seal(partition: 5, by: "new", messageID: "new-seal")
        #expect(seal == known + 1)
        let error = #expect(throws: ClusterError.self) { try log.append(pendingEvents(3..<6), partition: 5, after: known, commitID: "old-2") }
        #expect(error?.code == .fenced)
        // The seal is an empty batch: a replay through it counts the old owner's events only.
        var ids: [String] = []
        var last: UInt64 = 0
        try log.replay(partition: 5, after: 0) { sequence, events in
            ids += events.map(\.event.id)
            last = sequence
        }
        #expect(ids == ["e0", "e1", "e2"] && last == seal)
    }
}

@Suite("Partition leases", .serialized)
struct PartitionOwnershipTests {
    static let failover = Duration.milliseconds(1_500)

    static func node(_ name: String, _ stream: JetStream, partitions: Int = 8) throws -> PartitionOwnership {
        let (leases, nodes) = try eventually { try PartitionOwnership.buckets(on: stream, failover: failover, replicas: 1) }
        return try PartitionOwnership(node: name, partitions: try PartitionMap(count: partitions), leases: leases, nodes: nodes)
    }

    static func owners(_ stream: JetStream, partitions: Int = 8) throws -> [String?] {
        let (leases, nodes) = try PartitionOwnership.buckets(on: stream, failover: failover, replicas: 1)
        return try PartitionOwnership.table(leases: leases, nodes: nodes, partitions: try PartitionMap(count: partitions)).owners
    }

    @Test("one node takes every partition; a second node joining gets half once the first releases its surplus")
    func sharing() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        let a = try Self.node("a", stream)
        #expect(try a.round().gained == Array(0..<8))
        #expect(try Self.owners(stream) == [String?](repeating: "a", count: 8))
        let b = try Self.node("b", stream)
        let first = try b.round()
        #expect(first.gained.isEmpty)  // everything is taken
        let surplus = try a.round().surplus
        #expect(surplus.count == 4)
        for partition in surplus { try a.release(partition) }
        #expect(try b.round().gained == surplus.sorted())
        #expect(Set(a.owned.keys).isDisjoint(with: b.owned.keys) && a.owned.count + b.owned.count == 8)
        let owners = try Self.owners(stream)
        #expect(owners.filter { $0 == "a" }.count == 4 && owners.filter { $0 == "b" }.count == 4)
        #expect(try a.round() == .init() && b.round() == .init())
    }

    @Test("three nodes for sixteen partitions even out to 6, 5 and 5, not 6, 6 and 4")
    func evenShares() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        let nodes = try ["a", "b", "c"].map { try Self.node($0, stream, partitions: 16) }
        _ = try nodes[0].round()
        _ = try nodes[1].round()
        for _ in 0..<4 {
            for node in nodes.prefix(2) {
                for partition in try node.round(owners: try Self.owners(stream, partitions: 16)).surplus { try node.release(partition) }
            }
        }
        #expect(nodes[0].owned.count == 8 && nodes[1].owned.count == 8)
        // c joins: a and b hand over above ⌈16 ÷ 3⌉ = 6, then one more each while c has fewer than 5.
        for _ in 0..<6 {
            for node in nodes {
                for partition in try node.round(owners: try Self.owners(stream, partitions: 16)).surplus { try node.release(partition) }
            }
        }
        #expect(nodes.map(\.owned.count).sorted() == [5, 5, 6])
        #expect(try Self.owners(stream, partitions: 16).allSatisfy { $0 != nil })
    }

    @Test("fail-over: a node that stops renewing loses its partitions to another within the fail-over time; when it comes back its renewals lose and its log appends are fenced")
    func failover() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        let log = try eventually { try PartitionLog(stream: stream, replicas: 1) }
        let a = try Self.node("a", stream)
        let b = try Self.node("b", stream)
        _ = try a.round()
        _ = try b.round()
        for partition in try a.round().surplus { try a.release(partition) }
        _ = try b.round()
        let aPartitions = a.owned.keys.sorted()
        #expect(aPartitions.count == 4)
        let aKnows = try log.append(pendingEvents(0..<2), partition: aPartitions[0], after: 0, commitID: "a-1")
        // a is paused (SIGSTOP, a long GC, a partition of the network): it renews nothing.
        // Its leases hold until they expire: b takes nothing at first.
        #expect(try b.round().gained.isEmpty)
        let paused = ContinuousClock.now
        var taken: [Int] = []
        try eventually(within: 20) {
            taken += try b.round().gained
            guard taken.count == 4 else { throw FixtureError("not yet taken over") }
        }
        let tookOver = ContinuousClock.now - paused
        #expect(taken.sorted() == aPartitions, "taken over after \(tookOver)")
        // The new owner catches up from the log, then writes after its end.
        let end = try log.lastSequence(of: aPartitions[0])
        #expect(end == aKnows)
        _ = try log.append(pendingEvents(2..<4), partition: aPartitions[0], after: end, commitID: "b-1")
        // a wakes up: its renewals lose, and an append it had under way is fenced.
        let woke = try a.round()
        #expect(woke.lost == aPartitions && a.owned.isEmpty)
        let fenced = #expect(throws: ClusterError.self) {
            try log.append(pendingEvents(4..<6), partition: aPartitions[0], after: aKnows, commitID: "a-2")
        }
        #expect(fenced?.code == .fenced)
        #expect(try Self.owners(stream) == [String?](repeating: "b", count: 8))
    }

    @Test("three nodes racing for sixteen partitions from three threads: no partition ever has two owners")
    func racing() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let urls = servers.urls
        _ = try Self.node("warm-up", try NATSConnection(servers: urls, name: "test").jetStream(), partitions: 16)
        let results = RacingResults()
        let threads = (0..<3).map { index in
            Thread {
                do {
                    let stream = try NATSConnection(servers: urls, name: "n\(index)").jetStream()
                    let node = try Self.node("n\(index)", stream, partitions: 16)
                    for _ in 0..<6 {
                        let round = try node.round()
                        for partition in round.surplus { try node.release(partition) }
                    }
                    results.add("n\(index)", node.owned.keys.sorted())
                } catch {
                    results.fail("\(error)")
                }
            }
        }
        threads.forEach { $0.start() }
        try eventually(within: 60) { guard results.count == 3 else { throw FixtureError("racing") } }
        #expect(results.failures.isEmpty, "\(results.failures)")
        let all = results.owned.values.flatMap { $0 }
        #expect(all.count == Set(all).count, "a partition owned twice: \(results.owned)")
        let owners = try Self.owners(try NATSConnection(servers: urls, name: "check").jetStream(), partitions: 16)
        for (node, partitions) in results.owned {
            for partition in partitions { #expect(owners[partition] == node) }
        }
    }
}

private final class RacingResults: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var owned: [String: [Int]] = [:]
    private(set) var failures: [String] = []
    var count: Int { lock.withLock { owned.count + failures.count } }
    func add(_ node: String, _ partitions: [Int]) { lock.withLock { owned[node] = partitions } }
    func fail(_ text: String) { lock.withLock { failures.append(text) } }
}
