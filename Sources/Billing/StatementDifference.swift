public import Metering
public import Rating
public import Storage

/// How a re-rated statement differs from the original one of the same customer and period
/// (`tally rerate`). Pure: it only compares the two statements.
///
/// Lines are matched by meter and group (the n-th line of a meter and group on one side with the
/// n-th on the other); a line on one side only counts as quantity 0 and amount 0 on the other.
/// Amounts are the statements' rounded amounts; every difference is re-rated minus original.
public struct StatementDifference: Sendable {
    /// One line of either statement with its values on both sides.
    public struct Line: Sendable {
        public var meter: String
        public var group: [GroupValue]
        /// The original statement's quantity; 0 when the line is only in the re-rated one.
        public var originalQuantity: ExactDecimal
        /// The re-rated statement's quantity; 0 when the line is only in the original one.
        public var quantity: ExactDecimal
        /// The original statement's rounded amount; 0 when the line is only in the re-rated one.
        public var originalAmount: ExactDecimal
        /// The re-rated statement's rounded amount; 0 when the line is only in the original one.
        public var amount: ExactDecimal
        /// `amount − originalAmount`.
        public var difference: ExactDecimal
        /// Whether the original statement has the line.
        public var inOriginal: Bool
        /// Whether the re-rated statement has the line.
        public var inRerated: Bool

        /// Whether the line is on one side only, or its quantity or amount changed.
        public var isChanged: Bool {
            !inOriginal || !inRerated || quantity != originalQuantity || difference != 0
        }
    }

    /// The original statement.
    public var original: Statement
    /// The re-rated statement.
    public var rerated: Statement
    /// The re-rated statement's lines in order, then the lines only in the original one, in theirs.
    public var lines: [Line]
    /// `total − originalTotal`.
    public var difference: ExactDecimal

    public var customer: String { rerated.customer }
    public var period: PeriodInterval { rerated.period }
    /// The original statement's currency.
    public var originalCurrency: Currency? { original.currency }
    /// The re-rated statement's currency, else the original's: the currency of ``total`` and ``difference``.
    public var currency: Currency? { rerated.currency ?? original.currency }
    /// The original statement's total (rounded lines).
    public var originalTotal: ExactDecimal { original.total }
    /// The re-rated statement's total (rounded lines).
    public var total: ExactDecimal { rerated.total }

    /// Whether the two statements are priced in different currencies (so ``difference`` mixes them).
    public var currencyChanged: Bool {
        originalCurrency != nil && currency != nil && originalCurrency != currency
    }

    /// Whether anything billed changed: the plan, the currency, the total or any line.
    public var isChanged: Bool {
        original.plan != rerated.plan || currencyChanged || difference != 0 || lines.contains(where: \.isChanged)
    }

    /// Compares the statements of one customer and period.
    public init(original: Statement, rerated: Statement) throws(DecimalOverflow) {
        self.original = original
        self.rerated = rerated
        var unmatched: [LineKey: [Int]] = [:]
        for (index, line) in original.lines.enumerated() {
            unmatched[LineKey(line), default: []].append(index)
        }
        var matched = Set<Int>()
        var lines: [Line] = []
        for line in rerated.lines {
            let key = LineKey(line)
            if let index = unmatched[key]?.first {
                unmatched[key]!.removeFirst()
                matched.insert(index)
                let before = original.lines[index]
                lines.append(Line(meter: line.meter, group: line.group,
                                  originalQuantity: before.quantity, quantity: line.quantity,
                                  originalAmount: before.amount, amount: line.amount,
                                  difference: try line.amount.subtracting(before.amount), inOriginal: true, inRerated: true))
            } else {
                lines.append(Line(meter: line.meter, group: line.group, originalQuantity: 0, quantity: line.quantity,
                                  originalAmount: 0, amount: line.amount, difference: line.amount,
                                  inOriginal: false, inRerated: true))
            }
        }
        for (index, line) in original.lines.enumerated() where !matched.contains(index) {
            lines.append(Line(meter: line.meter, group: line.group, originalQuantity: line.quantity, quantity: 0,
                              originalAmount: line.amount, amount: 0, difference: line.amount.negated(),
                              inOriginal: true, inRerated: false))
        }
        self.lines = lines
        difference = try rerated.total.subtracting(original.total)
    }

    private struct LineKey: Hashable {
        var meter: String
        var group: [GroupValue]
        init(_ line: StatementLine) {
            meter = line.meter
            group = line.group
        }
    }
}

/// The totals of a re-rating run over many customers (`tally rerate`).
public struct RerateSummary: Sendable {
    /// The totals of one currency over every statement priced in it.
    public struct CurrencyTotal: Sendable, Hashable {
        public var currency: String
        /// The sum of the original statements' totals in this currency.
        public var original: ExactDecimal
        /// The sum of the re-rated statements' totals in this currency.
        public var rerated: ExactDecimal
        /// `rerated − original`.
        public var difference: ExactDecimal
    }

    public var period: PeriodInterval
    /// Customers compared.
    public var customers = 0
    /// Customers whose statement changed (``StatementDifference/isChanged``).
    public var changed = 0
    private var sums: [String: (original: ExactDecimal, rerated: ExactDecimal)] = [:]

    /// An empty summary of `period`.
    public init(period: PeriodInterval) {
        self.period = period
    }

    /// Counts one customer's difference: its original total in the original currency, its re-rated
    /// total in ``StatementDifference/currency`` (a statement without a currency totals 0).
    public mutating func add(_ difference: StatementDifference) throws(DecimalOverflow) {
        customers += 1
        if difference.isChanged { changed += 1 }
        if let code = difference.originalCurrency?.code {
            let current = sums[code] ?? (0, 0)
            sums[code] = (try current.original.adding(difference.originalTotal), current.rerated)
        }
        if let code = difference.currency?.code {
            let current = sums[code] ?? (0, 0)
            sums[code] = (current.original, try current.rerated.adding(difference.total))
        }
    }

    /// Per currency, sorted by code.
    public func totals() throws(DecimalOverflow) -> [CurrencyTotal] {
        var result: [CurrencyTotal] = []
        for code in sums.keys.sorted() {
            let sum = sums[code]!
            result.append(CurrencyTotal(currency: code, original: sum.original, rerated: sum.rerated,
                                        difference: try sum.rerated.subtracting(sum.original)))
        }
        return result
    }
}
