import HTTPAPI
import Hummingbird
import Metering
import TallyConfiguration

/// Signing in and out, and the checks every page and form goes through.
extension Dashboard {
    /// The signed-in session of a request: a valid cookie whose key is still configured with the
    /// scope the session was given.
    func session(of request: Request) -> SessionSigner.Session? {
        guard let value = cookies(request.headers[.cookie])[SessionSigner.cookieName],
              let session = signer.session(fromCookie: value, now: .now())
        else { return nil }
        let scopes = authenticator.entries.filter { $0.name == session.keyName }.map(\.scopes)
        let stillAllowed = scopes.contains { session.admin ? $0.contains(.admin) : ($0.contains(.read) || $0.contains(.admin)) }
        return stillAllowed ? session : nil
    }

    /// A signed-in page: to the sign-in form without a session; an error page for a failure.
    func page(_ request: Request, _ body: (SessionSigner.Session) throws -> Response) throws -> Response {
        guard let session = session(of: request) else {
            let next = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            return redirect("/ui/sign-in?next=\(percentEncoded(next))")
        }
        do {
            return try body(session)
        } catch let failure as DashboardFailure {
            return errorPage(failure.status, title: failure.title, message: failure.message, session: session)
        }
    }

    /// A form post: a session with the admin scope and the session's CSRF token, or 403.
    func action(_ request: Request, _ body: (SessionSigner.Session, [String: String]) throws -> Response) async throws -> Response {
        let fields = try await readForm(request, upTo: 64 * 1024)
        guard let session = session(of: request) else {
            return errorPage(.unauthorized, title: "Signed out", message: "your session has ended: sign in again, then repeat the change")
        }
        guard signer.checkCSRF(fields["csrf"], nonce: session.nonce) else {
            logger.warning("dashboard form refused: missing or wrong CSRF token", metadata: ["path": "\(request.uri.path)", "key": "\(session.keyName)"])
            return errorPage(.forbidden, title: "Form refused",
                             message: "the form's security token is missing or wrong (was it sent from another site?): reload the page and try again",
                             session: session)
        }
        guard session.admin else {
            return errorPage(.forbidden, title: "Not allowed",
                             message: "the key \"\(session.keyName)\" may only read; sign in with a key that has the admin scope to make changes",
                             session: session)
        }
        do {
            return try body(session, fields)
        } catch let failure as DashboardFailure {
            return errorPage(failure.status, title: failure.title, message: failure.message, session: session)
        }
    }

    /// `GET /ui/sign-in`: the form, and a fresh sign-in cookie its token is bound to.
    func signInPage(request: Request, status: HTTPResponse.Status = .ok, error: String? = nil) -> Response {
        let nonce = SessionSigner.nonce()
        let next = safeNext(request.uri.queryParameters["next"].map(String.init))
        var body = "<section class=\"sign-in\"><h1>Sign in to Tally</h1>"
        if authenticator.entries.isEmpty {
            body += "<p class=\"error\" role=\"alert\">No API keys are configured: add one to http.api_keys (with the read or admin scope) in the config and restart.</p>"
        }
        if let error { body += "<p class=\"error\" role=\"alert\">\(escape(error))</p>" }
        body += """
        <form id="sign-in" method="post" action="/ui/sign-in">
        <input type="hidden" name="csrf" value="\(escape(signer.csrfToken(nonce: nonce)))">
        <input type="hidden" name="next" value="\(escape(next))">
        <label for="key">API key (read or admin scope)</label>
        <input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
        <button type="submit">Sign in</button>
        </form>
        <p class="hint">The key is checked against the SHA-256 digests in the config and is never stored; the session lasts 12 hours.</p>
        </section>
        """
        let cookie = "\(SessionSigner.signInCookieName)=\(signer.signInCookieValue(nonce: nonce, now: .now())); Path=/ui; Max-Age=\(SessionSigner.signInLifetimeSeconds); HttpOnly; SameSite=Strict"
        return html(PageLayout(title: "Sign in", section: nil, signedIn: nil).render(body: body), status: status, cookies: [cookie])
    }

    /// `POST /ui/sign-in`: a key with the read or admin scope starts a session.
    func signIn(_ request: Request) async throws -> Response {
        let fields = try await readForm(request, upTo: 16 * 1024)
        let retry = Request(head: HTTPRequest(method: .get, scheme: nil, authority: nil,
                                              path: "/ui/sign-in?next=\(percentEncoded(safeNext(fields["next"])))"),
                            body: .init(buffer: ByteBuffer()))
        guard let cookie = cookies(request.headers[.cookie])[SessionSigner.signInCookieName],
              let nonce = signer.signInNonce(fromCookie: cookie, now: .now()), signer.checkCSRF(fields["csrf"], nonce: nonce)
        else {
            return signInPage(request: retry, status: .forbidden, error: "The sign-in form expired or did not come from this server: enter the key again.")
        }
        guard let key = fields["key"]?.trimmingCharacters(in: .whitespaces), !key.isEmpty, let entry = authenticator.match(key: key) else {
            logger.notice("dashboard sign-in refused: unknown key")
            return signInPage(request: retry, status: .unauthorized, error: "That key is not valid: its SHA-256 is not in http.api_keys or http.api_keys_sha256.")
        }
        let admin = entry.scopes.contains(.admin)
        guard admin || entry.scopes.contains(.read) else {
            return signInPage(request: retry, status: .forbidden, error: "The key \"\(entry.name)\" has only the ingest scope: sign in with a key that has read or admin.")
        }
        let session = signer.newSession(keyName: entry.name, admin: admin, now: .now())
        logger.info("dashboard sign-in", metadata: ["key": "\(entry.name)", "admin": "\(admin)"])
        return redirect(safeNext(fields["next"]), cookies: [
            "\(SessionSigner.cookieName)=\(signer.cookieValue(session)); Path=/; Max-Age=\(SessionSigner.lifetimeSeconds); HttpOnly; SameSite=Strict",
            "\(SessionSigner.signInCookieName)=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict",
        ])
    }

    /// `POST /ui/sign-out`: ends the session (with its form token).
    func signOut(_ request: Request) async throws -> Response {
        let fields = try await readForm(request, upTo: 16 * 1024)
        if let session = session(of: request), !signer.checkCSRF(fields["csrf"], nonce: session.nonce) {
            return errorPage(.forbidden, title: "Form refused", message: "the form's security token is missing or wrong: reload the page and try again", session: session)
        }
        return redirect("/ui/sign-in", cookies: ["\(SessionSigner.cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"])
    }

    /// The fields of a form post's body (at most `limit` bytes).
    func readForm(_ request: Request, upTo limit: Int) async throws -> [String: String] {
        var request = request
        let bytes = try await request.collectBody(upTo: limit)
        return formFields(Array(bytes.readableBytesView))
    }

    /// Where to go after signing in: a path of the dashboard, never another site.
    func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/ui"), !next.hasPrefix("//"), !next.contains("\\"),
              !next.unicodeScalars.contains(where: { $0.value < 0x20 })
        else { return "/ui" }
        return next
    }
}
