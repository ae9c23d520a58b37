#ifndef TALLY_CNATS_SHIM_H
#define TALLY_CNATS_SHIM_H
// The only place Tally includes the NATS C client's header (Debian's libnats-dev, cnats 3.4).
// The Swift `NATS` module wraps it.
#include <nats/nats.h>
#endif
