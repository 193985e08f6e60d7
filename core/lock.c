/*
 * The cross-process half of dogpile control (DESIGN.md "Dogpile control"):
 * the leader of a miss takes the backend lock, named by the entry's lock
 * key and owned through a token that names host, pid, the time it was taken
 * and a random part, so only the owner's unlock succeeds and a reader can
 * tell the lock's age.  While another process holds it the
 * leader polls with jittered exponential backoff from 1 ms, capped at
 * lock_poll_ms (50 ms),
 * reading the entry again after each sleep, for at most lock_wait_ms; then
 * it falls back as on_lock_timeout says.  A backend that can say when a
 * lock is released (ABI 1.3 wait_unlock, redis) is waited on instead of
 * sleeping: the leader reads again as soon as the holder's unlock lands,
 * and every lock_poll_ms in case a notice is lost (a holder that died
 * sends none; its lock just expires), within the same lock_wait_ms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lock.h"

hermes_rc hm_lock_key(hermes *h, const hm_buf *entry, hm_buf *lock)
{
    size_t head = h->entry_prefix_len;
    hm_buf_adds(lock, h->lock_prefix);
    size_t lhead = lock->len;
    hm_buf_add(lock, entry->data + head, entry->len - head);
    hm_key_fit(lock, lhead, h->be->max_key_len);
    return lock->failed ? HERMES_ENOMEM : HERMES_OK;
}

void hm_lock_timed_out(hm_call *c, hm_outcome *o)
{
    HM_COUNT(c->h, lock_timeouts, 1);
    if (c->h->cfg.on_lock_timeout == HM_FALLBACK_FAIL) {
        memset(o, 0, sizeof *o);
        o->rc = HERMES_ETIMEOUT;
        return;
    }
    hm_call_compute(c, false, o);
}

/*
 * The pause after an attempt (started at attempt_at) found the lock held:
 * until the backend notices its release, for at most lock_poll_ms,
 * or, without notices (*notify false, or the backend cannot listen now),
 * the next step of the backoff.  Never past the deadline.  Returns whether
 * a release was notified.
 */
static bool lock_pause(hermes *h, hermes_bytes key, uint64_t attempt_at,
                       uint64_t now, uint64_t deadline, bool *notify,
                       uint64_t *backoff)
{
    uint64_t left = deadline - now,
             cap = (uint64_t)h->cfg.lock_poll_ms * 1000000u;
    if (*notify) {
        int woken = 0;
        uint64_t until = now + (left < cap ? left : cap);
        int st = hm_be_wait_unlock(h, key, attempt_at, until, &woken);
        if (st == HERMES_BE_OK) {
            if (woken)
                HM_COUNT(h, lock_notified, 1);
            return woken != 0;
        }
        /* Not in this configuration: not for the rest of this wait. */
        if (st == HERMES_BE_UNSUPPORTED)
            *notify = false;
    }
    *backoff = hm_backoff_next(*backoff, cap);
    hm_sleep_ns(*backoff < left ? *backoff : left);
    return false;
}

/*
 * With a backend that has lock_get and set_unlock (ABI 1.2) a cold miss is
 * three round trips: the read that missed, the lock taken together with
 * the read again, and the record written together with the unlock.  A
 * caller that finds the lock held gets a fresh read with every attempt,
 * so each poll is one round trip, not two.  Other backends take the same
 * steps one operation at a time.
 */
void hm_lock_lead(hm_call *c, hm_outcome *o)
{
    hermes *h = c->h;
    if (hm_lock_key(h, &c->entry, &c->lock) != HERMES_OK) {
        memset(o, 0, sizeof *o);
        o->rc = HERMES_ENOMEM;
        return;
    }
    char token[128];
    size_t toklen;
    hm_lock_ref lk = {
        hm_bytes(c->lock.data, c->lock.len), {token, 0}, h->cfg.lock_ttl_ms};
    hermes_bytes entry = hm_bytes(c->entry.data, c->entry.len);
    bool fused = HERMES_BACKEND_HAS_OP(h->be, lock_get);
    bool notify = hm_be_can_wait_unlock(h);
    uint64_t start = hm_monotonic_ns(), waited_from = 0, backoff = 0;
    uint64_t deadline = start + (uint64_t)h->cfg.lock_wait_ms * 1000000u;
    int acquired = 0, st;

    for (;;) {
        uint64_t attempt_at = hm_monotonic_ns();
        /* A new token per attempt: it carries the time of this one. */
        hm_lock_token(h, hm_now_ms(), token, sizeof token, &toklen);
        lk.token.len = toklen;
        st = fused ? hm_lock_read_entry(h, &lk, &acquired, entry, c->fn->tags.n,
                                        c->fn->tags.keys, &c->rd)
                   : hm_be_lock(h, lk.key, lk.token, lk.ttl_ms, &acquired);
        if (st != HERMES_BE_OK) {
            hm_call_backend_failed(c, st, o);
            return;
        }
        if (acquired) {
            HM_COUNT(h, lock_acquired, 1);
            break;
        }
        uint64_t now = hm_monotonic_ns();
        if (!waited_from) {
            waited_from = now;
            HM_COUNT(h, lock_contended, 1);
        }
        /* The holder's value may be in the read that came with the
         * attempt. */
        if (fused && hm_call_take_hit(c, o)) {
            HM_COUNT(h, lock_wait_ns, now - waited_from);
            return;
        }
        if (now >= deadline) {
            hm_count_lock_wait(h, now - waited_from);
            hm_lock_timed_out(c, o);
            return;
        }
        bool released =
            lock_pause(h, lk.key, attempt_at, now, deadline, &notify, &backoff);
        /* After a release the value is there: read it without taking the
         * lock (and releasing it again) first. */
        if (fused && !released)
            continue; /* the next attempt reads again */
        int hit = hm_call_read_hit(c, &st, o);
        if (hit || st != HERMES_BE_OK) {
            hm_count_lock_wait(h, hm_monotonic_ns() - waited_from);
            if (!hit)
                hm_call_backend_failed(c, st, o);
            return;
        }
    }
    if (waited_from)
        hm_count_lock_wait(h, hm_monotonic_ns() - waited_from);

    /* Better to read twice than to compute twice: another process may have
     * stored the value between our miss and our lock (with lock_get that
     * read came with the lock). */
    hm_unlock un = {lk, false};
    st = HERMES_BE_OK;
    if (fused ? !hm_call_take_hit(c, o) : !hm_call_read_hit(c, &st, o)) {
        if (st == HERMES_BE_OK)
            st = hm_tags_ensure(h, c->fn->tags.n, c->fn->tags.keys, &c->rd);
        c->unlock = &un;
        hm_call_compute(c, st == HERMES_BE_OK, o);
        c->unlock = NULL;
    }
    int released;
    if (!un.done)
        hm_be_unlock(h, lk.key, lk.token, &released);
}

void hm_lock_token(hermes *h, uint64_t now_ms, char *buf, size_t cap,
                   size_t *len)
{
    unsigned char raw[9];
    char r[16]; /* base64url of 9 bytes is 12 characters */
    if (hm_random(raw, sizeof raw) != 0)
        memset(raw, 0, sizeof raw);
    r[hm_b64url(raw, sizeof raw, r)] = '\0';
    int n = snprintf(buf, cap, "%s:%ld:%llu:%s", h->hostname, (long)getpid(),
                     (unsigned long long)now_ms, r);
    *len = n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

uint64_t hm_backoff_next(uint64_t prev_ns, uint64_t cap)
{
    const uint64_t first = 1000000u;
    uint64_t next = prev_ns ? prev_ns * 2 : first;
    if (next > cap)
        next = cap;
    /* Full jitter in [next/2, next): callers that started together spread. */
    uint32_t r = 0;
    hm_random(&r, sizeof r);
    return next / 2 + (uint64_t)r % (next / 2 + 1);
}
