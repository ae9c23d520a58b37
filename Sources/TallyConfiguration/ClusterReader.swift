import Yams

/// `cluster:` (see `ClusterSettings`).
extension ConfigReader {
    static let clusterKeys = ["node", "nats", "partitions", "replicas", "failover", "snapshot_interval", "metrics_listen"]
    private static let clusterExample = "cluster: { node: n1, nats: [nats://127.0.0.1:4222] }"

    func readCluster(_ node: Node, path: String) -> ClusterSettings? {
        guard sectionIsMapping(node, path: path, example: Self.clusterExample) else { return nil }
        var name: String?
        var urls: [String]?
        var settings = ClusterSettings(node: "", natsURLs: [])
        forEachEntry(of: node, path: path, known: Self.clusterKeys) { key, value, path in
            switch key {
            case "node":
                guard let text = nonEmptyText(value, path: path, example: "node: n1") else { return }
                if ClusterSettings.isValidNodeName(text) {
                    name = text
                } else {
                    report(value, path, "node must be a name of at most 64 printable ASCII characters without spaces, '.', '*' or '>', e.g. node: n1")
                }
            case "nats": urls = readNATSURLs(value, path: path)
            case "partitions":
                if let number = wholeNumber(value, path: path, range: 1...4_096, unit: "partitions", default: "64") { settings.partitions = number }
            case "replicas":
                guard let number = wholeNumber(value, path: path, range: 1...5, unit: "replicas", default: "3") else { return }
                if [1, 3, 5].contains(number) {
                    settings.replicas = number
                } else {
                    report(value, path, "replicas must be 1, 3 or 5 (a majority of them acknowledges each write), got \(number)")
                }
            case "metrics_listen":
                guard let text = nonEmptyText(value, path: path, example: "metrics_listen: 127.0.0.1:9464") else { return }
                if let problem = listenProblem(text) {
                    report(value, path, problem)
                } else {
                    settings.metricsListen = text
                }
            case "snapshot_interval":
                if let interval = duration(value, path: path, range: 1_000_000_000...86_400_000_000_000, default: "5m") {
                    settings.snapshotIntervalNanoseconds = interval
                }
            default:
                if let failover = duration(value, path: path, range: 1_000_000_000...600_000_000_000, default: "10s") {
                    settings.failoverNanoseconds = failover
                }
            }
        }
        if name == nil, !problems.contains(where: { $0.path == "\(path).node" }) {
            report(node, "\(path).node", "a cluster node needs a name unique in the cluster, e.g. node: n1")
        }
        if urls == nil, !problems.contains(where: { $0.path == "\(path).nats" }) {
            report(node, "\(path).nats", "a cluster node needs the NATS servers' URLs, e.g. nats: [nats://127.0.0.1:4222]")
        }
        guard let name, let urls else { return nil }
        settings.node = name
        settings.natsURLs = urls
        return settings
    }

    private func readNATSURLs(_ node: Node, path: String) -> [String]? {
        let example = "nats: [nats://127.0.0.1:4222]"
        let items: [Node]
        if case let .sequence(list) = node {
            items = Array(list)
        } else if node.scalar != nil, !isNull(node) {
            items = [node]
        } else {
            report(node, path, "nats must be a list of NATS server URLs, e.g. \(example)")
            return nil
        }
        guard !items.isEmpty else {
            report(node, path, "nats lists no server; name at least one, e.g. \(example)")
            return nil
        }
        var urls: [String] = []
        for (index, item) in items.enumerated() {
            let itemPath = items.count == 1 && node.scalar != nil ? path : "\(path)[\(index)]"
            guard let text = item.scalar?.string, text.hasPrefix("nats://") || text.hasPrefix("tls://"),
                  text.split(separator: "/").count >= 2, !text.contains(" ") else {
                report(item, itemPath, "expected a NATS server URL like nats://127.0.0.1:4222; found \(describe(item))")
                continue
            }
            urls.append(text)
        }
        return urls.count == items.count ? urls : nil
    }
}
