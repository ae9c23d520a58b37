import Foundation
import IngestClient
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs the real `tally` executable on a temporary store and socket, for integration tests.
final class DaemonHarness: @unchecked Sendable {
    static let defaultConfig = """
        store:
          path: data
        ingest:
          socket: tally.sock
          commit_max_events: 8192
          commit_max_delay: 2ms
          max_line_bytes: 65536
        billing:
          period: monthly
        meters:
          - { code: api_calls, aggregation: count }
          - { code: tokens, aggregation: sum, group_by: [model], filter: { billable: "true" } }
          - { code: storage_gb, aggregation: max }
          - { code: seats, aggregation: latest }
          - { code: low_water, aggregation: min }
          - { code: active_users, aggregation: unique_count, property: user_id }
        """

    let directory: String
    var storePath: String { directory + "/data" }
    var socketPath: String { directory + "/tally.sock" }
    var configPath: String { directory + "/tally.yaml" }
    var logPath: String { directory + "/daemon.log" }
    private(set) var process: Process?

    /// The `tally` binary built next to this test bundle.
    static var tallyBinary: String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // The test bundle may sit inside a .xctest directory on some toolchains.
        if directory.pathExtension == "xctest" { directory.deleteLastPathComponent() }
        return directory.appendingPathComponent("tally").path
    }

    init(config: String = DaemonHarness.defaultConfig) throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tally-test-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    deinit {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts `tally serve` and waits until its socket accepts connections.
    @discardableResult
    func start(extraArguments: [String] = [], waitForSocket: Bool = true, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.tallyBinary)
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.arguments = ["serve", "--config", configPath, "--store", storePath, "--socket", socketPath] + extraArguments
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = log
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        try process.run()
        self.process = process
        if waitForSocket { try waitUntilListening(process) }
        return process
    }

    func waitUntilListening(_ process: Process, timeoutSeconds: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if let connection = try? IngestConnection.connect(path: socketPath) {
                connection.close()
                return
            }
            guard process.isRunning else {
                throw HarnessError("the daemon exited with \(process.terminationStatus) before listening:\n\(log())")
            }
            usleep(20_000)
        }
        throw HarnessError("the daemon did not listen within \(timeoutSeconds)s:\n\(log())")
    }

    /// Waits until the daemon's HTTP API on `port` answers `GET /healthz` (it binds after the
    /// socket) and returns that answer's status; nil when it never answered within 30 s.
    func waitForHTTP(port: Int) -> Int? {
        for _ in 0..<1500 {
            if let health = try? httpRequest(port: port, method: "GET", path: "/healthz") { return health.status }
            usleep(20_000)
        }
        return nil
    }

    func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Sends SIGTERM and returns the exit status.
    func terminate() -> Int32 {
        guard let process else { return -1 }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Sends SIGKILL and waits for the process to die.
    func killHard() {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Runs another `tally` command and returns its status and output.
    func tally(_ arguments: [String], standardInput: Data? = nil) throws -> (status: Int32, output: String, error: String) {
        try Self.run(arguments, in: directory, standardInput: standardInput)
    }

    static func run(_ arguments: [String], in directory: String, standardInput: Data? = nil) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tallyBinary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        // Captured output goes to the system's temporary directory, never into `directory` (which may be the repository).
        let scratch = FileManager.default.temporaryDirectory.path
        let outputPath = scratch + "/tally-out-\(UUID().uuidString.prefix(8)).txt"
        let errorPath = scratch + "/tally-err-\(UUID().uuidString.prefix(8)).txt"
        defer {
            try? FileManager.default.removeItem(atPath: outputPath)
            try? FileManager.default.removeItem(atPath: errorPath)
        }
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        let inputPath = scratch + "/tally-in-\(UUID().uuidString.prefix(8)).txt"
        defer { try? FileManager.default.removeItem(atPath: inputPath) }
        if let standardInput {
            _ = FileManager.default.createFile(atPath: inputPath, contents: standardInput)
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath))
        }
        try process.run()
        process.waitUntilExit()
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let error = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return (process.terminationStatus, output, error)
    }

    /// Opens a raw connection to the daemon.
    func connect() throws -> IngestConnection {
        try IngestConnection.connect(path: socketPath)
    }

    /// Sends `text` on a new connection, half-closes, and returns every response line as a String.
    func exchange(_ text: String) throws -> [String] {
        let connection = try connect()
        defer { connection.close() }
        try connection.sendAll(Array(text.utf8))
        connection.shutdownSending()
        var lines: [String] = []
        while let line = try connection.readLine() {
            lines.append(String(decoding: line, as: UTF8.self))
        }
        return lines
    }

    /// `tally usage --json` for a customer, decoded.
    func usage(customer: String, period: String? = nil) throws -> UsageJSON {
        var arguments = ["usage", "--config", configPath, "--store", storePath, "--customer", customer, "--json"]
        if let period { arguments += ["--period", period] }
        let result = try tally(arguments)
        guard result.status == 0 else { throw HarnessError("tally usage failed: \(result.error)") }
        return try JSONDecoder().decode(UsageJSON.self, from: Data(result.output.utf8))
    }
}

struct UsageJSON: Decodable {
    struct Period: Decodable { var start: String; var end: String }
    struct MeterUsage: Decodable {
        var meter: String
        var aggregation: String
        var group: [String: String]
        var quantity: String
    }
    var customer: String
    var period: Period
    var meters: [MeterUsage]

    func quantity(_ meter: String, group: [String: String] = [:]) -> String? {
        meters.first { $0.meter == meter && $0.group == group }?.quantity
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Reads a process's resident memory in KiB from /proc.
func residentKilobytes(of pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}

func eventLine(id: String, customer: String = "cus_1", meter: String = "api_calls", value: String? = nil, extra: String = "") -> String {
    var line = #"{"id":"\#(id)","customer":"\#(customer)","meter":"\#(meter)""#
    if let value { line += #","value":\#(value)"# }
    line += extra + "}"
    return line
}

let acceptedLine = #"{"status":"accepted"}"#
let duplicateLine = #"{"status":"duplicate"}"#

/// The error code of a rejected response line, or nil.
func rejectionCode(_ line: String) -> String? {
    guard let response = try? IngestResponse.parse(line), response.status == .rejected else { return nil }
    return response.errorCode
}

extension IngestConnection {
    /// Sends what the socket takes now without blocking; 0 when its buffer is full.
    func sendSome(_ bytes: [UInt8]) throws -> Int {
        let sent = bytes.withUnsafeBytes { send(fileDescriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
        if sent >= 0 { return sent }
        if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
        throw HarnessError("send failed: \(String(cString: strerror(errno)))")
    }
}
