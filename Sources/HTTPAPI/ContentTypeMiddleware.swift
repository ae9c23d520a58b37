import Foundation
import Hummingbird

/// Answers `415 unsupported_media_type` for a request whose body is declared as something other
/// than JSON: every body the API reads is JSON (`application/json`), or CloudEvents in JSON
/// (`application/cloudevents+json`, `application/cloudevents-batch+json`). Parameters such as
/// `charset=utf-8` are allowed, and so is any `application/…+json` type. A body without a
/// `Content-Type` is read as JSON, as before; a request without a body is never refused for its
/// `Content-Type`.
struct ContentTypeMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Paths whose bodies are not the API's (the dashboard's forms).
    var exemptPrefixes: [String] = []

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if !exemptPrefixes.owns(request.uri.path), Self.hasBody(request), let declared = request.headers[.contentType], !Self.isJSON(declared) {
            throw HTTPAPIError(
                status: 415, code: .unsupportedMediaType,
                message: "the body's Content-Type is \(declared.debugDescription), not JSON; send it as application/json "
                    + "(or application/cloudevents+json, application/cloudevents-batch+json for CloudEvents)")
        }
        return try await next(request, context)
    }

    /// Whether the request carries a body: a non-zero `Content-Length`, or any `Transfer-Encoding`.
    static func hasBody(_ request: Request) -> Bool {
        if request.headers[.transferEncoding] != nil { return true }
        guard let length = request.headers[.contentLength] else { return false }
        return length.trimmingCharacters(in: .whitespaces) != "0"
    }

    /// Whether a `Content-Type` value names JSON: `application/json` or `application/…+json`, with
    /// any parameters, in any case.
    static func isJSON(_ contentType: String) -> Bool {
        let mediaType = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let type = mediaType.trimmingCharacters(in: .whitespaces).lowercased()
        guard type.hasPrefix("application/") else { return false }
        return type == "application/json" || (type.hasSuffix("+json") && type.count > "application/+json".count)
    }
}
