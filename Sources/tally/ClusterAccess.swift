import Cluster
import NATS
import TallyConfiguration

/// The NATS side of the commands that work over a cluster (`cluster status`, reads from any node,
/// `rate`): one connection to the config's NATS servers, and NATS and cluster errors turned into
/// command failures that say what could not be done.
enum ClusterAccess {
    /// Runs `body` with a connection to `cluster`'s NATS servers and its JetStream context, closed after.
    /// - Parameters:
    ///   - client: the connection's name, as the NATS servers show it.
    ///   - purpose: what NATS was needed for, ending "cannot reach NATS at … to `purpose`".
    ///   - failure: what failed, in front of a cluster error's message.
    static func run<T>(_ cluster: ClusterSettings, client: String, to purpose: String? = nil, failure: String? = nil,
                       jetStreamTimeout: Duration = .seconds(5), _ body: (NATSConnection, JetStream) throws -> T) throws -> T {
        do {
            let connection = try NATSConnection(servers: cluster.natsURLs, name: client)
            defer { connection.close() }
            return try body(connection, try connection.jetStream(timeout: jetStreamTimeout))
        } catch let error as ClusterError {
            throw CommandFailure(failure.map { "\($0): \(error.message)" } ?? error.message)
        } catch let error as NATSError {
            throw CommandFailure("cannot reach NATS at \(cluster.natsURLs.joined(separator: ", "))\(purpose.map { " to \($0)" } ?? ""): \(error.message)")
        }
    }
}
