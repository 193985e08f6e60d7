/*
 * Freshness (issue 12, README "Freshness"): early refresh (XFetch), grace
 * (serve the old value while one caller recomputes), stale-if-error, and
 * tag invalidation that grace never softens.
 *
 * Deterministic: the wall clock and the random source of the decisions
 * are the test's (hm_test_host_set, core/host.h), so expiry, grace and
 * XFetch draws are set exactly, never slept for.  Computations that must
 * stay in progress while other callers are checked wait on a gate the
 * test opens once the condition it wants has been seen.
 *
 * Built twice: on the dict (through the recording mock), and with
 * FRESH_REDIS over a private redis-server, where 4 forked processes share
 * the entry (the fake clock lives in shared memory).
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "../support/child_wait.h"
#include "fresh.h"
#include "internal.h"
#include "mock_backend.h"

#ifdef FRESH_REDIS
#include <hiredis/hiredis.h>

#include "redis_server.h"
static redis_server server;
#endif

/* ----------------------------------------------- clock, draws, shared */

#define T0 UINT64_C(1800000000000) /* the fake epoch ms the tests start at */

/* What the test and the library (and forked children) share. */
typedef struct shared {
    atomic_uint_fast64_t now_ms;
    atomic_uint_fast64_t draw;  /* xorshift state of the draws */
    atomic_int fixed_draw_ppb;  /* > 0: every draw is this / 1e9 */
    atomic_int computations;    /* across processes */
    atomic_int gate_open;       /* computations wait for it when gated */
    atomic_int gated;           /* computations wait on the gate */
    atomic_int in_compute;      /* computations currently waiting there */
    atomic_int fail;            /* computations fail */
    atomic_int served_stale[8]; /* per child: calls answered with old */
    atomic_int calls[8];        /* per child: calls made */
    atomic_int stop;
    atomic_int errors; /* calls that failed */
    atomic_int newest; /* the newest value a caller got */
} shared;
static shared *sh;

static uint64_t fake_now(void *ctx)
{
    return atomic_load(&sh->now_ms);
}

/* Deterministic draws in (0, 1]: xorshift64* from a fixed seed. */
static double fake_unit(void *ctx)
{
    int fixed = atomic_load(&sh->fixed_draw_ppb);
    if (fixed > 0)
        return fixed / 1e9;
    uint64_t x = atomic_load(&sh->draw), next;
    do {
        next = x;
        next ^= next >> 12;
        next ^= next << 25;
        next ^= next >> 27;
    } while (!atomic_compare_exchange_weak(&sh->draw, &x, next));
    return (double)(((next * UINT64_C(2685821657736338717)) >> 11) + 1) *
           0x1p-53;
}

static const hm_test_host fake_host = {fake_now, fake_unit, NULL};

static void advance_ms(uint64_t ms)
{
    atomic_fetch_add(&sh->now_ms, ms);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Polls cond for up to 20 s, yielding: the test thread fails after that
 * (a broken build fails instead of hanging); other threads use BOUNDED. */
#define BOUNDED(cond)                                                          \
    ({                                                                         \
        uint64_t until_ = mono_ms() + 20000;                                   \
        bool ok_;                                                              \
        while (!(ok_ = (cond)) && mono_ms() < until_) {                        \
            sched_yield();                                                     \
            usleep(10);                                                        \
        }                                                                      \
        ok_;                                                                   \
    })
#define WAIT_FOR(cond)                                                         \
    do {                                                                       \
        if (!BOUNDED(cond))                                                    \
            fail_msg("timed out waiting for %s", #cond);                       \
    } while (0)

/* ----------------------------------------------------------- fixtures */

static hermes *h;

static char *config_text(const char *extra)
{
    static char text[1024];
#ifdef FRESH_REDIS
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = fresh%d\n%s\n[redis]\nport = %d\n",
             getenv("HERMES_TEST_BUILDDIR"), (int)getpid(), extra ? extra : "",
             server.port);
#else
    snprintf(text, sizeof text, "[hermes]\n%s\n", extra ? extra : "");
#endif
    return text;
}

static hermes *open_cache(const char *extra)
{
    hermes *c;
#ifdef FRESH_REDIS
    hermes_rc rc = hermes_open_string(&c, config_text(extra), "test");
#else
    hermes_rc rc =
        hermes_open_with(&c, config_text(extra), "test", mock_backend());
#endif
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(c));
    assert_int_equal(hermes_flush(c), HERMES_OK);
    return c;
}

static int setup(void **state)
{
    memset(sh, 0, sizeof *sh);
    atomic_store(&sh->now_ms, T0);
    atomic_store(&sh->draw, UINT64_C(0x9e3779b97f4a7c15));
    hm_test_host_set(&fake_host);
    h = open_cache(NULL);
    return 0;
}

static int teardown(void **state)
{
    hermes_flush(h);
    hermes_close(h);
    h = NULL;
    hm_test_host_set(NULL);
    return 0;
}

static hermes_fn *reg(const char *name, hermes_fn_options o)
{
    hermes_fn *fn;
    if (hermes_fn_register(h, name, &o, &fn) != HERMES_OK)
        fail_msg("register %s: %s", name, hermes_errmsg(h));
    return fn;
}

static hermes_stats stats(void)
{
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    return s;
}

/* The computation: "v<n>", n its number across processes; waits on the
 * gate when gated, fails when told to. */
static int compute(void *arg, hermes_result *res)
{
    int n = atomic_fetch_add(&sh->computations, 1) + 1;
    if (atomic_load(&sh->gated)) {
        atomic_fetch_add(&sh->in_compute, 1);
        bool opened = BOUNDED(atomic_load(&sh->gate_open));
        atomic_fetch_sub(&sh->in_compute, 1);
        if (!opened) {
            hermes_result_error(res, "the gate never opened");
            return 1;
        }
    }
    if (atomic_load(&sh->fail)) {
        hermes_result_error(res, "the database is on fire");
        return 1;
    }
    char v[32];
    int len = snprintf(v, sizeof v, "v%d", n);
    return hermes_result_set(res, v, (size_t)len) == HERMES_OK ? 0 : 1;
}

/* Calls fn(1); *n receives the number of the computation whose value came
 * back (0 on error). */
static hermes_rc call_fn(hermes_fn *fn, int *n)
{
    hermes_args a = HERMES_ARGS_INIT;
    hermes_args_int(&a, 1);
    void *v;
    size_t len;
    hermes_rc rc = hermes_call(fn, hermes_args_data(&a), hermes_args_len(&a),
                               compute, NULL, &v, &len);
    hermes_args_free(&a);
    *n = 0;
    if (rc == HERMES_OK) {
        assert_true(len >= 2 && ((char *)v)[0] == 'v');
        *n = atoi((char *)v + 1);
    }
    hermes_free(v);
    return rc;
}

static int value_of(hermes_fn *fn)
{
    int n;
    hermes_rc rc = call_fn(fn, &n);
    if (rc != HERMES_OK)
        fail_msg("call: %s", hermes_errmsg(h));
    return n;
}

/* Calls fn(1) with a computation that fails. */
static hermes_rc call_failing(hermes_fn *fn)
{
    atomic_store(&sh->fail, 1);
    int n;
    hermes_rc rc = call_fn(fn, &n);
    atomic_store(&sh->fail, 0);
    return rc;
}

/* Writes fn(1)'s entry as if computed at the fake now in compute_us. */
static void store_entry(hermes_fn *fn, int n, uint32_t ttl_s,
                        uint32_t compute_us)
{
    hermes_args a = HERMES_ARGS_INIT;
    hermes_args_int(&a, 1);
    hm_buf key;
    hm_buf_init(&key);
    assert_int_equal(
        hm_entry_key(fn, hermes_args_data(&a), hermes_args_len(&a), NULL, &key),
        HERMES_OK);
    hm_read rd;
    assert_int_equal(hm_read_init(&rd, 0), 0);
    hm_owner owner;
    hm_fn_owner(fn, &key, &owner);
    char v[32];
    int len = snprintf(v, sizeof v, "v%d", n);
    assert_int_equal(hm_write_entry(h, hm_bytes(key.data, key.len), &owner,
                                    &fn->tags, &rd, v, (size_t)len, ttl_s,
                                    fn->grace, compute_us, NULL),
                     HERMES_BE_OK);
    hm_read_free(&rd);
    hm_buf_free(&key);
    hermes_args_free(&a);
}

/* ------------------------------------------------ the decision itself */

static void xfetch_probability_is_the_papers(void **state)
{
    /* P(now - delta beta ln u >= expiry) = exp(-gap / (delta beta)). */
    assert_true(fabs(hm_xfetch_probability(50, 50, 1) - exp(-1)) < 1e-12);
    assert_true(fabs(hm_xfetch_probability(50, 50, 2) - exp(-0.5)) < 1e-12);
    assert_true(hm_xfetch_probability(0, 50, 1) == 1);
    assert_true(hm_xfetch_probability(-5, 50, 1) == 1);
    assert_true(hm_xfetch_probability(10, 0, 1) == 0);
    assert_true(hm_xfetch_probability(10, 50, 0) == 0);
}

/* The draw u decides exactly at the boundary u = exp(-gap / delta beta). */
static void classify_decides_at_the_exact_boundary(void **state)
{
    const uint64_t created = T0, exp_ms = T0 + 10000;
    /* 50 ms before expiry of a value that took 50 ms: p = e^-1 = 0.3679 */
    atomic_store(&sh->fixed_draw_ppb, 367000000);
    assert_int_equal(hm_fresh_classify(exp_ms - 50, created, 10, 50000, 1.0, 0),
                     HM_FRESH_EARLY);
    atomic_store(&sh->fixed_draw_ppb, 368000000);
    assert_int_equal(hm_fresh_classify(exp_ms - 50, created, 10, 50000, 1.0, 0),
                     HM_FRESH_NONE);
    /* beta 0 and a value that took no time never refresh early. */
    atomic_store(&sh->fixed_draw_ppb, 1);
    assert_int_equal(hm_fresh_classify(exp_ms - 1, created, 10, 50000, 0, 0),
                     HM_FRESH_NONE);
    assert_int_equal(hm_fresh_classify(exp_ms - 1, created, 10, 0, 1, 0),
                     HM_FRESH_NONE);
    /* Expiry, grace, beyond; no TTL never expires. */
    assert_int_equal(hm_fresh_classify(exp_ms, created, 10, 0, 1, 0),
                     HM_FRESH_EXPIRED);
    assert_int_equal(hm_fresh_classify(exp_ms, created, 10, 0, 1, 5),
                     HM_FRESH_GRACE);
    assert_int_equal(hm_fresh_classify(exp_ms + 4999, created, 10, 0, 1, 5),
                     HM_FRESH_GRACE);
    assert_int_equal(hm_fresh_classify(exp_ms + 5000, created, 10, 0, 1, 5),
                     HM_FRESH_EXPIRED);
    assert_int_equal(
        hm_fresh_classify(T0 + (UINT64_C(1) << 40), created, 0, 50000, 1, 5),
        HM_FRESH_NONE);
}

/*
 * The probability curve through hermes_call: an entry that took 40 ms,
 * read at gaps of 0.1 to 4 times delta * beta before expiry, 4000 reads
 * each (the computation fails, so an early refresh leaves the entry as it
 * was and every read is one more trial).  The rate of early computations
 * must be exp(-gap / (delta beta)) within 4.5 standard deviations.
 */
static void early_refresh_rate_follows_the_xfetch_curve(void **state)
{
    const double betas[] = {1.0, 2.5};
    const double gaps[] = {0.1, 0.5, 1, 2, 4};
    const int trials = 4000;
    const uint32_t delta_us = 40000;
    atomic_store(&sh->fail, 1);
    for (size_t b = 0; b < 2; b++) {
        char name[32];
        snprintf(name, sizeof name, "curve%zu", b);
        hermes_fn *fn =
            reg(name, HERMES_FN_OPTIONS(.ttl = 60, .early_refresh = betas[b],
                                        .grace = HERMES_GRACE_NONE));
        for (size_t g = 0; g < 5; g++) {
            atomic_store(&sh->now_ms, T0);
            store_entry(fn, 0, 60, delta_us);
            double gap_ms = gaps[g] * delta_us / 1000.0 * betas[b];
            atomic_store(&sh->now_ms, T0 + 60000 - (uint64_t)gap_ms);
            int before = atomic_load(&sh->computations);
            for (int i = 0; i < trials; i++)
                assert_int_equal(value_of(fn), 0); /* served, never failed */
            int early = atomic_load(&sh->computations) - before;
            double p = hm_xfetch_probability((double)(uint64_t)gap_ms,
                                             delta_us / 1000.0, betas[b]);
            double sd = sqrt(p * (1 - p) / trials);
            double rate = (double)early / trials;
            if (fabs(rate - p) > 4.5 * sd + 1e-9)
                fail_msg("beta %.1f gap %.1f delta: rate %.4f, expected "
                         "%.4f +- %.4f",
                         betas[b], gaps[g], rate, p, 4.5 * sd);
        }
    }
    /* Failed early refreshes answered with the fresh value: no error, and
     * not counted as early refreshes (nothing was refreshed). */
    assert_int_equal(stats().early_refreshes, 0);
    assert_int_equal(stats().stale_if_error, 0);
}

/* Far from expiry no reader refreshes, whatever it draws. */
static void far_from_expiry_nobody_refreshes(void **state)
{
    hermes_fn *fn = reg("far", HERMES_FN_OPTIONS(.ttl = 60));
    atomic_store(&sh->fixed_draw_ppb, 1); /* the most eager draw there is */
    store_entry(fn, 0, 60, 10000);        /* 10 ms; -ln(1e-9) = 20.7 */
    advance_ms(60000 - 208);              /* 208 ms before expiry */
    for (int i = 0; i < 100; i++)
        assert_int_equal(value_of(fn), 0);
    assert_int_equal(atomic_load(&sh->computations), 0);
    advance_ms(2); /* 206 ms: now it must */
    assert_int_equal(value_of(fn), 1);
    assert_int_equal(stats().early_refreshes, 1);
    assert_int_equal(value_of(fn), 1); /* the new record is far from expiry */
    assert_int_equal(atomic_load(&sh->computations), 1);
}

/* ------------------------------------------------------------- grace */

typedef struct caller {
    hermes_fn *fn;
    int n;
    hermes_rc rc;
    pthread_t th;
} caller;

static void *caller_main(void *arg)
{
    caller *c = arg;
    c->rc = call_fn(c->fn, &c->n);
    return NULL;
}

/* While one caller recomputes an entry in grace, every other caller gets
 * the old value at once (the recomputation is held until 50 of them have
 * been answered), then everyone gets the new one. */
static void stale_is_served_while_one_caller_recomputes(void **state)
{
    hermes_fn *fn = reg(
        "graced", HERMES_FN_OPTIONS(.ttl = 10, .grace = 60,
                                    .early_refresh = HERMES_EARLY_REFRESH_OFF));
    assert_int_equal(value_of(fn), 1);
    advance_ms(10000); /* expired: in grace */
    atomic_store(&sh->gated, 1);
    caller refresher = {fn, 0, 0, 0};
    assert_int_equal(
        pthread_create(&refresher.th, NULL, caller_main, &refresher), 0);
    WAIT_FOR(atomic_load(&sh->in_compute) == 1);
    for (int i = 0; i < 50; i++)
        assert_int_equal(value_of(fn), 1);
    hermes_stats s = stats();
    assert_int_equal(s.stale_served, 50);
    assert_int_equal(atomic_load(&sh->computations), 2);
    atomic_store(&sh->gate_open, 1);
    pthread_join(refresher.th, NULL);
    assert_int_equal(refresher.rc, HERMES_OK);
    assert_int_equal(refresher.n, 2);
    assert_int_equal(value_of(fn), 2);
    assert_int_equal(atomic_load(&sh->computations), 2);
    assert_int_equal(stats().stale_served, 50);
}

/* Past TTL + grace the old value is gone: a miss, computed again. */
static void beyond_grace_is_a_miss(void **state)
{
    hermes_fn *fn = reg("beyond", HERMES_FN_OPTIONS(.ttl = 10, .grace = 5));
    assert_int_equal(value_of(fn), 1);
    advance_ms(15000);
    assert_int_equal(call_failing(fn), HERMES_ECOMPUTE);
    assert_int_equal(value_of(fn), 3);
    assert_int_equal(stats().stale_served, 0);
}

static int key_k(void *arg, char *buf, size_t cap)
{
    return snprintf(buf, cap, "k");
}

/* hermes_get never returns a value past its TTL, though the store keeps a
 * function's entry TTL + grace. */
static void direct_get_does_not_serve_grace(void **state)
{
    hermes_fn *fn =
        reg("keyed", HERMES_FN_OPTIONS(.ttl = 10, .grace = 60, .key = key_k));
    assert_int_equal(value_of(fn), 1);
    void *v;
    size_t n;
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_OK);
    assert_memory_equal(v, "v1", 2);
    hermes_free(v);
    advance_ms(10000);
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_ENOTFOUND);
    /* The function's own call within grace refreshes it. */
    assert_int_equal(value_of(fn), 2);
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_OK);
    assert_memory_equal(v, "v2", 2);
    hermes_free(v);
}

/* Without grace an expired value is a miss at once, as before. */
static void no_grace_means_expiry_is_a_miss(void **state)
{
    hermes_fn *fn = reg("nograce", HERMES_FN_OPTIONS(.ttl = 10));
    assert_int_equal(value_of(fn), 1);
    advance_ms(9999);
    assert_int_equal(value_of(fn), 1);
    advance_ms(1);
    assert_int_equal(value_of(fn), 2);
}

/* --------------------------------------------------------- tags rule */

/* A cleaned tag's entry is never served, not within grace, not on
 * error. */
static void tag_cleaned_during_grace_is_never_served(void **state)
{
    hermes_fn *fn =
        reg("tagged", HERMES_FN_OPTIONS(.ttl = 10, .grace = 60,
                                        .stale_if_error = HERMES_YES,
                                        .tags = HERMES_TAGS("t")));
    assert_int_equal(value_of(fn), 1);
    advance_ms(12000);
    assert_int_equal(hermes_clean(h, HERMES_TAGS("t")), HERMES_OK);
    assert_int_equal(call_failing(fn), HERMES_ECOMPUTE); /* not v1 */
    assert_int_equal(value_of(fn), 3);
    assert_int_equal(stats().stale_served, 0);
    assert_int_equal(stats().stale_if_error, 0);
}

/* A clean while the refresh is computing: from then on nobody gets the
 * old value, even though the refresh has not finished. */
static void tag_cleaned_during_a_refresh_is_never_served(void **state)
{
    hermes_fn *fn = reg("tagged2", HERMES_FN_OPTIONS(.ttl = 10, .grace = 60,
                                                     .tags = HERMES_TAGS("t")));
    assert_int_equal(value_of(fn), 1);
    advance_ms(10500);
    atomic_store(&sh->gated, 1);
    caller refresher = {fn, 0, 0, 0};
    assert_int_equal(
        pthread_create(&refresher.th, NULL, caller_main, &refresher), 0);
    WAIT_FOR(atomic_load(&sh->in_compute) == 1);
    assert_int_equal(value_of(fn), 1); /* still servable: old in grace */
    assert_int_equal(hermes_clean(h, HERMES_TAGS("t")), HERMES_OK);
    caller late = {fn, 0, 0, 0};
    assert_int_equal(pthread_create(&late.th, NULL, caller_main, &late), 0);
    /* The late caller misses (the tag moved) and waits for the lock: it
     * must not come back with v1 while the gate is closed.  Open it once
     * the late caller is blocked behind the refresh or computing. */
    WAIT_FOR(stats().misses >= 4);
    atomic_store(&sh->gate_open, 1);
    pthread_join(refresher.th, NULL);
    pthread_join(late.th, NULL);
    assert_int_equal(refresher.rc, HERMES_OK);
    assert_int_equal(refresher.n, 2);
    /* The refresh's record was computed under the old version, so it is
     * stale at once: the late caller computed again after it. */
    assert_int_equal(late.rc, HERMES_OK);
    assert_int_equal(late.n, 3);
    assert_int_equal(value_of(fn), 3);
}

/* -------------------------------------------------- stale-if-error */

static void compute_failure_in_grace_serves_stale_when_configured(void **s)
{
    hermes_fn *fn = reg("sie", HERMES_FN_OPTIONS(.ttl = 10, .grace = 60,
                                                 .stale_if_error = HERMES_YES));
    assert_int_equal(value_of(fn), 1);
    advance_ms(20000);
    atomic_store(&sh->fail, 1);
    assert_int_equal(value_of(fn), 1);
    assert_int_equal(value_of(fn), 1);
    hermes_stats st = stats();
    assert_int_equal(st.stale_if_error, 2);
    assert_int_equal(st.compute_errors, 2);
    atomic_store(&sh->fail, 0);
    assert_int_equal(value_of(fn), 4);
    assert_int_equal(value_of(fn), 4);
}

static void compute_failure_in_grace_is_an_error_otherwise(void **state)
{
    hermes_fn *fn = reg("nosie", HERMES_FN_OPTIONS(.ttl = 10, .grace = 60));
    assert_int_equal(value_of(fn), 1);
    advance_ms(20000);
    assert_int_equal(call_failing(fn), HERMES_ECOMPUTE);
    assert_string_equal(hermes_errmsg(h), "nosie: the database is on fire");
    assert_int_equal(stats().stale_if_error, 0);
}

/* The handle's defaults apply to functions that set nothing, and a
 * function's own setting (including "off") wins. */
static void handle_defaults_and_function_overrides(void **state)
{
    hermes_close(h);
    h = open_cache("grace = 30\nstale_if_error = yes\nearly_refresh = 0.5");
    hermes_fn *d = reg("dflt", HERMES_FN_OPTIONS(.ttl = 10));
    hermes_fn *o = reg(
        "own", HERMES_FN_OPTIONS(.ttl = 10, .grace = HERMES_GRACE_NONE,
                                 .stale_if_error = HERMES_NO,
                                 .early_refresh = HERMES_EARLY_REFRESH_OFF));
    assert_true(d->beta == 0.5 && d->grace == 30 && d->stale_if_error);
    assert_true(o->beta == 0 && o->grace == 0 && !o->stale_if_error);
    assert_false(o->fresh);
    hermes_fn *b = reg("b", HERMES_FN_OPTIONS(.early_refresh = 3));
    assert_true(b->beta == 3 && b->grace == 30);
    /* Out of range options are refused with the reason. */
    hermes_fn *x;
    hermes_fn_options bad = HERMES_FN_OPTIONS(.early_refresh = -2);
    assert_int_equal(hermes_fn_register(h, "x", &bad, &x), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "early_refresh -2"));
    bad = HERMES_FN_OPTIONS(.early_refresh = NAN);
    assert_int_equal(hermes_fn_register(h, "x", &bad, &x), HERMES_EINVAL);
    bad = HERMES_FN_OPTIONS(.grace = HERMES_TTL_MAX + 1);
    assert_int_equal(hermes_fn_register(h, "x", &bad, &x), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "grace 4294968 s"));
    bad = HERMES_FN_OPTIONS(.stale_if_error = 7);
    assert_int_equal(hermes_fn_register(h, "x", &bad, &x), HERMES_EINVAL);
    /* The defaults act: the default function serves stale on error. */
    assert_int_equal(value_of(d), 1);
    advance_ms(11000);
    atomic_store(&sh->fail, 1);
    assert_int_equal(value_of(d), 1);
    assert_int_equal(stats().stale_if_error, 1);
    /* The same settings in code, with "<options>" errors. */
    hermes_options *opt;
    assert_int_equal(hermes_options_new(&opt), HERMES_OK);
    assert_int_equal(hermes_options_set(opt, NULL, "grace", "never"),
                     HERMES_OK);
    hermes *bad_h;
    assert_int_equal(hermes_open_options(&bad_h, opt), HERMES_ECONFIG);
    assert_string_equal(hermes_errmsg(bad_h),
                        "<options>: grace: not a number: 'never'");
    hermes_close(bad_h);
    hermes_options_free(opt);
}

/* ------------------------------------------------- one per expiry */

typedef struct hammer {
    hermes_fn *fn;
    int id;
    pthread_t th;
} hammer;

/* Calls until told to stop, counting calls and old values answered
 * (a value older than the newest computation finished). */
static void *hammer_main(void *arg)
{
    hammer *m = arg;
    while (!atomic_load(&sh->stop)) {
        int n;
        if (call_fn(m->fn, &n) != HERMES_OK)
            atomic_fetch_add(&sh->errors, 1);
        atomic_fetch_add(&sh->calls[m->id % 8], 1);
        if (n < atomic_load(&sh->computations))
            atomic_fetch_add(&sh->served_stale[m->id % 8], 1);
        for (int seen = atomic_load(&sh->newest); n > seen;)
            if (atomic_compare_exchange_weak(&sh->newest, &seen, n))
                break;
    }
    return NULL;
}

static int total(atomic_int *v)
{
    int t = 0;
    for (int i = 0; i < 8; i++)
        t += atomic_load(&v[i]);
    return t;
}

/*
 * While callers hammer one entry (computed once already), the clock moves
 * past expiry 5 times (into grace), and 5 times the entry is rewritten as
 * a 1 s computation and read 100 ms before its expiry with a draw that
 * always says refresh (XFetch).  Each time exactly one caller recomputes:
 * the computation is held until the others have been answered 64 more
 * times with the old value, so nobody waits for it either.
 */
static void one_recomputation_per_expiry(hermes_fn *fn, int ncallers)
{
    atomic_store(&sh->fixed_draw_ppb, 1000000000);
    atomic_store(&sh->gated, 1);
    for (int round = 0; round < 10; round++) {
        int before = atomic_load(&sh->computations);
        int answered = total(sh->served_stale);
        if (round % 2 == 0) {
            advance_ms(10000); /* expired, in grace */
        } else {
            store_entry(fn, before, 10, 1000000);
            atomic_store(&sh->fixed_draw_ppb, 1); /* -ln u = 20.7 */
            advance_ms(10000 - 100);
        }
        WAIT_FOR(atomic_load(&sh->computations) == before + 1);
        /* u = 1 never refreshes early: the new record, whose compute time
         * is however long the gate stays closed, is left alone. */
        atomic_store(&sh->fixed_draw_ppb, 1000000000);
        WAIT_FOR(total(sh->served_stale) >= answered + 64);
        atomic_store(&sh->gate_open, 1);
        WAIT_FOR(atomic_load(&sh->in_compute) == 0);
        atomic_store(&sh->gate_open, 0);
        /* Everyone gets the new value now (so it was stored): a few more
         * calls each, and still one computation for this expiry. */
        WAIT_FOR(atomic_load(&sh->newest) == before + 1);
        int calls = total(sh->calls);
        WAIT_FOR(total(sh->calls) >= calls + 4 * ncallers);
        assert_int_equal(atomic_load(&sh->computations), before + 1);
        if (round % 2 == 1)
            advance_ms(100); /* the next round starts from the refresh */
    }
    atomic_store(&sh->stop, 1);
    atomic_store(&sh->gate_open, 1);
}

static void one_recomputation_per_expiry_under_16_threads(void **state)
{
    hermes_fn *fn = reg("hot", HERMES_FN_OPTIONS(.ttl = 10, .grace = 60));
    assert_int_equal(value_of(fn), 1);
    hammer m[16];
    for (int i = 0; i < 16; i++) {
        m[i] = (hammer){fn, i, 0};
        assert_int_equal(pthread_create(&m[i].th, NULL, hammer_main, &m[i]), 0);
    }
    one_recomputation_per_expiry(fn, 16);
    for (int i = 0; i < 16; i++)
        pthread_join(m[i].th, NULL);
    assert_int_equal(atomic_load(&sh->errors), 0);
    assert_int_equal(atomic_load(&sh->computations), 11);
    hermes_stats s = stats();
    assert_int_equal(s.early_refreshes, 5);
    assert_true(s.stale_served >= 5 * 64);
}

#ifdef FRESH_REDIS
/* 4 processes of 4 threads each on one redis entry, forked after open
 * (the library is fork-safe); the clock and counters are shared. */
static void one_recomputation_per_expiry_under_4_processes(void **state)
{
    hermes_fn *fn = reg("hotp", HERMES_FN_OPTIONS(.ttl = 10, .grace = 60));
    assert_int_equal(value_of(fn), 1);
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            hammer m[4];
            for (int i = 0; i < 4; i++) {
                m[i] = (hammer){fn, k * 2 + (i & 1), 0};
                if (pthread_create(&m[i].th, NULL, hammer_main, &m[i]) != 0)
                    _exit(2);
            }
            for (int i = 0; i < 4; i++)
                pthread_join(m[i].th, NULL);
            _exit(0);
        }
    }
    one_recomputation_per_expiry(fn, 16);
    int failed = 0;
    for (int k = 0; k < 4; k++) {
        int status;
        failed += cw_wait("fresh", kids[k], CW_TIMEOUT_MS, &status) != 0 ||
                  !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    assert_int_equal(failed, 0);
    assert_int_equal(atomic_load(&sh->errors), 0);
    assert_int_equal(atomic_load(&sh->computations), 11);
}

/* The store keeps an entry TTL + grace (redis PTTL), its record TTL. */
static void physical_ttl_is_ttl_plus_grace(void **state)
{
    hermes_fn *fn = reg("phys", HERMES_FN_OPTIONS(.ttl = 10, .grace = 50));
    assert_int_equal(value_of(fn), 1);
    hermes_args a = HERMES_ARGS_INIT;
    hermes_args_int(&a, 1);
    hm_buf key;
    hm_buf_init(&key);
    assert_int_equal(
        hm_entry_key(fn, hermes_args_data(&a), hermes_args_len(&a), NULL, &key),
        HERMES_OK);
    redisContext *c = redisConnect("127.0.0.1", server.port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "PTTL %b", key.data, key.len);
    assert_true(r && r->type == REDIS_REPLY_INTEGER);
    assert_true(r->integer > 59000 && r->integer <= 60000);
    freeReplyObject(r);
    redisFree(c);
    hm_buf_free(&key);
    hermes_args_free(&a);
}
#endif

int main(void)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
#ifdef FRESH_REDIS
    if (redis_server_start(&server) != 0)
        return 1;
#endif
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(xfetch_probability_is_the_papers),
        T(classify_decides_at_the_exact_boundary),
        T(early_refresh_rate_follows_the_xfetch_curve),
        T(far_from_expiry_nobody_refreshes),
        T(stale_is_served_while_one_caller_recomputes),
        T(beyond_grace_is_a_miss),
        T(no_grace_means_expiry_is_a_miss),
        T(direct_get_does_not_serve_grace),
        T(tag_cleaned_during_grace_is_never_served),
        T(tag_cleaned_during_a_refresh_is_never_served),
        T(compute_failure_in_grace_serves_stale_when_configured),
        T(compute_failure_in_grace_is_an_error_otherwise),
        T(handle_defaults_and_function_overrides),
        T(one_recomputation_per_expiry_under_16_threads),
#ifdef FRESH_REDIS
        T(one_recomputation_per_expiry_under_4_processes),
        T(physical_ttl_is_ttl_plus_grace),
#endif
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
#ifdef FRESH_REDIS
    redis_server_stop(&server);
#endif
    return failed;
}
