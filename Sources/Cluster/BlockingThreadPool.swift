import Foundation

/// A fixed set of threads that run blocking jobs (NATS requests, partition commits) in submission
/// order: as many run at once as there are threads, whatever the number of cores.
final class BlockingThreadPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []

    /// Starts `count` threads named `name-N`.
    init(name: String, count: Int) {
        for index in 0..<count {
            let thread = Thread { [self] in
                while true {
                    condition.lock()
                    while jobs.isEmpty { condition.wait() }
                    let job = jobs.removeFirst()
                    condition.unlock()
                    job()
                }
            }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    func run(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }
}
