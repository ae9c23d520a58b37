import NIOCore

/// The batches waiting for the writer, one lane per sink (a socket connection or an HTTP request),
/// taken round-robin into group commits so that no producer can fill a commit while others wait.
///
/// Each commit gives every waiting lane an equal share of its room (deficit round-robin: a lane
/// that needs less than its share leaves the rest to the others), splitting a batch where a share
/// ends. The lanes a full commit did not reach go first in the next one. So a producer whose
/// waiting events fit in `maximumEvents / lanes` is in the next commit taken, whatever the others
/// queued; a firehose alone still fills whole commits.
///
/// Not thread-safe: the writer keeps it under its lock.
struct FairQueue {
    /// The events `range` of `batch`, taken into one commit.
    struct Slice {
        let batch: IngestBatch
        let range: Range<Int>
    }

    private struct Lane {
        var batches = CircularBuffer<IngestBatch>()
        /// Events of the first batch already taken into earlier commits.
        var offset = 0
    }

    private var lanes: [ObjectIdentifier: Lane] = [:]
    /// Lanes with waiting events, in the order they are served next.
    private var ring = CircularBuffer<ObjectIdentifier>()
    /// Events waiting, over every lane.
    private(set) var events = 0

    var isEmpty: Bool { events == 0 }

    /// Lanes with waiting events.
    var laneCount: Int { ring.count }

    /// Queues `batch` at the end of its sink's lane. `batch` must hold at least one event.
    mutating func append(_ batch: IngestBatch) {
        precondition(!batch.events.isEmpty, "an empty batch has nothing to commit")
        let id = ObjectIdentifier(batch.sink)
        var lane = lanes.removeValue(forKey: id) ?? {
            ring.append(id)
            return Lane()
        }()
        lane.batches.append(batch)
        lanes[id] = lane
        events += batch.events.count
    }

    /// Takes up to `maximum` events for one commit, round-robin over the lanes.
    mutating func take(upTo maximum: Int) -> [Slice] {
        var slices: [Slice] = []
        var room = maximum
        while room > 0, !ring.isEmpty {
            // One round: every lane waiting now gets an equal share of the room left.
            let share = max(1, room / ring.count)
            var visits = ring.count
            while visits > 0, room > 0 {
                visits -= 1
                let id = ring.removeFirst()
                var lane = lanes.removeValue(forKey: id)!
                var quota = min(share, room)
                while quota > 0, let batch = lane.batches.first {
                    let count = min(quota, batch.events.count - lane.offset)
                    slices.append(Slice(batch: batch, range: lane.offset..<(lane.offset + count)))
                    lane.offset += count
                    quota -= count
                    room -= count
                    if lane.offset == batch.events.count {
                        lane.batches.removeFirst()
                        lane.offset = 0
                    }
                }
                if !lane.batches.isEmpty {
                    lanes[id] = lane
                    ring.append(id)
                }
            }
        }
        events -= maximum - room
        return slices
    }
}
