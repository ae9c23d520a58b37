public import Billing
import Foundation
public import HTTPAPI
import HTTPTypes
public import Hummingbird
import Limits
public import Logging
public import Metering
public import Storage
public import TallyConfiguration

/// The web dashboard (`/ui`) and the customer usage page (`/portal`), served by `tally serve
/// --http` beside the API: server-rendered HTML with inline SVG charts, no scripts, nothing from
/// another origin.
///
/// Operators sign in with an API key that has the `read` scope (or `admin`, which also allows the
/// forms: assigning a plan, adding and removing a customer's stored limits); the key is checked
/// once and a signed session cookie (``SessionSigner``) carries the sign-in for 12 hours. A
/// customer opens `/portal/{id}?token=…` with a portal token for its own id.
///
/// ```swift
/// let dashboard = Dashboard(config: config, store: store, logger: logger)
/// let server = HTTPAPIServer(config: config, store: store, writer: writer, parser: parser,
///                            host: "127.0.0.1", port: 8080, logger: logger, routeGroups: [dashboard])
/// ```
public struct Dashboard: HTTPRouteGroup {
    public let pathPrefixes = ["/ui", "/portal"]

    let config: TallyConfig
    let store: TallyStore
    let logger: Logger
    let authenticator: APIKeyAuthenticator
    let portalSecret: [UInt8]?
    let signer: SessionSigner
    /// Figures over every customer, computed in the background (``DashboardSnapshot``).
    public let snapshot: DashboardSnapshot

    /// - Parameters:
    ///   - config: the daemon's configuration (meters, plans, limits, `http` keys and portal settings).
    ///   - store: the daemon's store.
    ///   - logger: where the dashboard logs (sign-ins, changes made through its forms).
    public init(config: TallyConfig, store: TallyStore, logger: Logger) {
        self.config = config
        self.store = store
        self.logger = logger
        authenticator = APIKeyAuthenticator(config: config.http)
        portalSecret = PortalToken.secret(fromEnvironmentVariable: config.http.portalSecretEnvironmentVariable)
        signer = SessionSigner(secret: SessionSigner.secret(portalSecret: portalSecret))
        snapshot = DashboardSnapshot(config: config, store: store, logger: logger)
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/ui/assets/tally.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: DashboardStyle.css)))
        }
        router.get("/ui/sign-in") { request, _ in signInPage(request: request) }
        router.post("/ui/sign-in") { request, _ in try await signIn(request) }
        router.post("/ui/sign-out") { request, _ in try await signOut(request) }
        router.get("/ui") { request, _ in try page(request) { session in try overview(session: session) } }
        router.get("/ui/customers") { request, _ in try page(request) { session in try customerList(request, session: session) } }
        router.get("/ui/customers/:customer") { request, context in
            try page(request) { session in
                try customerPage(customer: try parameter(context, "customer"), request: request, viewer: .operator(session))
            }
        }
        router.post("/ui/customers/:customer/plan") { request, context in
            try await action(request) { session, fields in try assignPlan(customer: try parameter(context, "customer"), fields: fields, session: session, request: request) }
        }
        router.post("/ui/customers/:customer/limits") { request, context in
            try await action(request) { session, fields in try addLimit(customer: try parameter(context, "customer"), fields: fields, session: session, request: request) }
        }
        router.post("/ui/customers/:customer/limits/:limit/remove") { request, context in
            try await action(request) { session, _ in
                try removeLimit(customer: try parameter(context, "customer"), id: try parameter(context, "limit"), session: session)
            }
        }
        router.get("/ui/meters/:meter") { request, context in
            try page(request) { session in try meterPage(meter: try parameter(context, "meter"), session: session) }
        }
        router.get("/portal") { request, _ in try portalRedirect(request) }
        router.get("/portal/:customer") { request, context in try portal(customer: try parameter(context, "customer"), request: request) }
    }

    // MARK: Responses

    /// An HTML response with the dashboard's security headers.
    func html(_ text: String, status: HTTPResponse.Status = .ok, portal: Bool = false, cookies: [String] = []) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            .contentSecurityPolicy: contentSecurityPolicy(portal: portal),
            .xContentTypeOptions: "nosniff",
            .referrerPolicy: "same-origin",
        ]
        if !portal || config.http.portalFrameAncestors.isEmpty { headers[.xFrameOptions] = "DENY" }
        for cookie in cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// Only this server: no other origin's scripts, styles, images, fonts or frames; the portal
    /// may be framed by the origins of `http.portal_frame_ancestors`.
    func contentSecurityPolicy(portal: Bool) -> String {
        let ancestors = portal && !config.http.portalFrameAncestors.isEmpty ? config.http.portalFrameAncestors.joined(separator: " ") : "'none'"
        return "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors \(ancestors)"
    }

    /// 303 See Other to `location`.
    func redirect(_ location: String, cookies: [String] = []) -> Response {
        var headers: HTTPFields = [.location: location, .cacheControl: "no-store",
                                   .contentSecurityPolicy: contentSecurityPolicy(portal: false)]
        for cookie in cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        return Response(status: .seeOther, headers: headers)
    }

    /// A page saying what went wrong, with the status.
    func errorPage(_ status: HTTPResponse.Status, title: String, message: String, session: SessionSigner.Session? = nil,
                   portal: Bool = false) -> Response {
        let body = "<h1>\(escape(title))</h1><p class=\"error\" role=\"alert\">\(escape(message))</p>"
            + (portal ? "" : "<p><a href=\"/ui\">Back to the overview</a></p>")
        return html(layout(title, section: nil, session: portal ? nil : session).render(body: body), status: status, portal: portal)
    }

    func layout(_ title: String, section: String?, session: SessionSigner.Session?) -> PageLayout {
        PageLayout(title: title, section: section,
                   signedIn: session.map { ($0.keyName, signer.csrfToken(nonce: $0.nonce)) },
                   meters: config.meters.map(\.code))
    }

    func parameter(_ context: BasicRequestContext, _ key: String) throws -> String {
        guard let raw = context.parameters.get(key), let value = raw.removingPercentEncoding, !value.isEmpty,
              value.utf8.count <= EventLineParser.maxIdentifierBytes
        else { throw DashboardFailure(.badRequest, "Not a valid address", "the \(key) in the address is empty, too long or not valid percent-encoded UTF-8") }
        return value
    }

    var currentPeriod: PeriodInterval { config.billing.period.interval(containing: .now()) }

    /// Whether Tally knows the customer: usage in some period, a plan assignment, or a limit of its own.
    func isKnown(_ customer: String) throws -> Bool {
        try CustomerListing(config: config, store: store).knows(customer)
    }
}

/// A request the dashboard answers with an error page.
struct DashboardFailure: Error {
    var status: HTTPResponse.Status
    var title: String
    var message: String

    init(_ status: HTTPResponse.Status, _ title: String, _ message: String) {
        self.status = status
        self.title = title
        self.message = message
    }
}

extension HTTPField.Name {
    static let contentSecurityPolicy = HTTPField.Name("Content-Security-Policy")!
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
