/*
 * The memoized call (DESIGN.md "The tag protocol", "Dogpile control").
 *
 * A call is: one batched read of the entry and its tags; on a hit, done.
 * On a miss, in-process followers wait for one leader (flight.c); the
 * leader takes the cross-process lock and computes (lock.c).  A failing
 * backend never fails the call: the value is computed directly unless the
 * configuration says otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresh.h"
#include "keyspace.h"
#include "lock.h"
#include "memo.h"
#include "publish.h"

/* The calls this thread is computing, innermost first (hm_call.outer):
 * a compute callback that calls its own entry, directly or through other
 * cached functions, finds it here and fails at once instead of waiting
 * lock_wait_ms for itself. */
#if defined(__GNUC__)
__attribute__((tls_model("initial-exec"))) /* one load on the hit path */
#endif
static _Thread_local const hm_call *computing;

/* The entry of c when this thread is already computing it, else NULL. */
static const hm_call *computing_same(const hm_call *c)
{
    for (const hm_call *o = computing; o; o = o->outer)
        if (o->h == c->h && o->entry.len == c->entry.len &&
            memcmp(o->entry.data, c->entry.data, c->entry.len) == 0)
            return o;
    return NULL;
}

void hm_call_compute(hm_call *c, bool store, hm_outcome *o)
{
    hermes *h = c->h;
    hermes_result res;
    memset(&res, 0, sizeof res);
    res.h = h;
    uint64_t t0 = hm_monotonic_ns();
    c->outer = computing;
    computing = c;
    int failed = c->compute(c->arg, &res);
    computing = c->outer;
    hm_clear_error(); /* of the calls the callback made; ours come later */
    uint64_t us = (hm_monotonic_ns() - t0) / 1000u;
    HM_COUNT(h, computations, 1);
    memset(o, 0, sizeof *o);
    if (failed) {
        HM_COUNT(h, compute_errors, 1);
        /* A callback that failed because hermes_result_set() could not
         * allocate reports the library's out-of-memory, not its own. */
        o->rc = res.nomem ? HERMES_ENOMEM : HERMES_ECOMPUTE;
        o->errmsg = res.errmsg;
        free(res.data);
        return;
    }
    if (res.bad_ttl) {
        char msg[200];
        snprintf(msg, sizeof msg, "hermes_result_ttl: " HM_TTL_RANGE,
                 (unsigned long)res.ttl, HERMES_TTL_MAX);
        free(res.errmsg);
        free(res.data);
        o->rc = HERMES_EINVAL;
        o->errmsg = strdup(msg);
        return;
    }
    free(res.errmsg);
    if (!res.set && hermes_result_set(&res, "", 0) != HERMES_OK) {
        o->rc = HERMES_ENOMEM;
        return;
    }
    if (store && !res.nocache) {
        /* HERMES_TTL_DEFAULT at each level defers to the next. */
        uint32_t ttl = res.has_ttl                        ? res.ttl
                       : c->fn->ttl != HERMES_TTL_DEFAULT ? c->fn->ttl
                                                          : h->cfg.ttl;
        hm_owner owner;
        hm_fn_owner(c->fn, &c->entry, &owner);
        hm_write_entry(h, hm_bytes(c->entry.data, c->entry.len), &owner,
                       &c->fn->tags, &c->rd, res.data, res.len, ttl,
                       c->fn->grace,
                       us > UINT32_MAX ? UINT32_MAX : (uint32_t)us, c->unlock);
    }
    o->rc = HERMES_OK;
    o->value = res.data;
    o->len = res.len;
}

int hm_call_read_hit(hm_call *c, int *status, hm_outcome *o)
{
    uint64_t epoch = hm_tag_epoch(c->h);
    *status = hm_read_entry(c->h, hm_bytes(c->entry.data, c->entry.len),
                            c->fn->tags.n, c->fn->tags.keys, &c->rd);
    if (*status != HERMES_BE_OK)
        return 0;
    hm_tag_memo_keep(c->h, &c->fn->tag_memo, epoch, &c->rd);
    return hm_call_take_hit(c, o);
}

/* A call's first read: on a private store whose tag versions the function
 * remembers, the entry alone; anything but a hit reads again in full, so a
 * miss goes on exactly as from a full read. */
static int first_read_hit(hm_call *c, int *status, hm_outcome *o)
{
    hermes_bytes key = hm_bytes(c->entry.data, c->entry.len);
    *status = hm_read_entry_memo(c->h, &c->fn->tag_memo, key, &c->rd);
    if (*status == HERMES_BE_OK && hm_call_take_hit(c, o))
        return 1;
    return hm_call_read_hit(c, status, o);
}

int hm_call_take_hit(hm_call *c, hm_outcome *o)
{
    c->fresh = HM_FRESH_NONE;
    if (c->stale.value)
        hm_outcome_free(&c->stale);
    hm_owner owner;
    hm_fn_owner(c->fn, &c->entry, &owner);
    c->verdict = hm_judge(c->h, &c->rd, &owner, &c->fn->tags);
    if (c->verdict != HM_HIT)
        return 0;
    if (c->fn->fresh ? (c->fresh = hm_fresh_judge(c)) == HM_FRESH_EXPIRED
                     : hm_record_expired(&c->rd.rec)) {
        c->fresh = HM_FRESH_NONE;
        c->verdict = HM_ABSENT;
        return 0;
    }
    /* The read kept only the payload, at the front of its buffer; a value
     * within grace is kept aside for hm_fresh_refresh. */
    hm_outcome *into = c->fresh == HM_FRESH_GRACE ? &c->stale : o;
    memset(into, 0, sizeof *into);
    into->value = c->rd.entry;
    into->len = c->rd.entry_len;
    into->rc = HERMES_OK;
    c->rd.entry = NULL;
    return into == o;
}

void hm_call_backend_failed(hm_call *c, int status, hm_outcome *o)
{
    if (c->h->cfg.on_backend_error == HM_FALLBACK_FAIL) {
        memset(o, 0, sizeof *o);
        o->rc = hm_be_rc(status, false);
        const char *be = c->h->be->name, *what = hm_be_status_str(status),
                   *detail = hm_be_detail();
        size_t n = 8 + strlen(be) + 2 + strlen(what) + 2 + strlen(detail) + 1;
        if ((o->errmsg = malloc(n)) != NULL)
            snprintf(o->errmsg, n, "backend %s: %s%s%s", be, what,
                     *detail ? ": " : "", detail);
        return;
    }
    hm_call_compute(c, false, o);
}

/*
 * The flight a miss may share: the entry key and the tag versions this
 * caller read.  A caller that read other versions (a clean happened in
 * between) must not be handed a value computed under the old ones, so it
 * joins, or leads, another flight.  The entry key holds no NUL and each
 * tag takes 9 bytes (found, version id), so two different reads never
 * make one key.
 */
static void flight_key(const hm_call *c, hm_buf *k)
{
    hm_buf_add(k, c->entry.data, c->entry.len);
    hm_buf_add(k, "", 1);
    for (size_t i = 0; i < c->rd.ntags; i++) {
        unsigned char one[9] = {c->rd.found[i]};
        uint64_t v = c->rd.found[i] ? c->rd.vids[i] : 0;
        memcpy(one + 1, &v, sizeof v);
        hm_buf_add(k, one, sizeof one);
    }
}

/* Whether the leader's value may be handed to its followers: it was
 * computed (or found) under exactly the versions they read, all present.
 * An absent tag is ambiguous (not created yet, or cleaned since), so a
 * flight that read one never hands its value on. */
static bool shareable(const hm_call *c, const hm_buf *fkey)
{
    for (size_t i = 0; i < c->rd.ntags; i++)
        if (!c->rd.found[i])
            return false;
    hm_buf now;
    hm_buf_init(&now);
    flight_key(c, &now);
    bool same = !now.failed && now.len == fkey->len &&
                memcmp(now.data, fkey->data, now.len) == 0;
    hm_buf_free(&now);
    return same;
}

/*
 * A miss: lead the computation or follow the one in flight.  Returns 1
 * when the caller followed a leader whose value it may not take (see
 * shareable()) and must read again.
 */
static int miss(hm_call *c, hm_outcome *o)
{
    hermes *h = c->h;
    hm_flight *mine = NULL, *f = NULL;
    hm_buf fkey;
    hm_buf_init(&fkey);
    flight_key(c, &fkey);
    /* Out of memory for the key: lead without a flight. */
    if (!fkey.failed)
        f = hm_flight_join(h, fkey.data, fkey.len, &mine);
    if (f) {
        hm_buf_free(&fkey);
        uint64_t t0 = hm_monotonic_ns();
        int got =
            hm_flight_wait(h, f, (uint64_t)h->cfg.lock_wait_ms * 1000000u, o);
        hm_count_lock_wait(h, hm_monotonic_ns() - t0);
        if (got != 0) {
            hm_lock_timed_out(c, o);
            return 0;
        }
        if (o->retry) {
            hm_outcome_free(o);
            return 1;
        }
        HM_COUNT(h, coalesced, 1);
        return 0;
    }
    hm_lock_lead(c, o);
    o->retry = mine && !shareable(c, &fkey);
    hm_buf_free(&fkey);
    hm_flight_land(h, mine, o);
    o->retry = false;
    return 0;
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
    } else {
        hm_error(c->h, rc, "%s: %s", c->fn->name,
                 o->errmsg ? o->errmsg : hermes_strerror(rc));
    }
    hm_outcome_free(o);
    return rc;
}

hermes_rc hermes_call(hermes_fn *fn, const void *args, size_t args_len,
                      hermes_compute_fn compute_fn, void *arg, void **value,
                      size_t *len)
{
    hm_clear_error();
    if (value)
        *value = NULL;
    if (len)
        *len = 0;
    if (!fn)
        return hm_error(NULL, HERMES_EINVAL, "hermes_call: fn is NULL");
    if (!args && args_len == HERMES_ARGS_FAILED)
        return hm_error(fn->h, HERMES_ENOMEM,
                        "hermes_call %s: the argument encoding failed (a "
                        "hermes_args append ran out of memory)",
                        fn->name);
    if (!compute_fn || !value || !len || (!args && args_len))
        return hm_error(fn->h, HERMES_EINVAL, "hermes_call %s: %s", fn->name,
                        !compute_fn ? "compute is NULL"
                        : !value    ? "value is NULL"
                        : !len      ? "len is NULL"
                                    : "args is NULL but args_len is not 0");
    /* Field by field: zeroing the whole struct (key buffers, inline tag
     * versions) costs more than the rest of a hit's bookkeeping. */
    hm_call c;
    c.h = fn->h;
    c.fn = fn;
    c.compute = compute_fn;
    c.arg = arg;
    c.verdict = HM_ABSENT;
    c.fresh = HM_FRESH_NONE;
    c.stale.value = NULL;
    c.stale.errmsg = NULL;
    c.unlock = NULL;
    hm_outcome o;
    hm_buf_init(&c.entry);
    hm_buf_init(&c.lock);
    hermes_rc rc = hm_entry_key(fn, args, args_len, arg, &c.entry);
    if (rc == HERMES_OK && hm_read_init(&c.rd, fn->tags.n) != 0)
        rc = HERMES_ENOMEM;
    if (rc != HERMES_OK) {
        hm_buf_free(&c.entry);
        hm_buf_free(&c.lock);
        return rc == HERMES_ENOMEM
                   ? hm_error(fn->h, rc, "%s: out of memory", fn->name)
                   : rc;
    }
    const hm_call *same = computing ? computing_same(&c) : NULL;
    if (same) {
        hm_read_free(&c.rd);
        hm_buf_free(&c.entry);
        hm_buf_free(&c.lock);
        return hm_error(fn->h, HERMES_ERECURSIVE,
                        "%s: called from the compute callback of %s while "
                        "this thread computes the same entry",
                        fn->name, computing->fn->name);
    }
    hm_publish_tick(c.h);
    /* A follower told to read again usually finds the leader's value; a
     * caller that keeps being sent back (tags cleaned over and over)
     * computes directly after a few rounds instead of looping. */
    int st;
    for (int round = 0;; round++) {
        if (round == 0 ? first_read_hit(&c, &st, &o)
                       : hm_call_read_hit(&c, &st, &o)) {
            if (round)
                HM_COUNT(c.h, coalesced, 1);
            else
                HM_COUNT_FN_HIT(c.h, fn);
            if (c.fresh == HM_FRESH_EARLY)
                hm_fresh_refresh(&c, &o);
            break;
        }
        if (st != HERMES_BE_OK) {
            hm_call_backend_failed(&c, st, &o);
            break;
        }
        if (round == 0) {
            HM_COUNT(c.h, misses, 1);
            atomic_fetch_add_explicit(&fn->misses, 1, memory_order_relaxed);
            hm_count_verdict(c.h, c.verdict);
        }
        if (c.fresh == HM_FRESH_GRACE) {
            hm_fresh_refresh(&c, &o);
            break;
        } else if (round == 3) {
            hm_call_compute(&c, false, &o);
            break;
        }
        if (!miss(&c, &o))
            break;
    }
    rc = deliver(&c, &o, value, len);
    hm_outcome_free(&c.stale);
    hm_read_free(&c.rd);
    hm_buf_free(&c.entry);
    hm_buf_free(&c.lock);
    return rc;
}

hermes_rc hermes_invalidate(hermes_fn *fn, const void *args, size_t args_len,
                            void *arg)
{
    hm_clear_error();
    if (!fn)
        return hm_error(NULL, HERMES_EINVAL, "hermes_invalidate: fn is NULL");
    if (!args && args_len == HERMES_ARGS_FAILED)
        return hm_error(fn->h, HERMES_ENOMEM,
                        "hermes_invalidate %s: the argument encoding failed "
                        "(a hermes_args append ran out of memory)",
                        fn->name);
    if (!args && args_len)
        return hm_error(fn->h, HERMES_EINVAL,
                        "hermes_invalidate %s: args is NULL but args_len is "
                        "not 0",
                        fn->name);
    hm_buf entry;
    hm_buf_init(&entry);
    hermes_rc rc = hm_entry_key(fn, args, args_len, arg, &entry);
    if (rc == HERMES_OK) {
        hermes_bytes k = hm_bytes(entry.data, entry.len);
        int st = hm_be_del(fn->h, &k, 1);
        if (st != HERMES_BE_OK)
            rc = hm_be_error(fn->h, st, "invalidate %s", fn->name);
    } else if (rc == HERMES_ENOMEM) {
        hm_error(fn->h, rc, "invalidate %s: out of memory", fn->name);
    }
    hm_buf_free(&entry);
    return rc;
}
