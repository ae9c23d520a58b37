import Foundation
import LMDB
import Testing

@Suite("Transactions")
struct TransactionTests {
    @Test("put, get and delete round trip with raw buffers and arrays")
    func roundTrip() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("data")
            let keyBytes = bytes("customer/42")
            let valueBytes: [UInt8] = [0, 1, 2, 255]
            try environment.write { (transaction) throws in
                let result = try keyBytes.withUnsafeBytes { (key) throws in
                    try valueBytes.withUnsafeBytes { (value) throws in
                        try transaction.put(database, key: key, value: value)
                    }
                }
                #expect(result == .stored)
                // Visible inside the same transaction, zero-copy.
                let raw = try keyBytes.withUnsafeBytes { key in try transaction.get(database, key: key) }
                #expect(raw.map(Array.init) == valueBytes)
            }
            try environment.read { (transaction) throws in
                #expect(try transaction.get(database, key: keyBytes) == valueBytes)
            }
            let deleted = try environment.write { transaction in try transaction.delete(database, key: keyBytes) }
            #expect(deleted)
            try environment.read { (transaction) throws in
                #expect(try transaction.get(database, key: keyBytes) == nil)
            }
        }
    }

    @Test("an empty value is stored and read back as empty, not missing")
    func emptyValue() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase(nil)
            try environment.write { transaction in try transaction.put(database, key: bytes("k"), value: []) }
            let value = try environment.read { transaction in try transaction.get(database, key: bytes("k")) }
            #expect(value == [])
        }
    }

    @Test("a plain put overwrites")
    func overwrite() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase(nil)
            try environment.write { (transaction) throws in
                #expect(try transaction.put(database, key: bytes("k"), value: bytes("old")) == .stored)
                #expect(try transaction.put(database, key: bytes("k"), value: bytes("new")) == .stored)
            }
            #expect(try environment.read { try $0.get(database, key: bytes("k")) } == bytes("new"))
        }
    }

    @Test("commit makes data visible to a later read; a throwing body aborts and rethrows")
    func commitAndAbort() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("data")
            let returned = try environment.write { (transaction) throws in
                try transaction.put(database, key: bytes("kept"), value: bytes("1"))
                return 42
            }
            #expect(returned == 42)

            var runs = 0
            #expect(throws: Boom.self) {
                try environment.write { (transaction) throws in
                    runs += 1
                    try transaction.put(database, key: bytes("discarded"), value: bytes("2"))
                    try transaction.delete(database, key: bytes("kept"))
                    throw Boom()
                }
            }
            #expect(runs == 1)
            try environment.read { (transaction) throws in
                #expect(try transaction.get(database, key: bytes("kept")) == bytes("1"))
                #expect(try transaction.get(database, key: bytes("discarded")) == nil)
            }
        }
    }

    @Test("a read transaction is a snapshot: a read inside a write body does not see uncommitted changes")
    func snapshotIsolation() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase(nil)
            try environment.write { transaction in try transaction.put(database, key: bytes("k"), value: bytes("1")) }
            try environment.write { (transaction) throws in
                try transaction.put(database, key: bytes("k"), value: bytes("2"))
                let outside = try environment.read { try $0.get(database, key: bytes("k")) }
                #expect(outside == bytes("1"))
                #expect(try transaction.get(database, key: bytes("k")) == bytes("2"))
            }
            #expect(try environment.read { try $0.get(database, key: bytes("k")) } == bytes("2"))
        }
    }

    @Test("noOverwrite on an existing key returns keyExists and keeps the old value")
    func noOverwrite() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("dedup")
            try environment.write { (transaction) throws in
                #expect(try transaction.put(database, key: bytes("event-1"), value: bytes("first"), flags: .noOverwrite) == .stored)
                #expect(try transaction.put(database, key: bytes("event-1"), value: bytes("second"), flags: .noOverwrite) == .keyExists)
                // The transaction is still healthy after keyExists.
                #expect(try transaction.put(database, key: bytes("event-2"), value: bytes("x"), flags: .noOverwrite) == .stored)
            }
            try environment.read { (transaction) throws in
                #expect(try transaction.get(database, key: bytes("event-1")) == bytes("first"))
                #expect(try transaction.get(database, key: bytes("event-2")) == bytes("x"))
            }
        }
    }

    @Test("missing keys are nil and false, never thrown")
    func notFound() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("data")
            try environment.read { (transaction) throws in
                #expect(try transaction.get(database, key: bytes("nope")) == nil)
            }
            try environment.write { (transaction) throws in
                #expect(try transaction.get(database, key: bytes("nope")) == nil)
                #expect(try transaction.delete(database, key: bytes("nope")) == false)
                #expect(try transaction.delete(database, key: bytes("nope"), value: bytes("v")) == false)
            }
        }
    }

    @Test("append takes sorted keys and reports keyExists for a key out of order")
    func append() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("log")
            try environment.write { (transaction) throws in
                for index in 0..<1000 {
                    #expect(try transaction.put(database, key: key(index), value: bytes("e"), flags: .append) == .stored)
                }
                #expect(try transaction.put(database, key: key(500), value: bytes("late"), flags: .append) == .keyExists)
                #expect(try transaction.put(database, key: key(999), value: bytes("same"), flags: .append) == .keyExists)
                #expect(try transaction.put(database, key: key(1000), value: bytes("e"), flags: .append) == .stored)
            }
            try environment.read { (transaction) throws in
                #expect(try transaction.statistics(database).entries == 1001)
                #expect(try transaction.get(database, key: key(500)) == bytes("e"))
            }
        }
    }

    @Test("reserve writes the value in place; on keyExists fill is not called")
    func reserve() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("totals")
            let keyBytes = bytes("total")
            try environment.write { (transaction) throws in
                let result = try keyBytes.withUnsafeBytes { (key) throws in
                    try transaction.put(database, key: key, valueCount: 16) { buffer in
                        buffer.storeBytes(of: UInt64(7).bigEndian, toByteOffset: 0, as: UInt64.self)
                        buffer.storeBytes(of: UInt64(9).bigEndian, toByteOffset: 8, as: UInt64.self)
                    }
                }
                #expect(result == .stored)
                var called = false
                let second = try keyBytes.withUnsafeBytes { (key) throws in
                    try transaction.put(database, key: key, valueCount: 16, flags: .noOverwrite) { _ in called = true }
                }
                #expect(second == .keyExists)
                #expect(!called)
            }
            let value = try environment.read { try $0.get(database, key: keyBytes) }
            #expect(value == [0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9])
        }
    }

    @Test("deleteAll empties a database and keeps it usable")
    func deleteAll() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("data")
            let other = try environment.openDatabase("other")
            try environment.write { (transaction) throws in
                for index in 0..<200 { try transaction.put(database, key: key(index), value: bytes("v")) }
                try transaction.put(other, key: bytes("k"), value: bytes("v"))
            }
            try environment.write { transaction in try transaction.deleteAll(database) }
            #expect(try environment.statistics(database).entries == 0)
            #expect(try environment.statistics(other).entries == 1)
            try environment.write { transaction in try transaction.put(database, key: bytes("again"), value: bytes("v")) }
            #expect(try environment.statistics(database).entries == 1)
        }
    }

    @Test("an empty key and a key longer than maxKeySize throw badValueSize")
    func badKeys() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase(nil)
            let tooLong = [UInt8](repeating: 1, count: environment.maxKeySize + 1)
            try environment.write { (transaction) throws in
                let empty = #expect(throws: LMDBError.self) { try transaction.put(database, key: [], value: bytes("v")) }
                #expect(empty?.code == .badValueSize)
                #expect(empty?.operation == "mdb_put")
                #expect(empty?.message.contains("maxKeySize") == true)
                let long = #expect(throws: LMDBError.self) { try transaction.put(database, key: tooLong, value: bytes("v")) }
                #expect(long?.code == .badValueSize)
                #expect(throws: LMDBError.self) { try transaction.get(database, key: []) }
                // A key of exactly maxKeySize bytes is fine.
                let longest = [UInt8](repeating: 1, count: environment.maxKeySize)
                #expect(try transaction.put(database, key: longest, value: bytes("v")) == .stored)
            }
        }
    }

    @Test("a large value goes to overflow pages and reads back intact")
    func largeValue() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase(nil)
            let large = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try environment.write { transaction in try transaction.put(database, key: bytes("big"), value: large) }
            #expect(try environment.read { try $0.get(database, key: bytes("big")) } == large)
            #expect(try environment.statistics(database).overflowPages > 0)
        }
    }

    @Test("helpers can be generic over read and write transactions")
    func genericHelpers() throws {
        func lookUp(_ transaction: borrowing some ReadableTransaction & ~Copyable, _ database: Database) throws -> [UInt8]? {
            try transaction.get(database, key: bytes("k"))
        }
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase(nil)
            try environment.write { (transaction) throws in
                try transaction.put(database, key: bytes("k"), value: bytes("v"))
                #expect(try lookUp(transaction, database) == bytes("v"))
            }
            #expect(try environment.read { transaction in try lookUp(transaction, database) } == bytes("v"))
        }
    }

    @Test("duplicate-sorted databases keep sorted values per key")
    func duplicates() throws {
        try withEnvironment { (environment, _) throws in
            let index = try environment.openDatabase("index", flags: [.duplicateSort])
            try environment.write { (transaction) throws in
                #expect(try transaction.put(index, key: bytes("a"), value: bytes("3")) == .stored)
                #expect(try transaction.put(index, key: bytes("a"), value: bytes("1")) == .stored)
                #expect(try transaction.put(index, key: bytes("a"), value: bytes("2")) == .stored)
                #expect(try transaction.put(index, key: bytes("b"), value: bytes("9")) == .stored)
                #expect(try transaction.put(index, key: bytes("a"), value: bytes("2"), flags: .noDuplicateData) == .keyExists)
                #expect(try transaction.put(index, key: bytes("a"), value: bytes("9"), flags: .appendDuplicate) == .stored)
                #expect(try transaction.put(index, key: bytes("a"), value: bytes("5"), flags: .appendDuplicate) == .keyExists)
            }
            try environment.read { (transaction) throws in
                #expect(try transaction.get(index, key: bytes("a")) == bytes("1"))
                #expect(try transaction.statistics(index).entries == 5)
                let values = try transaction.entries(index, prefix: bytes("a")).map { String(decoding: $0.value, as: UTF8.self) }
                #expect(values == ["1", "2", "3", "9"])
                try transaction.withCursor(index) { (cursor) throws in
                    #expect(try cursor.seek(exactly: bytes("a")) != nil)
                    #expect(try cursor.duplicateCount() == 4)
                    let last = try #require(try cursor.lastDuplicate())
                    #expect(Array(last.key) == bytes("a") && Array(last.value) == bytes("9"))
                    #expect(try cursor.nextDuplicate() == nil)
                    let previous = try #require(try cursor.previousDuplicate())
                    #expect(Array(previous.value) == bytes("3"))
                    let first = try #require(try cursor.firstDuplicate())
                    #expect(Array(first.key) == bytes("a") && Array(first.value) == bytes("1"))
                    let nextKey = try #require(try cursor.nextKey())
                    #expect(Array(nextKey.key) == bytes("b"))
                    let previousKey = try #require(try cursor.previousKey())
                    #expect(Array(previousKey.key) == bytes("a") && Array(previousKey.value) == bytes("9"))

                    let exact = try bytes("a").withUnsafeBytes { (key) throws in
                        try bytes("2").withUnsafeBytes { value in try cursor.seek(key: key, value: value).map { Array($0.value) } }
                    }
                    #expect(exact == bytes("2"))
                    let missing = try bytes("a").withUnsafeBytes { (key) throws in
                        try bytes("4").withUnsafeBytes { value in try cursor.seek(key: key, value: value) }
                    }
                    #expect(missing == nil)
                    let range = try bytes("a").withUnsafeBytes { (key) throws in
                        try bytes("4").withUnsafeBytes { value in try cursor.seek(key: key, atLeastValue: value).map { Array($0.value) } }
                    }
                    #expect(range == bytes("9"))
                }
            }
            try environment.write { (transaction) throws in
                #expect(try transaction.delete(index, key: bytes("a"), value: bytes("2")))
                #expect(try transaction.delete(index, key: bytes("a"), value: bytes("2")) == false)
                #expect(try transaction.delete(index, key: bytes("b")))
            }
            #expect(try environment.statistics(index).entries == 3)
        }
    }

    @Test("a duplicate-only cursor move on a plain database throws incompatible")
    func duplicateMoveOnPlainDatabase() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase(nil)
            try environment.write { transaction in try transaction.put(database, key: bytes("k"), value: bytes("v")) }
            try environment.read { (transaction) throws in
                try transaction.withCursor(database) { (cursor) throws in
                    _ = try cursor.first()
                    let error = #expect(throws: LMDBError.self) { try cursor.lastDuplicate() }
                    #expect(error?.code == .incompatible)
                    #expect(error?.operation == "mdb_cursor_get")
                }
            }
        }
    }

    @Test("reads run on many threads at once while a writer commits")
    func concurrentReaders() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase(nil)
            try environment.write { transaction in try transaction.put(database, key: bytes("n"), value: key(0)) }
            let state = SharedState()
            runOnThreads(4) { worker in
                do {
                    if worker == 0 {
                        for index in 1...300 {
                            try environment.write { transaction in try transaction.put(database, key: bytes("n"), value: key(index)) }
                        }
                        return
                    }
                    var lastSeen: UInt32 = 0
                    for _ in 0..<2000 {
                        let number = try environment.read { transaction -> UInt32 in
                            guard let value = try transaction.get(database, key: bytes("n")) else { return .max }
                            return value.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                        }
                        // Snapshots only move forward.
                        if number < lastSeen || number > 300 {
                            state.report("worker \(worker) saw \(number) after \(lastSeen)")
                        }
                        lastSeen = number
                    }
                } catch {
                    state.report("worker \(worker): \(error)")
                }
            }
            #expect(state.problems.withLock { $0 } == [])
            #expect(try environment.read { try $0.get(database, key: bytes("n")) } == key(300))
        }
    }
}
