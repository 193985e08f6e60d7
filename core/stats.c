/*
 * hermes_stats_get: a snapshot of the handle's counters, generated from
 * HERMES_STATS_MAP like the counters themselves (internal.h), and the
 * table the tools print them from (stats.h).
 */
#include <inttypes.h>
#include <string.h>

#include "internal.h"
#include "sized.h"
#include "stats.h"

const hm_stat_field hm_stat_fields[] = {
#define HM_STAT_ROW(name, text) {#name, text, offsetof(hermes_stats, name)},
    HERMES_STATS_MAP(HM_STAT_ROW)
#undef HM_STAT_ROW
};
const size_t hm_stat_nfields = sizeof hm_stat_fields / sizeof hm_stat_fields[0];

uint64_t hm_stat_value(const hermes_stats *s, const hm_stat_field *f)
{
    uint64_t v;
    memcpy(&v, (const char *)s + f->offset, sizeof v);
    return v;
}

void hm_stats_print(FILE *out, const char *indent, const hermes_stats *s,
                    const hermes_stats *since)
{
    for (size_t i = 0; i < hm_stat_nfields; i++) {
        const hm_stat_field *f = &hm_stat_fields[i];
        uint64_t v = hm_stat_value(s, f);
        if (since)
            v -= hm_stat_value(since, f);
        fprintf(out, "%s%s: %" PRIu64 "\n", indent, f->name, v);
    }
}

_Thread_local unsigned char hm_stripe_tls;

/* A thread's first hit picks its stripe: threads in turn. */
unsigned hm_stripe_assign(void)
{
    static atomic_uint next;
    unsigned s = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) %
                 HM_HIT_STRIPES;
    hm_stripe_tls = (unsigned char)(s + 1);
    return s;
}

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
    for (size_t i = 0; i < HM_HIT_STRIPES; i++)
        s.hits +=
            atomic_load_explicit(&m->hit_stripes[i].n, memory_order_relaxed);
    hm_sized_out(out, size, &s, sizeof s);
    return HERMES_OK;
}
