import Glibc
import Synchronization

/// Connections that push event lines as fast as the daemon takes them, answers read or not: the
/// hostile load of `tally bench ingest --flood` and of the fairness tests.
///
/// One thread drives every connection with non-blocking sends of a block of 1,000 lines over and
/// over. With `distinct` every pass is new events (ids `flood-CONNECTION-PASS-INDEX`), which the
/// writer stores and folds; without, every pass after the first is duplicates, and the store does
/// not grow with the flood.
///
/// ```swift
/// let flood = try Flood(path: "tally.sock", connections: 200, readsAnswers: false, meter: "api_calls")
/// flood.start()
/// // … measure a well-behaved producer …
/// let sent = flood.stop()   // bytes sent in all; every connection is closed
/// ```
public final class Flood: @unchecked Sendable {
    private let connections: [IngestConnection]
    private let readsAnswers: Bool
    /// Each connection's block, and where each of its lines holds the pass number.
    private var blocks: [[UInt8]]
    private let passOffsets: [Int]
    private let distinct: Bool
    private let stopping = Atomic<Bool>(false)
    private let sent = Atomic<Int>(0)
    private var thread: pthread_t?

    /// The digits of the pass number in a line's id.
    private static let passDigits = 10

    /// Connects `connections` sockets to `path`; their events are of `meter`, for 100 customers.
    /// - Throws: ``ClientError`` when a connection cannot be made.
    public init(path: String, connections: Int, readsAnswers: Bool, meter: String, distinct: Bool = false) throws(ClientError) {
        var blocks: [[UInt8]] = []
        var passOffsets: [Int] = []
        for connection in 0..<connections {
            var block: [UInt8] = []
            for index in 0..<1_000 {
                let prefix = distinct ? #"{"id":"flood-\#(connection)-"# : #"{"id":"flood-"#
                block += Array(prefix.utf8)
                if distinct {
                    if connection == 0 { passOffsets.append(block.count) }
                    block += Array(repeating: UInt8(ascii: "0"), count: Self.passDigits) + [UInt8(ascii: "-")]
                }
                block += Array(#"\#(index)","customer":"flood-\#(index % 100)","meter":"\#(meter)"}"#.utf8)
                block.append(0x0A)
            }
            blocks.append(block)
        }
        // Every connection's lines have the same layout after its own prefix.
        self.passOffsets = passOffsets
        self.distinct = distinct
        self.blocks = blocks
        var opened: [IngestConnection] = []
        for _ in 0..<connections {
            let connection = try IngestConnection.connect(path: path)
            let flags = fcntl(connection.fileDescriptor, F_GETFL)
            _ = fcntl(connection.fileDescriptor, F_SETFL, flags | O_NONBLOCK)
            opened.append(connection)
        }
        self.connections = opened
        self.readsAnswers = readsAnswers
    }

    /// Bytes sent so far, over every connection.
    public var bytesSent: Int { sent.load(ordering: .relaxed) }

    /// Starts pushing, on a thread of its own.
    public func start() {
        let box = Unmanaged.passRetained(self)
        var handle = pthread_t()
        let result = pthread_create(&handle, nil, { argument in
            let flood = Unmanaged<Flood>.fromOpaque(argument!).takeRetainedValue()
            flood.push()
            return nil
        }, box.toOpaque())
        if result == 0 {
            thread = handle
        } else {
            box.release()
        }
    }

    /// Stops pushing, closes every connection (unanswered lines and all) and returns the bytes sent.
    @discardableResult
    public func stop() -> Int {
        stopping.store(true, ordering: .relaxed)
        if let thread { pthread_join(thread, nil) }
        thread = nil
        for connection in connections { connection.close() }
        return bytesSent
    }

    /// Writes `pass` into the id of every line of connection `index`'s block.
    private func writePass(_ pass: Int, intoBlock index: Int) {
        // Lines of connection n start with `{"id":"flood-n-`: the offsets of connection 0, shifted.
        let shift = String(index).utf8.count - 1
        blocks[index].withUnsafeMutableBufferPointer { block in
            for (line, start) in passOffsets.enumerated() {
                var rest = pass
                var position = start + (line + 1) * shift + Self.passDigits - 1
                for _ in 0..<Self.passDigits {
                    block[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                    position -= 1
                }
            }
        }
    }

    private func push() {
        var offsets = [Int](repeating: 0, count: connections.count)
        var passes = [Int](repeating: 0, count: connections.count)
        var open = [Bool](repeating: true, count: connections.count)
        var scratch = [UInt8](repeating: 0, count: 65_536)
        while !stopping.load(ordering: .relaxed) {
            var progressed = false
            for (index, connection) in connections.enumerated() where open[index] {
                let descriptor = connection.fileDescriptor
                let count = blocks[index].withUnsafeBytes { bytes in
                    Glibc.send(descriptor, bytes.baseAddress! + offsets[index], bytes.count - offsets[index], Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
                }
                if count > 0 {
                    offsets[index] = (offsets[index] + count) % blocks[index].count
                    if offsets[index] == 0, distinct {
                        passes[index] += 1
                        writePass(passes[index], intoBlock: index)
                    }
                    sent.add(count, ordering: .relaxed)
                    progressed = true
                } else if count < 0, errno != EAGAIN, errno != EWOULDBLOCK, errno != EINTR {
                    open[index] = false  // the daemon closed it (it is stopping)
                }
                if readsAnswers {
                    while scratch.withUnsafeMutableBytes({ recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) > 0 {
                        progressed = true
                    }
                }
            }
            if !progressed {
                var waits = connections.indices.filter { open[$0] }.map {
                    pollfd(fd: connections[$0].fileDescriptor, events: Int16(POLLOUT) | (readsAnswers ? Int16(POLLIN) : 0), revents: 0)
                }
                if waits.isEmpty { return }
                _ = poll(&waits, nfds_t(waits.count), 10)
            }
        }
    }
}
