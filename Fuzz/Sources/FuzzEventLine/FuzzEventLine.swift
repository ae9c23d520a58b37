import FuzzSupport
import Metering

// One event line through `EventLineParser.parse`, as the socket server and `POST /v1/events`
// call it.
//
// Properties: the parser never traps; a rejection carries one of the parser's documented codes;
// an accepted event keeps every documented rule (identifiers 1...255 bytes without control
// characters, a configured meter, 0 ≤ value < 10^18 with at most 12 fractional digits, a time
// inside the window, at most 64 sorted unique properties), and written back out as a line it
// parses to the same event.

@_cdecl("FuzzEventLine_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzOneInput)
}

/// The codes a line can be rejected with by the parser alone (the others come from the store).
let parserCodes: Set<IngestError.Code> = [
    .invalidJSON, .missingField, .invalidField, .unknownMeter, .invalidValue, .idTooLong,
    .timestampInFuture, .timestampTooOld,
]

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let line = FuzzDriver.buffer(start, count)
    switch EventLines.parse(line) {
    case .failure(let error):
        require(parserCodes.contains(error.code), "the parser rejected a line with '\(error.code)'")
        require(!error.message.isEmpty, "an error without a message")
    case .success(let event):
        check(event)
        let again = EventLines.line(event)
        let reparsed = again.withUnsafeBytes { EventLines.parse($0) }
        require(reparsed == .success(event), "\(event) written as '\(String(decoding: again, as: UTF8.self))' parses as \(reparsed)")
    }
    return 0
}

func check(_ event: UsageEvent) {
    for (name, text) in [("id", event.id), ("customer", event.customer)] {
        require((1...EventLineParser.maxIdentifierBytes).contains(text.utf8.count), "\(name) has \(text.utf8.count) bytes")
        require(!text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(name) holds a control character")
    }
    require(EventLines.parser.meterCodes.contains(event.meter), "meter '\(event.meter)' is not configured")
    require(!event.value.isNegative && event.value < EventLineParser.valueLimit, "value \(event.value) out of range")
    require(event.value.scale <= EventLineParser.maxValueFractionalDigits, "value \(event.value) has too many decimals")
    if let time = event.time {
        let received = EventLines.receivedAt.nanosecondsSinceEpoch
        let limits = EventLines.parser.limits
        require(time.nanosecondsSinceEpoch <= received + limits.maxFutureSkewNanoseconds, "time \(time) is in the future")
        require(time.nanosecondsSinceEpoch >= received - limits.dedupWindowNanoseconds, "time \(time) is too old")
    }
    require(event.properties.count <= EventLineParser.maxProperties, "\(event.properties.count) properties")
    let keys = event.properties.map { Array($0.key.utf8) }
    require(zip(keys, keys.dropFirst()).allSatisfy { $0.lexicographicallyPrecedes($1) }, "properties not sorted and unique")
    require(keys.allSatisfy { (1...EventLineParser.maxIdentifierBytes).contains($0.count) }, "a property key of the wrong length")
}
