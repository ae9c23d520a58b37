import LMDB
import Testing

@Suite("Cursors")
struct CursorTests {
    /// Fills a database with the keys below, inserted out of order; values are the keys reversed.
    static let sample = ["b/2", "a/1", "b/1", "c", "a/2", "b/3", "a", "b\u{7F}"]

    private func withSample<T>(_ body: (Environment, Database) throws -> T) throws -> T {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("sample")
            try environment.write { (transaction) throws in
                for text in Self.sample {
                    try transaction.put(database, key: bytes(text), value: bytes(String(text.reversed())))
                }
            }
            return try body(environment, database)
        }
    }

    private func string(_ buffer: UnsafeRawBufferPointer) -> String {
        String(decoding: buffer, as: UTF8.self)
    }

    @Test("next walks every key in byte order, previous walks back")
    func order() throws {
        try withSample { (environment, database) throws in
            try environment.read { (transaction) throws in
                try transaction.withCursor(database) { (cursor) throws in
                    var forward: [String] = []
                    var entry = try cursor.first()
                    while let current = entry {
                        forward.append(string(current.key))
                        #expect(string(current.value) == String(string(current.key).reversed()))
                        entry = try cursor.next()
                    }
                    #expect(forward == Self.sample.sorted())

                    var backward: [String] = []
                    entry = try cursor.last()
                    while let current = entry {
                        backward.append(string(current.key))
                        entry = try cursor.previous()
                    }
                    #expect(backward == Self.sample.sorted().reversed())
                }
            }
        }
    }

    @Test("seek(atLeast:) lands on the first key not below the target; past the end it is nil")
    func seekAtLeast() throws {
        try withSample { (environment, database) throws in
            try environment.read { (transaction) throws in
                try transaction.withCursor(database) { (cursor) throws in
                    #expect(try cursor.seek(atLeast: bytes("a/1")).map { string($0.key) } == "a/1")
                    #expect(try cursor.seek(atLeast: bytes("a/15")).map { string($0.key) } == "a/2")
                    #expect(try cursor.seek(atLeast: bytes("b")).map { string($0.key) } == "b/1")
                    #expect(try cursor.next().map { string($0.key) } == "b/2")
                    #expect(try cursor.current().map { string($0.key) } == "b/2")
                    #expect(try cursor.seek(atLeast: bytes("d")) == nil)
                    let empty = #expect(throws: LMDBError.self) { try cursor.seek(atLeast: bytes("")) }
                    #expect(empty?.code == .badValueSize)
                }
            }
        }
    }

    @Test("seek(exactly:) finds only the exact key")
    func seekExactly() throws {
        try withSample { (environment, database) throws in
            try environment.read { (transaction) throws in
                try transaction.withCursor(database) { (cursor) throws in
                    let found = try #require(try cursor.seek(exactly: bytes("b/3")))
                    #expect(string(found.key) == "b/3")
                    #expect(string(found.value) == "3/b")
                    #expect(try cursor.seek(exactly: bytes("b/")) == nil)
                    let raw = try bytes("c").withUnsafeBytes { key in try cursor.seek(exactly: key).map { string($0.value) } }
                    #expect(raw == "c")
                }
            }
        }
    }

    @Test("an empty database gives nil for every move")
    func emptyDatabase() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("empty")
            try environment.read { (transaction) throws in
                try transaction.withCursor(database) { (cursor) throws in
                    #expect(try cursor.first() == nil)
                    #expect(try cursor.last() == nil)
                    #expect(try cursor.next() == nil)
                    #expect(try cursor.previous() == nil)
                    #expect(try cursor.seek(atLeast: bytes("a")) == nil)
                    #expect(try cursor.seek(exactly: bytes("a")) == nil)
                }
                #expect(try transaction.entries(database) == [])
                #expect(try transaction.entries(database, prefix: bytes("a"), reverse: true) == [])
            }
        }
    }

    @Test("current() on a cursor that was never positioned throws invalidArgument")
    func unpositionedCurrent() throws {
        try withSample { (environment, database) throws in
            try environment.read { (transaction) throws in
                try transaction.withCursor(database) { (cursor) throws in
                    let error = #expect(throws: LMDBError.self) { try cursor.current() }
                    #expect(error?.code == .invalidArgument)
                }
            }
        }
    }

    @Test("prefix ranges, forwards and backwards", arguments: [
        ("a", ["a", "a/1", "a/2"]),
        ("a/", ["a/1", "a/2"]),
        ("b", ["b/1", "b/2", "b/3", "b\u{7F}"]),
        ("b/", ["b/1", "b/2", "b/3"]),
        ("c", ["c"]),
        ("d", []),
        ("", ["a", "a/1", "a/2", "b/1", "b/2", "b/3", "b\u{7F}", "c"]),
    ])
    func prefixes(prefix: String, expected: [String]) throws {
        try withSample { (environment, database) throws in
            try environment.read { (transaction) throws in
                #expect(keys(try transaction.entries(database, prefix: bytes(prefix))) == expected)
                #expect(keys(try transaction.entries(database, prefix: bytes(prefix), reverse: true)) == expected.reversed())
                try transaction.withCursor(database) { (cursor) throws in
                    var seen: [String] = []
                    try cursor.forEach(prefix: bytes(prefix), reverse: true) { (key, _) throws in
                        seen.append(string(key))
                        return true
                    }
                    #expect(seen == expected.reversed())
                }
            }
        }
    }

    @Test("reverse prefix ranges handle 0xFF bytes at the end of the prefix and of the keys")
    func prefixWithHighBytes() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("high")
            let stored: [[UInt8]] = [[0x01], [0x01, 0xFF], [0x01, 0xFF, 0x00], [0x01, 0xFF, 0xFF], [0x02], [0xFF], [0xFF, 0xFF, 0x01]]
            try environment.write { (transaction) throws in
                for key in stored { try transaction.put(database, key: key, value: [0]) }
            }
            let cases: [(prefix: [UInt8], reverse: Bool, expected: [[UInt8]])] = [
                ([0x01, 0xFF], true, [[0x01, 0xFF, 0xFF], [0x01, 0xFF, 0x00], [0x01, 0xFF]]),
                ([0x01, 0xFF], false, [[0x01, 0xFF], [0x01, 0xFF, 0x00], [0x01, 0xFF, 0xFF]]),
                ([0xFF], true, [[0xFF, 0xFF, 0x01], [0xFF]]),
                ([0xFF, 0xFF], true, [[0xFF, 0xFF, 0x01]]),
                ([0x01], true, [[0x01, 0xFF, 0xFF], [0x01, 0xFF, 0x00], [0x01, 0xFF], [0x01]]),
            ]
            for item in cases {
                let found = try environment.read { transaction in
                    try transaction.entries(database, prefix: item.prefix, reverse: item.reverse).map(\.key)
                }
                #expect(found == item.expected, "prefix \(item.prefix) reverse \(item.reverse)")
            }
        }
    }

    @Test("entries stops at the limit")
    func limit() throws {
        try withSample { (environment, database) throws in
            try environment.read { (transaction) throws in
                #expect(keys(try transaction.entries(database, prefix: bytes("b/"), limit: 2)) == ["b/1", "b/2"])
                #expect(keys(try transaction.entries(database, prefix: bytes("b/"), reverse: true, limit: 1)) == ["b/3"])
                #expect(try transaction.entries(database, limit: 0) == [])
            }
        }
    }

    @Test("forEach(startingAt:) walks from a key in either direction and stops when told", arguments: [
        ("b/2", false, Int.max, ["b/2", "b/3", "b\u{7F}", "c"]),
        ("b/2", true, Int.max, ["b/2", "b/1", "a/2", "a/1", "a"]),
        ("b/25", true, 2, ["b/2", "b/1"]),
        ("zzz", true, 1, ["c"]),
        ("zzz", false, Int.max, []),
        ("0", true, Int.max, []),
        (nil, false, 3, ["a", "a/1", "a/2"]),
        (nil, true, 1, ["c"]),
    ] as [(String?, Bool, Int, [String])])
    func forEachStartingAt(start: String?, reverse: Bool, stopAfter: Int, expected: [String]) throws {
        try withSample { (environment, database) throws in
            let seen = try environment.read { (transaction) throws in
                try transaction.withCursor(database) { (cursor) throws in
                    var seen: [String] = []
                    let body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool = { (key, _) throws in
                        seen.append(string(key))
                        return seen.count < stopAfter
                    }
                    if let start {
                        try cursor.forEach(startingAt: bytes(start), reverse: reverse, body)
                    } else {
                        try cursor.forEach(reverse: reverse, body)
                    }
                    return seen
                }
            }
            #expect(seen == expected)
        }
    }

    @Test("reverse forEach from a duplicate key starts at its last value")
    func reverseFromDuplicateKey() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("dups", flags: .duplicateSort)
            try environment.write { (transaction) throws in
                for (key, value) in [("a", "1"), ("b", "1"), ("b", "2"), ("b", "3"), ("c", "1")] {
                    try transaction.put(database, key: bytes(key), value: bytes(value))
                }
            }
            try environment.read { (transaction) throws in
                try transaction.withCursor(database) { (cursor) throws in
                    var seen: [String] = []
                    try cursor.forEach(startingAt: bytes("b"), reverse: true) { (key, value) throws in
                        seen.append(string(key) + string(value))
                        return true
                    }
                    #expect(seen == ["b3", "b2", "b1", "a1"])
                }
            }
        }
    }

    @Test("errors thrown by the body come out of forEach unchanged")
    func forEachRethrows() throws {
        try withSample { (environment, database) throws in
            try environment.read { (transaction) throws in
                try transaction.withCursor(database) { (cursor) throws in
                    var calls = 0
                    #expect(throws: Boom.self) {
                        try cursor.forEach(prefix: bytes("b")) { (_, _) throws in
                            calls += 1
                            throw Boom()
                        }
                    }
                    #expect(calls == 1)
                }
            }
        }
    }

    @Test("a write cursor deletes while iterating and puts")
    func writeCursor() throws {
        try withSample { (environment, database) throws in
            try environment.write { (transaction) throws in
                try transaction.withWriteCursor(database) { (cursor) throws in
                    // Delete every "b/" key while walking them.
                    try cursor.forEach(prefix: bytes("b/")) { (_, _) throws in
                        try cursor.delete()
                        return true
                    }
                    #expect(try cursor.put(key: bytes("b/9"), value: bytes("new")) == .stored)
                    #expect(try cursor.current().map { string($0.key) } == "b/9")
                    #expect(try cursor.put(key: bytes("b/9"), value: bytes("other"), flags: .noOverwrite) == .keyExists)
                    #expect(try cursor.next().map { string($0.key) } == "b\u{7F}")
                }
            }
            try environment.read { (transaction) throws in
                #expect(keys(try transaction.entries(database)) == ["a", "a/1", "a/2", "b/9", "b\u{7F}", "c"])
                #expect(try transaction.get(database, key: bytes("b/9")) == bytes("new"))
            }
        }
    }

    @Test("a write cursor deletes all duplicates of a key at once")
    func writeCursorDeletesDuplicates() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("dups", flags: .duplicateSort)
            try environment.write { (transaction) throws in
                for value in ["1", "2", "3"] { try transaction.put(database, key: bytes("k"), value: bytes(value)) }
                try transaction.put(database, key: bytes("l"), value: bytes("1"))
            }
            try environment.write { (transaction) throws in
                try transaction.withWriteCursor(database) { (cursor) throws in
                    _ = try cursor.seek(exactly: bytes("k"))
                    try cursor.delete(allDuplicates: true)
                }
            }
            try environment.read { (transaction) throws in
                #expect(keys(try transaction.entries(database)) == ["l"])
            }
        }
    }

    @Test("deleting with an unpositioned write cursor throws")
    func deleteUnpositioned() throws {
        try withSample { (environment, database) throws in
            try environment.write { (transaction) throws in
                try transaction.withWriteCursor(database) { (cursor) throws in
                    #expect(throws: LMDBError.self) { try cursor.delete() }
                }
            }
            #expect(try environment.statistics(database).entries == Self.sample.count)
        }
    }

    @Test("a read cursor inside a write transaction sees the transaction's changes")
    func readCursorInWrite() throws {
        try withSample { (environment, database) throws in
            try environment.write { (transaction) throws in
                try transaction.put(database, key: bytes("a/3"), value: bytes("x"))
                try transaction.withCursor(database) { (cursor) throws in
                    var seen: [String] = []
                    try cursor.forEach(prefix: bytes("a/")) { (key, _) throws in
                        seen.append(string(key))
                        return true
                    }
                    #expect(seen == ["a/1", "a/2", "a/3"])
                }
            }
        }
    }
}
