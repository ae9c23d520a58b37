import Logging
import Metering
import NIOCore
import Storage

/// Limits that keep one connection's memory bounded whatever its producer does.
public struct ConnectionLimits: Sendable {
    /// Lines longer than this are answered `line_too_long` and skipped up to their newline.
    public var maximumLineBytes: Int
    /// Reading pauses while this many lines wait for their answers; while other connections wait
    /// too, while this many over the connections waiting (a fair share, at least one read).
    public var maximumUnansweredLines: Int

    public init(maximumLineBytes: Int, maximumUnansweredLines: Int = 32_768) {
        self.maximumLineBytes = maximumLineBytes
        self.maximumUnansweredLines = maximumUnansweredLines
    }
}

/// One ingest connection: splits NDJSON lines, parses them, hands events to the writer and writes
/// the answers back in line order, one write per group commit.
///
/// Backpressure: the handler stops asking the socket for more bytes while too many lines are
/// unanswered or while the peer is not reading its answers (the channel is not writable), so a
/// producer can never make the daemon buffer without bound.
final class IngestConnectionHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// One read's lines in order: each is an event (answered by the writer) or already rejected.
    private enum Line {
        case event
        case rejected(IngestError)
    }

    private struct PendingRead {
        var tag: UInt64
        var lines: [Line]
        var outcomes: [RecordOutcome]?
        /// Per event: the `disable` limit its customer is past, if any.
        var blocked: [BlockingLimit?] = []
        /// Bytes charged to the buffer budget for this read, released once it is answered.
        var charge: Int
    }

    private let parser: EventLineParser
    private let writer: any IngestSubmitter
    private let budget: BufferBudget
    private let turns: ReadTurns
    private let limits: ConnectionLimits
    private let logger: Logger
    private let metrics: IngestMetrics
    private var sink: ConnectionSink?
    private var context: ChannelHandlerContext?

    private var partialLine: [UInt8] = []
    private var skippingLongLine = false
    private var pending = CircularBuffer<PendingRead>()
    private var unansweredLines = 0
    /// Bytes this connection holds charged to the budget.
    private var charged = 0
    /// Waiting for the budget to have room (one registration at a time).
    private var parkedOnBudget = false
    /// The size of the last read, which tells whether this connection is pushing (``ReadTurns``).
    private var lastReadBytes = 0
    /// Waiting for the event loop's next turn (one registration at a time).
    private var waitingForTurn = false
    private var nextTag: UInt64 = 0
    private var readHeld = false
    private var draining = false
    private var inputClosed = false
    private var closing = false
    private var lastWrite: EventLoopFuture<Void>?

    init(parser: EventLineParser, writer: any IngestSubmitter, turns: ReadTurns, limits: ConnectionLimits,
         logger: Logger, metrics: IngestMetrics) {
        self.metrics = metrics
        self.parser = parser
        self.writer = writer
        self.budget = writer.budget
        self.turns = turns
        self.limits = limits
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        channelCloseFuture = context.channel.closeFuture
        sink = ConnectionSink(handler: NIOLoopBound(self, eventLoop: context.eventLoop), eventLoop: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        sink = nil  // batches still in the writer keep their own reference
    }

    // MARK: Reading lines

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !draining else { return }
        let buffer = unwrapInboundIn(data)
        lastReadBytes = buffer.readableBytes
        turns.spend(lastReadBytes)
        let receivedAt = Timestamp.now()
        var lines: [Line] = []
        var events: [PendingEvent] = []
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            while start < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
                guard let newline = rest.firstIndex(of: UInt8(ascii: "\n")) else {
                    keepPartial(rest, lines: &lines)
                    break
                }
                let lineEnd = start + (newline - rest.startIndex)
                let piece = UnsafeRawBufferPointer(rebasing: bytes[start..<lineEnd])
                if skippingLongLine {
                    skippingLongLine = false
                } else if partialLine.isEmpty {
                    handleLine(piece, receivedAt: receivedAt, lines: &lines, events: &events)
                } else if partialLine.count + piece.count > limits.maximumLineBytes {
                    partialLine.removeAll(keepingCapacity: false)
                    lines.append(.rejected(lineTooLong()))
                } else {
                    partialLine.append(contentsOf: piece)
                    partialLine.withUnsafeBytes { handleLine($0, receivedAt: receivedAt, lines: &lines, events: &events) }
                    partialLine.removeAll(keepingCapacity: true)
                }
                start = lineEnd + 1
            }
        }
        enqueue(lines: lines, events: events, bytes: buffer.readableBytes)
    }

    /// Keeps the unterminated end of a read for the next one, or starts skipping it when too long.
    private func keepPartial(_ bytes: UnsafeRawBufferPointer, lines: inout [Line]) {
        guard !skippingLongLine else { return }
        if partialLine.count + bytes.count > limits.maximumLineBytes {
            partialLine.removeAll(keepingCapacity: false)
            skippingLongLine = true
            lines.append(.rejected(lineTooLong()))
        } else {
            partialLine.append(contentsOf: bytes)
        }
    }

    private func handleLine(_ line: UnsafeRawBufferPointer, receivedAt: Timestamp, lines: inout [Line], events: inout [PendingEvent]) {
        if EventLineParser.isBlank(line) { return }
        if line.count > limits.maximumLineBytes {
            lines.append(.rejected(lineTooLong()))
            return
        }
        switch parser.parse(line, receivedAt: receivedAt) {
        case .success(let event):
            lines.append(.event)
            events.append(PendingEvent(event: event, receivedAt: receivedAt))
        case .failure(let error):
            metrics.recordRejected(error.code)
            lines.append(.rejected(error))
        }
    }

    private func lineTooLong() -> IngestError {
        metrics.recordRejected(.lineTooLong)
        return IngestError(
            code: .lineTooLong,
            message: "the line is longer than max_line_bytes (\(limits.maximumLineBytes) bytes) and was skipped up to its newline; send smaller events or raise ingest.max_line_bytes",
            field: nil)
    }

    private func enqueue(lines: [Line], events: [PendingEvent], bytes: Int) {
        guard !lines.isEmpty else { return }
        nextTag += 1
        unansweredLines += lines.count
        let charge = bytes + lines.count * BufferBudget.perLineOverhead
        budget.charge(charge, holding: charged)
        charged += charge
        pending.append(PendingRead(tag: nextTag, lines: lines, outcomes: events.isEmpty ? [] : nil, charge: charge))
        if events.isEmpty {
            flushAnswered()
        } else if let sink {
            writer.submit(IngestBatch(events: events, sink: sink, tag: nextTag))
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The producer has sent its last byte: a final line without a newline still counts.
            if !partialLine.isEmpty, !skippingLongLine, !draining {
                var lines: [Line] = []
                var events: [PendingEvent] = []
                let receivedAt = Timestamp.now()
                let last = partialLine
                partialLine = []
                last.withUnsafeBytes { handleLine($0, receivedAt: receivedAt, lines: &lines, events: &events) }
                enqueue(lines: lines, events: events, bytes: last.count)
            }
            inputClosed = true
            closeIfDone()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Answering

    /// Called on this connection's event loop when a group commit holding its batches is durable.
    func batchesCompleted(_ batches: [IngestBatch]) {
        for batch in batches {
            if let index = pending.firstIndex(where: { $0.tag == batch.tag }) {
                pending[index].outcomes = batch.outcomes
                pending[index].blocked = batch.blocked
            }
        }
        flushAnswered()
    }

    /// Writes the answers of every read at the front whose events are durable, in one write.
    private func flushAnswered() {
        guard let context else {
            // Closed: nobody reads the answers, but the budget gets each read back once it is committed.
            while let first = pending.first, first.outcomes != nil {
                pending.removeFirst()
                charged -= first.charge
                budget.release(first.charge, remaining: charged)
            }
            return
        }
        var output: ByteBuffer?
        while let first = pending.first, let outcomes = first.outcomes {
            pending.removeFirst()
            if output == nil { output = context.channel.allocator.buffer(capacity: first.lines.count * 24) }
            var eventIndex = 0
            for line in first.lines {
                switch line {
                case .event:
                    let blocked = eventIndex < first.blocked.count ? first.blocked[eventIndex] : nil
                    ResponseEncoder.append(outcomes[eventIndex], blocked: blocked, to: &output!)
                    eventIndex += 1
                case .rejected(let error):
                    ResponseEncoder.append(error, blocked: nil, to: &output!)
                }
            }
            unansweredLines -= first.lines.count
            charged -= first.charge
            budget.release(first.charge, remaining: charged)
        }
        if let output {
            lastWrite = context.writeAndFlush(wrapOutboundOut(output))
        }
        resumeReadingIfPossible()
        closeIfDone()
    }

    /// Closes once the producer is done (or the daemon stops) and every answer has reached the socket.
    private func closeIfDone() {
        guard let context, inputClosed || draining, pending.isEmpty, !closing else { return }
        closing = true
        // close() would drop answers still queued in the channel: close after the last write completes.
        let channel = context.channel
        if let lastWrite {
            lastWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    // MARK: Backpressure

    private var shouldHoldReads: Bool {
        guard let context else { return true }
        return draining || unansweredLines >= fairShareOfLines || !context.channel.isWritable
            || heldByBudget || heldForTurn
    }

    /// The unanswered lines this connection may have before it stops reading: the maximum over the
    /// connections waiting for answers. So a flooding connection reads again only as the writer's
    /// round-robin answers it, the event loop's work per turn stays about one commit's lines, and a
    /// producer with a few lines waiting is read (and committed) at once, however many flood.
    private var fairShareOfLines: Int {
        guard unansweredLines > 0 else { return 1 }
        return max(1, limits.maximumUnansweredLines / budget.connectionsWaiting)
    }

    /// Past the budget while holding more than a fair share: wait for room (once registered).
    private var heldByBudget: Bool {
        guard !budget.mayRead(holding: charged) else { return false }
        if !parkedOnBudget, let context {
            parkedOnBudget = true
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            budget.park {
                eventLoop.execute {
                    handler.value.parkedOnBudget = false
                    handler.value.resumeReadingIfPossible()
                }
            }
        }
        return true
    }

    /// Pushing while this turn's allowance is spent: wait for the next turn (once registered).
    private var heldForTurn: Bool {
        guard !turns.mayRead(lastReadBytes: lastReadBytes) else { return false }
        if !waitingForTurn, context != nil {
            waitingForTurn = true
            turns.waitForNextTurn { [self] in
                waitingForTurn = false
                resumeReadingIfPossible()
            }
        }
        return true
    }

    func read(context: ChannelHandlerContext) {
        if shouldHoldReads {
            readHeld = true
        } else {
            context.read()
        }
    }

    private func resumeReadingIfPossible() {
        guard readHeld, !shouldHoldReads, let context else { return }
        readHeld = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReadingIfPossible()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Shutdown

    /// Completes when the connection has closed.
    var closeFuture: EventLoopFuture<Void> {
        channelCloseFuture
    }
    private var channelCloseFuture: EventLoopFuture<Void>!

    /// Closes now, answered or not: for a peer that stopped reading its answers during shutdown.
    func forceClose() {
        context?.close(promise: nil)
    }

    /// Stops reading; closes the connection once every line already read is answered.
    func drain() {
        draining = true
        partialLine.removeAll()
        closeIfDone()
    }
}

/// Hands a commit's outcomes from the writer thread to the connection's event loop.
final class ConnectionSink: IngestBatchSink {
    private let handler: NIOLoopBound<IngestConnectionHandler>
    private let eventLoop: any EventLoop

    init(handler: NIOLoopBound<IngestConnectionHandler>, eventLoop: any EventLoop) {
        self.handler = handler
        self.eventLoop = eventLoop
    }

    func batchesCompleted(_ batches: [IngestBatch]) {
        let handler = self.handler
        eventLoop.execute { handler.value.batchesCompleted(batches) }
    }
}
