/*
 * The cache over a private Redis Cluster (three masters, each with a
 * replica): what a tagged hit costs on each node (counted by the nodes'
 * own INFO commandstats), entries spread over every master (their own
 * DBSIZE), and 8 threads calling tagged entries with known-right values
 * while slots move (MOVED and ASK) and while a master is killed and its
 * replica takes over: no wrong value, no failed call, every call within a
 * bound, caching resumes by itself (the time is printed).
 */
#include <hiredis/hiredis.h>
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

#include "handle.h"
#include "redis_cluster.h"

static redis_cluster cl = {
    .masters = 3, .replicas = 1, .node_timeout_ms = 1000};
static char seeds[256];
static int test_pid;

/* Timeouts of the handles: a call's bound follows from them (README,
 * "redis Cluster"): lock_wait_ms + 2 x (connect + command) per round,
 * plus a refresh; 2 s leaves room for sanitizer builds. */
#define CALL_BOUND_NS 2000000000ull

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static hermes *open_cache(void)
{
    char text[1024];
    hermes *h;
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = cc%d\nlog_level = error\nlock_wait_ms = 300\n"
             "[redis]\ncluster = %s\nconnect_timeout_ms = 200\n"
             "command_timeout_ms = 300\n",
             getenv("HERMES_TEST_BUILDDIR"), test_pid, seeds);
    if (hermes_open_string(&h, text, "test") != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
    return h;
}

static int slot_of(const char *key)
{
    redisContext *c = redis_cluster_connect(&cl, 0);
    redisReply *r = redisCommand(c, "CLUSTER KEYSLOT %s", key);
    int slot = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return slot;
}

/* The master (node index) serving key now. */
static int owner_of(const char *key)
{
    int slot = slot_of(key);
    return slot < 0 ? -1 : redis_cluster_owner(&cl, 0, (unsigned)slot);
}

static long long node_int(int i, const char *cmd)
{
    redisContext *c = redis_cluster_connect(&cl, i);
    redisReply *r = c ? redisCommand(c, cmd) : NULL;
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return v;
}

static char *node_text(int i, const char *cmd)
{
    redisContext *c = redis_cluster_connect(&cl, i);
    redisReply *r = c ? redisCommand(c, cmd) : NULL;
    char *t = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return t;
}

/* The entry's key text after "<prefix>:entry:" is "ck:<x>", so that a test
 * can place entries on the master it wants. */
static int key_of(void *arg, char *buf, size_t cap)
{
    return snprintf(buf, cap, "ck:%lld", (long long)*(int64_t *)arg);
}

static int compute(void *arg, hermes_result *res)
{
    char v[32];
    int n = snprintf(v, sizeof v, "v%lld", (long long)*(int64_t *)arg);
    return hermes_result_set(res, v, (size_t)n) == HERMES_OK ? 0 : 1;
}

/* 0 right, -1 failed, -2 wrong value. */
static int call(hermes_fn *fn, int64_t x)
{
    hermes_args a = HERMES_ARGS_INIT;
    hermes_args_int(&a, x);
    void *v;
    size_t n;
    hermes_rc rc = hermes_call(fn, hermes_args_data(&a), hermes_args_len(&a),
                               compute, &x, &v, &n);
    hermes_args_free(&a);
    if (rc != HERMES_OK)
        return -1;
    char want[32];
    snprintf(want, sizeof want, "v%lld", (long long)x);
    int ok = n == strlen(want) && memcmp(v, want, n) == 0;
    hermes_free(v);
    return ok ? 0 : -2;
}

/* An argument whose entry key lives on master m. */
static int64_t arg_on(int m)
{
    char key[96];
    for (int64_t x = 0;; x++) {
        snprintf(key, sizeof key, "cc%d:entry:ck:%lld", test_pid, (long long)x);
        if (owner_of(key) == m)
            return x;
    }
}

/* A tag name whose tag key lives on master m. */
static void tag_on(int m, const char *stem, char *buf, size_t size)
{
    char key[96];
    for (int n = 0;; n++) {
        snprintf(buf, size, "%s%d", stem, n);
        snprintf(key, sizeof key, "cc%d:tag:%s", test_pid, buf);
        if (owner_of(key) == m)
            return;
    }
}

static int flush_all(void **state)
{
    (void)state;
    for (int i = 0; i < cl.n; i++)
        if (cl.node[i].pid > 0 && redis_cluster_is_master(&cl, i))
            node_int(i, "FLUSHALL");
    return 0;
}

/* ------------------------------------------------------------- tests */

static void a_tagged_hit_is_one_command_on_each_node_involved(void **state)
{
    (void)state;
    hermes *h = open_cache();
    char t1[32], t2[32];
    tag_on(1, "rock", t1, sizeof t1);
    tag_on(2, "tree", t2, sizeof t2);
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.key = key_of, .tags = HERMES_TAGS(t1, t2));
    assert_int_equal(hermes_fn_register(h, "tagged", &o, &fn), HERMES_OK);
    int64_t x = arg_on(0);
    assert_int_equal(call(fn, x), 0); /* computes, stores */
    assert_int_equal(call(fn, x), 0); /* the map is known: a hit */
    for (int i = 0; i < 3; i++)
        node_int(i, "CONFIG RESETSTAT");
    enum { N = 100 };
    for (int i = 0; i < N; i++)
        assert_int_equal(call(fn, x), 0);
    for (int i = 0; i < 3; i++) {
        char *info = node_text(i, "INFO commandstats");
        assert_non_null(info);
        print_message("master %d: %lld MGET, %lld commands for %d hits\n", i,
                      redis_info_calls(info, "mget"),
                      redis_info_work_calls(info), N);
        assert_int_equal(redis_info_calls(info, "mget"), N);
        assert_int_equal(redis_info_work_calls(info), N);
        free(info);
    }
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    assert_int_equal(s.hits, N + 1);
    hermes_close(h);
}

static void entries_spread_over_every_master(void **state)
{
    (void)state;
    hermes *h = open_cache();
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("spread"));
    assert_int_equal(hermes_fn_register(h, "spread", &o, &fn), HERMES_OK);
    for (int64_t x = 0; x < 300; x++)
        assert_int_equal(call(fn, x), 0);
    long long total = 0;
    for (int i = 0; i < 3; i++) {
        long long n = node_int(i, "DBSIZE");
        print_message("master %d: %lld keys\n", i, n);
        assert_true(n > 50);
        total += n;
    }
    assert_int_equal(total, 301); /* 300 entries and one tag */
    hermes_close(h);
}

/* 8 threads of tagged calls over 200 arguments, counting. */
typedef struct load {
    hermes_fn *fn;
    atomic_int stop;
    atomic_long calls, wrong, failed;
    atomic_ullong slowest_ns;
} load;

static void *load_thread(void *p)
{
    load *l = p;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    while (!atomic_load(&l->stop)) {
        int64_t x = rand_r(&seed) % 200;
        uint64_t t0 = mono_ns();
        int r = call(l->fn, x);
        uint64_t dt = mono_ns() - t0;
        unsigned long long prev = atomic_load(&l->slowest_ns);
        while (dt > prev &&
               !atomic_compare_exchange_weak(&l->slowest_ns, &prev, dt))
            ;
        atomic_fetch_add(&l->calls, 1);
        if (r == -1)
            atomic_fetch_add(&l->failed, 1);
        if (r == -2)
            atomic_fetch_add(&l->wrong, 1);
    }
    return NULL;
}

static void start_load(load *l, pthread_t *t)
{
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, load_thread, l);
}

/* Waits until the threads have made n more calls (at most 10 s). */
static void wait_calls(load *l, long n)
{
    long until = atomic_load(&l->calls) + n;
    for (int i = 0; i < 1000 && atomic_load(&l->calls) < until; i++)
        sleep_ms(10);
}

static void stop_load(load *l, pthread_t *t)
{
    atomic_store(&l->stop, 1);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
}

typedef struct plugin_stat {
    long long moved, ask, tryagain;
} plugin_stat;

static void stat_cb(void *arg, const char *name, const char *value)
{
    plugin_stat *s = arg;
    if (strcmp(name, "moved") == 0)
        s->moved = atoll(value);
    if (strcmp(name, "ask") == 0)
        s->ask = atoll(value);
    if (strcmp(name, "tryagain") == 0)
        s->tryagain = atoll(value);
}

static uint64_t hits_of(hermes *h)
{
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    return s.hits;
}

/* Waits (up to 10 s) until h's calls hit again; returns the hits gained. */
static uint64_t wait_hits(hermes *h, uint64_t from)
{
    for (int i = 0; i < 500 && hits_of(h) < from + 100; i++)
        sleep_ms(20);
    return hits_of(h) - from;
}

static void resharding_under_eight_threads_keeps_every_value_right(void **state)
{
    (void)state;
    hermes *h = open_cache();
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.key = key_of, .tags = HERMES_TAGS("ra", "rb"));
    assert_int_equal(hermes_fn_register(h, "r", &o, &fn), HERMES_OK);
    for (int64_t x = 0; x < 200; x++)
        assert_int_equal(call(fn, x), 0);
    /* The slots of both tags and of 30 entries move to the next master. */
    int slots[32], n = 0;
    char key[96];
    snprintf(key, sizeof key, "cc%d:tag:ra", test_pid);
    slots[n++] = slot_of(key);
    snprintf(key, sizeof key, "cc%d:tag:rb", test_pid);
    slots[n++] = slot_of(key);
    for (int64_t x = 0; n < 32; x += 7) {
        snprintf(key, sizeof key, "cc%d:entry:ck:%lld", test_pid, (long long)x);
        slots[n++] = slot_of(key);
    }
    load l = {.fn = fn};
    pthread_t t[8];
    start_load(&l, t);
    wait_calls(&l, 200);
    for (int i = 0; i < n; i++) {
        int from = redis_cluster_owner(&cl, 0, (unsigned)slots[i]);
        assert_true(from >= 0);
        /* One key per MIGRATE, so the calls meet the half-moved slot. */
        assert_int_equal(
            redis_cluster_move_slot(&cl, (unsigned)slots[i], (from + 1) % 3, 1),
            0);
    }
    uint64_t hits = hits_of(h);
    uint64_t gained = wait_hits(h, hits);
    stop_load(&l, t);
    plugin_stat ps = {0, 0, 0};
    hm_be_stats(h, stat_cb, &ps);
    print_message("resharding %d slots: %ld calls, %ld wrong, %ld failed, "
                  "slowest %.0f ms, MOVED %lld, ASK %lld, TRYAGAIN %lld, "
                  "%llu hits after\n",
                  n, atomic_load(&l.calls), atomic_load(&l.wrong),
                  atomic_load(&l.failed), atomic_load(&l.slowest_ns) / 1e6,
                  ps.moved, ps.ask, ps.tryagain, (unsigned long long)gained);
    assert_int_equal(atomic_load(&l.wrong), 0);
    assert_int_equal(atomic_load(&l.failed), 0);
    assert_true(atomic_load(&l.slowest_ns) < CALL_BOUND_NS);
    assert_true(ps.moved > 0);
    assert_true(gained >= 100); /* caching goes on */
    hermes_close(h);
}

static void failover_keeps_values_right_and_caching_resumes(void **state)
{
    (void)state;
    hermes *h = open_cache();
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.key = key_of, .tags = HERMES_TAGS("fa", "fb"));
    assert_int_equal(hermes_fn_register(h, "f", &o, &fn), HERMES_OK);
    /* A probe on its own handle: an untagged entry on the master that
     * dies, so its hits say when that master's slots serve again. */
    hermes *hp = open_cache();
    hermes_fn *probe;
    hermes_fn_options po = HERMES_FN_OPTIONS(.key = key_of);
    assert_int_equal(hermes_fn_register(hp, "f", &po, &probe), HERMES_OK);
    int victim = -1;
    for (int i = 0; i < cl.n && victim < 0; i++)
        if (redis_cluster_is_master(&cl, i))
            victim = i;
    assert_true(victim >= 0);
    int64_t px = arg_on(victim);
    assert_int_equal(call(probe, px), 0);
    for (int64_t x = 0; x < 200; x++)
        assert_int_equal(call(fn, x), 0);

    load l = {.fn = fn};
    pthread_t t[8];
    start_load(&l, t);
    wait_calls(&l, 200);
    redis_server_kill(&cl.node[victim]);
    uint64_t killed = mono_ns(), resumed = 0;
    uint64_t probe_hits = hits_of(hp);
    while (!resumed && mono_ns() - killed < 30000000000ull) {
        assert_int_equal(call(probe, px), 0);
        if (hits_of(hp) > probe_hits)
            resumed = mono_ns();
        else
            sleep_ms(10);
    }
    assert_true(resumed != 0);
    assert_int_equal(redis_cluster_wait_ok(&cl, 20000), 0);
    uint64_t gained = wait_hits(h, hits_of(h));
    stop_load(&l, t);
    print_message("failover: caching resumed %.2f s after the kill; %ld "
                  "calls, %ld wrong, %ld failed, slowest %.0f ms, %llu hits "
                  "after\n",
                  (resumed - killed) / 1e9, atomic_load(&l.calls),
                  atomic_load(&l.wrong), atomic_load(&l.failed),
                  atomic_load(&l.slowest_ns) / 1e6, (unsigned long long)gained);
    assert_int_equal(atomic_load(&l.wrong), 0);
    assert_int_equal(atomic_load(&l.failed), 0);
    assert_true(atomic_load(&l.slowest_ns) < CALL_BOUND_NS);
    assert_true(gained >= 100);
    hermes_close(hp);
    hermes_close(h);
}

int main(void)
{
    test_pid = (int)getpid();
    if (redis_cluster_start(&cl) != 0)
        return 1;
    redis_cluster_seeds(&cl, 0, seeds, sizeof seeds);
#define T(f) cmocka_unit_test_setup(f, flush_all)
    const struct CMUnitTest tests[] = {
        T(a_tagged_hit_is_one_command_on_each_node_involved),
        T(entries_spread_over_every_master),
        T(resharding_under_eight_threads_keeps_every_value_right),
        T(failover_keeps_values_right_and_caching_resumes),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    redis_cluster_stop(&cl);
    return failed;
}
