import Glibc

/// One blocking connection to Tally's ingest socket (a Unix stream socket).
///
/// The low-level piece under ``LineSender``. One thread may send while another receives; each
/// direction must be used by one thread at a time, and ``close()`` only when neither is in use.
///
/// ```swift
/// let connection = try IngestConnection.connect(path: "tally.sock")
/// try connection.sendAll(Array(#"{"id":"e1","customer":"c","meter":"api_calls"}"#.utf8) + [0x0A])
/// let response = try connection.readResponse()   // IngestResponse.accepted
/// ```
public final class IngestConnection: @unchecked Sendable {
    /// The socket path this connection was made to.
    public let path: String
    /// The socket's file descriptor (-1 once closed).
    public private(set) var fileDescriptor: Int32

    /// Buffered bytes for ``readLine(maxBytes:)``.
    private var readBuffer: [UInt8] = []
    private var readStart = 0

    private init(path: String, fileDescriptor: Int32) {
        self.path = path
        self.fileDescriptor = fileDescriptor
    }

    deinit {
        if fileDescriptor >= 0 { Glibc.close(fileDescriptor) }
    }

    /// Connects to the Unix stream socket at `path`.
    /// - Throws: ``ClientError/Code/connectFailed`` naming the path when nothing listens there;
    ///   ``ClientError/Code/invalidArgument`` when the path does not fit in a socket address.
    public static func connect(path: String) throws(ClientError) -> IngestConnection {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !pathBytes.isEmpty, pathBytes.count < capacity, !pathBytes.contains(0) else {
            throw ClientError(
                code: .invalidArgument,
                message: "the socket path \"\(path)\" is \(pathBytes.isEmpty ? "empty" : "unusable"): a Unix "
                    + "socket path must be 1 to \(capacity - 1) bytes without NUL; use a shorter (relative) path")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }

        let fileDescriptor: Int32
        do throws(ClientError) {
            guard case .done(let value) = try syscall("socket", { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }) else {
                throw ClientError(code: .ioError, message: "socket() would block")
            }
            fileDescriptor = value
        } catch {
            throw ClientError(
                code: .connectFailed, message: "cannot create a socket to connect to \(path): \(error.message)",
                systemError: error.systemError)
        }

        let connected: Result<Void, ClientError> = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                do throws(ClientError) {
                    _ = try syscall("connect") {
                        Glibc.connect(fileDescriptor, socketAddress, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                    return .success(())
                } catch {
                    // A connect interrupted by a signal and retried reports EISCONN: it did connect.
                    if error.systemError == EISCONN { return .success(()) }
                    return .failure(error)
                }
            }
        }
        if case .failure(let error) = connected {
            Glibc.close(fileDescriptor)
            throw ClientError(
                code: .connectFailed,
                message: "cannot connect to the Tally ingest socket at \(path): "
                    + "\(errorText(error.systemError ?? 0)). Is `tally serve` running, and is this the socket "
                    + "path from its config (--socket)?",
                systemError: error.systemError)
        }
        return IngestConnection(path: path, fileDescriptor: fileDescriptor)
    }

    /// Sends every byte, looping over partial writes. Never raises SIGPIPE (uses `MSG_NOSIGNAL`).
    /// - Throws: ``ClientError/Code/ioError`` (with ``ClientError/systemError`` `EPIPE` or
    ///   `ECONNRESET` when the server closed the connection).
    public func sendAll(_ bytes: UnsafeRawBufferPointer) throws(ClientError) {
        var offset = 0
        while offset < bytes.count {
            let result = try syscall("send") {
                send(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard case .done(let written) = result else {
                throw ClientError(code: .ioError, message: "sending to \(path) timed out", systemError: EAGAIN)
            }
            offset += written
        }
    }

    /// Sends every byte of `bytes`. See ``sendAll(_:)-(UnsafeRawBufferPointer)``.
    public func sendAll(_ bytes: [UInt8]) throws(ClientError) {
        try withBytes(of: bytes) { (raw) throws(ClientError) in try sendAll(raw) }
    }

    /// Receives up to `buffer.count` bytes, blocking until some arrive.
    /// - Returns: the number of bytes received; 0 when the server closed the connection.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(ClientError) -> Int {
        let result = try syscall("recv") { recv(fileDescriptor, buffer.baseAddress!, buffer.count, 0) }
        guard case .done(let count) = result else {
            throw ClientError(code: .ioError, message: "receiving from \(path) timed out", systemError: EAGAIN)
        }
        return count
    }

    /// Reads one line (without `\n`) from the connection.
    /// - Returns: the line, or nil when the server closed the connection at a line boundary.
    /// - Throws: ``ClientError/Code/protocolViolation`` for a line over `maxBytes` or a final line cut
    ///   off by the close.
    public func readLine(maxBytes: Int = 1 << 20) throws(ClientError) -> [UInt8]? {
        var searchFrom = readStart
        while true {
            if let newline = readBuffer[searchFrom...].firstIndex(of: 0x0A) {
                let line = Array(readBuffer[readStart..<newline])
                readStart = newline + 1
                if readStart == readBuffer.count {
                    readBuffer.removeAll(keepingCapacity: true)
                    readStart = 0
                }
                return line
            }
            searchFrom = readBuffer.count
            if readBuffer.count - readStart > maxBytes {
                throw ClientError(
                    code: .protocolViolation,
                    message: "the server at \(path) sent a line longer than \(maxBytes) bytes")
            }
            if readStart > 0 {
                readBuffer.removeSubrange(0..<readStart)
                searchFrom -= readStart
                readStart = 0
            }
            let oldCount = readBuffer.count
            readBuffer.append(contentsOf: repeatElement(0, count: 64 * 1024))
            let received = try withMutableBytes(of: &readBuffer) { (raw) throws(ClientError) in
                try receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[oldCount...]))
            }
            readBuffer.removeSubrange((oldCount + received)...)
            if received == 0 {
                guard readBuffer.isEmpty else {
                    throw ClientError(
                        code: .protocolViolation,
                        message: "the server at \(path) closed the connection in the middle of a line")
                }
                return nil
            }
        }
    }

    /// Reads and parses one response line.
    /// - Returns: the response, or nil when the server closed the connection.
    public func readResponse() throws(ClientError) -> IngestResponse? {
        guard let line = try readLine() else { return nil }
        return try IngestResponse.parse(line)
    }

    /// Shuts both directions down, waking a thread blocked in send or receive; bytes already received
    /// can still be read. Safe to call more than once.
    public func shutdown() {
        if fileDescriptor >= 0 { _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_RDWR)) }
    }

    /// Shuts down the sending direction (the server sees end of input).
    public func shutdownSending() {
        if fileDescriptor >= 0 { _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_WR)) }
    }

    /// Closes the socket. Safe to call more than once.
    public func close() {
        if fileDescriptor >= 0 {
            Glibc.close(fileDescriptor)
            fileDescriptor = -1
        }
    }
}
