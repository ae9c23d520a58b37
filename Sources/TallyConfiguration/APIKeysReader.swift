import Yams

// MARK: - http.api_keys and http.portal_secret_env

extension ConfigReader {
    private static let apiKeyFields = ["name", "sha256", "scopes"]
    private static let apiKeyExample = "api_keys: [{ name: producer, sha256: \"<64 hex characters>\", scopes: [ingest] }]"

    /// `http.api_keys`: named keys with scopes, in file order. Digests are never echoed.
    func readAPIKeys(_ node: Node, path: String) -> [APIKey] {
        if isNull(node) { return [] }
        guard case let .sequence(items) = node else {
            report(node, path, "api_keys must be a list of keys, e.g. \(Self.apiKeyExample); found \(describe(node))")
            return []
        }
        var keys: [APIKey] = []
        var names = Set<String>()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard case .mapping = item else {
                report(item, itemPath, "each API key is a mapping, e.g. - { name: producer, sha256: \"<64 hex characters>\", scopes: [ingest] }; found \(describe(item))")
                continue
            }
            var name: String?
            var digest: String?
            var scopes: Set<APIScope>?
            var valid = true
            forEachEntry(of: item, path: itemPath, known: Self.apiKeyFields) { key, value, path in
                switch key {
                case "name":
                    name = nonEmptyText(value, path: path, example: "name: producer")
                    if name == nil { valid = false }
                case "sha256":
                    guard let text = value.scalar?.string, !isNull(value), text.utf8.count == 64, text.utf8.allSatisfy(isHexDigit) else {
                        report(value, path, "sha256 is not a SHA-256 digest (64 hexadecimal characters); \(Self.digestAdvice)")
                        valid = false
                        return
                    }
                    digest = text.lowercased()
                default:
                    scopes = readScopes(value, path: path)
                    if scopes == nil { valid = false }
                }
            }
            for (field, present) in [("name", item["name"] != nil), ("sha256", item["sha256"] != nil), ("scopes", item["scopes"] != nil)] where !present {
                report(item, itemPath, "this API key has no \(field); each key has name, sha256 and scopes, e.g. - { name: producer, sha256: \"<64 hex characters>\", scopes: [ingest] }")
                valid = false
            }
            guard valid, let name, let digest, let scopes else { continue }
            guard names.insert(name).inserted else {
                report(item, itemPath, "two API keys are named \"\(name)\"; give each key its own name")
                continue
            }
            keys.append(APIKey(name: name, sha256: digest, scopes: scopes))
        }
        return keys
    }

    /// `scopes: [ingest, read, admin]`: at least one, each known.
    private func readScopes(_ node: Node, path: String) -> Set<APIScope>? {
        let known = APIScope.allCases.map(\.rawValue).joined(separator: ", ")
        guard case let .sequence(items) = node, !items.isEmpty else {
            report(node, path, "scopes must be a list of at least one of \(known), e.g. scopes: [read]")
            return nil
        }
        var scopes = Set<APIScope>()
        for (index, item) in items.enumerated() {
            guard let text = item.scalar?.string, let scope = APIScope(rawValue: text) else {
                report(item, "\(path)[\(index)]", "unknown scope \(item.scalar.map { "\"\($0.string)\"" } ?? describe(item)); scopes are \(known)")
                return nil
            }
            scopes.insert(scope)
        }
        return scopes
    }

    /// `http.portal_secret_env`: the name of the environment variable with the portal signing secret.
    func readPortalSecretEnvironmentVariable(_ node: Node, path: String) -> String? {
        let example = "portal_secret_env: TALLY_PORTAL_SECRET"
        guard let text = nonEmptyText(node, path: path, example: example) else { return nil }
        guard isEnvironmentVariableName(text) else {
            report(node, path, "portal_secret_env is the name of the environment variable that holds the secret, not the "
                + "secret itself; write a name of letters, digits and _ that does not start with a digit, e.g. \(example)")
            return nil
        }
        return text
    }
}
