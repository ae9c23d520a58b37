import Glibc

/// The result of a system call that went through ``syscall(_:_:)``.
enum SyscallResult<Value: Equatable>: Equatable {
    /// The call succeeded with this (non-negative) value.
    case done(Value)
    /// The call would have blocked (`EAGAIN`/`EWOULDBLOCK`).
    case wouldBlock
}

/// The one chokepoint for system calls (as swift-nio's `syscall` helper): retries `EINTR`, returns
/// `EAGAIN`/`EWOULDBLOCK` as ``SyscallResult/wouldBlock``, traps on `EFAULT` (it can only be a bug in
/// this module) and throws ``ClientError/Code/ioError`` for everything else (`EBADF` included: a
/// caller may hand ``LineReader`` a closed descriptor).
@inline(__always)
func syscall<Value: FixedWidthInteger & SignedInteger>(
    _ name: StaticString,
    _ body: () -> Value
) throws(ClientError) -> SyscallResult<Value> {
    while true {
        let result = body()
        if result >= 0 { return .done(result) }
        let error = errno
        if error == EINTR { continue }
        if error == EAGAIN || error == EWOULDBLOCK { return .wouldBlock }
        precondition(error != EFAULT, "\(name) failed with errno \(error): a bug in IngestClient")
        throw ClientError(
            code: .ioError, message: "\(name) failed: \(errorText(error))", systemError: error)
    }
}

/// `strerror` text plus the errno number, e.g. `No such file or directory (errno 2)`.
func errorText(_ error: Int32) -> String {
    "\(String(cString: strerror(error))) (errno \(error))"
}

/// Nanoseconds on the monotonic clock (`CLOCK_MONOTONIC`).
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}

/// Whole nanoseconds in a non-negative duration (negative durations count as zero).
func nanoseconds(of duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    if seconds < 0 { return 0 }
    let (scaled, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return UInt64.max / 2 }
    return scaled + UInt64(attoseconds / 1_000_000_000)
}

/// Sleeps the calling thread, resuming after signals until the time is up.
func sleepNanoseconds(_ total: UInt64) {
    var request = timespec(tv_sec: Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR {
        request = remaining
    }
}

/// A pthread mutex with one condition variable.
final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits for ``broadcast()``; call with the lock held.
    func wait() { pthread_cond_wait(condition, mutex) }
    func broadcast() { pthread_cond_broadcast(condition) }
}

/// A started OS thread that must be joined.
struct JoinableThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private let thread: pthread_t

    /// Starts `body` on a new thread.
    init(_ body: @escaping @Sendable () -> Void) throws(ClientError) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw ClientError(
                code: .ioError, message: "cannot start the response reader thread: \(errorText(result))",
                systemError: result)
        }
        self.thread = thread
    }

    /// Waits for the thread to finish.
    func join() {
        pthread_join(thread, nil)
    }
}

/// `array.withUnsafeBytes` for a body with typed throws (the standard library's is `rethrows`).
@inline(__always)
func withBytes<Result>(
    of array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ClientError) -> Result
) throws(ClientError) -> Result {
    let outcome: Swift.Result<Result, ClientError> = array.withUnsafeBytes { raw in
        do throws(ClientError) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try outcome.get()
}

/// `array.withUnsafeMutableBytes` for a body with typed throws.
@inline(__always)
func withMutableBytes<Result>(
    of array: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(ClientError) -> Result
) throws(ClientError) -> Result {
    let outcome: Swift.Result<Result, ClientError> = array.withUnsafeMutableBytes { raw in
        do throws(ClientError) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try outcome.get()
}
