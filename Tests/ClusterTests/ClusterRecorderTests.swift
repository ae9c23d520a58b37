import Cluster
import Foundation
import Logging
import Metering
import NATS
import NATSTestSupport
import Storage
import Testing

@Suite("A node's partitions", .serialized)
struct ClusterRecorderTests {
    static func recorder(_ node: String, _ log: PartitionLog, root: String) throws -> ClusterRecorder {
        ClusterRecorder(node: node, map: try PartitionMap(count: 4), log: log, root: root,
                        storeConfiguration: .init(meters: [Meter(code: "calls", aggregation: .count)], billingPeriod: .monthly, initialMapSize: 1 << 24),
                        logger: Logger(label: "test"))
    }

    static func events(_ ids: Range<Int>, customer: String) -> [PendingEvent] {
        ids.map { PendingEvent(event: UsageEvent(id: "e\($0)", customer: customer, meter: "calls", value: 1), receivedAt: .now()) }
    }

    @Test("a partition opened by a new owner holds what the old owner's log holds; the old owner's next commit is refused and it gives the partition up; events of partitions not served are unavailable")
    func handOver() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        let log = try eventually { try PartitionLog(stream: stream, replicas: 1) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-cluster-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let map = try PartitionMap(count: 4)
        let customer = "cus_7"
        let partition = map.partition(of: customer)
        let other = (0..<100).map { "x\($0)" }.first { map.partition(of: $0) != partition }!

        let old = try Self.recorder("a", log, root: directory + "/a")
        try old.open(partition)
        #expect(try old.record(Self.events(0..<5, customer: customer)).allSatisfy { $0 == .accepted })
        let notServed = try old.record(Self.events(100..<101, customer: other))
        guard case .rejected(let error) = notServed[0] else {
            Issue.record("an event of a partition not served must be rejected")
            return
        }
        #expect(error.code == .unavailable && error.message.contains("does not serve partition"))

        // b takes the partition over (a paused past its lease): seal, replay, serve.
        let new = try Self.recorder("b", log, root: directory + "/b")
        try new.open(partition)
        #expect(new.served[partition] == (try log.lastSequence(of: partition)))
        let store = try TallyStore(path: ClusterRecorder.storePath(root: directory + "/b", partition: partition),
                                   configuration: .init(meters: [Meter(code: "calls", aggregation: .count)], billingPeriod: .monthly),
                                   access: .readOnly, logger: Logger(label: "test"))
        let period = BillingPeriod.monthly.interval(containing: .now())
        #expect(try store.usage(customer: customer, periodStart: period.start).first?.quantity == 5)
        // The old owner, unaware, commits again: its publish is fenced, nothing is recorded, it gives up the partition.
        let refused = try old.record(Self.events(5..<8, customer: customer))
        #expect(refused.allSatisfy { if case .rejected(let error) = $0 { error.code == .unavailable } else { false } })
        #expect(old.fencedPartitions == [partition])
        // The resend goes to the new owner: the first five are duplicates there, the rest new.
        #expect(try new.record(Self.events(3..<8, customer: customer)) == [.duplicate, .duplicate, .accepted, .accepted, .accepted])
        #expect(try store.usage(customer: customer, periodStart: period.start).first?.quantity == 8)
        // A catch-up of the old owner must not take the new owner's writes for its own.
        old.reconcile()
        #expect(old.fencedPartitions == [partition])
        old.closeAll()
        new.closeAll()
    }
}
