/*
 * hermes_stats_get: a snapshot of the handle's counters.
 */
#include <string.h>

#include "internal.h"

/* ----------------------------------------------------------------- stats */

void hermes_stats_get(const hermes *h, hermes_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!h)
        return;
    hermes *m = (hermes *)h; /* atomics are read, never written, here */
#define LOAD(f) out->f = atomic_load_explicit(&m->stats.f, memory_order_relaxed)
    LOAD(hits);
    LOAD(misses);
    LOAD(stale);
    LOAD(computations);
    LOAD(compute_errors);
    LOAD(coalesced);
    LOAD(lock_acquired);
    LOAD(lock_contended);
    LOAD(lock_wait_ns);
    LOAD(lock_timeouts);
    LOAD(backend_errors);
    LOAD(corrupt);
    LOAD(foreign);
#undef LOAD
}
