@testable import Cluster
import Foundation
import Logging
import Metering
import NATS
import NATSTestSupport
import Storage
import Testing

@Suite("Partition snapshots in JetStream", .serialized)
struct PartitionSnapshotTests {
    static let configuration = TallyStore.Configuration(meters: [Meter(code: "calls", aggregation: .count)], billingPeriod: .monthly,
                                                        initialMapSize: 1 << 24)

    static func recorder(_ node: String, _ log: PartitionLog, _ snapshots: PartitionSnapshots, root: String) throws -> ClusterRecorder {
        ClusterRecorder(node: node, map: try PartitionMap(count: 4), log: log, snapshots: snapshots, root: root,
                        storeConfiguration: configuration, logger: Logger(label: "test"))
    }

    static func record(_ recorder: ClusterRecorder, _ ids: Range<Int>, customer: String) throws -> [RecordOutcome] {
        try recorder.record(ClusterRecorderTests.events(ids, customer: customer))
    }

    static func usage(root: String, partition: Int, customer: String) throws -> ExactDecimal? {
        let store = try TallyStore(path: ClusterRecorder.storePath(root: root, partition: partition), configuration: configuration,
                                   access: .readOnly, logger: Logger(label: "test"))
        return try store.usage(customer: customer, periodStart: BillingPeriod.monthly.interval(containing: .now()).start).first?.quantity
    }

    /// One NATS server with the log (a 1 s duplicate window, so it may be trimmed soon) and small
    /// snapshot chunks (so a snapshot has several), a directory, and a customer's partition.
    struct Fixture {
        let servers: NATSServers
        let stream: JetStream
        let log: PartitionLog
        let snapshots: PartitionSnapshots
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-snap-\(UUID().uuidString.prefix(8))").path
        let customer = "cus_7"
        let partition: Int

        init() throws {
            servers = try NATSServers(count: 1)
            let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
            self.stream = stream
            log = try eventually { try PartitionLog(stream: stream, replicas: 1, duplicateWindow: .seconds(1)) }
            snapshots = try PartitionSnapshots(stream: stream, replicas: 1, chunkBytes: 4_096)
            partition = try PartitionMap(count: 4).partition(of: customer)
        }

        func remove() {
            servers.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    static func served(_ recorder: ClusterRecorder, _ partition: Int) throws -> ClusterRecorder.Partition {
        try #require(recorder.partitions[partition])
    }

    @Test("a snapshot is published in chunks with a manifest; the next one purges it and trims the log below it; a node without a store starts from the newest snapshot, replays the rest of the log, and still recognises every event")
    func snapshotTrimRestore() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let (stream, log, snapshots, directory, customer, partition) =
            (fixture.stream, fixture.log, fixture.snapshots, fixture.directory, fixture.customer, fixture.partition)

        let a = try Self.recorder("a", log, snapshots, root: directory + "/a")
        try a.open(partition)
        #expect(try snapshots.newest(partition: partition) == nil)
        for start in stride(from: 0, to: 300, by: 100) {
            #expect(try Self.record(a, start..<(start + 100), customer: customer).allSatisfy { $0 == .accepted })
        }
        let first = try #require(try a.snapshot(Self.served(a, partition)))
        #expect(first.logSequence == (try log.lastSequence(of: partition)))
        #expect(first.chunks > 1 && first.files.map(\.name).contains("manifest.json"))
        #expect(try snapshots.newest(partition: partition) == first)
        // Nothing recorded since: no new snapshot.
        #expect(try a.snapshot(Self.served(a, partition)) == nil)

        #expect(try Self.record(a, 300..<600, customer: customer).allSatisfy { $0 == .accepted })
        Thread.sleep(forTimeInterval: 1.2)  // past the log's duplicate window, so the log may be trimmed below the first snapshot
        let second = try #require(try a.snapshot(Self.served(a, partition)))
        #expect(second.logSequence > first.logSequence)
        #expect(try snapshots.newest(partition: partition) == second)
        // The first snapshot's chunks are gone, and the log starts after what it covered.
        #expect(try stream.nextMessage(stream: snapshots.name, subject: snapshots.chunkSubject(partition, id: first.id), from: 1) == nil)
        let head = try #require(try stream.nextMessage(stream: log.name, subject: log.subject(partition), from: 1))
        #expect(head.sequence > first.logSequence)
        #expect(try Self.record(a, 600..<650, customer: customer).allSatisfy { $0 == .accepted })
        a.closeAll()

        // b has no store: it starts from the second snapshot and replays the log after it.
        let b = try Self.recorder("b", log, snapshots, root: directory + "/b")
        try b.open(partition)
        #expect(try Self.usage(root: directory + "/b", partition: partition, customer: customer) == 650)
        let resent = try Self.record(b, 0..<650, customer: customer)
        #expect(resent.allSatisfy { $0 == .duplicate }, "every event before and after the snapshot is recognised")
        #expect(try Self.record(b, 650..<660, customer: customer).allSatisfy { $0 == .accepted })
        #expect(try Self.usage(root: directory + "/b", partition: partition, customer: customer) == 660)
        // A batch job rebuilds the partition from the snapshot and the log without disturbing b.
        let rebuilt = try PartitionRebuild.build(partition: partition, log: log, snapshots: snapshots, into: directory + "/job",
                                                 configuration: Self.configuration, logger: Logger(label: "test"))
        #expect(rebuilt.logSequence == (try log.lastSequence(of: partition)))
        #expect(try rebuilt.store.usage(customer: customer, periodStart: BillingPeriod.monthly.interval(containing: .now()).start).first?.quantity == 660)
        #expect(try Self.record(b, 660..<661, customer: customer) == [.accepted], "the owner still writes")
        b.closeAll()

        // A store that covers more of the log than the newest snapshot is kept as it is.
        let again = try Self.recorder("b", log, snapshots, root: directory + "/b")
        try again.open(partition)
        #expect(try Self.usage(root: directory + "/b", partition: partition, customer: customer) == 661)
        again.closeAll()
    }

    @Test("a snapshot whose chunks are missing is refused with a damaged error, and the node does not serve the partition")
    func missingChunks() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let (stream, log, snapshots, directory, customer, partition) =
            (fixture.stream, fixture.log, fixture.snapshots, fixture.directory, fixture.customer, fixture.partition)
        let a = try Self.recorder("a", log, snapshots, root: directory + "/a")
        try a.open(partition)
        _ = try Self.record(a, 0..<100, customer: customer)
        let manifest = try #require(try a.snapshot(Self.served(a, partition)))
        a.closeAll()
        try stream.purge(stream: snapshots.name, subject: snapshots.chunkSubject(partition, id: manifest.id), below: 0)

        let c = try Self.recorder("c", log, snapshots, root: directory + "/c")
        #expect {
            try c.open(partition)
        } throws: { error in
            (error as? ClusterError)?.code == .damaged && "\(error)".contains("purged or is damaged")
        }
        #expect(c.served.isEmpty)
    }
}
