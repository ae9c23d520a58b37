import Ingest
import Storage
import Metering

/// CloudEvents 1.0 (JSON format) as Tally events, so producers written for OpenMeter post
/// unchanged: `id`→id, `subject`→customer, `type`→meter, `time`→time, `data.value`→value, the other
/// members of `data`→properties. `specversion` must be "1.0"; `source` and the other attributes
/// are accepted and not kept. Each CloudEvent becomes the equivalent event line and goes through
/// the same `EventLineParser`, so every check and answer is the socket's.
extension APIRoutes {
    func cloudEvents(_ body: [UInt8], batch: Bool, receivedAt: Timestamp) throws -> ([Slot], [PendingEvent]) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch {
            throw HTTPAPIError.badRequest(.invalidJSON, "the body is not valid JSON: expected \(error.expected) at byte \(error.offset)")
        }
        let elements: [JSONValue]
        switch (batch, value) {
        case (true, .array(let items)): elements = items
        case (false, .object): elements = [value]
        case (true, _):
            throw HTTPAPIError.badRequest(.invalidBody, "application/cloudevents-batch+json is a JSON array of CloudEvents")
        case (false, _):
            throw HTTPAPIError.badRequest(.invalidBody, "application/cloudevents+json is one CloudEvent, a JSON object; send a batch as application/cloudevents-batch+json")
        }
        guard elements.count <= Self.maximumEventsPerRequest else {
            throw HTTPAPIError.unprocessable(.tooManyEvents, "a request may carry at most \(Self.maximumEventsPerRequest) events; split the batch into several requests")
        }
        var slots: [Slot] = []
        var pending: [PendingEvent] = []
        for element in elements {
            switch Self.eventLine(fromCloudEvent: element) {
            case .failure(let error):
                slots.append(.rejected(error))
            case .success(let line):
                guard line.count <= config.ingest.maxLineBytes else {
                    slots.append(.rejected(.lineTooLong(maxLineBytes: config.ingest.maxLineBytes)))
                    continue
                }
                switch line.withUnsafeBytes({ parser.parse($0, receivedAt: receivedAt) }) {
                case .success(let event):
                    slots.append(.pending(pending.count))
                    pending.append(PendingEvent(event: event, receivedAt: receivedAt))
                case .failure(let error):
                    slots.append(.rejected(error))
                }
            }
        }
        return (slots, pending)
    }

    /// The Tally event line of one CloudEvent, or why it is not one.
    static func eventLine(fromCloudEvent value: JSONValue) -> Result<[UInt8], IngestError> {
        guard case .object(let members) = value else {
            return .failure(IngestError(code: .invalidJSON, message: "a CloudEvent is a JSON object", field: nil))
        }
        var attributes: [String: JSONValue] = [:]
        for (key, value) in members where attributes[key] == nil { attributes[key] = value }
        func missing(_ field: String, _ what: String) -> IngestError {
            IngestError(code: .missingField, message: "the CloudEvent has no \"\(field)\" (\(what))", field: field)
        }
        func string(_ field: String) -> String? {
            if case .string(let text)? = attributes[field] { text } else { nil }
        }
        guard let version = attributes["specversion"] else { return .failure(missing("specversion", "\"1.0\"")) }
        guard version == .string("1.0") else {
            return .failure(IngestError(code: .invalidField, message: "\"specversion\" must be \"1.0\"", field: "specversion"))
        }
        guard attributes["id"] != nil else { return .failure(missing("id", "the event id Tally deduplicates by")) }
        guard attributes["subject"] != nil else { return .failure(missing("subject", "the customer id")) }
        guard attributes["type"] != nil else { return .failure(missing("type", "the meter code")) }
        for field in ["id", "subject", "type"] where string(field) == nil {
            return .failure(IngestError(code: .invalidField, message: "\"\(field)\" must be a string", field: field))
        }
        var writer = JSONWriter()
        writer.raw("{"); writer.key("id"); writer.string(string("id")!)
        writer.raw(","); writer.key("customer"); writer.string(string("subject")!)
        writer.raw(","); writer.key("meter"); writer.string(string("type")!)
        if let time = attributes["time"], time != .null {
            writer.raw(","); writer.key("time"); time.append(to: &writer)
        }
        switch attributes["data"] {
        case nil, .null?:
            break
        case .object(let data)?:
            var properties: [(key: String, value: JSONValue)] = []
            for (key, value) in data {
                if key == "value" {
                    writer.raw(","); writer.key("value"); value.append(to: &writer)
                } else {
                    properties.append((key, value))
                }
            }
            if !properties.isEmpty {
                writer.raw(","); writer.key("properties"); JSONValue.object(properties).append(to: &writer)
            }
        default:
            return .failure(IngestError(code: .invalidField, message: "\"data\" must be a JSON object like {\"value\":12,\"model\":\"gpt\"}", field: "data"))
        }
        writer.raw("}")
        return .success(Array(writer.output.utf8))
    }
}

extension JSONValue {
    /// The value as JSON text (numbers as they were written).
    func append(to writer: inout JSONWriter) {
        switch self {
        case .object(let members):
            writer.raw("{")
            for (index, member) in members.enumerated() {
                if index > 0 { writer.raw(",") }
                writer.key(member.key)
                member.value.append(to: &writer)
            }
            writer.raw("}")
        case .array(let items):
            writer.raw("[")
            for (index, item) in items.enumerated() {
                if index > 0 { writer.raw(",") }
                item.append(to: &writer)
            }
            writer.raw("]")
        case .string(let text): writer.string(text)
        case .number(let text): writer.raw(text)
        case .bool(let flag): writer.raw(flag ? "true" : "false")
        case .null: writer.raw("null")
        }
    }
}
