#ifndef TALLY_CLMDB_SHIM_H
#define TALLY_CLMDB_SHIM_H
// The only place Tally includes LMDB's header. The Swift `LMDB` module wraps it.
#include <lmdb.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

/// LMDB mallocs every dirty page of a write transaction, and a large value's overflow pages as
/// one block (hundreds of KiB for a big record), then frees them after the commit. Above glibc's
/// dynamic mmap threshold each such block is a fresh mapping whose pages the kernel zeroes on
/// first touch. Serving blocks up to 32 MiB (glibc's largest threshold) from the heap, and keeping
/// up to 256 MiB of freed heap instead of trimming it, lets commits reuse the same memory. Returns
/// 1 when both settings took, 0 otherwise or where the C library is not glibc.
static inline int tally_lmdb_prefer_heap_allocations(void) {
#ifdef __GLIBC__
    int mmapThreshold = mallopt(M_MMAP_THRESHOLD, 32 << 20);
    int trimThreshold = mallopt(M_TRIM_THRESHOLD, 256 << 20);
    return mmapThreshold == 1 && trimThreshold == 1;
#else
    return 0;
#endif
}
#endif
