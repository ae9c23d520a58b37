import Metering

// The content of an archive segment, before zstd: the events split into columns.
//
// Stored row by row, each event's id (random for UUIDs) interrupts the runs zstd could match in the
// fields around it; column by column, the repetitive fields (receive time, customer, meter, value,
// time) compress to a byte or two an event and the id column to its entropy. A canonical lowercase
// UUID id is packed into its 16 bytes. On this machine: 3.2:1 row by row, 5.5:1 in columns
// (synthetic events with UUIDv4 ids; BENCHMARKS.md).
//
// ```
// "TALLYSEG" ‖ u32 format (1) ‖ u64 segment number ‖ u64 event count ‖ { u64 column length } × 8
// column 0  sequence deltas     u64 BE each (the first from 0)
// column 1  event lengths       u32 BE each: the `EventCodec` bytes' length
// column 2  header              9 B each: format ‖ receivedAt
// column 3  customer            u8 length ‖ bytes
// column 4  id                  u8 length ‖ bytes, or 0 ‖ 16 B for a packed lowercase UUID
// column 5  meter               u8 length ‖ bytes
// column 6  value               17 B each
// column 7  the rest            time flag, time, properties: event length − what came before
// ```

/// Splits encoded events into the columns of a segment.
struct SegmentEncoder {
    static let magic: [UInt8] = Array("TALLYSEG".utf8)
    static let format: UInt32 = 1
    static let columnCount = 8
    static let headerSize = 8 + 4 + 8 + 8 + 8 * columnCount

    private var columns = [[UInt8]](repeating: [], count: columnCount)
    private var lastSequence: UInt64 = 0
    private(set) var count = 0

    /// Adds one event's `EventCodec` bytes; false when they are not a well-formed format-1 event.
    mutating func append(sequence: UInt64, event bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 9 + 3 + ExactDecimal.encodedSize, bytes[0] == EventCodec.format, sequence > lastSequence else { return false }
        var offset = 9
        var fields: [Range<Int>] = []
        for _ in 0..<3 {  // customer, id, meter
            guard offset < bytes.count, offset + 1 + Int(bytes[offset]) <= bytes.count else { return false }
            fields.append(offset..<(offset + 1 + Int(bytes[offset])))
            offset += 1 + Int(bytes[offset])
        }
        guard offset + ExactDecimal.encodedSize <= bytes.count else { return false }
        columns[0].appendBigEndian(sequence - lastSequence)
        columns[1].appendBigEndian(UInt32(bytes.count))
        columns[2].append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<9]))
        columns[3].append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[fields[0]]))
        let id = UnsafeRawBufferPointer(rebasing: bytes[(fields[1].lowerBound + 1)..<fields[1].upperBound])
        if !Self.packUUID(id, into: &columns[4]) {
            columns[4].append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[fields[1]]))
        }
        columns[5].append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[fields[2]]))
        columns[6].append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + ExactDecimal.encodedSize)]))
        columns[7].append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[(offset + ExactDecimal.encodedSize)...]))
        lastSequence = sequence
        count += 1
        return true
    }

    /// The segment's content.
    func finish(number: UInt64) -> [UInt8] {
        var content = Self.magic
        content.reserveCapacity(Self.headerSize + columns.reduce(0) { $0 + $1.count })
        content.appendBigEndian(Self.format)
        content.appendBigEndian(number)
        content.appendBigEndian(UInt64(count))
        for column in columns { content.appendBigEndian(UInt64(column.count)) }
        for column in columns { content.append(contentsOf: column) }
        return content
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Appends `0 ‖ 16 bytes` when `id` is a UUID written in lowercase hex with dashes at 8, 13, 18 and 23.
    private static func packUUID(_ id: UnsafeRawBufferPointer, into column: inout [UInt8]) -> Bool {
        guard id.count == 36, id[8] == 0x2D, id[13] == 0x2D, id[18] == 0x2D, id[23] == 0x2D else { return false }
        var packed = [UInt8](repeating: 0, count: 17)
        var nibble = 0
        for index in 0..<36 where index != 8 && index != 13 && index != 18 && index != 23 {
            let character = id[index]
            let value: UInt8
            switch character {
            case 0x30...0x39: value = character - 0x30
            case 0x61...0x66: value = character - 0x61 + 10
            default: return false
            }
            packed[1 + nibble / 2] |= nibble % 2 == 0 ? value << 4 : value
            nibble += 1
        }
        column.append(contentsOf: packed)
        return true
    }

    /// The 36 characters of a packed UUID.
    static func unpackUUID(_ packed: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        for (index, byte) in packed.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { output.append(0x2D) }
            output.append(hexDigits[Int(byte >> 4)])
            output.append(hexDigits[Int(byte & 0xF)])
        }
    }
}

/// Reads the events of a segment's content back, each as its original `EventCodec` bytes.
struct SegmentDecoder {
    /// The content is not a well-formed segment, for `reason`.
    struct Malformed: Error {
        var reason: String
    }

    let count: Int
    let number: UInt64
    private let content: [UInt8]
    private var cursors: [Int]
    private var ends: [Int]
    private var sequence: UInt64 = 0
    private var decoded = 0

    init(_ content: [UInt8]) throws(Malformed) {
        guard content.count >= SegmentEncoder.headerSize, Array(content[0..<8]) == SegmentEncoder.magic else {
            throw Malformed(reason: "it is not a tally segment")
        }
        let header = content.withUnsafeBytes { bytes in
            (bytes.loadBigEndianUInt32(at: 8), bytes.loadBigEndianUInt64(at: 12), bytes.loadBigEndianUInt64(at: 20))
        }
        guard header.0 == SegmentEncoder.format else { throw Malformed(reason: "segment format \(header.0) is not one this tally reads") }
        number = header.1
        guard header.2 <= UInt64(content.count) else { throw Malformed(reason: "its event count is impossible") }
        count = Int(header.2)
        var start = SegmentEncoder.headerSize
        var cursors: [Int] = []
        var ends: [Int] = []
        for column in 0..<SegmentEncoder.columnCount {
            let length = content.withUnsafeBytes { $0.loadBigEndianUInt64(at: 28 + 8 * column) }
            guard length <= UInt64(content.count - start) else { throw Malformed(reason: "column \(column) runs past the end") }
            cursors.append(start)
            start += Int(length)
            ends.append(start)
        }
        guard start == content.count else { throw Malformed(reason: "bytes follow the last column") }
        self.content = content
        self.cursors = cursors
        self.ends = ends
    }

    /// The next event's sequence and bytes (in `buffer`), or nil after the last; throws `Malformed`
    /// when a column is short, the sequences do not increase, or the events are not as many as the
    /// header counts.
    mutating func next(into buffer: inout [UInt8]) throws -> UInt64? {
        if cursors[1] == ends[1] {
            guard cursors.indices.allSatisfy({ cursors[$0] == ends[$0] }) else { throw Malformed(reason: "columns have different lengths") }
            guard decoded == count else { throw Malformed(reason: "it holds \(decoded) events where its header counts \(count)") }
            return nil
        }
        guard decoded < count else { throw Malformed(reason: "it holds more events than its header counts (\(count))") }
        decoded += 1
        buffer.removeAll(keepingCapacity: true)
        return try content.withUnsafeBytes { bytes in
            func take(_ column: Int, _ length: Int) throws(Malformed) -> UnsafeRawBufferPointer {
                guard length >= 0, ends[column] - cursors[column] >= length else { throw Malformed(reason: "column \(column) is short") }
                defer { cursors[column] += length }
                return UnsafeRawBufferPointer(rebasing: bytes[cursors[column]..<(cursors[column] + length)])
            }
            func lengthPrefixed(_ column: Int) throws(Malformed) {
                let length = Int(try take(column, 1)[0])
                buffer.append(UInt8(length))
                buffer.append(contentsOf: try take(column, length))
            }
            // The encoder writes increasing sequences: every delta is positive and the sum fits.
            let (next, overflow) = sequence.addingReportingOverflow(try take(0, 8).loadBigEndianUInt64(at: 0))
            guard next > sequence, !overflow else { throw Malformed(reason: "its sequences do not increase") }
            sequence = next
            let total = Int(try take(1, 4).loadBigEndianUInt32(at: 0))
            buffer.append(contentsOf: try take(2, 9))
            try lengthPrefixed(3)
            let idLength = Int(try take(4, 1)[0])
            if idLength == 0 {
                buffer.append(36)
                SegmentEncoder.unpackUUID(try take(4, 16), into: &buffer)
            } else {
                buffer.append(UInt8(idLength))
                buffer.append(contentsOf: try take(4, idLength))
            }
            try lengthPrefixed(5)
            buffer.append(contentsOf: try take(6, ExactDecimal.encodedSize))
            buffer.append(contentsOf: try take(7, total - buffer.count))
            return sequence
        }
    }
}
