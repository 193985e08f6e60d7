/*
 * The memoized call (DESIGN.md "The tag protocol", "Dogpile control").
 *
 * A call is: one batched read of the entry and its tags; on a hit, done.
 * On a miss, in-process followers wait for one leader (flight.c); the
 * leader takes the cross-process lock and computes (lock.c).  A failing
 * backend never fails the call: the value is computed directly unless the
 * configuration says otherwise.
 */
#include <stdlib.h>
#include <string.h>

#include "keyspace.h"
#include "lock.h"
#include "memo.h"

void hm_call_compute(hm_call *c, bool store, hm_outcome *o)
{
    hermes *h = c->h;
    hermes_result res;
    memset(&res, 0, sizeof res);
    uint64_t t0 = hm_monotonic_ns();
    int failed = c->compute(c->arg, &res);
    uint64_t us = (hm_monotonic_ns() - t0) / 1000u;
    HM_COUNT(h, computations, 1);
    memset(o, 0, sizeof *o);
    if (failed) {
        HM_COUNT(h, compute_errors, 1);
        o->rc = HERMES_ECOMPUTE;
        o->errmsg = res.errmsg;
        free(res.data);
        return;
    }
    free(res.errmsg);
    if (!res.set && hermes_result_set(&res, "", 0) != HERMES_OK) {
        o->rc = HERMES_ENOMEM;
        return;
    }
    if (store && !res.nocache) {
        uint32_t ttl = res.has_ttl  ? res.ttl
                       : c->fn->ttl ? c->fn->ttl
                                    : h->cfg.ttl;
        hm_write_entry(h, hm_bytes(c->entry.data, c->entry.len), c->fn->tags.n,
                       (const char *const *)c->fn->tags.names, &c->rd, res.data,
                       res.len, ttl,
                       us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
    }
    o->rc = HERMES_OK;
    o->value = res.data;
    o->len = res.len;
}

int hm_call_read_hit(hm_call *c, int *status, hm_outcome *o)
{
    const void *payload;
    size_t len;
    *status = hm_read_entry(c->h, hm_bytes(c->entry.data, c->entry.len),
                            c->fn->tags.n, c->fn->tags.keys, &c->rd);
    if (*status != HERMES_BE_OK)
        return 0;
    c->verdict = hm_judge(c->h, &c->rd, c->fn->tags.bytes, &payload, &len);
    if (c->verdict != HM_HIT)
        return 0;
    /* The payload ends the record but for the 4-byte checksum: slide it to
     * the front of the buffer we already own instead of copying it again. */
    unsigned char *buf = c->rd.entry;
    memmove(buf, payload, len);
    buf[len] = '\0';
    c->rd.entry = NULL;
    memset(o, 0, sizeof *o);
    o->value = buf;
    o->len = len;
    o->rc = HERMES_OK;
    return 1;
}

void hm_call_backend_failed(hm_call *c, int status, hm_outcome *o)
{
    if (c->h->cfg.on_backend_error == HM_FALLBACK_FAIL) {
        memset(o, 0, sizeof *o);
        o->rc = HERMES_EBACKEND;
        o->errmsg = strdup(hm_be_status_str(status));
        return;
    }
    hm_call_compute(c, false, o);
}

/* A miss: lead the computation or follow the one in flight. */
static void miss(hm_call *c, hm_outcome *o)
{
    hermes *h = c->h;
    hm_flight *mine;
    hm_flight *f = hm_flight_join(h, c->entry.data, c->entry.len, &mine);
    if (f) {
        uint64_t t0 = hm_monotonic_ns();
        int got =
            hm_flight_wait(h, f, (uint64_t)h->cfg.lock_wait_ms * 1000000u, o);
        HM_COUNT(h, lock_wait_ns, hm_monotonic_ns() - t0);
        if (got == 0)
            HM_COUNT(h, coalesced, 1);
        else
            hm_lock_timed_out(c, o);
        return;
    }
    hm_lock_lead(c, o);
    hm_flight_land(h, mine, o);
}

static hermes_rc deliver(hm_call *c, hm_outcome *o, void **value, size_t *len)
{
    hermes_rc rc = o->rc;
    if (rc == HERMES_OK) {
        *value = o->value;
        *len = o->len;
        o->value = NULL;
    } else if (rc == HERMES_ECOMPUTE) {
        hm_error(c->h, rc, "%s: %s", c->fn->name,
                 o->errmsg ? o->errmsg : "the compute callback failed");
    } else if (rc == HERMES_ETIMEOUT) {
        hm_error(c->h, rc, "%s: waited %u ms for another caller's computation",
                 c->fn->name, c->h->cfg.lock_wait_ms);
    } else if (rc == HERMES_EBACKEND) {
        hm_error(c->h, rc, "%s: backend %s: %s", c->fn->name, c->h->be->name,
                 o->errmsg ? o->errmsg : "failed");
    } else {
        hm_error(c->h, rc, "%s: %s", c->fn->name, hermes_strerror(rc));
    }
    hm_outcome_free(o);
    return rc;
}

hermes_rc hermes_call(hermes_fn *fn, const void *args, size_t args_len,
                      hermes_compute_fn compute_fn, void *arg, void **value,
                      size_t *len)
{
    if (value)
        *value = NULL;
    if (len)
        *len = 0;
    if (!fn || !compute_fn || !value || !len || (!args && args_len))
        return HERMES_EINVAL;
    /* Field by field: zeroing the whole struct (key buffers, inline tag
     * versions) costs more than the rest of a hit's bookkeeping. */
    hm_call c;
    c.h = fn->h;
    c.fn = fn;
    c.compute = compute_fn;
    c.arg = arg;
    c.verdict = HM_ABSENT;
    hm_outcome o;
    hm_buf_init(&c.entry);
    hm_buf_init(&c.lock);
    hermes_rc rc = hm_entry_key(fn, args, args_len, arg, &c.entry);
    if (rc == HERMES_OK && hm_read_init(&c.rd, fn->tags.n) != 0)
        rc = HERMES_ENOMEM;
    if (rc != HERMES_OK) {
        hm_buf_free(&c.entry);
        hm_buf_free(&c.lock);
        return rc == HERMES_ENOMEM ? hm_error(fn->h, rc, "out of memory") : rc;
    }
    int st;
    if (hm_call_read_hit(&c, &st, &o)) {
        HM_COUNT(c.h, hits, 1);
    } else if (st != HERMES_BE_OK) {
        hm_call_backend_failed(&c, st, &o);
    } else {
        HM_COUNT(c.h, misses, 1);
        if (c.verdict == HM_STALE)
            HM_COUNT(c.h, stale, 1);
        miss(&c, &o);
    }
    rc = deliver(&c, &o, value, len);
    hm_read_free(&c.rd);
    hm_buf_free(&c.entry);
    hm_buf_free(&c.lock);
    return rc;
}

hermes_rc hermes_invalidate(hermes_fn *fn, const void *args, size_t args_len,
                            void *arg)
{
    if (!fn || (!args && args_len))
        return HERMES_EINVAL;
    hm_buf entry;
    hm_buf_init(&entry);
    hermes_rc rc = hm_entry_key(fn, args, args_len, arg, &entry);
    if (rc == HERMES_OK) {
        hermes_bytes k = hm_bytes(entry.data, entry.len);
        int st = hm_be_del(fn->h, &k, 1);
        if (st != HERMES_BE_OK)
            rc = hm_error(fn->h, HERMES_EBACKEND, "invalidate %s: %s", fn->name,
                          hm_be_status_str(st));
    }
    hm_buf_free(&entry);
    return rc;
}
