import Foundation
import HTTPAPI
import Metering
import Testing

/// `POST /v1/events` with CloudEvents (single and batch) and with one plain event object.
@Suite("CloudEvents and single-object ingest")
struct CloudEventsTests {
    static func cloudEvent(_ id: String, subject: String = "cus_ce", type: String = "tokens", data: String? = #"{"value":12,"model":"gpt"}"#,
                           extra: String = "") -> String {
        var text = #"{"specversion":"1.0","id":"\#(id)","source":"/my/service","subject":"\#(subject)","type":"\#(type)","time":"2026-12-03T10:00:00Z""#
        if let data { text += #","data":\#(data)"# }
        return text + extra + "}"
    }

    @Test("one CloudEvent maps id, subject, type, time, data.value and the rest of data; a resend is a duplicate")
    func single() async throws {
        try await withTestServer { server in
            let now = Timestamp.now().rfc3339
            let body = #"{"specversion":"1.0","id":"ce1","source":"/svc","subject":"cus_ce","type":"tokens","time":"\#(now)","data":{"value":12,"model":"gpt"}}"#
            let first = try await server.send(.post, "/v1/events", body: body, contentType: "application/cloudevents+json")
            #expect(first.body == #"{"results":[{"status":"accepted"}]}"#, "\(first.body)")
            let again = try await server.send(.post, "/v1/events", body: body, contentType: "application/cloudevents+json; charset=utf-8")
            #expect(again.body == #"{"results":[{"status":"duplicate"}]}"#)
            let period = server.config.billing.period.interval(containing: .now())
            let usage = try server.store.usage(customer: "cus_ce", periodStart: period.start)
            #expect(usage.count == 1)
            #expect(usage.first?.meter == "tokens")
            #expect(usage.first?.quantity == 12)
            #expect(usage.first?.group.first?.value == "gpt")
        }
    }

    @Test("a batch answers each CloudEvent in order; missing and wrong attributes are rejected with their field")
    func batch() async throws {
        try await withTestServer { server in
            let now = Timestamp.now().rfc3339
            func ce(_ id: String, _ fields: String) -> String { #"{"specversion":"1.0","id":"\#(id)","source":"/s","time":"\#(now)",\#(fields)}"# }
            let events = [
                ce("b1", #""subject":"cus_b","type":"api_calls""#),
                ce("b2", #""subject":"cus_b","type":"tokens","data":{"value":"0.5","model":"m"}"#),
                ce("b1", #""subject":"cus_b","type":"api_calls""#),
                ce("b3", #""type":"api_calls""#),
                ce("b4", #""subject":"cus_b""#),
                #"{"specversion":"0.3","id":"b5","subject":"cus_b","type":"api_calls"}"#,
                #"{"id":"b6","subject":"cus_b","type":"api_calls"}"#,
                ce("b7", #""subject":"cus_b","type":"nope""#),
                ce("b8", #""subject":"cus_b","type":"tokens","data":[1]"#),
                #"{"specversion":"1.0","subject":"cus_b","type":"api_calls"}"#,
            ]
            let response = try await server.send(.post, "/v1/events", body: "[" + events.joined(separator: ",") + "]",
                                                 contentType: "application/cloudevents-batch+json")
            #expect(response.status == 200)
            let results = try #require(try response.object()["results"] as? [[String: Any]])
            #expect(statuses(results) == ["accepted", "accepted", "duplicate", "rejected", "rejected", "rejected", "rejected", "rejected", "rejected", "rejected"])
            let fields = results.map { ($0["error"] as? [String: Any])?["field"] as? String }
            #expect(fields[3] == "subject")
            #expect(fields[4] == "type")
            #expect(fields[5] == "specversion")
            #expect(fields[6] == "specversion")
            #expect((results[7]["error"] as? [String: Any])?["code"] as? String == "unknown_meter")
            #expect(fields[8] == "data")
            #expect(fields[9] == "id")
            let period = server.config.billing.period.interval(containing: .now())
            #expect(try server.store.usage(customer: "cus_b", periodStart: period.start).map(\.quantity).sorted() == [ExactDecimal("0.5")!, 1])
        }
    }

    @Test("malformed bodies: invalid JSON is 400 for each content type; a batch must be an array, a single event an object")
    func malformed() async throws {
        try await withTestServer { server in
            for type in ["application/json", "application/cloudevents+json", "application/cloudevents-batch+json"] {
                let response = try await server.send(.post, "/v1/events", body: "{nope", contentType: type)
                #expect(response.status == 400, "\(type)")
                #expect(try response.errorCode() == "invalid_json", "\(type)")
            }
            let notArray = try await server.send(.post, "/v1/events", body: Self.cloudEvent("x"), contentType: "application/cloudevents-batch+json")
            #expect(notArray.status == 400)
            #expect(try notArray.errorCode() == "invalid_body")
            let notObject = try await server.send(.post, "/v1/events", body: "[" + Self.cloudEvent("x") + "]", contentType: "application/cloudevents+json")
            #expect(notObject.status == 400)
            let tooMany = "[" + (0...1000).map { Self.cloudEvent("m\($0)") }.joined(separator: ",") + "]"
            let many = try await server.send(.post, "/v1/events", body: tooMany, contentType: "application/cloudevents-batch+json")
            #expect(many.status == 422)
            #expect(try many.errorCode() == "too_many_events")
        }
    }

    @Test("control characters in id or subject are rejected as invalid_field, as on the socket")
    func controlCharacters() async throws {
        try await withTestServer { server in
            let events = [
                Self.cloudEvent(#"c\u0000tl"#), Self.cloudEvent("ok1", subject: #"cus\nx"#),
                Self.cloudEvent("ok2", subject: "cus\u{7F}"), Self.cloudEvent("ok3"),
            ]
            let response = try await server.send(.post, "/v1/events", body: "[" + events.joined(separator: ",") + "]",
                                                 contentType: "application/cloudevents-batch+json")
            #expect(response.status == 200)
            let results = try #require(try response.object()["results"] as? [[String: Any]])
            #expect(statuses(results) == ["rejected", "rejected", "rejected", "accepted"])
            let errors = results.prefix(3).map { $0["error"] as? [String: Any] }
            #expect(errors.map { $0?["code"] as? String } == ["invalid_field", "invalid_field", "invalid_field"])
            #expect(errors.map { $0?["field"] as? String } == ["id", "customer", "customer"])
            #expect(errors.allSatisfy { ($0?["message"] as? String)?.contains("control characters") == true })
        }
    }

    @Test("a plain single event object is one event; a plain array is unchanged")
    func plainObject() async throws {
        try await withTestServer { server in
            let single = try await server.post("/v1/events", "  " + event("o1", customer: "cus_o") + "\n")
            #expect(single.body == #"{"results":[{"status":"accepted"}]}"#)
            let duplicate = try await server.post("/v1/events", event("o1", customer: "cus_o"))
            #expect(duplicate.body == #"{"results":[{"status":"duplicate"}]}"#)
            let array = try await server.post("/v1/events", "[" + event("o2", customer: "cus_o") + "," + event("o1", customer: "cus_o") + "]")
            #expect(array.body == #"{"results":[{"status":"accepted"},{"status":"duplicate"}]}"#)
            let scalar = try await server.post("/v1/events", "42")
            #expect(scalar.status == 400)
            #expect(try scalar.errorCode() == "invalid_body")
        }
    }
}
