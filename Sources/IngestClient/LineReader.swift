import Glibc

/// Where ``LineSender`` pulls its lines from.
public protocol LineSource {
    /// Returns the next line without its `\n`, or nil at the end of the input.
    ///
    /// Call `willBlock` before a read that may wait for more input (a pipe, a terminal), so the sender
    /// can send what it has buffered first instead of holding it back.
    mutating func nextLine(
        willBlock: () throws(ClientError) -> Void
    ) throws(ClientError) -> ArraySlice<UInt8>?

    /// A descriptor that polls readable when the next read will not block (nil by default).
    ///
    /// With one, ``LineSender`` keeps handing answers to its `onResponse` while the input is idle.
    var readinessDescriptor: Int32? { get }
}

extension LineSource {
    /// None: answers are handed over between lines.
    public var readinessDescriptor: Int32? { nil }
}

/// Reads lines from a file descriptor in big blocks.
///
/// Each line is yielded without its `\n`, every other byte kept as it is (a `\r` before the `\n`
/// stays: the server accepts `\r\n`). A final line without a newline is yielded too; empty input
/// yields nothing. The reader does not close the descriptor.
///
/// ```swift
/// var reader = LineReader(fileDescriptor: STDIN_FILENO)
/// while let line = try reader.nextLine() { … }
/// ```
public struct LineReader: LineSource {
    /// The descriptor lines are read from.
    public let fileDescriptor: Int32
    private let blockSize: Int
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    /// Where the search for the next newline resumes (bytes before it hold none).
    private var scanned = 0
    private var reachedEnd = false

    /// The descriptor lines are read from.
    public var readinessDescriptor: Int32? { fileDescriptor }

    /// Creates a reader of `fileDescriptor` that reads `blockSize` bytes at a time.
    public init(fileDescriptor: Int32, blockSize: Int = 256 * 1024) {
        self.fileDescriptor = fileDescriptor
        self.blockSize = max(1, blockSize)
        self.buffer = []
    }

    /// Returns the next line without its `\n`, or nil at the end of the input.
    /// - Throws: ``ClientError/Code/ioError`` when reading fails.
    public mutating func nextLine() throws(ClientError) -> ArraySlice<UInt8>? {
        try nextLine(willBlock: {})
    }

    /// Returns the next line, calling `willBlock` before each read of the descriptor.
    public mutating func nextLine(
        willBlock: () throws(ClientError) -> Void
    ) throws(ClientError) -> ArraySlice<UInt8>? {
        while true {
            if scanned < end {
                let found = buffer.withUnsafeBytes { raw in
                    memchr(raw.baseAddress! + scanned, 0x0A, end - scanned)
                }
                if let found {
                    let newline = buffer.withUnsafeBytes { raw in raw.baseAddress!.distance(to: UnsafeRawPointer(found)) }
                    let line = buffer[start..<newline]
                    start = newline + 1
                    scanned = start
                    return line
                }
                scanned = end
            }
            if reachedEnd {
                guard start < end else { return nil }
                let line = buffer[start..<end]
                start = end
                return line
            }
            try willBlock()
            try fill()
        }
    }

    /// Makes room for a block after the unread bytes and reads into it.
    private mutating func fill() throws(ClientError) {
        if start > 0 {
            // Move the partial line to the front.
            let count = end - start
            if count > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + start, count)
                }
            }
            scanned -= start
            end = count
            start = 0
        }
        if buffer.count - end < blockSize {
            buffer.append(contentsOf: repeatElement(0, count: max(blockSize, buffer.count) - (buffer.count - end)))
        }
        let descriptor = fileDescriptor
        let end = self.end
        let result: SyscallResult<Int>
        do throws(ClientError) {
            result = try withMutableBytes(of: &buffer) { (raw) throws(ClientError) in
                try syscall("read") { read(descriptor, raw.baseAddress! + end, raw.count - end) }
            }
        } catch {
            throw ClientError(
                code: .ioError,
                message: "reading the input (file descriptor \(descriptor)) failed: "
                    + "\(errorText(error.systemError ?? 0)); check that the input is a readable file or pipe",
                systemError: error.systemError)
        }
        switch result {
        case .done(let count):
            if count == 0 { reachedEnd = true }
            self.end += count
        case .wouldBlock:
            // A non-blocking descriptor with nothing to read: wait until it is readable.
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            _ = try syscall("poll") { poll(&poller, 1, -1) }
        }
    }
}

/// Adapts a sequence of lines (for in-memory input) to ``LineSource``.
struct SequenceLineSource<Lines: Sequence<ArraySlice<UInt8>>>: LineSource {
    var iterator: Lines.Iterator

    mutating func nextLine(
        willBlock: () throws(ClientError) -> Void
    ) throws(ClientError) -> ArraySlice<UInt8>? {
        iterator.next()
    }
}
