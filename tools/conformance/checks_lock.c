/*
 * hermes-conformance checks of the lock protocol: lock() is exclusive and
 * never re-entrant, unlock() releases only for the owner's token (in one
 * step), and a lock past its TTL is free for someone else - the three
 * properties dogpile control across processes rests on - and the
 * optional operations around them (ABI 1.2's fused lock_get and
 * set_unlock, ABI 1.3's wait_unlock).
 */
#include "conformance.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYCAP 256
#define LONG_TTL 60000

/* Takes key for token and fails unless the outcome is want (1 = taken). */
static int lock_is(conf_ctx *c, hermes_bytes key, const char *token,
                   uint32_t ttl, int want, const char *what)
{
    int acquired;
    int st = conf_lock(c, key, conf_str(token), ttl, &acquired);

    if (st != HERMES_BE_OK)
        return conf_fail(c, "%s: lock returned %s", what, conf_status(st));
    if (acquired != 0 && acquired != 1)
        return conf_fail(c, "%s: lock set *acquired to %d, want 0 or 1", what,
                         acquired);
    if (acquired != want)
        return conf_fail(c, "%s: lock %s", what,
                         want ? "was refused" : "was granted");
    return CONF_PASS;
}

/* Releases key for token and fails unless the outcome is want. */
static int unlock_is(conf_ctx *c, hermes_bytes key, const char *token, int want,
                     const char *what)
{
    int released;
    int st = conf_unlock(c, key, conf_str(token), &released);

    if (st != HERMES_BE_OK)
        return conf_fail(c, "%s: unlock returned %s", what, conf_status(st));
    if (released != 0 && released != 1)
        return conf_fail(c, "%s: unlock set *released to %d, want 0 or 1", what,
                         released);
    if (released != want)
        return conf_fail(c, "%s: unlock %s", what,
                         want ? "released nothing" : "released the lock");
    return CONF_PASS;
}

int check_lock_exclusive(conf_ctx *c)
{
    char kb[KEYCAP];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "lock:exclusive");

    if (lock_is(c, k, "owner-A", LONG_TTL, 1, "a free lock") != CONF_PASS ||
        lock_is(c, k, "owner-B", LONG_TTL, 0, "a lock held by another token") !=
            CONF_PASS ||
        lock_is(c, k, "owner-A", LONG_TTL, 0,
                "a lock already held by the same token (not re-entrant)") !=
            CONF_PASS ||
        unlock_is(c, k, "owner-A", 1, "the owner") != CONF_PASS)
        return CONF_FAIL;
    return CONF_PASS;
}

int check_unlock_wrong_token(conf_ctx *c)
{
    char kb[KEYCAP], kb2[KEYCAP];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "lock:wrong-token");

    if (lock_is(c, k, "owner-A-12345", LONG_TTL, 1, "a free lock") != CONF_PASS)
        return CONF_FAIL;
    /* A token that is a prefix of the owner's catches comparisons that
     * stop at the shorter length. */
    if (unlock_is(c, k, "owner-B-67890", 0,
                  "unlock with a token that does not own the lock") !=
            CONF_PASS ||
        unlock_is(c, k, "owner-A-1234", 0,
                  "unlock with a prefix of the owner's token") != CONF_PASS ||
        lock_is(c, k, "owner-C", LONG_TTL, 0,
                "after refused unlocks, the lock") != CONF_PASS ||
        unlock_is(c, conf_key(c, kb2, sizeof kb2, "lock:never-taken"),
                  "owner-A-12345", 0, "a lock never taken") != CONF_PASS)
        return CONF_FAIL;
    return unlock_is(c, k, "owner-A-12345", 1, "the owner, after all that");
}

int check_unlock_owner(conf_ctx *c)
{
    char kb[KEYCAP];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "lock:owner");

    if (lock_is(c, k, "owner-A", LONG_TTL, 1, "a free lock") != CONF_PASS ||
        unlock_is(c, k, "owner-A", 1, "the owner") != CONF_PASS ||
        lock_is(c, k, "owner-B", LONG_TTL, 1, "a lock its owner released") !=
            CONF_PASS ||
        unlock_is(c, k, "owner-A", 0,
                  "the previous owner, once another holds it") != CONF_PASS ||
        lock_is(c, k, "owner-C", LONG_TTL, 0,
                "a lock the previous owner tried to release") != CONF_PASS)
        return CONF_FAIL;
    return unlock_is(c, k, "owner-B", 1, "the new owner");
}

/* ttl_ms 0 is refused (INVALID) and takes nothing. */
int check_lock_ttl_zero(conf_ctx *c)
{
    char kb[KEYCAP];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "lock:ttl0");
    int acquired;
    int st = conf_lock(c, k, conf_str("owner-A"), 0, &acquired);

    if (st != HERMES_BE_INVALID)
        return conf_fail(c,
                         "lock with ttl_ms 0 returned %s (acquired %d), "
                         "want INVALID: a lock that never expires blocks "
                         "everyone once its holder dies",
                         conf_status(st), acquired);
    if (acquired != 0)
        return conf_fail(c, "lock with ttl_ms 0 set *acquired to %d, want 0",
                         acquired);
    if (lock_is(c, k, "owner-B", LONG_TTL, 1,
                "a lock after a refused ttl-0 lock") != CONF_PASS)
        return CONF_FAIL;
    return unlock_is(c, k, "owner-B", 1, "the owner");
}

/* One attempt of the check below on its own key; sets *again when the
 * lock ran out early with the wall clock moved ahead meanwhile. */
static int lock_ttl_takeover_once(conf_ctx *c, int attempt, int *again)
{
    char kb[KEYCAP];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "lock:ttl:%d", attempt);
    int64_t wall0 = conf_wall_offset_us();
    uint64_t began = conf_now_us();

    if (lock_is(c, k, "owner-A", CONF_TTL_MS, 1, "a free lock") != CONF_PASS)
        return CONF_FAIL;
    uint64_t done = conf_now_us();

    /* The system time is set a day ahead: lock TTLs must not follow it. */
    atomic_store(&c->wall_skew_ms, CONF_WALL_SKEW_MS);
    /* Others must be refused by every lock() that ends before the TTL ran
     * out and granted by one that begins c->ttl_late_ms after it. */
    for (;;) {
        int acquired;
        uint64_t t0 = conf_now_us();
        int st = conf_lock(c, k, conf_str("owner-B"), LONG_TTL, &acquired);
        uint64_t t1 = conf_now_us();

        if (st != HERMES_BE_OK)
            return conf_fail(c, "lock of a lock in or past its TTL returned %s",
                             conf_status(st));
        if (acquired == 1) {
            if (t1 < began + CONF_TTL_MS * 1000u &&
                (*again = conf_wall_explains(c, wall0, began, t1, CONF_TTL_MS,
                                             attempt)))
                return CONF_FAIL;
            if (t1 < began + CONF_TTL_MS * 1000u)
                return conf_fail(
                    c,
                    "a lock taken with a %u ms TTL was granted to another "
                    "owner %llu ms later (early expiry: two owners at once; "
                    "the wall clock moved %+lld ms against the monotonic "
                    "one meanwhile)",
                    CONF_TTL_MS, (unsigned long long)(t1 - began) / 1000u,
                    (long long)(conf_wall_offset_us() - wall0) / 1000);
            conf_note(c, "a %u ms lock was free after %llu ms", CONF_TTL_MS,
                      (unsigned long long)(t1 - done) / 1000u);
            break;
        }
        if (acquired != 0)
            return conf_fail(c, "lock set *acquired to %d, want 0 or 1",
                             acquired);
        if (t0 > done + (uint64_t)(CONF_TTL_MS + c->ttl_late_ms) * 1000u)
            return conf_fail(c,
                             "a lock taken with a %u ms TTL was still held "
                             "%llu ms later (allowed: %u ms)",
                             CONF_TTL_MS,
                             (unsigned long long)(t0 - done) / 1000u,
                             CONF_TTL_MS + c->ttl_late_ms);
        conf_sleep_ms(20);
    }
    if (unlock_is(c, k, "owner-A", 0, "the expired owner, after a takeover") !=
            CONF_PASS ||
        lock_is(
            c, k, "owner-C", LONG_TTL, 0,
            "a lock taken over (the old owner's unlock must not free it)") !=
            CONF_PASS)
        return CONF_FAIL;
    return unlock_is(c, k, "owner-B", 1, "the new owner");
}

int check_lock_ttl_takeover(conf_ctx *c)
{
    int again = 0, rc;

    /* Each attempt starts with the real system time (an attempt sets it a
     * day ahead). */
    for (int attempt = 1;; attempt++) {
        atomic_store(&c->wall_skew_ms, 0);
        rc = lock_ttl_takeover_once(c, attempt, &again);
        if (!again)
            return rc;
        again = 0;
    }
}

/* ------------------------------------------ ABI 1.2's fused operations */

/* lock_get(key, token) reading keys[0..n): fails unless the lock outcome
 * is want and every key was read as get() reads it (present ones in g). */
static int lock_get_is(conf_ctx *c, hermes_bytes key, const char *token,
                       int want, const hermes_bytes *keys, size_t n,
                       conf_got *g, const char *what)
{
    int acquired;
    conf_got_init(g, n);
    int st = conf_lock_get(c, key, conf_str(token), LONG_TTL, &acquired, keys,
                           n, conf_got_cb, g);

    if (st != HERMES_BE_OK)
        return conf_fail(c, "%s: lock_get returned %s", what, conf_status(st));
    if (conf_got_check(c, g, "lock_get") != CONF_PASS)
        return CONF_FAIL;
    if (acquired != want)
        return conf_fail(c, "%s: lock_get set *acquired to %d, want %d", what,
                         acquired, want);
    return CONF_PASS;
}

/* lock_get takes the lock as lock() does and reads the keys as get()
 * does, whether or not it took the lock. */
int check_lock_get(conf_ctx *c)
{
    char kb[KEYCAP], vb[KEYCAP], mb[KEYCAP];
    if (!HERMES_BACKEND_HAS_OP(c->be, lock_get)) {
        /* Optional: without it the core calls lock() and get(). */
        conf_note(c, "no lock_get (optional, ABI 1.2)");
        return CONF_PASS;
    }
    hermes_bytes lk = conf_key(c, kb, sizeof kb, "lock:fused-get");
    hermes_bytes keys[2] = {conf_key(c, vb, sizeof vb, "fused-get:value"),
                            conf_key(c, mb, sizeof mb, "fused-get:missing")};
    conf_got g;
    int rc;

    if (conf_put(c, keys[0], "v1", 2, 0) != CONF_PASS)
        return CONF_FAIL;
    rc = lock_get_is(c, lk, "owner-A", 1, keys, 2, &g, "a free lock");
    if (rc == CONF_PASS && (!conf_got_is(&g, 0, "v1", 2) || g.slot[1].hits))
        rc = conf_fail(c, "a free lock: lock_get did not read the keys as "
                          "get() would (value, then nothing)");
    conf_got_free(&g);
    if (rc != CONF_PASS)
        return rc;
    rc = lock_get_is(c, lk, "owner-B", 0, keys, 1, &g,
                     "a lock held by another token");
    if (rc == CONF_PASS && !conf_got_is(&g, 0, "v1", 2))
        rc = conf_fail(c, "a held lock: lock_get did not read the key");
    conf_got_free(&g);
    if (rc != CONF_PASS)
        return rc;
    return unlock_is(c, lk, "owner-A", 1, "the owner, after lock_get");
}

/* set_unlock of key = value with token: fails unless it succeeds, sets
 * *released to want, and key then holds value. */
static int set_unlock_is(conf_ctx *c, hermes_bytes lk, hermes_bytes key,
                         const char *value, const char *token, int want,
                         const char *what)
{
    hermes_item it = {key, conf_str(value), 0, 0};
    int released;
    int st = conf_set_unlock(c, &it, 1, lk, conf_str(token), &released);

    if (st != HERMES_BE_OK)
        return conf_fail(c, "%s: set_unlock returned %s", what,
                         conf_status(st));
    if (released != want)
        return conf_fail(c, "%s: set_unlock set *released to %d, want %d", what,
                         released, want);
    return conf_expect(c, key, value, strlen(value), what);
}

/* set_unlock writes as set() does and releases as unlock() does: only for
 * the owner's token, the write made either way. */
int check_set_unlock(conf_ctx *c)
{
    char kb[KEYCAP], vb[KEYCAP];
    if (!HERMES_BACKEND_HAS_OP(c->be, set_unlock)) {
        conf_note(c, "no set_unlock (optional, ABI 1.2)");
        return CONF_PASS;
    }
    hermes_bytes lk = conf_key(c, kb, sizeof kb, "lock:fused-set");
    hermes_bytes key = conf_key(c, vb, sizeof vb, "fused-set:value");

    if (lock_is(c, lk, "owner-A", LONG_TTL, 1, "a free lock") != CONF_PASS ||
        set_unlock_is(c, lk, key, "v2", "owner-B", 0,
                      "set_unlock with another's token") != CONF_PASS ||
        lock_is(c, lk, "owner-C", LONG_TTL, 0,
                "the lock set_unlock with another's token left") != CONF_PASS ||
        set_unlock_is(c, lk, key, "v3", "owner-A", 1,
                      "set_unlock by the owner") != CONF_PASS ||
        lock_is(c, lk, "owner-C", LONG_TTL, 1,
                "the lock its owner's set_unlock released") != CONF_PASS)
        return CONF_FAIL;
    return unlock_is(c, lk, "owner-C", 1, "the next owner");
}

/* ----------------------------------- ABI 1.3's wait for a lock release */

static uint64_t mono(conf_ctx *c)
{
    return c->host.monotonic_ns(c->host.ctx);
}

/* A waiter in another thread: since is taken, ready is set, then it
 * waits as the core does (an unwoken early return means "look again"). */
typedef struct waiter {
    conf_ctx *c;
    hermes_bytes key;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;
    int st, woken, released_unseen;
    uint64_t until;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    uint64_t since = mono(w->c);
    pthread_mutex_lock(&w->mu);
    w->ready = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < 3; i++) {
        w->st = conf_wait_unlock(w->c, w->key, since, w->until, &w->woken);
        if (w->st != HERMES_BE_OK || w->woken || mono(w->c) >= w->until)
            return NULL;
        /* It began listening during the call: is the lock still held? */
        since = mono(w->c);
        int present = 0;
        unsigned char *v = NULL;
        size_t len;
        if (conf_get1(w->c, w->key, &present, &v, &len) == CONF_PASS &&
            !present) {
            w->released_unseen = 1;
            free(v);
            return NULL;
        }
        free(v);
    }
    return NULL;
}

/* wait_unlock returns by until_ns unwoken while the lock stays held, is
 * woken by unlock() of the lock in another thread, and returns at once
 * for a release notified before the call. */
int check_wait_unlock(conf_ctx *c)
{
    char kb[KEYCAP];
    if (!HERMES_BACKEND_HAS_OP(c->be, wait_unlock)) {
        conf_note(c, "no wait_unlock (optional, ABI 1.3)");
        return CONF_PASS;
    }
    if (!(c->be->caps & HERMES_CAP_THREADSAFE)) {
        conf_note(c, "wait_unlock without HERMES_CAP_THREADSAFE: the core "
                     "does not use it");
        return CONF_PASS;
    }
    hermes_bytes lk = conf_key(c, kb, sizeof kb, "lock:wait");
    if (lock_is(c, lk, "owner-A", LONG_TTL, 1, "a free lock") != CONF_PASS)
        return CONF_FAIL;

    /* Held throughout: unwoken, by the deadline (after at most a few
     * early returns while it begins listening). */
    int woken = 0, st = HERMES_BE_OK, waited = 0;
    for (int i = 0; i < 5 && !waited; i++) {
        uint64_t since = mono(c), until = since + 200000000u;
        st = conf_wait_unlock(c, lk, since, until, &woken);
        uint64_t end = mono(c);
        if (st == HERMES_BE_UNSUPPORTED) {
            conf_note(c, "wait_unlock: UNSUPPORTED in this configuration");
            return unlock_is(c, lk, "owner-A", 1, "the owner");
        }
        if (st != HERMES_BE_OK)
            return conf_fail(c, "wait_unlock on a held lock returned %s",
                             conf_status(st));
        if (woken != 0 && woken != 1)
            return conf_fail(c, "wait_unlock set *woken to %d", woken);
        if (end > until + 1000000000u)
            return conf_fail(c, "wait_unlock returned %llu ms after until_ns",
                             (unsigned long long)((end - until) / 1000000u));
        waited = !woken && end >= until;
    }
    if (!waited)
        return conf_fail(c, "wait_unlock on a held lock never waited until "
                            "until_ns (5 early returns)");

    /* Released by another thread while waiting: woken. */
    waiter w = {.c = c,
                .key = lk,
                .mu = PTHREAD_MUTEX_INITIALIZER,
                .cv = PTHREAD_COND_INITIALIZER};
    w.until = mono(c) + 10000000000u;
    pthread_t t;
    if (pthread_create(&t, NULL, waiter_main, &w) != 0)
        return conf_fail(c, "cannot start a thread");
    pthread_mutex_lock(&w.mu);
    while (!w.ready)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    uint64_t before_release = mono(c);
    int rc = unlock_is(c, lk, "owner-A", 1, "the owner, while one waits");
    pthread_join(t, NULL);
    if (rc != CONF_PASS)
        return rc;
    if (w.st != HERMES_BE_OK)
        return conf_fail(c,
                         "wait_unlock while the lock was released "
                         "returned %s",
                         conf_status(w.st));
    if (w.released_unseen)
        conf_note(c, "the release came before the waiter was listening");
    else if (w.woken != 1)
        return conf_fail(c, "unlock() in another thread did not wake "
                            "wait_unlock within 10 s");

    /* Notified before the call: at once (or, if it had stopped
     * listening, an early unwoken return), never at until_ns. */
    uint64_t until = mono(c) + 10000000000u;
    st = conf_wait_unlock(c, lk, before_release, until, &woken);
    if (st != HERMES_BE_OK)
        return conf_fail(c, "wait_unlock after a release returned %s",
                         conf_status(st));
    if (mono(c) >= until)
        return conf_fail(c, "wait_unlock for a release already notified "
                            "waited until until_ns");
    return CONF_PASS;
}
