import Metering

extension UsageFolder {
    /// Told once when kept rows change, so that what it keeps about them need not be checked.
    protocol CompleteRowsWatcher: AnyObject {
        /// A row joined, or the folder stopped keeping the rows whole.
        func rowsChanged()
    }

    /// The period rows of one customer's period kept whole, as the folder keeps them.
    final class CompleteRows {
        /// The entries, in key order; a new row of the prefix joins in its place.
        private(set) var entries: [Entry]
        /// Whoever keeps something per entry (a period's credit lines): told of the next change.
        var watcher: (any CompleteRowsWatcher)?

        init(entries: [Entry]) { self.entries = entries }

        /// A new row of the prefix, in its place.
        func insert(_ entry: Entry) {
            entries.insertSorted(entry)
            notifyWatcher()
        }

        /// The folder stopped keeping the rows whole (an entry left the table, a rollback): the
        /// entries no longer tell the whole period.
        func dropped() {
            notifyWatcher()
        }

        private func notifyWatcher() {
            let told = watcher
            watcher = nil
            told?.rowsChanged()
        }
    }

    /// What `periodRows(prefix:transaction:)` found.
    enum PeriodRows {
        /// Kept whole: the live entries.
        case complete(CompleteRows)
        /// Too many aggregates to keep them: the rows as records.
        case records([UsageRecord])
    }

    /// The meter a period row is for (nil for a damaged key).
    static func meter(of key: UsageKeyBytes) -> String? {
        key.bytes.withUnsafeBytes { UsageKey.meter(in: $0) }
    }
}
