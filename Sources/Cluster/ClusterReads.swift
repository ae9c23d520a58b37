import Foundation
public import NATS
public import Storage

/// A read of one customer's data that a command on another node (or machine) asks this customer's
/// owner to answer: the command's name and arguments, run by the owner against the partition's
/// live store. Sent as JSON over request/reply on `tally.read.<owner>`.
public struct ClusterReadRequest: Codable, Sendable, Hashable {
    /// The command, e.g. `usage` or `estimate`.
    public var command: String
    public var customer: String
    /// The command's arguments, without the options naming local files (`--config`, `--store`, `--socket`).
    public var arguments: [String]

    public init(command: String, customer: String, arguments: [String]) {
        self.command = command
        self.customer = customer
        self.arguments = arguments
    }
}

/// The owner's answer to a `ClusterReadRequest`: what the command prints, or its error.
public struct ClusterReadReply: Codable, Sendable, Hashable {
    /// What the command printed (standard output), when it succeeded.
    public var output: String?
    /// Why it failed: what the command would print to standard error.
    public var error: String?
    /// `unavailable` when the node does not serve the customer's partition (any more): ask the owner again.
    public var code: String?

    public static func printed(_ output: String) -> ClusterReadReply { .init(output: output, error: nil, code: nil) }
    public static func failed(_ message: String, code: String? = nil) -> ClusterReadReply { .init(output: nil, error: message, code: code) }
}

/// How a node answers reads for the partitions it serves (`ReadServer`), and how a command asks.
public enum ClusterReads {
    public static func subject(node: String) -> String { "tally.read.\(node)" }

    /// Asks `owner` to run `request` and waits for its reply.
    public static func ask(_ request: ClusterReadRequest, owner: String, connection: NATSConnection,
                           timeout: Duration = .seconds(15)) throws(ClusterError) -> ClusterReadReply {
        let payload: [UInt8]
        do {
            payload = [UInt8](try JSONEncoder().encode(request))
        } catch {
            throw ClusterError(.damaged, "cannot encode a read request: \(error)")
        }
        let reply: NATSMessage
        do {
            reply = try connection.request(subject: subject(node: owner), payload: payload, timeout: timeout)
        } catch {
            throw ClusterError(error, while: "asking node \(owner), the owner of customer \(request.customer)'s partition")
        }
        guard let decoded = try? JSONDecoder().decode(ClusterReadReply.self, from: Data(reply.payload)) else {
            throw ClusterError(.damaged, "node \(owner) answered a read with something this version does not read")
        }
        return decoded
    }
}

/// The owner's side of `ClusterReads`: requests on `tally.read.<node>` for a customer of a
/// partition this node serves are answered by `answer` with that partition's store, beside the
/// writer; others are answered `unavailable`.
public final class ReadServer: @unchecked Sendable {
    public typealias Answer = @Sendable (ClusterReadRequest, TallyStore) -> ClusterReadReply
    private let connection: NATSConnection
    private let recorder: ClusterRecorder
    private let answer: Answer
    private var subscription: NATSSubscription?

    public init(connection: NATSConnection, recorder: ClusterRecorder, answer: @escaping Answer) {
        self.connection = connection
        self.recorder = recorder
        self.answer = answer
    }

    public func start() throws(NATSError) {
        let (connection, recorder, answer) = (self.connection, self.recorder, self.answer)
        subscription = try connection.subscribe(subject: ClusterReads.subject(node: recorder.node)) { message in
            let reply: ClusterReadReply
            if let request = try? JSONDecoder().decode(ClusterReadRequest.self, from: Data(message.payload)) {
                let partition = recorder.map.partition(of: request.customer)
                reply = (try? recorder.withServedStore(partition) { answer(request, $0) }) ?? nil
                    ?? .failed("node \(recorder.node) does not serve partition \(partition) of customer \(request.customer) (any more); retry", code: "unavailable")
            } else {
                reply = .failed("node \(recorder.node) could not read the request: it is not a read request this version knows")
            }
            let bytes = (try? JSONEncoder().encode(reply)).map { [UInt8]($0) } ?? []
            try? connection.respond(to: message, payload: bytes)
        }
    }

    public func stop() {
        subscription?.cancel()
        subscription = nil
    }
}
