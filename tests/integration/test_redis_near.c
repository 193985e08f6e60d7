/*
 * The redis plugin's near cache (near_cache = yes) against a private
 * redis-server: hits answered without the server, invalidation by other
 * clients, own writes, server flushes, a randomized two-process oracle,
 * and faults (the invalidation connection killed, the data connections
 * killed, the server killed and restarted, the server SIGSTOPped), fork.
 * The plugin is driven through hermes_backend_entry(), as the loader
 * would; every wait is on a condition with a deadline.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

#include <hermes/backend.h>

#include "../support/child_wait.h"
#include "test_host.h"
#include "near_impl.h"
#include "redis_server.h"

const hermes_backend *hermes_backend_entry(void);

/* The fork test's child starts the near cache's reader thread, which
 * ThreadSanitizer refuses after a multi-threaded fork unless told. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}

static const hermes_backend *be;
static redis_server server;
static char port[16];
static char pfx[32]; /* near_prefix: "nt<pid>" */

/* Every deadline of a wait; generous, as the sanitizer trees are slow. */
#define DEADLINE_MS 10000

/* ---------------------------------------------------------------- host */

static atomic_int prefix_warnings; /* "outside near_prefix" lines */

static void host_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (strstr(msg, "outside near_prefix"))
        atomic_fetch_add(&prefix_warnings, 1);
    if (getenv("HERMES_TEST_VERBOSE"))
        fprintf(stderr, "plugin log [%d]: %s\n", level, msg);
}

static const hermes_host host = TEST_HOST(host_log);

/* ------------------------------------------------------------- helpers */

static uint64_t now_ms(void)
{
    return test_clock_ns(CLOCK_MONOTONIC) / 1000000u;
}

static void pause_1ms(void)
{
    struct timespec ts = {0, 1000000L};

    nanosleep(&ts, NULL);
}

/* Opens a plugin state with the near cache on, fast failure detection. */
static void *open_near(int near)
{
    hermes_kv kv[] = {
        {"port", port, 1},
        {"near_cache", near ? "yes" : "no", 2},
        {"near_prefix", pfx, 3},
        {"near_ping_ms", "50", 4},
        {"command_timeout_ms", "300", 5},
        {"connect_timeout_ms", "200", 6},
    };
    hermes_open_error err;
    void *st = NULL;

    if (be->open(&host, kv, sizeof kv / sizeof kv[0], &st, &err) !=
        HERMES_BE_OK)
        fail_msg("open: %s", err.msg);
    return st;
}

typedef struct stat_find {
    const char *name;
    long long value;
} stat_find;

static void stat_cb(void *arg, const char *name, const char *value)
{
    stat_find *f = arg;

    if (strcmp(name, f->name) == 0)
        f->value = atoll(value);
}

/* One counter of stats() (the near ones come first, even with the server
 * down); -1 when absent. */
static long long stat_of(void *st, const char *name)
{
    stat_find f = {name, -1};

    be->stats(st, stat_cb, &f);
    return f.value;
}

static void print_cb(void *arg, const char *name, const char *value)
{
    (void)arg;
    if (strncmp(name, "near_", 5) == 0)
        fprintf(stderr, "%s=%s ", name, value);
}

/* Waits until expr holds, failing the test after DEADLINE_MS. */
#define WAIT_UNTIL(expr, what)                                                 \
    do {                                                                       \
        uint64_t until_ = now_ms() + DEADLINE_MS;                              \
        while (!(expr)) {                                                      \
            if (now_ms() > until_)                                             \
                fail_msg("timed out waiting for %s", what);                    \
            if (getenv("NEAR_DEBUG"))                                          \
                be->stats(st, print_cb, NULL), fprintf(stderr, "\n");          \
            pause_1ms();                                                       \
        }                                                                      \
    } while (0)

static void key_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s:entry:%s", pfx, name);
}

typedef struct got1 {
    char v[64];
    int found;
} got1;

static void got_cb(void *arg, size_t i, const void *v, size_t len)
{
    got1 *g = arg;

    (void)i;
    g->found = 1;
    snprintf(g->v, sizeof g->v, "%.*s", (int)len, (const char *)v);
}

/* get() of one key: "" when absent, NULL on an error. */
static const char *get1(void *st, const char *key, got1 *g)
{
    hermes_bytes k = {key, strlen(key)};

    memset(g, 0, sizeof *g);
    if (be->get(st, &k, 1, got_cb, g) != HERMES_BE_OK)
        return NULL;
    return g->v;
}

static int set1(void *st, const char *key, const char *v)
{
    hermes_item it = {{key, strlen(key)}, {v, strlen(v)}, 0, 0};

    return be->set(st, &it, 1, NULL, NULL);
}

static int get_is(void *st, const char *key, const char *want)
{
    got1 g;
    const char *v = get1(st, key, &g);

    return v && strcmp(v, want) == 0;
}

static redisContext *raw(void)
{
    redisContext *r = redisConnect("127.0.0.1", server.port);

    assert_non_null(r);
    assert_int_equal(r->err, 0);
    return r;
}

static void raw_cmd(const char *fmt, ...)
{
    redisContext *r = raw();
    va_list ap;

    va_start(ap, fmt);
    redisReply *rep = redisvCommand(r, fmt, ap);
    va_end(ap);
    assert_non_null(rep);
    freeReplyObject(rep);
    redisFree(r);
}

/* Reads key until the near cache answers it: tracking is up and the key
 * is held.  Returns with the value held. */
static void hold(void *st, const char *key)
{
    got1 g;

    /* The first read starts the reader. */
    WAIT_UNTIL((get1(st, key, &g), stat_of(st, "near_tracking") == 1) &&
                   (get1(st, key, &g), stat_of(st, "near_entries") > 0),
               "tracking and a filled entry");
    long long h0 = stat_of(st, "near_hits");
    WAIT_UNTIL((get1(st, key, &g), stat_of(st, "near_hits") > h0),
               "a near hit");
}

/* --------------------------------------------------------------- tests */

static void hit_is_answered_without_the_server(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];
    got1 g;

    key_of(k, sizeof k, "hit");
    assert_int_equal(set1(st, k, "v1"), HERMES_BE_OK);
    hold(st, k);
    long long c0 = stat_of(st, "commands"), h0 = stat_of(st, "near_hits");
    /* stat_of() itself sends INFO: one command per call. */
    for (int i = 0; i < 100; i++)
        assert_string_equal(get1(st, k, &g), "v1");
    assert_int_equal(stat_of(st, "near_hits"), h0 + 100);
    assert_int_equal(stat_of(st, "commands"), c0 + 3);
    be->close(st);
}

static void another_clients_write_evicts(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];

    key_of(k, sizeof k, "other");
    assert_int_equal(set1(st, k, "old"), HERMES_BE_OK);
    hold(st, k);
    long long i0 = stat_of(st, "near_invalidations");
    raw_cmd("SET %s new", k);
    WAIT_UNTIL(get_is(st, k, "new"), "the other client's value");
    assert_true(stat_of(st, "near_invalidations") > i0);
    raw_cmd("DEL %s", k);
    WAIT_UNTIL(get_is(st, k, ""), "the other client's delete");
    be->close(st);
}

static void own_writes_are_read_back_at_once(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];
    hermes_bytes kb;

    key_of(k, sizeof k, "own");
    assert_int_equal(set1(st, k, "a"), HERMES_BE_OK);
    hold(st, k);
    for (int i = 0; i < 50; i++) {
        char v[16];

        snprintf(v, sizeof v, "a%d", i);
        assert_int_equal(set1(st, k, v), HERMES_BE_OK);
        assert_true(get_is(st, k, v));
    }
    kb = (hermes_bytes){k, strlen(k)};
    assert_int_equal(be->del(st, &kb, 1), HERMES_BE_OK);
    assert_true(get_is(st, k, ""));
    be->close(st);
}

static void server_flush_empties_the_near_cache(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];

    key_of(k, sizeof k, "flush");
    assert_int_equal(set1(st, k, "x"), HERMES_BE_OK);
    hold(st, k);
    long long f0 = stat_of(st, "near_drops_server_flush");
    raw_cmd("FLUSHDB");
    WAIT_UNTIL(stat_of(st, "near_drops_server_flush") > f0, "the flush");
    assert_true(get_is(st, k, ""));
    be->close(st);
}

static void keys_outside_the_prefix_are_not_held(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];
    got1 g;

    snprintf(k, sizeof k, "%s:lock:x", pfx);
    assert_int_equal(set1(st, k, "x"), HERMES_BE_OK);
    WAIT_UNTIL((get1(st, k, &g), stat_of(st, "near_tracking") == 1),
               "tracking");
    long long h0 = stat_of(st, "near_hits"), b0 = stat_of(st, "near_bypass");
    for (int i = 0; i < 10; i++)
        assert_true(get_is(st, k, "x"));
    assert_int_equal(stat_of(st, "near_hits"), h0);
    assert_int_equal(stat_of(st, "near_bypass"), b0 + 10);
    be->close(st);
}

static void a_prefix_mismatch_is_logged_once(void **state)
{
    (void)state;
    void *st = open_near(1);
    got1 g;
    int w0 = atomic_load(&prefix_warnings);

    /* An entry of another prefix (the [hermes] prefix not near_prefix). */
    WAIT_UNTIL(
        (get1(st, "otherapp:entry:x", &g), stat_of(st, "near_tracking") == 1),
        "tracking");
    for (int i = 0; i < 5; i++)
        assert_non_null(get1(st, "otherapp:tag:y", &g));
    assert_int_equal(atomic_load(&prefix_warnings), w0 + 1);
    be->close(st);
}

static void bad_near_settings_are_refused(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"near_cache", "maybe"},      {"near_cache_bytes", "1"},
        {"near_ping_ms", "0"},        {"near_prefix", ""},
        {"near_max_item_bytes", "x"}, {"near_colour", "red"},
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hermes_kv kv[1] = {{bad[i][0], bad[i][1], 1}};
        hermes_open_error err;
        void *st = NULL;

        assert_int_equal(be->open(&host, kv, 1, &st, &err), HERMES_BE_INVALID);
        assert_int_equal(err.kv_index, 0);
        assert_non_null(strstr(err.msg, "near_"));
    }
}

/* An observer that holds the reader at one key's invalidation until the
 * test lets it go: the message has arrived but is not yet applied. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static char gate_key[64];
static int gate_held, gate_open;

static void gate_observer(const char *key, size_t len, int evicted)
{
    pthread_mutex_lock(&gate_mu);
    if (!evicted && strlen(gate_key) == len &&
        memcmp(key, gate_key, len) == 0) {
        gate_held = 1;
        pthread_cond_broadcast(&gate_cv);
        while (!gate_open)
            pthread_cond_wait(&gate_cv, &gate_mu);
    }
    pthread_mutex_unlock(&gate_mu);
}

static int gate_is_held(void)
{
    pthread_mutex_lock(&gate_mu);
    int held = gate_held;
    pthread_mutex_unlock(&gate_mu);
    return held;
}

static void gate_release(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/*
 * A held key changed by another client while its invalidation is still
 * unapplied: a read that goes to the server for another key of its batch
 * sees the new value, and from then on the process never reads the old
 * one from its near cache, though the message has not been applied yet.
 */
static void a_reply_that_contradicts_a_held_key_evicts_it(void **state)
{
    (void)state;
    char k1[64], k2[64];
    hermes_bytes both[2];
    got1 g;

    /* Set before the reader starts, as the seam asks. */
    gate_key[0] = '\0';
    gate_held = gate_open = 0;
    rnear_observer = gate_observer;
    void *st = open_near(1);
    key_of(k1, sizeof k1, "held");
    key_of(k2, sizeof k2, "notheld");
    assert_int_equal(set1(st, k1, "old"), HERMES_BE_OK);
    hold(st, k1);
    pthread_mutex_lock(&gate_mu);
    snprintf(gate_key, sizeof gate_key, "%s", k1);
    pthread_mutex_unlock(&gate_mu);
    raw_cmd("SET %s new", k1);
    WAIT_UNTIL(gate_is_held(), "the invalidation to arrive");
    /* Still held: the message is not applied. */
    assert_true(get_is(st, k1, "old"));
    long long c0 = stat_of(st, "near_contradicted");
    both[0] = (hermes_bytes){k1, strlen(k1)};
    both[1] = (hermes_bytes){k2, strlen(k2)};
    memset(&g, 0, sizeof g);
    assert_int_equal(be->get(st, both, 2, got_cb, &g), HERMES_BE_OK);
    assert_int_equal(stat_of(st, "near_contradicted"), c0 + 1);
    assert_true(get_is(st, k1, "new"));
    gate_release();
    be->close(st);
    rnear_observer = NULL;
}

static void near_cache_with_cluster_is_refused(void **state)
{
    (void)state;
    hermes_kv kv[2] = {{"cluster", "127.0.0.1:7000", 1},
                       {"near_cache", "yes", 2}};
    hermes_open_error err;
    void *st = NULL;

    assert_int_equal(be->open(&host, kv, 2, &st, &err), HERMES_BE_INVALID);
    assert_int_equal(err.kv_index, 1);
    assert_non_null(strstr(err.msg, "not supported with cluster"));
}

/* ---------------------------------------------- randomized oracle */

/*
 * A writer process overwrites random keys with increasing versions
 * ("<version>") and, once each SET has returned, publishes that version
 * in shared memory (acked).  The reader's observer notes the acked
 * version of key k just before its near cache evicts k for an
 * invalidation, and raises floor[k] to it just after: that write was
 * applied before the eviction, so a read that starts once floor[k] is
 * raised (its placeholder, if any, comes after the eviction, and so does
 * its request) must return at least floor[k]; any less is a stale value
 * served after its invalidation had been delivered.
 */
#define ORACLE_KEYS 64
#define ORACLE_WRITES 20000
#define ORACLE_READERS 4

typedef struct oracle_shm {
    _Atomic uint64_t acked[ORACLE_KEYS];   /* version whose SET returned */
    _Atomic uint64_t started[ORACLE_KEYS]; /* highest version sent */
    atomic_int done;
} oracle_shm;

static oracle_shm *shm;
static _Atomic uint64_t floor_of[ORACLE_KEYS];
static atomic_long stale_reads, future_reads, oracle_reads;
static void *oracle_st;

static int key_index(const char *key, size_t len)
{
    char tail[16];
    size_t plen = strlen(pfx) + strlen(":entry:o");

    if (len <= plen || len - plen >= sizeof tail ||
        strncmp(key + strlen(pfx), ":entry:o", 8) != 0)
        return -1;
    memcpy(tail, key + plen, len - plen);
    tail[len - plen] = '\0';
    return atoi(tail);
}

/* Runs on the reader thread only: before the eviction it notes the acked
 * version, after it publishes that as the floor. */
static uint64_t snap_of[ORACLE_KEYS];

static void oracle_observer(const char *key, size_t len, int evicted)
{
    int k = key_index(key, len);

    if (k < 0 || k >= ORACLE_KEYS)
        return;
    if (!evicted) {
        snap_of[k] = atomic_load(&shm->acked[k]);
        return;
    }
    uint64_t a = snap_of[k];
    uint64_t f = atomic_load(&floor_of[k]);
    while (a > f && !atomic_compare_exchange_weak(&floor_of[k], &f, a))
        ;
}

static void *oracle_reader(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;

    while (!atomic_load(&shm->done)) {
        int k = (int)(rand_r(&seed) % ORACLE_KEYS);
        char key[64], name[16];
        got1 g;

        snprintf(name, sizeof name, "o%d", k);
        key_of(key, sizeof key, name);
        uint64_t f = atomic_load(&floor_of[k]);
        const char *v = get1(oracle_st, key, &g);
        uint64_t top = atomic_load(&shm->started[k]);
        if (!v)
            continue; /* a failed read serves nothing */
        uint64_t r = *v ? strtoull(v, NULL, 10) : 0;
        if (r < f)
            atomic_fetch_add(&stale_reads, 1);
        if (r > top)
            atomic_fetch_add(&future_reads, 1);
        atomic_fetch_add(&oracle_reads, 1);
    }
    return NULL;
}

static void oracle_writer(void)
{
    redisContext *r = raw();
    unsigned seed = (unsigned)getpid();
    uint64_t version = 0;

    for (int i = 0; i < ORACLE_WRITES; i++) {
        int k = (int)(rand_r(&seed) % ORACLE_KEYS);
        char key[64], name[16];

        snprintf(name, sizeof name, "o%d", k);
        key_of(key, sizeof key, name);
        version++;
        atomic_store(&shm->started[k], version);
        redisReply *rep =
            redisCommand(r, "SET %s %llu", key, (unsigned long long)version);
        if (!rep)
            _exit(2);
        freeReplyObject(rep);
        atomic_store(&shm->acked[k], version);
    }
    redisFree(r);
    _exit(0);
}

static void oracle_finds_no_stale_read_after_its_invalidation(void **state)
{
    (void)state;
    pthread_t t[ORACLE_READERS];
    int status;

    shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(shm != MAP_FAILED);
    memset(shm, 0, sizeof *shm);
    rnear_observer = oracle_observer;
    oracle_st = open_near(1);
    char k0[64];
    key_of(k0, sizeof k0, "o0");
    hold(oracle_st, k0);

    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0)
        oracle_writer();
    for (int i = 0; i < ORACLE_READERS; i++)
        pthread_create(&t[i], NULL, oracle_reader, (void *)(uintptr_t)(i + 1));
    assert_int_equal(cw_wait("redis_near", kid, CW_TIMEOUT_MS, &status), 0);
    atomic_store(&shm->done, 1);
    for (int i = 0; i < ORACLE_READERS; i++)
        pthread_join(t[i], NULL);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    long long hits = stat_of(oracle_st, "near_hits");
    long long inv = stat_of(oracle_st, "near_invalidations");
    long long refused = stat_of(oracle_st, "near_fills_refused");
    print_message("oracle: %ld reads (%lld near hits), %d writes, %lld "
                  "invalidations, %lld fills refused in flight, %ld stale, "
                  "%ld from the future\n",
                  atomic_load(&oracle_reads), hits, ORACLE_WRITES, inv, refused,
                  atomic_load(&stale_reads), atomic_load(&future_reads));
    assert_int_equal(atomic_load(&stale_reads), 0);
    assert_int_equal(atomic_load(&future_reads), 0);
    /* The test means something only if the near cache answered. */
    assert_true(hits > 1000);
    assert_true(inv > ORACLE_WRITES / 10);
    be->close(oracle_st);
    rnear_observer = NULL;
    munmap(shm, sizeof *shm);
}

/* ------------------------------------------------------------ faults */

static void killed_invalidation_connection_drops_it(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];

    key_of(k, sizeof k, "killinv");
    assert_int_equal(set1(st, k, "old"), HERMES_BE_OK);
    hold(st, k);
    long long d0 = stat_of(st, "near_drops_connection");
    raw_cmd("CLIENT KILL TYPE pubsub");
    raw_cmd("SET %s new", k);
    WAIT_UNTIL(stat_of(st, "near_drops_connection") > d0, "the drop");
    /* Detected: the very next read must not be the old value. */
    assert_true(get_is(st, k, "new"));
    /* And caching resumes by itself. */
    hold(st, k);
    be->close(st);
}

static void killed_data_connections_leave_it_right(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];

    key_of(k, sizeof k, "killdata");
    assert_int_equal(set1(st, k, "old"), HERMES_BE_OK);
    hold(st, k);
    /* Every normal client but this one: the pool's data connections
     * (the invalidation connection is of type pubsub). */
    raw_cmd("CLIENT KILL TYPE normal SKIPME yes");
    raw_cmd("SET %s new", k);
    WAIT_UNTIL(get_is(st, k, "new"), "the new value");
    hold(st, k);
    assert_true(get_is(st, k, "new"));
    be->close(st);
}

static void restarted_server_drops_it(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];

    key_of(k, sizeof k, "restart");
    assert_int_equal(set1(st, k, "old"), HERMES_BE_OK);
    hold(st, k);
    long long d0 = stat_of(st, "near_drops_connection");
    redis_server_kill(&server);
    assert_int_equal(redis_server_restart(&server), 0);
    WAIT_UNTIL(stat_of(st, "near_drops_connection") > d0, "the drop");
    /* The restarted server is empty: the old value must not come back. */
    got1 g;
    const char *v = get1(st, k, &g);
    assert_true(v == NULL || strcmp(v, "") == 0);
    WAIT_UNTIL(set1(st, k, "after") == HERMES_BE_OK, "the server back");
    hold(st, k);
    assert_true(get_is(st, k, "after"));
    be->close(st);
}

static void stopped_server_drops_it_by_heartbeat(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];

    key_of(k, sizeof k, "sigstop");
    assert_int_equal(set1(st, k, "old"), HERMES_BE_OK);
    hold(st, k);
    long long d0 = stat_of(st, "near_drops_heartbeat");
    kill(server.pid, SIGSTOP);
    WAIT_UNTIL(stat_of(st, "near_drops_heartbeat") > d0, "the heartbeat");
    assert_int_equal(stat_of(st, "near_tracking"), 0);
    kill(server.pid, SIGCONT);
    raw_cmd("SET %s new", k);
    WAIT_UNTIL(get_is(st, k, "new"), "the new value");
    hold(st, k);
    be->close(st);
}

static void fork_child_starts_empty(void **state)
{
    (void)state;
    void *st = open_near(1);
    char k[64];
    int status;

    key_of(k, sizeof k, "fork");
    assert_int_equal(set1(st, k, "v"), HERMES_BE_OK);
    hold(st, k);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        got1 g;
        long long h0 = stat_of(st, "near_hits");
        const char *v = get1(st, k, &g);
        int ok = v && strcmp(v, "v") == 0 && stat_of(st, "near_hits") == h0 &&
                 stat_of(st, "near_drops_fork") == 1;
        /* Its own connection: tracking comes back, hits resume. */
        uint64_t until = now_ms() + DEADLINE_MS;
        while (ok && stat_of(st, "near_hits") == h0 && now_ms() < until) {
            get1(st, k, &g);
            pause_1ms();
        }
        ok = ok && stat_of(st, "near_hits") > h0;
        be->close(st);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(cw_wait("redis_near", kid, CW_TIMEOUT_MS, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's near cache is untouched by the child. */
    long long h0 = stat_of(st, "near_hits");
    assert_true(get_is(st, k, "v"));
    assert_int_equal(stat_of(st, "near_hits"), h0 + 1);
    be->close(st);
}

static int setup(void **state)
{
    (void)state;
    be = hermes_backend_entry();
    if (redis_server_start(&server) != 0)
        return -1;
    snprintf(port, sizeof port, "%d", server.port);
    snprintf(pfx, sizeof pfx, "nt%d", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redis_server_stop(&server);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hit_is_answered_without_the_server),
        cmocka_unit_test(another_clients_write_evicts),
        cmocka_unit_test(own_writes_are_read_back_at_once),
        cmocka_unit_test(server_flush_empties_the_near_cache),
        cmocka_unit_test(keys_outside_the_prefix_are_not_held),
        cmocka_unit_test(a_prefix_mismatch_is_logged_once),
        cmocka_unit_test(bad_near_settings_are_refused),
        cmocka_unit_test(near_cache_with_cluster_is_refused),
        cmocka_unit_test(a_reply_that_contradicts_a_held_key_evicts_it),
        cmocka_unit_test(oracle_finds_no_stale_read_after_its_invalidation),
        cmocka_unit_test(killed_invalidation_connection_drops_it),
        cmocka_unit_test(killed_data_connections_leave_it_right),
        cmocka_unit_test(restarted_server_drops_it),
        cmocka_unit_test(stopped_server_drops_it_by_heartbeat),
        cmocka_unit_test(fork_child_starts_empty),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
