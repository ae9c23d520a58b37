/// `alerts:`: where fired alerts go.
public struct AlertSettings: Sendable, Hashable {
    /// `alerts.log`: the append-only NDJSON alert log (default `alerts.ndjson`); nil turns it off.
    public var log: String?
    /// `alerts.webhooks`: HTTP endpoints that receive every alert.
    public var webhooks: [WebhookSettings]

    public init(log: String? = "alerts.ndjson", webhooks: [WebhookSettings] = []) {
        self.log = log
        self.webhooks = webhooks
    }
}

/// One webhook: alerts are POSTed as JSON, signed with HMAC-SHA256 when a secret is set.
public struct WebhookSettings: Sendable, Hashable {
    /// `url`: an http or https URL.
    public var url: String
    /// `secret_env`: the environment variable holding the signing secret.
    public var secretEnvironmentVariable: String?

    public init(url: String, secretEnvironmentVariable: String? = nil) {
        self.url = url
        self.secretEnvironmentVariable = secretEnvironmentVariable
    }
}

/// `http:`: the HTTP API (`tally serve --http HOST:PORT`).
public struct HTTPSettings: Sendable, Hashable {
    /// `http.listen`: `HOST:PORT`; nil serves no HTTP unless `--http` is given.
    public var listen: String?
    /// `http.api_keys_sha256`: lowercase hex SHA-256 digests of the accepted bearer keys.
    public var apiKeySHA256: [String]

    public init(listen: String? = nil, apiKeySHA256: [String] = []) {
        self.listen = listen
        self.apiKeySHA256 = apiKeySHA256
    }
}
