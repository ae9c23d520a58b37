public import Credits
public import Metering
import Rating
public import Storage
public import TallyConfiguration

/// A grant request refused: a stable code and what to do.
public struct CreditError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `invalid_amount`, `invalid_field`, `no_plan`, `unknown_grant`, `idempotency_conflict`.
    public var code: String
    public var message: String
    public var field: String?

    public init(_ code: String, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { message }
}

/// Granting, listing and the ledger of prepaid credits: the rules `tally credits` and the HTTP
/// routes share.
public struct CreditBook: Sendable {
    public let config: TallyConfig
    public let store: TallyStore

    public init(config: TallyConfig, store: TallyStore) {
        self.config = config
        self.store = store
    }

    /// The grant a request asks for, checked: an amount above 0 with no more decimals than the
    /// currency has, in the customer's current plan currency; `expires` after `effective`.
    public func grant(customer: String, amount text: String, priority: Int = 0, effective: Timestamp?, expires: Timestamp?,
                      id: String?, reason: String?, now: Timestamp = .now()) throws(CreditError) -> CreditGrant {
        guard let amount = ExactDecimal(text.trimmingSpaces()) else {
            throw CreditError("invalid_amount", "amount \"\(text)\" is not a decimal number; write it like 100 or 25.50", field: "amount")
        }
        guard amount > .zero else { throw CreditError("invalid_amount", "amount must be above 0, not \(amount)", field: "amount") }
        let resolver: PlanResolver
        do {
            resolver = try PlanResolver(config: config, store: store, customer: customer)
        } catch {
            throw CreditError("unavailable", error.message)
        }
        let period = config.billing.period.interval(containing: now)
        guard let plan = resolver.plan(for: customer, in: period) else {
            throw CreditError("no_plan", "\(customer) has no plan this period, so credits have no currency: assign one (tally customers set-plan) or set default_plan")
        }
        let minor = Currency.named(plan.currency)?.minorUnits ?? 2
        guard amount.fractionalDigitCount <= minor, amount < EventLineParser.valueLimit else {
            throw CreditError("invalid_amount", "amount \(amount) has more decimals than \(plan.currency) (\(minor)) or is 10^18 or more", field: "amount")
        }
        guard (-1_000_000...1_000_000).contains(priority) else {
            throw CreditError("invalid_field", "priority must be a whole number from -1000000 to 1000000", field: "priority")
        }
        let effectiveAt = effective ?? now
        if let expires, expires <= effectiveAt {
            throw CreditError("invalid_field", "expires_at (\(expires.rfc3339)) must be after effective_at (\(effectiveAt.rfc3339))", field: "expires_at")
        }
        let grantID = id ?? Self.newID()
        guard (1...EventLineParser.maxIdentifierBytes).contains(grantID.utf8.count),
              !grantID.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { throw CreditError("invalid_field", "id must be 1 to \(EventLineParser.maxIdentifierBytes) bytes without control characters", field: "id") }
        if let reason, reason.utf8.count > 1024 {
            throw CreditError("invalid_field", "reason has \(reason.utf8.count) bytes; at most 1024", field: "reason")
        }
        return CreditGrant(id: grantID, customer: customer, amount: amount, currency: plan.currency, priority: priority,
                           effectiveAt: effectiveAt, expiresAt: expires, reason: reason, grantedAt: now)
    }

    /// Records a checked grant: the same id with the same content again changes nothing (`false`);
    /// with other content it is an `idempotency_conflict`.
    public func record(_ grant: CreditGrant, comparingEffectiveAt: Bool) throws -> (grant: CreditGrant, created: Bool) {
        switch try store.grantCredits(grant, comparingEffectiveAt: comparingEffectiveAt) {
        case .granted(let stored): return (stored, true)
        case .unchanged(let stored): return (stored, false)
        case .conflict(let stored):
            throw CreditError("idempotency_conflict",
                              "\(grant.customer) has a grant with id \"\(grant.id)\" with other content (\(stored.amount) \(stored.currency)): use another id")
        }
    }

    /// What a grant has left: its amount less every period's applications (as of now for the open one).
    public func remaining(of grant: CreditGrant, applications: [CreditApplication], current: CreditPosition, period: PeriodInterval) -> ExactDecimal {
        var used = current.byGrant[grant.id] ?? .zero
        for application in applications where application.grant == grant.id && application.periodStart != period.start {
            used = (try? used.adding(application.amount)) ?? used
        }
        let left = (try? grant.amount.subtracting(used)) ?? grant.amount
        return left.isNegative ? .zero : left
    }

    /// `active`, `scheduled` (not yet effective), `expired`, `voided` or `depleted` (nothing left).
    public static func status(of grant: CreditGrant, remaining: ExactDecimal, now: Timestamp) -> String {
        if let voided = grant.voidedAt, voided <= now { return "voided" }
        if let expires = grant.expiresAt, expires <= now { return "expired" }
        if grant.effectiveAt > now { return "scheduled" }
        return remaining.isZero ? "depleted" : "active"
    }

    /// The customer's credits now: each grant with what is left, and the position in the current period.
    public func summary(customer: String, now: Timestamp = .now()) throws -> CreditSummary {
        let period = config.billing.period.interval(containing: now)
        let estimate = try Estimator(config: config, resolver: try PlanResolver(config: config, store: store, customer: customer))
            .estimate(customer: customer, store: store, at: now)
        let grants = try store.creditGrants(customer: customer).sorted(by: CreditGrant.burnOrder)
        let applications = try store.creditApplications(customer: customer)
        let rows = grants.map { grant in
            let left = remaining(of: grant, applications: applications, current: estimate.credits, period: period)
            return CreditSummary.Row(grant: grant, remaining: left, status: Self.status(of: grant, remaining: left, now: now))
        }
        return CreditSummary(customer: customer, currency: estimate.currency?.code, period: period, position: estimate.credits,
                             amountDue: estimate.amountDue, grants: rows, applications: applications, now: now)
    }

    /// The customer's summary and its ledger's entries (`tally credits ledger`, `GET …/credits/ledger`).
    public func ledger(customer: String, now: Timestamp = .now()) throws -> (summary: CreditSummary, entries: [CreditFormat.Entry]) {
        let summary = try summary(customer: customer, now: now)
        let entries = CreditFormat.entries(summary, periods: { config.billing.period.interval(containing: $0) },
                                           isFinal: { (try? store.isClosed(periodStart: $0.start)) ?? false })
        return (summary, entries)
    }

    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = String(generator.next(), radix: 16)
        return "crd_" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A customer's grants and the current period's position: `tally credits list`, the credits routes.
public struct CreditSummary: Sendable {
    public struct Row: Sendable {
        public var grant: CreditGrant
        public var remaining: ExactDecimal
        public var status: String
    }

    public var customer: String
    public var currency: String?
    public var period: PeriodInterval
    public var position: CreditPosition
    public var amountDue: ExactDecimal
    public var grants: [Row]
    public var applications: [CreditApplication]
    public var now: Timestamp
}
