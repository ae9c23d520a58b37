import Glibc

/// glibc's heap, tuned so that memory freed after a burst goes back to the system.
///
/// By default glibc raises its trim threshold each time a large block is freed (up to 64 MiB per
/// arena), and `malloc_trim` never shrinks a thread arena's top: after a flood of connections the
/// daemon would keep hundreds of MiB it no longer uses. Fixed thresholds stop that. `malloc.h`
/// is not in Swift's Glibc module, so its functions are looked up by name; without them (another C
/// library) both calls do nothing.
enum Heap {
    /// Fixed thresholds: blocks of 4 MiB and more are mapped on their own (and unmapped when
    /// freed), and an arena whose free top passes 8 MiB gives it back. At most two arenas: buffers
    /// made on an event loop and freed on the writer thread (and back) otherwise scatter over one
    /// arena per thread, and a third of floods left 50 MiB that no trim could return; one arena
    /// costs the firehose about 10 %, two nothing measurable (BENCHMARKS.md). Call once, at daemon
    /// start, before the threads allocate.
    static func configure() {
        guard let mallopt = mallopt else { return }
        _ = mallopt(-3, 4 << 20)  // M_MMAP_THRESHOLD
        _ = mallopt(-1, 8 << 20)  // M_TRIM_THRESHOLD
        _ = mallopt(-8, 2)        // M_ARENA_MAX
    }

    /// Returns free heap pages of every arena to the system.
    static func trim() {
        _ = mallocTrim?(0)
    }

    private static let mallopt: (@convention(c) (Int32, Int32) -> Int32)? = symbol("mallopt")
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = symbol("malloc_trim")

    private static func symbol<Function>(_ name: String) -> Function? {
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(address, to: Function.self)
    }
}
