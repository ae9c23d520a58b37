import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The back-office API through the real daemon: paging the customer directory while new customers
/// arrive, and `tally customers list` paging the same directory.
@Suite("Back-office API, end to end")
struct BackOfficeEndToEndTests {
    static let key = "test-key"
    static let digest = "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef"  // sha256("test-key")

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }

    @Test("paging 10,000 customers with limit=37 while events for new customers arrive returns every earlier customer exactly once")
    func pagingWhileIngesting() throws {
        let port = try freePort()
        let daemon = try DaemonHarness(config: DaemonHarness.defaultConfig + """

            http:
              api_keys_sha256: ["\(Self.digest)"]
            """)
        try daemon.start(extraArguments: ["--http", "127.0.0.1:\(port)"])
        #expect(daemon.waitForHTTP(port: port) == 200)

        let earlier = (0..<10_000).map { String(format: "cus_%05d", $0) }
        var lines = ""
        for (index, customer) in earlier.shuffled().enumerated() {
            lines += #"{"id":"e\#(index)","customer":"\#(customer)","meter":"api_calls"}"# + "\n"
        }
        try lines.write(toFile: daemon.directory + "/events.ndjson", atomically: true, encoding: .utf8)
        let sent = try daemon.tally(["send", "--config", daemon.configPath, daemon.directory + "/events.ndjson"])
        #expect(sent.status == 0, "\(sent.error)")

        // New customers sort between the earlier ones (cus_00042_new_…), so they land on pages
        // still to come and on pages already read; each is acknowledged before the next is sent.
        let stop = Atomic<Bool>(false)
        let added = Atomic<Int>(0)
        nonisolated(unsafe) let connection = try daemon.connect()
        let producer = Thread {
            defer { connection.close() }
            var number = 0
            while !stop.load(ordering: .relaxed) {
                let customer = String(format: "cus_%05d_new_%d", (number * 7_919) % 10_000, number)
                let line = #"{"id":"n\#(number)","customer":"\#(customer)","meter":"api_calls"}"# + "\n"
                guard (try? connection.sendAll(Array(line.utf8))) != nil, (try? connection.readLine()) != nil else { return }
                number += 1
                added.store(number, ordering: .relaxed)
            }
        }
        producer.start()
        defer { stop.store(true, ordering: .relaxed) }

        var seen: [String] = []
        var cursor: String?
        repeat {
            let path = "/v1/customers?limit=37" + (cursor.map { "&cursor=\($0)" } ?? "")
            let response = try httpRequest(port: port, method: "GET", path: path, key: Self.key)
            #expect(response.status == 200, "\(response.body)")
            let object = try Self.json(response.body)
            let data = try #require(object["data"] as? [[String: Any]])
            #expect(data.count <= 37)
            seen += data.compactMap { $0["id"] as? String }
            cursor = object["next_cursor"] as? String
            #expect((object["has_more"] as? Bool) == (cursor != nil))
        } while cursor != nil
        stop.store(true, ordering: .relaxed)
        #expect(added.load(ordering: .relaxed) > 0, "no new customer arrived while paging")

        let earlierSet = Set(earlier)
        #expect(seen.filter { earlierSet.contains($0) } == earlier)
        #expect(Set(seen).count == seen.count, "a customer was listed twice")
        #expect(seen == seen.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })

        // The CLI pages the same directory with the same cursors.
        let first = try daemon.tally(["customers", "list", "--config", daemon.configPath, "--store", daemon.storePath,
                                      "--limit", "37", "--query", "cus_000", "--json"])
        #expect(first.status == 0, "\(first.error)")
        let page = try Self.json(first.output)
        let ids = try #require(page["data"] as? [[String: Any]]).compactMap { $0["id"] as? String }
        #expect(ids.count == 37)
        #expect(ids.allSatisfy { $0.hasPrefix("cus_000") })
        let next = try #require(page["next_cursor"] as? String)
        let http = try Self.json(try httpRequest(port: port, method: "GET", path: "/v1/customers?limit=37&query=cus_000&cursor=\(next)", key: Self.key).body)
        let cli = try Self.json(try daemon.tally(["customers", "list", "--config", daemon.configPath, "--store", daemon.storePath,
                                                  "--limit", "37", "--query", "cus_000", "--cursor", next, "--json"]).output)
        #expect((http["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == (cli["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String })
        // Without --limit: every customer, in the array shape `customers list --json` always had.
        let everything = try daemon.tally(["customers", "list", "--config", daemon.configPath, "--store", daemon.storePath, "--json"])
        let array = try #require(try JSONSerialization.jsonObject(with: Data(everything.output.utf8)) as? [[String: Any]])
        #expect(array.count >= 10_000)
        #expect(Set(array.first?.keys.map { $0 } ?? []) == ["customer", "plan", "source"])
        _ = daemon.terminate()
    }

    @Test("tally portal-token mints what the daemon accepts for its customer only; without the secret it fails clearly")
    func portalTokenCommand() throws {
        setenv("TALLY_E2E_PORTAL_SECRET", "e2e-secret", 1)
        let port = try freePort()
        let daemon = try DaemonHarness(config: DaemonHarness.defaultConfig + """

            http:
              api_keys_sha256: ["\(Self.digest)"]
              portal_secret_env: TALLY_E2E_PORTAL_SECRET
            """)
        try daemon.start(extraArguments: ["--http", "127.0.0.1:\(port)"])
        _ = daemon.waitForHTTP(port: port)
        #expect(try daemon.exchange(eventLine(id: "t1", customer: "cus_t") + "\n").count == 1)
        let minted = try daemon.tally(["portal-token", "--config", daemon.configPath, "--customer", "cus_t", "--ttl", "10m", "--json"])
        #expect(minted.status == 0, "\(minted.error)")
        let object = try Self.json(minted.output)
        let token = try #require(object["token"] as? String)
        #expect(object["customer"] as? String == "cus_t")
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers/cus_t/usage?token=\(token)").status == 200)
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers/cus_t/estimate", key: token).status == 200)
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers/cus_other/usage", key: token).status == 403)
        #expect(try httpRequest(port: port, method: "GET", path: "/v1/customers", key: token).status == 403)

        unsetenv("TALLY_E2E_PORTAL_SECRET")
        let refused = try daemon.tally(["portal-token", "--config", daemon.configPath, "--customer", "cus_t"])
        #expect(refused.status != 0)
        #expect(refused.error.contains("TALLY_E2E_PORTAL_SECRET"))
        let badTTL = try daemon.tally(["portal-token", "--config", daemon.configPath, "--customer", "cus_t", "--ttl", "90d"])
        #expect(badTTL.status != 0)
        _ = daemon.terminate()
    }
}
