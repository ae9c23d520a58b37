import Metering

/// Outcomes in binary: what a cluster node answers for a batch another node forwarded to it.
///
/// ```
/// u32 count ‖ { u8 kind (0 accepted, 1 duplicate, 2 rejected) ‖ rejected: u8 len ‖ code ‖ u32 len ‖ message ‖ u8 len ‖ field (0: none) }…
/// ```
public enum RecordOutcomeCodec {
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
            return reader.isAtEnd ? outcomes : nil
        }
    }
}
