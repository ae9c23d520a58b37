import CNATS

/// JetStream on a `NATSConnection`: streams (a replicated, ordered log of messages per subject),
/// publishes acknowledged by a quorum of servers, reads by sequence, and key-value buckets.
public final class JetStream: @unchecked Sendable {
    let connection: NATSConnection
    let handle: OpaquePointer
    let timeout: Duration

    init(connection: NATSConnection, timeout: Duration) throws(NATSError) {
        self.connection = connection
        self.timeout = timeout
        var options = jsOptions()
        try NATSCall.check(jsOptions_Init(&options), "jsOptions_Init")
        options.Wait = timeout.milliseconds
        var context: OpaquePointer?
        try NATSCall.check(natsConnection_JetStream(&context, connection.handle, &options), "natsConnection_JetStream")
        guard let context else { throw NATSError(code: .failed, operation: "natsConnection_JetStream", message: "the client returned no context") }
        handle = context
    }

    deinit { jsCtx_Destroy(handle) }

    // MARK: Streams

    /// A stream's settings.
    public struct StreamConfig: Sendable, Hashable {
        public var name: String
        /// The subjects it stores (wildcards allowed, such as `tally.events.*`).
        public var subjects: [String]
        /// On how many servers each message is stored (1, 3 or 5); a publish is acknowledged once a majority has it.
        public var replicas: Int
        /// How long the stream remembers a message id to drop a second publish with it (0: the server's default, 2 minutes).
        public var duplicateWindow: Duration
        /// The largest message it takes, in bytes (-1: the server's max_payload).
        public var maxMessageBytes: Int32
        /// In memory rather than on disk (tests; a log meant to survive a restart stays on disk).
        public var inMemory: Bool

        public init(name: String, subjects: [String], replicas: Int = 1, duplicateWindow: Duration = .zero, maxMessageBytes: Int32 = -1,
                    inMemory: Bool = false) {
            self.name = name
            self.subjects = subjects
            self.replicas = replicas
            self.duplicateWindow = duplicateWindow
            self.maxMessageBytes = maxMessageBytes
            self.inMemory = inMemory
        }
    }

    /// A stream's state, as its leader reports it.
    public struct StreamInfo: Sendable, Hashable {
        public var name: String
        public var messages: UInt64
        public var bytes: UInt64
        /// The first sequence still stored (after purges), and the last one written.
        public var firstSequence: UInt64
        public var lastSequence: UInt64
        /// The server that leads the stream's replication group (nil for a stream on one server outside a cluster).
        public var leader: String?
        /// The other servers holding it: name, whether it is current, and how many operations it lags.
        public var replicas: [Replica]

        public struct Replica: Sendable, Hashable {
            public var name: String
            public var isCurrent: Bool
            public var isOffline: Bool
            public var lag: UInt64
        }
    }

    /// Creates the stream, or returns it when it exists with these settings; `.streamExists` when
    /// it exists with others.
    @discardableResult
    public func addStream(_ config: StreamConfig) throws(NATSError) -> StreamInfo {
        var settings = jsStreamConfig()
        try NATSCall.check(jsStreamConfig_Init(&settings), "jsStreamConfig_Init")
        return try withCStrings(config.subjects) { (subjects, count) throws(NATSError) -> StreamInfo in
            try withCString(config.name) { (name) throws(NATSError) -> StreamInfo in
                settings.Name = name
                settings.Subjects = subjects
                settings.SubjectsLen = Int32(count)
                settings.Replicas = Int64(config.replicas)
                settings.Storage = config.inMemory ? js_MemoryStorage : js_FileStorage
                settings.Duplicates = config.duplicateWindow.nanoseconds
                settings.MaxMsgSize = config.maxMessageBytes
                settings.AllowDirect = true
                var info: UnsafeMutablePointer<jsStreamInfo>?
                var jetStreamCode = jsErrCode(rawValue: 0)
                try NATSCall.check(js_AddStream(&info, handle, &settings, nil, &jetStreamCode), "js_AddStream", jetStream: jetStreamCode)
                defer { jsStreamInfo_Destroy(info) }
                return Self.streamInfo(info, name: config.name)
            }
        }
    }

    /// The stream's state; nil when there is no such stream.
    public func streamInfo(_ name: String) throws(NATSError) -> StreamInfo? {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var jetStreamCode = jsErrCode(rawValue: 0)
        let status = js_GetStreamInfo(&info, handle, name, nil, &jetStreamCode)
        if status == NATS_NOT_FOUND || Int(jetStreamCode.rawValue) == JetStreamCode.streamNotFound { return nil }
        try NATSCall.check(status, "js_GetStreamInfo", jetStream: jetStreamCode)
        defer { jsStreamInfo_Destroy(info) }
        return Self.streamInfo(info, name: name)
    }

    /// The subjects of `stream` matching `filter` (such as `$KV.bucket.>`) that hold messages, with
    /// how many each holds: one request to the stream's leader, no consumer.
    public func subjects(stream: String, filter: String) throws(NATSError) -> [String: UInt64] {
        var options = jsOptions()
        try NATSCall.check(jsOptions_Init(&options), "jsOptions_Init")
        options.Wait = timeout.milliseconds
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var jetStreamCode = jsErrCode(rawValue: 0)
        let status = try withCString(filter) { (filter) throws(NATSError) -> natsStatus in
            options.Stream.Info.SubjectsFilter = filter
            return js_GetStreamInfo(&info, handle, stream, &options, &jetStreamCode)
        }
        if status == NATS_NOT_FOUND || Int(jetStreamCode.rawValue) == JetStreamCode.streamNotFound { return [:] }
        try NATSCall.check(status, "js_GetStreamInfo", jetStream: jetStreamCode)
        defer { jsStreamInfo_Destroy(info) }
        var subjects: [String: UInt64] = [:]
        if let list = info?.pointee.State.Subjects, let entries = list.pointee.List {
            for index in 0..<Int(list.pointee.Count) {
                if let subject = entries[index].Subject { subjects[String(cString: subject)] = entries[index].Msgs }
            }
        }
        return subjects
    }

    /// Deletes the stream and every message in it; false when there was none.
    @discardableResult
    public func deleteStream(_ name: String) throws(NATSError) -> Bool {
        var jetStreamCode = jsErrCode(rawValue: 0)
        let status = js_DeleteStream(handle, name, nil, &jetStreamCode)
        if status == NATS_NOT_FOUND || Int(jetStreamCode.rawValue) == JetStreamCode.streamNotFound { return false }
        try NATSCall.check(status, "js_DeleteStream", jetStream: jetStreamCode)
        return true
    }

    /// Removes the messages on `subject` (every subject: nil) below `sequence`: what a log keeps
    /// after a snapshot covers its head.
    public func purge(stream: String, subject: String? = nil, below sequence: UInt64) throws(NATSError) {
        var options = jsOptions()
        try NATSCall.check(jsOptions_Init(&options), "jsOptions_Init")
        options.Wait = timeout.milliseconds
        options.Stream.Purge.Sequence = sequence
        var jetStreamCode = jsErrCode(rawValue: 0)
        let status: natsStatus
        if let subject {
            status = subject.withCString { subject in
                options.Stream.Purge.Subject = subject
                return js_PurgeStream(handle, stream, &options, &jetStreamCode)
            }
        } else {
            status = js_PurgeStream(handle, stream, &options, &jetStreamCode)
        }
        try NATSCall.check(status, "js_PurgeStream", jetStream: jetStreamCode)
    }

    private static func streamInfo(_ info: UnsafeMutablePointer<jsStreamInfo>?, name: String) -> StreamInfo {
        guard let info else { return StreamInfo(name: name, messages: 0, bytes: 0, firstSequence: 0, lastSequence: 0, leader: nil, replicas: []) }
        let state = info.pointee.State
        var leader: String?
        var replicas: [StreamInfo.Replica] = []
        if let cluster = info.pointee.Cluster {
            leader = cluster.pointee.Leader.map { String(cString: $0) }
            for index in 0..<Int(cluster.pointee.ReplicasLen) {
                guard let peer = cluster.pointee.Replicas?[index] else { continue }
                replicas.append(.init(name: peer.pointee.Name.map { String(cString: $0) } ?? "", isCurrent: peer.pointee.Current,
                                      isOffline: peer.pointee.Offline, lag: peer.pointee.Lag))
            }
        }
        return StreamInfo(name: name, messages: state.Msgs, bytes: state.Bytes, firstSequence: state.FirstSeq, lastSequence: state.LastSeq,
                          leader: leader, replicas: replicas)
    }

    // MARK: Publishing

    /// What a publish came to.
    public enum PublishOutcome: Sendable, Hashable {
        /// Stored at this stream sequence, on a majority of the stream's servers.
        case stored(sequence: UInt64)
        /// The stream had a message with this id inside its duplicate window: not stored again
        /// (the sequence is the first one's).
        case duplicate(sequence: UInt64)
        /// `expectedLastSubjectSequence` was not the subject's last sequence: someone else wrote
        /// to the subject since (a fence: the caller is no longer its only writer). Not stored.
        case fenced
    }

    /// Publishes `payload` on `subject` and waits for the stream's acknowledgement.
    /// - Parameters:
    ///   - messageID: the `Nats-Msg-Id` the stream deduplicates on, inside its duplicate window.
    ///   - expectedLastSubjectSequence: store only if the subject's last message has this sequence
    ///     (0: only if the subject has none); nil: no condition.
    public func publish(subject: String, payload: [UInt8], messageID: String? = nil, expectedLastSubjectSequence: UInt64? = nil)
        throws(NATSError) -> PublishOutcome {
        var options = jsPubOptions()
        try NATSCall.check(jsPubOptions_Init(&options), "jsPubOptions_Init")
        options.MaxWait = timeout.milliseconds
        if let expected = expectedLastSubjectSequence {
            if expected == 0 { options.ExpectNoMessage = true } else { options.ExpectLastSubjectSeq = expected }
        }
        var ack: UnsafeMutablePointer<jsPubAck>?
        var jetStreamCode = jsErrCode(rawValue: 0)
        let status: natsStatus = payload.withUnsafeBytes { bytes in
            func send(_ options: inout jsPubOptions) -> natsStatus {
                js_Publish(&ack, handle, subject, bytes.baseAddress, Int32(bytes.count), &options, &jetStreamCode)
            }
            guard let messageID else { return send(&options) }
            return messageID.withCString { id in
                options.MsgId = id
                return send(&options)
            }
        }
        defer { jsPubAck_Destroy(ack) }
        if Int(jetStreamCode.rawValue) == JetStreamCode.wrongLastSequence { return .fenced }
        try NATSCall.check(status, "js_Publish", jetStream: jetStreamCode)
        guard let ack else { throw NATSError(code: .failed, operation: "js_Publish", message: "the stream sent no acknowledgement") }
        return ack.pointee.Duplicate ? .duplicate(sequence: ack.pointee.Sequence) : .stored(sequence: ack.pointee.Sequence)
    }

    // MARK: Reading

    /// The message stored at `sequence` in `stream`; nil when there is none (never written, or purged).
    public func message(stream: String, sequence: UInt64) throws(NATSError) -> NATSMessage? {
        var options = jsDirectGetMsgOptions()
        try NATSCall.check(jsDirectGetMsgOptions_Init(&options), "jsDirectGetMsgOptions_Init")
        options.Sequence = sequence
        return try directGet(stream: stream, &options)
    }

    /// The first message on `subject` at or after `sequence`; nil when there is none yet. Walks a
    /// subject's messages in order (a replay), one request each.
    public func nextMessage(stream: String, subject: String, from sequence: UInt64) throws(NATSError) -> NATSMessage? {
        var options = jsDirectGetMsgOptions()
        try NATSCall.check(jsDirectGetMsgOptions_Init(&options), "jsDirectGetMsgOptions_Init")
        options.Sequence = max(sequence, 1)
        return try withCString(subject) { (subject) throws(NATSError) -> NATSMessage? in
            options.NextBySubject = subject
            return try directGet(stream: stream, &options)
        }
    }

    /// The last message on `subject`; nil when the subject has none.
    public func lastMessage(stream: String, subject: String) throws(NATSError) -> NATSMessage? {
        var options = jsDirectGetMsgOptions()
        try NATSCall.check(jsDirectGetMsgOptions_Init(&options), "jsDirectGetMsgOptions_Init")
        return try withCString(subject) { (subject) throws(NATSError) -> NATSMessage? in
            options.LastBySubject = subject
            return try directGet(stream: stream, &options)
        }
    }

    private func directGet(stream: String, _ options: inout jsDirectGetMsgOptions) throws(NATSError) -> NATSMessage? {
        var message: OpaquePointer?
        let status = js_DirectGetMsg(&message, handle, stream, nil, &options)
        if status == NATS_NOT_FOUND { return nil }
        try NATSCall.check(status, "js_DirectGetMsg")
        guard let message else { return nil }
        defer { natsMsg_Destroy(message) }
        func header(_ name: String) -> String? {
            var value: UnsafePointer<CChar>?
            return natsMsgHeader_Get(message, name, &value) == NATS_OK ? value.map { String(cString: $0) } : nil
        }
        var copied = NATSMessage(message, sequence: header("Nats-Sequence").flatMap { UInt64($0) } ?? 0)
        // A direct get's own subject is the reply inbox: the stored subject is a header.
        if let subject = header("Nats-Subject") { copied.subject = subject }
        copied.messageID = header("Nats-Msg-Id")
        copied.replySubject = nil
        return copied
    }
}

extension Duration {
    /// Whole nanoseconds, as JetStream's settings take durations.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
