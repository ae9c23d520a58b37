import Credits
import LMDB
public import Metering

/// Decides what a customer's usage counts against its limits; the store does the bookkeeping.
///
/// Implemented above the store (the `Limits` module, which can rate amounts) and called by the
/// `StoreWriter` on its thread, inside the group commit's write transaction, so that an alert's
/// fired state commits with the usage that crossed it, or not at all.
public protocol LimitEvaluator: AnyObject {
    /// Whether any limit exists at all; when not, commits skip evaluation after the settings check.
    var hasLimits: Bool { get }
    /// Stored limits or plan assignments changed (or the writer starts): take the new ones.
    func reload(storedLimits: [UsageLimit], planAssignments: [String: [PlanAssignment]])
    /// The limits that apply to `customer` in `period`; empty skips the customer cheaply.
    func limits(for customer: String, in period: PeriodInterval) -> [UsageLimit]
    /// What `usage` (the customer's whole period so far) counts against `limit`: the period's amount,
    /// or the limited meter's quantity summed over its groups.
    func used(by limit: UsageLimit, customer: String, period: PeriodInterval, usage: [UsageRecord]) -> ExactDecimal
    /// The period's amount so far (rated as `tally estimate` rates it) and its currency; nil when
    /// the customer has no plan in the period (nothing to cover with credits).
    func amount(customer: String, period: PeriodInterval, usage: [UsageRecord]) -> (amount: ExactDecimal, currency: String)?
    /// How the customer's plan in `period` prices it row by row (nil without a plan): the credit
    /// step keeps each row's amount between commits and rates again only the rows that changed.
    /// The sum it makes is what `amount(customer:period:usage:)` returns for the same rows.
    func pricing(customer: String, period: PeriodInterval) -> (any PeriodPricing)?
}

/// One plan's prices, row by row, as `LimitEvaluator.amount(customer:period:usage:)` applies them.
public protocol PeriodPricing: AnyObject {
    /// The plan's currency (ISO 4217).
    var currency: String { get }
    /// What each priced meter costs with no row at all (flat fees, minimums), added for every
    /// priced meter the period has no row of.
    var zeroQuantityAmounts: [(meter: String, amount: ExactDecimal)] { get }
    /// Rates rows of `meter` with `group`; nil when the plan does not price the meter.
    func lineRating(meter: String, group: [GroupValue]) -> LineRating?
}

/// Rates one row's quantity: its amount, rounded as a statement line is; nil when it cannot be
/// rated (an overflow), which counts as nothing, as in a statement total.
public struct LineRating {
    public let amount: (ExactDecimal) -> ExactDecimal?

    public init(amount: @escaping (ExactDecimal) -> ExactDecimal?) {
        self.amount = amount
    }
}

/// The `disable` limit that blocks a customer, as a `blocked` answer reports it:
/// `"limit":{"id","meter","used","limit","resets_at"}`.
public struct BlockingLimit: Sendable, Hashable {
    /// The limit's id.
    public var id: String
    /// The limited meter; nil for a limit on the amount.
    public var meter: String?
    /// What the customer's period counts against the limit now.
    public var used: ExactDecimal
    /// The limit's value.
    public var limit: ExactDecimal
    /// When the period ends, and the limit with it.
    public var resetsAt: Timestamp

    public init(id: String, meter: String?, used: ExactDecimal, limit: ExactDecimal, resetsAt: Timestamp) {
        self.id = id
        self.meter = meter
        self.used = used
        self.limit = limit
        self.resetsAt = resetsAt
    }

    /// `{"id","meter","used","limit","resets_at"}`, decimals as strings.
    public var json: String {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("id"); writer.string(id)
        writer.raw(","); writer.key("meter")
        if let meter { writer.string(meter) } else { writer.raw("null") }
        writer.raw(","); writer.key("used"); writer.string(used.description)
        writer.raw(","); writer.key("limit"); writer.string(limit.description)
        writer.raw(","); writer.key("resets_at"); writer.string(resetsAt.rfc3339)
        writer.raw("}")
        return writer.output
    }
}

/// What a group commit fired and blocked, for answers (`"blocked":true`), metrics and the dispatcher.
public struct CommitSummary: Sendable {
    /// Customers past a `disable` limit after this commit, with the limit that blocks each (of
    /// several, the lowest id).
    public var blocking: [String: BlockingLimit] = [:]
    /// Alerts this commit fired (already in the store's outbox).
    public var alertsFired: [Alert] = []

    public init(blocking: [String: BlockingLimit] = [:], alertsFired: [Alert] = []) {
        self.blocking = blocking
        self.alertsFired = alertsFired
    }
}

struct TouchedCustomer: Hashable {
    var customer: String
    var periodStart: Int64
}

/// The period a touched customer's events counted in, and where the commit's `CreditChange`s
/// hold what they changed of its amount through the rows' credit lines (-1: none did). Kept
/// small: every event of every commit writes one.
struct TouchedPeriod {
    var period: PeriodInterval
    var creditChange: Int32 = -1

    init(period: PeriodInterval) {
        self.period = period
    }

    /// The index of the period's credit change, `next` when it had none (the caller appends it).
    mutating func creditChange(orNew next: Int32) -> Int32 {
        if creditChange < 0 { creditChange = next }
        return creditChange
    }

    /// Touches the period (inserts it with its default) and changes nothing.
    mutating func touch() {}
}

/// What a commit's events changed of one customer's period amount through its rows' credit lines,
/// and the lines' period.
struct CreditChange {
    /// Unretained: valid while its account is the writer's, or retired in this commit.
    unowned(unsafe) let period: PeriodCredits
    var amount: ExactDecimal
}

struct LimitCommitResult {
    var blocked: [String: BlockingLimit] = [:]
    var alerts: [Alert] = []
    var settingsVersion: UInt64?
    /// The grants the commit read after a settings change, by customer.
    var creditGrants: [String: [CreditGrant]]?
    /// Balance limits (and `credits_depleted`) the credit step found crossed, to fire with the others.
    var balanceCrossings: [LimitCrossing] = []
}

/// A limit step found crossed in a commit: fired unless its `fired` key exists.
struct LimitCrossing {
    var customer: String
    var period: PeriodInterval
    var limit: UsageLimit
    /// The alert's `percent`: the step of a usage limit, the balance's share of the grants for a balance one.
    var percent: Int
    /// The alert's `used`: the usage counted, or the balance left.
    var used: ExactDecimal
    var firedKey: [UInt8]
}

extension StoreWriter {
    /// Evaluates every touched customer's limits and records each newly crossed step: a `fired`
    /// key (so the step never fires again this period) and an alert in the outbox.
    func evaluateLimits(touched: [TouchedCustomer: TouchedPeriod], creditChanges: [CreditChange], transaction: borrowing WriteTransaction,
                        usageOf: (_ prefix: [UInt8]) throws -> [UsageRecord]) throws -> LimitCommitResult {
        guard let evaluator = limitEvaluator, !touched.isEmpty else { return LimitCommitResult() }
        var result = LimitCommitResult()
        let version = try transaction.get(store.meta, key: MetaKey.settingsVersion).map { bytes in
            bytes.withUnsafeBytes { $0.loadBigEndianUInt64(at: 0) }
        } ?? 0
        if version != knownSettingsVersion {
            var assignments: [String: [PlanAssignment]] = [:]
            try transaction.forEach(store.customers, prefix: []) { key, value in
                assignments[String(decoding: key, as: UTF8.self)] = TallyStore.decodeAssignments(Array(value))
            }
            evaluator.reload(storedLimits: try TallyStore.readLimits(transaction, store.limits), planAssignments: assignments)
            result.settingsVersion = version
            if let creditGrants = store.creditGrants {
                result.creditGrants = try TallyStore.allGrants(in: transaction, creditGrants)
            }
            // Grants, plans and limits may have changed: the accounts are made again from the store.
            dropCreditAccounts()
        } else if creditAccounts.count >= Self.maximumCreditAccounts {
            dropCreditAccounts()
        }
        let grants = result.creditGrants ?? creditGrantsByCustomer
        guard !grants.isEmpty || evaluator.hasLimits else { return result }
        let now = Timestamp.now()
        var prefix: [UInt8] = []
        // Crossings are rare: find them first, then write them in a stable order.
        var crossings: [LimitCrossing] = []
        for (touchedCustomer, touchedPeriod) in touched {
            let customer = touchedCustomer.customer
            let period = touchedPeriod.period
            // Read once for both steps when the credit step had to read the rows as records.
            var records: [UsageRecord]?
            let known = grants.isEmpty ? nil
                : try applyCredits(customer: customer, period: period,
                                   change: touchedPeriod.creditChange < 0 ? nil : creditChanges[Int(touchedPeriod.creditChange)],
                                   grants: grants, evaluator: evaluator, now: now,
                                   into: &result, transaction: transaction, records: &records)
            guard evaluator.hasLimits else { continue }
            // Balance limits were judged by the credit step: only usage limits read the usage here.
            let limits: [UsageLimit]
            if let known {
                guard known.hasUsageLimits else { continue }
                limits = known.limits
            } else {
                limits = evaluator.limits(for: customer, in: period)
                guard limits.contains(where: { !$0.threshold.isBalance }) else { continue }
            }
            let usage: [UsageRecord]
            if let records {
                usage = records
            } else {
                UsageKey.prefix(customer: customer, periodStart: period.start, into: &prefix)
                usage = try usageOf(prefix)
            }
            for limit in limits where !limit.threshold.isBalance {
                let used = evaluator.used(by: limit, customer: customer, period: period, usage: usage)
                let value = limit.threshold.value
                if limit.action == .disable, used >= value, result.blocked[customer].map({ limit.id < $0.id }) ?? true {
                    result.blocked[customer] = BlockingLimit(id: limit.id, meter: limit.threshold.meter, used: used, limit: value,
                                                             resetsAt: period.end)
                }
                for step in limit.notifyAt {
                    let threshold = (try? value.multiplied(by: ExactDecimal(step)).divided(by: 100, scale: 12, rounding: .ceiling)) ?? value
                    guard used >= threshold else { break }
                    crossings.append(LimitCrossing(customer: customer, period: period, limit: limit, percent: step, used: used,
                                                   firedKey: Self.firedKey(period: period, customer: customer, limit: limit, step: step)))
                }
            }
        }
        crossings += result.balanceCrossings
        let firedAt = Timestamp.now()
        crossings.sort { ($0.customer, $0.period.start, $0.limit.id, $0.percent) < ($1.customer, $1.period.start, $1.limit.id, $1.percent) }
        var sequence = lastAlertSequence
        for crossing in crossings {
            var sequenceBytes: [UInt8] = []
            sequenceBytes.appendBigEndian(sequence + 1)
            guard try transaction.put(store.fired, key: crossing.firedKey, value: sequenceBytes, flags: .noOverwrite) == .stored else { continue }
            sequence += 1
            let alert = Alert(
                sequence: sequence, id: alertID(firedKey: crossing.firedKey),
                customer: crossing.customer, limitID: crossing.limit.id, meter: crossing.limit.threshold.meter, used: crossing.used,
                limit: crossing.limit.threshold.value, percent: crossing.percent, action: crossing.limit.action,
                periodStart: crossing.period.start, resetsAt: crossing.period.end, firedAt: firedAt)
            try transaction.put(store.alerts, key: sequenceBytes, value: alert.encode(), flags: .append)
            result.alerts.append(alert)
        }
        return result
    }

    /// A changed limit value re-arms its steps: the value is part of the key.
    static func firedKey(period: PeriodInterval, customer: String, limit: UsageLimit, step: Int) -> [UInt8] {
        var key: [UInt8] = []
        key.appendOrdered(period.start.nanosecondsSinceEpoch)
        key.appendShortString(customer)
        key.appendShortString(limit.id)
        key.append(UInt8(truncatingIfNeeded: step >> 8))
        key.append(UInt8(truncatingIfNeeded: step))
        key.appendDecimal(limit.threshold.value)
        return key
    }

    /// `alt_` and 16 hex digits of a keyed hash of the crossing's `fired` key: the same crossing
    /// always gets the same id, so a receiver can deduplicate redeliveries.
    func alertID(firedKey: [UInt8]) -> String {
        let keys = store.configuration.alertIDSeed.map { seed in
            HashKeys(first: (seed ^ 0x7461_6C6C_795F_616C, 0x6572_745F_6964_5F31), second: (seed ^ 0x5F74_616C_6C79_5F32, 0x616C_6572_7473_2121))
        } ?? store.hashKeys
        let hash = keys.hash(firedKey)
        let hex = String(hash.high, radix: 16)
        return "alt_" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
