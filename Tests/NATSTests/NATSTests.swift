import Foundation
import NATS
import NATSTestSupport
import Testing

/// The NATS wrapper against real nats-server processes with JetStream: what the cluster mode
/// relies on (acknowledged publishes, dedup ids, fences, reads by sequence, leases by revision).
@Suite("NATS JetStream client", .serialized)
struct NATSTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("streams: created once, the same settings again is a no-op, other settings are refused; info and delete")
    func streams() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let connection = try NATSConnection(servers: servers.urls, name: "test")
        let stream = try connection.jetStream()
        let config = JetStream.StreamConfig(name: "EVENTS", subjects: ["events.*"], duplicateWindow: .seconds(60))
        let created = try eventually { try stream.addStream(config) }
        #expect(created.name == "EVENTS" && created.messages == 0)
        #expect(try stream.addStream(config).lastSequence == 0)
        var other = config
        other.subjects = ["other.*"]
        let refused = #expect(throws: NATSError.self) { try stream.addStream(other) }
        #expect(refused?.code == .streamExists)
        #expect(refused?.message.contains("delete it or use its settings") == true)
        #expect(try stream.streamInfo("NOPE") == nil)
        #expect(try stream.deleteStream("EVENTS"))
        #expect(try stream.deleteStream("EVENTS") == false)
        #expect(try stream.streamInfo("EVENTS") == nil)
    }

    @Test("publish: acknowledged with its sequence; a repeated message id is a duplicate; a fence on the subject's last sequence refuses a stale writer")
    func publish() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        try eventually { try stream.addStream(.init(name: "LOG", subjects: ["log.*"], duplicateWindow: .seconds(60))) }
        // Expecting no message on a fresh subject: stored.
        #expect(try stream.publish(subject: "log.p1", payload: Self.bytes("a"), messageID: "c1", expectedLastSubjectSequence: 0) == .stored(sequence: 1))
        // The same id again: not stored twice, whatever the payload.
        #expect(try stream.publish(subject: "log.p1", payload: Self.bytes("a again"), messageID: "c1") == .duplicate(sequence: 1))
        #expect(try stream.publish(subject: "log.p2", payload: Self.bytes("b"), messageID: "c2") == .stored(sequence: 2))
        // The writer of p1 knows its last sequence (1): its next publish goes through.
        #expect(try stream.publish(subject: "log.p1", payload: Self.bytes("c"), messageID: "c3", expectedLastSubjectSequence: 1) == .stored(sequence: 3))
        // A deposed writer that still believes 1 is the last: fenced, nothing stored.
        #expect(try stream.publish(subject: "log.p1", payload: Self.bytes("stale"), messageID: "c4", expectedLastSubjectSequence: 1) == .fenced)
        #expect(try stream.publish(subject: "log.p1", payload: Self.bytes("stale"), messageID: "c5", expectedLastSubjectSequence: 0) == .fenced)
        // p2's sequence is not p1's: the fence is per subject.
        #expect(try stream.publish(subject: "log.p2", payload: Self.bytes("d"), expectedLastSubjectSequence: 2) == .stored(sequence: 4))
        let info = try #require(try stream.streamInfo("LOG"))
        #expect(info.messages == 4 && info.lastSequence == 4)
    }

    @Test("reads: a message by sequence, a subject's messages in order from a sequence, its last one; purged messages are gone")
    func reads() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        try eventually { try stream.addStream(.init(name: "LOG", subjects: ["log.*"])) }
        for index in 1...6 {
            _ = try stream.publish(subject: index % 2 == 0 ? "log.even" : "log.odd", payload: Self.bytes("m\(index)"))
        }
        let third = try #require(try stream.message(stream: "LOG", sequence: 3))
        #expect(third.subject == "log.odd" && third.payload == Self.bytes("m3") && third.sequence == 3)
        #expect(try stream.message(stream: "LOG", sequence: 99) == nil)
        // A replay of one subject: the next message at or after a sequence, until there is none.
        var replayed: [String] = []
        var next: UInt64 = 1
        while let message = try stream.nextMessage(stream: "LOG", subject: "log.even", from: next) {
            replayed.append(String(decoding: message.payload, as: UTF8.self))
            next = message.sequence + 1
        }
        #expect(replayed == ["m2", "m4", "m6"])
        #expect(try stream.lastMessage(stream: "LOG", subject: "log.odd")?.payload == Self.bytes("m5"))
        #expect(try stream.lastMessage(stream: "LOG", subject: "log.none") == nil)
        // A bounded log: everything on log.even below 4 goes, the rest stays.
        try stream.purge(stream: "LOG", subject: "log.even", below: 4)
        #expect(try stream.message(stream: "LOG", sequence: 2) == nil)
        #expect(try stream.nextMessage(stream: "LOG", subject: "log.even", from: 1)?.sequence == 4)
        #expect(try stream.message(stream: "LOG", sequence: 1)?.payload == Self.bytes("m1"))
    }

    @Test("a message over the stream's size is refused with a clear error")
    func tooLarge() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        try eventually { try stream.addStream(.init(name: "SMALL", subjects: ["small"], maxMessageBytes: 1_024)) }
        #expect(try stream.publish(subject: "small", payload: [UInt8](repeating: 1, count: 1_000)) == .stored(sequence: 1))
        let error = #expect(throws: NATSError.self) { try stream.publish(subject: "small", payload: [UInt8](repeating: 1, count: 4_096)) }
        #expect(error?.code == .messageTooLarge)
        #expect(error?.message.contains("split the payload") == true)
    }

    @Test("key-value: create only once, update only at the revision read (a lease's compare-and-set), delete, keys")
    func keyValue() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let stream = try NATSConnection(servers: servers.urls, name: "test").jetStream()
        let leases = try eventually { try stream.keyValue(.init(bucket: "leases")) }
        guard case .written(let first) = try leases.create("p1", Self.bytes("node-a")) else {
            Issue.record("the first create must write")
            return
        }
        #expect(try leases.create("p1", Self.bytes("node-b")) == .conflict)
        #expect(try leases.get("p1") == .init(key: "p1", value: Self.bytes("node-a"), revision: first))
        guard case .written(let second) = try leases.update("p1", Self.bytes("node-a renewed"), expectedRevision: first) else {
            Issue.record("an update at the read revision must write")
            return
        }
        #expect(second > first)
        // Another node that read the old revision loses.
        #expect(try leases.update("p1", Self.bytes("node-b"), expectedRevision: first) == .conflict)
        #expect(try leases.get("p1")?.value == Self.bytes("node-a renewed"))
        try leases.put("p2", Self.bytes("x"))
        #expect(try leases.keys() == ["p1", "p2"])
        try leases.delete("p1")
        #expect(try leases.get("p1") == nil)
        #expect(try leases.keys() == ["p2"])
        if case .written = try leases.create("p1", Self.bytes("node-b")) {} else { Issue.record("a deleted key can be created again") }
        #expect(try leases.get("p1")?.value == Self.bytes("node-b"))
        // Binding again (another node starting) sees the same bucket.
        let again = try stream.keyValue(.init(bucket: "leases"))
        #expect(try again.get("p2")?.value == Self.bytes("x"))
    }

    @Test("request and reply: a responder answers; no responder and no server are clear errors")
    func requestReply() throws {
        let servers = try NATSServers(count: 1)
        defer { servers.stop() }
        let connection = try NATSConnection(servers: servers.urls, name: "test")
        let responder = try NATSConnection(servers: servers.urls, name: "responder")
        let subscription = try responder.subscribe(subject: "forward.p1", queue: "owners") { message in
            try? responder.respond(to: message, payload: Array("answered: ".utf8) + message.payload)
        }
        let reply = try connection.request(subject: "forward.p1", payload: Self.bytes("line"), timeout: .seconds(2))
        #expect(reply.payload == Self.bytes("answered: line"))
        subscription.cancel()
        let none = #expect(throws: NATSError.self) { try connection.request(subject: "forward.p1", payload: [], timeout: .seconds(1)) }
        #expect(none?.code == .noResponders || none?.code == .timeout)
        let port = try NATSServers.freePort()
        let unreachable = #expect(throws: NATSError.self) {
            try NATSConnection(servers: ["nats://127.0.0.1:\(port)"], name: "test", timeout: .milliseconds(300))
        }
        #expect(unreachable?.code == .noServer)
        #expect(unreachable?.message.contains("nats-server") == true)
        let noURL = #expect(throws: NATSError.self) { try NATSConnection(servers: [], name: "test") }
        #expect(noURL?.code == .invalidArgument)
    }

    @Test("three servers, three replicas: a publish survives one server killed (a new leader takes over); with two down there is no quorum and no acknowledgement")
    func replicatedLog() throws {
        let servers = try NATSServers(count: 3)
        defer { servers.stop() }
        let connection = try NATSConnection(servers: servers.urls, name: "test")
        let stream = try connection.jetStream(timeout: .seconds(2))
        let created = try eventually(within: 30) { try stream.addStream(.init(name: "LOG", subjects: ["log.*"], replicas: 3, duplicateWindow: .seconds(60))) }
        #expect(created.name == "LOG")
        #expect(try stream.publish(subject: "log.p1", payload: Self.bytes("before"), messageID: "e1") == .stored(sequence: 1))
        let info = try eventually(within: 15) { () throws -> JetStream.StreamInfo in
            let info = try #require(try stream.streamInfo("LOG"))
            guard info.leader != nil, info.replicas.count == 2 else { throw FixtureError("replicas not yet reported") }
            return info
        }
        // Kill the stream's leader: the two others elect one, and the log goes on with what was acknowledged.
        let leaderIndex = try #require(servers.servers.firstIndex { $0.name == info.leader })
        servers.kill(leaderIndex)
        let after = try eventually(within: 30) { try stream.publish(subject: "log.p1", payload: Self.bytes("after"), messageID: "e2") }
        #expect(after == .stored(sequence: 2))
        // A resend of an acknowledged message is still a duplicate on the new leader.
        #expect(try stream.publish(subject: "log.p1", payload: Self.bytes("before"), messageID: "e1") == .duplicate(sequence: 1))
        #expect(try stream.message(stream: "LOG", sequence: 1)?.payload == Self.bytes("before"))
        // One of two left: no majority of three, so no publish is acknowledged.
        let secondIndex = try #require(servers.servers.indices.first { $0 != leaderIndex })
        servers.kill(secondIndex)
        let refused = #expect(throws: NATSError.self) {
            for attempt in 0..<3 { _ = try stream.publish(subject: "log.p1", payload: Self.bytes("lost \(attempt)"), messageID: "x\(attempt)") }
        }
        #expect(refused?.code == .timeout || refused?.code == .noResponders || refused?.code == .failed)
        // The killed servers come back with their stores: the log is whole again, and a publish goes through.
        try servers.start(leaderIndex)
        try servers.start(secondIndex)
        // An attempt may time out here yet be stored once the quorum is back: its retry (same id)
        // is then a duplicate with that sequence, which is what makes retrying safe.
        let resumed = try eventually(within: 30) { try stream.publish(subject: "log.p1", payload: Self.bytes("resumed"), messageID: "e3") }
        let sequence: UInt64
        switch resumed {
        case .stored(let stored), .duplicate(let stored): sequence = stored
        case .fenced:
            Issue.record("no fence was asked for")
            return
        }
        #expect(sequence >= 3)
        #expect(try stream.message(stream: "LOG", sequence: sequence)?.payload == Self.bytes("resumed"))
        #expect(try stream.message(stream: "LOG", sequence: 2)?.payload == Self.bytes("after"))
    }
}
