import Foundation
@testable import HTTPAPI
import Hummingbird
import Ingest
import Logging
import Metering
import ServiceLifecycle
import Storage
import Testing

@Suite("Event array splitting")
struct EventArraySplitterTests {
    func split(_ text: String, maximum: Int = 1000) throws(EventArraySplitter.Failure) -> [String] {
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(EventArraySplitter.Failure) in try EventArraySplitter.split(raw, maximumCount: maximum) }
        }
        return try result.get().map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    @Test("Elements keep their exact bytes, whitespace around them trimmed")
    func elements() throws {
        #expect(try split(#" [ {"a":1} ,{"b":[1,{"c":"]}"}]},  "x,y" , 3.10e2 ,null ]  "#)
                == [#"{"a":1}"#, #"{"b":[1,{"c":"]}"}]}"#, #""x,y""#, "3.10e2", "null"])
        #expect(try split(#"[{"q":"\"],[{"}]"#) == [#"{"q":"\"],[{"}"#])
        #expect(try split(#"[{"q":"\\"}]"#) == [#"{"q":"\\"}"#])
        #expect(try split("[\n{\"a\":\n1}\r\n]") == ["{\"a\":\n1}"])
        #expect(try split("[]").isEmpty)
        // Inner syntax is the parser's business: only the boundaries matter here.
        #expect(try split("[{tru}, 1 2]") == ["{tru}", "1 2"])
    }

    @Test("What cannot be split is an error", arguments: [
        ("{}", EventArraySplitter.Failure.notAnArray), ("", .notAnArray), ("  ", .notAnArray), ("\"[]\"", .notAnArray),
        ("[", .malformed(offset: 1, expected: "',' or ']'")),
        ("[1,]", .malformed(offset: 3, expected: "an event object")),
        ("[,1]", .malformed(offset: 1, expected: "an event object")),
        ("[1]x", .malformed(offset: 3, expected: "nothing after the array")),
        ("[{]", .malformed(offset: 2, expected: "'}'")),
        ("[}]", .malformed(offset: 1, expected: "',' or ']'")),
        ("[\"abc]", .malformed(offset: 6, expected: "the end of the string that starts at byte 1")),
        ("[[1]", .malformed(offset: 4, expected: "',' or ']'")),
        ("[{\"a\":[1", .malformed(offset: 8, expected: "']'")),
    ])
    func failures(text: String, failure: EventArraySplitter.Failure) {
        #expect(throws: failure) { try split(text) }
    }

    @Test("More elements than allowed is tooManyElements; exactly the maximum is fine")
    func maximum() throws {
        #expect(try split("[1,2,3]", maximum: 3).count == 3)
        #expect(throws: EventArraySplitter.Failure.tooManyElements(maximum: 2)) { try split("[1,2,3]", maximum: 2) }
    }
}

@Suite("Small pieces")
struct SmallPiecesTests {
    @Test("HOST:PORT parsing")
    func listenAddress() {
        #expect(HTTPListenAddress("127.0.0.1:8080") == HTTPListenAddress(host: "127.0.0.1", port: 8080))
        #expect(HTTPListenAddress("localhost:0") == HTTPListenAddress(host: "localhost", port: 0))
        #expect(HTTPListenAddress("[::1]:9000") == HTTPListenAddress(host: "::1", port: 9000))
        #expect(HTTPListenAddress("[::1]:9000")?.description == "[::1]:9000")
        #expect(HTTPListenAddress("127.0.0.1:8080")?.description == "127.0.0.1:8080")
        for bad in ["127.0.0.1", ":8080", "host:", "host:65536", "host:-1", "host:80a", "::1:80", "[::1]80", "[::1]:", "host:+80", "host:０"] {
            #expect(HTTPListenAddress(bad) == nil, "\(bad)")
        }
    }

    @Test("The authenticator compares digests, and hexDigest matches sha256sum")
    func authenticator() {
        #expect(APIKeyAuthenticator.hexDigest(of: testAPIKey) == testAPIKeyDigest)
        let authenticator = APIKeyAuthenticator(hexDigests: ["zz", testAPIKeyDigest, String(testAPIKeyDigest.dropLast())])
        #expect(authenticator.digests.count == 1)
        #expect(authenticator.accepts(key: testAPIKey))
        #expect(!authenticator.accepts(key: testAPIKey + " "))
        #expect(!authenticator.accepts(key: ""))
        #expect(!APIKeyAuthenticator(hexDigests: []).accepts(key: testAPIKey))
    }

    @Test("The small JSON reader keeps numbers as text and decodes escapes")
    func jsonValue() throws {
        let value = try JSONValue.parse(Array(#" {"a": [1.50, -2e3, true, null], "b": "\u00e9\ud83d\ude00\n\/"} "#.utf8))
        #expect(value == .object([("a", .array([.number("1.50"), .number("-2e3"), .bool(true), .null])), ("b", .string("é😀\n/"))]))
        for bad in ["", "{", "[1,]", "01", "1.", "\"\\x\"", "\"a", "{\"a\" 1}", "tru", "[1] 2", "\"\\ud800\""] {
            #expect(throws: JSONValue.SyntaxError.self, "\(bad)") { try JSONValue.parse(Array(bad.utf8)) }
        }
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(throws: JSONValue.SyntaxError.self) { try JSONValue.parse(Array(deep.utf8)) }
    }

    @Test("Store errors become 503 unavailable, Hummingbird's errors keep their status, unexpected errors 500")
    func errorResponses() {
        let request = Request(head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/v1/alerts"),
                              body: .init(buffer: ByteBuffer()))
        func status(_ error: any Error) -> Int {
            ErrorMiddleware<BasicRequestContext>.response(for: error, request: request, logger: quietLogger).status.code
        }
        struct Odd: Error {}
        #expect(status(StoreError(.unavailable, "the disk is full")) == 503)
        #expect(status(StoreError(.incompatible, "damaged")) == 503)
        #expect(status(Odd()) == 500)
        #expect(status(HTTPError(.notFound)) == 404)
        #expect(status(HTTPError(.contentTooLarge)) == 413)
        #expect(status(HTTPAPIError(status: 422, code: .outOfRange, message: "too far")) == 422)
        #expect(ErrorMiddleware<BasicRequestContext>.translate(.notFound, request: request).code == .notFound)
        #expect(HTTPAPIError.store(StoreError(.unavailable, "the disk is full")).code == .unavailable)
    }

    @Test("HTTPAPIError's JSON is {\"error\":{\"code\",\"message\"}}")
    func errorJSON() {
        let error = HTTPAPIError(status: 503, code: .unavailable, message: "the store said \"no\"")
        #expect(error.json == #"{"error":{"code":"unavailable","message":"the store said \"no\""}}"#)
    }
}

@Suite("Server lifecycle")
struct ServerLifecycleTests {
    @Test("A port already taken makes run() and listeningPort() throw")
    func portTaken() async throws {
        try await withTestServer { running in
            let config = running.config
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-http-\(UUID().uuidString.prefix(8))").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let store = try TallyStore(path: directory, configuration: .init(meters: config.meters, billingPeriod: config.billing.period),
                                       access: .readWrite, logger: quietLogger)
            let storeWriter = try StoreWriter(store: store)
            let writer = GroupCommitWriter(writer: storeWriter, maximumEvents: 100, maximumDelayNanoseconds: 1_000_000, logger: quietLogger)
            let second = HTTPAPIServer(config: config, store: store, writer: writer, parser: EventLineParser(meterCodes: ["api_calls"]),
                                       host: "127.0.0.1", port: running.port, logger: quietLogger)
            await #expect(throws: (any Error).self) { try await second.run() }
            await #expect(throws: (any Error).self) { try await second.listeningPort() }
            #expect(second.boundPort == nil)
        }
    }

    @Test("onListening reports the bound port; graceful shutdown ends run()")
    func onListening() async throws {
        let config = testConfig()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-http-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try TallyStore(path: directory, configuration: .init(meters: config.meters, billingPeriod: config.billing.period),
                                   access: .readWrite, logger: quietLogger)
        let writer = GroupCommitWriter(writer: try StoreWriter(store: store), maximumEvents: 100, maximumDelayNanoseconds: 1_000_000, logger: quietLogger)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = HTTPAPIServer(config: config, store: store, writer: writer, parser: EventLineParser(meterCodes: ["api_calls"]),
                                   host: "127.0.0.1", port: 0, logger: quietLogger, onListening: { continuation.yield($0) })
        let group = ServiceGroup(services: [server], logger: quietLogger)
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        #expect(port > 0)
        #expect(try await server.listeningPort() == port)
        await group.triggerGracefulShutdown()
        try await task.value
        #expect(server.boundPort == nil)
    }
}
