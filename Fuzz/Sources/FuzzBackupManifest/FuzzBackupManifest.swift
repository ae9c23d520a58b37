import Foundation
import FuzzSupport
import Metering
import Storage

// A backup's `manifest.json` through `BackupManifest.decode(_:shownAs:)`, what `tally restore`
// checks a backup with before it reads any other file of it.
//
// Properties: no trap on any bytes; a bad manifest is `StoreError` `.damaged` or `.incompatible`;
// an accepted one encodes (as `tally backup` writes it) to a manifest that reads back, and
// encoding that again gives the same bytes.

@_cdecl("FuzzBackupManifest_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzOneInput)
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(FuzzDriver.buffer(start, count))
    let manifest: BackupManifest
    do {
        manifest = try BackupManifest.decode(bytes, shownAs: "fuzz")
    } catch {
        require(error.code == .damaged || error.code == .incompatible, "a bad manifest is '\(error.code)'")
        return 0
    }
    require(manifest.formatVersion == BackupManifest.currentFormatVersion, "format \(manifest.formatVersion) accepted")
    require(manifest.files.allSatisfy { $0.compressedSize >= 0 && $0.uncompressedSize >= 0 }, "a negative size accepted")
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    guard let written = try? encoder.encode(manifest) else {
        require(false, "an accepted manifest does not encode")
        return 0
    }
    let again: BackupManifest
    do {
        again = try BackupManifest.decode(Array(written), shownAs: "fuzz")
    } catch {
        require(false, "the manifest written as '\(String(decoding: written, as: UTF8.self))' does not read back: \(error)")
        return 0
    }
    require((try? encoder.encode(again)) == written, "writing the manifest read back gives other bytes")
    return 0
}
