public import Foundation
import Glibc

/// Real `nats-server` processes with JetStream for tests: one, or several as a JetStream cluster
/// on loopback ports, each with its own store directory. `make test` installs nats-server (apt).
public final class NATSServers: @unchecked Sendable {
    public struct Server {
        public var name: String
        public var clientPort: Int
        public var clusterPort: Int
        public var configPath: String
        public var process: Process?
    }

    public let directory: String
    public private(set) var servers: [Server]

    /// The client URLs of every server, for a connection's server list.
    public var urls: [String] { servers.map { "nats://127.0.0.1:\($0.clientPort)" } }

    /// Starts `count` servers (a cluster when more than one) and waits until each accepts connections.
    public init(count: Int) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-nats-\(UUID().uuidString.prefix(8))").path
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ports = try (0..<(2 * count)).map { _ in try Self.freePort() }
        servers = (0..<count).map { index in
            Server(name: "n\(index + 1)", clientPort: ports[2 * index], clusterPort: ports[2 * index + 1],
                   configPath: "\(directory)/n\(index + 1).conf", process: nil)
        }
        for index in servers.indices {
            let server = servers[index]
            var config = """
                server_name: \(server.name)
                listen: 127.0.0.1:\(server.clientPort)
                jetstream { store_dir: "\(directory)/\(server.name)", max_memory_store: 67108864, max_file_store: 1073741824 }

                """
            if count > 1 {
                let routes = servers.filter { $0.name != server.name }.map { "nats-route://127.0.0.1:\($0.clusterPort)" }
                config += """
                    cluster { name: tally-test, listen: 127.0.0.1:\(server.clusterPort), routes: [\(routes.joined(separator: ", "))] }

                    """
            }
            try config.write(toFile: server.configPath, atomically: true, encoding: .utf8)
        }
        for index in servers.indices { try start(index) }
    }

    /// Starts (or restarts) server `index` with its configuration and store.
    public func start(_ index: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.executable())
        process.arguments = ["-c", servers[index].configPath]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        let log = "\(directory)/\(servers[index].name).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        servers[index].process = process
        try waitUntilListening(port: servers[index].clientPort, process: process, log: log)
    }

    /// SIGKILLs server `index` (a crash: no goodbye to its peers).
    public func kill(_ index: Int) {
        guard let process = servers[index].process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        servers[index].process = nil
    }

    /// Stops every server and removes their stores.
    public func stop() {
        for index in servers.indices { kill(index) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }

    private func waitUntilListening(port: Int, process: Process, log: String) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            guard process.isRunning else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw FixtureError("nats-server exited at start: \(text.suffix(2_000))")
            }
            if Self.accepts(port: port) { return }
            usleep(20_000)
        }
        throw FixtureError("nats-server did not listen on 127.0.0.1:\(port) within 10 s")
    }

    private static func accepts(port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A TCP port nothing listens on now (bound to 0, read back, closed).
    public static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw FixtureError("no free TCP port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    public static func executable() throws -> String {
        for candidate in ["/usr/bin/nats-server", "/usr/local/bin/nats-server", "/usr/sbin/nats-server"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw FixtureError("nats-server is not installed: `make test` installs it (apt-get install nats-server)")
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Retries `body` until it returns without throwing or `seconds` pass (a cluster electing its
/// leaders answers "temporarily unavailable" for a moment).
@discardableResult
public func eventually<T>(within seconds: Double = 15, _ body: () throws -> T) throws -> T {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        do {
            return try body()
        } catch {
            if Date() > deadline { throw error }
            usleep(100_000)
        }
    }
}
