import Glibc

/// The order in which synthetic events name their customers (`tally bench ingest --customers-order`).
public enum CustomerOrder: String, CaseIterable, Sendable {
    /// `index % customers`: one commit touches neighbouring customers (the friendly case).
    case roundRobin = "round-robin"
    /// Every event draws its customer uniformly at random: real traffic is not round-robin.
    case uniform
    /// A few customers send most events: customer of rank k (from 0) with weight 1 / (k + 1)^1.1.
    case zipf
}

/// Draws the customer (0 ..< `customers`) of each synthetic event in the chosen order.
///
/// ```swift
/// var draw = CustomerDraw(order: .zipf, customers: 100_000, random: FastRandom(seed: 7))
/// let customer = draw.next(index: 0)   // rank 0 is the most frequent
/// ```
public struct CustomerDraw {
    /// The Zipf exponent `s` of ``CustomerOrder/zipf``.
    public static let zipfExponent = 1.1

    public let order: CustomerOrder
    public let customers: Int
    private var random: FastRandom
    /// For zipf: the cumulative weights, rank by rank, normalised to 1.
    private let cumulative: [Double]

    public init(order: CustomerOrder, customers: Int, random: FastRandom = FastRandom()) {
        precondition(customers > 0, "at least one customer")
        self.order = order
        self.customers = customers
        self.random = random
        guard order == .zipf else {
            cumulative = []
            return
        }
        var weights = [Double](repeating: 0, count: customers)
        var total = 0.0
        for rank in 0..<customers {
            total += 1 / pow(Double(rank + 1), Self.zipfExponent)
            weights[rank] = total
        }
        cumulative = weights.map { $0 / total }
    }

    /// The customer of event `index`.
    public mutating func next(index: Int) -> Int {
        switch order {
        case .roundRobin:
            return index % customers
        case .uniform:
            return Int(random.next(below: UInt64(customers)))
        case .zipf:
            // The first rank whose cumulative weight reaches a uniform draw in [0, 1).
            let draw = Double(random.next() >> 11) / Double(1 << 53)
            var low = 0
            var high = customers - 1
            while low < high {
                let middle = (low + high) / 2
                if cumulative[middle] > draw { high = middle } else { low = middle + 1 }
            }
            return low
        }
    }

    /// The meter (0 ..< `meters`) of event `index`: in turn for round-robin, at random otherwise.
    public mutating func meter(index: Int, meters: Int) -> Int {
        order == .roundRobin ? index % meters : Int(random.next(below: UInt64(meters)))
    }
}

/// Synthetic event lines for benchmarks: random UUIDv4 ids, customers `cus_N` in the chosen order,
/// meters `m0`… (the first counts, the others sum), values 1–100, one RFC 3339 time.
public enum SyntheticEvents {
    public static func lines(
        events: Int, customers: Int, meters: Int, order: CustomerOrder, time: String, random: FastRandom = FastRandom()
    ) -> [[UInt8]] {
        var random = random
        var draw = CustomerDraw(order: order, customers: customers, random: FastRandom(seed: random.next()))
        let hex = Array("0123456789abcdef".utf8)
        var lines: [[UInt8]] = []
        lines.reserveCapacity(events)
        for index in 0..<events {
            var line: [UInt8] = []
            line.reserveCapacity(140)
            line.append(contentsOf: #"{"id":""#.utf8)
            let high = random.next()
            let low = random.next()
            for nibble in 0..<32 {
                if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 { line.append(UInt8(ascii: "-")) }
                var value = Int(((nibble < 16 ? high : low) >> UInt64(60 - (nibble % 16) * 4)) & 0xF)
                if nibble == 12 { value = 4 }                     // version 4
                if nibble == 16 { value = 8 | (value & 0x3) }     // RFC 4122 variant
                line.append(hex[value])
            }
            let customer = draw.next(index: index)
            let meter = draw.meter(index: index, meters: meters)
            line.append(contentsOf: #"","customer":"cus_\#(customer)","meter":"m\#(meter)","value":\#(1 + Int(random.next() % 100)),"time":"\#(time)"}"#.utf8)
            lines.append(line)
        }
        return lines
    }
}

/// xoshiro256**: fast; seeded from the system's generator, or from a seed for a repeatable run.
/// For synthetic load only.
public struct FastRandom: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init() {
        var seed = SystemRandomNumberGenerator()
        state = (seed.next(), seed.next(), seed.next(), seed.next() | 1)
    }

    /// A generator whose sequence depends only on `seed` (expanded with SplitMix64).
    public init(seed: UInt64) {
        var mix = seed
        func splitMix() -> UInt64 {
            mix &+= 0x9E37_79B9_7F4A_7C15
            var z = mix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix() | 1)
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }

    /// A uniform value in 0 ..< `bound` (Lemire's multiply, without the rare rejection step: the
    /// bias is below 2^-32 for the bounds benchmarks use).
    public mutating func next(below bound: UInt64) -> UInt64 {
        bound.multipliedFullWidth(by: next()).high
    }
}

/// In-memory lines handed out at a fixed rate: an open-loop producer (`tally bench ingest --rate`).
///
/// Line `i` is due `i / rate` seconds after the first call; the source sleeps until a line is due
/// (after letting the sender flush what it holds), so the producer never slows down because the
/// server is slow. Measure latency from ``dueNanoseconds(of:)``, not from the send: a producer
/// that waited would hide the queueing (coordinated omission).
public struct PacedLines: LineSource {
    private let lines: [[UInt8]]
    private let indexes: [Int]
    private let intervalNanoseconds: Double
    private var position = 0
    /// Monotonic nanoseconds (``MonotonicClock``) when the first line is due.
    public let startNanoseconds: UInt64

    /// Hands out `lines[indexes[0]]`, `lines[indexes[1]]`, … at `rate` lines per second, the first
    /// at `startNanoseconds`.
    public init(lines: [[UInt8]], indexes: [Int], rate: Double, startNanoseconds: UInt64) {
        precondition(rate > 0, "the rate must be above 0")
        self.lines = lines
        self.indexes = indexes
        intervalNanoseconds = 1e9 / rate
        self.startNanoseconds = startNanoseconds
    }

    /// When the `position`-th line handed out (its `LineOutcome.index`) is due.
    public static func dueNanoseconds(of position: Int, start: UInt64, rate: Double) -> UInt64 {
        start + UInt64(Double(position) * 1e9 / rate)
    }

    public mutating func nextLine(willBlock: () throws(ClientError) -> Void) throws(ClientError) -> ArraySlice<UInt8>? {
        guard position < indexes.count else { return nil }
        let due = startNanoseconds + UInt64(Double(position) * intervalNanoseconds)
        var now = MonotonicClock.nanoseconds()
        if due > now + 100_000 {
            try willBlock()
            now = MonotonicClock.nanoseconds()
            if due > now { usleep(UInt32(min(1_000_000, (due - now) / 1_000))) }
        }
        defer { position += 1 }
        return lines[indexes[position]][...]
    }
}

/// The monotonic clock ``LineOutcome`` times are read from (`CLOCK_MONOTONIC`).
public enum MonotonicClock {
    public static func nanoseconds() -> UInt64 {
        monotonicNanoseconds()
    }
}
