import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Ingest
import Logging
import Metering
import Storage
import Testing

@Suite("Maintenance steps on the writer thread")
struct MaintenanceJobTests {
    private static func writer() throws -> (GroupCommitWriter, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-jobs-\(UUID().uuidString.prefix(8))").path
        let store = try TallyStore(path: path, configuration: .init(meters: [Meter(code: "calls", aggregation: .count)], billingPeriod: .monthly),
                                   access: .readWrite, logger: Logger(label: "test"))
        let writer = GroupCommitWriter(writer: try StoreWriter(store: store), maximumEvents: 64, maximumDelayNanoseconds: 1_000_000,
                                       logger: Logger(label: "test"))
        return (writer, path)
    }

    @Test("a job runs on the writer thread, its error comes back, and after stop jobs are refused")
    func performAndWait() throws {
        let (writer, path) = try Self.writer()
        defer { try? FileManager.default.removeItem(atPath: path) }
        writer.start()
        let first = ThreadIdentity()
        let second = ThreadIdentity()
        let duration = try writer.performAndWait { storeWriter in
            first.value = pthread_self()
            #expect(storeWriter.identityCount == 0)
            Thread.sleep(forTimeInterval: 0.01)
        }
        _ = try writer.performAndWait { _ in second.value = pthread_self() }
        // Not the caller's thread, and the same thread every time: the writer's.
        #expect(pthread_equal(try #require(first.value), pthread_self()) == 0)
        #expect(pthread_equal(try #require(first.value), try #require(second.value)) != 0)
        #expect(duration >= 10_000_000)
        struct Failure: Error {}
        #expect(throws: Failure.self) { _ = try writer.performAndWait { _ in throw Failure() } }
        writer.stop()
        do {
            _ = try writer.performAndWait { _ in Issue.record("a job ran after stop") }
            Issue.record("performAndWait after stop did not throw")
        } catch let error as StoreError {
            #expect(error.code == .unavailable)
        }
    }
}

private final class ThreadIdentity: @unchecked Sendable {
    var value: pthread_t?
}
