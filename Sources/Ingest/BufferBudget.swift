import Dispatch
import Metrics
import NIOConcurrencyHelpers

/// `ingest.max_buffered_bytes`: one memory budget for everything read and not yet answered, over
/// every socket connection and every HTTP request body.
///
/// A socket connection charges each read (its bytes and a fixed overhead per line) and releases it
/// once the read's answers are written. Past the budget, a connection stops reading while it holds
/// more than a quarter of its fair share (the budget over the connections holding any), so the producers with
/// the most unanswered work pause first and one that waits for its answers is never starved; it
/// resumes, in the order it paused, once the budget is below seven eighths. An HTTP request charges
/// its body as it arrives and, past the budget, waits for room, except the oldest body being read,
/// which always goes on (so bodies cannot wait for each other).
///
/// When everything is answered after a peak, the freed heap is returned to the system
/// (`malloc_trim`), so anonymous memory falls back after a flood.
public final class BufferBudget: @unchecked Sendable {
    /// The budget in bytes.
    public let limit: Int

    private struct Waiter {
        var ticket: UInt64
        var bytes: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private let lock = NIOLock()
    // Under `lock`:
    private var used = 0
    private var peak = 0
    private var holders = 0
    private var parked: [@Sendable () -> Void] = []
    private var bodies: Set<UInt64> = []
    private var nextTicket: UInt64 = 0
    private var waiters: [Waiter] = []
    private var trimScheduled = false

    private let gauge = Gauge(label: IngestMetricFamilies.bufferedBytes)
    private let pauses = Counter(label: IngestMetricFamilies.readPauses)

    /// Above this peak, falling back to nothing buffered returns the freed heap to the system.
    static let trimAfterPeakBytes = 16 << 20

    /// A fixed overhead charged per line read, for the parsed event and its answer slot.
    public static let perLineOverhead = 160

    public init(limit: Int) {
        self.limit = max(1, limit)
        gauge.record(0)
    }

    /// Bytes charged now, over every connection and request.
    public var bufferedBytes: Int { lock.withLock { used } }

    // MARK: Socket connections

    /// Charges `bytes` read by a connection that held `holding` bytes before. Never waits: the
    /// bytes are already read.
    func charge(_ bytes: Int, holding: Int) {
        guard bytes > 0 else { return }
        let total = lock.withLock {
            if holding == 0 { holders += 1 }
            used += bytes
            peak = max(peak, used)
            return used
        }
        gauge.record(total)
    }

    /// Releases `bytes` of a connection that holds `remaining` bytes after.
    func release(_ bytes: Int, remaining: Int) {
        guard bytes > 0 else { return }
        lock.lock()
        if remaining == 0 { holders -= 1 }
        used -= bytes
        finishRelease()
    }

    /// Socket connections holding any charge (reads not yet answered), at least 1.
    var connectionsWaiting: Int { lock.withLock { max(1, holders) } }

    /// Whether a connection holding `holding` bytes may read now.
    func mayRead(holding: Int) -> Bool {
        lock.withLock { used < limit || holding < limit / (4 * max(1, holders)) }
    }

    /// Calls `wake` once the budget has room (at once when it has now). For a connection that
    /// `mayRead` refused; one call per refusal.
    func park(_ wake: @escaping @Sendable () -> Void) {
        lock.lock()
        if used < limit {
            lock.unlock()
            wake()
            return
        }
        parked.append(wake)
        lock.unlock()
        pauses.increment()
    }

    // MARK: HTTP request bodies

    /// Starts reading one request body; pass the ticket to ``charge(_:body:)`` and ``endBody(_:)``.
    public func beginBody() -> UInt64 {
        lock.withLock {
            nextTicket += 1
            bodies.insert(nextTicket)
            return nextTicket
        }
    }

    /// Charges `bytes` of a request body; past the budget waits for room, unless this is the oldest
    /// body being read.
    public func charge(_ bytes: Int, body ticket: UInt64) async {
        guard bytes > 0 else { return }
        lock.lock()
        if used < limit || ticket == bodies.min() {
            used += bytes
            peak = max(peak, used)
            let total = used
            lock.unlock()
            gauge.record(total)
            return
        }
        lock.unlock()
        pauses.increment()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            waiters.append(Waiter(ticket: ticket, bytes: bytes, continuation: continuation))
            // Room may have come between the check and now.
            finishRelease()
        }
    }

    /// The body is read (or abandoned); its charges stay until ``release(_:)``.
    public func endBody(_ ticket: UInt64) {
        lock.lock()
        bodies.remove(ticket)
        finishRelease()
    }

    /// Releases `bytes` charged for a request once it is answered.
    public func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        lock.lock()
        used -= bytes
        finishRelease()
    }

    // MARK: Room

    /// With `lock` held: grants waiting bodies in order, wakes parked connections below seven
    /// eighths of the budget, schedules a trim after a peak; unlocks.
    private func finishRelease() {
        var granted: [CheckedContinuation<Void, Never>] = []
        // The oldest body goes on wherever it waits (it may have asked after younger ones): with
        // every younger body holding part of the budget, nothing else would free room for it.
        if let oldest = bodies.min(), let index = waiters.firstIndex(where: { $0.ticket == oldest }) {
            let waiter = waiters.remove(at: index)
            used += waiter.bytes
            peak = max(peak, used)
            granted.append(waiter.continuation)
        }
        while let first = waiters.first, used < limit {
            waiters.removeFirst()
            used += first.bytes
            peak = max(peak, used)
            granted.append(first.continuation)
        }
        var woken: [@Sendable () -> Void] = []
        if !parked.isEmpty, used <= limit - limit / 8, waiters.isEmpty {
            woken = parked
            parked.removeAll()
        }
        var trim = false
        if used == 0, peak >= Self.trimAfterPeakBytes, !trimScheduled {
            trimScheduled = true
            trim = true
        }
        let total = used
        lock.unlock()
        gauge.record(total)
        for continuation in granted { continuation.resume() }
        for wake in woken { wake() }
        if trim { scheduleTrim() }
    }

    /// Returns freed heap to the system a moment after everything was answered, off every event loop,
    /// and once more two seconds later: answers queued to connections that closed meanwhile (not in
    /// the budget) are freed after the first.
    private func scheduleTrim() {
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + .milliseconds(500)) { [self] in
            let idle = lock.withLock {
                trimScheduled = false
                guard used == 0 else { return false }
                peak = 0
                return true
            }
            guard idle else { return }
            Heap.trim()
            DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + .seconds(2)) { [self] in
                if lock.withLock({ used == 0 }) { Heap.trim() }
            }
        }
    }

}
