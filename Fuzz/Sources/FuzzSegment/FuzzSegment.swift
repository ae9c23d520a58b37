import FuzzSupport
import Metering
import Storage
import Zstd

// An archive segment's content through `EventArchive.forEachEvent(inSegmentContent:shownAs:_:)`,
// how `tally export`, `tally archive --verify` and rerating read archived events once a segment
// file's SHA-256 matched. An input that starts with zstd's frame magic is first decompressed as
// the file would be (`Zstd.decompress`, at most 1 MiB), so the corpus can hold real `.tseg` files.
//
// Properties: no trap on any bytes; a bad segment is `StoreError` `.damaged`; a good one yields as
// many events as its header counts, in increasing sequence order.

@_cdecl("FuzzSegment_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzOneInput)
}

let zstdMagic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var content = Array(FuzzDriver.buffer(start, count))
    if content.starts(with: zstdMagic) {
        do {
            content = try Zstd.decompress(content, maximumSize: 1 << 20)
        } catch {
            require(!error.message.isEmpty, "a zstd error without a message")
            return 0
        }
    }
    var last: UInt64 = 0
    var decoded = 0
    let header = content.count >= 28 ? content[20..<28].reduce(0) { $0 << 8 | Int($1) } : -1
    do {
        _ = try EventArchive.forEachEvent(inSegmentContent: content, shownAs: "fuzz.tseg") { stored in
            require(stored.sequence > last, "sequence \(stored.sequence) after \(last)")
            last = stored.sequence
            decoded += 1
            return true
        }
        require(decoded == header, "\(decoded) events in a segment whose header says \(header)")
    } catch let error as StoreError {
        require(error.code == .damaged, "a bad segment is '\(error.code)', not damaged")
    } catch {
        require(false, "an untyped error: \(error)")
    }
    return 0
}
