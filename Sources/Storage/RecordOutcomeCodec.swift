import Metering

/// Outcomes in binary: what a cluster node answers for a batch another node forwarded to it.
///
/// ```
/// u32 count ‖ { u8 kind (0 accepted, 1 duplicate, 2 rejected) ‖ rejected: u8 len ‖ code ‖ u32 len ‖ message ‖ u8 len ‖ field (0: none) }…
/// [ u32 blocked ‖ { u32 index ‖ u8 len ‖ limit id ‖ u8 len ‖ meter (0: the amount) ‖ used (17-byte decimal) ‖ limit (17-byte decimal) ‖ ordered i64 resets_at ns }… ]
/// ```
/// The trailing section (the events whose customer a `disable` limit blocks) is absent when none is.
public enum RecordOutcomeCodec {
    /// The outcomes, and for each event whose customer is blocked the limit that blocks it.
    public static func encode(_ outcomes: [RecordOutcome], blocked: [BlockingLimit?]) -> [UInt8] {
        var bytes = encode(outcomes)
        let entries = blocked.enumerated().compactMap { index, limit in limit.map { (index, $0) } }
        guard !entries.isEmpty else { return bytes }
        bytes.appendBigEndian(UInt32(entries.count))
        for (index, limit) in entries {
            bytes.appendBigEndian(UInt32(index))
            bytes.appendShortString(limit.id)
            bytes.appendShortString(limit.meter ?? "")
            bytes.appendDecimal(limit.used)
            bytes.appendDecimal(limit.limit)
            bytes.appendOrdered(limit.resetsAt.nanosecondsSinceEpoch)
        }
        return bytes
    }

    /// The outcomes and the blocking limits (empty when none is); nil when the bytes are not in this form.
    public static func decodeWithBlocked(_ bytes: [UInt8]) -> (outcomes: [RecordOutcome], blocked: [BlockingLimit?])? {
        bytes.withUnsafeBytes { raw -> ([RecordOutcome], [BlockingLimit?])? in
            var reader = ByteReader(bytes: raw)
            guard let outcomes = decodeOutcomes(&reader) else { return nil }
            if reader.isAtEnd { return (outcomes, []) }
            guard let count = reader.uint32() else { return nil }
            var blocked = [BlockingLimit?](repeating: nil, count: outcomes.count)
            for _ in 0..<count {
                guard let index = reader.uint32(), Int(index) < outcomes.count, let id = reader.shortString(), let meter = reader.shortString(),
                      let used = reader.decimal(), let limit = reader.decimal(), let resets = reader.orderedInt64() else { return nil }
                blocked[Int(index)] = BlockingLimit(id: id, meter: meter.isEmpty ? nil : meter, used: used, limit: limit,
                                                    resetsAt: Timestamp(nanosecondsSinceEpoch: resets))
            }
            return reader.isAtEnd ? (outcomes, blocked) : nil
        }
    }

    public static func encode(_ outcomes: [RecordOutcome]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendBigEndian(UInt32(outcomes.count))
        for outcome in outcomes {
            switch outcome {
            case .accepted: bytes.append(0)
            case .duplicate: bytes.append(1)
            case .rejected(let error):
                bytes.append(2)
                bytes.appendShortString(error.code.rawValue)
                bytes.appendLongString(error.message)
                bytes.appendShortString(error.field ?? "")
            }
        }
        return bytes
    }

    /// The outcomes; nil when the bytes are not whole outcomes in this form.
    public static func decode(_ bytes: [UInt8]) -> [RecordOutcome]? {
        bytes.withUnsafeBytes { raw -> [RecordOutcome]? in
            var reader = ByteReader(bytes: raw)
            guard let outcomes = decodeOutcomes(&reader) else { return nil }
            return reader.isAtEnd ? outcomes : nil
        }
    }

    private static func decodeOutcomes(_ reader: inout ByteReader) -> [RecordOutcome]? {
        guard let count = reader.uint32() else { return nil }
        var outcomes: [RecordOutcome] = []
        for _ in 0..<count {
            switch reader.byte() {
            case 0: outcomes.append(.accepted)
            case 1: outcomes.append(.duplicate)
            case 2:
                guard let code = reader.shortString(), let message = reader.longString(), let field = reader.shortString() else { return nil }
                outcomes.append(.rejected(IngestError(code: IngestError.Code(rawValue: code), message: message, field: field.isEmpty ? nil : field)))
            default: return nil
            }
        }
        return outcomes
    }
}
