public import Credits
import LMDB
public import Metering

/// What granting credits did.
public enum GrantOutcome: Sendable, Hashable {
    /// Recorded.
    case granted(CreditGrant)
    /// A grant with this id and the same content existed: nothing changed.
    case unchanged(CreditGrant)
    /// A grant with this id exists with other content (or for another customer).
    case conflict(CreditGrant)
}

/// One period's application of one grant.
public struct CreditApplication: Sendable, Hashable {
    public var periodStart: Timestamp
    public var grant: String
    public var amount: ExactDecimal
}

extension [CreditApplication] {
    /// Per grant, what periods before `periodStart` took (summed), what that period took, and what
    /// later periods took (summed): what `CreditAllocation` needs around one period.
    public func around(periodStart: Timestamp) -> (earlier: [String: ExactDecimal], current: [String: ExactDecimal], later: [String: ExactDecimal]) {
        var earlier: [String: ExactDecimal] = [:]
        var current: [String: ExactDecimal] = [:]
        var later: [String: ExactDecimal] = [:]
        for application in self {
            if application.periodStart == periodStart {
                current[application.grant] = application.amount
            } else if application.periodStart < periodStart {
                earlier[application.grant] = (try? earlier[application.grant, default: .zero].adding(application.amount)) ?? earlier[application.grant]
            } else {
                later[application.grant] = (try? later[application.grant, default: .zero].adding(application.amount)) ?? later[application.grant]
            }
        }
        return (earlier, current, later)
    }
}

/// Credit grants and their applications in LMDB (`credit_grants`, `credit_applied`).
///
/// `credit_grants`: len u8 ‖ customer ‖ grant id → the grant (`CreditGrantCodec`).
/// `credit_applied`: len u8 ‖ customer ‖ period start (i64 ordered) ‖ grant id → the amount the
/// grant covers in that period (a 17-byte decimal), written by the group commit only. One
/// customer's rows are one prefix: the writer reads and rewrites them together.
extension TallyStore {
    /// The customer's grants, in id order.
    public func creditGrants(customer: String) throws(StoreError) -> [CreditGrant] {
        guard let creditGrants else { return [] }
        return try readStore("read credit grants") { transaction in
            try Self.grants(of: customer, in: transaction, creditGrants)
        }
    }

    /// The first grant with `id`, in customer order (ids are each customer's own).
    public func creditGrant(id: String) throws(StoreError) -> CreditGrant? {
        guard let creditGrants else { return nil }
        return try readStore("read credit grants") { transaction in try Self.grant(id: id, in: transaction, creditGrants) }
    }

    /// Every period's applications of the customer's grants, oldest period first.
    public func creditApplications(customer: String) throws(StoreError) -> [CreditApplication] {
        guard let creditApplied else { return [] }
        return try readStore("read credit applications") { transaction in
            try Self.applications(of: customer, in: transaction, creditApplied, log: creditLog)
        }
    }

    /// Every customer's grants, by customer: a batch rating run's view.
    public func allCreditGrants() throws(StoreError) -> [String: [CreditGrant]] {
        guard let creditGrants else { return [:] }
        return try readStore("read credit grants") { transaction in try Self.allGrants(in: transaction, creditGrants) }
    }

    /// Every customer's applications in the period starting at `periodStart`: customer → grant id → amount.
    public func creditApplications(periodStart: Timestamp) throws(StoreError) -> [String: [String: ExactDecimal]] {
        guard let creditApplied else { return [:] }
        return try readStore("read credit applications") { transaction in
            var found: [String: [String: ExactDecimal]] = [:]
            try UsageLogReader.merged(in: transaction, usage: creditApplied, log: creditLog, family: .creditApplied, prefix: []) { key, value in
                let length = 1 + Int(key[0])
                guard key.count >= length + 8, key.loadOrderedInt64(at: length) == periodStart.nanosecondsSinceEpoch,
                      let amount = ExactDecimal(encoded: value)
                else { return }
                let customer = String(decoding: key[1..<length], as: UTF8.self)
                found[customer, default: [:]][String(decoding: key[(length + 8)...], as: UTF8.self)] = amount
            }
            return found
        }
    }

    /// Records `grant` unless the customer has a grant with its id; the same content again is
    /// `unchanged`. Ids are the customer's own: another customer may use the same id.
    public func grantCredits(_ grant: CreditGrant, comparingEffectiveAt: Bool) throws(StoreError) -> GrantOutcome {
        guard let creditGrants else { throw StoreError(.unavailable, "this store has no credit_grants database: open it with `tally serve` once") }
        return try writeStore("grant credits") { transaction in
            if let value = try transaction.get(creditGrants, key: Self.grantKey(customer: grant.customer, id: grant.id)),
               let existing = value.withUnsafeBytes({ CreditGrantCodec.decode($0) }) {
                return existing.isSameRequest(as: grant, comparingEffectiveAt: comparingEffectiveAt) ? .unchanged(existing) : .conflict(existing)
            }
            _ = try transaction.put(creditGrants, key: Self.grantKey(customer: grant.customer, id: grant.id), value: CreditGrantCodec.encode(grant))
            try Self.bumpSettingsVersion(transaction, meta)
            return .granted(grant)
        }
    }

    /// Voids the grant `id` of `customer` (without one: the first grant with that id, in customer
    /// order) at `time`: from then on it covers nothing more. Nil when there is no such grant; a
    /// voided grant is answered as it is.
    public func voidCredits(id: String, customer: String? = nil, at time: Timestamp) throws(StoreError) -> CreditGrant? {
        guard let creditGrants else { return nil }
        return try writeStore("void credits") { transaction in
            let found: CreditGrant? = if let customer {
                try transaction.get(creditGrants, key: Self.grantKey(customer: customer, id: id)).flatMap { value in
                    value.withUnsafeBytes { CreditGrantCodec.decode($0) }
                }
            } else {
                try Self.grant(id: id, in: transaction, creditGrants)
            }
            guard var grant = found else { return nil }
            guard grant.voidedAt == nil else { return grant }
            grant.voidedAt = time
            _ = try transaction.put(creditGrants, key: Self.grantKey(customer: grant.customer, id: grant.id), value: CreditGrantCodec.encode(grant))
            try Self.bumpSettingsVersion(transaction, meta)
            return grant
        }
    }

    // MARK: Keys and reads inside a transaction

    static func grantKey(customer: String, id: String) -> [UInt8] {
        var key: [UInt8] = []
        key.appendShortString(customer)
        key.append(contentsOf: id.utf8)
        return key
    }

    static func customerPrefix(_ customer: String) -> [UInt8] {
        var key: [UInt8] = []
        key.appendShortString(customer)
        return key
    }

    static func applicationKey(customer: String, periodStart: Timestamp, grant: String) -> [UInt8] {
        var key: [UInt8] = []
        applicationKey(customer: customer, periodStart: periodStart, grant: grant, into: &key)
        return key
    }

    /// The `credit_applied` key, made in `key` (its capacity kept).
    static func applicationKey(customer: String, periodStart: Timestamp, grant: String, into key: inout [UInt8]) {
        key.removeAll(keepingCapacity: true)
        key.appendShortString(customer)
        key.appendOrdered(periodStart.nanosecondsSinceEpoch)
        key.append(contentsOf: grant.utf8)
    }

    static func grants(of customer: String, in transaction: borrowing some ReadableTransaction & ~Copyable, _ database: Database) throws -> [CreditGrant] {
        var found: [CreditGrant] = []
        try transaction.forEach(database, prefix: customerPrefix(customer)) { _, value in
            if let grant = CreditGrantCodec.decode(value) { found.append(grant) }
        }
        return found
    }

    /// The first grant with `id` in key (customer) order: a scan, for `tally credits void ID`.
    static func grant(id: String, in transaction: borrowing some ReadableTransaction & ~Copyable, _ database: Database) throws -> CreditGrant? {
        var found: CreditGrant?
        let idBytes = Array(id.utf8)
        try transaction.forEach(database, prefix: []) { key, value in
            guard found == nil, key.count == 1 + Int(key[0]) + idBytes.count, key.suffix(idBytes.count).elementsEqual(idBytes) else { return }
            found = CreditGrantCodec.decode(value)
        }
        return found
    }

    static func allGrants(in transaction: borrowing some ReadableTransaction & ~Copyable, _ database: Database) throws -> [String: [CreditGrant]] {
        var found: [String: [CreditGrant]] = [:]
        try transaction.forEach(database, prefix: []) { _, value in
            if let grant = CreditGrantCodec.decode(value) { found[grant.customer, default: []].append(grant) }
        }
        return found
    }

    /// The customer's applications: `credit_applied` overlaid with what `log` holds newer.
    static func applications(of customer: String, in transaction: borrowing some ReadableTransaction & ~Copyable, _ database: Database,
                             log: Database?) throws -> [CreditApplication] {
        let prefix = customerPrefix(customer)
        var found: [CreditApplication] = []
        try UsageLogReader.merged(in: transaction, usage: database, log: log, family: .creditApplied, prefix: prefix) { key, value in
            guard key.count >= prefix.count + 8, let amount = ExactDecimal(encoded: value) else { return }
            let start = Timestamp(nanosecondsSinceEpoch: key.loadOrderedInt64(at: prefix.count))
            found.append(CreditApplication(periodStart: start, grant: String(decoding: key[(prefix.count + 8)...], as: UTF8.self), amount: amount))
        }
        return found
    }
}

/// A grant's stored form: a version byte, then each field (strings behind their length, decimals in
/// their 17-byte form, times as i64, optional fields behind a presence byte).
enum CreditGrantCodec {
    static func encode(_ grant: CreditGrant) -> [UInt8] {
        var bytes: [UInt8] = [1]
        bytes.appendLongString(grant.id)
        bytes.appendLongString(grant.customer)
        bytes.appendDecimal(grant.amount)
        bytes.appendLongString(grant.currency)
        bytes.appendOrdered(Int64(grant.priority))
        bytes.appendOrdered(grant.effectiveAt.nanosecondsSinceEpoch)
        appendOptional(grant.expiresAt, to: &bytes)
        if let reason = grant.reason { bytes.append(1); bytes.appendLongString(reason) } else { bytes.append(0) }
        bytes.appendOrdered(grant.grantedAt.nanosecondsSinceEpoch)
        appendOptional(grant.voidedAt, to: &bytes)
        return bytes
    }

    private static func appendOptional(_ time: Timestamp?, to bytes: inout [UInt8]) {
        if let time { bytes.append(1); bytes.appendOrdered(time.nanosecondsSinceEpoch) } else { bytes.append(0) }
    }

    static func decode(_ value: UnsafeRawBufferPointer) -> CreditGrant? {
        var reader = ByteReader(bytes: value)
        guard reader.byte() == 1, let id = reader.longString(), let customer = reader.longString(), let amount = reader.decimal(),
              let currency = reader.longString(), let priority = reader.orderedInt64(), let effective = reader.orderedInt64(),
              let expires = reader.optionalOrderedInt64(), let hasReason = reader.byte()
        else { return nil }
        var reason: String?
        if hasReason == 1 {
            guard let text = reader.longString() else { return nil }
            reason = text
        }
        guard let granted = reader.orderedInt64(), let voided = reader.optionalOrderedInt64() else { return nil }
        return CreditGrant(id: id, customer: customer, amount: amount, currency: currency, priority: Int(priority),
                           effectiveAt: Timestamp(nanosecondsSinceEpoch: effective), expiresAt: expires.map(Timestamp.init(nanosecondsSinceEpoch:)),
                           reason: reason, grantedAt: Timestamp(nanosecondsSinceEpoch: granted),
                           voidedAt: voided.map(Timestamp.init(nanosecondsSinceEpoch:)))
    }
}
