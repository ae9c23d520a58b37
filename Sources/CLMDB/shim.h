#ifndef TALLY_CLMDB_SHIM_H
#define TALLY_CLMDB_SHIM_H
// The only place Tally includes LMDB's header. The Swift `LMDB` module wraps it.
#include <lmdb.h>
#endif
