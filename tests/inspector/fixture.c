/*
 * The shared fixture (fixture.h):
 *
 *   tags      users (id 1, version id 0x100), feed (2, 0x200),
 *             products (3, 0x300)
 *   entries   user_profile:h1  users@0x100               fresh    100 B
 *             user_profile:h2  users@0x0ff               stale    200 B
 *             user_feed:h3     users@0x100 feed@0x1ff    stale    300 B
 *             product:h4       products@0x300  TTL 30 s  fresh     50 B
 *             product:h5       products@0x300            expired   70 B
 *             report:h6        (no tags)                 corrupt   10 B
 *   lock      report:h6 held by web1:4242 for 1.5 s, 8.5 s left
 *   processes web1:4242: 900 hits, 100 misses, 12 contended, waits
 *             5 x [4,8) us, 5 x [512,1024) us, 2 x [16,32) ms;
 *             web2:77: 50 hits, 3 contended, waits 3 x [8,16) us
 */
#include <stdlib.h>
#include <stdio.h>

#include "fixture.h"

/* Building the fixture cannot fail short of memory; if it does, stop. */
#define MUST(x)                                                                \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

static insp_entry *entry(insp_model *m, const char *fn, const char *id,
                         uint64_t size, insp_state st)
{
    char key[128];
    snprintf(key, sizeof key, "cache:entry:%s:%s", fn, id);
    insp_entry *e = insp_model_add_entry(m, key, fn, id, size, st);
    MUST(e);
    e->created_ms = FIX_NOW_MS - 60000;
    e->compute_us = 1500;
    return e;
}

void fixture_model(insp_model *m)
{
    insp_model_init(m);
    MUST(insp_model_set_str(&m->backend, "redis") == 0);
    MUST(insp_model_set_str(&m->prefix, "cache") == 0);
    m->taken_ms = FIX_NOW_MS;
    m->keys_scanned = 11;
    m->scan_us = 2500;
    MUST(insp_model_add_tag(m, "users", "Vusers0000000000000000", 1, 0x100));
    MUST(insp_model_add_tag(m, "feed", "Vfeed00000000000000000", 2, 0x200));
    MUST(insp_model_add_tag(m, "products", "Vproducts0000000000000", 3, 0x300));

    insp_entry *e = entry(m, "user_profile", "h1", 100, INSP_FRESH);
    MUST(insp_entry_add_tag(e, "users", 1, 0x100));
    e = entry(m, "user_profile", "h2", 200, INSP_STALE);
    MUST(insp_entry_add_tag(e, "users", 1, 0x0ff));
    e = entry(m, "user_feed", "h3", 300, INSP_STALE);
    MUST(insp_entry_add_tag(e, "users", 1, 0x100));
    MUST(insp_entry_add_tag(e, NULL, 2, 0x1ff)); /* feed, by id only */
    e = entry(m, "product", "h4", 50, INSP_FRESH);
    e->ttl_left_ms = 30000;
    MUST(insp_entry_add_tag(e, "products", 3, 0x300));
    e = entry(m, "product", "h5", 70, INSP_EXPIRED);
    e->ttl_left_ms = 0;
    MUST(insp_entry_add_tag(e, "products", 3, 0x300));
    entry(m, "report", "h6", 10, INSP_CORRUPT);

    insp_lock *l = insp_model_add_lock(m, "report:h6", "web1", 4242);
    MUST(l);
    l->age_ms = 1500;
    l->ttl_left_ms = 8500;

    insp_proc *p = insp_model_add_proc(m, "web1", 4242);
    MUST(p);
    p->hits = 900;
    p->misses = 100;
    p->computations = 80;
    p->coalesced = 20;
    p->lock_acquired = 80;
    p->lock_contended = 12;
    p->lock_timeouts = 1;
    p->wait_hist[3] = 5;
    p->wait_hist[10] = 5;
    p->wait_hist[15] = 2;
    insp_fn_stats *f = insp_proc_add_fn(p, "user_profile");
    MUST(f);
    f->hits = 600;
    f->misses = 40;
    p = insp_model_add_proc(m, "web2", 77);
    MUST(p);
    p->hits = 50;
    p->lock_acquired = 10;
    p->lock_contended = 3;
    p->wait_hist[4] = 3;

    MUST(insp_model_resolve(m) == 0);
    MUST(insp_model_aggregate(m) == 0);
}

void fixture_many_tags(insp_model *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%03zu", i);
        MUST(insp_model_add_tag(m, name, "V", (uint32_t)(100 + i), i + 1));
        insp_entry *e = entry(m, "many", name, 1, INSP_FRESH);
        MUST(insp_entry_add_tag(e, name, (uint32_t)(100 + i), i + 1));
    }
    MUST(insp_model_resolve(m) == 0);
    MUST(insp_model_aggregate(m) == 0);
}
