import Dispatch
import Foundation
import LMDB
import Synchronization
import Testing

@Suite("Map growth")
struct MapGrowthTests {
    static let tiny = 128 << 10

    @Test("one write of several MB into a 128 KiB map grows the map and runs the body again")
    func growsWithinOneWrite() throws {
        try withEnvironment(.init(mapSize: Self.tiny, noSync: true)) { (environment, _) throws in
            let database = try environment.openDatabase("data")
            #expect(environment.mapSize == Self.tiny)
            let value = [UInt8](repeating: 0xAB, count: 2000)
            var runs = 0
            let written = try environment.write { (transaction) throws in
                runs += 1
                for index in 0..<2500 {
                    try transaction.put(database, key: key(index), value: value)
                }
                return 2500
            }
            #expect(written == 2500)
            #expect(runs > 1)
            #expect(environment.mapSize >= 5_000_000)
            #expect(environment.mapSize.isMultiple(of: Self.tiny))
            try environment.read { (transaction) throws in
                #expect(try transaction.statistics(database).entries == 2500)
                #expect(try transaction.get(database, key: key(0)) == value)
                #expect(try transaction.get(database, key: key(2499)) == value)
            }
        }
    }

    @Test("many small writes grow the map step by step and everything lands")
    func growsAcrossWrites() throws {
        try withEnvironment(.init(mapSize: Self.tiny, noSync: true)) { (environment, _) throws in
            let database = try environment.openDatabase("data")
            let value = [UInt8](repeating: 0x5A, count: 1500)
            for batch in 0..<200 {
                try environment.write { (transaction) throws in
                    for item in 0..<10 {
                        try transaction.put(database, key: key(batch * 10 + item), value: value)
                    }
                }
            }
            #expect(environment.mapSize > Self.tiny * 16)
            try environment.read { (transaction) throws in
                #expect(try transaction.statistics(database).entries == 2000)
                #expect(try transaction.entries(database).allSatisfy { $0.value == value })
            }
        }
    }

    @Test("a body that swallows errors is still retried after the map filled")
    func bodyCatchingErrors() throws {
        try withEnvironment(.init(mapSize: Self.tiny, noSync: true)) { (environment, _) throws in
            let database = try environment.openDatabase("data")
            let value = [UInt8](repeating: 1, count: 1000)
            var swallowed: [ResultCode?] = []
            var runs = 0
            try environment.write { (transaction) throws in
                runs += 1
                for index in 0..<1000 {
                    do {
                        try transaction.put(database, key: key(index), value: value)
                    } catch {
                        swallowed.append((error as? LMDBError)?.code)
                    }
                }
            }
            #expect(runs > 1)
            #expect(swallowed.contains(.mapFull))
            #expect(try environment.statistics(database).entries == 1000)
        }
    }

    @Test("a body that throws its own error after the map filled is retried, not failed")
    func bodyThrowingAfterMapFull() throws {
        try withEnvironment(.init(mapSize: Self.tiny, noSync: true)) { (environment, _) throws in
            let database = try environment.openDatabase("data")
            let value = [UInt8](repeating: 1, count: 1000)
            var runs = 0
            try environment.write { (transaction) throws in
                runs += 1
                for index in 0..<1000 {
                    do {
                        try transaction.put(database, key: key(index), value: value)
                    } catch {
                        throw Boom()  // hides the LMDBError
                    }
                }
            }
            #expect(runs > 1)
            #expect(try environment.statistics(database).entries == 1000)
        }
    }

    @Test("growthFactor sets how much the map grows")
    func growthFactor() throws {
        try withEnvironment(.init(mapSize: Self.tiny, noSync: true, growthFactor: 4)) { (environment, _) throws in
            let database = try environment.openDatabase("data")
            // About 200 KiB: one growth step from 128 KiB is enough.
            try environment.write { (transaction) throws in
                for index in 0..<100 {
                    try transaction.put(database, key: key(index), value: [UInt8](repeating: 2, count: 2000))
                }
            }
            #expect(environment.mapSize == Self.tiny * 4)
        }
    }

    @Test("growth stops at maxMapSize with a mapFull error, and the environment stays usable")
    func maxMapSize() throws {
        try withEnvironment(.init(mapSize: Self.tiny, noSync: true, maxMapSize: 512 << 10)) { (environment, _) throws in
            let database = try environment.openDatabase("data")
            let error = #expect(throws: LMDBError.self) {
                try environment.write { (transaction) throws in
                    for index in 0..<2000 {
                        try transaction.put(database, key: key(index), value: [UInt8](repeating: 3, count: 2000))
                    }
                }
            }
            #expect(error?.code == .mapFull)
            #expect(error?.message.contains("maxMapSize") == true)
            #expect(environment.mapSize == 512 << 10)
            #expect(try environment.statistics(database).entries == 0)

            try environment.write { transaction in try transaction.put(database, key: bytes("small"), value: bytes("ok")) }
            #expect(try environment.read { try $0.get(database, key: bytes("small")) } == bytes("ok"))
        }
    }

    @Test("reads on other threads keep working while the writer grows the map")
    func readsDuringGrowth() throws {
        try withEnvironment(.init(mapSize: Self.tiny, noSync: true)) { (environment, _) throws in
            let database = try environment.openDatabase("data")
            try environment.write { transaction in try transaction.put(database, key: bytes("fixed"), value: bytes("value")) }
            let state = SharedState()
            runOnThreads(3) { worker in
                do {
                    if worker == 0 {
                        defer { state.done.store(true, ordering: .releasing) }
                        // Start growing only once the readers run.
                        while state.reads.load(ordering: .relaxed) < 10 { Thread.sleep(forTimeInterval: 0.001) }
                        let value = [UInt8](repeating: 9, count: 3000)
                        for batch in 0..<100 {
                            try environment.write { transaction in
                                for item in 0..<10 {
                                    try transaction.put(database, key: key(batch * 10 + item), value: value)
                                }
                            }
                        }
                        return
                    }
                    while !state.done.load(ordering: .acquiring) {
                        let value = try environment.read { try $0.get(database, key: bytes("fixed")) }
                        if value != bytes("value") {
                            state.report("worker \(worker) read \(String(describing: value))")
                        }
                        state.reads.add(1, ordering: .relaxed)
                    }
                } catch {
                    state.report("worker \(worker): \(error)")
                    state.done.store(true, ordering: .releasing)
                }
            }
            #expect(state.problems.withLock { $0 } == [])
            #expect(state.reads.load(ordering: .relaxed) > 10)
            #expect(environment.mapSize > Self.tiny * 16)
            #expect(try environment.statistics(database).entries == 1001)
        }
    }

    /// `true` when a Python with ctypes can load liblmdb, to play the other process.
    static let childProcessAvailable: Bool = {
        guard let status = try? runPython(["-c", "import ctypes; ctypes.CDLL('liblmdb.so.0')"]) else { return false }
        return status == 0
    }()

    @Test(
        "a map grown by another process is adopted (MDB_MAP_RESIZED) and reads and writes go on",
        .enabled(if: childProcessAvailable, "needs python3 with ctypes and liblmdb.so.0")
    )
    func adoptsMapResizedByAnotherProcess() throws {
        try withEnvironment(.init(mapSize: Self.tiny, noSync: true)) { (environment, root) throws in
            let database = try environment.openDatabase(nil)
            try environment.write { transaction in try transaction.put(database, key: bytes("parent"), value: bytes("1")) }
            #expect(environment.mapSize == Self.tiny)

            // The child grows the map to 16 MiB and writes about 2 MB into the main database.
            let status = try runPython(["-c", Self.childScript, root + "/env", "1000", "2000"])
            #expect(status == 0)

            try environment.read { (transaction) throws in
                #expect(try transaction.get(database, key: bytes("parent")) == bytes("1"))
                #expect(try transaction.get(database, key: bytes("child-000999")) == [UInt8](repeating: 0x76, count: 2000))
                #expect(try transaction.statistics(database).entries == 1001)
            }
            #expect(environment.mapSize == 16 << 20)
            try environment.write { transaction in try transaction.put(database, key: bytes("after"), value: bytes("2")) }
            #expect(try environment.read { try $0.get(database, key: bytes("after")) } == bytes("2"))
        }
    }

    /// Opens the environment at argv[1] with a 16 MiB map and puts argv[2] values of argv[3] bytes.
    static let childScript = """
        import ctypes, sys
        from ctypes import c_void_p, c_char_p, c_uint, c_size_t, POINTER, byref
        lib = ctypes.CDLL("liblmdb.so.0")
        class Val(ctypes.Structure):
            _fields_ = [("mv_size", c_size_t), ("mv_data", c_void_p)]
        lib.mdb_strerror.restype = c_char_p
        def ok(rc, what):
            if rc != 0:
                sys.stderr.write("%s: %s\\n" % (what, lib.mdb_strerror(rc)))
                sys.exit(1)
        path, count, size = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])
        env = c_void_p()
        ok(lib.mdb_env_create(byref(env)), "mdb_env_create")
        lib.mdb_env_set_mapsize.argtypes = [c_void_p, c_size_t]
        ok(lib.mdb_env_set_mapsize(env, 16 << 20), "mdb_env_set_mapsize")
        lib.mdb_env_open.argtypes = [c_void_p, c_char_p, c_uint, c_uint]
        ok(lib.mdb_env_open(env, path, 0x200000 | 0x10000, 0o640), "mdb_env_open")
        txn = c_void_p()
        lib.mdb_txn_begin.argtypes = [c_void_p, c_void_p, c_uint, POINTER(c_void_p)]
        ok(lib.mdb_txn_begin(env, None, 0, byref(txn)), "mdb_txn_begin")
        dbi = c_uint()
        lib.mdb_dbi_open.argtypes = [c_void_p, c_char_p, c_uint, POINTER(c_uint)]
        ok(lib.mdb_dbi_open(txn, None, 0, byref(dbi)), "mdb_dbi_open")
        lib.mdb_put.argtypes = [c_void_p, c_uint, POINTER(Val), POINTER(Val), c_uint]
        value = ctypes.create_string_buffer(b"v" * size, size)
        for i in range(count):
            k = b"child-%06d" % i
            key = ctypes.create_string_buffer(k, len(k))
            ok(lib.mdb_put(txn, dbi, byref(Val(len(k), ctypes.cast(key, c_void_p))),
                           byref(Val(size, ctypes.cast(value, c_void_p))), 0), "mdb_put")
        ok(lib.mdb_txn_commit(txn), "mdb_txn_commit")
        lib.mdb_env_sync.argtypes = [c_void_p, ctypes.c_int]
        ok(lib.mdb_env_sync(env, 1), "mdb_env_sync")
        lib.mdb_env_close(env)
        """
}

/// Runs `python3` with `arguments` and returns its exit status.
private func runPython(_ arguments: [String]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}
