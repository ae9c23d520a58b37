import Foundation
import Glibc

/// Anonymous, zeroed mappings for identity tables, with huge pages advised: at tens of millions of
/// identities the TLB misses of 4 KiB pages would dominate a lookup.
enum TableMemory {
    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let memory, memory != MAP_FAILED else {
            // Like any allocation failure in Swift: out of memory is not recoverable here.
            fatalError("cannot allocate \(bytes) bytes for the identity index: \(String(cString: strerror(errno)))")
        }
        _ = madvise(memory, bytes, MADV_HUGEPAGE)
        return memory
    }

    static func deallocate(_ memory: UnsafeMutableRawPointer, bytes: Int) {
        munmap(memory, bytes)
    }
}

/// The identity index's next table, mapped and faulted in by a helper thread ahead of the grow.
final class SpareTable: @unchecked Sendable {
    private let lock = NSLock()
    private var memory: UnsafeMutableRawPointer?
    private var readyBytes = 0
    private var requestedBytes = 0

    deinit {
        if let memory { TableMemory.deallocate(memory, bytes: readyBytes) }
    }

    /// Starts preparing a zeroed table of `bytes` on a helper thread.
    func prepare(bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        requestedBytes = bytes
        let thread = Thread { [self] in
            let prepared = TableMemory.allocate(bytes: bytes)
            // Touch every page now, so that the writer never takes these page faults.
            var offset = 0
            while offset < bytes {
                prepared.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
                offset += 4096
            }
            lock.lock()
            if requestedBytes == bytes {
                if let stale = memory { TableMemory.deallocate(stale, bytes: readyBytes) }
                memory = prepared
                readyBytes = bytes
            } else {
                TableMemory.deallocate(prepared, bytes: bytes)
            }
            lock.unlock()
        }
        thread.name = "tally-index-grow"
        thread.start()
    }

    /// The prepared table, if one of `bytes` is ready; nil otherwise (allocate it yourself). A
    /// table of another size stays for the move it was prepared for.
    func take(bytes: Int) -> UnsafeMutableRawPointer? {
        lock.lock()
        defer { lock.unlock() }
        guard let prepared = memory, readyBytes == bytes else { return nil }
        requestedBytes = 0
        memory = nil
        readyBytes = 0
        return prepared
    }
}
