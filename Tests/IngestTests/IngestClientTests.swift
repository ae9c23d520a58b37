import Foundation
import Glibc
import IngestClient
import Testing

// MARK: - A fake ingest server

/// A tiny Unix-socket server that answers like Tally's ingest socket, run on its own thread.
///
/// It answers a line containing `dup` with `duplicate`, `bad` with a rejection (`invalid_json`, a
/// message with escaped quotes, field `value`), `blk` with `accepted` + `blocked`, anything else with
/// `accepted`. Each accepted connection follows the next ``Behavior``; it records what it received
/// and answered per connection.
private final class FakeIngestServer: @unchecked Sendable {
    enum Behavior: Sendable {
        /// Answer every line, one write per read (or writes of `pieceBytes` bytes).
        case answerAll(pieceBytes: Int? = nil)
        /// Read until more than `count` lines arrived, answer the first `count`, close.
        case answerThenClose(Int)
        /// Answer lines as they come; close once `count` lines were answered.
        case answerAndClose(Int)
        /// Accept and close at once.
        case closeImmediately
        /// After the first line, write these bytes instead of answers.
        case reply(String)
        /// Answer every line twice.
        case answerTwice
    }

    static let rejection =
        #"{"status":"rejected","error":{"code":"invalid_json","message":"unexpected \"}\" at byte 7","field":"value"},"detail":[1,{"x":null}]}"#

    let path: String
    private let listener: Int32
    private let behaviors: [Behavior]
    private let repeatLast: Bool
    private let vanishAfterLast: Bool
    private let lock = NSLock()
    private var listenerClosed = false
    private var received: [[String]] = []
    private var answered: [[String]] = []
    private var blankLinesReceived = 0
    private var mostUnanswered = 0
    private var closedConnections = 0
    private let finished = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - repeatLast: keep accepting connections with the last behavior.
    ///   - vanishAfterLast: remove the socket (close and unlink) during the last connection, before
    ///     it answers, so reconnects fail.
    init(_ behaviors: [Behavior], repeatLast: Bool = false, vanishAfterLast: Bool = false) throws {
        self.behaviors = behaviors
        self.repeatLast = repeatLast
        self.vanishAfterLast = vanishAfterLast
        path = "/tmp/tally-client-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            throw ClientError(code: .ioError, message: "fake server cannot listen at \(path)")
        }
        Thread.detachNewThread { self.serve() }
    }

    /// Lines received per connection (blank lines excluded).
    var receivedLines: [[String]] { lock.withLock { received } }
    /// Lines answered per connection.
    var answeredLines: [[String]] { lock.withLock { answered } }
    var blankLines: Int { lock.withLock { blankLinesReceived } }
    /// The most lines received and not yet answered at any moment.
    var maxUnanswered: Int { lock.withLock { mostUnanswered } }
    /// Connections the server has closed.
    var closedCount: Int { lock.withLock { closedConnections } }

    /// Stops accepting and waits for the server thread.
    func stop() {
        closeListener(shutdownOnly: true)
        _ = finished.wait(timeout: .now() + 10)
        closeListener(shutdownOnly: false)
    }

    static func answer(for line: String) -> String {
        if line.contains("bad") { return rejection }
        if line.contains("dup") { return #"{"status":"duplicate"}"# }
        if line.contains("blk") { return #"{"status":"accepted","blocked":true}"# }
        return #"{"status":"accepted"}"#
    }

    private func closeListener(shutdownOnly: Bool) {
        lock.withLock {
            guard !listenerClosed else { return }
            if shutdownOnly {
                _ = shutdown(listener, Int32(SHUT_RDWR))
                return
            }
            listenerClosed = true
            unlink(path)
            close(listener)
        }
    }

    private func serve() {
        var number = 0
        while true {
            let behavior: Behavior
            if number < behaviors.count {
                behavior = behaviors[number]
            } else if repeatLast, let last = behaviors.last {
                behavior = last
            } else {
                break
            }
            let connection = accept(listener, nil, nil)
            if connection < 0 { break }
            lock.withLock {
                received.append([])
                answered.append([])
            }
            let isLast = number == behaviors.count - 1 && !repeatLast
            handle(connection, behavior, number: number, vanish: isLast && vanishAfterLast)
            close(connection)
            lock.withLock { closedConnections += 1 }
            number += 1
        }
        closeListener(shutdownOnly: false)
        finished.signal()
    }

    private func write(_ text: String, to connection: Int32, pieceBytes: Int? = nil) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = min(pieceBytes ?? bytes.count, bytes.count - offset)
            let written = bytes.withUnsafeBytes { send(connection, $0.baseAddress! + offset, count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    private func handle(_ connection: Int32, _ behavior: Behavior, number: Int, vanish: Bool) {
        if case .closeImmediately = behavior { return }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var queue: [String] = []
        var receivedHere = 0
        var replied = false
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress!, $0.count, 0) }
            if count <= 0 { break }
            pending.append(contentsOf: buffer[0..<count])
            while let newline = pending.firstIndex(of: 0x0A) {
                var line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if line.hasSuffix("\r") { line.removeLast() }
                if line.allSatisfy({ $0 == " " || $0 == "\t" }) {
                    lock.withLock { blankLinesReceived += 1 }
                    continue
                }
                queue.append(line)
                receivedHere += 1
                lock.withLock { received[number].append(line) }
            }
            lock.withLock { mostUnanswered = max(mostUnanswered, queue.count) }
            switch behavior {
            case .answerAll(let pieceBytes):
                if queue.isEmpty { continue }
                // Recorded before writing: the client may finish as soon as it reads the answers.
                lock.withLock { answered[number].append(contentsOf: queue) }
                write(queue.map { Self.answer(for: $0) + "\n" }.joined(), to: connection, pieceBytes: pieceBytes)
                queue.removeAll()
            case .answerTwice:
                write(queue.map { Self.answer(for: $0) + "\n" + Self.answer(for: $0) + "\n" }.joined(), to: connection)
                queue.removeAll()
            case .reply(let text):
                if !replied && !queue.isEmpty {
                    write(text, to: connection)
                    replied = true
                }
            case .answerThenClose(let limit):
                if receivedHere > limit {
                    answerFirst(limit, of: queue, on: connection, number: number, vanish: vanish)
                    return
                }
            case .answerAndClose(let limit):
                let lines = Array(queue.prefix(limit - answeredLines[number].count))
                lock.withLock { answered[number].append(contentsOf: lines) }
                write(lines.map { Self.answer(for: $0) + "\n" }.joined(), to: connection)
                queue.removeAll()
                if answeredLines[number].count >= limit { return }
            case .closeImmediately:
                return
            }
        }
        if case .answerThenClose(let limit) = behavior {
            answerFirst(min(limit, queue.count), of: queue, on: connection, number: number, vanish: vanish)
        }
    }

    private func answerFirst(_ count: Int, of queue: [String], on connection: Int32, number: Int, vanish: Bool) {
        if vanish { closeListener(shutdownOnly: false) }
        let lines = Array(queue.prefix(count))
        lock.withLock { answered[number].append(contentsOf: lines) }
        write(lines.map { Self.answer(for: $0) + "\n" }.joined(), to: connection)
    }
}

// MARK: - Helpers

/// Event-like lines; some contain the markers the fake server reacts to.
private func makeLines(_ count: Int) -> [String] {
    (0..<count).map { index in
        let marker = index % 11 == 5 ? "bad" : index % 7 == 3 ? "dup" : index % 13 == 6 ? "blk" : "ok"
        return #"{"id":"evt_\#(index)","customer":"cus_\#(index % 17)","meter":"api_calls","note":"\#(marker)"}"#
    }
}

private func lineBytes(_ lines: [String]) -> [ArraySlice<UInt8>] {
    lines.map { ArraySlice($0.utf8) }
}

private func expectedResponse(_ line: String) throws -> IngestResponse {
    try IngestResponse.parse(FakeIngestServer.answer(for: line))
}

/// Runs a sender and collects every outcome.
private func sendLines(
    _ lines: [String], to server: FakeIngestServer, options: LineSender.Options = .init()
) -> (outcomes: [LineOutcome], result: Result<LineSender.Summary, ClientError>) {
    var outcomes: [LineOutcome] = []
    let sender = LineSender(socketPath: server.path, options: options)
    do throws(ClientError) {
        let summary = try sender.run(lines: lineBytes(lines)) { outcomes.append($0) }
        return (outcomes, .success(summary))
    } catch {
        return (outcomes, .failure(error))
    }
}

/// Checks that outcomes answer `lines` (blank ones skipped) in order with the fake server's answers.
private func expectOutcomesMatch(_ outcomes: [LineOutcome], _ lines: [String]) throws {
    let nonBlank = lines.indices.filter { !lines[$0].allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" } }
    #expect(outcomes.map(\.index) == nonBlank)
    for outcome in outcomes {
        #expect(String(decoding: outcome.line, as: UTF8.self) == lines[outcome.index])
        #expect(outcome.response == (try expectedResponse(lines[outcome.index])))
        #expect(outcome.receivedAtNanoseconds >= outcome.sentAtNanoseconds)
        #expect(outcome.sentAtNanoseconds > 0)
    }
}

private func expectedSummaryCounts(_ lines: [String]) -> (accepted: Int, duplicate: Int, rejected: Int, blocked: Int) {
    let nonBlank = lines.filter { !$0.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" } }
    let rejected = nonBlank.filter { $0.contains("bad") }.count
    let duplicate = nonBlank.filter { !$0.contains("bad") && $0.contains("dup") }.count
    let blocked = nonBlank.filter { !$0.contains("bad") && !$0.contains("dup") && $0.contains("blk") }.count
    return (nonBlank.count - rejected - duplicate, duplicate, rejected, blocked)
}

// MARK: - LineSender against the fake server

@Suite("LineSender")
struct ClientLineSenderTests {
    @Test("every line is answered in order with the right outcome and counts; blank lines are skipped")
    func answersInOrder() throws {
        let server = try FakeIngestServer([.answerAll()])
        defer { server.stop() }
        var lines = makeLines(2000)
        lines.insert("", at: 0)
        lines.insert("   \t", at: 500)
        lines.insert("\r", at: 1000)
        lines.append("")
        let (outcomes, result) = sendLines(lines, to: server, options: .init(chunkBytes: 4096))
        let summary = try result.get()
        try expectOutcomesMatch(outcomes, lines)
        let counts = expectedSummaryCounts(lines)
        #expect(summary.accepted == counts.accepted)
        #expect(summary.duplicate == counts.duplicate)
        #expect(summary.rejected == counts.rejected)
        #expect(summary.rejectedByCode == ["invalid_json": counts.rejected])
        #expect(summary.blocked == counts.blocked)
        #expect(summary.answered == 2000)
        #expect(summary.blankLines == 4)
        #expect(summary.resentLines == 0)
        #expect(summary.reconnects == 0)
        #expect(summary.elapsedNanoseconds > 0)
        #expect(counts.rejected > 0 && counts.duplicate > 0 && counts.blocked > 0)
        // Blank lines never reach the server; everything else arrives once, in order.
        #expect(server.blankLines == 0)
        #expect(server.receivedLines == [makeLines(2000)])
        let rejectedOutcome = try #require(outcomes.first { $0.response.status == .rejected })
        #expect(rejectedOutcome.response.message == #"unexpected "}" at byte 7"#)
        #expect(rejectedOutcome.response.field == "value")
    }

    @Test("answers split into tiny writes and read through a tiny buffer are reassembled")
    func splitAnswers() throws {
        let server = try FakeIngestServer([.answerAll(pieceBytes: 7)])
        defer { server.stop() }
        let lines = makeLines(300)
        let (outcomes, result) = sendLines(lines, to: server, options: .init(readBufferBytes: 16))
        let summary = try result.get()
        try expectOutcomesMatch(outcomes, lines)
        #expect(summary.answered == 300)
    }

    @Test("input with no lines, or only blank lines, finishes with zero counts")
    func emptyInput() throws {
        let server = try FakeIngestServer([.answerAll(), .answerAll()])
        defer { server.stop() }
        let (outcomes, result) = sendLines(["", " ", "\t\r"], to: server)
        let summary = try result.get()
        #expect(outcomes.isEmpty)
        #expect(summary.answered == 0)
        #expect(summary.blankLines == 3)
        let (noOutcomes, noLines) = sendLines([], to: server)
        #expect(noOutcomes.isEmpty)
        #expect(try noLines.get().answered == 0)
    }

    @Test("never more than windowLines lines are unanswered")
    func windowBoundsUnansweredLines() throws {
        let server = try FakeIngestServer([.answerAll()])
        defer { server.stop() }
        let lines = makeLines(500)
        let (outcomes, result) = sendLines(lines, to: server, options: .init(windowLines: 3))
        #expect(try result.get().answered == 500)
        try expectOutcomesMatch(outcomes, lines)
        #expect(server.maxUnanswered <= 3)
        #expect(server.maxUnanswered >= 1)
    }

    @Test("after a drop the client resends exactly the unanswered lines, in order, and never an answered one")
    func resendsUnansweredAfterDrop() throws {
        let server = try FakeIngestServer([.answerThenClose(10), .answerAll()])
        defer { server.stop() }
        let lines = makeLines(200)
        let (outcomes, result) = sendLines(lines, to: server, options: .init(initialBackoff: .milliseconds(1)))
        let summary = try result.get()
        try expectOutcomesMatch(outcomes, lines)
        #expect(summary.reconnects == 1)
        #expect(summary.answered == 200)
        let received = server.receivedLines
        let answered = server.answeredLines
        #expect(received.count == 2)
        #expect(answered[0] == Array(lines.prefix(10)))
        #expect(received[0].count > 10)  // it read lines it never answered...
        #expect(received[1] == Array(lines.dropFirst(10)))  // ...and got exactly those (and the rest) again
        // One chunk held every line, so all 190 unanswered lines were sent twice.
        #expect(summary.resentLines == 190)
    }

    @Test("several drops mid-stream: the union covers every line and answered lines never come back")
    func severalDrops() throws {
        let server = try FakeIngestServer([.answerThenClose(5), .answerThenClose(40), .answerThenClose(1), .answerAll()])
        defer { server.stop() }
        let lines = makeLines(1000)
        let options = LineSender.Options(windowLines: 64, initialBackoff: .milliseconds(1), chunkBytes: 512)
        let (outcomes, result) = sendLines(lines, to: server, options: options)
        let summary = try result.get()
        try expectOutcomesMatch(outcomes, lines)
        #expect(summary.reconnects == 3)
        #expect(summary.answered == 1000)
        let received = server.receivedLines
        let answered = server.answeredLines
        #expect(received.count == 4)
        var answeredBefore = 0
        var resentAtLeast = 0
        for connection in received.indices {
            // Each connection starts at the first line not answered before it, and goes on in order.
            let expected = Array(lines.dropFirst(answeredBefore).prefix(received[connection].count))
            #expect(received[connection] == expected, "connection \(connection)")
            #expect(answered[connection] == Array(received[connection].prefix(answered[connection].count)))
            if connection < received.count - 1 {
                resentAtLeast += received[connection].count - answered[connection].count
            }
            answeredBefore += answered[connection].count
        }
        #expect(answeredBefore == 1000)
        #expect(Set(received.joined()) == Set(lines))
        #expect(summary.resentLines >= resentAtLeast)
        #expect(summary.resentLines <= 3 * 64)
    }

    @Test("a server that never comes back ends in connectionLost after the attempts, naming the unanswered lines")
    func serverGone() throws {
        let server = try FakeIngestServer([.answerThenClose(3)], vanishAfterLast: true)
        defer { server.stop() }
        let lines = makeLines(50)
        let started = ContinuousClock.now
        let (outcomes, result) = sendLines(
            lines, to: server,
            options: .init(reconnectAttempts: 4, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(4)))
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(outcomes.map(\.index) == [0, 1, 2])
        guard case .failure(let error) = result else {
            Issue.record("expected connectionLost, got \(result)")
            return
        }
        #expect(error.code == .connectionLost)
        #expect(error.unansweredLines == 47)
        #expect(error.message.contains(server.path))
        #expect(error.message.contains("47 line(s) stayed unanswered"))
        #expect(error.message.contains("4 reconnect attempt(s) failed"))
    }

    @Test("a server that accepts and drops every connection does not loop forever")
    func crashLoopingServer() throws {
        let server = try FakeIngestServer([.closeImmediately], repeatLast: true)
        defer { server.stop() }
        let (outcomes, result) = sendLines(
            makeLines(5), to: server, options: .init(reconnectAttempts: 3, initialBackoff: .milliseconds(1)))
        #expect(outcomes.isEmpty)
        guard case .failure(let error) = result else {
            Issue.record("expected connectionLost, got \(result)")
            return
        }
        #expect(error.code == .connectionLost)
        #expect(error.unansweredLines == 5)
        #expect(server.receivedLines.count == 4)  // the first connection and three reconnects
    }

    @Test("reconnectAttempts 0 gives up at the first drop")
    func noReconnects() throws {
        let server = try FakeIngestServer([.answerThenClose(2), .answerAll()])
        defer { server.stop() }
        let (outcomes, result) = sendLines(makeLines(10), to: server, options: .init(reconnectAttempts: 0))
        #expect(outcomes.count == 2)
        #expect((try? result.get()) == nil)
        if case .failure(let error) = result {
            #expect(error.code == .connectionLost)
            #expect(error.unansweredLines == 8)
        }
    }

    @Test("no socket at the path: connectFailed naming the path")
    func noSocket() throws {
        let path = "/tmp/tally-client-test-missing-\(getpid()).sock"
        #expect {
            _ = try IngestConnection.connect(path: path)
        } throws: { error in
            guard let error = error as? ClientError else { return false }
            return error.code == .connectFailed && error.message.contains(path)
                && error.message.contains("No such file or directory") && error.systemError == ENOENT
        }
        let sender = LineSender(socketPath: path)
        #expect {
            _ = try sender.run(lines: lineBytes(["{}"])) { _ in }
        } throws: { error in
            (error as? ClientError)?.code == .connectFailed
        }
    }

    @Test("a socket path longer than a socket address holds is an invalidArgument")
    func pathTooLong() throws {
        let path = "/tmp/" + String(repeating: "x", count: 200) + ".sock"
        #expect {
            _ = try IngestConnection.connect(path: path)
        } throws: { error in
            (error as? ClientError)?.code == .invalidArgument
        }
    }

    @Test("bad options and lines with a newline inside are invalidArgument")
    func invalidArguments() throws {
        let server = try FakeIngestServer([.answerAll(), .answerAll()])
        defer { server.stop() }
        #expect {
            _ = try LineSender(socketPath: server.path, options: .init(windowLines: 0)).run(lines: lineBytes(["a"])) { _ in }
        } throws: { error in
            (error as? ClientError)?.code == .invalidArgument
        }
        let (outcomes, result) = sendLines(["{\"ok\":1}", "two\nlines"], to: server)
        #expect(outcomes.count <= 1)
        guard case .failure(let error) = result else {
            Issue.record("expected invalidArgument, got \(result)")
            return
        }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("line 2"))
    }

    @Test("a garbage answer is a protocolViolation")
    func garbageAnswer() throws {
        let server = try FakeIngestServer([.reply("HTTP/1.1 400 Bad Request\r\n")])
        defer { server.stop() }
        let (outcomes, result) = sendLines(makeLines(3), to: server)
        #expect(outcomes.isEmpty)
        guard case .failure(let error) = result else {
            Issue.record("expected protocolViolation, got \(result)")
            return
        }
        #expect(error.code == .protocolViolation)
        #expect(error.message.contains("HTTP/1.1 400"))
    }

    @Test("more answers than lines is a protocolViolation")
    func tooManyAnswers() throws {
        let server = try FakeIngestServer([.answerTwice])
        defer { server.stop() }
        let (_, result) = sendLines(makeLines(4), to: server)
        guard case .failure(let error) = result else {
            Issue.record("expected protocolViolation, got \(result)")
            return
        }
        #expect(error.code == .protocolViolation)
        #expect(error.message.contains("more response"))
    }

    @Test("lines from a slow pipe are sent and answered while the input blocks (no waiting for a full chunk)")
    func streamsFromPipe() throws {
        let server = try FakeIngestServer([.answerAll()])
        defer { server.stop() }
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        let (readEnd, writeEnd) = (descriptors[0], descriptors[1])
        defer { close(readEnd) }
        let firstAnswered = DispatchSemaphore(value: 0)
        let writerDone = DispatchSemaphore(value: 0)
        let timedOut = NSLock()
        nonisolated(unsafe) var writerTimedOut = false
        Thread.detachNewThread {
            _ = "{\"n\":1}\n".withCString { write(writeEnd, $0, 8) }
            // The second line is written only once the first one was answered.
            if firstAnswered.wait(timeout: .now() + 10) == .timedOut {
                timedOut.withLock { writerTimedOut = true }
            }
            _ = "{\"n\":\"dup\"}".withCString { write(writeEnd, $0, 11) }
            close(writeEnd)
            writerDone.signal()
        }
        var reader = LineReader(fileDescriptor: readEnd)
        var responses: [IngestResponse] = []
        let summary = try LineSender(socketPath: server.path).run(source: &reader) { outcome in
            responses.append(outcome.response)
            if outcome.index == 0 { firstAnswered.signal() }
        }
        _ = writerDone.wait(timeout: .now() + 10)
        #expect(timedOut.withLock { writerTimedOut } == false)
        #expect(responses == [.accepted, .duplicate])
        #expect(summary.accepted == 1 && summary.duplicate == 1)
    }
}

@Suite("LineSender with idle input")
struct ClientIdleInputTests {
    @Test("a drop while the input is idle and every line answered reconnects only when there is a line to send")
    func lazyReconnect() throws {
        let server = try FakeIngestServer([.answerAndClose(1), .answerAll()])
        defer { server.stop() }
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        let (readEnd, writeEnd) = (descriptors[0], descriptors[1])
        defer { close(readEnd) }
        let firstAnswered = DispatchSemaphore(value: 0)
        let writerDone = DispatchSemaphore(value: 0)
        let connectionsWhileIdle = NSLock()
        nonisolated(unsafe) var idleConnections = -1
        Thread.detachNewThread {
            _ = "{\"n\":1}\n".withCString { write(writeEnd, $0, 8) }
            _ = firstAnswered.wait(timeout: .now() + 10)
            for _ in 0..<1000 where server.closedCount == 0 { usleep(1000) }
            usleep(200_000)  // idle: an eager client would reconnect now
            connectionsWhileIdle.withLock { idleConnections = server.receivedLines.count }
            _ = "{\"n\":2}\n".withCString { write(writeEnd, $0, 8) }
            close(writeEnd)
            writerDone.signal()
        }
        var reader = LineReader(fileDescriptor: readEnd)
        var indices: [Int] = []
        let options = LineSender.Options(initialBackoff: .milliseconds(1))
        let summary = try LineSender(socketPath: server.path, options: options).run(source: &reader) { outcome in
            indices.append(outcome.index)
            if outcome.index == 0 { firstAnswered.signal() }
        }
        _ = writerDone.wait(timeout: .now() + 10)
        #expect(connectionsWhileIdle.withLock { idleConnections } == 1)
        #expect(indices == [0, 1])
        #expect(summary.accepted == 2)
        #expect(summary.reconnects == 1)
        #expect(summary.resentLines == 0)
        #expect(server.receivedLines == [[#"{"n":1}"#], [#"{"n":2}"#]])
    }
}

// MARK: - Low-level connection

@Suite("IngestConnection")
struct ClientConnectionTests {
    @Test("sendAll and readResponse speak the protocol; readResponse is nil at the close")
    func roundTrip() throws {
        let server = try FakeIngestServer([.answerThenClose(2)])
        defer { server.stop() }
        let connection = try IngestConnection.connect(path: server.path)
        defer { connection.close() }
        try connection.sendAll(Array("{\"a\":\"ok\"}\n{\"a\":\"dup\"}\r\n\n{\"a\":\"bad\"}\n".utf8))
        #expect(try connection.readResponse() == .accepted)
        #expect(try connection.readResponse() == .duplicate)
        #expect(try connection.readResponse() == nil)
        #expect(server.receivedLines == [[#"{"a":"ok"}"#, #"{"a":"dup"}"#, #"{"a":"bad"}"#]])
        #expect(server.blankLines == 1)
    }
}

// MARK: - Response parser

@Suite("IngestResponse.parse")
struct ClientResponseParserTests {
    @Test("the two common lines")
    func commonLines() throws {
        #expect(try IngestResponse.parse(#"{"status":"accepted"}"#) == .accepted)
        #expect(try IngestResponse.parse(#"{"status":"duplicate"}"#) == .duplicate)
        #expect(try IngestResponse.parse("{\"status\":\"accepted\"}\r") == .accepted)
        #expect(try IngestResponse.parse(#" { "status" : "duplicate" } "#) == .duplicate)
    }

    @Test("a rejection with escapes in the message and a field")
    func rejectionWithEscapes() throws {
        let line = #"{"status":"rejected","error":{"code":"invalid_field","message":"bad \"time\": \\ \/ \t\n caf\u00e9 \ud83d\ude00","field":"time"}}"#
        let response = try IngestResponse.parse(line)
        #expect(response.status == .rejected)
        #expect(response.errorCode == "invalid_field")
        #expect(response.message == "bad \"time\": \\ / \t\n café 😀")
        #expect(response.field == "time")
        #expect(response.blocked == false)
    }

    @Test("blocked:true, field missing, unknown keys ignored, keys in any order")
    func blockedAndExtraKeys() throws {
        let blocked = try IngestResponse.parse(#"{"blocked":true,"status":"accepted","trace":{"a":[1,2.5e3,-0.1,"x",null,false]}}"#)
        #expect(blocked == IngestResponse(status: .accepted, blocked: true))
        let rejection = try IngestResponse.parse(
            #"{"status":"rejected","error":{"message":"no meter","code":"unknown_meter","hint":"see config"},"blocked":false}"#)
        #expect(rejection == IngestResponse(status: .rejected, errorCode: "unknown_meter", message: "no meter"))
        #expect(rejection.field == nil)
        let unicodeKey = try IngestResponse.parse(#"{"n\u00e9":1,"status":"duplicate","blocked":true}"#)
        #expect(unicodeKey == IngestResponse(status: .duplicate, blocked: true))
    }

    @Test(
        "anything that is not a valid response is a protocolViolation",
        arguments: [
            "", "garbage", "{}", "[]", #"{"status":"maybe"}"#, #"{"status":"accepted""#,
            #"{"status":"accepted"} x"#, #"{"status":"rejected"}"#, #"{"status":"rejected","error":{}}"#,
            #"{"status":accepted}"#, #"{"status":"accepted","blocked":"yes"}"#, #"{"status":"acc\x"}"#,
            #"{"status":"accepted","x":01.}"#, #"{"status":"rejected","error":{"code":"a\ud800"}}"#,
            "{\"status\":\"acc\u{01}epted\"}", #"{"status":"accepted",}"#, #"{"status":"accepted","x":[1,]}"#,
            #"{"status":"accepted","x":tru}"#,
        ])
    func garbage(line: String) {
        #expect {
            _ = try IngestResponse.parse(line)
        } throws: { error in
            guard let error = error as? ClientError else { return false }
            return error.code == .protocolViolation && error.message.contains("invalid response line")
        }
    }

    @Test("deep nesting in an unknown key is refused, not a stack overflow")
    func deepNesting() {
        let line = #"{"status":"accepted","x":"# + String(repeating: "[", count: 10000) + "}"
        #expect(throws: ClientError.self) { _ = try IngestResponse.parse(line) }
    }
}

// MARK: - LineReader

@Suite("LineReader")
struct ClientLineReaderTests {
    /// Writes `content` to a temporary file and reads all lines with the given block size.
    func readLines(_ content: [UInt8], blockSize: Int) throws -> [[UInt8]] {
        let path = "/tmp/tally-client-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ndjson"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(content)))
        defer { unlink(path) }
        let descriptor = open(path, O_RDONLY)
        #expect(descriptor >= 0)
        defer { close(descriptor) }
        var reader = LineReader(fileDescriptor: descriptor, blockSize: blockSize)
        var lines: [[UInt8]] = []
        while let line = try reader.nextLine() { lines.append(Array(line)) }
        #expect(try reader.nextLine() == nil)
        return lines
    }

    func text(_ lines: [[UInt8]]) -> [String] { lines.map { String(decoding: $0, as: UTF8.self) } }

    @Test("CRLF keeps the \\r; LF is removed", arguments: [1, 3, 64 * 1024])
    func crlf(blockSize: Int) throws {
        #expect(text(try readLines(Array("a\r\nbb\r\n\r\nc\n".utf8), blockSize: blockSize)) == ["a\r", "bb\r", "\r", "c"])
    }

    @Test("a final line without a newline is yielded", arguments: [1, 2, 4096])
    func noFinalNewline(blockSize: Int) throws {
        #expect(text(try readLines(Array("one\ntwo".utf8), blockSize: blockSize)) == ["one", "two"])
        #expect(text(try readLines(Array("x".utf8), blockSize: blockSize)) == ["x"])
    }

    @Test("empty input yields nothing; lone newlines yield empty lines")
    func emptyInput() throws {
        #expect(try readLines([], blockSize: 16).isEmpty)
        #expect(text(try readLines(Array("\n\n".utf8), blockSize: 16)) == ["", ""])
    }

    @Test("lines spanning block boundaries, and lines far longer than a block", arguments: [1, 5, 7, 100])
    func spanningBlocks(blockSize: Int) throws {
        let lines = (0..<50).map { String(repeating: Character(UnicodeScalar(UInt8(97 + $0 % 26))), count: $0 * 37) }
        let content = Array(lines.joined(separator: "\n").utf8) + [0x0A]
        #expect(text(try readLines(content, blockSize: blockSize)) == lines)
    }

    @Test("willBlock runs before each read")
    func willBlock() throws {
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        defer { close(descriptors[0]) }
        _ = "a\nb\n".withCString { write(descriptors[1], $0, 4) }
        close(descriptors[1])
        var reader = LineReader(fileDescriptor: descriptors[0])
        var reads = 0
        var lines: [String] = []
        while let line = try reader.nextLine(willBlock: { reads += 1 }) {
            lines.append(String(decoding: line, as: UTF8.self))
        }
        #expect(lines == ["a", "b"])
        #expect(reads == 2)  // one read with data, one that saw the end
    }

    @Test("a read error is an ioError naming the descriptor")
    func readError() throws {
        let descriptor = open("/tmp", O_RDONLY | O_DIRECTORY)
        #expect(descriptor >= 0)
        defer { close(descriptor) }
        var reader = LineReader(fileDescriptor: descriptor)
        #expect {
            _ = try reader.nextLine()
        } throws: { error in
            guard let error = error as? ClientError else { return false }
            return error.code == .ioError && error.systemError == EISDIR
                && error.message.contains("file descriptor \(descriptor)")
        }
    }
}
