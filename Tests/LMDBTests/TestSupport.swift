import Foundation
import Synchronization
import LMDB

// Closures whose only `try` sits inside `#expect(...)` are written `{ (name) throws in`: when the
// compiler infers whether a closure throws, it does not look inside macro arguments.

/// A fresh directory under the system temporary directory, removed when `body` ends.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("lmdb-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

/// Opens an environment in a fresh temporary directory (`<tmp>/env`) and removes it afterwards.
func withEnvironment<T>(
    _ options: Environment.Options = .init(mapSize: 16 << 20, noSync: true),
    _ body: (Environment, String) throws -> T
) throws -> T {
    try withTemporaryDirectory { (root) throws in
        let environment = try Environment(path: root + "/env", options: options)
        return try body(environment, root)
    }
}

/// The UTF-8 bytes of `text`.
func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

/// A fixed-width big-endian key, so numeric order is byte order.
func key(_ number: Int) -> [UInt8] {
    withUnsafeBytes(of: UInt32(number).bigEndian) { Array($0) }
}

/// The keys of copied entries, as strings.
func keys(_ entries: [Entry]) -> [String] {
    entries.map { String(decoding: $0.key, as: UTF8.self) }
}

/// An error a test body throws on purpose.
struct Boom: Error, Equatable {}

/// Runs `body(0)`, `body(1)`, … each on its own new thread, and waits for all of them.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            body(index)
            group.leave()
        }
        thread.start()
    }
    group.wait()
}

/// State shared by the threads of a concurrency test.
final class SharedState: Sendable {
    let done = Atomic<Bool>(false)
    let reads = Atomic<Int>(0)
    let problems = Mutex<[String]>([])

    func report(_ problem: String) {
        problems.withLock { $0.append(problem) }
    }
}
