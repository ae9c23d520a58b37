import Hummingbird
import Ingest
import Metering
import Storage

/// Resumes the waiting request once the group commit holding its batch is durable.
final class CommitWaiter: IngestBatchSink {
    private let continuation: CheckedContinuation<IngestBatch, Never>

    init(_ continuation: CheckedContinuation<IngestBatch, Never>) {
        self.continuation = continuation
    }

    /// The request submits one batch, so exactly one call carries it.
    func batchesCompleted(_ batches: [IngestBatch]) {
        continuation.resume(returning: batches[0])
    }
}

extension APIRoutes {
    /// Per element of a request: rejected before the writer, or the index of its pending event.
    enum Slot {
        case rejected(IngestError)
        case pending(Int)
    }

    /// `POST /v1/events`: a JSON array of at most 1000 events (or one event object), or CloudEvents
    /// (`application/cloudevents+json`, `application/cloudevents-batch+json`), answered per event,
    /// in order, with the socket protocol's response objects, after the group commit holding them is durable.
    func postEvents(_ request: Request) async throws -> Response {
        let maximumBytes = Self.maximumEventsPerRequest * (config.ingest.maxLineBytes + 2) + 2
        let budget = writer.budget
        var charged = 0
        defer { budget.release(charged) }
        let body = try await collectBody(of: request, upTo: maximumBytes, charging: budget, charged: &charged)
        let receivedAt = Timestamp.now()
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let slots: [Slot]
        let pending: [PendingEvent]
        if contentType.hasPrefix("application/cloudevents-batch+json") || contentType.hasPrefix("application/cloudevents+json") {
            (slots, pending) = try cloudEvents(Array(body.readableBytesView), batch: contentType.hasPrefix("application/cloudevents-batch+json"),
                                               receivedAt: receivedAt)
        } else {
            (slots, pending) = try plainEvents(body, receivedAt: receivedAt)
        }
        return try await answer(slots: slots, pending: pending)
    }

    /// Reads the body, charging each piece to the buffer budget as it arrives (past the budget it
    /// waits for room, the oldest body excepted); `charged` says what to release once answered.
    private func collectBody(of request: Request, upTo maximumBytes: Int, charging budget: BufferBudget,
                             charged: inout Int) async throws -> ByteBuffer {
        let ticket = budget.beginBody()
        defer { budget.endBody(ticket) }
        var body = ByteBuffer()
        for try await piece in request.body {
            guard body.readableBytes + piece.readableBytes <= maximumBytes else { throw HTTPError(.contentTooLarge) }
            await budget.charge(piece.readableBytes, body: ticket)
            charged += piece.readableBytes
            var piece = piece
            body.writeBuffer(&piece)
        }
        return body
    }

    /// A JSON array of event objects, or one object.
    private func plainEvents(_ body: ByteBuffer, receivedAt: Timestamp) throws -> ([Slot], [PendingEvent]) {
        let maximumLineBytes = config.ingest.maxLineBytes
        let parsed: Result<(slots: [Slot], pending: [PendingEvent]), EventArraySplitter.Failure> = body.withUnsafeReadableBytes { bytes in
            let ranges: [Range<Int>]
            do throws(EventArraySplitter.Failure) {
                ranges = try EventArraySplitter.split(bytes, maximumCount: Self.maximumEventsPerRequest)
            } catch .notAnArray {
                // One event object, not in an array.
                guard let first = bytes.firstIndex(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }), bytes[first] == UInt8(ascii: "{"),
                      let last = bytes.lastIndex(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) else {
                    return .failure(.notAnArray)
                }
                // Malformed JSON is the request's error, as it is for an array.
                if case .failure(let error) = Result(catching: { () throws(JSONValue.SyntaxError) in
                    try JSONValue.parse(Array(UnsafeRawBufferPointer(rebasing: bytes[first...last])))
                }) {
                    return .failure(.malformed(offset: first + error.offset, expected: error.expected))
                }
                ranges = [first..<(last + 1)]
            } catch {
                return .failure(error)
            }
            var slots: [Slot] = []
            var pending: [PendingEvent] = []
            slots.reserveCapacity(ranges.count)
            pending.reserveCapacity(ranges.count)
            for range in ranges {
                guard range.count <= maximumLineBytes else {
                    slots.append(.rejected(.lineTooLong(maxLineBytes: maximumLineBytes)))
                    continue
                }
                switch parser.parse(UnsafeRawBufferPointer(rebasing: bytes[range]), receivedAt: receivedAt) {
                case .success(let event):
                    slots.append(.pending(pending.count))
                    pending.append(PendingEvent(event: event, receivedAt: receivedAt))
                case .failure(let error):
                    slots.append(.rejected(error))
                }
            }
            return .success((slots, pending))
        }
        switch parsed {
        case .success(let result): return result
        case .failure(.notAnArray):
            throw HTTPAPIError.badRequest(.invalidBody, "the body must be a JSON array of event objects (or one object): [{\"id\":…,\"customer\":…,\"meter\":…}, …]")
        case .failure(.malformed(let offset, let expected)):
            throw HTTPAPIError.badRequest(.invalidJSON, "the body is not valid JSON: expected \(expected) at byte \(offset)")
        case .failure(.tooManyElements(let maximum)):
            throw HTTPAPIError.unprocessable(.tooManyEvents, "a request may carry at most \(maximum) events; split the array into several requests")
        }
    }

    /// Submits the parsed events to the writer and answers every slot in order.
    private func answer(slots: [Slot], pending: [PendingEvent]) async throws -> Response {
        var outcomes: [RecordOutcome] = []
        var blocked: [BlockingLimit?] = []
        if !pending.isEmpty {
            let writer = self.writer
            let batch = await withCheckedContinuation { (continuation: CheckedContinuation<IngestBatch, Never>) in
                writer.submit(IngestBatch(events: pending, sink: CommitWaiter(continuation), tag: 0))
            }
            outcomes = batch.outcomes
            blocked = batch.blocked
        }

        var json = JSONWriter()
        json.raw(#"{"results":["#)
        var counts = (accepted: 0, duplicate: 0, rejected: 0)
        for (index, slot) in slots.enumerated() {
            if index > 0 { json.raw(",") }
            switch slot {
            case .rejected(let error):
                counts.rejected += 1
                Self.appendResponse(.rejected(error), blocked: nil, to: &json)
            case .pending(let position):
                let outcome = outcomes[position]
                switch outcome {
                case .accepted: counts.accepted += 1
                case .duplicate: counts.duplicate += 1
                case .rejected: counts.rejected += 1
                }
                Self.appendResponse(outcome, blocked: position < blocked.count ? blocked[position] : nil, to: &json)
            }
        }
        json.raw("]}")
        metrics.recordEvents(accepted: counts.accepted, duplicate: counts.duplicate, rejected: counts.rejected)
        return .json(json.output)
    }

    /// One socket response object (DESIGN §3), without its newline: `{"status":"accepted"}`,
    /// `{"status":"duplicate"}` or `{"status":"rejected","error":{"code","message","field"?}}`, with
    /// `"blocked":true` and `"limit":{"id","meter","used","limit","resets_at"}` last when the
    /// customer is past a `disable` limit.
    static func appendResponse(_ outcome: RecordOutcome, blocked: BlockingLimit?, to json: inout JSONWriter) {
        switch outcome {
        case .accepted: json.raw(#"{"status":"accepted""#)
        case .duplicate: json.raw(#"{"status":"duplicate""#)
        case .rejected(let error):
            json.raw(#"{"status":"rejected","error":{"code":"#)
            json.string(error.code.rawValue)
            json.raw(","); json.key("message"); json.string(error.message)
            if let field = error.field {
                json.raw(","); json.key("field"); json.string(field)
            }
            json.raw("}")
        }
        if let blocked {
            json.raw(#","blocked":true,"limit":"#)
            json.raw(blocked.json)
        }
        json.raw("}")
    }
}
