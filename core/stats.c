/*
 * hermes_stats_get: a snapshot of the handle's counters, generated from
 * HERMES_STATS_MAP like the counters themselves (internal.h), and the
 * table the tools print them from (stats.h).
 */
#include <inttypes.h>
#include <stddef.h>
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
    for (const hermes_fn *fn =
             atomic_load_explicit(&m->fns, memory_order_acquire);
         fn; fn = fn->next)
        for (size_t i = 0; i < HM_HIT_STRIPES; i++)
            s.hits += atomic_load_explicit(&fn->hit_stripes[i].n,
                                           memory_order_relaxed);
    hm_sized_out(out, size, &s, sizeof s);
    return HERMES_OK;
}

/* The histogram's buckets are consecutive counters of the map, from
 * lock_wait_us_lt_2 to lock_wait_us_ge_8388608 (inspect.h). */
#define HM_WAIT_FIRST offsetof(hm_counters, lock_wait_us_lt_2)
_Static_assert(offsetof(hm_counters, lock_wait_us_ge_8388608) - HM_WAIT_FIRST ==
                   23 * sizeof(atomic_uint_fast64_t),
               "lock-wait buckets are 24 consecutive counters");

void hm_count_lock_wait(hermes *h, uint64_t ns)
{
    uint64_t us = ns / 1000u;
    unsigned i = 0;
    while (i < 23 && us >= (UINT64_C(2) << i))
        i++;
    HM_COUNT(h, lock_wait_ns, ns);
    atomic_uint_fast64_t *b =
        (atomic_uint_fast64_t *)((char *)&h->stats + HM_WAIT_FIRST +
                                 i * sizeof(atomic_uint_fast64_t));
    atomic_fetch_add_explicit(b, 1, memory_order_relaxed);
}
