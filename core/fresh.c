/*
 * Freshness without stampedes (DESIGN.md "Freshness", README "Freshness").
 *
 * A record carries its creation time, TTL and measured compute time
 * (record.h), so each reader decides alone, from what it read:
 *
 *   - before expiry, XFetch (Vattani, Chierichetti, Lowenstein, VLDB
 *     2015): recompute early when now - delta * beta * ln(u) >= expiry,
 *     u uniform in (0, 1], delta the compute time;
 *   - after expiry, within grace: the old value may be served while one
 *     caller recomputes it;
 *   - past grace: a miss, as before.
 *
 * The caller that decides to refresh pays for the computation itself (no
 * library thread): it leads a refresh flight in its process (other
 * threads that decide the same serve the value they read), then tries the
 * entry's backend lock once; when another process holds it, it serves the
 * value it read too.  So nobody waits while a servable value exists, and
 * one computation happens per expiry across processes.  Tags are judged
 * before any of this: a value whose tag was cleaned is never served.
 */
#include <math.h>
#include <string.h>

#include "fresh.h"
#include "lock.h"

/* -ln(u) for u in (0, 1] with 53 random bits is at most 53 ln 2. */
#define MAX_NEG_LN_U 36.8

double hm_xfetch_probability(double gap_ms, double delta_ms, double beta)
{
    if (gap_ms <= 0)
        return 1;
    if (!(delta_ms > 0) || !(beta > 0))
        return 0;
    return exp(-gap_ms / (delta_ms * beta));
}

hm_fresh_kind hm_fresh_classify(uint64_t now_ms, uint64_t created_ms,
                                uint32_t ttl_s, uint32_t compute_us,
                                double beta, uint32_t grace_s)
{
    if (ttl_s == 0)
        return HM_FRESH_NONE;
    uint64_t expiry = created_ms + (uint64_t)ttl_s * 1000u;
    if (now_ms >= expiry)
        return now_ms - expiry < (uint64_t)grace_s * 1000u ? HM_FRESH_GRACE
                                                           : HM_FRESH_EXPIRED;
    if (!(beta > 0) || compute_us == 0)
        return HM_FRESH_NONE;
    /* Recompute when delta * beta * -ln(u) >= gap.  Far from expiry no u
     * can reach it: no draw at all, which is the common hit. */
    double scale = (double)compute_us / 1000.0 * beta;
    double gap = (double)(expiry - now_ms);
    if (gap > scale * MAX_NEG_LN_U)
        return HM_FRESH_NONE;
    return -log(hm_draw_unit()) * scale >= gap ? HM_FRESH_EARLY : HM_FRESH_NONE;
}

bool hm_record_expired(const hm_record *rec)
{
    return rec->ttl_s != 0 &&
           hm_fresh_classify(hm_now_ms_coarse(), rec->created_ms, rec->ttl_s, 0,
                             0, 0) == HM_FRESH_EXPIRED;
}

hm_fresh_kind hm_fresh_judge(hm_call *c)
{
    const hm_record *rec = &c->rd.rec;
    c->seen_created = rec->created_ms;
    c->seen_sum = rec->checksum;
    /* The coarse clock: a few ms late at most, so a value expires at most
     * that much later, for a fraction of a precise read's cost. */
    return hm_fresh_classify(hm_now_ms_coarse(), rec->created_ms, rec->ttl_s,
                             rec->compute_us, c->fn->beta, c->fn->grace);
}

/* Answers with the value read (owned by `had`). */
static void serve(hm_call *c, bool grace, hm_outcome *had, hm_outcome *o)
{
    *o = *had;
    o->rc = HERMES_OK;
    memset(had, 0, sizeof *had);
    if (grace)
        HM_COUNT(c->h, stale_served, 1);
}

/* Under the entry's lock: read again, and recompute unless another caller
 * replaced the record between our read and our lock. */
static void recompute(hm_call *c, bool grace, hm_outcome *had, hm_outcome *o)
{
    hermes *h = c->h;
    uint64_t created = c->seen_created;
    uint32_t sum = c->seen_sum;
    hm_outcome now;
    int st;
    int hit = hm_call_read_hit(c, &st, &now);
    if (st != HERMES_BE_OK) { /* the backend failed: keep what we read */
        serve(c, grace, had, o);
        return;
    }
    if (hit && (c->seen_created != created || c->seen_sum != sum)) {
        hm_outcome_free(had); /* another caller refreshed it */
        *o = now;
        return;
    }
    hm_outcome_free(had);
    if (hit) { /* the same record, still fresh: refresh it early */
        *had = now;
    } else if (c->fresh == HM_FRESH_GRACE) { /* it expired meanwhile */
        *had = c->stale;
        memset(&c->stale, 0, sizeof c->stale);
        grace = true;
    }
    /* Else a tag was cleaned, or the entry deleted, since our read: the
     * value read may no longer be served, not even on error. */
    st = hm_tags_ensure(h, c->fn->tags.n, c->fn->tags.keys, &c->rd);
    hm_call_compute(c, st == HERMES_BE_OK, o);
    if (o->rc == HERMES_OK) {
        if (!grace)
            HM_COUNT(h, early_refreshes, 1);
        hm_outcome_free(had);
    } else if (had->value && (!grace || c->fn->stale_if_error)) {
        hm_outcome_free(o);
        serve(c, false, had, o);
        if (grace)
            HM_COUNT(h, stale_if_error, 1);
    } else {
        hm_outcome_free(had);
    }
}

/* Tries the entry's backend lock once: recomputes when it is ours. */
static void refresh_across_processes(hm_call *c, bool grace, hm_outcome *had,
                                     hm_outcome *o)
{
    hermes *h = c->h;
    char token[128];
    size_t toklen;
    int acquired = 0, released;
    if (hm_lock_key(h, &c->entry, &c->lock) != HERMES_OK) {
        serve(c, grace, had, o);
        return;
    }
    hm_lock_token(h, hm_now_ms(), token, sizeof token, &toklen);
    hermes_bytes lock = hm_bytes(c->lock.data, c->lock.len);
    hermes_bytes tok = {token, toklen};
    int st = hm_be_lock(h, lock, tok, h->cfg.lock_ttl_ms, &acquired);
    if (st != HERMES_BE_OK || !acquired) {
        if (st == HERMES_BE_OK)
            HM_COUNT(h, lock_contended, 1);
        serve(c, grace, had, o);
        return;
    }
    HM_COUNT(h, lock_acquired, 1);
    recompute(c, grace, had, o);
    hm_be_unlock(h, lock, tok, &released);
}

void hm_fresh_refresh(hm_call *c, hm_outcome *o)
{
    hermes *h = c->h;
    bool grace = c->fresh == HM_FRESH_GRACE;
    hm_outcome had;
    if (grace) {
        had = c->stale;
        memset(&c->stale, 0, sizeof c->stale);
    } else {
        had = *o;
    }
    memset(o, 0, sizeof *o);
    /* The refresh flight's key: the entry key, which holds no NUL, then
     * "\0R", a length no miss flight of the entry has (memo.c's keys add
     * 9 bytes per tag after the NUL). */
    hm_buf key;
    hm_buf_init(&key);
    hm_buf_add(&key, c->entry.data, c->entry.len);
    hm_buf_add(&key, "\0R", 2);
    bool busy = false;
    hm_flight *mine =
        key.failed ? NULL : hm_flight_try_lead(h, key.data, key.len, &busy);
    hm_buf_free(&key);
    if (busy) {
        serve(c, grace, &had, o);
        return;
    }
    refresh_across_processes(c, grace, &had, o);
    hm_outcome none;
    memset(&none, 0, sizeof none);
    hm_flight_land(h, mine, &none);
}
