import Foundation
import LMDB
import Testing

@Suite("Result codes and errors")
struct ErrorTests {
    @Test("LMDB codes carry their C names and values")
    func lmdbCodes() {
        #expect(ResultCode.keyExists.rawValue == -30799)
        #expect(ResultCode.notFound.rawValue == -30798)
        #expect(ResultCode.mapFull.rawValue == -30792)
        #expect(ResultCode.mapResized.rawValue == -30785)
        #expect(ResultCode.badDatabase.rawValue == -30780)
        #expect(ResultCode.success.rawValue == 0)
        #expect(ResultCode.mapFull.name == "MDB_MAP_FULL")
        #expect(ResultCode.mapFull.description == "MDB_MAP_FULL (-30792)")
        #expect(ResultCode.readersFull.isLMDBCode)
        #expect(ResultCode.badDatabase.isLMDBCode)
        #expect(!ResultCode.diskFull.isLMDBCode)
        #expect(!ResultCode.success.isLMDBCode)
        let all: [ResultCode] = [
            .keyExists, .notFound, .pageNotFound, .corrupted, .panic, .versionMismatch, .invalid, .mapFull,
            .dbsFull, .readersFull, .tlsFull, .transactionFull, .cursorFull, .pageFull, .mapResized,
            .incompatible, .badReaderSlot, .badTransaction, .badValueSize, .badDatabase,
        ]
        #expect(Set(all).count == 20)
        #expect(all.allSatisfy { $0.isLMDBCode && $0.name.hasPrefix("MDB_") })
    }

    @Test("errno values pass through with their names")
    func errnoCodes() {
        #expect(ResultCode.diskFull == ResultCode(rawValue: ENOSPC))
        #expect(ResultCode.permissionDenied == ResultCode(rawValue: EACCES))
        #expect(ResultCode.diskFull.name == "ENOSPC")
        #expect(ResultCode(rawValue: EIO).name == "EIO")
        #expect(ResultCode(rawValue: 9999).name == "errno 9999")
    }

    @Test("messages carry LMDB's text and a hint of what to do", arguments: [
        (ResultCode.mapFull, "MDB_MAP_FULL", "maxMapSize"),
        (ResultCode.diskFull, "No space left on device", "Free disk space"),
        (ResultCode.permissionDenied, "Permission denied", "read-only"),
        (ResultCode.readersFull, "MDB_READERS_FULL", "maxReaders"),
        (ResultCode.transactionFull, "MDB_TXN_FULL", "smaller transactions"),
    ])
    func messages(code: ResultCode, text: String, hint: String) {
        let error = LMDBError(code: code, operation: "mdb_put")
        #expect(error.message.contains(text))
        #expect(error.message.contains(hint))
        #expect(error.description == "mdb_put failed with \(code): \(error.message)")
    }

    @Test("an explicit message replaces the standard one; errors compare by value")
    func explicitMessage() {
        let error = LMDBError(code: .notFound, operation: "lookup", message: "no such thing")
        #expect(error.message == "no such thing")
        #expect(error == LMDBError(code: .notFound, operation: "lookup", message: "no such thing"))
        #expect(error != LMDBError(code: .notFound, operation: "lookup"))
        #expect(LMDBError(code: .success, operation: "x").message == "Successful return: 0")
    }
}
