import Credits
import Metering
import Testing

@Suite("Credit allocation")
struct CreditAllocationTests {
    static let t0 = Timestamp(nanosecondsSinceEpoch: 1_800_000_000 * Timestamp.nanosecondsPerSecond)
    static func at(_ seconds: Int64) -> Timestamp { t0.adding(nanoseconds: seconds * Timestamp.nanosecondsPerSecond) }
    static func d(_ text: String) -> ExactDecimal { ExactDecimal(text)! }

    static func grant(_ id: String, _ amount: String, priority: Int = 0, effective: Int64 = 0, expires: Int64? = nil,
                      voided: Int64? = nil) -> CreditGrant {
        CreditGrant(id: id, customer: "c", amount: d(amount), currency: "USD", priority: priority, effectiveAt: at(effective),
                    expiresAt: expires.map(at), grantedAt: at(effective), voidedAt: voided.map(at))
    }

    @Test("10.00 granted: 4.00 of usage leaves 6.00; 13.00 takes all and leaves 3.00 due")
    func burnDown() {
        let grants = [Self.grant("g", "10.00")]
        let four = CreditAllocation.allocate(amount: Self.d("4.00"), grants: grants, earlier: [:], current: [:], now: Self.at(10))
        #expect(four == ["g": Self.d("4")])
        #expect(CreditAllocation.balance(grants: grants, applied: four, now: Self.at(10)) == Self.d("6"))
        let thirteen = CreditAllocation.allocate(amount: Self.d("13.00"), grants: grants, earlier: [:], current: four, now: Self.at(20))
        #expect(thirteen == ["g": Self.d("10")])
        #expect(CreditAllocation.balance(grants: grants, applied: thirteen, now: Self.at(20)) == .zero)
        #expect(CreditAllocation.total(thirteen) == Self.d("10"))
    }

    @Test("priority first, then the earliest expiry, then the oldest; earlier periods' use comes off first")
    func order() {
        let grants = [Self.grant("late", "5", effective: 5), Self.grant("soon", "5", expires: 1_000), Self.grant("first", "5", priority: -1),
                      Self.grant("old", "5")]
        let covered = CreditAllocation.allocate(amount: Self.d("12"), grants: grants, earlier: ["first": Self.d("3")], current: [:], now: Self.at(10))
        #expect(covered == ["first": Self.d("2"), "soon": Self.d("5"), "old": Self.d("5")])
        let more = CreditAllocation.allocate(amount: Self.d("20"), grants: grants, earlier: ["first": Self.d("3")], current: covered, now: Self.at(10))
        #expect(more == ["first": Self.d("2"), "soon": Self.d("5"), "old": Self.d("5"), "late": Self.d("5")])
    }

    @Test("a grant that expires or is voided keeps what it covered and covers nothing more; not yet effective covers nothing")
    func expiryAndVoid() {
        let grants = [Self.grant("a", "10", expires: 100), Self.grant("b", "10", priority: 1)]
        let before = CreditAllocation.allocate(amount: Self.d("6"), grants: grants, earlier: [:], current: [:], now: Self.at(50))
        #expect(before == ["a": Self.d("6")])
        let after = CreditAllocation.allocate(amount: Self.d("9"), grants: grants, earlier: [:], current: before, now: Self.at(150))
        #expect(after == ["a": Self.d("6"), "b": Self.d("3")])
        #expect(CreditAllocation.balance(grants: grants, applied: after, now: Self.at(150)) == Self.d("7"), "the expired rest is gone")
        let voided = [Self.grant("a", "10", voided: 60), Self.grant("b", "10", priority: 1)]
        #expect(CreditAllocation.allocate(amount: Self.d("9"), grants: voided, earlier: [:], current: before, now: Self.at(70))
            == ["a": Self.d("6"), "b": Self.d("3")])
        let future = [Self.grant("f", "10", effective: 500)]
        #expect(CreditAllocation.allocate(amount: Self.d("9"), grants: future, earlier: [:], current: [:], now: Self.at(70)).isEmpty)
        #expect(CreditAllocation.balance(grants: future, applied: [:], now: Self.at(70)) == .zero)
    }

    @Test("when the amount falls the applications follow it, the last in order giving back first")
    func amountFalls() {
        let grants = [Self.grant("a", "5"), Self.grant("b", "5", priority: 1)]
        let high = CreditAllocation.allocate(amount: Self.d("8"), grants: grants, earlier: [:], current: [:], now: Self.at(1))
        #expect(high == ["a": Self.d("5"), "b": Self.d("3")])
        let low = CreditAllocation.allocate(amount: Self.d("4"), grants: grants, earlier: [:], current: high, now: Self.at(2))
        #expect(low == ["a": Self.d("4")])
        #expect(CreditAllocation.allocate(amount: .zero, grants: grants, earlier: [:], current: low, now: Self.at(3)).isEmpty)
        #expect(CreditAllocation.allocate(amount: Self.d("-2"), grants: grants, earlier: [:], current: low, now: Self.at(3)).isEmpty)
    }

    @Test("allocating again at the same moment changes nothing (a read computes what the commit stored)")
    func idempotent() {
        let grants = [Self.grant("a", "5", expires: 100), Self.grant("b", "7.125", priority: 2), Self.grant("c", "1.001", voided: 40)]
        var current: [String: ExactDecimal] = [:]
        for (step, amount) in ["1.5", "3.25", "9.999", "2", "14"].enumerated() {
            let now = Self.at(Int64(step) * 30)
            let once = CreditAllocation.allocate(amount: Self.d(amount), grants: grants, earlier: [:], current: current, now: now)
            #expect(CreditAllocation.allocate(amount: Self.d(amount), grants: grants, earlier: [:], current: once, now: now) == once)
            #expect(CreditAllocation.total(once) <= Self.d(amount))
            current = once
        }
    }

    @Test("burn order and the same-request check")
    func grantRules() {
        let a = Self.grant("a", "5", expires: 10)
        let b = Self.grant("b", "5")
        #expect(CreditGrant.burnOrder(a, b) && !CreditGrant.burnOrder(b, a))
        var again = a
        again.grantedAt = Self.at(99)
        #expect(a.isSameRequest(as: again, comparingEffectiveAt: true))
        again.effectiveAt = Self.at(5)
        #expect(a.isSameRequest(as: again, comparingEffectiveAt: false) && !a.isSameRequest(as: again, comparingEffectiveAt: true))
        again.amount = Self.d("6")
        #expect(!a.isSameRequest(as: again, comparingEffectiveAt: false))
        #expect(a.isActive(at: Self.at(9)) && !a.isActive(at: Self.at(10)))
    }
}
