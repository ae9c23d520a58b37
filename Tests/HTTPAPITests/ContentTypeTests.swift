import Foundation
@testable import HTTPAPI
import Hummingbird
import NIOCore
import NIOHTTP1
import Testing

/// 415 for bodies that are not JSON; JSON with parameters, CloudEvents and a missing Content-Type
/// keep working; client aborts are told from server errors.
@Suite("Content types and client aborts")
struct ContentTypeTests {
    @Test(arguments: ["text/plain", "application/x-www-form-urlencoded", "application/xml", "application/x-ndjson",
                      "multipart/form-data; boundary=x", "text/json", "application/jsonx", "application/+json"])
    func nonJSONBodiesAre415(contentType: String) async throws {
        try await withTestServer { server in
            let response = try await server.send(.post, "/v1/events", body: "[" + event("ct1") + "]", contentType: contentType)
            #expect(response.status == 415, "\(contentType): \(response.body)")
            #expect(try response.errorCode() == "unsupported_media_type")
            #expect(response.body.contains("application/json"))
            // Nothing was recorded, and other routes with bodies answer the same.
            let retry = try await server.post("/v1/events", "[" + event("ct1") + "]")
            #expect(statuses(try #require(try retry.object()["results"] as? [[String: Any]])) == ["accepted"])
            let plan = try await server.send(.put, "/v1/customers/cus_ct/plan", body: #"{"plan":"starter"}"#, contentType: contentType)
            #expect(plan.status == 415)
        }
    }

    @Test(arguments: ["application/json", "application/json; charset=utf-8", "Application/JSON", " application/json ;charset=UTF-8",
                      "application/cloudevents-batch+json", "application/merge-patch+json"])
    func jsonBodiesAreRead(contentType: String) async throws {
        try await withTestServer { server in
            let body = contentType.contains("cloudevents")
                ? "[" + CloudEventsTests.cloudEvent("ce-\(contentType.count)") + "]" : "[" + event("j\(contentType.count)") + "]"
            let response = try await server.send(.post, "/v1/events", body: body, contentType: contentType)
            #expect(response.status == 200, "\(contentType): \(response.body)")
        }
    }

    @Test("a body without Content-Type is read as JSON, as before; a request without a body is never 415")
    func missingContentType() async throws {
        try await withTestServer { server in
            let headers: HTTPFields = [.authorization: "Bearer \(testAPIKey)"]
            let response = try await server.client.execute(.init("/v1/events", method: .post, headers: headers,
                                                                 body: ByteBuffer(string: "[" + event("nct") + "]")))
            #expect(response.status == .ok)
            let get = try await server.client.execute(.init("/v1/customers/cus_42/usage", method: .get,
                                                            headers: [.authorization: "Bearer \(testAPIKey)", .contentType: "text/plain"]))
            #expect(get.status == .ok)
        }
    }

    @Test("415 is in the OpenAPI document for every operation with a body")
    func documented() throws {
        let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.text(meters: ["api_calls"], plans: []).utf8)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var withBody = 0
        for (path, operations) in paths {
            for (method, operation) in operations {
                guard let operation = operation as? [String: Any], operation["requestBody"] != nil else { continue }
                withBody += 1
                let responses = try #require(operation["responses"] as? [String: Any])
                #expect(responses["415"] != nil, "\(method) \(path)")
            }
        }
        #expect(withBody > 0)
    }

    @Test func isJSON() {
        #expect(ContentTypeMiddleware<BasicRequestContext>.isJSON("application/json"))
        #expect(ContentTypeMiddleware<BasicRequestContext>.isJSON("application/cloudevents+json; charset=utf-8"))
        #expect(!ContentTypeMiddleware<BasicRequestContext>.isJSON(""))
        #expect(!ContentTypeMiddleware<BasicRequestContext>.isJSON("json"))
        #expect(!ContentTypeMiddleware<BasicRequestContext>.isJSON("text/plain; application/json"))
    }

    @Test("resets, closed channels, broken requests and cancellation are client aborts; other errors are not")
    func clientAborts() {
        #expect(ClientAbort.matches(IOError(errnoCode: ECONNRESET, reason: "read")))
        #expect(ClientAbort.matches(IOError(errnoCode: EPIPE, reason: "write")))
        #expect(ClientAbort.matches(ChannelError.ioOnClosedChannel))
        #expect(ClientAbort.matches(ChannelError.eof))
        #expect(ClientAbort.matches(HTTPParserError.invalidEOFState))
        #expect(ClientAbort.matches(CancellationError()))
        #expect(!ClientAbort.matches(IOError(errnoCode: ENOSPC, reason: "write")))
        #expect(!ClientAbort.matches(ChannelError.connectTimeout(.seconds(1))))
        #expect(!ClientAbort.matches(HTTPAPIError(status: 500, code: .internalError, message: "x")))
    }
}
