import Testing

@testable import TallyConfiguration

@Suite("cluster:")
struct ClusterConfigTests {
    private static let meters = "meters: [{ code: calls, aggregation: count }]\n"

    private static func problems(_ yaml: String) -> [ConfigProblem] {
        do {
            _ = try ConfigLoader.parse(yaml: meters + yaml, fileName: "t.yaml")
            return []
        } catch {
            return error.problems
        }
    }

    @Test("absent: single-node mode; present: the node, its servers, and defaults of 64 partitions, 3 replicas, 10 s")
    func settings() throws {
        #expect(try ConfigLoader.parse(yaml: Self.meters, fileName: "t.yaml").cluster == nil)
        let cluster = try #require(try ConfigLoader.parse(yaml: Self.meters + "cluster: { node: n1, nats: [nats://10.0.0.1:4222, tls://n2:4222] }\n",
                                                          fileName: "t.yaml").cluster)
        #expect(cluster == ClusterSettings(node: "n1", natsURLs: ["nats://10.0.0.1:4222", "tls://n2:4222"]))
        #expect(cluster.partitions == 64 && cluster.replicas == 3 && cluster.failoverNanoseconds == 10_000_000_000
                && cluster.snapshotIntervalNanoseconds == 300_000_000_000)
        let set = try #require(try ConfigLoader.parse(
            yaml: Self.meters + "cluster:\n  node: east-1\n  nats: nats://127.0.0.1:4222\n  partitions: 16\n  replicas: 1\n  failover: 2s\n  snapshot_interval: 30s\n",
            fileName: "t.yaml").cluster)
        #expect(set == ClusterSettings(node: "east-1", natsURLs: ["nats://127.0.0.1:4222"], partitions: 16, replicas: 1, failoverNanoseconds: 2_000_000_000,
                                       snapshotIntervalNanoseconds: 30_000_000_000))
    }

    @Test("every bad cluster setting is reported with its key and what to write", arguments: [
        ("cluster: { nats: [nats://a:4222] }", "cluster.node", "a cluster node needs a name"),
        ("cluster: { node: n1 }", "cluster.nats", "needs the NATS servers' URLs"),
        ("cluster: { node: 'n 1', nats: [nats://a:4222] }", "cluster.node", "without spaces, '.', '*' or '>'"),
        ("cluster: { node: a.b, nats: [nats://a:4222] }", "cluster.node", "without spaces"),
        ("cluster: { node: n1, nats: [] }", "cluster.nats", "lists no server"),
        ("cluster: { node: n1, nats: [http://a:4222] }", "cluster.nats[0]", "expected a NATS server URL like nats://127.0.0.1:4222"),
        ("cluster: { node: n1, nats: [nats://a:4222], partitions: 0 }", "cluster.partitions", "between 1 and 4096"),
        ("cluster: { node: n1, nats: [nats://a:4222], replicas: 2 }", "cluster.replicas", "must be 1, 3 or 5"),
        ("cluster: { node: n1, nats: [nats://a:4222], failover: 100ms }", "cluster.failover", "out of range"),
        ("cluster: { node: n1, nats: [nats://a:4222], snapshot_interval: 48h }", "cluster.snapshot_interval", "out of range"),
        ("cluster: { node: n1, nats: [nats://a:4222], metrics_listen: 9464 }", "cluster.metrics_listen", "has no host"),
        ("cluster: { node: n1, nats: [nats://a:4222], leader: n2 }", "cluster.leader", "unknown key"),
        ("cluster: [n1]", "cluster", "must be a mapping"),
    ])
    func badSettings(yaml: String, path: String, message: String) {
        let found = Self.problems(yaml + "\n")
        #expect(found.contains { $0.path == path && $0.message.contains(message) }, "\(found)")
    }

    @Test("sections cluster mode does not serve yet are refused in it, each with its reason, and accepted without it")
    func singleNodeOnlySections() throws {
        let sections = "http: { listen: 127.0.0.1:8080 }\nlimits: [{ id: l1, customer: c1, meter: calls, quantity: 10, action: warning }]\nalerts: { log: a.ndjson }\narchive: { interval: 1h }\n"
        _ = try ConfigLoader.parse(yaml: Self.meters + sections, fileName: "t.yaml")
        let found = Self.problems(sections + "cluster: { node: n1, nats: [nats://a:4222] }\n")
        #expect(found.map(\.path).sorted() == ["alerts.log", "archive", "http"])
        #expect(found.first { $0.path == "http" }?.message.contains("not served in cluster mode yet") == true)
        #expect(found.first { $0.path == "alerts.log" }?.message.contains("alerts go to alerts.webhooks only") == true)
        #expect(found.allSatisfy { $0.message.contains("run single-node") })
    }

    @Test("limits and webhook alerts are accepted in cluster mode")
    func limitsAndWebhooks() throws {
        let config = try ConfigLoader.parse(yaml: Self.meters + """
            limits: [{ id: l1, customer: c1, meter: calls, quantity: 10, action: warning }]
            alerts: { webhooks: [{ url: "http://127.0.0.1:9/hooks" }] }
            cluster: { node: n1, nats: [nats://a:4222] }

            """, fileName: "t.yaml")
        #expect(config.limits.count == 1 && config.alerts.webhooks.count == 1 && config.cluster != nil)
    }
}
