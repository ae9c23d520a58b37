import ArgumentParser
import HTTPAPI
import Metering
import TallyConfiguration

/// `tally portal-token`: mints a customer portal token, as `POST /v1/customers/{id}/portal_tokens` does.
struct PortalTokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portal-token",
        abstract: "Mint a signed token that reads one customer's usage, estimate, limits and entitlements.",
        discussion: """
            The token is signed with the secret in the environment variable that
            http.portal_secret_env names (the daemon must see the same secret). Send it as
            Authorization: Bearer <token> or ?token=<token> to GET /v1/customers/{id}/usage,
            /estimate, /limits and /entitlements/{meter}; it reads nothing else.

            Examples:
              TALLY_PORTAL_SECRET=… tally portal-token --customer cus_42
              tally portal-token --customer cus_42 --ttl 7d --json
            """
    )

    @OptionGroup var options: StoreOptions
    @Option(name: .long, help: "The customer the token reads.") var customer: String
    @Option(name: .long, help: ArgumentHelp("How long it works: 1m to 30d.", valueName: "duration")) var ttl = "1h"
    @Flag(name: .long, help: "Print {\"token\",\"customer\",\"expires_at\"}.") var json = false

    func validate() throws {
        guard !customer.isEmpty, customer.utf8.count <= 255 else { throw ValidationError("a customer id has 1 to 255 bytes") }
        guard let nanoseconds = try? DurationText.parse(ttl), PortalToken.ttlRange.contains(nanoseconds) else {
            throw ValidationError("--ttl '\(ttl)' must be a duration from 1m to 30d, like 1h or 7d")
        }
    }

    func run() throws {
        let config = try options.loadConfig()
        guard let name = config.http.portalSecretEnvironmentVariable else {
            throw CommandFailure("portal tokens need http.portal_secret_env in the config: the name of an environment variable that holds the signing secret")
        }
        guard let secret = PortalToken.secret(fromEnvironmentVariable: name) else {
            throw CommandFailure("the environment variable \(name) (http.portal_secret_env) is unset or empty: set it to the same secret the daemon has")
        }
        let token = PortalToken(customer: customer, expiresAt: Timestamp.now().adding(nanoseconds: try DurationText.parse(ttl)))
        let text = token.signed(secret: secret)
        if json {
            var writer = JSONWriter()
            writer.raw("{"); writer.key("token"); writer.string(text)
            writer.raw(","); writer.key("customer"); writer.string(customer)
            writer.raw(","); writer.key("expires_at"); writer.string(token.expiresAt.rfc3339)
            writer.raw("}")
            print(writer.output)
        } else {
            print(text)
        }
    }
}
