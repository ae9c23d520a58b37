import Hummingbird
import Logging
import Metering
import NIOCore
import NIOHTTP1
import Storage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error answered by the HTTP API as `{"error":{"code","message","field"?,"details"?}}` with its status.
public struct HTTPAPIError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stable error code; an open set of string constants.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The code as it appears in responses, e.g. `"unknown_customer"`.
        public var rawValue: String
        /// Wraps a raw code.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The raw value.
        public var description: String { rawValue }

        /// 400: the body is not valid JSON.
        public static let invalidJSON = Code(rawValue: "invalid_json")
        /// 400: the body has the wrong shape (for example, not an array).
        public static let invalidBody = Code(rawValue: "invalid_body")
        /// 400: a query or path parameter is malformed.
        public static let invalidParameter = Code(rawValue: "invalid_parameter")
        /// 401: no `Authorization: Bearer` key.
        public static let missingAPIKey = Code(rawValue: "missing_api_key")
        /// 401: the key's SHA-256 is not among `http.api_keys_sha256`.
        public static let invalidAPIKey = Code(rawValue: "invalid_api_key")
        /// 403: the key lacks the route's scope, or a portal token asks for what it may not read.
        public static let forbidden = Code(rawValue: "forbidden")
        /// 401: a portal token that is malformed, changed or signed with another secret.
        public static let invalidToken = Code(rawValue: "invalid_token")
        /// 401: a portal token past its expiry.
        public static let tokenExpired = Code(rawValue: "token_expired")
        /// 503: minting portal tokens needs the secret of `http.portal_secret_env`.
        public static let portalDisabled = Code(rawValue: "portal_disabled")
        /// 404: no such route.
        public static let notFound = Code(rawValue: "not_found")
        /// 404: Tally knows nothing of the customer.
        public static let unknownCustomer = Code(rawValue: "unknown_customer")
        /// 404 (routes) or 422 (limit bodies): the meter is not configured.
        public static let unknownMeter = Code(rawValue: "unknown_meter")
        /// 404: no such limit for the customer.
        public static let unknownLimit = Code(rawValue: "unknown_limit")
        /// 408: the client did not send its request headers or body in time (`http.header_timeout`,
        /// `http.body_timeout`); the connection is closed.
        public static let requestTimeout = Code(rawValue: "request_timeout")
        /// 415: the body's `Content-Type` is not JSON (`application/json`, CloudEvents).
        public static let unsupportedMediaType = Code(rawValue: "unsupported_media_type")
        /// 413: the body is larger than the route accepts.
        public static let bodyTooLarge = Code(rawValue: "body_too_large")
        /// 422: more events than one request may carry.
        public static let tooManyEvents = Code(rawValue: "too_many_events")
        /// 422: a required field is absent.
        public static let missingField = Code(rawValue: "missing_field")
        /// 422: a field has a wrong type or value, or is unknown.
        public static let invalidField = Code(rawValue: "invalid_field")
        /// 422: an amount or quantity is not a positive decimal.
        public static let invalidValue = Code(rawValue: "invalid_value")
        /// 422: a limit with that id already exists.
        public static let limitExists = Code(rawValue: "limit_exists")
        /// 422: the limit comes from the config file and cannot be changed over HTTP.
        public static let configLimit = Code(rawValue: "config_limit")
        /// 422: the limit belongs to a plan; it is removed with `tally limits remove`.
        public static let planLimit = Code(rawValue: "plan_limit")
        /// 422: a query parameter is out of range.
        public static let outOfRange = Code(rawValue: "out_of_range")
        /// 503: the store cannot be read or written now.
        public static let unavailable = Code(rawValue: "unavailable")
        /// 404: no such plan in the config (a route), or 422 (a body naming one).
        public static let unknownPlan = Code(rawValue: "unknown_plan")
        /// 500: a bug; the message says what failed.
        public static let internalError = Code(rawValue: "internal")
        /// 409: a credit grant with this id exists with other content.
        public static let idempotencyConflict = Code(rawValue: "idempotency_conflict")
        /// 422: a credit grant's amount is not a positive amount of the currency.
        public static let invalidAmount = Code(rawValue: "invalid_amount")
        /// 422: the customer has no plan, so credits have no currency.
        public static let noPlan = Code(rawValue: "no_plan")
        /// 404: no credit grant with this id for this customer.
        public static let unknownGrant = Code(rawValue: "unknown_grant")
    }

    /// The HTTP status code.
    public var status: Int
    /// The stable error code.
    public var code: Code
    /// What went wrong and what to do.
    public var message: String
    /// The query parameter or body field at fault, when there is one.
    public var field: String?
    /// More about the error as a JSON object (its text), when there is more.
    public var details: String?

    /// Creates an error.
    public init(status: Int, code: Code, message: String, field: String? = nil, details: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details
    }

    /// `"code: message"`.
    public var description: String { "\(code.rawValue): \(message)" }

    static func badRequest(_ code: Code, _ message: String, field: String? = nil) -> HTTPAPIError {
        HTTPAPIError(status: 400, code: code, message: message, field: field)
    }
    static func notFound(_ code: Code, _ message: String) -> HTTPAPIError { HTTPAPIError(status: 404, code: code, message: message) }
    static func unprocessable(_ code: Code, _ message: String, field: String? = nil) -> HTTPAPIError {
        HTTPAPIError(status: 422, code: code, message: message, field: field)
    }

    /// A store failure: 503 with the store's message.
    static func store(_ error: StoreError) -> HTTPAPIError {
        HTTPAPIError(status: 503, code: .unavailable, message: "\(error.message); retry later")
    }

    /// The error as its JSON body.
    var json: String {
        var writer = JSONWriter()
        writer.raw("{"); writer.key("error"); writer.raw("{")
        writer.key("code"); writer.string(code.rawValue)
        writer.raw(","); writer.key("message"); writer.string(message)
        if let field { writer.raw(","); writer.key("field"); writer.string(field) }
        if let details { writer.raw(","); writer.key("details"); writer.raw(details) }
        writer.raw("}}")
        return writer.output
    }

    /// The error as a response.
    var response: Response {
        var response = Response.json(json, status: HTTPResponse.Status(code: status))
        if status == 401 { response.headers[.wwwAuthenticate] = "Bearer" }
        return response
    }
}

extension Response {
    /// A JSON response with `text` as its body.
    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Turns every error into the API's JSON error shape: ``HTTPAPIError``s as they are, store errors as
/// 503, Hummingbird's own errors (unknown route, body too large) by their status, anything else 500.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return Self.response(for: error, request: request, logger: logger)
        }
    }

    /// The JSON error response for `error`.
    static func response(for error: any Error, request: Request, logger: Logger) -> Response {
        switch error {
        case let error as HTTPAPIError:
            return error.response
        case let error as StoreError:
            logger.warning("store error answering a request", metadata: ["path": "\(request.uri.path)", "error": "\(error.message)"])
            return HTTPAPIError.store(error).response
        case let error as any HTTPResponseError:
            return translate(error.status, request: request).response
        case let error where ClientAbort.matches(error):
            // The client went away (or broke the request off) while its body was being read: its
            // problem, not the server's, and nobody will read this answer.
            logger.debug("the client aborted its request", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return HTTPAPIError.badRequest(.invalidBody, "the request was cut off before its body was complete; send it again").response
        default:
            logger.error("unexpected error answering a request", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return HTTPAPIError(status: 500, code: .internalError, message: "the server failed to answer: \(error); please report it").response
        }
    }

    static func translate(_ status: HTTPResponse.Status, request: Request) -> HTTPAPIError {
        switch status {
        case .notFound, .methodNotAllowed:
            HTTPAPIError(status: 404, code: .notFound,
                         message: "no route \(request.method.rawValue) \(request.uri.path); see the HTTP API routes in the README")
        case .contentTooLarge:
            HTTPAPIError(status: 413, code: .bodyTooLarge, message: "the request body is too large for \(request.uri.path); send less per request")
        case .badRequest:
            HTTPAPIError(status: 400, code: .invalidBody, message: "the request is malformed")
        default:
            HTTPAPIError(status: status.code, code: HTTPAPIError.Code(rawValue: "http_\(status.code)"), message: status.reasonPhrase)
        }
    }
}

/// Errors that mean the client aborted a request (reset the connection, closed it mid-body, sent a
/// broken request): logged at debug level, since they say nothing about the server.
enum ClientAbort {
    static func matches(_ error: any Error) -> Bool {
        switch error {
        case let error as IOError:
            return [ECONNRESET, EPIPE, ECONNABORTED, ETIMEDOUT].contains(error.errnoCode)
        case let error as ChannelError:
            return [.ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed].contains(error)
        case is HTTPParserError, is CancellationError:
            return true
        default:
            return false
        }
    }
}
