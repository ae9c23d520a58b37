import Foundation
import Yams
import Metering

// MARK: - Alerts

extension ConfigReader {
    private static let alertKeys = ["log", "webhooks"]
    private static let webhookKeys = ["url", "secret_env"]
    private static let httpKeys = ["listen", "api_keys_sha256", "api_keys", "portal_secret_env", "header_timeout", "body_timeout",
                                           "portal_frame_ancestors"]
    /// The shortest and longest `http.header_timeout` and `http.body_timeout`: 1 ms to 1 day.
    private static let httpTimeoutRange: ClosedRange<Int64> = 1_000_000...86_400_000_000_000
    private static let webhookExample = "url: \"https://hooks.example.com/tally\""
    private static let listenExample = "listen: 127.0.0.1:8080"
    static let digestAdvice = "list the SHA-256 digest of each key (64 hexadecimal characters), not the key "
        + "itself; printf %s \"$KEY\" | sha256sum prints it"

    /// Reads `alerts:`; an absent or empty section keeps the defaults (log `alerts.ndjson`, no webhooks).
    func readAlerts(_ node: Node, path: String) -> AlertSettings {
        var settings = AlertSettings()
        guard sectionIsMapping(node, path: path, example: "alerts: { log: alerts.ndjson }") else { return settings }
        forEachEntry(of: node, path: path, known: Self.alertKeys) { key, value, path in
            if key == "log" {
                if let log = readAlertLog(value, path: path) { settings.log = log }
            } else {
                settings.webhooks = readWebhooks(value, path: path)
            }
        }
        return settings
    }

    /// `alerts.log`: a path, or `off` (returned as `.some(nil)`); nil when invalid.
    private func readAlertLog(_ node: Node, path: String) -> String?? {
        let advice = "write the alert log's path, e.g. log: alerts.ndjson, or log: off for no alert log"
        if isNull(node) {
            report(node, path, "log has no value; \(advice)")
            return nil
        }
        guard let scalar = node.scalar else {
            report(node, path, "log must be a single value; \(advice); found \(describe(node))")
            return nil
        }
        let text = scalar.string
        if text.lowercased() == "off" { return .some(nil) }
        if text.isEmpty {
            report(node, path, "the value is empty; \(advice)")
            return nil
        }
        let switches = ["false", "no", "none", "disabled", "true", "yes", "on", "enabled"]
        if scalar.style == .plain, switches.contains(text.lowercased()) {
            report(node, path, "\"\(text)\" is taken for a switch, not a path; write log: off for no alert log, or the "
                + "log's path, e.g. log: alerts.ndjson (quote a file really named so: log: \"\(text)\")")
            return nil
        }
        return .some(text)
    }

    /// `alerts.webhooks`: the valid webhooks, in file order.
    private func readWebhooks(_ node: Node, path: String) -> [WebhookSettings] {
        let example = "webhooks: [{ \(Self.webhookExample), secret_env: TALLY_WEBHOOK_SECRET }]"
        if isNull(node) { return [] }
        guard case let .sequence(items) = node else {
            report(node, path, "webhooks must be a list of webhooks, e.g. \(example); found \(describe(node))")
            return []
        }
        var webhooks = [WebhookSettings]()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard case .mapping = item else {
                let hint = item.scalar.map { isNull(item) ? "" : " (here: - { url: \"\($0.string)\" })" } ?? ""
                report(item, itemPath, "each webhook is a mapping, e.g. - { \(Self.webhookExample), secret_env: "
                    + "TALLY_WEBHOOK_SECRET }\(hint); found \(describe(item))")
                continue
            }
            var url: String?
            var secret: String?
            var valid = true
            forEachEntry(of: item, path: itemPath, known: Self.webhookKeys) { key, value, path in
                if key == "url" {
                    url = webhookURL(value, path: path)
                    if url == nil { valid = false }
                } else {
                    secret = secretEnvironmentVariable(value, path: path)
                    if secret == nil { valid = false }
                }
            }
            if item["url"] == nil {
                report(item, itemPath, "this webhook has no url; add the address alerts are POSTed to, "
                    + "e.g. \(Self.webhookExample)")
                valid = false
            }
            guard valid, let url else { continue }
            webhooks.append(WebhookSettings(url: url, secretEnvironmentVariable: secret))
        }
        return webhooks
    }

    /// A webhook `url`: `http://` or `https://`, then a host.
    private func webhookURL(_ node: Node, path: String) -> String? {
        guard let text = nonEmptyText(node, path: path, example: Self.webhookExample) else { return nil }
        guard text.hasPrefix("http://") || text.hasPrefix("https://") else {
            let hint = text.contains("://") ? "" : " (here: url: \"https://\(text)\")"
            report(node, path, "\"\(text)\" is not an http or https URL; write it with its scheme, "
                + "e.g. \(Self.webhookExample)\(hint)")
            return nil
        }
        if text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            report(node, path, "\"\(text)\" contains a space or a control character; percent-encode it (a space is "
                + "%20), e.g. \(Self.webhookExample)")
            return nil
        }
        guard let components = URLComponents(string: text) else {
            report(node, path, "\"\(text)\" is not a valid URL; percent-encode spaces and other special characters, "
                + "e.g. \(Self.webhookExample)")
            return nil
        }
        guard let host = components.host, !host.isEmpty else {
            report(node, path, "\"\(text)\" has no host; write the server's name or address after the //, "
                + "e.g. \(Self.webhookExample)")
            return nil
        }
        if let port = components.port, !(1...65_535).contains(port) {
            report(node, path, "\"\(text)\" has the port \(port); a port is a whole number from 1 to 65535, "
                + "e.g. url: \"https://hooks.example.com:8443/tally\"")
            return nil
        }
        return text
    }

    /// A webhook `secret_env`: an environment variable name. The value is never echoed: it may be
    /// the secret itself, written here by mistake.
    private func secretEnvironmentVariable(_ node: Node, path: String) -> String? {
        let example = "secret_env: TALLY_WEBHOOK_SECRET"
        guard let text = nonEmptyText(node, path: path, example: example) else { return nil }
        guard isEnvironmentVariableName(text) else {
            report(node, path, "secret_env is the name of the environment variable that holds the signing secret, "
                + "not the secret itself; write a name of letters, digits and _ that does not start with a digit, "
                + "e.g. \(example)")
            return nil
        }
        return text
    }
}

// MARK: - HTTP

extension ConfigReader {
    /// Reads `http:`; an absent or empty section keeps the defaults (no address, no keys).
    func readHTTP(_ node: Node, path: String) -> HTTPSettings {
        var settings = HTTPSettings()
        guard sectionIsMapping(node, path: path, example: "http: { \(Self.listenExample) }") else { return settings }
        forEachEntry(of: node, path: path, known: Self.httpKeys) { key, value, path in
            if key == "listen" {
                guard let text = nonEmptyText(value, path: path, example: Self.listenExample) else { return }
                if let problem = listenProblem(text) {
                    report(value, path, problem)
                } else {
                    settings.listen = text
                }
            } else if key == "api_keys" {
                settings.apiKeys = readAPIKeys(value, path: path)
            } else if key == "portal_secret_env" {
                settings.portalSecretEnvironmentVariable = readPortalSecretEnvironmentVariable(value, path: path)
            } else if key == "portal_frame_ancestors" {
                settings.portalFrameAncestors = readFrameAncestors(value, path: path)
            } else if key == "header_timeout" {
                if let timeout = duration(value, path: path, range: Self.httpTimeoutRange, default: "10s") {
                    settings.headerTimeoutNanoseconds = timeout
                }
            } else if key == "body_timeout" {
                if let timeout = duration(value, path: path, range: Self.httpTimeoutRange, default: "30s") {
                    settings.bodyTimeoutNanoseconds = timeout
                }
            } else {
                settings.apiKeySHA256 = readAPIKeyDigests(value, path: path)
            }
        }
        return settings
    }

    /// `http.portal_frame_ancestors`: the origins that may show `/portal` pages in a frame
    /// (`https://app.example.com`, `https://*.example.com`, `'self'`), for the pages' CSP.
    private func readFrameAncestors(_ node: Node, path: String) -> [String] {
        let example = "portal_frame_ancestors: [\"https://app.example.com\"]"
        if isNull(node) { return [] }
        guard case let .sequence(items) = node else {
            report(node, path, "portal_frame_ancestors must be a list of origins, e.g. \(example)")
            return []
        }
        var origins = [String]()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let text = item.scalar?.string, !isNull(item) else {
                report(item, itemPath, "expected an origin like \"https://app.example.com\"; found \(describe(item))")
                continue
            }
            if text == "'self'" || text == "self" {
                origins.append("'self'")
                continue
            }
            let scheme = text.hasPrefix("https://") ? "https://" : text.hasPrefix("http://") ? "http://" : nil
            let host = scheme.map { String(text.dropFirst($0.count)) } ?? ""
            let allowed = host.unicodeScalars.allSatisfy { $0.properties.isAlphabetic && $0.isASCII || ("0"..."9").contains($0) || "-.:*".unicodeScalars.contains($0) }
            guard scheme != nil, !host.isEmpty, allowed, !host.hasPrefix("."), !host.hasSuffix(".") else {
                report(item, itemPath, "\"\(text)\" is not an origin: write a scheme and a host (and a port), nothing after them, e.g. \"https://app.example.com\" or \"https://*.example.com\", or 'self'")
                continue
            }
            origins.append(text)
        }
        return origins
    }

    /// `http.api_keys_sha256`: lowercase hex digests, in file order. Entries are never echoed: a
    /// wrong one may be a key written here instead of its digest.
    private func readAPIKeyDigests(_ node: Node, path: String) -> [String] {
        let example = "api_keys_sha256: [\"<64 hex characters>\"]"
        if isNull(node) { return [] }
        guard case let .sequence(items) = node else {
            let found = node.scalar == nil ? describe(node) : "a single value"
            report(node, path, "api_keys_sha256 must be a list of digests, e.g. \(example); found \(found); "
                + Self.digestAdvice)
            return []
        }
        var digests = [String]()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let text = item.scalar?.string, !isNull(item) else {
                let found = isNull(item) ? "no value" : describe(item)
                report(item, itemPath, "expected a digest; found \(found); \(Self.digestAdvice)")
                continue
            }
            guard text.utf8.count == 64, text.utf8.allSatisfy(isHexDigit) else {
                let what = text.utf8.count == 64
                    ? "has characters that are not hexadecimal (0-9, a-f)"
                    : "is \(text.count) characters long, not 64"
                report(item, itemPath, "this entry is not a SHA-256 digest: it \(what); \(Self.digestAdvice)")
                continue
            }
            digests.append(text.lowercased())
        }
        return digests
    }

    /// Why `text` is not `HOST:PORT` (IPv6 in brackets), or nil when it is.
    func listenProblem(_ text: String) -> String? {
        let shape = "write HOST:PORT, e.g. \(Self.listenExample) (0.0.0.0:8080 for every interface, [::1]:8080 for IPv6)"
        if let scheme = text.range(of: "://") {
            let address = text[scheme.upperBound...].prefix { $0 != "/" }
            return "\"\(text)\" is a URL; listen takes HOST:PORT without a scheme, e.g. listen: "
                + (address.isEmpty ? "127.0.0.1:8080" : address)
        }
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                return "\"\(text)\" opens a [ it does not close; \(shape)"
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return "\"\(text)\" has no port; write it after the ], e.g. listen: [::1]:8080" }
            port = rest.dropFirst()
            let isIPv6 = host.contains(":") && host.utf8.allSatisfy { byte in
                byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") || isHexDigit(byte)
            }
            guard isIPv6 else { return "\"\(host)\" is not an IPv6 address; brackets hold one, e.g. listen: [::1]:8080" }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                let isNumber = !text.isEmpty && text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
                return isNumber
                    ? "\"\(text)\" has no host; write the address to listen on before the port, e.g. listen: 127.0.0.1:\(text)"
                    : "\"\(text)\" has no port; \(shape)"
            }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            if host.contains(":") {
                return "\"\(text)\" looks like an IPv6 address without brackets; write it as [ADDRESS]:PORT, "
                    + "e.g. listen: [::1]:8080"
            }
            if host.isEmpty { return "\"\(text)\" has no host; \(shape)" }
            let isHostName = host.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
            }
            guard isHostName else { return "\"\(host)\" is not a host name or IP address; \(shape)" }
        }
        let isDigits = !port.isEmpty && port.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard isDigits, port.utf8.count <= 5, let number = Int(port), (1...65_535).contains(number) else {
            let found = port.isEmpty ? "no port" : "the port \"\(port)\""
            return "\"\(text)\" has \(found); a port is a whole number from 1 to 65535, e.g. \(Self.listenExample)"
        }
        return nil
    }
}

// MARK: - Helpers

/// `[A-Za-z_][A-Za-z0-9_]*`.
func isEnvironmentVariableName(_ text: String) -> Bool {
    guard let first = text.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else { return false }
    return text.utf8.allSatisfy { byte in
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
    }
}

func isHexDigit(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
        || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
}
