import Foundation
import Testing

/// The dashboard (`/ui`) and the portal (`/portal`) through the real daemon's HTTP server: sign-in
/// and sessions, CSRF, scopes, the numbers on the pages against `tally estimate`, the forms, the
/// portal's one customer, the security headers. The real browser check is scripts/browser-check.sh.
@Suite("Dashboard through the daemon")
struct DashboardDaemonTests {
    static let adminKey = "dash-admin-key"
    static let readKey = "dash-read-key"
    static let ingestKey = "dash-ingest-key"
    static let secretVariable = "TALLY_DASHBOARD_TEST_PORTAL_SECRET"

    static let config = DaemonHarness.defaultConfig + """

        plans:
          - code: starter
            currency: USD
            prices:
              - { meter: api_calls, model: per_unit, unit_amount: "0.10" }
          - code: pro
            currency: EUR
            prices:
              - { meter: api_calls, model: per_unit, unit_amount: "0.25" }
        default_plan: starter
        http:
          api_keys:
            - { name: operator, sha256: "28079b76acf7d3b6c0b737099ed0c8469c41f0ed30e855f97b44443bdd1b0831", scopes: [admin] }
            - { name: viewer, sha256: "29d1ab5238367a8bd6d155acf287d791e7416a1d1cab641378eb660807effe9b", scopes: [read] }
            - { name: producer, sha256: "92f96b8f641a4bbfdbc79c38e974afd166f8b2fde1e1eea35ce7efc35d0bc43b", scopes: [ingest] }
          portal_secret_env: \(secretVariable)
          portal_frame_ancestors: ["https://app.example.com"]
        """

    /// A daemon with HTTP and the dashboard, fed with 7 api_calls for cus_a and 2 for cus_b.
    private static func daemon() throws -> (DaemonHarness, Int) {
        let daemon = try DaemonHarness(config: config)
        let port = try freePort()
        try daemon.start(extraArguments: ["--http", "127.0.0.1:\(port)"], environment: [secretVariable: "dashboard-test-secret"])
        guard daemon.waitForHTTP(port: port) == 200 else { throw HarnessError("no HTTP:\n\(daemon.log())") }
        let lines = (0..<7).map { eventLine(id: "a-\($0)", customer: "cus_a") + "\n" }.joined()
            + (0..<2).map { eventLine(id: "b-\($0)", customer: "cus_b") + "\n" }.joined()
        #expect(try daemon.exchange(lines).allSatisfy { $0 == acceptedLine })
        return (daemon, port)
    }

    @Test("sign-in: the form's token, wrong and ingest-only keys refused, a session cookie for a read key")
    func signIn() throws {
        let (daemon, port) = try Self.daemon()
        let anonymous = try httpRawExchange(port: port, method: "GET", path: "/ui/customers?query=cus")
        #expect(anonymous.status == 303)
        #expect(anonymous.head.contains("location: /ui/sign-in?next=%2Fui%2Fcustomers%3Fquery%3Dcus") || anonymous.head.contains("Location: /ui/sign-in?next=%2Fui%2Fcustomers%3Fquery%3Dcus"))

        let form = try SignInForm(port: port)
        let wrong = try form.submit(key: "not-a-key")
        #expect(wrong.status == 401)
        #expect(wrong.body.contains("class=\"error\"") && wrong.body.contains("That key is not valid"))
        #expect(Self.cookie(SessionCookie.name, in: wrong.head) == nil)
        let ingestOnly = try SignInForm(port: port).submit(key: Self.ingestKey)
        #expect(ingestOnly.status == 403 && ingestOnly.body.contains("only the ingest scope"))
        let noToken = try httpRawExchange(port: port, method: "POST", path: "/ui/sign-in", body: "key=\(Self.readKey)",
                                          contentType: "application/x-www-form-urlencoded", headers: ["Cookie: \(form.cookie)"])
        #expect(noToken.status == 403, "a sign-in without the form's token")

        let signedIn = try SignInForm(port: port).submit(key: Self.readKey, next: "/ui/customers")
        #expect(signedIn.status == 303)
        #expect(signedIn.head.contains("ocation: /ui/customers"))
        let setCookie = try #require(signedIn.head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie: tally_session=") })
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Max-Age=43200"))
        // `next` never leaves the dashboard.
        let away = try SignInForm(port: port).submit(key: Self.readKey, next: "https://evil.example/ui")
        #expect(away.head.contains("ocation: /ui\r\n"))
        #expect(daemon.terminate() == 0)
    }

    @Test("pages carry the security headers; the overview counts what ingest answered; a changed cookie is no session")
    func overviewAndHeaders() throws {
        let (daemon, port) = try Self.daemon()
        // A resent event is a duplicate: counted as one in the overview.
        #expect(try daemon.exchange(eventLine(id: "a-0", customer: "cus_a") + "\n") == [duplicateLine])
        let session = try SignInForm(port: port).signIn(key: Self.readKey)
        let overview = try session.get("/ui")
        #expect(overview.status == 200)
        #expect(overview.head.contains("Content-Security-Policy: default-src 'self'; script-src 'none'"))
        #expect(overview.head.contains("frame-ancestors 'none'") && overview.head.contains("X-Frame-Options: DENY"))
        #expect(Self.text(of: "accepted", in: overview.body) == "9")
        #expect(Self.text(of: "duplicates", in: overview.body) == "1")
        #expect(Self.text(of: "rejected", in: overview.body) == "0")
        #expect(overview.body.components(separatedBy: "<rect class=\"bar\"").count - 1 == 48)
        #expect(!overview.body.contains("<script"))
        // The snapshot is taken in the background: the top customers appear within a few reloads.
        var top = ""
        for _ in 0..<100 where !top.contains("data-customer=\"cus_a\"") {
            usleep(100_000)
            top = try session.get("/ui").body
        }
        #expect(top.contains("<tr data-customer=\"cus_a\">"))
        #expect(Self.text(of: "customers-with-usage", in: top) == "2")
        let css = try httpRawExchange(port: port, method: "GET", path: "/ui/assets/tally.css")
        #expect(css.status == 200 && css.head.contains("text/css"))

        var tampered = session
        tampered.cookie = String(session.cookie.dropLast(2)) + (session.cookie.hasSuffix("AA") ? "BB" : "AA")
        #expect(try tampered.get("/ui").status == 303)
        #expect(try session.get("/ui/customers/nobody").status == 404)
        #expect(try session.get("/ui/meters/nothing").status == 404)
        #expect(try session.get("/ui/meters/api_calls").status == 200)
        // The API still wants its bearer key.
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers").status == 401)
        #expect(daemon.terminate() == 0)
    }

    @Test("the customer page shows what tally estimate says; forms need admin and the CSRF token; assigning a plan re-rates")
    func customerPageAndForms() throws {
        let (daemon, port) = try Self.daemon()
        let estimate = try daemon.tally(["estimate", "--customer", "cus_a", "--config", daemon.configPath, "--store", daemon.storePath, "--json"])
        let estimateJSON = try #require(try JSONSerialization.jsonObject(with: Data(estimate.output.utf8)) as? [String: Any])
        let reader = try SignInForm(port: port).signIn(key: Self.readKey)
        let page = try reader.get("/ui/customers/cus_a")
        #expect(page.status == 200)
        #expect(Self.attribute("data-amount", ofID: "total", in: page.body) == estimateJSON["total"] as? String)
        #expect(Self.attribute("data-amount", ofID: "total", in: page.body) == "0.70")
        #expect(page.body.contains(">$0.70<"))
        #expect(page.body.contains("data-meter=\"api_calls\"") && page.body.contains("data-quantity=\"7\""))
        #expect(!page.body.contains("id=\"assign-plan\""), "a read session sees no forms")
        // A read session may not change anything, even with its token.
        let readCSRF = try #require(Self.csrf(in: page.body))
        #expect(try reader.post("/ui/customers/cus_a/plan", "plan=pro&csrf=\(readCSRF)").status == 403)

        let admin = try SignInForm(port: port).signIn(key: Self.adminKey)
        let adminPage = try admin.get("/ui/customers/cus_a?chart=hourly")
        #expect(adminPage.body.contains("id=\"assign-plan\"") && adminPage.body.contains("id=\"add-limit\""))
        #expect(adminPage.body.components(separatedBy: "<rect class=\"bar\"").count - 1 == 168 * 6, "168 hours for each of six meters")
        let csrf = try #require(Self.csrf(in: adminPage.body))
        #expect(try admin.post("/ui/customers/cus_a/plan", "plan=pro").status == 403, "no CSRF token")
        #expect(try admin.post("/ui/customers/cus_a/plan", "plan=pro&csrf=\(readCSRF)").status == 403, "another session's token")
        let unknownPlan = try admin.post("/ui/customers/cus_a/plan", "plan=gold&csrf=\(csrf)")
        #expect(unknownPlan.status == 422 && unknownPlan.body.contains("No plan &quot;gold&quot;"))
        let assigned = try admin.post("/ui/customers/cus_a/plan", "plan=pro&csrf=\(csrf)")
        #expect(assigned.status == 303 && assigned.head.contains("ocation: /ui/customers/cus_a?done=plan"))
        let after = try admin.get("/ui/customers/cus_a?done=plan")
        #expect(Self.text(of: "plan", in: after.body) == "pro")
        #expect(Self.attribute("data-amount", ofID: "total", in: after.body) == "1.75")
        #expect(after.body.contains(">€1.75<") && after.body.contains("Plan assigned."))
        let rerated = try daemon.tally(["estimate", "--customer", "cus_a", "--config", daemon.configPath, "--store", daemon.storePath, "--json"])
        #expect(rerated.output.contains("\"total\":\"1.75\""))

        // Limits: a bad value is refused with the reason, a good one is stored and shown, then removed.
        let bad = try admin.post("/ui/customers/cus_a/limits", "target=api_calls&value=-3&action=warning&csrf=\(csrf)")
        #expect(bad.status == 422 && bad.body.contains("must be above 0"))
        let added = try admin.post("/ui/customers/cus_a/limits", "target=api_calls&value=10&action=disable&notify_at=50%2C+100&id=cap&csrf=\(csrf)")
        #expect(added.status == 303)
        let withLimit = try admin.get("/ui/customers/cus_a")
        #expect(withLimit.body.contains("<meter class=\"limit\" data-limit=\"cap\" min=\"0\" max=\"10\" value=\"7\""))
        #expect(withLimit.body.contains("<li class=\"passed\">50 % reached</li><li>100 %</li>"))
        #expect(try daemon.tally(["limits", "list", "--store", daemon.storePath, "--config", daemon.configPath]).output.contains("cap"))
        let twice = try admin.post("/ui/customers/cus_a/limits", "target=api_calls&value=10&action=disable&id=cap&csrf=\(csrf)")
        #expect(twice.status == 422 && twice.body.contains("already exists"))
        #expect(try admin.post("/ui/customers/cus_a/limits/cap/remove", "csrf=\(csrf)").status == 303)
        #expect(try admin.post("/ui/customers/cus_a/limits/cap/remove", "csrf=\(csrf)").status == 404)
        #expect(!(try admin.get("/ui/customers/cus_a").body.contains("data-limit=\"cap\"")))

        // The list: plan, amount and projected of each customer.
        let list = try admin.get("/ui/customers?query=cus_")
        #expect(list.body.contains("<tr data-customer=\"cus_a\">") && list.body.contains("<tr data-customer=\"cus_b\">"))
        #expect(list.body.contains("<td class=\"plan\">pro</td>") && list.body.contains("data-amount=\"1.75\""))
        #expect(!(try admin.get("/ui/customers?query=cus_b").body.contains("data-customer=\"cus_a\"")))
        #expect(try admin.get("/ui/customers?cursor=zz").status == 400)
        #expect(daemon.terminate() == 0)
    }

    @Test("a portal token opens its own customer's page and no other; no forms; framed only where configured")
    func portal() throws {
        let (daemon, port) = try Self.daemon()
        let minted = try httpRequest(port: port, method: "POST", path: "/v1/customers/cus_a/portal_tokens", key: Self.adminKey)
        #expect(minted.status == 201)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(minted.body.utf8)) as? [String: Any])
        let token = try #require(object["token"] as? String)
        let own = try httpRawExchange(port: port, method: "GET", path: "/portal/cus_a?token=\(token)")
        #expect(own.status == 200)
        #expect(own.body.contains("svg class=\"chart usage-chart\" data-meter=\"api_calls\"") && own.body.contains("data-amount=\"0.70\""))
        #expect(!own.body.contains("<form") && !own.body.contains("cus_b"))
        #expect(own.head.contains("frame-ancestors https://app.example.com") && !own.head.contains("X-Frame-Options"))
        #expect(own.body.contains("/portal/cus_a?token=\(token)&amp;chart=hourly"))
        #expect(try httpRawExchange(port: port, method: "GET", path: "/portal/cus_b?token=\(token)").status == 403)
        #expect(try httpRawExchange(port: port, method: "GET", path: "/portal/cus_a?token=tp1.forged").status == 401)
        #expect(try httpRawExchange(port: port, method: "GET", path: "/portal/cus_a").status == 401)
        let redirect = try httpRawExchange(port: port, method: "GET", path: "/portal?token=\(token)")
        #expect(redirect.status == 303 && redirect.head.contains("/portal/cus_a?token="))
        // A portal token is no dashboard session.
        #expect(try httpRawExchange(port: port, method: "GET", path: "/ui?token=\(token)").status == 303)
        #expect(daemon.terminate() == 0)
    }

    // MARK: Helpers

    /// The sign-in form's cookie and token, ready to submit.
    struct SignInForm {
        let port: Int
        let cookie: String
        let csrf: String

        init(port: Int) throws {
            let page = try httpRawExchange(port: port, method: "GET", path: "/ui/sign-in")
            self.port = port
            cookie = "tally_signin=" + (try #require(DashboardDaemonTests.cookie("tally_signin", in: page.head)))
            csrf = try #require(DashboardDaemonTests.csrf(in: page.body))
        }

        func submit(key: String, next: String = "/ui") throws -> (status: Int, head: String, body: String) {
            try httpRawExchange(port: port, method: "POST", path: "/ui/sign-in",
                                body: "key=\(key)&csrf=\(csrf)&next=\(next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")",
                                contentType: "application/x-www-form-urlencoded", headers: ["Cookie: \(cookie)"])
        }

        func signIn(key: String) throws -> SessionCookie {
            let answer = try submit(key: key)
            return SessionCookie(port: port, cookie: "tally_session=" + (try #require(DashboardDaemonTests.cookie(SessionCookie.name, in: answer.head))))
        }
    }

    /// A signed-in browser, as far as cookies go.
    struct SessionCookie {
        static let name = "tally_session"
        let port: Int
        var cookie: String

        func get(_ path: String) throws -> (status: Int, head: String, body: String) {
            try httpRawExchange(port: port, method: "GET", path: path, headers: ["Cookie: \(cookie)"])
        }

        func post(_ path: String, _ form: String) throws -> (status: Int, head: String, body: String) {
            try httpRawExchange(port: port, method: "POST", path: path, body: form,
                                contentType: "application/x-www-form-urlencoded", headers: ["Cookie: \(cookie)"])
        }
    }

    static func cookie(_ name: String, in head: String) -> String? {
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("set-cookie: \(name)=") {
            let value = line.dropFirst("set-cookie: \(name)=".count).prefix { $0 != ";" }
            return value.isEmpty ? nil : String(value)
        }
        return nil
    }

    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: "name=\"csrf\" value=\"") else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    /// The text of the element with `id` (up to its first tag).
    static func text(of id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\""), let close = html[start.upperBound...].firstIndex(of: ">") else { return nil }
        return String(html[html.index(after: close)...].prefix { $0 != "<" })
    }

    static func attribute(_ name: String, ofID id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\"") else { return nil }
        let tail = html[start.upperBound...].prefix { $0 != ">" }
        guard let attribute = tail.range(of: "\(name)=\"") else { return nil }
        return String(tail[attribute.upperBound...].prefix { $0 != "\"" })
    }
}
