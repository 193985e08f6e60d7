/*
 * The core's behaviour, through the public API: memoization, invalidation,
 * tags, TTL, dogpile control, failure handling and stats.  Built twice: on
 * the built-in dict backend (via a recording mock over it, so tests can
 * reach the store underneath), with MEMO_REDIS against a private
 * redis-server started by the test, with MEMO_REDIS_CLUSTER against a
 * private Redis Cluster of three masters, and with MEMO_MEMCACHED against a
 * pool of two private memcached servers.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "internal.h"
#include "keys.h"
#include "keyspace.h"
#include "mock_backend.h"
#include "record.h"
#include "taglist.h"

#ifdef MEMO_REDIS
#include "redis_server.h"
static redis_server server;
#endif
#ifdef MEMO_REDIS_CLUSTER
#include "redis_cluster.h"
static redis_cluster cluster = {.masters = 3};
#endif
#ifdef MEMO_MEMCACHED
#include "memcached_server.h"
static memcached_server mc_servers[2];
#endif
#if defined(MEMO_REDIS) || defined(MEMO_MEMCACHED) ||                          \
    defined(MEMO_REDIS_CLUSTER)
#define MEMO_SERVER 1 /* a real server: no mock underneath */
#endif

/* ------------------------------------------------------------ fixtures */

typedef struct counter {
    atomic_int calls;
    int delay_ms;         /* sleep while computing */
    int fail;             /* return failure */
    int nocache;          /* ask not to cache */
    uint32_t ttl;         /* hermes_result_ttl when non-zero */
    hermes *clean_during; /* invalidate tag `clean_tag` while computing */
    const char *clean_tag;
} counter;

typedef struct call_arg {
    counter *c;
    int64_t x;
} call_arg;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The cached function of most tests: returns "v<x>". */
static int compute_value(void *p, hermes_result *res)
{
    call_arg *a = p;
    counter *c = a->c;
    atomic_fetch_add(&c->calls, 1);
    if (c->delay_ms)
        sleep_ms(c->delay_ms);
    if (c->clean_during)
        hermes_clean(c->clean_during, HERMES_TAGS(c->clean_tag));
    if (c->fail) {
        hermes_result_error(res, "the database is on fire");
        return 1;
    }
    if (c->nocache)
        hermes_result_nocache(res);
    if (c->ttl)
        hermes_result_ttl(res, c->ttl);
    char v[32];
    int n = snprintf(v, sizeof v, "v%lld", (long long)a->x);
    return hermes_result_set(res, v, (size_t)n) == HERMES_OK ? 0 : 1;
}

/* Calls fn(x) and checks the value it returns. */
static hermes_rc call(hermes_fn *fn, counter *c, int64_t x)
{
    hermes_args args = HERMES_ARGS_INIT;
    hermes_args_int(&args, x);
    call_arg a = {c, x};
    void *v;
    size_t n;
    hermes_rc rc =
        hermes_call(fn, hermes_args_data(&args), hermes_args_len(&args),
                    compute_value, &a, &v, &n);
    hermes_args_free(&args);
    if (rc == HERMES_OK) {
        char want[32];
        snprintf(want, sizeof want, "v%lld", (long long)x);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(v, want, n);
        hermes_free(v);
    } else {
        assert_null(v);
    }
    return rc;
}

static hermes *h;
static int test_round; /* one per test (setup) */

static char *config_text(const char *hermes_extra)
{
    static char text[1024];
#ifdef MEMO_REDIS
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = memo%d\n%s\n[redis]\nport = %d\n",
             getenv("HERMES_TEST_BUILDDIR"), (int)getpid(),
             hermes_extra ? hermes_extra : "", server.port);
#elif defined(MEMO_REDIS_CLUSTER)
    char seeds[256];
    redis_cluster_seeds(&cluster, 0, seeds, sizeof seeds);
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = memo%d\n%s\n[redis]\ncluster = %s\n",
             getenv("HERMES_TEST_BUILDDIR"), (int)getpid(),
             hermes_extra ? hermes_extra : "", seeds);
#elif defined(MEMO_MEMCACHED)
    snprintf(text, sizeof text,
             "[hermes]\nbackend = memcached\nplugin_path = "
             "%s/plugins/memcached\nprefix = memo%d-%d\n%s\n[memcached]\n"
             /* No flush_all: hermes_flush goes through the namespace
              * key, as on servers shared with other applications.  That
              * leaves the locks of a test in place until their TTL, so
              * each test has a prefix of its own. */
             "servers = 127.0.0.1:%d, 127.0.0.1:%d\n",
             getenv("HERMES_TEST_BUILDDIR"), (int)getpid(), test_round,
             hermes_extra ? hermes_extra : "", mc_servers[0].port,
             mc_servers[1].port);
#else
    snprintf(text, sizeof text, "[hermes]\n%s\n",
             hermes_extra ? hermes_extra : "");
#endif
    return text;
}

static hermes *open_cache(const char *hermes_extra)
{
    hermes *c;
#ifdef MEMO_SERVER
    hermes_rc rc = hermes_open_string(&c, config_text(hermes_extra), "test");
#else
    hermes_rc rc =
        hermes_open_with(&c, config_text(hermes_extra), "test", mock_backend());
#endif
    if (rc != HERMES_OK)
        fail_msg("open: %s: %s", hermes_strerror(rc), hermes_errmsg(c));
    assert_int_equal(hermes_flush(c), HERMES_OK);
    return c;
}

static int setup(void **state)
{
    test_round++;
    h = open_cache(NULL);
    return 0;
}

static int teardown(void **state)
{
    hermes_flush(h);
    hermes_close(h);
    h = NULL;
    return 0;
}

static hermes_fn *reg(const char *name, const char *const *tags, uint32_t ttl)
{
    hermes_fn *fn;
    /* Early refresh off: these tests check the exact TTL (an entry is
     * recomputed no earlier than its expiry), which XFetch deliberately
     * anticipates by a random multiple of the compute time; test_fresh
     * tests early refresh. */
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.tags = tags, .ttl = ttl,
                          .early_refresh = HERMES_EARLY_REFRESH_OFF);
    assert_int_equal(hermes_fn_register(h, name, &o, &fn), HERMES_OK);
    return fn;
}

static hermes_stats stats(void)
{
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    return s;
}

typedef struct blob {
    unsigned char *data;
    size_t len;
} blob;

static void copy_value(void *arg, size_t index, const void *v, size_t n)
{
    blob *b = arg;
    b->data = malloc(n);
    memcpy(b->data, v, n);
    b->len = n;
}

/* --------------------------------------------------------------- tests */

static void repeated_calls_compute_once(void **state)
{
    hermes_fn *fn = reg("simple", NULL, 0);
    counter c = {0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(call(fn, &c, 7), HERMES_OK);
    assert_int_equal(c.calls, 1);
}

static void different_arguments_are_different_entries(void **state)
{
    hermes_fn *fn = reg("simple", NULL, 0);
    counter c = {0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(call(fn, &c, 1), HERMES_OK);
        assert_int_equal(call(fn, &c, 2), HERMES_OK);
        assert_int_equal(call(fn, &c, 3), HERMES_OK);
    }
    assert_int_equal(c.calls, 3);
}

static void same_arguments_of_two_functions_are_different_entries(void **state)
{
    hermes_fn *f1 = reg("one", NULL, 0), *f2 = reg("two", NULL, 0);
    counter c1 = {0}, c2 = {0};
    assert_int_equal(call(f1, &c1, 1), HERMES_OK);
    assert_int_equal(call(f2, &c2, 1), HERMES_OK);
    assert_int_equal(c1.calls + c2.calls, 2);
}

static void invalidate_recomputes_only_that_entry(void **state)
{
    hermes_fn *fn = reg("simple", NULL, 0);
    counter c = {0};
    call(fn, &c, 1);
    call(fn, &c, 2);
    hermes_args a = HERMES_ARGS_INIT;
    hermes_args_int(&a, 1);
    assert_int_equal(
        hermes_invalidate(fn, hermes_args_data(&a), hermes_args_len(&a), NULL),
        HERMES_OK);
    hermes_args_free(&a);
    call(fn, &c, 1);
    call(fn, &c, 2);
    assert_int_equal(c.calls, 3); /* 1, 2, then 1 again */
}

static void clean_tag_recomputes_exactly_the_tagged_entries(void **state)
{
    /* Hermes' fixtures: tagged (rock, tree), tagged2 (rock, ice),
     * key (ash, stone). */
    hermes_fn *tagged = reg("tagged", HERMES_TAGS("rock", "tree"), 0);
    hermes_fn *tagged2 = reg("tagged2", HERMES_TAGS("rock", "ice"), 0);
    hermes_fn *key = reg("key", HERMES_TAGS("ash", "stone"), 0);
    counter c1 = {0}, c2 = {0}, c3 = {0};
    for (int i = 0; i < 2; i++) {
        call(tagged, &c1, 1);
        call(tagged2, &c2, 1);
        call(key, &c3, 1);
    }
    assert_int_equal(hermes_clean(h, HERMES_TAGS("rock")), HERMES_OK);
    call(tagged, &c1, 1);
    call(tagged2, &c2, 1);
    call(key, &c3, 1);
    assert_int_equal(c1.calls, 2);
    assert_int_equal(c2.calls, 2);
    assert_int_equal(c3.calls, 1);
    /* ...and the recomputed entries are cached again. */
    call(tagged, &c1, 1);
    call(tagged2, &c2, 1);
    assert_int_equal(c1.calls + c2.calls, 4);
}

static void flush_empties_the_cache(void **state)
{
    hermes_fn *a = reg("a", NULL, 0), *b = reg("b", HERMES_TAGS("t"), 0);
    counter ca = {0}, cb = {0};
    call(a, &ca, 1);
    call(b, &cb, 1);
    assert_int_equal(hermes_flush(h), HERMES_OK);
    call(a, &ca, 1);
    call(b, &cb, 1);
    assert_int_equal(ca.calls, 2);
    assert_int_equal(cb.calls, 2);
}

/* How late past its TTL an entry may still be served: the core checks
 * each record's own expiry, so even on memcached, which keeps keys up to
 * 2 s longer, only this test's polling and a loaded machine's delays. */
#define TTL_LATE_MS 300

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Calls fn (computed once already at t0) every 50 ms until it recomputes;
 * asserts that happened no earlier than ttl_ms and no later than
 * ttl_ms + TTL_LATE_MS after t0. */
static void expect_expiry(hermes_fn *fn, counter *c, uint64_t t0,
                          uint64_t ttl_ms)
{
    while (c->calls == 1 && mono_ms() - t0 < ttl_ms + TTL_LATE_MS + 500) {
        uint64_t before = mono_ms();
        call(fn, c, 1);
        if (c->calls == 1) {
            sleep_ms(50);
        } else if (before - t0 < ttl_ms - 5) {
            /* Say why: a failed read computes directly, too. */
            hermes_stats s;
            hermes_stats_get(hermes_fn_handle(fn), &s, sizeof s);
            fail_msg("recomputed %llu ms after t0, before its %llu ms TTL "
                     "(backend errors so far: %llu)",
                     (unsigned long long)(before - t0),
                     (unsigned long long)ttl_ms,
                     (unsigned long long)s.backend_errors);
        }
    }
    assert_int_equal(c->calls, 2);
    assert_true(mono_ms() - t0 <= ttl_ms + TTL_LATE_MS);
}

static void entries_expire_after_their_ttl(void **state)
{
    hermes_fn *fn = reg("short", NULL, 1);
    counter c = {0};
    uint64_t t0 = mono_ms();
    call(fn, &c, 1);
    call(fn, &c, 1);
    assert_int_equal(c.calls, 1);
    expect_expiry(fn, &c, t0, 1000);
}

static void compute_can_set_its_own_ttl(void **state)
{
    hermes_fn *fn = reg("long", NULL, 3600);
    counter c = {.ttl = 1};
    uint64_t t0 = mono_ms();
    call(fn, &c, 1);
    call(fn, &c, 1);
    assert_int_equal(c.calls, 1);
    expect_expiry(fn, &c, t0, 1000);
}

static int avg_key(void *arg, char *buf, size_t cap)
{
    call_arg *a = arg;
    return snprintf(buf, cap, "avg:%lld:10", (long long)a->x);
}

static void custom_key_names_the_entry(void **state)
{
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.tags = HERMES_TAGS("math", "avg"), .key = avg_key);
    assert_int_equal(hermes_fn_register(h, "baz", &o, &fn), HERMES_OK);
    counter c = {0};
    call(fn, &c, 2);
    call(fn, &c, 2);
    assert_int_equal(c.calls, 1);
    /* The entry is "<prefix>:entry:avg:2:10": readable by the plain API. */
    void *v;
    size_t n;
    assert_int_equal(
        hermes_get(h, "avg:2:10", HERMES_TAGS("avg", "math"), &v, &n),
        HERMES_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(v, "v2", 2);
    hermes_free(v);
    /* A different argument gives a different custom key. */
    call(fn, &c, 3);
    assert_int_equal(c.calls, 2);
}

static void invalidation_during_compute_leaves_entry_stale(void **state)
{
    hermes_fn *fn = reg("racy", HERMES_TAGS("data"), 0);
    counter c = {0};
    call(fn, &c, 1); /* creates the tag */
    hermes_clean(h, HERMES_TAGS("data"));
    /* The computation reads its versions, then the data changes (the tag is
     * cleaned) before the value is written: the written entry must not be
     * served. */
    c.clean_during = h;
    c.clean_tag = "data";
    assert_int_equal(call(fn, &c, 1), HERMES_OK);
    c.clean_during = NULL;
    assert_int_equal(c.calls, 2);
    call(fn, &c, 1);
    assert_int_equal(c.calls, 3);
    call(fn, &c, 1);
    assert_int_equal(c.calls, 3);
}

typedef struct race {
    pthread_barrier_t *barrier;
    int id;
    const char *tag;
} race;

static void *set_with_fresh_tag(void *p)
{
    race *r = p;
    char key[64];
    snprintf(key, sizeof key, "k%d-%s", r->id, r->tag);
    pthread_barrier_wait(r->barrier);
    hermes_set(h, key, "x", 1, HERMES_TAGS(r->tag), 0);
    return NULL;
}

static void concurrent_tag_creators_agree_on_one_version(void **state)
{
    enum { THREADS = 8, ROUNDS = 20 };
    for (int round = 0; round < ROUNDS; round++) {
        char tag[32];
        snprintf(tag, sizeof tag, "fresh%d", round);
        pthread_barrier_t b;
        pthread_barrier_init(&b, NULL, THREADS);
        pthread_t t[THREADS];
        race r[THREADS];
        for (int i = 0; i < THREADS; i++) {
            r[i] = (race){&b, i, tag};
            pthread_create(&t[i], NULL, set_with_fresh_tag, &r[i]);
        }
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&b);
        /* Had two creators kept different versions, one entry would carry
         * a version that is not the tag's: a miss. */
        for (int i = 0; i < THREADS; i++) {
            char key[64];
            snprintf(key, sizeof key, "k%d-%s", i, tag);
            void *v;
            size_t n;
            assert_int_equal(hermes_get(h, key, HERMES_TAGS(tag), &v, &n),
                             HERMES_OK);
            hermes_free(v);
        }
    }
}

typedef struct crowd {
    pthread_barrier_t *barrier;
    hermes_fn *fn;
    counter *c;
    int64_t x;
    hermes_rc rc;
} crowd;

static void *crowd_call(void *p)
{
    crowd *w = p;
    pthread_barrier_wait(w->barrier);
    w->rc = call(w->fn, w->c, w->x);
    return NULL;
}

static void run_crowd(hermes_fn *fn, counter *c, int threads, crowd *w)
{
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, (unsigned)threads);
    pthread_t t[64];
    for (int i = 0; i < threads; i++) {
        w[i] = (crowd){&b, fn, c, 42, HERMES_OK};
        pthread_create(&t[i], NULL, crowd_call, &w[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&b);
}

static void sixteen_threads_on_a_cold_key_compute_once(void **state)
{
    hermes_fn *fn = reg("slow", HERMES_TAGS("t"), 0);
    counter c = {.delay_ms = 200};
    crowd w[16];
    run_crowd(fn, &c, 16, w);
    for (int i = 0; i < 16; i++)
        assert_int_equal(w[i].rc, HERMES_OK);
    assert_int_equal(c.calls, 1);
    hermes_stats s = stats();
    assert_int_equal(s.computations, 1);
    /* Each of the others took the leader's value (a follower whose read
     * was older than the leader's tags reads again and hits) or, having
     * read the new tags, waited on the backend lock and then hit. */
    assert_true(s.coalesced + s.hits + s.lock_contended >= 15);
}

static void compute_failure_reaches_every_waiting_caller(void **state)
{
    hermes_fn *fn = reg("broken", NULL, 0);
    counter c = {.delay_ms = 600,
                 .fail = 1}; /* long enough for all 8 to join */
    crowd w[8];
    run_crowd(fn, &c, 8, w);
    for (int i = 0; i < 8; i++)
        assert_int_equal(w[i].rc, HERMES_ECOMPUTE);
    assert_int_equal(c.calls, 1);
    assert_int_equal(stats().compute_errors, 1);
}

static void compute_failure_is_not_cached(void **state)
{
    hermes_fn *fn = reg("broken", NULL, 0);
    counter c = {.fail = 1};
    assert_int_equal(call(fn, &c, 1), HERMES_ECOMPUTE);
    assert_non_null(strstr(hermes_errmsg(h), "the database is on fire"));
    assert_non_null(strstr(hermes_errmsg(h), "broken"));
    c.fail = 0;
    assert_int_equal(call(fn, &c, 1), HERMES_OK);
    assert_int_equal(call(fn, &c, 1), HERMES_OK);
    assert_int_equal(c.calls, 2);
}

static void nocache_result_is_returned_but_not_stored(void **state)
{
    hermes_fn *fn = reg("volatile", NULL, 0);
    counter c = {.nocache = 1};
    assert_int_equal(call(fn, &c, 1), HERMES_OK);
    assert_int_equal(call(fn, &c, 1), HERMES_OK);
    assert_int_equal(c.calls, 2);
}

/* "<prefix>:<kind>:<fname>:<hash of (x)>", as the core builds it. */
static void key_of(const char *kind_prefix, const char *fname, int64_t x,
                   char *key, size_t cap)
{
    hermes_args a = HERMES_ARGS_INIT;
    hermes_args_int(&a, x);
    char hash[HM_HASH_B64_LEN + 1] = {0};
    hm_hash128_b64(hermes_args_data(&a), hermes_args_len(&a), hash);
    hermes_args_free(&a);
    snprintf(key, cap, "%s%s:%s", kind_prefix, fname, hash);
}

static void entry_key_of(const char *fname, int64_t x, char *key, size_t cap)
{
    key_of(h->entry_prefix, fname, x, key, cap);
}

/* Takes the lock of stuck(42) directly in the store, as a process that
 * died holding it would have. */
static void hold_lock_elsewhere(hermes_fn *fn, uint32_t ttl_ms)
{
    char key[256];
    key_of(h->lock_prefix, fn->name, 42, key, sizeof key);
    size_t n = strlen(key);
    int acquired = 0;
    assert_int_equal(h->be->lock(h->be_state, (hermes_bytes){key, n},
                                 (hermes_bytes){"dead:1:x", 8}, ttl_ms,
                                 &acquired),
                     HERMES_BE_OK);
    assert_int_equal(acquired, 1);
}

static void lock_of_a_dead_holder_is_taken_over_after_its_ttl(void **state)
{
    hermes_close(h);
    h = open_cache("lock_wait_ms = 5000\n");
    hermes_fn *fn = reg("stuck", NULL, 0);
    hold_lock_elsewhere(fn, 300);
    counter c = {0};
    assert_int_equal(call(fn, &c, 42), HERMES_OK);
    assert_int_equal(c.calls, 1);
    hermes_stats s = stats();
    assert_int_equal(s.lock_contended, 1);
    assert_int_equal(s.lock_timeouts, 0);
    assert_int_equal(s.lock_acquired, 1);
    assert_true(s.lock_wait_ns >= 200u * 1000000u); /* it did wait */
}

/* While computing token(1), reads its lock's token from the store. */
static char seen_token[128];

static int read_own_lock(void *p, hermes_result *res)
{
    char key[256];
    key_of(h->lock_prefix, "token", 1, key, sizeof key);
    blob b = {0};
    hermes_bytes k = {key, strlen(key)};
    if (h->be->get(h->be_state, &k, 1, copy_value, &b) == HERMES_BE_OK &&
        b.data && b.len < sizeof seen_token) {
        memcpy(seen_token, b.data, b.len);
        seen_token[b.len] = '\0';
    }
    free(b.data);
    return hermes_result_set(res, "v1", 2) != HERMES_OK;
}

static void lock_token_carries_host_pid_and_acquisition_time(void **state)
{
    hermes_fn *fn = reg("token", NULL, 0);
    hermes_args a = HERMES_ARGS_INIT;
    hermes_args_int(&a, 1);
    void *v;
    size_t n;
    seen_token[0] = '\0';
    uint64_t before = hm_now_ms();
    assert_int_equal(hermes_call(fn, hermes_args_data(&a), hermes_args_len(&a),
                                 read_own_lock, NULL, &v, &n),
                     HERMES_OK);
    uint64_t after = hm_now_ms();
    hermes_free(v);
    hermes_args_free(&a);
    /* "<host>:<pid>:<ms>:<random>", read from the right. */
    char *random = strrchr(seen_token, ':');
    assert_non_null(random);
    assert_int_equal(strlen(random + 1), 12);
    *random = '\0';
    char *ms = strrchr(seen_token, ':');
    assert_non_null(ms);
    unsigned long long t = strtoull(ms + 1, NULL, 10);
    assert_true(t >= before && t <= after);
    *ms = '\0';
    char *pid = strrchr(seen_token, ':');
    assert_non_null(pid);
    assert_int_equal(atol(pid + 1), (long)getpid());
    *pid = '\0';
    assert_string_equal(seen_token, h->hostname);
}

static void follower_stops_waiting_at_the_limit_and_computes(void **state)
{
    hermes_close(h);
    h = open_cache("lock_wait_ms = 200\non_lock_timeout = compute\n");
    hermes_fn *fn = reg("stuck", NULL, 0);
    hold_lock_elsewhere(fn, 60000);
    counter c = {0};
    assert_int_equal(call(fn, &c, 42), HERMES_OK);
    assert_int_equal(c.calls, 1);
    assert_int_equal(stats().lock_timeouts, 1);
}

static void follower_stops_waiting_at_the_limit_and_fails(void **state)
{
    hermes_close(h);
    h = open_cache("lock_wait_ms = 200\non_lock_timeout = fail\n");
    hermes_fn *fn = reg("stuck", NULL, 0);
    hold_lock_elsewhere(fn, 60000);
    counter c = {0};
    assert_int_equal(call(fn, &c, 42), HERMES_ETIMEOUT);
    assert_int_equal(c.calls, 0);
    assert_non_null(strstr(hermes_errmsg(h), "200 ms"));
}

/* Overwrites simple(1)'s entry with raw bytes. */
static void put_raw_entry(const char *fname, const void *bytes, size_t n)
{
    char key[256];
    entry_key_of(fname, 1, key, sizeof key);
    hermes_item it = {{key, strlen(key)}, {bytes, n}, 0, 0};
    assert_int_equal(h->be->set(h->be_state, &it, 1, NULL, NULL), HERMES_BE_OK);
}

static void corrupt_record_bytes_are_a_miss(void **state)
{
    hermes_fn *fn = reg("victim", HERMES_TAGS("t"), 0);
    counter c = {0};
#define BYTES(lit)                                                             \
    {                                                                          \
        lit, sizeof lit - 1                                                    \
    }
    static const struct {
        const char *p;
        size_t n;
    } garbage[] = {
        BYTES(""),                                        /* empty */
        BYTES("H\x02"),                                   /* truncated header */
        BYTES("\x80\x04\x95pickle-from-python"),          /* not a record */
        BYTES("H\x02\x00\xff\x00......................"), /* 255 tags */
    };
#undef BYTES
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
        put_raw_entry("victim", garbage[i].p, garbage[i].n);
        assert_int_equal(call(fn, &c, 1), HERMES_OK);
        assert_int_equal(c.calls, (int)i + 1);
    }
    assert_int_equal(stats().corrupt, 4);
    assert_int_equal(stats().foreign, 0);
    /* The recomputed record overwrote the garbage: now a hit. */
    call(fn, &c, 1);
    assert_int_equal(c.calls, 4);
}

/* Flips the lowest bit of the last payload byte of fname(1)'s record in
 * the store, behind the handle's back. */
static void flip_payload_bit(const char *fname)
{
    char key[256];
    entry_key_of(fname, 1, key, sizeof key);
    blob b = {0};
    hermes_bytes k = {key, strlen(key)};
    assert_int_equal(h->be->get(h->be_state, &k, 1, copy_value, &b),
                     HERMES_BE_OK);
    assert_non_null(b.data);
    b.data[b.len - 5] ^= 0x01; /* before the 4-byte checksum */
    put_raw_entry(fname, b.data, b.len);
    free(b.data);
}

static void flipped_bit_in_a_record_is_a_miss(void **state)
{
    hermes_fn *fn = reg("victim", NULL, 0);
    counter c = {0};
#ifndef MEMO_SERVER
    assert_false(h->records_intact); /* a linked descriptor: the mock */
#endif
    call(fn, &c, 1);
    flip_payload_bit("victim");
    assert_int_equal(call(fn, &c, 1), HERMES_OK);
    assert_int_equal(c.calls, 2);
}

#ifndef MEMO_SERVER
/*
 * The built-in dict (backend = dict, not the recording mock the other
 * tests run on) holds only what its handle wrote, in the handle's own
 * memory, so reads skip the record's checksum (hermes.records_intact);
 * bytes that are no record of this format are still corrupt.  Here the
 * test writes behind the handle's back, which nothing else can: a flipped
 * payload bit then goes unnoticed, where the mock's reads notice it
 * (flipped_bit_in_a_record_is_a_miss).
 */
static void builtin_dict_skips_the_checksum_not_the_format(void **state)
{
    hermes_close(h);
    assert_int_equal(hermes_open_string(&h, "[hermes]\n", "test"), HERMES_OK);
    assert_true(h->records_intact);
    hermes_fn *fn = reg("victim", HERMES_TAGS("t"), 0);
    counter c = {0};
    /* Empty, a truncated header, not a record, 255 tags in 21 bytes. */
    static const char garbage[][32] = {"", "H\x02", "\x80\x04\x95pickle",
                                       "H\x02\x00\xff\x00................"};
    static const size_t glen[] = {0, 2, 9, 21};
    for (size_t i = 0; i < sizeof glen / sizeof *glen; i++) {
        put_raw_entry("victim", garbage[i], glen[i]);
        assert_int_equal(call(fn, &c, 1), HERMES_OK);
        assert_int_equal(c.calls, (int)i + 1);
    }
    assert_int_equal(stats().corrupt, 4);
    flip_payload_bit("victim"); /* "v1" becomes "v0" */
    hermes_args args = HERMES_ARGS_INIT;
    hermes_args_int(&args, 1);
    call_arg a = {&c, 1};
    void *v;
    size_t n;
    assert_int_equal(hermes_call(fn, hermes_args_data(&args),
                                 hermes_args_len(&args), compute_value, &a, &v,
                                 &n),
                     HERMES_OK);
    hermes_args_free(&args);
    assert_int_equal(c.calls, 4);
    assert_int_equal(n, 2);
    assert_memory_equal(v, "v0", 2);
    hermes_free(v);
}
#endif

/* The raw value of a key in the store; NULL when absent. */
static blob get_raw(const char *key)
{
    blob b = {0};
    hermes_bytes k = {key, strlen(key)};
    assert_int_equal(h->be->get(h->be_state, &k, 1, copy_value, &b),
                     HERMES_BE_OK);
    return b;
}

/* Through the handle's backend calls, as another writer of a shared store
 * would write: a private store (the dict) has no writer but the handle,
 * whose tag versions it remembers until one of its calls changes a tag
 * key (hm_tag_memo). */
static void put_raw(const char *key, const void *bytes, size_t n)
{
    hermes_item it = {{key, strlen(key)}, {bytes, n}, 0, 0};
    assert_int_equal(hm_be_set(h, &it, 1, NULL, NULL), HERMES_BE_OK);
}

/* The raw bytes of an entry in the store. */
static blob get_entry(const char *fname, int64_t x)
{
    char key[256];
    entry_key_of(fname, x, key, sizeof key);
    blob b = {0};
    hermes_bytes k = {key, strlen(key)};
    assert_int_equal(h->be->get(h->be_state, &k, 1, copy_value, &b),
                     HERMES_BE_OK);
    assert_non_null(b.data);
    return b;
}

static void a_record_copied_to_another_key_is_a_miss(void **state)
{
    hermes_fn *fn = reg("victim", NULL, 0);
    counter c = {0};
    call(fn, &c, 1);
    call(fn, &c, 2);
    blob b = get_entry("victim", 1);
    put_raw_entry("victim", b.data, b.len); /* onto victim(1): still valid */
    call(fn, &c, 1);
    assert_int_equal(c.calls, 2);
    /* victim(1)'s record under victim(2)'s key: call() checks it gets v2. */
    char key[256];
    entry_key_of("victim", 2, key, sizeof key);
    hermes_item it = {{key, strlen(key)}, {b.data, b.len}, 0, 0};
    assert_int_equal(h->be->set(h->be_state, &it, 1, NULL, NULL), HERMES_BE_OK);
    call(fn, &c, 2);
    assert_int_equal(c.calls, 3);
    assert_int_equal(stats().corrupt, 1);
    free(b.data);
}

static void records_name_their_function_ttl_and_times(void **state)
{
    hermes_fn *plain = reg("plain", HERMES_TAGS("t"), 120);
    hermes_fn *custom;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("math", "avg"),
                                            .key = avg_key, .ttl = 60);
    assert_int_equal(hermes_fn_register(h, "baz", &o, &custom), HERMES_OK);
    counter c = {0};
    uint64_t before = hm_now_ms();
    call(plain, &c, 1);
    call(custom, &c, 2);
    uint64_t after = hm_now_ms();
    hm_record rec;
    /* An argument-hashed key holds the name: the record need not. */
    blob b = get_entry("plain", 1);
    char key[256];
    entry_key_of("plain", 1, key, sizeof key);
    assert_int_equal(
        hm_record_decode(b.data, b.len, (hermes_bytes){key, strlen(key)}, &rec),
        HM_RECORD_OK);
    assert_int_equal(rec.flags, HM_REC_NAME_IN_KEY);
    assert_int_equal(rec.name_len, 0);
    assert_int_equal(rec.ttl_s, 120);
    assert_true(rec.created_ms >= before && rec.created_ms <= after);
    assert_true(hm_record_expiry_ms(&rec) == rec.created_ms + 120000);
    /* One tag, and the namespace tag on a backend without prefix flush. */
    assert_int_equal(rec.ntags, 1 + plain->tags.ns);
    assert_int_equal(rec.ntags, plain->tags.n);
    assert_true(hm_record_same_tags(&rec, plain->tags.n, plain->tags.ids));
    free(b.data);
    /* A custom key does not: the record names the function. */
    snprintf(key, sizeof key, "%savg:2:10", h->entry_prefix);
    b = get_raw(key);
    assert_non_null(b.data);
    assert_int_equal(
        hm_record_decode(b.data, b.len, (hermes_bytes){key, strlen(key)}, &rec),
        HM_RECORD_OK);
    assert_int_equal(rec.flags, 0);
    assert_int_equal(rec.name_len, 3);
    assert_memory_equal(rec.name, "baz", 3);
    assert_int_equal(rec.ttl_s, 60);
    assert_int_equal(rec.ntags, 2 + custom->tags.ns);
    free(b.data);
}

/* Stores, under fname(1)'s key, a record written for tags `tags`. */
static void put_record_for_tags(const char *fname, const char *const *tags)
{
    char key[256];
    entry_key_of(fname, 1, key, sizeof key);
    hm_taglist t;
    assert_int_equal(hm_taglist_build_entry(h, tags, &t), HERMES_OK);
    uint64_t vids[8] = {0};
    hm_record_in in = {.flags = HM_REC_NAME_IN_KEY,
                       .ntags = t.n,
                       .tag_ids = t.ids,
                       .version_ids = vids,
                       .created_ms = hm_now_ms(),
                       .payload = "v1",
                       .payload_len = 2};
    size_t n;
    unsigned char *r =
        hm_record_encode(&in, (hermes_bytes){key, strlen(key)}, &n);
    assert_non_null(r);
    put_raw_entry(fname, r, n);
    free(r);
    hm_taglist_free(&t);
}

static void a_record_of_other_tags_is_foreign_not_corrupt(void **state)
{
    /* The same function, redeployed with other tags. */
    hermes_fn *fn = reg("retagged", HERMES_TAGS("new"), 0);
    put_record_for_tags("retagged", HERMES_TAGS("old"));
    counter c = {0};
    call(fn, &c, 1);
    assert_int_equal(c.calls, 1);
    put_record_for_tags("retagged", HERMES_TAGS("new", "old"));
    call(fn, &c, 1);
    assert_int_equal(c.calls, 2);
    hermes_stats s = stats();
    assert_int_equal(s.foreign, 2);
    assert_int_equal(s.corrupt, 0);
    assert_int_equal(s.stale, 0);
    call(fn, &c, 1); /* the recomputed record is this function's own */
    assert_int_equal(c.calls, 2);
}

static void another_functions_record_under_a_shared_key_is_foreign(void **state)
{
    hermes_fn *f1, *f2;
    hermes_fn_options o = HERMES_FN_OPTIONS(.key = avg_key);
    assert_int_equal(hermes_fn_register(h, "first", &o, &f1), HERMES_OK);
    assert_int_equal(hermes_fn_register(h, "second", &o, &f2), HERMES_OK);
    counter c1 = {0}, c2 = {0};
    call(f1, &c1, 2);
    call(f2, &c2, 2); /* same key "avg:2:10", not its record */
    assert_int_equal(c2.calls, 1);
    assert_int_equal(stats().foreign, 1);
}

static void a_format_1_record_is_a_miss_not_an_error(void **state)
{
    hermes_fn *fn = reg("upgraded", NULL, 0);
    /* What the previous release wrote for "v1": HRM1, format 1, no tags. */
    static const unsigned char v1[] = "HRM1\x01\x00\x00\x00"
                                      "\xd2\x04\0\0\0\0\0\0"
                                      "\x38\0\0\0\x02\0\0\0v1\x01\x02\x03\x04";
    put_raw_entry("upgraded", v1, sizeof v1 - 1);
    counter c = {0};
    assert_int_equal(call(fn, &c, 1), HERMES_OK);
    assert_int_equal(c.calls, 1);
    assert_int_equal(stats().foreign, 1);
    assert_int_equal(stats().corrupt, 0);
    call(fn, &c, 1);
    assert_int_equal(c.calls, 1);
}

static int kilo_key(void *arg, char *buf, size_t cap)
{
    char k[1025];
    memset(k, 'k', 1024);
    k[1024] = '\0';
    return snprintf(buf, cap, "%s%lld", k, (long long)((call_arg *)arg)->x);
}

static void kilobyte_key_works(void **state)
{
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.key = kilo_key);
    assert_int_equal(hermes_fn_register(h, "kilo", &o, &fn), HERMES_OK);
    counter c = {0};
    call(fn, &c, 1);
    call(fn, &c, 1);
    call(fn, &c, 2);
    assert_int_equal(c.calls, 2);
}

static void stats_counters_move_as_expected(void **state)
{
    hermes_fn *fn = reg("counted", HERMES_TAGS("t"), 0);
    counter c = {0};
    call(fn, &c, 1); /* miss, compute, lock */
    call(fn, &c, 1); /* hit */
    call(fn, &c, 1); /* hit */
    hermes_clean(h, HERMES_TAGS("t"));
    call(fn, &c, 1); /* stale miss */
    hermes_stats s = stats();
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.stale, 1);
    assert_int_equal(s.computations, 2);
    assert_int_equal(s.lock_acquired, 2);
    assert_int_equal(s.lock_contended, 0);
    assert_int_equal(s.backend_errors, 0);
    assert_int_equal(s.compute_errors, 0);
}

static void plain_get_set_delete_with_tags(void **state)
{
    void *v;
    size_t n;
    assert_int_equal(hermes_get(h, "page:1", NULL, &v, &n), HERMES_ENOTFOUND);
    assert_int_equal(
        hermes_set(h, "page:1", "hello\0world", 11, HERMES_TAGS("pages"), 0),
        HERMES_OK);
    assert_int_equal(hermes_get(h, "page:1", HERMES_TAGS("pages"), &v, &n),
                     HERMES_OK);
    assert_int_equal(n, 11);
    assert_memory_equal(v, "hello\0world", 11);
    hermes_free(v);
    /* Asked with other tags than it was stored with: not this entry. */
    assert_int_equal(hermes_get(h, "page:1", NULL, &v, &n), HERMES_ENOTFOUND);
    hermes_clean(h, HERMES_TAGS("pages"));
    assert_int_equal(hermes_get(h, "page:1", HERMES_TAGS("pages"), &v, &n),
                     HERMES_ENOTFOUND);
    hermes_set(h, "page:2", "x", 1, NULL, 0);
    assert_int_equal(hermes_delete(h, "page:2"), HERMES_OK);
    assert_int_equal(hermes_get(h, "page:2", NULL, &v, &n), HERMES_ENOTFOUND);
}

static void registering_a_name_twice_fails(void **state)
{
    hermes_fn *fn;
    reg("dup", NULL, 0);
    assert_int_equal(hermes_fn_register(h, "dup", NULL, &fn), HERMES_EEXIST);
    assert_non_null(strstr(hermes_errmsg(h), "dup"));
    assert_int_equal(hermes_fn_register(h, "bad name", NULL, &fn),
                     HERMES_EINVAL);
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("fine", ""));
    assert_int_equal(hermes_fn_register(h, "ok", &o, &fn), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "empty"));
}

static void names_and_tag_lists_a_record_cannot_hold_are_refused(void **state)
{
    hermes_fn *fn;
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_int_equal(hermes_fn_register(h, name, NULL, &fn), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "255"));
    name[255] = '\0';
    assert_int_equal(hermes_fn_register(h, name, NULL, &fn), HERMES_OK);
    /* 255 tags in a record; on a backend without prefix flush, one of
     * them is the namespace tag. */
    int max = HM_RECORD_MAX_TAGS - (h->ns_key != NULL);
    static char names[256][16];
    const char *tags[257];
    for (int i = 0; i < 256; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        tags[i] = names[i];
    }
    tags[max + 1] = NULL;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = tags);
    assert_int_equal(hermes_fn_register(h, "many", &o, &fn), HERMES_EINVAL);
    char want[64];
    snprintf(want, sizeof want, "at most %d", max);
    assert_non_null(strstr(hermes_errmsg(h), want));
    assert_int_equal(hermes_set(h, "k", "v", 1, tags, 0), HERMES_EINVAL);
    tags[max] = NULL;
    assert_int_equal(hermes_fn_register(h, "many", &o, &fn), HERMES_OK);
    assert_int_equal(hermes_set(h, "k", "v", 1, tags, 0), HERMES_OK);
}

/* ------------------------------------------- tags and Python HermesCache */

static void tags_with_spaces_and_percent_signs_are_accepted(void **state)
{
    hermes_fn *fn = reg("spaced", HERMES_TAGS("50%", "a b", "new\nline"), 0);
    counter c = {0};
    call(fn, &c, 1);
    call(fn, &c, 1);
    assert_int_equal(c.calls, 1);
    /* Each tag invalidates on its own. */
    const char *each[] = {"a b", "50%", "new\nline"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hermes_clean(h, HERMES_TAGS(each[i])), HERMES_OK);
        call(fn, &c, 1);
        call(fn, &c, 1);
        assert_int_equal(c.calls, 2 + i);
    }
    /* A tag that differs only by the escaping it would once have had is
     * another tag. */
    hermes_fn *other = reg("escaped", HERMES_TAGS("a%20b"), 0);
    counter c2 = {0};
    call(other, &c2, 1);
    hermes_clean(h, HERMES_TAGS("a b"));
    call(other, &c2, 1);
    assert_int_equal(c2.calls, 1);
}

static void tag_keys_are_python_hermes_keys(void **state)
{
    hermes_fn *fn = reg("keyed", HERMES_TAGS("50%", "#hash:tag", "a b"), 0);
    counter c = {0};
    call(fn, &c, 1);
    char key[256];
    /* Mangler.nameTag: ':'.join([prefix, 'tag', tag]), the tag as is. */
    const char *verbatim[] = {"50%", "#hash:tag"};
    for (int i = 0; i < 2; i++) {
        snprintf(key, sizeof key, "%s%s", h->tag_prefix, verbatim[i]);
        blob b = get_raw(key);
        assert_non_null(b.data);
        free(b.data);
    }
    /* No key may hold a space: that tag's key is hashed. */
    snprintf(key, sizeof key, "%sa b", h->tag_prefix);
    assert_null(get_raw(key).data);
    hm_buf k;
    hm_buf_init(&k);
    hm_tag_key(h, "a b", &k);
    assert_null(memchr(k.data, ' ', k.len));
    assert_int_equal(k.data[strlen(h->tag_prefix)], '#');
    blob b = get_raw(k.data);
    assert_non_null(b.data);
    free(b.data);
    hm_buf_free(&k);
}

/* Runs python3 with a script and arguments (no quotes in either); returns
 * its first output line, without the newline. */
static void python(const char *script, const char *args, char *out, size_t cap)
{
    if (system("python3 -c 'import pickle' >/dev/null 2>&1") != 0)
        fail_msg("python3 (with pickle) is needed for the Python "
                 "interoperability tests: apt-get install python3");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 -c \"%s\" %s", script, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(out, (int)cap, p))
        out[0] = '\0';
    int st = pclose(p);
    if (st != 0)
        fail_msg("python3 failed (status %d) on: %s", st, cmd);
    out[strcspn(out, "\n")] = '\0';
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = '\0';
}

static size_t from_hex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
    return n;
}

static void python_reads_the_tag_versions_c_writes(void **state)
{
    hermes_fn *fn = reg("for_python", HERMES_TAGS("50%"), 0);
    counter c = {0};
    call(fn, &c, 1); /* creates the tag */
    char key[256], hex[256], out[256];
    snprintf(key, sizeof key, "%s50%%", h->tag_prefix);
    blob b = get_raw(key);
    assert_non_null(b.data);
    to_hex(b.data, b.len, hex);
    /* What HermesCache's Mangler.loads does with it (no zlib below 100
     * bytes): pickle.loads, which must give a 22-character str... */
    python("import pickle,sys; v=pickle.loads(bytes.fromhex(sys.argv[1])); "
           "assert type(v) is str and len(v) == 22, repr(v); print(v)",
           hex, out, sizeof out);
    assert_int_equal(strlen(out), 22);
    /* ...written exactly as pickle.dumps(that str) writes it. */
    char args[256];
    snprintf(args, sizeof args, "%s", out);
    python("import pickle,sys; print(pickle.dumps(sys.argv[1]).hex())", args,
           out, sizeof out);
    assert_string_equal(out, hex);
    free(b.data);
}

static void c_uses_the_tag_versions_python_writes(void **state)
{
    hermes_fn *fn = reg("from_python", HERMES_TAGS("50%"), 0);
    counter c = {0};
    char key[256], out[512], args[64];
    snprintf(key, sizeof key, "%s50%%", h->tag_prefix);
    int calls = 0;
    /* Every pickle protocol, the way HermesCache's mapTags seeds a tag. */
    for (int proto = 0; proto <= 5; proto++) {
        snprintf(args, sizeof args, "PythonTagVersion-proto%d %d", proto,
                 proto);
        python("import pickle,sys; "
               "print(pickle.dumps(sys.argv[1], int(sys.argv[2])).hex())",
               args, out, sizeof out);
        unsigned char bytes[256];
        size_t n = from_hex(out, bytes, sizeof bytes);
        put_raw(key, bytes, n);
        call(fn, &c, 1); /* a new version: computed */
        call(fn, &c, 1); /* cached under it */
        assert_int_equal(c.calls, ++calls);
        /* C kept Python's version (set-if-absent never overwrites it). */
        blob b = get_raw(key);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, bytes, n);
        free(b.data);
    }
    /* Python cleans the tag (deletes the key): C's entries go stale. */
    hermes_bytes k = {key, strlen(key)};
    assert_int_equal(hm_be_del(h, &k, 1), HERMES_BE_OK);
    call(fn, &c, 1);
    assert_int_equal(c.calls, calls + 1);
}

/* The decorator-style layer: a plain C function, cached in a few lines. */
static atomic_int macro_calls;

HERMES_FUNC(int64_t, mul, int64_t, a, int64_t, b)
{
    atomic_fetch_add(&macro_calls, 1);
    return a * b;
}

HERMES_FUNC(char *, greet, const char *, who, int, times)
{
    atomic_fetch_add(&macro_calls, 1);
    char *s = malloc(64);
    snprintf(s, 64, "hello %s x%d", who, times);
    return s;
}

HERMES_FUNC(double, half, double, x)
{
    atomic_fetch_add(&macro_calls, 1);
    return x / 2;
}

static void macro_layer_caches_scalars_and_strings(void **state)
{
    macro_calls = 0;
    /* Before registration the function simply computes. */
    assert_int_equal(mul(6, 7), 42);
    assert_int_equal(HERMES_REGISTER(h, mul, .tags = HERMES_TAGS("math")),
                     HERMES_OK);
    assert_int_equal(HERMES_REGISTER(h, greet), HERMES_OK);
    assert_int_equal(HERMES_REGISTER(h, half, .ttl = 60), HERMES_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mul(6, 7), 42);
        char *g = greet("ada", 2);
        assert_string_equal(g, "hello ada x2");
        free(g);
        assert_true(half(5.0) == 2.5);
    }
    assert_int_equal(macro_calls, 1 + 3);
    assert_int_equal(mul_invalidate(6, 7), HERMES_OK);
    assert_int_equal(mul(6, 7), 42);
    assert_int_equal(macro_calls, 5);
}

static void cached_function_called_after_close_computes_directly(void **state)
{
    hermes *other = open_cache(NULL);
    assert_int_equal(HERMES_REGISTER(other, mul), HERMES_OK);
    hermes_close(other); /* clears the macro's slot */
    macro_calls = 0;
    assert_int_equal(mul(3, 4), 12);
    assert_int_equal(mul(3, 4), 12);
    assert_int_equal(macro_calls, 2);
}

static void registering_twice_keeps_the_first_registration(void **state)
{
    assert_int_equal(HERMES_REGISTER(h, mul), HERMES_OK);
    assert_int_equal(HERMES_REGISTER(h, mul), HERMES_EEXIST);
    macro_calls = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(mul(5, 5), 25);
    assert_int_equal(macro_calls, 1);
}

typedef struct err_thread {
    pthread_barrier_t *erred, *closed;
} err_thread;

static void *fail_then_wait(void *p)
{
    err_thread *t = p;
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "bad name", NULL, &fn),
                     HERMES_EINVAL);
    assert_true(hermes_errmsg(h)[0] != '\0');
    pthread_barrier_wait(t->erred);
    pthread_barrier_wait(t->closed); /* still alive when the handle closes */
    return NULL;
}

/* A thread that failed on a handle and outlives it: its message buffer is
 * freed by hermes_close() (LeakSanitizer checks this in the ASan build). */
static void error_messages_of_live_threads_are_freed_at_close(void **state)
{
    pthread_barrier_t erred, closed;
    pthread_barrier_init(&erred, NULL, 2);
    pthread_barrier_init(&closed, NULL, 2);
    err_thread t = {&erred, &closed};
    pthread_t th;
    pthread_create(&th, NULL, fail_then_wait, &t);
    pthread_barrier_wait(&erred);
    hermes_close(h);
    h = open_cache(NULL); /* for teardown */
    pthread_barrier_wait(&closed);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&erred);
    pthread_barrier_destroy(&closed);
}

#ifndef MEMO_SERVER
static void backend_down_computes_directly(void **state)
{
    hermes_fn *fn = reg("resilient", HERMES_TAGS("t"), 0);
    counter c = {0};
    mock_fail_all(mock_current(), HERMES_BE_IO);
    for (int i = 0; i < 3; i++)
        assert_int_equal(call(fn, &c, 1), HERMES_OK);
    assert_int_equal(c.calls, 3);
    assert_true(stats().backend_errors >= 3);
    mock_fail_all(mock_current(), 0);
    call(fn, &c, 1);
    call(fn, &c, 1);
    assert_int_equal(c.calls, 4); /* caching resumes */
}

static void backend_down_fails_when_configured(void **state)
{
    hermes_close(h);
    h = open_cache("on_backend_error = fail\n");
    hermes_fn *fn = reg("strict", NULL, 0);
    counter c = {0};
    mock_fail_all(mock_current(), HERMES_BE_IO);
    assert_int_equal(call(fn, &c, 1), HERMES_EBACKEND);
    assert_int_equal(c.calls, 0);
    assert_non_null(strstr(hermes_errmsg(h), "unreachable"));
    mock_fail_all(mock_current(), 0);
}

/* hermes_open_string() fails with rc and a message containing want. */
static void open_fails_with(const char *text, hermes_rc rc, const char *want)
{
    hermes *bad;
    assert_int_equal(hermes_open_string(&bad, text, "app.ini"), rc);
    assert_non_null(bad); /* a handle to read the message from */
    if (!strstr(hermes_errmsg(bad), want))
        fail_msg("message '%s' lacks '%s'", hermes_errmsg(bad), want);
    hermes_close(bad);
}

static void open_reports_config_errors_with_file_line_and_key(void **state)
{
    open_fails_with("[hermes]\nttl = soon\n", HERMES_ECONFIG,
                    "app.ini:2: ttl: not a number: 'soon'");
    open_fails_with("[hermes]\n\ncolour = red\n", HERMES_ECONFIG,
                    "app.ini:3: colour: unknown key in [hermes]");
    /* The backend's own section: the plugin rejects the key, the core
     * names the file and line. */
    open_fails_with("[hermes]\n[dict]\nmax_bytes = 1m\nfoo = 1\n",
                    HERMES_ECONFIG, "app.ini:4: foo: unknown key 'foo'");
}

static void open_reports_plugin_errors_naming_where_it_looked(void **state)
{
    open_fails_with(
        "[hermes]\nbackend = nosuch\nplugin_path = /nonexistent\n",
        HERMES_EPLUGIN,
        "plugin 'nosuch' not found; looked in: /nonexistent/nosuch");
    hermes *bad;
    assert_int_equal(hermes_open_string(&bad, NULL, NULL), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(bad), "text is NULL"));
    hermes_close(bad);
}

static void a_short_key_cannot_name_a_hashed_long_key(void **state)
{
    hermes_close(h);
    assert_int_equal(hermes_open_with(&h, NULL, NULL, mock_backend_maxkey(250)),
                     HERMES_OK);
    char longkey[400];
    memset(longkey, 'x', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_int_equal(hermes_set(h, longkey, "SECRET", 6, NULL, 0), HERMES_OK);
    /* The long key is stored as "<prefix>:entry:#<hash>": find it. */
    hm_buf k;
    hm_buf_init(&k);
    hm_buf_adds(&k, h->entry_prefix);
    hm_buf_adds(&k, longkey);
    hm_key_fit(&k, strlen(h->entry_prefix), 250);
    const char *hashed = k.data + strlen(h->entry_prefix);
    assert_int_equal(hashed[0], '#');
    void *v;
    size_t n;
    assert_int_equal(hermes_get(h, hashed, NULL, &v, &n), HERMES_ENOTFOUND);
    assert_int_equal(hermes_get(h, longkey, NULL, &v, &n), HERMES_OK);
    assert_memory_equal(v, "SECRET", 6);
    hermes_free(v);
    hm_buf_free(&k);
}

/* Sets tag `t` to a 300-byte value of c, as another application might. */
static void set_long_tag(char c)
{
    char key[64], val[300];
    snprintf(key, sizeof key, "%st", h->tag_prefix);
    memset(val, c, sizeof val);
    hermes_item it = {{key, strlen(key)}, {val, sizeof val}, 0, 0};
    assert_int_equal(hm_be_set(h, &it, 1, NULL, NULL), HERMES_BE_OK);
}

static void tag_versions_longer_than_255_bytes_still_invalidate(void **state)
{
    hermes_fn *fn = reg("longtag", HERMES_TAGS("t"), 0);
    counter c = {0};
    set_long_tag('A');
    call(fn, &c, 1);
    call(fn, &c, 1);
    assert_int_equal(c.calls, 1); /* cached under the long version */
    set_long_tag('B');
    call(fn, &c, 1);
    assert_int_equal(c.calls, 2); /* a different long version: stale */
}

static void keys_longer_than_the_backend_allows_are_hashed(void **state)
{
    hermes_close(h);
    hermes_rc rc = hermes_open_with(&h, NULL, NULL, mock_backend_maxkey(250));
    assert_int_equal(rc, HERMES_OK);
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.key = kilo_key,
                          .tags = HERMES_TAGS("a-rather-long-tag-name"));
    assert_int_equal(hermes_fn_register(h, "kilo", &o, &fn), HERMES_OK);
    counter c = {0};
    call(fn, &c, 1);
    call(fn, &c, 1);
    call(fn, &c, 2);
    assert_int_equal(c.calls, 2);
    assert_true(mock_get_counts(mock_current()).longest_key <= 250);
}
#endif

int main(void)
{
#ifdef MEMO_REDIS
    if (redis_server_start(&server) != 0)
        return 1;
#endif
#ifdef MEMO_REDIS_CLUSTER
    if (redis_cluster_start(&cluster) != 0)
        return 1;
#endif
#ifdef MEMO_MEMCACHED
    if (memcached_server_start(&mc_servers[0]) != 0 ||
        memcached_server_start(&mc_servers[1]) != 0)
        return 1;
#endif
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(repeated_calls_compute_once),
        T(different_arguments_are_different_entries),
        T(same_arguments_of_two_functions_are_different_entries),
        T(invalidate_recomputes_only_that_entry),
        T(clean_tag_recomputes_exactly_the_tagged_entries),
        T(flush_empties_the_cache),
        T(entries_expire_after_their_ttl),
        T(compute_can_set_its_own_ttl),
        T(custom_key_names_the_entry),
        T(invalidation_during_compute_leaves_entry_stale),
        T(concurrent_tag_creators_agree_on_one_version),
        T(sixteen_threads_on_a_cold_key_compute_once),
        T(compute_failure_reaches_every_waiting_caller),
        T(compute_failure_is_not_cached),
        T(nocache_result_is_returned_but_not_stored),
        T(lock_of_a_dead_holder_is_taken_over_after_its_ttl),
        T(lock_token_carries_host_pid_and_acquisition_time),
        T(follower_stops_waiting_at_the_limit_and_computes),
        T(follower_stops_waiting_at_the_limit_and_fails),
        T(corrupt_record_bytes_are_a_miss),
#ifndef MEMO_SERVER
        T(builtin_dict_skips_the_checksum_not_the_format),
#endif
        T(flipped_bit_in_a_record_is_a_miss),
        T(a_record_copied_to_another_key_is_a_miss),
        T(records_name_their_function_ttl_and_times),
        T(a_record_of_other_tags_is_foreign_not_corrupt),
        T(another_functions_record_under_a_shared_key_is_foreign),
        T(a_format_1_record_is_a_miss_not_an_error),
        T(kilobyte_key_works),
        T(stats_counters_move_as_expected),
        T(plain_get_set_delete_with_tags),
        T(registering_a_name_twice_fails),
        T(names_and_tag_lists_a_record_cannot_hold_are_refused),
        T(tags_with_spaces_and_percent_signs_are_accepted),
        T(tag_keys_are_python_hermes_keys),
        T(python_reads_the_tag_versions_c_writes),
        T(c_uses_the_tag_versions_python_writes),
        T(macro_layer_caches_scalars_and_strings),
#ifndef MEMO_SERVER
        T(backend_down_computes_directly),
        T(backend_down_fails_when_configured),
        T(keys_longer_than_the_backend_allows_are_hashed),
        T(a_short_key_cannot_name_a_hashed_long_key),
        T(open_reports_config_errors_with_file_line_and_key),
        T(open_reports_plugin_errors_naming_where_it_looked),
        T(tag_versions_longer_than_255_bytes_still_invalidate),
#endif
        T(cached_function_called_after_close_computes_directly),
        T(registering_twice_keeps_the_first_registration),
        T(error_messages_of_live_threads_are_freed_at_close),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
#ifdef MEMO_REDIS
    redis_server_stop(&server);
#endif
#ifdef MEMO_REDIS_CLUSTER
    redis_cluster_stop(&cluster);
#endif
#ifdef MEMO_MEMCACHED
    memcached_server_stop(&mc_servers[0]);
    memcached_server_stop(&mc_servers[1]);
#endif
    return failed;
}
