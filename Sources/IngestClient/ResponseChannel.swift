import Glibc

/// How the response reader thread stopped.
enum ReaderEnd {
    /// The server closed the connection (or it was shut down).
    case closed
    /// Receiving failed (a reset connection).
    case failed(ClientError)
    /// The server broke the protocol; fatal.
    case violation(ClientError)
}

/// State shared by the sending thread and the reader thread of one connection.
final class ResponseChannel: @unchecked Sendable {
    let lock = ConditionLock()
    /// Parsed answers not yet taken by the sending thread (guarded by `lock`).
    var responses: [IngestResponse] = []
    /// When each of `responses` arrived (guarded by `lock`).
    var receivedAt: [UInt64] = []
    /// Lines handed to `send` on this connection so far (guarded by `lock`).
    var linesHanded = 0
    /// Set once when the reader stops (guarded by `lock`).
    var ended: ReaderEnd?
    /// The sending thread waits in `poll` and wants a byte on `wakeDescriptor` (guarded by `lock`).
    var wakeRequested = false
    /// The write end of the sending thread's wake pipe.
    let wakeDescriptor: Int32

    init(wakeDescriptor: Int32) {
        self.wakeDescriptor = wakeDescriptor
    }

    /// Wakes the sending thread if it waits in `poll`; call with `lock` held.
    private func wakeIfRequested() {
        guard wakeRequested else { return }
        wakeRequested = false
        var byte: UInt8 = 1
        _ = write(wakeDescriptor, &byte, 1)  // non-blocking; a full pipe already wakes
    }

    /// The reader thread's loop: receive, split lines, parse, publish.
    func readResponses(from connection: IngestConnection, bufferBytes: Int) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bufferBytes, 4096), alignment: 16)
        defer { buffer.deallocate() }
        let base = UnsafeRawPointer(buffer.baseAddress!)
        let maxLineBytes = 1 << 20
        var partial: [UInt8] = []
        var batch: [IngestResponse] = []
        var answered = 0
        var end = ReaderEnd.closed

        while true {
            let count: Int
            do throws(ClientError) {
                count = try connection.receive(into: buffer)
            } catch {
                end = .failed(error)
                break
            }
            if count == 0 { break }
            let now = monotonicNanoseconds()
            var violation: ClientError?
            var lineStart = 0
            while lineStart < count, let found = memchr(base + lineStart, 0x0A, count - lineStart) {
                let newline = base.distance(to: UnsafeRawPointer(found))
                let piece = UnsafeRawBufferPointer(start: base + lineStart, count: newline - lineStart)
                do throws(ClientError) {
                    if partial.isEmpty {
                        batch.append(try IngestResponse.parse(piece))
                    } else {
                        partial.append(contentsOf: piece)
                        batch.append(try IngestResponse.parse(partial))
                        partial.removeAll(keepingCapacity: true)
                    }
                } catch {
                    violation = error
                    break
                }
                lineStart = newline + 1
            }
            if violation == nil && lineStart < count {
                partial.append(contentsOf: UnsafeRawBufferPointer(start: base + lineStart, count: count - lineStart))
                if partial.count > maxLineBytes {
                    violation = ClientError(
                        code: .protocolViolation,
                        message: "the server at \(connection.path) sent a response line longer than \(maxLineBytes) "
                            + "bytes; is this a Tally ingest socket?")
                }
            }

            lock.lock()
            if answered + batch.count > linesHanded {
                let extra = answered + batch.count - linesHanded
                batch.removeLast(extra)
                violation = ClientError(
                    code: .protocolViolation,
                    message: "the server at \(connection.path) sent \(extra) more response(s) than lines it was sent; "
                        + "is this a Tally ingest socket?")
            }
            responses.append(contentsOf: batch)
            receivedAt.append(contentsOf: repeatElement(now, count: batch.count))
            answered += batch.count
            if let violation { ended = .violation(violation) }
            wakeIfRequested()
            lock.broadcast()
            lock.unlock()
            batch.removeAll(keepingCapacity: true)
            if violation != nil {
                connection.shutdown()
                return
            }
        }
        lock.lock()
        ended = end
        wakeIfRequested()
        lock.broadcast()
        lock.unlock()
        // Wake the sending thread if it is blocked in send.
        connection.shutdown()
    }
}
