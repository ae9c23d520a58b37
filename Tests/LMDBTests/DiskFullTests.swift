import Foundation
import LMDB
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A write failing with `EIO` or `ENOSPC` on a full disk is reported as "the disk is full", with
/// free space read by `statvfs`; the classification is tested with injected readings.
@Suite("Full disks")
struct DiskFullTests {
    static let gib: UInt64 = 1 << 30
    static let eio = LMDBError(code: .ioError, operation: "mdb_txn_commit")
    static let enospc = LMDBError(code: .diskFull, operation: "mdb_txn_commit")

    @Test("EIO on a nearly full file system is the disk is full, naming the path and what to do")
    func eioOnAFullDisk() {
        let full = DiskSpace(availableBytes: 4096, totalBytes: 100 * Self.gib)
        let error = LMDBError.classifyingDiskFull(Self.eio, path: "/var/lib/tally/data", space: full)
        #expect(error.code == .diskFull)
        #expect(error.isDiskFull)
        #expect(error.operation == "mdb_txn_commit")
        #expect(error.message.hasPrefix("the disk is full (4096 of 107374182400 bytes free); LMDB reported EIO (5)"))
        #expect(error.message.hasSuffix("Free space on /var/lib/tally/data and retry"))
        #expect(!error.description.contains("Input/output error"))
    }

    @Test("EIO with room on the disk stays an I/O error; without a reading too")
    func eioWithRoom() {
        let roomy = DiskSpace(availableBytes: 40 * Self.gib, totalBytes: 100 * Self.gib)
        #expect(LMDBError.classifyingDiskFull(Self.eio, path: "/data", space: roomy) == Self.eio)
        #expect(LMDBError.classifyingDiskFull(Self.eio, path: "/data", space: nil) == Self.eio)
        #expect(!Self.eio.isDiskFull)
    }

    @Test("ENOSPC is the disk is full whatever the reading")
    func enospc() {
        for space in [nil, DiskSpace(availableBytes: 0, totalBytes: Self.gib), DiskSpace(availableBytes: Self.gib, totalBytes: 2 * Self.gib)] {
            let error = LMDBError.classifyingDiskFull(Self.enospc, path: "/data", space: space)
            #expect(error.code == .diskFull)
            #expect(error.message.hasPrefix("the disk is full"))
            #expect(!error.message.contains("LMDB reported"))
            #expect(error.message.contains("Free space on /data and retry"))
        }
    }

    @Test("other errors are left alone", arguments: [ResultCode.corrupted, .permissionDenied, .mapFull, .readersFull])
    func otherErrors(code: ResultCode) {
        let error = LMDBError(code: code, operation: "mdb_put")
        #expect(LMDBError.classifyingDiskFull(error, path: "/data", space: DiskSpace(availableBytes: 0, totalBytes: Self.gib)) == error)
    }

    @Test("nearly full: under 8 MiB, or under 0.5 % of the file system, free")
    func nearlyFull() {
        #expect(DiskSpace(availableBytes: (8 << 20) - 1, totalBytes: 100 << 20).isNearlyFull)
        #expect(!DiskSpace(availableBytes: 8 << 20, totalBytes: 100 << 20).isNearlyFull)
        #expect(DiskSpace(availableBytes: 4 * Self.gib, totalBytes: 1000 * Self.gib).isNearlyFull)
        #expect(!DiskSpace(availableBytes: 6 * Self.gib, totalBytes: 1000 * Self.gib).isNearlyFull)
        #expect(DiskSpace(availableBytes: 0, totalBytes: 0).isNearlyFull)
    }

    @Test("statvfs reads the file system of a real directory")
    func readsARealFileSystem() throws {
        let space = try #require(DiskSpace.of(path: NSTemporaryDirectory()))
        #expect(space.totalBytes > 0)
        #expect(space.availableBytes <= space.totalBytes)
        #expect(DiskSpace.of(path: "/no/such/directory/\(UUID().uuidString)") == nil)
    }
}
