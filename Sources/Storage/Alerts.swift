import LMDB
public import Metering

/// A fired usage-limit alert (DESIGN §6). Its `id` is stable: the same crossing (customer, limit,
/// period, step) always has the same id, so receivers can deduplicate deliveries.
public struct Alert: Sendable, Hashable {
    /// Position in the `alerts` database, from 1, in firing order: the sinks' cursors point here.
    public var sequence: UInt64
    public var id: String
    public var customer: String
    public var limitID: String
    /// The meter of a quantity limit; nil for an amount limit.
    public var meter: String?
    /// The quantity or amount when the alert fired.
    public var used: ExactDecimal
    /// The limit's value.
    public var limit: ExactDecimal
    /// The notify step crossed, in percent of the limit (50, 80, 100…).
    public var percent: Int
    public var action: UsageLimit.Action
    public var periodStart: Timestamp
    /// When the limit resets: the end of the period.
    public var resetsAt: Timestamp
    public var firedAt: Timestamp

    public init(sequence: UInt64, id: String, customer: String, limitID: String, meter: String?, used: ExactDecimal,
                limit: ExactDecimal, percent: Int, action: UsageLimit.Action, periodStart: Timestamp,
                resetsAt: Timestamp, firedAt: Timestamp) {
        self.sequence = sequence
        self.id = id
        self.customer = customer
        self.limitID = limitID
        self.meter = meter
        self.used = used
        self.limit = limit
        self.percent = percent
        self.action = action
        self.periodStart = periodStart
        self.resetsAt = resetsAt
        self.firedAt = firedAt
    }

    /// The alert as one JSON object, numbers as decimal strings:
    /// `{"id","customer","limit_id","meter","used","limit","percent","action","period_start","resets_at","fired_at"}`.
    public var json: String {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("id"); writer.string(id)
        writer.raw(","); writer.key("customer"); writer.string(customer)
        writer.raw(","); writer.key("limit_id"); writer.string(limitID)
        writer.raw(","); writer.key("meter")
        if let meter { writer.string(meter) } else { writer.raw("null") }
        writer.raw(","); writer.key("used"); writer.string(used.description)
        writer.raw(","); writer.key("limit"); writer.string(limit.description)
        writer.raw(","); writer.key("percent"); writer.string(String(percent))
        writer.raw(","); writer.key("action"); writer.string(action.rawValue)
        writer.raw(","); writer.key("period_start"); writer.string(periodStart.rfc3339)
        writer.raw(","); writer.key("resets_at"); writer.string(resetsAt.rfc3339)
        writer.raw(","); writer.key("fired_at"); writer.string(firedAt.rfc3339)
        writer.raw("}")
        return writer.output
    }

    func encode() -> [UInt8] {
        var bytes: [UInt8] = [1]
        bytes.appendShortString(id)
        bytes.appendShortString(customer)
        bytes.appendShortString(limitID)
        bytes.appendShortString(meter ?? "")
        bytes.append(meter == nil ? 0 : 1)
        bytes.appendDecimal(used)
        bytes.appendDecimal(limit)
        bytes.appendBigEndian(UInt32(clamping: percent))
        bytes.append(action == .disable ? 1 : 0)
        bytes.appendOrdered(periodStart.nanosecondsSinceEpoch)
        bytes.appendOrdered(resetsAt.nanosecondsSinceEpoch)
        bytes.appendOrdered(firedAt.nanosecondsSinceEpoch)
        return bytes
    }

    init?(decoding bytes: UnsafeRawBufferPointer, sequence: UInt64) {
        var reader = ByteReader(bytes: bytes)
        guard reader.byte() == 1, let id = reader.shortString(), let customer = reader.shortString(),
              let limitID = reader.shortString(), let meter = reader.shortString(), let hasMeter = reader.byte(),
              let used = reader.decimal(), let limit = reader.decimal(), let percent = reader.uint32(),
              let action = reader.byte(), let periodStart = reader.orderedInt64(), let resetsAt = reader.orderedInt64(),
              let firedAt = reader.orderedInt64(), reader.isAtEnd
        else { return nil }
        self.init(sequence: sequence, id: id, customer: customer, limitID: limitID, meter: hasMeter == 1 ? meter : nil,
                  used: used, limit: limit, percent: Int(percent), action: action == 1 ? .disable : .warning,
                  periodStart: Timestamp(nanosecondsSinceEpoch: periodStart),
                  resetsAt: Timestamp(nanosecondsSinceEpoch: resetsAt), firedAt: Timestamp(nanosecondsSinceEpoch: firedAt))
    }
}

/// Fired alerts and the sinks' delivery cursors. The `alerts` database is the durable outbox: an
/// alert is written in the same transaction as the usage that fired it, and every sink (the alert
/// log, each webhook) delivers in sequence order from its own cursor, so a crash between commit and
/// delivery loses nothing.
extension TallyStore {
    /// Alerts after `sequence`, oldest first, at most `limit`: what a sink delivers next.
    public func alerts(after sequence: UInt64, limit: Int) throws(StoreError) -> [Alert] {
        var start: [UInt8] = []
        start.appendBigEndian(sequence &+ 1)
        return try readStore("read alerts") { transaction in
            var result: [Alert] = []
            try transaction.withCursor(alerts) { cursor in
                try cursor.forEach(startingAt: start) { key, value in
                    let sequence = key.loadBigEndianUInt64(at: 0)
                    guard let alert = Alert(decoding: value, sequence: sequence) else {
                        throw StoreError(.incompatible, "alert \(sequence) in the store is damaged")
                    }
                    result.append(alert)
                    return result.count < limit
                }
            }
            return result
        }
    }

    /// Alerts newest first, optionally only one customer's and only those fired at or after `since`,
    /// older than the alert numbered `before` (a cursor: sequences only grow, so a page after it
    /// stays the same while alerts fire), skipping `offset` matches and returning at most `limit`.
    public func recentAlerts(customer: String? = nil, since: Timestamp? = nil, before: UInt64? = nil, offset: Int = 0,
                             limit: Int = 100) throws(StoreError) -> [Alert] {
        if before == 0 { return [] }
        return try readStore("read alerts") { transaction in
            var result: [Alert] = []
            var skipped = 0
            var start: [UInt8] = []
            if let before { start.appendBigEndian(before - 1) }
            try transaction.withCursor(alerts) { cursor in
                let body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool = { key, value in
                    guard let alert = Alert(decoding: value, sequence: key.loadBigEndianUInt64(at: 0)) else { return true }
                    if let since, alert.firedAt < since { return false }
                    if let customer, alert.customer != customer { return true }
                    if skipped < offset {
                        skipped += 1
                        return true
                    }
                    result.append(alert)
                    return result.count < limit
                }
                if start.isEmpty {
                    try cursor.forEach(startingAt: nil, reverse: true, body)
                } else {
                    try start.withUnsafeBytes { try cursor.forEach(startingAt: $0, reverse: true, body) }
                }
            }
            return result
        }
    }

    /// The last alert sequence a sink has delivered (0 when none).
    public func deliveryCursor(sink: String) throws(StoreError) -> UInt64 {
        try readStore("read a delivery cursor") { transaction in
            try transaction.get(deliveryCursors, key: Array(sink.utf8)).map { bytes in
                bytes.withUnsafeBytes { $0.loadBigEndianUInt64(at: 0) }
            } ?? 0
        }
    }

    /// Records that `sink` has delivered every alert up to `sequence`.
    public func setDeliveryCursor(sink: String, to sequence: UInt64) throws(StoreError) {
        var value: [UInt8] = []
        value.appendBigEndian(sequence)
        try writeStore("record a delivery") { transaction in
            try transaction.put(deliveryCursors, key: Array(sink.utf8), value: value)
        }
    }

    // MARK: Stored limits

    /// Limits added with `tally limits add` (or over HTTP), sorted by id.
    public func storedLimits() throws(StoreError) -> [UsageLimit] {
        try readStore("read limits") { transaction in try Self.readLimits(transaction, limits) }
    }

    /// Adds a limit; false when a stored limit already has its id.
    @discardableResult
    public func addLimit(_ limit: UsageLimit) throws(StoreError) -> Bool {
        try writeStore("add a limit") { transaction in
            let stored = try transaction.put(limits, key: Array(limit.id.utf8), value: LimitCodec.encode(limit), flags: .noOverwrite) == .stored
            if stored {
                if case .customer(let customer) = limit.scope { try Self.indexCustomer(Array(customer.utf8), in: transaction, customerIndex) }
                try Self.bumpSettingsVersion(transaction, meta)
            }
            return stored
        }
    }

    /// Removes a stored limit; false when there is none with that id.
    @discardableResult
    public func removeLimit(id: String) throws(StoreError) -> Bool {
        try writeStore("remove a limit") { transaction in
            let removed = try transaction.delete(limits, key: Array(id.utf8))
            if removed { try Self.bumpSettingsVersion(transaction, meta) }
            return removed
        }
    }

    static func readLimits(_ transaction: borrowing some ReadableTransaction & ~Copyable, _ database: Database) throws -> [UsageLimit] {
        var result: [UsageLimit] = []
        try transaction.forEach(database, prefix: []) { key, value in
            if let limit = LimitCodec.decode(value, id: String(decoding: key, as: UTF8.self)) { result.append(limit) }
        }
        return result
    }

    /// Tells the writer that limits or plan assignments changed (it reloads them at its next commit).
    static func bumpSettingsVersion(_ transaction: borrowing WriteTransaction, _ meta: Database) throws {
        let current = try transaction.get(meta, key: MetaKey.settingsVersion).map { bytes in
            bytes.withUnsafeBytes { $0.loadBigEndianUInt64(at: 0) }
        } ?? 0
        var value: [UInt8] = []
        value.appendBigEndian(current + 1)
        try transaction.put(meta, key: MetaKey.settingsVersion, value: value)
    }
}

/// The binary form of a stored limit: `u8 scope (0 customer, 1 plan) ‖ u8 len ‖ owner ‖ u8 len ‖ meter
/// ("" for amount) ‖ 17 B value ‖ u8 action ‖ u8 count ‖ { u16 percent }`.
enum LimitCodec {
    /// Where a limit's meter goes: empty for the amount, the meter's code, or a balance kind behind a
    /// NUL (no meter code has one), so limits written before balance limits read back unchanged.
    static func target(_ threshold: UsageLimit.Threshold) -> String {
        switch threshold {
        case .amount: ""
        case .quantity(let meter, _): meter
        case .balanceBelow: "\u{0}balance_below"
        case .balancePercentBelow: "\u{0}balance_percent_below"
        }
    }

    static func threshold(target: String, value: ExactDecimal) -> UsageLimit.Threshold {
        switch target {
        case "": .amount(value)
        case "\u{0}balance_below": .balanceBelow(value)
        case "\u{0}balance_percent_below": .balancePercentBelow(value)
        default: .quantity(meter: target, value)
        }
    }

    static func encode(_ limit: UsageLimit) -> [UInt8] {
        var bytes: [UInt8] = []
        switch limit.scope {
        case .customer(let customer): bytes.append(0); bytes.appendShortString(customer)
        case .plan(let plan): bytes.append(1); bytes.appendShortString(plan)
        }
        bytes.appendShortString(Self.target(limit.threshold))
        bytes.appendDecimal(limit.threshold.value)
        bytes.append(limit.action == .disable ? 1 : 0)
        bytes.append(UInt8(clamping: limit.notifyAt.count))
        for step in limit.notifyAt.prefix(255) {
            bytes.append(UInt8(truncatingIfNeeded: step >> 8))
            bytes.append(UInt8(truncatingIfNeeded: step))
        }
        return bytes
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, id: String) -> UsageLimit? {
        var reader = ByteReader(bytes: bytes)
        guard let scopeKind = reader.byte(), let owner = reader.shortString(), let meter = reader.shortString(),
              let value = reader.decimal(), let action = reader.byte(), let count = reader.byte()
        else { return nil }
        var steps: [Int] = []
        for _ in 0..<count {
            guard let high = reader.byte(), let low = reader.byte() else { return nil }
            steps.append(Int(high) << 8 | Int(low))
        }
        guard reader.isAtEnd else { return nil }
        return UsageLimit(
            id: id, scope: scopeKind == 0 ? .customer(owner) : .plan(owner),
            threshold: Self.threshold(target: meter, value: value),
            action: action == 1 ? .disable : .warning, notifyAt: steps)
    }
}

/// Appending to the outbox outside the ingest writer.
extension TallyStore {
    /// Appends `newAlerts` to the `alerts` outbox with the next sequences, in one write transaction,
    /// and returns the sequences they got (their own `sequence` fields are ignored). For tools and
    /// tests; the ingest writer records alerts inside its group commit.
    ///
    /// ```swift
    /// let sequences = try store.recordAlerts([alert])   // e.g. [42]
    /// ```
    @discardableResult
    public func recordAlerts(_ newAlerts: [Alert]) throws(StoreError) -> [UInt64] {
        guard !newAlerts.isEmpty else { return [] }
        return try writeStore("record alerts") { transaction in
            let last = try transaction.withCursor(alerts) { cursor in
                try cursor.last().map { $0.key.loadBigEndianUInt64(at: 0) } ?? 0
            }
            var sequences: [UInt64] = []
            sequences.reserveCapacity(newAlerts.count)
            for (offset, alert) in newAlerts.enumerated() {
                let sequence = last + UInt64(offset) + 1
                var key: [UInt8] = []
                key.appendBigEndian(sequence)
                _ = try transaction.put(alerts, key: key, value: alert.encode(), flags: .append)
                sequences.append(sequence)
            }
            return sequences
        }
    }
}
