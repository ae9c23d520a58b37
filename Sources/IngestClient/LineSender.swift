import Glibc

/// What the server answered for one input line, handed to ``LineSender``'s `onResponse` in input order.
public struct LineOutcome: Sendable {
    /// The line's 0-based position in the input, blank lines included (line number − 1).
    public var index: Int
    /// The line's bytes, without the `\n`. Valid as long as you keep it; copy it (`Array(line)`) if
    /// you keep many, so the sender's buffer is not copied.
    public var line: ArraySlice<UInt8>
    /// The server's answer.
    public var response: IngestResponse
    /// Monotonic nanoseconds when the chunk holding this line was (last) handed to the socket.
    public var sentAtNanoseconds: UInt64
    /// Monotonic nanoseconds when the bytes holding the answer were received.
    public var receivedAtNanoseconds: UInt64

    /// Creates an outcome.
    public init(
        index: Int, line: ArraySlice<UInt8>, response: IngestResponse, sentAtNanoseconds: UInt64,
        receivedAtNanoseconds: UInt64
    ) {
        self.index = index
        self.line = line
        self.response = response
        self.sentAtNanoseconds = sentAtNanoseconds
        self.receivedAtNanoseconds = receivedAtNanoseconds
    }

    /// Nanoseconds from sending to the answer (the ack latency).
    public var latencyNanoseconds: UInt64 {
        receivedAtNanoseconds > sentAtNanoseconds ? receivedAtNanoseconds - sentAtNanoseconds : 0
    }
}

/// Streams NDJSON lines to Tally's ingest socket and matches every answer to its line: the engine
/// of `tally send` and `tally bench`.
///
/// The calling thread reads the input and writes big chunks; a second thread reads answers. At most
/// ``Options/windowLines`` lines are unanswered at once. When the connection drops, the sender
/// reconnects and resends every unanswered line in order (the server deduplicates, so this is
/// safe); a line answered before the drop is never resent.
///
/// ```swift
/// let sender = LineSender(socketPath: "tally.sock")
/// var input = LineReader(fileDescriptor: STDIN_FILENO)
/// let summary = try sender.run(source: &input) { outcome in
///     if outcome.response.status == .rejected { rejects.append(Array(outcome.line)) }
/// }
/// ```
public final class LineSender: Sendable {
    /// How the sender paces and retries.
    public struct Options: Sendable, Hashable {
        /// At most this many lines are unanswered (sent or buffered) at once; the input is not read
        /// further until answers come back.
        public var windowLines: Int
        /// Reconnect attempts after a drop before giving up with ``ClientError/Code/connectionLost``.
        /// Attempts are counted until an answer arrives, so a server that accepts and drops at once
        /// does not loop forever. 0 gives up at the first drop.
        public var reconnectAttempts: Int
        /// The wait before the first reconnect attempt; it doubles with every failed attempt.
        public var initialBackoff: Duration
        /// The longest wait between reconnect attempts.
        public var maxBackoff: Duration
        /// Bytes of lines per write (a chunk holds at least one line).
        public var chunkBytes: Int
        /// Bytes per read of answers.
        public var readBufferBytes: Int

        /// Creates options; the defaults suit `tally send`.
        public init(
            windowLines: Int = 32768,
            reconnectAttempts: Int = 10,
            initialBackoff: Duration = .milliseconds(50),
            maxBackoff: Duration = .seconds(2),
            chunkBytes: Int = 256 * 1024,
            readBufferBytes: Int = 256 * 1024
        ) {
            self.windowLines = windowLines
            self.reconnectAttempts = reconnectAttempts
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
            self.chunkBytes = chunkBytes
            self.readBufferBytes = readBufferBytes
        }
    }

    /// Counts for one ``LineSender/run(source:onResponse:)``.
    public struct Summary: Sendable, Hashable {
        /// Lines answered `accepted`.
        public var accepted = 0
        /// Lines answered `duplicate`.
        public var duplicate = 0
        /// Lines answered `rejected`.
        public var rejected = 0
        /// Rejected lines per error code, such as `["invalid_json": 2]`.
        public var rejectedByCode: [String: Int] = [:]
        /// Answers that carried `"blocked":true`.
        public var blocked = 0
        /// Blank input lines (spaces, tabs, `\r` only), skipped without sending.
        public var blankLines = 0
        /// Lines sent again after a reconnect because they were unanswered when the connection dropped.
        public var resentLines = 0
        /// Successful reconnects.
        public var reconnects = 0
        /// Monotonic nanoseconds from the start of the run (connecting included) to its end.
        public var elapsedNanoseconds: UInt64 = 0

        /// Creates an empty summary.
        public init() {}

        /// Every answered line: accepted + duplicate + rejected.
        public var answered: Int { accepted + duplicate + rejected }
    }

    /// The socket the sender connects to.
    public let socketPath: String
    /// How the sender paces and retries.
    public let options: Options

    /// Creates a sender for the ingest socket at `socketPath`. Connects only when run.
    public init(socketPath: String, options: Options = Options()) {
        self.socketPath = socketPath
        self.options = options
    }

    /// Sends every line of `source` and waits for all answers, calling `onResponse` on this thread
    /// for each non-blank line, in input order.
    /// - Throws: ``ClientError/Code/connectFailed`` when the first connect fails;
    ///   ``ClientError/Code/connectionLost`` when a dropped connection could not be restored
    ///   (``ClientError/unansweredLines`` says how many lines were never answered);
    ///   ``ClientError/Code/protocolViolation`` for an invalid answer; errors of `source`.
    public func run(
        source: inout some LineSource,
        onResponse: (LineOutcome) -> Void
    ) throws(ClientError) -> Summary {
        let engine = try SendEngine(path: socketPath, options: options)
        return try engine.run(source: &source, onResponse: onResponse)
    }

    /// Sends in-memory lines (each without its `\n`). See ``run(source:onResponse:)``.
    /// - Throws: also ``ClientError/Code/invalidArgument`` for a line that contains a `\n` byte.
    public func run<Lines: Sequence<ArraySlice<UInt8>>>(
        lines: Lines,
        onResponse: (LineOutcome) -> Void
    ) throws(ClientError) -> Summary {
        var source = SequenceLineSource<Lines>(iterator: lines.makeIterator())
        return try run(source: &source, onResponse: onResponse)
    }
}

/// One run of a ``LineSender``: the unanswered lines, the connection and the counts.
final class SendEngine {
    /// One buffered line: where its bytes are and when it was sent.
    struct Entry {
        var index: Int
        /// Absolute offset of the line's first byte (see `storageBase`).
        var start: Int
        var length: Int
        var sentAt: UInt64
    }

    let path: String
    let options: Options
    typealias Options = LineSender.Options

    private var connection: IngestConnection?
    private var channel: ResponseChannel
    /// A pipe the reader thread writes to when the sending thread waits for idle input.
    private let wakeReadDescriptor: Int32
    private let wakeWriteDescriptor: Int32
    private var reader: JoinableThread?

    /// Bytes of every unanswered line, each followed by `\n`.
    private var storage: [UInt8] = []
    /// Absolute offset of `storage[0]`.
    private var storageBase = 0
    /// Unanswered lines; `entries[head...]` are live.
    private var entries: [Entry] = []
    private var head = 0
    /// `entries[head..<handedEnd]` were handed to the current connection.
    private var handedEnd = 0
    /// The first entry not yet sent on the current connection.
    private var sendCursor = 0

    private var inputDone = false
    private var nextIndex = 0
    private var failedAttempts = 0
    /// Why the last connection ended, for the connectionLost message.
    private var dropReason = ""
    private var summary = LineSender.Summary()

    private var takenResponses: [IngestResponse] = []
    private var takenReceivedAt: [UInt64] = []

    init(path: String, options: Options) throws(ClientError) {
        guard options.windowLines >= 1, options.chunkBytes >= 1, options.reconnectAttempts >= 0,
            options.readBufferBytes >= 1
        else {
            throw ClientError(
                code: .invalidArgument,
                message: "LineSender options need windowLines, chunkBytes and readBufferBytes of at least 1 and "
                    + "reconnectAttempts of at least 0 (got \(options))")
        }
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            throw ClientError(
                code: .ioError, message: "cannot create the wake pipe: \(errorText(errno))", systemError: errno)
        }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFL, O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        self.path = path
        self.options = options
        wakeReadDescriptor = descriptors[0]
        wakeWriteDescriptor = descriptors[1]
        channel = ResponseChannel(wakeDescriptor: descriptors[1])
    }

    deinit {
        close(wakeReadDescriptor)
        close(wakeWriteDescriptor)
    }

    func run(source: inout some LineSource, onResponse: (LineOutcome) -> Void) throws(ClientError) -> LineSender.Summary {
        let started = monotonicNanoseconds()
        let inputDescriptor = source.readinessDescriptor
        do throws(ClientError) {
            try open(IngestConnection.connect(path: path))
            while true {
                try deliverAvailable(onResponse)
                while !inputDone && entries.count - head < options.windowLines && unsentBytes < options.chunkBytes {
                    let line = try source.nextLine(willBlock: { () throws(ClientError) in
                        try self.sendAndWait(forInput: inputDescriptor, onResponse)
                    })
                    guard let line else {
                        inputDone = true
                        break
                    }
                    try append(line)
                }
                if sendCursor < entries.count {
                    try sendChunk(onResponse)
                    continue
                }
                if inputDone && head == entries.count { break }
                try waitForAnswers(onResponse)
            }
        } catch {
            closeConnection()
            throw error
        }
        closeConnection()
        summary.elapsedNanoseconds = monotonicNanoseconds() - started
        return summary
    }

    private var unsentBytes: Int {
        guard sendCursor < entries.count else { return 0 }
        return storageBase + storage.count - entries[sendCursor].start
    }

    private func append(_ line: ArraySlice<UInt8>) throws(ClientError) {
        let index = nextIndex
        nextIndex += 1
        var blank = true
        for byte in line where byte != 0x20 && byte != 0x09 && byte != 0x0D {
            blank = false
            break
        }
        if blank {
            summary.blankLines += 1
            return
        }
        let hasNewline = line.withUnsafeBytes { raw in memchr(raw.baseAddress!, 0x0A, raw.count) != nil }
        if hasNewline {
            throw ClientError(
                code: .invalidArgument,
                message: "input line \(index + 1) contains a newline byte; pass each line without its \\n")
        }
        entries.append(Entry(index: index, start: storageBase + storage.count, length: line.count, sentAt: 0))
        storage.append(contentsOf: line)
        storage.append(0x0A)
    }

    /// Before the input may block: sends every buffered line, then (given the input's descriptor)
    /// hands over answers as they come until the input is readable.
    private func sendAndWait(forInput descriptor: Int32?, _ onResponse: (LineOutcome) -> Void) throws(ClientError) {
        while true {
            while sendCursor < entries.count {
                try sendChunk(onResponse)
            }
            try deliverAvailable(onResponse)
            if sendCursor < entries.count { continue }  // a reconnect queued lines to resend
            guard let descriptor, connection != nil, head < entries.count else { return }

            channel.lock.lock()
            let pending = !channel.responses.isEmpty || channel.ended != nil
            channel.wakeRequested = !pending
            channel.lock.unlock()
            if pending { continue }

            var descriptors = [
                pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeReadDescriptor, events: Int16(POLLIN), revents: 0),
            ]
            _ = try syscall("poll") { poll(&descriptors, 2, -1) }
            channel.lock.lock()
            channel.wakeRequested = false
            channel.lock.unlock()
            var drain = [UInt8](repeating: 0, count: 64)
            while read(wakeReadDescriptor, &drain, drain.count) > 0 {}
            if descriptors[0].revents != 0 {
                try deliverAvailable(onResponse)
                if sendCursor == entries.count { return }
            }
        }
    }

    /// Writes up to `chunkBytes` of unsent lines with one send (or recovers from a drop).
    private func sendChunk(_ onResponse: (LineOutcome) -> Void) throws(ClientError) {
        // A connection the reader saw end is recovered first, rather than written into and resent.
        channel.lock.lock()
        let ended = channel.ended != nil
        channel.lock.unlock()
        if ended { try deliverAvailable(onResponse) }
        if connection == nil { try reconnect() }
        let first = sendCursor
        let startOffset = entries[first].start
        var last = first + 1
        var endOffset = startOffset + entries[first].length + 1
        while last < entries.count {
            let lineEnd = entries[last].start + entries[last].length + 1
            if lineEnd - startOffset > options.chunkBytes { break }
            endOffset = lineEnd
            last += 1
        }
        channel.lock.lock()
        channel.linesHanded += last - first
        channel.lock.unlock()
        handedEnd = last
        let now = monotonicNanoseconds()
        for position in first..<last { entries[position].sentAt = now }
        guard let connection else { preconditionFailure("sending without a connection") }
        let lower = startOffset - storageBase
        let upper = endOffset - storageBase
        do throws(ClientError) {
            try withBytes(of: storage) { (raw) throws(ClientError) in
                try connection.sendAll(UnsafeRawBufferPointer(rebasing: raw[lower..<upper]))
            }
        } catch {
            try recover(from: error, onResponse)
            return
        }
        sendCursor = last
    }

    /// Waits until answers arrive or the reader stops, then handles them.
    private func waitForAnswers(_ onResponse: (LineOutcome) -> Void) throws(ClientError) {
        channel.lock.lock()
        while channel.responses.isEmpty && channel.ended == nil {
            channel.lock.wait()
        }
        channel.lock.unlock()
        try deliverAvailable(onResponse)
    }

    /// Hands the answers received so far to `onResponse`; recovers if the reader stopped.
    private func deliverAvailable(_ onResponse: (LineOutcome) -> Void) throws(ClientError) {
        let end = takeResponses()
        deliverTaken(onResponse)
        if let end {
            try recover(from: end, onResponse)
        }
    }

    /// Moves the published answers into `takenResponses`; returns the reader's end if it stopped.
    private func takeResponses() -> ReaderEnd? {
        channel.lock.lock()
        swap(&takenResponses, &channel.responses)
        swap(&takenReceivedAt, &channel.receivedAt)
        let end = channel.ended
        channel.lock.unlock()
        return end
    }

    private func deliverTaken(_ onResponse: (LineOutcome) -> Void) {
        let count = takenResponses.count
        guard count > 0 else { return }
        precondition(head + count <= handedEnd, "more answers than lines handed")
        for position in 0..<count {
            let response = takenResponses[position]
            switch response.status {
            case .accepted: summary.accepted += 1
            case .duplicate: summary.duplicate += 1
            case .rejected:
                summary.rejected += 1
                summary.rejectedByCode[response.errorCode ?? "", default: 0] += 1
            }
            if response.blocked { summary.blocked += 1 }
            let entry = entries[head]
            let lower = entry.start - storageBase
            onResponse(
                LineOutcome(
                    index: entry.index, line: storage[lower..<(lower + entry.length)], response: response,
                    sentAtNanoseconds: entry.sentAt, receivedAtNanoseconds: takenReceivedAt[position]))
            head += 1
        }
        takenResponses.removeAll(keepingCapacity: true)
        takenReceivedAt.removeAll(keepingCapacity: true)
        failedAttempts = 0
        compact()
    }

    /// Drops answered lines from the front of `entries` and `storage` when that is cheap enough.
    private func compact() {
        if head >= 4096 && head * 2 >= entries.count {
            entries.removeSubrange(0..<head)
            sendCursor -= head
            handedEnd -= head
            head = 0
        }
        let firstLive = head < entries.count ? entries[head].start : storageBase + storage.count
        let dead = firstLive - storageBase
        if dead >= 1 << 20 && dead * 2 >= storage.count {
            storage.removeSubrange(0..<dead)
            storageBase += dead
        }
    }

    private func recover(from failure: ClientError, _ onResponse: (LineOutcome) -> Void) throws(ClientError) {
        try recover(from: ReaderEnd.failed(failure), onResponse)
    }

    /// After a drop: stops the reader and delivers every answer it got; reconnects with backoff at
    /// once if lines are unanswered, else when the next line is sent.
    private func recover(from cause: ReaderEnd, _ onResponse: (LineOutcome) -> Void) throws(ClientError) {
        closeConnection()
        var reason = cause
        if let end = takeResponses() {
            if case .violation = end { reason = end }
            if case .failed = end, case .closed = reason { reason = end }
        }
        deliverTaken(onResponse)
        // A fresh channel that no reader uses, so the old end is handled once.
        channel = ResponseChannel(wakeDescriptor: wakeWriteDescriptor)
        switch reason {
        case .violation(let error): throw error
        case .failed(let error): dropReason = error.message
        case .closed: dropReason = "the server closed the connection"
        }
        if head < entries.count { try reconnect() }
    }

    /// Connects again (with backoff) and queues every unanswered line for resending.
    /// - Throws: ``ClientError/Code/connectionLost`` once `reconnectAttempts` attempts in a row failed.
    private func reconnect() throws(ClientError) {
        var lastError = dropReason
        while failedAttempts < options.reconnectAttempts {
            sleepNanoseconds(backoff(attempt: failedAttempts))
            failedAttempts += 1
            do throws(ClientError) {
                let connection = try IngestConnection.connect(path: path)
                summary.reconnects += 1
                summary.resentLines += handedEnd - head
                sendCursor = head
                handedEnd = head
                try open(connection)
                return
            } catch {
                if error.code != .connectFailed { throw error }
                lastError = error.message
            }
        }
        let unanswered = entries.count - head
        throw ClientError(
            code: .connectionLost,
            message: "lost the connection to the Tally ingest socket at \(path) (\(dropReason)) and "
                + "\(options.reconnectAttempts) reconnect attempt(s) failed (last: \(lastError)); "
                + "\(unanswered) line(s) stayed unanswered: they may or may not have been recorded, and "
                + "sending them again is safe",
            unansweredLines: unanswered)
    }

    private func backoff(attempt: Int) -> UInt64 {
        let initial = nanoseconds(of: options.initialBackoff)
        let maximum = nanoseconds(of: options.maxBackoff)
        var delay = initial
        for _ in 0..<min(attempt, 40) where delay < maximum {
            delay = delay > UInt64.max / 2 ? UInt64.max : delay * 2
        }
        return min(delay, maximum)
    }

    /// Starts a reader thread for a fresh connection.
    private func open(_ connection: IngestConnection) throws(ClientError) {
        let channel = ResponseChannel(wakeDescriptor: wakeWriteDescriptor)
        let bufferBytes = options.readBufferBytes
        self.connection = connection
        self.channel = channel
        reader = try JoinableThread {
            channel.readResponses(from: connection, bufferBytes: bufferBytes)
        }
    }

    /// Shuts the connection down, joins the reader and closes the socket. Answers already received
    /// stay in `channel` for ``takeResponses()``.
    private func closeConnection() {
        connection?.shutdown()
        reader?.join()
        reader = nil
        connection?.close()
        connection = nil
    }
}
