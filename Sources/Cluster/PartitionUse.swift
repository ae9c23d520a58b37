import Foundation

/// Who reads a served partition's store beside the writer (snapshots, reads for other nodes), so
/// that `close` waits for them and nothing reads the store after it: the process then drops its
/// only handle on the environment, which another owner term of this node may open again (LMDB
/// allows one handle per environment and process).
final class PartitionUse: @unchecked Sendable {
    private let condition = NSCondition()
    private var users = 0
    private var closed = false

    /// Runs `body` unless the partition closed (nil then); `close` waits until it returns.
    func run<T>(_ body: () throws -> T) rethrows -> T? {
        condition.lock()
        guard !closed else {
            condition.unlock()
            return nil
        }
        users += 1
        condition.unlock()
        defer {
            condition.lock()
            users -= 1
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }

    /// From now on `run` runs nothing; returns once every `run` under way has returned.
    func close() {
        condition.lock()
        closed = true
        while users > 0 { condition.wait() }
        condition.unlock()
    }
}
