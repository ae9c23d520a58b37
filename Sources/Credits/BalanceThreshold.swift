public import Metering

/// When a balance limit (`balance_below`, `balance_percent_below`) is crossed, judged the same way by
/// the group commit (which fires its alert) and by every read (which reports `blocked`).
public enum BalanceThreshold {
    /// Whether `threshold` is crossed with `balance` left of `granted` (what the active grants
    /// granted). Never without active grants: a customer with no credits has nothing to run low on.
    public static func isCrossed(_ threshold: UsageLimit.Threshold, balance: ExactDecimal, granted: ExactDecimal) -> Bool {
        guard granted > .zero else { return false }
        switch threshold {
        case .balanceBelow(let value):
            return balance < value
        case .balancePercentBelow(let percent):
            guard let left = try? balance.multiplied(by: 100), let floor = try? granted.multiplied(by: percent) else { return false }
            return left < floor
        case .amount, .quantity:
            return false
        }
    }

    /// The balance as a whole percentage of `granted` (rounded down; 0 without grants).
    public static func percent(balance: ExactDecimal, granted: ExactDecimal) -> Int {
        guard granted > .zero, let scaled = try? balance.multiplied(by: 100).divided(by: granted, scale: 0, rounding: .down) else { return 0 }
        return Int(scaled.description) ?? 0
    }

    /// What the grants active at `now` granted in all.
    public static func granted(_ grants: [CreditGrant], now: Timestamp) -> ExactDecimal {
        grants.filter { $0.isActive(at: now) }.reduce(ExactDecimal.zero) { (try? $0.adding($1.amount)) ?? $0 }
    }
}
