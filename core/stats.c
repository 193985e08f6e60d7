/*
 * hermes_stats_get: a snapshot of the handle's counters, generated from
 * HERMES_STATS_MAP like the counters themselves (internal.h).
 */
#include <string.h>

#include "internal.h"
#include "sized.h"

hermes_rc hermes_stats_get(const hermes *h, hermes_stats *out, size_t size)
{
    if (!h || !out)
        return HERMES_EINVAL;
    hermes_stats s;
    hermes *m = (hermes *)h; /* atomics are read, never written, here */
#define HM_STATS_LOAD(name, text)                                              \
    s.name = atomic_load_explicit(&m->stats.name, memory_order_relaxed);
    HERMES_STATS_MAP(HM_STATS_LOAD)
#undef HM_STATS_LOAD
    hm_sized_out(out, size, &s, sizeof s);
    return HERMES_OK;
}
