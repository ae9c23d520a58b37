public import Metering

/// Prepaid credit for one customer: money in the customer's plan currency that its usage burns
/// down, as it is acknowledged, in the group commit.
///
/// A grant covers usage while it is active: from `effectiveAt`, until `expiresAt` or until it is
/// voided. Grants are used in ``CreditGrant/burnOrder``: lower `priority` first, then the earliest
/// expiry (none last), then the oldest.
public struct CreditGrant: Sendable, Hashable {
    public var id: String
    public var customer: String
    /// The money granted, above 0.
    public var amount: ExactDecimal
    /// ISO 4217 code; the grant covers only periods rated in this currency.
    public var currency: String
    /// Lower first; default 0.
    public var priority: Int
    public var effectiveAt: Timestamp
    public var expiresAt: Timestamp?
    /// Why it was given ("prepaid top-up", "goodwill"); free text.
    public var reason: String?
    /// When it was recorded.
    public var grantedAt: Timestamp
    /// When it was voided, if it was.
    public var voidedAt: Timestamp?

    public init(id: String, customer: String, amount: ExactDecimal, currency: String, priority: Int = 0, effectiveAt: Timestamp,
                expiresAt: Timestamp? = nil, reason: String? = nil, grantedAt: Timestamp, voidedAt: Timestamp? = nil) {
        self.id = id
        self.customer = customer
        self.amount = amount
        self.currency = currency
        self.priority = priority
        self.effectiveAt = effectiveAt
        self.expiresAt = expiresAt
        self.reason = reason
        self.grantedAt = grantedAt
        self.voidedAt = voidedAt
    }

    /// Whether the grant covers usage at `time`: effective, not expired, not voided.
    public func isActive(at time: Timestamp) -> Bool {
        terms.isActive(at: time)
    }

    /// What covering usage needs of the grant: its amount and when it is active.
    public var terms: CreditTerms {
        CreditTerms(amount: amount, effectiveAt: effectiveAt, expiresAt: expiresAt, voidedAt: voidedAt)
    }

    /// Whether `other` asks for the same grant (a repeated request with the same id): everything
    /// but when it was recorded; `effectiveAt` only when the repeat named one (else "now" differs).
    public func isSameRequest(as other: CreditGrant, comparingEffectiveAt: Bool) -> Bool {
        id == other.id && customer == other.customer && amount == other.amount && currency == other.currency
            && priority == other.priority && expiresAt == other.expiresAt && reason == other.reason
            && (!comparingEffectiveAt || effectiveAt == other.effectiveAt)
    }

    /// The order grants are used in: priority, then the earliest expiry (none last), then the oldest, then id.
    public static func burnOrder(_ a: CreditGrant, _ b: CreditGrant) -> Bool {
        if a.priority != b.priority { return a.priority < b.priority }
        switch (a.expiresAt, b.expiresAt) {
        case let (x?, y?) where x != y: return x < y
        case (_?, nil): return true
        case (nil, _?): return false
        default: break
        }
        if a.effectiveAt != b.effectiveAt { return a.effectiveAt < b.effectiveAt }
        return a.id < b.id
    }
}

/// A grant's amount and when it is active, without its strings: what ``CreditAllocation`` reads
/// of each grant in every group commit.
public struct CreditTerms: Sendable, Hashable {
    public var amount: ExactDecimal
    public var effectiveAt: Timestamp
    public var expiresAt: Timestamp?
    public var voidedAt: Timestamp?

    public init(amount: ExactDecimal, effectiveAt: Timestamp, expiresAt: Timestamp?, voidedAt: Timestamp?) {
        self.amount = amount
        self.effectiveAt = effectiveAt
        self.expiresAt = expiresAt
        self.voidedAt = voidedAt
    }

    /// Whether the grant covers usage at `time`: effective, not expired, not voided.
    public func isActive(at time: Timestamp) -> Bool {
        effectiveAt <= time && expiresAt.map { time < $0 } ?? true && voidedAt.map { time < $0 } ?? true
    }
}
