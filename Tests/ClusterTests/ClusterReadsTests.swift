import Cluster
import Foundation
import Logging
import Metering
import NATS
import NATSTestSupport
import Storage
import Testing

@Suite("Reads answered by a partition's owner", .serialized)
struct ClusterReadsTests {
    @Test("a read for a customer of a served partition is answered from its live store; one for a partition not served is unavailable; a request this version cannot read gets an error")
    func reads() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let connection = try NATSConnection(servers: servers.urls, name: "test")
        let log = try eventually { try PartitionLog(stream: connection.jetStream(), replicas: 1) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-reads-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let recorder = try ClusterRecorderTests.recorder("a", log, root: directory)
        let customer = "cus_7"
        let partition = recorder.map.partition(of: customer)
        let other = (0..<100).map { "x\($0)" }.first { recorder.map.partition(of: $0) != partition }!
        try recorder.open(partition)
        #expect(try recorder.record(ClusterRecorderTests.events(0..<4, customer: customer)).allSatisfy { $0 == .accepted })

        let server = ReadServer(connection: connection, recorder: recorder) { request, store in
            let period = BillingPeriod.monthly.interval(containing: .now())
            let quantity = (try? store.usage(customer: request.customer, periodStart: period.start).first?.quantity.description) ?? nil
            return .printed("\(request.command) \(request.arguments.joined(separator: " ")): \(quantity ?? "none")")
        }
        try server.start()
        defer { server.stop() }
        let asked = try ClusterReads.ask(.init(command: "usage", customer: customer, arguments: ["--customer", customer]), owner: "a", connection: connection)
        #expect(asked == .printed("usage --customer cus_7: 4"))
        let elsewhere = try ClusterReads.ask(.init(command: "usage", customer: other, arguments: []), owner: "a", connection: connection)
        #expect(elsewhere.code == "unavailable" && elsewhere.output == nil && (elsewhere.error ?? "").contains("does not serve partition"))
        let garbage = try connection.request(subject: ClusterReads.subject(node: "a"), payload: Array("{]".utf8), timeout: .seconds(5))
        let reply = try JSONDecoder().decode(ClusterReadReply.self, from: Data(garbage.payload))
        #expect(reply.output == nil && (reply.error ?? "").contains("not a read request"))
        // After the partition closes, its reads are unavailable too.
        recorder.close(partition)
        #expect(try ClusterReads.ask(.init(command: "usage", customer: customer, arguments: []), owner: "a", connection: connection).code == "unavailable")
        // Nobody answers for a node that does not run.
        #expect(throws: ClusterError.self) {
            try ClusterReads.ask(.init(command: "usage", customer: customer, arguments: []), owner: "ghost", connection: connection, timeout: .seconds(1))
        }
    }
}
