import LMDB
public import Metering

/// A customer's plan from a moment on (`tally customers set-plan`).
public struct PlanAssignment: Sendable, Hashable {
    public var from: Timestamp
    public var plan: String

    public init(from: Timestamp, plan: String) {
        self.from = from
        self.plan = plan
    }
}

/// A billing period closed by `tally period close`: later events for it are `period_closed`.
public struct ClosedPeriod: Sendable, Hashable {
    public var start: Timestamp
    public var end: Timestamp
    public var label: String
    public var closedAt: Timestamp
}

/// Settings the store keeps beside usage: customers' plans and closed periods. They are written in
/// short transactions, from the daemon's process or from `tally` commands while it runs.
extension TallyStore {
    // MARK: Customers' plans

    /// Assigns `plan` to `customer` from `from` on, replacing an assignment from the same moment.
    public func setPlan(customer: String, plan: String, from: Timestamp) throws(StoreError) {
        let key = Array(customer.utf8)
        try writeStore("assign a plan") { transaction in
            var assignments = try transaction.get(customers, key: key).map { Self.decodeAssignments($0) } ?? []
            assignments.removeAll { $0.from == from }
            assignments.append(PlanAssignment(from: from, plan: plan))
            assignments.sort { $0.from < $1.from }
            try transaction.put(customers, key: key, value: Self.encodeAssignments(assignments))
            try Self.indexCustomer(key, in: transaction, customerIndex)
            try Self.bumpSettingsVersion(transaction, meta)
        }
    }

    /// `customer`'s plan assignments, oldest first.
    public func planAssignments(customer: String) throws(StoreError) -> [PlanAssignment] {
        try readStore("read plan assignments") { transaction in
            try transaction.get(customers, key: Array(customer.utf8)).map { Self.decodeAssignments($0) } ?? []
        }
    }

    /// The stored plan assignments of each of `customers` (empty for none), in one read.
    public func planAssignments(customers ids: [String]) throws(StoreError) -> [String: [PlanAssignment]] {
        try readStore("read plan assignments") { transaction in
            var result: [String: [PlanAssignment]] = [:]
            for id in ids {
                result[id] = try transaction.get(customers, key: Array(id.utf8)).map { Self.decodeAssignments($0) } ?? []
            }
            return result
        }
    }

    /// Every customer with a stored plan assignment, sorted by id.
    public func allPlanAssignments() throws(StoreError) -> [(customer: String, assignments: [PlanAssignment])] {
        try readStore("read plan assignments") { transaction in
            var result: [(customer: String, assignments: [PlanAssignment])] = []
            try transaction.forEach(customers, prefix: []) { key, value in
                result.append((String(decoding: key, as: UTF8.self), Self.decodeAssignments(Array(value))))
            }
            return result
        }
    }

    static func encodeAssignments(_ assignments: [PlanAssignment]) -> [UInt8] {
        var bytes: [UInt8] = []
        for assignment in assignments {
            bytes.appendOrdered(assignment.from.nanosecondsSinceEpoch)
            bytes.appendShortString(assignment.plan)
        }
        return bytes
    }

    static func decodeAssignments(_ bytes: [UInt8]) -> [PlanAssignment] {
        bytes.withUnsafeBytes { raw in
            var reader = ByteReader(bytes: raw)
            var result: [PlanAssignment] = []
            while !reader.isAtEnd {
                guard let from = reader.uint64(), let plan = reader.shortString() else { break }
                result.append(PlanAssignment(from: Timestamp(nanosecondsSinceEpoch: Int64(bitPattern: from ^ (1 << 63))), plan: plan))
            }
            return result
        }
    }

    // MARK: Closed periods

    /// Closes `interval`; returns false when it was closed already.
    @discardableResult
    public func closePeriod(_ interval: PeriodInterval, at now: Timestamp = .now()) throws(StoreError) -> Bool {
        var key: [UInt8] = []
        key.appendOrdered(interval.start.nanosecondsSinceEpoch)
        var value: [UInt8] = []
        value.appendOrdered(interval.end.nanosecondsSinceEpoch)
        value.appendOrdered(now.nanosecondsSinceEpoch)
        value.appendShortString(interval.label)
        return try writeStore("close a period") { transaction in
            try transaction.put(closedPeriods, key: key, value: value, flags: .noOverwrite) == .stored
        }
    }

    /// Every closed period, oldest first.
    public func closedPeriodList() throws(StoreError) -> [ClosedPeriod] {
        try readStore("read closed periods") { transaction in
            var result: [ClosedPeriod] = []
            try transaction.forEach(closedPeriods, prefix: []) { key, value in
                var reader = ByteReader(bytes: value)
                guard let end = reader.uint64(), let closedAt = reader.uint64(), let label = reader.shortString() else { return }
                result.append(ClosedPeriod(
                    start: Timestamp(nanosecondsSinceEpoch: key.loadOrderedInt64(at: 0)),
                    end: Timestamp(nanosecondsSinceEpoch: Int64(bitPattern: end ^ (1 << 63))),
                    label: label,
                    closedAt: Timestamp(nanosecondsSinceEpoch: Int64(bitPattern: closedAt ^ (1 << 63)))))
            }
            return result
        }
    }

    /// Whether the period starting at `start` is closed.
    public func isClosed(periodStart start: Timestamp) throws(StoreError) -> Bool {
        var key: [UInt8] = []
        key.appendOrdered(start.nanosecondsSinceEpoch)
        return try readStore("read closed periods") { transaction in
            try transaction.get(closedPeriods, key: key) != nil
        }
    }

    // MARK: Usage of a whole period

    /// Calls `body` for every aggregate of the period starting at `periodStart`, by customer, then
    /// meter and group, in one read transaction.
    public func forEachUsage(periodStart: Timestamp,
                             _ body: (_ customer: String, _ record: UsageRecord) throws -> Void) throws(StoreError) {
        try readStore("read usage") { transaction in
            try UsageLogReader.merged(in: transaction, usage: usage, log: usageLog, prefix: []) { key, value in
                guard let start = UsageKey.periodStart(in: key), start == periodStart else { return }
                guard let meter = UsageKey.meter(in: key), let state = AggregateState(decoding: value) else {
                    throw StoreError(.incompatible, "a usage record is damaged")
                }
                let customer = String(decoding: UnsafeRawBufferPointer(rebasing: key[1..<(1 + Int(key[0]))]), as: UTF8.self)
                try body(customer, UsageRecord(meter: meter, group: state.group, quantity: state.quantity, eventCount: state.eventCount))
            }
        }
    }

    func writeStore<T>(_ what: String, _ body: (borrowing WriteTransaction) throws -> T) throws(StoreError) -> T {
        do {
            return try environment.write(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.unavailable, "cannot \(what) in the store at '\(path)': \(error)")
        }
    }
}

extension TallyStore {
    /// Calls `body` with every stored event in commit order (sequence from 1), in one read
    /// transaction, until it returns false. Events are decoded one at a time: memory stays flat.
    public func forEachEvent(startingAt sequence: UInt64 = 1, _ body: (StoredEvent) throws -> Bool) throws(StoreError) {
        var start: [UInt8] = []
        start.appendBigEndian(sequence)
        try readStore("read events") { transaction in
            try transaction.withCursor(events) { cursor in
                try cursor.forEach(startingAt: start) { key, value in
                    let sequence = key.loadBigEndianUInt64(at: 0)
                    guard let event = EventCodec.decode(value, sequence: sequence) else {
                        throw StoreError(.incompatible, "event \(sequence) in the store at '\(path)' is damaged")
                    }
                    return try body(event)
                }
            }
        }
    }
}
