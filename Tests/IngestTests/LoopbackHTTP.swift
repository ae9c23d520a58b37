import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server and client on 127.0.0.1 for integration tests (loopback only).
final class LoopbackReceiver: @unchecked Sendable {
    struct Request {
        var method: String
        var path: String
        var headers: [String: String]
        var body: String
        var status: Int
    }

    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var requests: [Request] = []
    private var respondWith: Int
    private var stopped = false

    init(status: Int) throws {
        respondWith = status
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else { throw HarnessError("cannot listen on 127.0.0.1") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit { stop() }

    /// Stops accepting and closes the listening socket, once: a second close could close a
    /// descriptor another test has opened meanwhile under the same number.
    func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    func setStatus(_ status: Int) { lock.withLock { respondWith = status } }
    var received: [Request] { lock.withLock { requests } }

    /// Waits until `condition` holds for the received requests (polling), or the deadline passes.
    func wait(seconds: Double = 30, until condition: ([Request]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(received) { return true }
            usleep(20_000)
        }
        return condition(received)
    }

    private func acceptLoop() {
        while !lock.withLock({ stopped }) {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if lock.withLock({ stopped }) { return }
                continue
            }
            Thread.detachNewThread { [self] in serve(connection) }
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        while let (head, body) = Self.readRequest(connection) {
            var lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.removeFirst().split(separator: " ")
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let status = lock.withLock { respondWith }
            lock.withLock {
                requests.append(Request(method: String(requestLine.first ?? ""), path: String(requestLine.dropFirst().first ?? ""),
                                        headers: headers, body: body, status: status))
            }
            let response = "HTTP/1.1 \(status) X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            _ = response.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            return
        }
    }

    /// Reads one request (head and Content-Length body) from a blocking socket.
    static func readRequest(_ connection: Int32) -> (String, String)? {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = data.indices.dropLast(3).first(where: { data[$0] == 13 && data[$0 + 1] == 10 && data[$0 + 2] == 13 && data[$0 + 3] == 10 }) {
                let head = String(decoding: data[..<end], as: UTF8.self)
                let lengthLine = head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                let length = lengthLine.flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                while data.count < end + 4 + length {
                    let count = recv(connection, &buffer, buffer.count, 0)
                    if count <= 0 { return nil }
                    data.append(contentsOf: buffer[..<count])
                }
                return (head, String(decoding: data[(end + 4)..<(end + 4 + length)], as: UTF8.self))
            }
            let count = recv(connection, &buffer, buffer.count, 0)
            if count <= 0 { return nil }
            data.append(contentsOf: buffer[..<count])
        }
    }
}

/// Sends one HTTP/1.1 request to 127.0.0.1:`port` and returns the status and body.
func httpRequest(port: Int, method: String, path: String, key: String? = nil, body: String = "") throws -> (status: Int, body: String) {
    let response = try httpExchange(port: port, method: method, path: path, key: key, body: body)
    return (response.status, response.body)
}

/// Sends one HTTP/1.1 request with extra header lines (`"Accept: text/csv"`) and returns the
/// status, the response head (lowercased) and the body.
func httpExchange(port: Int, method: String, path: String, key: String? = nil, body: String = "",
                  headers: [String] = []) throws -> (status: Int, head: String, body: String) {
    let response = try httpRawExchange(port: port, method: method, path: path, key: key, body: body, headers: headers)
    return (response.status, response.head.lowercased(), response.body)
}

/// `httpExchange` with the response head as sent (cookie values are case-sensitive) and the
/// body's content type given (`application/x-www-form-urlencoded` for a form).
func httpRawExchange(port: Int, method: String, path: String, key: String? = nil, body: String = "",
                     contentType: String = "application/json", headers: [String] = []) throws -> (status: Int, head: String, body: String) {
    let descriptor = try connectLoopback(port: port)
    defer { close(descriptor) }
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
    if let key { request += "Authorization: Bearer \(key)\r\n" }
    if !body.isEmpty { request += "Content-Type: \(contentType)\r\n" }
    for header in headers { request += header + "\r\n" }
    request += "\r\n" + body
    _ = request.withCString { send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    var data = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(descriptor, &buffer, buffer.count, 0)
        if count <= 0 { break }
        data.append(contentsOf: buffer[..<count])
    }
    let text = String(decoding: data, as: UTF8.self)
    guard let headEnd = text.range(of: "\r\n\r\n") else { throw HarnessError("no HTTP response") }
    let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
    var bodyText = String(text[headEnd.upperBound...])
    if text[..<headEnd.lowerBound].lowercased().contains("transfer-encoding: chunked") {
        bodyText = dechunk(bodyText)
    }
    return (status, String(text[..<headEnd.lowerBound]), bodyText)
}

/// A blocking TCP socket connected to 127.0.0.1:`port`; the caller closes it.
func connectLoopback(port: Int) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(descriptor)
        throw HarnessError("cannot connect to 127.0.0.1:\(port)")
    }
    return descriptor
}

private func dechunk(_ text: String) -> String {
    var result = ""
    var rest = Substring(text)
    while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
        let start = lineEnd.upperBound
        let bytes = Array(rest[start...].utf8)
        result += String(decoding: bytes.prefix(size), as: UTF8.self)
        rest = Substring(String(decoding: bytes.dropFirst(size + 2), as: UTF8.self))
    }
    return result
}

/// A free TCP port on 127.0.0.1 (bound, then released).
func freePort() throws -> Int {
    let receiver = try LoopbackReceiver(status: 200)
    defer { receiver.stop() }
    return receiver.port
}
