import NIOCore

/// How many bytes the connections of one event loop that are pushing hard may read in one turn of
/// the loop, so that a producer sending a few lines is read, parsed and answered within a short
/// turn however many connections flood.
///
/// A connection is *pushing* when its last read filled at least ``pushingReadBytes``: it has more
/// waiting in its socket. Each of its reads spends the allowance; once it is spent, pushing
/// connections wait (first come, first served) for the loop's next turn, which renews it. So
/// pushing connections read at most ``bytesPerTurn`` in one turn. Every other connection reads
/// whenever it has something: one line costs the loop next to nothing. A firehose alone loses
/// nothing: it reads once per turn anyway (one read per wake-up), so waiting for the next turn is
/// what it does regardless.
///
/// Bound to its event loop: every call comes from it.
final class ReadTurns {
    /// What pushing connections may read in one turn: about 2,000 lines of 130 bytes, a few
    /// milliseconds of parsing.
    static let bytesPerTurn = 256 << 10
    /// A read at least this large means the connection has more waiting.
    static let pushingReadBytes = 4096

    private let eventLoop: any EventLoop
    private var allowance = ReadTurns.bytesPerTurn
    private var waiting: [() -> Void] = []
    private var nextTurnScheduled = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Whether a connection whose last read was `lastReadBytes` may read in this turn.
    func mayRead(lastReadBytes: Int) -> Bool {
        lastReadBytes < Self.pushingReadBytes || allowance > 0
    }

    /// Counts a read of `bytes`.
    func spend(_ bytes: Int) {
        guard bytes >= Self.pushingReadBytes else { return }
        allowance -= bytes
    }

    /// Calls `resume` on the loop's next turn, when the allowance is new. For a connection that
    /// `mayRead` refused; one call per refusal.
    func waitForNextTurn(_ resume: @escaping () -> Void) {
        waiting.append(resume)
        guard !nextTurnScheduled else { return }
        nextTurnScheduled = true
        // A task runs after the loop has handled every channel that was ready in this turn.
        let turns = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute { turns.value.startTurn() }
    }

    private func startTurn() {
        nextTurnScheduled = false
        allowance = Self.bytesPerTurn
        let resumed = waiting
        waiting.removeAll(keepingCapacity: true)
        for resume in resumed { resume() }
    }
}
