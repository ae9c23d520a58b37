#ifndef TALLY_CZSTD_SHIM_H
#define TALLY_CZSTD_SHIM_H
// The only place Tally includes zstd's header. The Swift `Zstd` module wraps it.
#include <zstd.h>
#include <zstd_errors.h>

// ZSTD_isError and friends are plain functions; these wrappers exist for macros Swift cannot import.
static inline unsigned long long tally_zstd_content_size_unknown(void) { return ZSTD_CONTENTSIZE_UNKNOWN; }
static inline unsigned long long tally_zstd_content_size_error(void) { return ZSTD_CONTENTSIZE_ERROR; }
#endif
