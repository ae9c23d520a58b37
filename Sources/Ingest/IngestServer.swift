import Foundation
public import Logging
public import Metering
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix

/// An error starting or running the ingest server.
public struct IngestServerError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Another daemon answers on the socket path.
        public static let socketInUse = Code(rawValue: "socket_in_use")
        /// The socket path exists and is not a socket.
        public static let socketPathTaken = Code(rawValue: "socket_path_taken")
        /// Binding or preparing the socket failed.
        public static let bindFailed = Code(rawValue: "bind_failed")
    }

    public var code: Code
    public var message: String
    public var description: String { message }
}

/// The Unix-socket ingest server (DESIGN §3), built on SwiftNIO.
public final class IngestServer: Sendable {
    /// Where and how the server listens.
    public struct Settings: Sendable {
        public var socketPath: String
        public var socketMode: UInt32
        public var limits: ConnectionLimits
        /// How long shutdown waits for a connection's answers to reach a peer that is not reading.
        public var drainTimeout: TimeAmount
        /// The socket's listen backlog (`ingest.listen_backlog`): how many connects may wait to be
        /// accepted before the kernel refuses more (`EAGAIN` for a non-blocking connect).
        public var backlog: Int

        public init(socketPath: String, socketMode: UInt32, limits: ConnectionLimits, drainTimeout: TimeAmount = .seconds(10),
                    backlog: Int = 4096) {
            self.socketPath = socketPath
            self.socketMode = socketMode
            self.limits = limits
            self.drainTimeout = drainTimeout
            self.backlog = backlog
        }
    }

    private let settings: Settings
    private let parser: EventLineParser
    private let writer: any IngestSubmitter
    private let group: any EventLoopGroup
    private let logger: Logger
    private let serverChannel = NIOLockedValueBox<(any Channel)?>(nil)
    private let connections = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<IngestConnectionHandler>]>([:])
    private let turns = LoopReadTurns()

    public init(settings: Settings, parser: EventLineParser, writer: any IngestSubmitter, group: any EventLoopGroup, logger: Logger) {
        self.settings = settings
        self.parser = parser
        self.writer = writer
        self.group = group
        self.logger = logger
    }

    /// Binds the socket: replaces a stale socket file, never steals a live daemon's.
    public func start() async throws {
        try Self.prepareSocketPath(settings.socketPath, logger: logger)
        let settings = self.settings
        let parser = self.parser
        let writer = self.writer
        let logger = self.logger
        let connections = self.connections
        let turns = self.turns
        let metrics = IngestMetrics()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: Int32(clamping: settings.backlog))
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // Reads of at most 16 KiB, one per wake-up: what one connection reads before the buffer
            // budget (BufferBudget) sees it, what its pooled receive buffer keeps, and how long one
            // flooding connection holds the event loop from the others.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 16_384, maximum: 16_384))
            .childChannelOption(.maxMessagesPerRead, value: 1)
            // Answers a peer has not read yet: up to 1 MiB per connection before its reading pauses,
            // as always (clients that write a whole file before reading rely on it). Not counted in
            // ingest.max_buffered_bytes: it is bounded per connection, and freed when the peer reads
            // or goes.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = IngestConnectionHandler(
                        parser: parser, writer: writer, turns: turns.of(channel.eventLoop), limits: settings.limits,
                        logger: logger, metrics: metrics)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    let id = ObjectIdentifier(channel)
                    connections.withLockedValue { $0[id] = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
                    channel.closeFuture.whenComplete { _ in
                        _ = connections.withLockedValue { $0.removeValue(forKey: id) }
                    }
                }
            }
        // Bound under a temporary name, given its mode, then renamed into place: no client can
        // connect before the socket has its mode (a socket is connectable the moment it is bound).
        // A path too long for a temporary name next to it is bound in place and then given its mode.
        let temporary = settings.socketPath + ".\(getpid()).new"
        let bindPath = temporary.utf8.count < 100 ? temporary : settings.socketPath
        if bindPath != settings.socketPath { unlink(bindPath) }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(unixDomainSocketPath: bindPath, cleanupExistingSocketFile: false).get()
        } catch {
            throw IngestServerError(code: .bindFailed, message: "cannot listen on '\(settings.socketPath)': \(error); check that its directory exists and is writable")
        }
        guard chmod(bindPath, mode_t(settings.socketMode)) == 0 else {
            try? await channel.close()
            unlink(bindPath)
            throw IngestServerError(code: .bindFailed, message: "cannot set mode \(String(settings.socketMode, radix: 8)) on '\(settings.socketPath)': \(String(cString: strerror(errno)))")
        }
        if bindPath != settings.socketPath, rename(bindPath, settings.socketPath) != 0 {
            let reason = String(cString: strerror(errno))
            try? await channel.close()
            unlink(bindPath)
            throw IngestServerError(code: .bindFailed, message: "cannot listen on '\(settings.socketPath)': \(reason); check that its directory is writable")
        }
        serverChannel.withLockedValue { $0 = channel }
        logger.info("listening", metadata: ["socket": "\(settings.socketPath)"])
    }

    /// Stops accepting, answers every line already read, and closes every connection.
    public func shutdown() async {
        if let channel = serverChannel.withLockedValue({ $0 }) {
            try? await channel.close()
            unlink(settings.socketPath)
        }
        let open = connections.withLockedValue { $0.values.map { $0 } }
        let drainTimeout = settings.drainTimeout
        var closing: [EventLoopFuture<Void>] = []
        for handler in open {
            let promise = handler.eventLoop.makePromise(of: Void.self)
            handler.eventLoop.execute {
                handler.value.drain()
                handler.value.closeFuture.cascade(to: promise)
                // Every line read is committed by now or soon; a peer that does not read its
                // answers must not hold the shutdown forever.
                handler.eventLoop.scheduleTask(in: drainTimeout) { handler.value.forceClose() }
            }
            closing.append(promise.futureResult)
        }
        for future in closing { try? await future.get() }
        logger.info("ingest server stopped")
    }

    /// Removes a socket file left by a dead process; refuses when a daemon answers on it or the
    /// path is not a socket at all.
    static func prepareSocketPath(_ path: String, logger: Logger) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard (status.st_mode & S_IFMT) == S_IFSOCK else {
            throw IngestServerError(code: .socketPathTaken, message: "'\(path)' exists and is not a socket: remove it, or set ingest.socket (or --socket) to another path")
        }
        if isListening(path) {
            throw IngestServerError(code: .socketInUse, message: "another tally daemon is already listening on '\(path)': stop it first, or use another --socket and --store")
        }
        logger.info("replacing a stale socket file", metadata: ["socket": "\(path)"])
        unlink(path)
    }

    /// Whether something accepts connections on the Unix socket at `path`.
    static func isListening(_ path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }
}

/// One ``ReadTurns`` per event loop, made when the loop's first connection comes.
private final class LoopReadTurns: Sendable {
    private let byLoop = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<ReadTurns>]>([:])

    /// The turns of `eventLoop`; call on that loop.
    func of(_ eventLoop: any EventLoop) -> ReadTurns {
        byLoop.withLockedValue { byLoop in
            let id = ObjectIdentifier(eventLoop)
            if let turns = byLoop[id] { return turns.value }
            let turns = ReadTurns(eventLoop: eventLoop)
            byLoop[id] = NIOLoopBound(turns, eventLoop: eventLoop)
            return turns
        }
    }
}
