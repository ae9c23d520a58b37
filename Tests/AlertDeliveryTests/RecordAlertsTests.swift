import Metering
import Storage
import Testing

/// `TallyStore.recordAlerts`, the outbox append these tests (and tools) rely on.
@Suite struct RecordAlertsTests {
    @Test func appendsWithConsecutiveSequencesAfterTheLast() throws {
        let store = try TemporaryStore()
        #expect(try store.store.recordAlerts([]) == [])
        #expect(try store.store.recordAlerts([makeAlert(1), makeAlert(2)]) == [1, 2])
        // The alerts' own sequence fields are ignored.
        var third = makeAlert(3)
        third.sequence = 99
        #expect(try store.store.recordAlerts([third]) == [3])

        let stored = try store.store.alerts(after: 0, limit: 10)
        #expect(stored.map(\.sequence) == [1, 2, 3])
        #expect(stored.map(\.id) == ["alt_1_cus_42", "alt_2_cus_42", "alt_3_cus_42"])
        var expected = makeAlert(2)
        expected.sequence = 2
        #expect(stored[1] == expected)
        #expect(try store.store.alerts(after: 2, limit: 10).map(\.sequence) == [3])
    }
}
