import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The HTTP API under slow, careless and aborting clients, through the real daemon (issue 12):
/// header and body timeouts, 415, client aborts at debug level.
@Suite("HTTP hardening through the daemon", .serialized)
struct HTTPHardeningTests {
    static let key = "hardening-key"
    /// `printf %s hardening-key | sha256sum`.
    static let digest = "a4e7844620694b5bf3e103156b4c2344e167586b582322daa16d671af797c7bb"

    /// A daemon with HTTP on a free port, the key above, short timeouts and the archive schedule off.
    static func start(headerTimeout: String = "1s", bodyTimeout: String = "1s") throws -> (DaemonHarness, Int) {
        let config = DaemonHarness.defaultConfig + """

            archive:
              interval: 0
            http:
              api_keys_sha256: ["\(Self.digest)"]
              header_timeout: \(headerTimeout)
              body_timeout: \(bodyTimeout)
            """
        let daemon = try DaemonHarness(config: config)
        let port = try freePort()
        try daemon.start(extraArguments: ["--http", "127.0.0.1:\(port)"])
        guard daemon.waitForHTTP(port: port) == 200 else { throw HarnessError("no HTTP API:\n\(daemon.log())") }
        return (daemon, port)
    }

    @Test("a client that sends part of its headers and then nothing gets 408 and is disconnected")
    func slowHeaders() throws {
        let (daemon, port) = try Self.start()
        let connection = try RawHTTPConnection(port: port)
        try connection.send("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor")
        let answer = try connection.readUntilClosed()
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        #expect(answer.contains(#""code":"request_timeout""#))
        #expect(answer.contains("http.header_timeout"))
        // Other clients are served as before.
        #expect(try httpRequest(port: port, method: "GET", path: "/healthz").status == 200)
        #expect(daemon.terminate() == 0)
    }

    @Test("a client that sends its headers and part of its body gets 408 and is disconnected; nothing is recorded")
    func slowBody() throws {
        let (daemon, port) = try Self.start()
        let connection = try RawHTTPConnection(port: port)
        let body = "[" + eventLine(id: "slow-body") + "]"
        try connection.send("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(Self.key)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body.prefix(10))
        let answer = try connection.readUntilClosed()
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        #expect(answer.contains("http.body_timeout"))
        // The event was not recorded: sent again whole, it is accepted, not a duplicate.
        #expect(try daemon.exchange(eventLine(id: "slow-body") + "\n") == [acceptedLine])
        #expect(daemon.terminate() == 0)
    }

    @Test("a kept-alive connection serves request after request; only waiting for the next one is timed")
    func keepAlive() throws {
        let (daemon, port) = try Self.start(headerTimeout: "30s", bodyTimeout: "30s")
        let connection = try RawHTTPConnection(port: port)
        for index in 0..<3 {
            let body = "[" + eventLine(id: "ka\(index)") + "]"
            try connection.send("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(Self.key)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
            let answer = try connection.readResponse()
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        }
        #expect(try daemon.usage(customer: "cus_1").quantity("api_calls") == "3")
        #expect(daemon.terminate() == 0)
    }

    @Test("a kept-alive connection idle past header_timeout after its answer is closed, without an unasked 408")
    func idleKeepAlive() throws {
        let (daemon, port) = try Self.start()
        let connection = try RawHTTPConnection(port: port)
        try connection.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(try connection.readResponse().hasPrefix("HTTP/1.1 200"))
        // Nothing more is sent: the server closes the connection and says nothing.
        #expect(try connection.readUntilClosed() == "")
        #expect(daemon.terminate() == 0)
    }

    @Test("a body that is not JSON is 415 unsupported_media_type; JSON with a charset is read")
    func unsupportedMediaType() throws {
        let (daemon, port) = try Self.start()
        let body = "[" + eventLine(id: "media") + "]"
        for (contentType, status) in [("text/plain", 415), ("application/x-www-form-urlencoded", 415), ("application/json; charset=utf-8", 200)] {
            let connection = try RawHTTPConnection(port: port)
            try connection.send("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(Self.key)\r\nConnection: close\r\n"
                + "Content-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
            let answer = try connection.readUntilClosed()
            #expect(answer.hasPrefix("HTTP/1.1 \(status)"), "\(contentType): \(answer)")
            if status == 415 { #expect(answer.contains(#"{"error":{"code":"unsupported_media_type","message":"#)) }
        }
        #expect(try daemon.usage(customer: "cus_1").quantity("api_calls") == "1")
        #expect(daemon.terminate() == 0)
    }

    @Test("a client that resets its connection mid-body is not logged as a server error")
    func clientAbort() throws {
        let (daemon, port) = try Self.start(headerTimeout: "30s", bodyTimeout: "30s")
        for _ in 0..<3 {
            let connection = try RawHTTPConnection(port: port)
            try connection.send("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(Self.key)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n[{\"id\":\"abort\"")
            connection.reset()
        }
        // The aborted requests are answered (to nobody) and counted: wait for the count, not for a time.
        var counted = false
        for _ in 0..<500 where !counted {
            let metrics = try httpRequest(port: port, method: "GET", path: "/metrics", key: Self.key).body
            counted = metrics.contains(#"tally_http_requests_total{method="POST",route="/v1/events",status="400"} 3"#)
            if !counted { usleep(20_000) }
        }
        #expect(counted)
        #expect(!daemon.log().contains("unexpected error answering a request"), "\(daemon.log())")
        #expect(!daemon.log().contains(" error tally.http"), "\(daemon.log())")
        #expect(daemon.terminate() == 0)
    }
}

/// A raw TCP connection to the daemon's HTTP port, for requests the test sends byte by byte.
final class RawHTTPConnection {
    private(set) var descriptor: Int32

    init(port: Int) throws {
        descriptor = try connectLoopback(port: port)
        // A guard against hanging forever should the server never answer; nothing is measured.
        var guardTime = timeval(tv_sec: 120, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &guardTime, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    func send(_ text: String) throws {
        let sent = text.withCString { Glibc.send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        guard sent == text.utf8.count else { throw HarnessError("send failed: \(String(cString: strerror(errno)))") }
    }

    /// Everything the server sends until it closes the connection.
    func readUntilClosed() throws -> String {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { break }
            if count < 0 {
                if errno == ECONNRESET { break }
                throw HarnessError("the server neither answered nor closed: \(String(cString: strerror(errno)))")
            }
            data.append(contentsOf: buffer[..<count])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// One response with a Content-Length body, on a connection that stays open.
    func readResponse() throws -> String {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let text = String(decoding: data, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                let head = text[..<end.lowerBound].lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if text.utf8.count - text[..<end.upperBound].utf8.count >= length { return text }
            }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            guard count > 0 else { throw HarnessError("the connection closed mid-response: \(text)") }
            data.append(contentsOf: buffer[..<count])
        }
    }

    /// Closes with a reset (RST), as a client that crashed or gave up would.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(descriptor)
        descriptor = -1
    }
}
