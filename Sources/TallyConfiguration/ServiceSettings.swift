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
    /// `http.api_keys_sha256`: lowercase hex SHA-256 digests of the accepted bearer keys (full access).
    public var apiKeySHA256: [String]
    /// `http.api_keys`: named keys with their scopes.
    public var apiKeys: [APIKey]
    /// `http.portal_secret_env`: the environment variable holding the secret that signs customer
    /// portal tokens; nil: no portal tokens.
    public var portalSecretEnvironmentVariable: String?
    /// `http.header_timeout`: how long a connection may take to send a request's head (request
    /// line and headers), counted from when it connects or its previous response was sent; past
    /// it the server answers 408 and closes the connection (default 10 s).
    public var headerTimeoutNanoseconds: Int64
    /// `http.body_timeout`: how long a request may take to send its body once its head is in;
    /// past it the server answers 408 and closes the connection (default 30 s).
    public var bodyTimeoutNanoseconds: Int64
    /// `http.portal_frame_ancestors`: the origins allowed to embed `/portal` pages in a frame (the
    /// pages' CSP `frame-ancestors`); empty: none may.
    public var portalFrameAncestors: [String] = []

    /// The default `http.header_timeout`: 10 s.
    public static let defaultHeaderTimeoutNanoseconds: Int64 = 10_000_000_000
    /// The default `http.body_timeout`: 30 s.
    public static let defaultBodyTimeoutNanoseconds: Int64 = 30_000_000_000

    public init(listen: String? = nil, apiKeySHA256: [String] = [], apiKeys: [APIKey] = [],
                portalSecretEnvironmentVariable: String? = nil,
                headerTimeoutNanoseconds: Int64 = HTTPSettings.defaultHeaderTimeoutNanoseconds,
                bodyTimeoutNanoseconds: Int64 = HTTPSettings.defaultBodyTimeoutNanoseconds) {
        self.listen = listen
        self.apiKeySHA256 = apiKeySHA256
        self.apiKeys = apiKeys
        self.portalSecretEnvironmentVariable = portalSecretEnvironmentVariable
        self.headerTimeoutNanoseconds = headerTimeoutNanoseconds
        self.bodyTimeoutNanoseconds = bodyTimeoutNanoseconds
    }
}

/// What an API key may do.
public enum APIScope: String, Sendable, Hashable, CaseIterable {
    /// `POST /v1/events` only.
    case ingest
    /// Every `GET`.
    case read
    /// Everything.
    case admin
}

/// One entry of `http.api_keys`: `{ name: producer, sha256: "<64 hex>", scopes: [ingest] }`.
public struct APIKey: Sendable, Hashable {
    /// A name for logs and error messages (never the key).
    public var name: String
    /// The lowercase hex SHA-256 of the key.
    public var sha256: String
    public var scopes: Set<APIScope>

    public init(name: String, sha256: String, scopes: Set<APIScope>) {
        self.name = name
        self.sha256 = sha256
        self.scopes = scopes
    }
}
