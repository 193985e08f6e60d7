/*
 * Stats publication (publish.c): a process writes its counters to the
 * backend under "<prefix>:stats:<host>:<pid>" every publish_interval_ms,
 * with a TTL of three intervals, so that hermesctl and the inspector see
 * every live process and a dead one disappears by itself.  It is written
 * from the call path (no library thread, so fork needs nothing special: a
 * child's first call publishes under its own pid).
 *
 * The value, format 1, is text: lines of "NAME VALUE" separated by '\n',
 *
 *   hermes-stats 1                  always first: the format
 *   host web1                       the publisher's host name
 *   pid 4242                        its process id
 *   published_ms 1764670000000      when, ms since the Unix epoch
 *   interval_ms 5000                how often it publishes
 *   backend redis                   its backend
 *   hits 120                        one line per HERMES_STATS_MAP counter,
 *   misses 7                        by the counter's name
 *   ...
 *   fn NAME HITS MISSES [TAG...]    one line per registered function: its
 *                                   hits and misses and its tag list, name
 *                                   and tags %XX-escaped as in keys
 *
 * A reader ignores lines and counters it does not know (a newer writer may
 * add some) and refuses another first line.  Names never contain spaces.
 */
#ifndef HERMES_CORE_PUBLISH_H
#define HERMES_CORE_PUBLISH_H

#include "inspect.h"
#include "internal.h"
#include "keys.h"

#define HM_PUBLISH_FORMAT 1
#define HM_PUBLISH_DEFAULT_INTERVAL_MS 5000u
#define HM_PUBLISH_TTL_PERIODS 3u
/* At most this many functions and tags per function are decoded. */
#define HM_PUBLISH_MAX_FNS 4096
#define HM_PUBLISH_MAX_TAGS 255

/* Sets up h's publication from its config and backend (handle.c, once the
 * backend is open). */
void hm_publish_init(hermes *h);

/* A coarse monotonic clock (ns), cheap enough for every call. */
uint64_t hm_coarse_ns(void);

/* Publishes h's counters now (whoever finds the time due wins). */
void hm_publish_due(hermes *h, uint64_t due_ns);

/* The one check on the hot path: nothing at all when publication is off,
 * one coarse clock read when it is on. */
static inline void hm_publish_tick(hermes *h)
{
    uint64_t due =
        atomic_load_explicit(&h->publish_due_ns, memory_order_relaxed);
    if (due && hm_coarse_ns() >= due)
        hm_publish_due(h, due);
}

/* Removes this process's stats key, if it published one (hermes_close). */
void hm_publish_retract(hermes *h);

/* Encodes h's counters as of now_ms into b (reset first). */
void hm_publish_encode(hermes *h, uint64_t now_ms, hm_buf *b);

/*
 * Decodes a published value (n bytes) into p (its key and ttl set by the
 * caller are kept): p->ok and, when not ok, p->why.  Returns -1 only when
 * out of memory (p then holds nothing to free but its key).
 */
int hm_publish_decode(const void *v, size_t n, hm_insp_proc *p);

/* Frees what hm_publish_decode() allocated in p (not p->key). */
void hm_publish_proc_free(hm_insp_proc *p);

#endif
