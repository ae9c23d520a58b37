import LMDB
public import Metering

extension StoreWriter {
    /// Writes usage buckets of `meter` (a `sum`) for `customers` customers (`cus_00000`…) over
    /// `days` UTC days from `from`: one quarter-hour bucket in each hour, quantities 1…1000, and
    /// the day buckets that roll them up, without events or period usage.
    ///
    /// For benchmarks only (`tally bench query`): it builds a month of usage for ten thousand
    /// customers in seconds, where ingesting the events would take many minutes.
    public func insertSyntheticBuckets(customers: Int, meter: String, from: Timestamp, days: Int) throws(StoreError) {
        guard let database = store.usageBuckets else { throw StoreError(.unavailable, "the store has no usage_buckets database") }
        var generator = SystemRandomNumberGenerator()
        let dayStart = BucketResolution.day.start(containing: from.nanosecondsSinceEpoch)
        let width = String(max(1, customers - 1)).count
        var key: [UInt8] = []
        var value: [UInt8] = []
        do {
            for chunk in stride(from: 0, to: customers, by: 500) {
                try store.environment.write { transaction in
                    for customer in chunk..<min(customers, chunk + 500) {
                        let digits = String(customer)
                        let id = "cus_" + String(repeating: "0", count: width - digits.count) + digits
                        var daily: [AggregateState] = Array(repeating: AggregateState(), count: days)
                        for hour in 0..<(days * 24) {
                            var state = AggregateState()
                            let quantity = 1 + Int(generator.next() % 1000)
                            state.eventCount = UInt64(1 + quantity % 7)
                            state.quantity = ExactDecimal(quantity)
                            let start = dayStart + Int64(hour) * Timestamp.nanosecondsPerHour
                                + Int64(generator.next() % 4) * BucketResolution.quarterHour.nanoseconds
                            BucketKey.make(customer: id, meter: meter, resolution: .quarterHour, start: start, group: [],
                                           hashKeys: store.hashKeys, into: &key)
                            state.encode(into: &value)
                            guard try transaction.put(database, key: key, value: value, flags: .append) == .stored else {
                                throw StoreError(.unavailable, "synthetic buckets go into an empty usage_buckets only (a key was not after the last one)")
                            }
                            try daily[hour / 24].merge(state, aggregation: .sum)
                        }
                        for (day, state) in daily.enumerated() {
                            BucketKey.make(customer: id, meter: meter, resolution: .day, start: dayStart + Int64(day) * Timestamp.nanosecondsPerDay,
                                           group: [], hashKeys: store.hashKeys, into: &key)
                            state.encode(into: &value)
                            guard try transaction.put(database, key: key, value: value, flags: .append) == .stored else {
                                throw StoreError(.unavailable, "synthetic buckets go into an empty usage_buckets only (a key was not after the last one)")
                            }
                        }
                    }
                }
            }
        } catch {
            throw StoreError(.unavailable, "cannot write synthetic buckets: \(error)")
        }
    }
}

/// How much room the usage buckets take.
public struct BucketStatistics: Sendable {
    /// Bucket rows (quarter-hour and day).
    public var buckets: Int
    /// Bytes of the pages `usage_buckets` occupies.
    public var bytes: Int
    /// Bytes of the pages `bucket_unique_values` occupies.
    public var uniqueValueBytes: Int
}

extension TallyStore {
    /// The size of `usage_buckets` and `bucket_unique_values`.
    public func bucketStatistics() throws(StoreError) -> BucketStatistics {
        try readStore("read bucket statistics") { _ in
            func bytes(_ database: Database?) throws -> (Int, Int) {
                guard let database else { return (0, 0) }
                let statistics = try environment.statistics(database)
                return (statistics.entries, statistics.pageSize * (statistics.branchPages + statistics.leafPages + statistics.overflowPages))
            }
            let (entries, size) = try bytes(usageBuckets)
            return BucketStatistics(buckets: entries, bytes: size, uniqueValueBytes: try bytes(bucketUniqueValues).1)
        }
    }
}
