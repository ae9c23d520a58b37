import Foundation
import LMDB
import Logging
import Metering
import Testing

@testable import Storage

/// The customer directory (`customer_index` and its log overlay): every customer with usage, a
/// stored plan or a stored limit, in byte order of id, from the commit that first counted it.
@Suite("Customer directory")
struct CustomerDirectoryTests {
    static func all(_ store: TallyStore, pageSize: Int) throws -> [String] {
        var seen: [String] = []
        var after: [UInt8]?
        while true {
            let page = try store.customers(after: after, limit: pageSize)
            seen += page.customers
            guard page.hasMore, let last = page.customers.last else { return seen }
            after = Array(last.utf8)
        }
    }

    @Test("random commits with eager folding: the directory, paged, is exactly the customers seen after every commit",
          arguments: [UsageLogTests.eager, UsageLogTests.eagerRetaining])
    func agreesWithModel(policy: UsageFoldPolicy) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-dir-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try UsageLogTests.open(path)
        let writer = try StoreWriter(store: store, usageFolding: policy)
        var generator = SystemRandomNumberGenerator()
        var known = Set<String>()
        var number = 0
        for round in 0..<80 {
            var batch: [PendingEvent] = []
            for _ in 0..<(1 + Int(generator.next() % 6)) {
                number += 1
                let customer = "c\(generator.next() % 40)" + (generator.next() % 3 == 0 ? "é" : "")
                batch.append(pending("e\(number)", customer: customer, meter: "calls"))
                known.insert(customer)
            }
            _ = try writer.record(batch)
            if round % 9 == 0 {
                try store.setPlan(customer: "plan_\(round)", plan: "p", from: now)
                known.insert("plan_\(round)")
            }
            let expected = known.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            #expect(try Self.all(store, pageSize: 7) == expected)
            #expect(try store.knowsCustomer(expected[0]))
            #expect(try !store.knowsCustomer("nobody"))
            // A prefix is a range of the same order.
            #expect(try store.customers(after: nil, prefix: "c1", limit: 100).customers == expected.filter { $0.hasPrefix("c1") })
        }
        try writer.foldLoggedUsage()
        #expect(try Self.all(store, pageSize: 1000) == known.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        let entries = try store.environment.read { _ in try store.environment.statistics(store.customerIndex!).entries }
        #expect(entries == known.count)
    }

    @Test("a stored customer limit makes its customer known; a store from before the directory is indexed when the writer opens it")
    func limitsAndUpgrade() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-dir-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let store = try UsageLogTests.open(path)
            let writer = try StoreWriter(store: store)
            _ = try writer.record((0..<20).map { pending("u\($0)", customer: "old_\($0)", meter: "calls") })
            try writer.foldLoggedUsage()
            try store.addLimit(UsageLimit(id: "l1", scope: .customer("limited"), threshold: .amount(5), action: .warning))
            #expect(try store.knowsCustomer("limited"))
            // Make it a store from before the directory: no index, no mark.
            try store.environment.write { transaction in
                try transaction.deleteAll(store.customerIndex!)
                _ = try transaction.delete(store.meta, key: MetaKey.customerIndexBuilt)
            }
            // A reader of such a store still lists every customer (gathered the slow way).
            let reader = try UsageLogTests.open(path, access: .readOnly)
            #expect(try Self.all(reader, pageSize: 6).count == 21)
        }
        let reopened = try UsageLogTests.open(path)
        let expected = ((0..<20).map { "old_\($0)" } + ["limited"]).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        #expect(try Self.all(reopened, pageSize: 6) == expected)
        #expect(try reopened.environment.read { _ in try reopened.environment.statistics(reopened.customerIndex!).entries } == 21)
    }

    @Test("a crash before the fold: the next writer keeps the logged customers and indexes them")
    func crash() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-dir-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let store = try UsageLogTests.open(path)
            let writer = try StoreWriter(store: store)
            _ = try writer.record((0..<30).map { pending("k\($0)", customer: "crash_\($0 % 10)", meter: "calls") })
            // Dropped without foldLoggedUsage: the directory's entries are only in the log.
            #expect(try store.environment.read { _ in try store.environment.statistics(store.customerIndex!).entries } == 0)
            #expect(try Self.all(store, pageSize: 3).count == 10)
        }
        let store = try UsageLogTests.open(path)
        let writer = try StoreWriter(store: store)
        _ = try writer.record([pending("k_new", customer: "crash_new", meter: "calls")])
        #expect(try Self.all(store, pageSize: 4).count == 11)
        try writer.foldLoggedUsage()
        #expect(try store.environment.read { _ in try store.environment.statistics(store.customerIndex!).entries } == 11)
    }
}
