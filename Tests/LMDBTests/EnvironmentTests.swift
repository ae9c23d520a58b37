import Foundation
import LMDB
import Testing

@Suite("Environment")
struct EnvironmentTests {
    @Test("opening creates the directory and its parents, closing on release lets it reopen with the data")
    func openCloseReopen() throws {
        try withTemporaryDirectory { (root) throws in
            let path = root + "/a/b/env"
            do {
                let environment = try Environment(path: path, options: .init(mapSize: 1 << 20))
                #expect(environment.path == path)
                #expect(environment.mapSize == 1 << 20)
                let database = try environment.openDatabase(nil)
                try environment.write { (transaction) throws in
                    try transaction.put(database, key: bytes("k"), value: bytes("v"))
                }
            }
            #expect(FileManager.default.fileExists(atPath: path + "/data.mdb"))
            #expect(FileManager.default.fileExists(atPath: path + "/lock.mdb"))

            // The first environment is gone: LMDB allows opening the directory again in this process.
            let reopened = try Environment(path: path, options: .init(mapSize: 1 << 20))
            let database = try reopened.openDatabase(nil)
            let value = try reopened.read { transaction in try transaction.get(database, key: bytes("k")) }
            #expect(value == bytes("v"))
        }
    }

    @Test("files get the configured mode")
    func fileMode() throws {
        try withTemporaryDirectory { (root) throws in
            let path = root + "/env"
            _ = try Environment(path: path, options: .init(mapSize: 1 << 20, fileMode: 0o600))
            let attributes = try FileManager.default.attributesOfItem(atPath: path + "/data.mdb")
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
            #expect(mode & 0o077 == 0)
        }
    }

    @Test("an existing environment keeps a recorded map size larger than the requested one")
    func reopenKeepsLargerMap() throws {
        try withTemporaryDirectory { (root) throws in
            let path = root + "/env"
            do {
                let environment = try Environment(path: path, options: .init(mapSize: 8 << 20))
                _ = try environment.openDatabase(nil)
            }
            let smaller = try Environment(path: path, options: .init(mapSize: 1 << 20))
            #expect(smaller.mapSize == 8 << 20)
        }
    }

    @Test("reopening with a larger mapSize grows the map")
    func reopenGrowsMap() throws {
        try withTemporaryDirectory { (root) throws in
            let path = root + "/env"
            do {
                let environment = try Environment(path: path, options: .init(mapSize: 1 << 20))
                _ = try environment.openDatabase(nil)
            }
            let larger = try Environment(path: path, options: .init(mapSize: 4 << 20))
            #expect(larger.mapSize == 4 << 20)
        }
    }

    @Test("info reports map size, readers and the last transaction")
    func info() throws {
        try withEnvironment(.init(mapSize: 2 << 20, maxReaders: 50, noSync: true)) { (environment, _) throws in
            let database = try environment.openDatabase("data")
            let before = environment.info()
            try environment.write { (transaction) throws in
                try transaction.put(database, key: bytes("a"), value: bytes("1"))
            }
            let after = environment.info()
            #expect(after.mapSize == 2 << 20)
            #expect(after.maxReaders == 50)
            #expect(after.lastTransactionID == before.lastTransactionID + 1)
            #expect(after.lastPageNumber >= 1)
            #expect(environment.maxKeySize == 511)
        }
    }

    @Test("statistics count entries, in the environment and inside a transaction before commit")
    func statistics() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase("data")
            #expect(try environment.statistics(database).entries == 0)
            try environment.write { (transaction) throws in
                for index in 0..<100 {
                    try transaction.put(database, key: key(index), value: bytes("value"))
                }
                #expect(try transaction.statistics(database).entries == 100)
            }
            let statistics = try environment.statistics(database)
            #expect(statistics.entries == 100)
            #expect(statistics.depth >= 1)
            #expect(statistics.leafPages >= 1)
            #expect(statistics.pageSize == 4096)
            #expect(statistics.overflowPages == 0)
        }
    }

    @Test("copy(to:compact:) writes an environment that opens and holds the data", arguments: [false, true])
    func copy(compact: Bool) throws {
        try withEnvironment { (environment, root) throws in
            let database = try environment.openDatabase("data")
            try environment.write { (transaction) throws in
                for index in 0..<1000 {
                    try transaction.put(database, key: key(index), value: Array(repeating: 7, count: 100))
                }
            }
            // Free some pages so compaction has something to leave out.
            try environment.write { (transaction) throws in
                for index in 0..<500 { try transaction.delete(database, key: key(index)) }
            }
            let target = root + "/backup/copy"
            try environment.copy(to: target, compact: compact)

            let copy = try Environment(path: target, options: .init(mapSize: 16 << 20, readOnly: true))
            let copied = try copy.openDatabase("data")
            #expect(try copy.statistics(copied).entries == 500)
            let value = try copy.read { transaction in try transaction.get(copied, key: key(700)) }
            #expect(value == Array(repeating: 7, count: 100))
            let missing = try copy.read { transaction in try transaction.get(copied, key: key(10)) }
            #expect(missing == nil)
        }
    }

    @Test("copying into a directory that already holds data.mdb fails with EEXIST")
    func copyRefusesToOverwrite() throws {
        try withEnvironment { (environment, root) throws in
            _ = try environment.openDatabase(nil)
            try environment.copy(to: root + "/copy", compact: true)
            let error = #expect(throws: LMDBError.self) {
                try environment.copy(to: root + "/copy", compact: true)
            }
            #expect(error?.code == ResultCode(rawValue: EEXIST))
            #expect(error?.operation == "mdb_env_copy2")
            #expect(error?.message.contains(root + "/copy") == true)
        }
    }

    @Test("sync flushes a noSync environment")
    func sync() throws {
        try withEnvironment { (environment, _) throws in
            let database = try environment.openDatabase(nil)
            try environment.write { transaction in try transaction.put(database, key: bytes("a"), value: bytes("b")) }
            try environment.sync(force: true)
            try environment.sync(force: false)
        }
    }

    @Test("clearStaleReaders finds none in a healthy environment")
    func staleReaders() throws {
        try withEnvironment { (environment, _) throws in
            #expect(try environment.clearStaleReaders() == 0)
        }
    }

    @Test("named databases are separate; the main database is the unnamed one")
    func namedDatabases() throws {
        try withEnvironment { (environment, _) throws in
            let first = try environment.openDatabase("first")
            let second = try environment.openDatabase("second")
            #expect(first != second)
            #expect(try environment.openDatabase("first") == first)
            try environment.write { (transaction) throws in
                try transaction.put(first, key: bytes("k"), value: bytes("1"))
                try transaction.put(second, key: bytes("k"), value: bytes("2"))
            }
            try environment.read { (transaction) throws in
                #expect(try transaction.get(first, key: bytes("k")) == bytes("1"))
                #expect(try transaction.get(second, key: bytes("k")) == bytes("2"))
            }
        }
    }

    @Test("opening a missing database without create throws notFound with advice")
    func missingDatabase() throws {
        try withEnvironment { (environment, _) throws in
            let error = #expect(throws: LMDBError.self) {
                try environment.openDatabase("absent", create: false)
            }
            #expect(error?.code == .notFound)
            #expect(error?.operation == "mdb_dbi_open")
            #expect(error?.message.contains("create: true") == true)
        }
    }

    @Test("more named databases than maxDatabases throws dbsFull")
    func databasesFull() throws {
        try withEnvironment(.init(mapSize: 1 << 20, maxDatabases: 1, noSync: true)) { (environment, _) throws in
            _ = try environment.openDatabase("one")
            let error = #expect(throws: LMDBError.self) { try environment.openDatabase("two") }
            #expect(error?.code == .dbsFull)
            #expect(error?.message.contains("maxDatabases") == true)
            // The failed open left the environment usable.
            let main = try environment.openDatabase(nil)
            try environment.write { transaction in try transaction.put(main, key: bytes("k"), value: bytes("v")) }
        }
    }
}

@Suite("Environment errors")
struct EnvironmentErrorTests {
    @Test("a path that is a regular file gives notADirectory with the path and advice")
    func pathIsAFile() throws {
        try withTemporaryDirectory { (root) throws in
            let path = root + "/file"
            #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
            let error = #expect(throws: LMDBError.self) {
                try Environment(path: path, options: .init(mapSize: 1 << 20))
            }
            #expect(error?.code == .notADirectory)
            #expect(error?.operation == "mdb_env_open")
            #expect(error?.message.contains(path) == true)
            #expect(error?.message.contains("must be a directory") == true)
            #expect(error?.description.hasPrefix("mdb_env_open failed with ENOTDIR (20): ") == true)
        }
    }

    @Test("a parent that is a regular file makes creating the directory fail")
    func parentIsAFile() throws {
        try withTemporaryDirectory { (root) throws in
            #expect(FileManager.default.createFile(atPath: root + "/file", contents: Data()))
            let error = #expect(throws: LMDBError.self) {
                try Environment(path: root + "/file/env", options: .init(mapSize: 1 << 20))
            }
            #expect(error?.code == .notADirectory)
            #expect(error?.operation == "mkdir")
        }
    }

    @Test("without createDirectory a missing directory gives noSuchFile")
    func missingDirectory() throws {
        try withTemporaryDirectory { (root) throws in
            let error = #expect(throws: LMDBError.self) {
                try Environment(path: root + "/missing", options: .init(mapSize: 1 << 20, createDirectory: false))
            }
            #expect(error?.code == .noSuchFile)
            #expect(error?.message.contains("does not exist") == true)
        }
    }

    @Test("a directory holding a non-LMDB data.mdb gives invalid")
    func notAnEnvironment() throws {
        try withTemporaryDirectory { (root) throws in
            let data = Data(repeating: 0x41, count: 16384)
            #expect(FileManager.default.createFile(atPath: root + "/data.mdb", contents: data))
            let error = #expect(throws: LMDBError.self) {
                try Environment(path: root, options: .init(mapSize: 1 << 20))
            }
            #expect(error?.code == .invalid)
        }
    }

    @Test("invalid options are rejected before touching the disk", arguments: [
        Environment.Options(growthFactor: 1),
        Environment.Options(mapSize: 0),
        Environment.Options(maxReaders: 0),
        Environment.Options(maxDatabases: -1),
        Environment.Options(mapSize: 1 << 20, maxMapSize: 1 << 10),
    ])
    func invalidOptions(options: Environment.Options) throws {
        try withTemporaryDirectory { (root) throws in
            let error = #expect(throws: LMDBError.self) {
                try Environment(path: root + "/env", options: options)
            }
            #expect(error?.code == .invalidArgument)
            #expect(error?.operation == "Environment.init")
            #expect(!FileManager.default.fileExists(atPath: root + "/env"))
        }
    }

    @Test("a read-only environment reads, but rejects writes with permissionDenied")
    func readOnly() throws {
        try withTemporaryDirectory { (root) throws in
            let path = root + "/env"
            do {
                let writable = try Environment(path: path, options: .init(mapSize: 1 << 20))
                let database = try writable.openDatabase("data")
                try writable.write { transaction in try transaction.put(database, key: bytes("k"), value: bytes("v")) }
            }
            let environment = try Environment(path: path, options: .init(mapSize: 1 << 20, readOnly: true))
            let database = try environment.openDatabase("data")
            #expect(try environment.read { try $0.get(database, key: bytes("k")) } == bytes("v"))

            let error = #expect(throws: LMDBError.self) {
                try environment.write { transaction in try transaction.put(database, key: bytes("k"), value: bytes("w")) }
            }
            #expect(error?.code == .permissionDenied)
            #expect(error?.operation == "mdb_txn_begin")
            #expect(error?.message.contains("read-only") == true)

            let missing = #expect(throws: LMDBError.self) { try environment.openDatabase("other") }
            #expect(missing?.code == .notFound)
            #expect(throws: LMDBError.self) { try environment.sync(force: true) }
            #expect(try environment.read { try $0.get(database, key: bytes("k")) } == bytes("v"))
        }
    }

    @Test("a read-only environment is never created")
    func readOnlyMissing() throws {
        try withTemporaryDirectory { (root) throws in
            let error = #expect(throws: LMDBError.self) {
                try Environment(path: root + "/absent", options: .init(mapSize: 1 << 20, readOnly: true))
            }
            #expect(error?.code == .noSuchFile)
            #expect(!FileManager.default.fileExists(atPath: root + "/absent"))
        }
    }
}
