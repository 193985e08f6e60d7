/*
 * Concurrency contracts of the memoized call that involve more than one
 * thread or process: who may share an in-process computation, and fork()
 * while other threads use the handle.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "../support/child_wait.h"
#include "mock_backend.h"

#ifdef CONC_REDIS
#include "redis_server.h"
static redis_server server;
#endif
#ifdef CONC_REDIS_CLUSTER
#include "redis_cluster.h"
static redis_cluster cluster = {.masters = 3};
#endif
#ifdef CONC_MEMCACHED
#include "memcached_server.h"
static memcached_server mc_servers[2];
#endif

static hermes *h;

static int setup(void **state)
{
    (void)state;
    if (hermes_open_with(&h, "[hermes]\nlock_wait_ms = 20000\n", "test",
                         mock_backend()) != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
    return 0;
}

/* The backend as an application opens it (no mock in between): the
 * built-in dict, or the redis plugin over a private server. */
static int setup_defaults(void **state)
{
    (void)state;
#ifdef CONC_REDIS
    char text[512];
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = conc%d\n[redis]\nport = %d\n",
             getenv("HERMES_TEST_BUILDDIR"), (int)getpid(), server.port);
    if (hermes_open_string(&h, text, "test") != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
#elif defined(CONC_REDIS_CLUSTER)
    char text[512], seeds[256];
    redis_cluster_seeds(&cluster, 0, seeds, sizeof seeds);
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = conc%d\n[redis]\ncluster = %s\n",
             getenv("HERMES_TEST_BUILDDIR"), (int)getpid(), seeds);
    if (hermes_open_string(&h, text, "test") != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
#elif defined(CONC_MEMCACHED)
    char text[512];
    snprintf(text, sizeof text,
             "[hermes]\nbackend = memcached\nplugin_path = "
             "%s/plugins/memcached\nprefix = conc%d\n[memcached]\n"
             "servers = 127.0.0.1:%d, 127.0.0.1:%d\n",
             getenv("HERMES_TEST_BUILDDIR"), (int)getpid(), mc_servers[0].port,
             mc_servers[1].port);
    if (hermes_open_string(&h, text, "test") != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
#else
    if (hermes_open_defaults(&h) != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
#endif
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hermes_close(h);
    h = NULL;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pause_briefly(void)
{
    struct timespec ts = {0, 1000000L}; /* polling interval, not a wait */
    nanosleep(&ts, NULL);
}

/* ------------------------------------------- sharing a computation */

/*
 * A computation that reports "g<generation>" with the generation read when
 * it starts, and can be held at a gate until the test opens it.
 */
typedef struct gate {
    atomic_int generation;
    atomic_int computing; /* computations started */
    atomic_int hold;      /* computations wait while set */
} gate;

static int gated_value(void *p, hermes_result *res)
{
    gate *g = p;
    char v[16];
    int n = snprintf(v, sizeof v, "g%d", atomic_load(&g->generation));
    atomic_fetch_add(&g->computing, 1);
    while (atomic_load(&g->hold))
        pause_briefly();
    return hermes_result_set(res, v, (size_t)n) == HERMES_OK ? 0 : 1;
}

typedef struct caller {
    hermes_fn *fn;
    gate *g;
    char value[16];
    hermes_rc rc;
} caller;

static void *call_gated(void *p)
{
    caller *c = p;
    void *v;
    size_t n;
    c->rc = hermes_call(c->fn, "k", 1, gated_value, c->g, &v, &n);
    if (c->rc == HERMES_OK) {
        snprintf(c->value, sizeof c->value, "%.*s", (int)n, (char *)v);
        hermes_free(v);
    }
    return NULL;
}

/* Creates the function's tags with one call on other arguments. */
static void create_tags(hermes_fn *fn)
{
    gate g = {0};
    void *v;
    size_t n;
    assert_int_equal(hermes_call(fn, "warm", 4, gated_value, &g, &v, &n),
                     HERMES_OK);
    hermes_free(v);
}

static void wait_for_second_caller(void)
{
    hermes_stats st;
    uint64_t deadline = now_ms() + 5000;
    do {
        pause_briefly();
        hermes_stats_get(h, &st, sizeof st);
    } while (st.misses < 2 + 1 && st.lock_contended == 0 &&
             now_ms() < deadline);
}

/*
 * A caller that starts after hermes_clean() returned must not be handed
 * the value of a computation that started before the clean.  warm: the
 * tag existed before the first call; cold: the first call creates it.
 */
static void clean_during_a_computation(bool warm)
{
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("data"));
    assert_int_equal(hermes_fn_register(h, "gated", &o, &fn), HERMES_OK);
    /* One miss either way, so that wait_for_second_caller counts alike. */
    if (warm)
        create_tags(fn);
    else
        create_tags(fn), hermes_clean(h, HERMES_TAGS("data"));
    gate g = {0};
    atomic_store(&g.hold, 1);

    caller before = {fn, &g, "", HERMES_OK}, after = {fn, &g, "", HERMES_OK};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, call_gated, &before);
    while (atomic_load(&g.computing) < 1)
        pause_briefly();

    assert_int_equal(hermes_clean(h, HERMES_TAGS("data")), HERMES_OK);
    atomic_store(&g.generation, 1); /* the data changed with the clean */
    pthread_create(&tb, NULL, call_gated, &after);
    /* Let the first computation finish once the late caller has missed
     * (it then follows the first flight or leads its own). */
    wait_for_second_caller();
    atomic_store(&g.hold, 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);

    assert_int_equal(before.rc, HERMES_OK);
    assert_string_equal(before.value, "g0");
    assert_int_equal(after.rc, HERMES_OK);
    assert_string_equal(after.value, "g1");
}

static void caller_after_clean_does_not_share_an_older_computation(void **s)
{
    (void)s;
    clean_during_a_computation(true);
}

static void
caller_after_clean_does_not_share_a_computation_on_new_tags(void **s)
{
    (void)s;
    clean_during_a_computation(false);
}

/* Callers that read the same versions still share one computation. */
static void callers_with_the_same_versions_share_one_computation(void **s)
{
    (void)s;
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("data"));
    assert_int_equal(hermes_fn_register(h, "shared", &o, &fn), HERMES_OK);
    create_tags(fn);
    gate g = {0};
    atomic_store(&g.hold, 1);
    caller c[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (caller){fn, &g, "", HERMES_OK};
        pthread_create(&t[i], NULL, call_gated, &c[i]);
    }
    while (atomic_load(&g.computing) < 1)
        pause_briefly();
    hermes_stats st;
    uint64_t deadline = now_ms() + 5000;
    do {
        pause_briefly();
        hermes_stats_get(h, &st, sizeof st);
    } while (st.misses < 1 + 4 && now_ms() < deadline);
    atomic_store(&g.hold, 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].rc, HERMES_OK);
        assert_string_equal(c[i].value, "g0");
    }
    assert_int_equal(atomic_load(&g.computing), 1);
    hermes_stats_get(h, &st, sizeof st);
    assert_int_equal(st.computations, 1 + 1);
    assert_int_equal(st.coalesced + st.hits, 3);
}

/* ------------------------------------------------------------- fork */

typedef struct busy {
    hermes_fn *fn;
    atomic_int *stop;
    atomic_ulong *progress; /* calls made by all threads, read meanwhile */
    unsigned id;
    unsigned long calls, failures;
} busy;

static int square(void *p, hermes_result *res)
{
    uint64_t x = *(const uint64_t *)p, y = x * x;
    return hermes_result_set(res, &y, sizeof y) == HERMES_OK ? 0 : 1;
}

/* One cached call of square(x); 0 when the value is right. */
static int call_square(hermes_fn *fn, uint64_t x)
{
    void *v;
    size_t n;
    if (hermes_call(fn, &x, sizeof x, square, &x, &v, &n) != HERMES_OK)
        return -1;
    int ok = n == sizeof x && *(uint64_t *)v == x * x;
    hermes_free(v);
    return ok ? 0 : -1;
}

/* Hits and misses (a few hundred keys, cleaned now and then), so that
 * threads are inside flights, registration-free calls and the store when
 * the main thread forks. */
static void *busy_calls(void *p)
{
    busy *b = p;
    uint64_t x = b->id;
    while (!atomic_load(b->stop)) {
        x = (x * 6364136223846793005u + 1442695040888963407u);
        if (call_square(b->fn, (x >> 33) % 512) != 0)
            b->failures++;
        if ((x >> 20) % 997 == 0)
            hermes_clean(hermes_fn_handle(b->fn), HERMES_TAGS("busy"));
        b->calls++;
        atomic_fetch_add_explicit(b->progress, 1, memory_order_relaxed);
    }
    return NULL;
}

/* In the child: cached calls on the inherited handle, and a new handle. */
static int child_work(hermes_fn *fn)
{
    for (uint64_t x = 0; x < 300; x++)
        if (call_square(fn, x) != 0)
            return 1;
    hermes *c;
    if (hermes_open_defaults(&c) != HERMES_OK)
        return 2;
    hermes_close(c);
    return 0;
}

/*
 * Under a sanitizer a fork child of this test only exits: the runtimes of
 * GCC 12 (Debian 12) do not hold their own allocators' locks across
 * fork(), so a child forked while other threads allocate can hang inside
 * the runtime, whatever the program does.
 *  - libasan takes no locks of its own around fork() (LLVM added those
 *    fork handlers in December 2023, llvm-project PR 75290).
 *  - libtsan holds only its thread registry, slot and report mutexes, not
 *    its allocator or stack depot (LLVM added those in June 2024,
 *    llvm-project PR 96600); CI saw one child of 40 hang so.  After a
 *    fork of a multi-threaded process it also stops checking the child
 *    ("we cannot reasonably function after that", tsan_rtl.cpp), so it
 *    would check nothing the child does.
 * What they do check is the parent's side: the fork handlers taking and
 * releasing every registered lock while eight threads use them (TSan's
 * deadlock detector sees their order), and the child handlers, which run
 * before the child exits and allocate nothing.  The children's cached
 * calls run in the plain build.  The child leaves by the exit_group
 * system call itself: _exit() is intercepted, and its interceptor
 * finalizes the runtime.
 */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FORK_CHILD_WORKS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define FORK_CHILD_WORKS 0
#endif
#endif
#ifndef FORK_CHILD_WORKS
#define FORK_CHILD_WORKS 1
#endif

static void child_leave(hermes_fn *fn)
{
    if (!FORK_CHILD_WORKS)
        syscall(SYS_exit_group, 0);
    _exit(child_work(fn));
}

/*
 * fork() while 8 threads use the handle: every child completes its cached
 * calls (none hangs on a lock another thread held at the fork) within
 * 30 s (a generous bound: sanitizer builds on a loaded machine are slow;
 * a hang is forever), and the parent's threads go on.  Under a sanitizer
 * the children only exit (see above).
 */
static void fork_under_eight_busy_threads(void **s)
{
    (void)s;
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("busy"));
    assert_int_equal(hermes_fn_register(h, "square", &o, &fn), HERMES_OK);
    atomic_int stop = 0;
    atomic_ulong progress = 0;
    busy b[8];
    pthread_t t[8];
    for (unsigned i = 0; i < 8; i++) {
        b[i] = (busy){fn, &stop, &progress, i, 0, 0};
        pthread_create(&t[i], NULL, busy_calls, &b[i]);
    }
    const int children = 40;
    int completed = 0, hung = 0, failed = 0;
    for (int i = 0; i < children; i++) {
        /* Each fork comes after the threads made calls since the last. */
        unsigned long seen = atomic_load(&progress);
        uint64_t busy_by = now_ms() + 30000;
        while (atomic_load(&progress) < seen + 16 && now_ms() < busy_by)
            pause_briefly();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child_leave(fn);
        int status = 0;
        if (cw_wait("fork", pid, 30000, &status) != 0) {
            hung++;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            completed++;
        } else {
            failed++;
        }
    }
    atomic_store(&stop, 1);
    unsigned long calls = 0, failures = 0;
    for (unsigned i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        calls += b[i].calls;
        failures += b[i].failures;
    }
    print_message("fork: %d children %s, %d hung, %d failed; "
                  "parent threads made %lu calls\n",
                  completed,
                  FORK_CHILD_WORKS ? "completed"
                                   : "exited at once (sanitizer build)",
                  hung, failed, calls);
    assert_int_equal(hung, 0);
    assert_int_equal(failed, 0);
    assert_int_equal(completed, children);
    assert_int_equal(failures, 0);
}

#if !defined(CONC_REDIS) && !defined(CONC_REDIS_CLUSTER) &&                    \
    !defined(CONC_MEMCACHED)
static int child_value(void *p, hermes_result *res)
{
    (void)p;
    return hermes_result_set(res, "child", 5) == HERMES_OK ? 0 : 1;
}

/* The child's side of the test below: 0, or which check failed. */
static int child_computes_at_once(hermes_fn *fn)
{
    hermes_stats before, after;
    hermes_stats_get(h, &before, sizeof before);
    void *v;
    size_t n;
    if (hermes_call(fn, "k", 1, child_value, NULL, &v, &n) != HERMES_OK)
        return 1;
    int ok = n == 5 && memcmp(v, "child", 5) == 0;
    hermes_free(v);
    if (!ok)
        return 2;
    hermes_stats_get(h, &after, sizeof after);
    if (after.lock_contended != before.lock_contended)
        return 3; /* it found the parent thread's lock held */
    if (after.computations != before.computations + 1)
        return 4;
    return 0;
}

/*
 * The dict is private to the process: a fork child gets a copy of it with
 * the locks the parent's threads held, which nobody in the child will
 * release.  A child calling for an entry whose lock a parent thread holds
 * takes a lock of its own at once (core/fork.c) instead of waiting
 * lock_wait_ms for one that is never released.
 */
static void fork_child_takes_its_own_lock_in_a_private_store(void **s)
{
    (void)s;
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "held", NULL, &fn), HERMES_OK);
    gate g = {.hold = 1};
    caller c = {fn, &g, "", HERMES_OK};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_gated, &c), 0);
    uint64_t deadline = now_ms() + 30000;
    while (atomic_load(&g.computing) == 0 && now_ms() < deadline)
        pause_briefly();
    assert_int_equal(atomic_load(&g.computing), 1); /* it holds the lock */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_computes_at_once(fn));
    int status = 0;
    int waited = cw_wait("fork", pid, CW_TIMEOUT_MS, &status);
    atomic_store(&g.hold, 0);
    pthread_join(t, NULL);
    assert_int_equal(waited, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(c.rc, HERMES_OK);
    assert_string_equal(c.value, "g0");
}
#endif

/*
 * Readers keep hitting a tagged entry (and so keep refreshing the tag
 * versions a private store's function remembers) while one thread moves
 * the data on, cleans the tag and calls: every call it makes after its
 * clean returned must see the data of that generation or a later one,
 * never a value cached before the clean.
 */
#define MEMO_ROUNDS 300
#define MEMO_READERS 3

static atomic_long memo_gen;
static atomic_bool memo_stop;

static int compute_gen(void *arg, hermes_result *res)
{
    (void)arg;
    long g = atomic_load(&memo_gen);
    return hermes_result_set(res, &g, sizeof g) == HERMES_OK ? 0 : 1;
}

static long call_gen(hermes_fn *fn)
{
    void *v;
    size_t n;
    long g = -1;
    if (hermes_call(fn, "k", 1, compute_gen, NULL, &v, &n) == HERMES_OK &&
        n == sizeof g)
        memcpy(&g, v, sizeof g);
    hermes_free(v);
    return g;
}

static void *memo_reader(void *arg)
{
    while (!atomic_load(&memo_stop))
        call_gen(arg);
    return NULL;
}

static void no_hit_after_clean_serves_an_older_value(void **s)
{
    (void)s;
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("d", "e"));
    assert_int_equal(hermes_fn_register(h, "memo", &o, &fn), HERMES_OK);
    atomic_store(&memo_gen, 0);
    atomic_store(&memo_stop, false);
    pthread_t th[MEMO_READERS];
    for (int i = 0; i < MEMO_READERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, memo_reader, fn), 0);
    int stale = 0;
    for (long g = 1; g <= MEMO_ROUNDS; g++) {
        atomic_store(&memo_gen, g);
        assert_int_equal(hermes_clean(h, HERMES_TAGS(g % 2 ? "d" : "e")),
                         HERMES_OK);
        for (int k = 0; k < 3; k++)
            stale += call_gen(fn) < g;
    }
    atomic_store(&memo_stop, true);
    for (int i = 0; i < MEMO_READERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(stale, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    /* The flight tests use the mock backend in both builds; the fork test
     * runs on the dict, or on redis in the CONC_REDIS build, or on two
     * memcached servers in the CONC_MEMCACHED build. */
    const struct CMUnitTest tests[] = {
        T(caller_after_clean_does_not_share_an_older_computation),
        T(caller_after_clean_does_not_share_a_computation_on_new_tags),
        T(callers_with_the_same_versions_share_one_computation),
        T(no_hit_after_clean_serves_an_older_value),
        cmocka_unit_test_setup_teardown(fork_under_eight_busy_threads,
                                        setup_defaults, teardown),
#if !defined(CONC_REDIS) && !defined(CONC_REDIS_CLUSTER) &&                    \
    !defined(CONC_MEMCACHED)
        cmocka_unit_test_setup_teardown(
            fork_child_takes_its_own_lock_in_a_private_store, setup_defaults,
            teardown),
#endif
    };
#ifdef CONC_REDIS
    if (redis_server_start(&server) != 0)
        return 1;
#endif
#ifdef CONC_REDIS_CLUSTER
    if (redis_cluster_start(&cluster) != 0)
        return 1;
#endif
#ifdef CONC_MEMCACHED
    if (memcached_server_start(&mc_servers[0]) != 0 ||
        memcached_server_start(&mc_servers[1]) != 0)
        return 1;
#endif
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
#ifdef CONC_REDIS
    redis_server_stop(&server);
#endif
#ifdef CONC_REDIS_CLUSTER
    redis_cluster_stop(&cluster);
#endif
#ifdef CONC_MEMCACHED
    memcached_server_stop(&mc_servers[0]);
    memcached_server_stop(&mc_servers[1]);
#endif
    return failed;
}
