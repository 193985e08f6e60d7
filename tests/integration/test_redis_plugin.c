/*
 * Integration tests of the redis backend plugin against real, private
 * redis-server processes (tests/support/redis_server.h).  The plugin's
 * sources are compiled into this binary; the tests reach its operations
 * through hermes_backend_entry(), as the loader would, with a small fake
 * host.  A second, raw hiredis connection checks what the server saw
 * (INFO commandstats) and sets up foreign keys.
 *
 * One behaviour per test.  Set HERMES_TEST_VERBOSE=1 to see the plugin's
 * log on stderr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hermes/backend.h>
#include <hermes/version.h>
#include <hiredis/hiredis.h>

#include "../support/child_wait.h"
#include "../support/test_host.h"
#include "../support/fake_redis.h"
#include "../support/redis_server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Defined by HERMES_BACKEND_DEFINE in plugins/redis/redis.c. */
const hermes_backend *hermes_backend_entry(void);

static const hermes_backend *be;
static redis_server g_srv;   /* shared by most tests, emptied before each */
static redis_server g_extra; /* a test's private server, stopped after it */
static char g_port[16];

/* ------------------------------------------------------------ fake host */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];

static void host_log(void *ctx, int level, const char *msg)
{
    size_t used;

    (void)ctx;
    pthread_mutex_lock(&log_mu);
    used = strlen(log_text);
    if (used + strlen(msg) + 2 < sizeof log_text)
        snprintf(log_text + used, sizeof log_text - used, "%s\n", msg);
    pthread_mutex_unlock(&log_mu);
    if (getenv("HERMES_TEST_VERBOSE"))
        fprintf(stderr, "plugin log [%d]: %s\n", level, msg);
}

static int log_contains(const char *s)
{
    int found;

    pthread_mutex_lock(&log_mu);
    found = strstr(log_text, s) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

static const hermes_host host = TEST_HOST(host_log);

/* ------------------------------------------------------------- helpers */

static uint64_t now_ms(void)
{
    return test_clock_ns(CLOCK_MONOTONIC) / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static hermes_bytes B(const char *s)
{
    hermes_bytes b = {s, strlen(s)};

    return b;
}

/* Open a plugin state from "key", "value", ... pairs; fails the test if
 * open() refuses. */
static void *open_pairs(const char *const *pairs)
{
    hermes_kv kv[16];
    hermes_open_error err;
    void *st = NULL;
    size_t n = 0;
    int rc;

    for (; pairs[0]; pairs += 2) {
        kv[n].key = pairs[0];
        kv[n].value = pairs[1];
        kv[n].line = (int)n + 1;
        n++;
    }
    rc = be->open(&host, kv, n, &st, &err);
    if (rc != HERMES_BE_OK)
        fail_msg("open failed (%d): %s", rc, err.msg);
    assert_non_null(st);
    return st;
}

#define OPEN(...) open_pairs((const char *const[]){__VA_ARGS__, NULL})

/* Values collected from a hermes_value_cb. */
#define MAXGOT 64
typedef struct got {
    int hits[MAXGOT];
    char *val[MAXGOT];
    size_t len[MAXGOT];
} got;

static void got_cb(void *arg, size_t i, const void *v, size_t len)
{
    got *g = arg;

    if (i >= MAXGOT)
        return;
    g->hits[i]++;
    free(g->val[i]);
    g->val[i] = malloc(len + 1);
    memcpy(g->val[i], v, len);
    g->val[i][len] = '\0';
    g->len[i] = len;
}

static void got_free(got *g)
{
    size_t i;

    for (i = 0; i < MAXGOT; i++)
        free(g->val[i]);
    memset(g, 0, sizeof *g);
}

static void set1(void *st, const char *key, const char *val, uint32_t ttl)
{
    hermes_item it = {B(key), B(val), ttl, 0};

    assert_int_equal(be->set(st, &it, 1, NULL, NULL), HERMES_BE_OK);
}

/* The value of key as a string, or NULL when missing. Caller frees. */
static char *get1(void *st, const char *key)
{
    hermes_bytes k = B(key);
    got g = {0};
    char *v;

    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_OK);
    v = g.val[0];
    g.val[0] = NULL;
    got_free(&g);
    return v;
}

static void assert_value(void *st, const char *key, const char *want)
{
    char *v = get1(st, key);

    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

static void assert_missing(void *st, const char *key)
{
    char *v = get1(st, key);

    assert_null(v);
}

static redisContext *raw_connect(int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisSetTimeout(c, tv);
    return c;
}

static long long raw_integer(redisContext *c, const char *fmt, ...)
{
    redisReply *r;
    long long v;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    v = r->integer;
    freeReplyObject(r);
    return v;
}

static void raw_ok(redisContext *c, const char *fmt, ...)
{
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", fmt, r->str);
    freeReplyObject(r);
}

/* What the server has counted, from one INFO call. */
typedef struct snap {
    long long total; /* calls of all commands */
    long long info, mget, set, get, scan, flushdb, eval, evalsha;
    long long reads; /* read events on client sockets */
} snap;

static snap take_snap(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO commandstats stats");
    snap s = {0};
    char *text, *line, *save = NULL;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    text = strdup(r->str);
    freeReplyObject(r);
    for (line = strtok_r(text, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        char name[64];
        long long calls;

        if (sscanf(line, "cmdstat_%63[^:]:calls=%lld", name, &calls) == 2) {
            s.total += calls;
            if (strcmp(name, "info") == 0)
                s.info = calls;
            else if (strcmp(name, "mget") == 0)
                s.mget = calls;
            else if (strcmp(name, "set") == 0)
                s.set = calls;
            else if (strcmp(name, "get") == 0)
                s.get = calls;
            else if (strcmp(name, "scan") == 0)
                s.scan = calls;
            else if (strcmp(name, "flushdb") == 0)
                s.flushdb = calls;
            else if (strcmp(name, "eval") == 0)
                s.eval = calls;
            else if (strcmp(name, "evalsha") == 0)
                s.evalsha = calls;
        }
        sscanf(line, "total_reads_processed:%lld", &s.reads);
    }
    free(text);
    return s;
}

/* Read one of the plugin's stats as a number (-1 when absent). */
typedef struct statq {
    const char *name;
    long long value;
} statq;

static void stat_cb(void *arg, const char *name, const char *value)
{
    statq *q = arg;

    if (strcmp(name, q->name) == 0)
        q->value = atoll(value);
}

static long long plugin_stat(void *st, const char *name)
{
    statq q = {name, -1};

    be->stats(st, stat_cb, &q);
    return q.value;
}

/* Start g_extra (optionally with a password) and return its port text. */
static void start_extra(const char *requirepass, char *port, size_t size)
{
    memset(&g_extra, 0, sizeof g_extra);
    g_extra.requirepass = requirepass;
    if (redis_server_start(&g_extra) != 0)
        fail_msg("cannot start a private redis-server");
    snprintf(port, size, "%d", g_extra.port);
}

/* -------------------------------------------------------------- fixtures */

static int group_setup(void **state)
{
    (void)state;
    be = hermes_backend_entry();
    if (redis_server_start(&g_srv) != 0)
        return -1;
    snprintf(g_port, sizeof g_port, "%d", g_srv.port);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    redis_server_stop(&g_srv);
    return 0;
}

static int test_setup(void **state)
{
    redisContext *c = raw_connect(g_srv.port);

    (void)state;
    raw_ok(c, "FLUSHALL");
    raw_ok(c, "SCRIPT FLUSH");
    redisFree(c);
    pthread_mutex_lock(&log_mu);
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_mu);
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    redis_server_stop(&g_extra);
    memset(&g_extra, 0, sizeof g_extra);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void descriptor_declares_redis_and_its_caps(void **state)
{
    (void)state;
    assert_int_equal(be->abi_major, HERMES_BACKEND_ABI_MAJOR);
    assert_int_equal(be->abi_minor, HERMES_BACKEND_ABI_MINOR);
    assert_int_equal(be->struct_size, sizeof(hermes_backend));
    assert_string_equal(be->name, "redis");
    assert_string_equal(be->version, HERMES_VERSION);
    assert_int_equal(be->caps, HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN |
                                   HERMES_CAP_STATS | HERMES_CAP_SHARED);
    assert_int_equal(be->max_key_len, 0);
    assert_non_null(be->scan);
    assert_non_null(be->stats);
}

static void config_rejects_unknown_key_with_kv_index(void **state)
{
    hermes_kv kv[] = {{"host", "127.0.0.1", 1}, {"colour", "blue", 2}};
    hermes_open_error err;
    void *st = NULL;

    (void)state;
    assert_int_equal(be->open(&host, kv, 2, &st, &err), HERMES_BE_INVALID);
    assert_null(st);
    assert_int_equal(err.kv_index, 1);
    assert_non_null(strstr(err.msg, "colour"));
}

static void config_rejects_bad_values_with_kv_index(void **state)
{
    static const char *const bad[][2] = {
        {"port", "abc"},
        {"port", "0"},
        {"port", "65536"},
        {"db", "-1"},
        {"pool_size", "0"},
        {"connect_timeout_ms", "1s"},
        {"flushdb", "maybe"},
        {"command_timeout_ms", ""},
        {"host", ""},
        {"port", "99999999999999999999999"},
        {"max_value_bytes", "1"},
        {"max_value_bytes", "600m"},
        {"max_value_bytes", "k"},
        {"max_value_bytes", "-1m"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hermes_kv kv[] = {{"db", "1", 1}, {bad[i][0], bad[i][1], 2}};
        hermes_open_error err;
        void *st = NULL;

        assert_int_equal(be->open(&host, kv, 2, &st, &err), HERMES_BE_INVALID);
        assert_int_equal(err.kv_index, 1);
        assert_non_null(strstr(err.msg, bad[i][0]));
    }
}

static void config_errors_escape_control_bytes(void **state)
{
    static const char *const bad[][2] = {
        {"port", "1\x1b[2J"},
        {"flushdb", "yes\r\nno"},
        {"max_value_bytes", "\x1b]0;x\a"},
        {"socket", "/tmp/s\x1b"},
        {"host", "evil\r\nhost"},
        {"col\x1bour", "x"},
        {"db", "\x7f\\"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hermes_kv kv[] = {{bad[i][0], bad[i][1], 1}};
        hermes_open_error err;
        void *st = NULL;
        const char *c;

        assert_int_equal(be->open(&host, kv, 1, &st, &err), HERMES_BE_INVALID);
        for (c = err.msg; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                fail_msg("case %zu: raw byte 0x%02x in \"%s\"", i,
                         (unsigned char)*c, err.msg);
        assert_true(strstr(err.msg, "\\x1b") || strstr(err.msg, "\\x0d") ||
                    strstr(err.msg, "\\x7f"));
    }
}

static void open_with_server_down_succeeds_and_get_fails_fast(void **state)
{
    redis_server tmp = {0};
    char port[16];
    hermes_bytes k = B("k");
    got g = {0};
    uint64_t t0;
    void *st;
    int i;

    (void)state;
    /* A port where nobody listens: start a server and stop it again. */
    assert_int_equal(redis_server_start(&tmp), 0);
    snprintf(port, sizeof port, "%d", tmp.port);
    redis_server_stop(&tmp);

    st = OPEN("port", port, "connect_timeout_ms", "300");
    t0 = now_ms();
    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    assert_true(now_ms() - t0 < 1000);
    assert_true(log_contains("connect failed"));
    /* While backing off, calls fail without touching the network. */
    t0 = now_ms();
    for (i = 0; i < 1000; i++)
        assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    assert_true(now_ms() - t0 < 500);
    assert_true(plugin_stat(st, "connect_failures") < 30);
    assert_int_equal(g.hits[0], 0);
    be->close(st);
}

static void open_does_not_connect(void **state)
{
    redisContext *c = raw_connect(g_srv.port);
    snap a, b;
    void *st;

    (void)state;
    a = take_snap(c);
    st = OPEN("port", g_port, "db", "3", "password", "");
    b = take_snap(c);
    /* Only our own INFO ran in between. */
    assert_int_equal(b.total - a.total, 1);
    be->close(st);
    redisFree(c);
}

static void get_of_missing_key_reports_nothing(void **state)
{
    hermes_bytes keys[2] = {B("nope:1"), B("nope:2")};
    void *st = OPEN("port", g_port);
    got g = {0};

    (void)state;
    assert_int_equal(be->get(st, keys, 2, got_cb, &g), HERMES_BE_OK);
    assert_int_equal(g.hits[0], 0);
    assert_int_equal(g.hits[1], 0);
    assert_int_equal(be->get(st, keys, 0, got_cb, &g), HERMES_BE_OK);
    be->close(st);
}

static void set_get_binary_value_empty_value_and_1k_key(void **state)
{
    static const char bin[] = "a\0b\0\xff\r\n$-1\r\n";
    char longkey[1024];
    void *st = OPEN("port", g_port);
    hermes_item items[3];
    hermes_bytes keys[3];
    got g = {0};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof longkey; i++)
        longkey[i] = (char)(i * 7); /* includes NUL and CR LF bytes */
    items[0] = (hermes_item){{"bin\0key", 7}, {bin, sizeof bin}, 0, 0};
    items[1] = (hermes_item){B("empty"), {NULL, 0}, 0, 0};
    items[2] = (hermes_item){{longkey, sizeof longkey}, B("long"), 0, 0};
    for (i = 0; i < 3; i++)
        keys[i] = items[i].key;
    assert_int_equal(be->set(st, items, 3, NULL, NULL), HERMES_BE_OK);
    assert_int_equal(be->get(st, keys, 3, got_cb, &g), HERMES_BE_OK);
    assert_int_equal(g.hits[0], 1);
    assert_int_equal(g.len[0], sizeof bin);
    assert_memory_equal(g.val[0], bin, sizeof bin);
    assert_int_equal(g.hits[1], 1);
    assert_int_equal(g.len[1], 0);
    assert_int_equal(g.hits[2], 1);
    assert_string_equal(g.val[2], "long");
    /* "bin" without the NUL and the rest is another key. */
    assert_missing(st, "bin");
    got_free(&g);
    be->close(st);
}

static void batched_get_of_entry_and_tags_is_one_mget_round_trip(void **state)
{
    hermes_bytes keys[3] = {B("cache:entry:f:x"), B("cache:tag:a"),
                            B("cache:tag:b")};
    redisContext *c = raw_connect(g_srv.port);
    void *st = OPEN("port", g_port);
    got g = {0};
    snap a, b;

    (void)state;
    set1(st, "cache:entry:f:x", "record", 0);
    set1(st, "cache:tag:a", "va", 0);
    set1(st, "cache:tag:b", "vb", 0);
    a = take_snap(c);
    assert_int_equal(be->get(st, keys, 3, got_cb, &g), HERMES_BE_OK);
    b = take_snap(c);
    assert_int_equal(b.mget - a.mget, 1);
    /* Nothing but the MGET (and our INFO) ran... */
    assert_int_equal((b.total - a.total) - (b.info - a.info), 1);
    /* ...and the server read one request from the plugin besides the
     * INFO: one round trip. */
    assert_int_equal(b.reads - a.reads, 2);
    assert_string_equal(g.val[0], "record");
    assert_string_equal(g.val[1], "va");
    assert_string_equal(g.val[2], "vb");
    got_free(&g);
    be->close(st);
    redisFree(c);
}

static void set_batch_with_if_absent_is_one_round_trip(void **state)
{
    redisContext *c = raw_connect(g_srv.port);
    void *st = OPEN("port", g_port);
    hermes_item items[3] = {
        {B("cache:entry:f:y"), B("record"), 60000, 0},
        {B("cache:tag:a"), B("new-a"), 0, HERMES_SET_IF_ABSENT},
        {B("cache:tag:b"), B("new-b"), 0, HERMES_SET_IF_ABSENT},
    };
    got g = {0};
    snap a, b;

    (void)state;
    set1(st, "cache:tag:a", "old-a", 0);
    a = take_snap(c);
    assert_int_equal(be->set(st, items, 3, got_cb, &g), HERMES_BE_OK);
    b = take_snap(c);
    /* Each set-if-absent is one atomic SET NX GET (redis 7): three
     * commands in all, in one request besides our INFO. */
    assert_int_equal(b.set - a.set, 3);
    assert_int_equal(b.get - a.get, 0);
    assert_int_equal((b.total - a.total) - (b.info - a.info), 3);
    assert_int_equal(b.reads - a.reads, 2);
    /* No callback for the plain overwrite. */
    assert_int_equal(g.hits[0], 0);
    assert_string_equal(g.val[1], "old-a");
    assert_string_equal(g.val[2], "new-b");
    got_free(&g);
    be->close(st);
    redisFree(c);
}

static void set_if_absent_loser_receives_winners_value(void **state)
{
    void *st = OPEN("port", g_port);
    hermes_item first = {B("cache:tag:t"), B("winner"), 0,
                         HERMES_SET_IF_ABSENT};
    hermes_item second = {B("cache:tag:t"), B("loser"), 0,
                          HERMES_SET_IF_ABSENT};
    got g1 = {0}, g2 = {0};

    (void)state;
    assert_int_equal(be->set(st, &first, 1, got_cb, &g1), HERMES_BE_OK);
    assert_int_equal(be->set(st, &second, 1, got_cb, &g2), HERMES_BE_OK);
    assert_int_equal(g1.hits[0], 1);
    assert_string_equal(g1.val[0], "winner");
    assert_int_equal(g2.hits[0], 1);
    assert_string_equal(g2.val[0], "winner");
    assert_value(st, "cache:tag:t", "winner");
    /* A NULL callback is allowed. */
    assert_int_equal(be->set(st, &second, 1, NULL, NULL), HERMES_BE_OK);
    got_free(&g1);
    got_free(&g2);
    be->close(st);
}

#define RACERS 8
#define RACE_KEYS 20

typedef struct racer {
    void *st;
    pthread_barrier_t *go;
    int id;
    int rc;
    got g;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    hermes_item items[RACE_KEYS];
    char keys[RACE_KEYS][32], val[32];
    int i;

    snprintf(val, sizeof val, "version-of-%d", r->id);
    for (i = 0; i < RACE_KEYS; i++) {
        snprintf(keys[i], sizeof keys[i], "cache:tag:race%d", i);
        items[i] = (hermes_item){B(keys[i]), B(val), 0, HERMES_SET_IF_ABSENT};
    }
    pthread_barrier_wait(r->go);
    r->rc = be->set(r->st, items, RACE_KEYS, got_cb, &r->g);
    return NULL;
}

static void racing_set_if_absent_threads_agree(void **state)
{
    void *st = OPEN("port", g_port);
    pthread_t th[RACERS];
    racer rs[RACERS];
    pthread_barrier_t go;
    int t, i;

    (void)state;
    pthread_barrier_init(&go, NULL, RACERS);
    for (t = 0; t < RACERS; t++) {
        memset(&rs[t], 0, sizeof rs[t]);
        rs[t].st = st;
        rs[t].go = &go;
        rs[t].id = t;
        assert_int_equal(pthread_create(&th[t], NULL, race, &rs[t]), 0);
    }
    for (t = 0; t < RACERS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&go);
    for (i = 0; i < RACE_KEYS; i++) {
        char key[32], *stored;

        snprintf(key, sizeof key, "cache:tag:race%d", i);
        stored = get1(st, key);
        assert_non_null(stored);
        for (t = 0; t < RACERS; t++) {
            assert_int_equal(rs[t].rc, HERMES_BE_OK);
            assert_int_equal(rs[t].g.hits[i], 1);
            assert_string_equal(rs[t].g.val[i], stored);
        }
        free(stored);
    }
    for (t = 0; t < RACERS; t++)
        got_free(&rs[t].g);
    be->close(st);
}

static void ttl_expires_entry(void **state)
{
    void *st = OPEN("port", g_port);

    (void)state;
    set1(st, "short", "lived", 50);
    set1(st, "long", "lived", 0);
    assert_value(st, "short", "lived");
    sleep_ms(120);
    assert_missing(st, "short");
    assert_value(st, "long", "lived");
    be->close(st);
}

static void del_removes_a_batch(void **state)
{
    hermes_bytes keys[3] = {B("d1"), B("d2"), B("never-existed")};
    void *st = OPEN("port", g_port);

    (void)state;
    set1(st, "d1", "1", 0);
    set1(st, "d2", "2", 0);
    set1(st, "d3", "3", 0);
    assert_int_equal(be->del(st, keys, 3), HERMES_BE_OK);
    assert_missing(st, "d1");
    assert_missing(st, "d2");
    assert_value(st, "d3", "3");
    assert_int_equal(be->del(st, keys, 0), HERMES_BE_OK);
    be->close(st);
}

/* Sizes past redis's limits are refused before anything is sent, so these
 * lengths never reach memory: the data pointer is a short buffer. */
#define HUGE_LEN ((size_t)600 * 1024 * 1024)

static void overwrite_that_is_too_big_removes_the_old_value(void **state)
{
    void *st = OPEN("port", g_port);
    static const char tiny[] = "x";

    (void)state;
    set1(st, "ok", "OLD-OK", 0);
    set1(st, "big", "OLD-BIG", 0);
    hermes_item items[2] = {
        {B("ok"), B("NEW-OK"), 0, 0},
        {B("big"), {tiny, HUGE_LEN}, 0, 0},
    };
    assert_int_equal(be->set(st, items, 2, NULL, NULL), HERMES_BE_TOOBIG);
    assert_value(st, "ok", "NEW-OK"); /* the rest of the batch was stored */
    assert_missing(st, "big");        /* not left at its old value */
    be->close(st);
}

static void overwrite_refused_by_the_server_removes_the_old_value(void **state)
{
    void *st = OPEN("port", g_port);
    redisContext *c = raw_connect(g_srv.port);

    (void)state;
    set1(st, "k", "OLD", 0);
    /* With no memory to spare and no eviction, SET is refused (OOM) but
     * deletes are still allowed. */
    raw_ok(c, "CONFIG SET maxmemory-policy noeviction");
    raw_ok(c, "CONFIG SET maxmemory 1");
    hermes_item it = {B("k"), B("NEW"), 0, 0};
    int rc = be->set(st, &it, 1, NULL, NULL);
    raw_ok(c, "CONFIG SET maxmemory 0");
    redisFree(c);
    assert_int_not_equal(rc, HERMES_BE_OK);
    assert_missing(st, "k");
    be->close(st);
}

static void batch_longer_than_one_request_may_be_is_too_big(void **state)
{
    void *st = OPEN("port", g_port);
    static const char tiny[] = "x";
    hermes_bytes keys[3] = {
        {tiny, 200u << 20}, {tiny, 200u << 20}, {tiny, 200u << 20}};

    (void)state;
    assert_int_equal(be->get(st, keys, 3, got_cb, NULL), HERMES_BE_TOOBIG);
    assert_int_equal(be->del(st, keys, 3), HERMES_BE_TOOBIG);
    be->close(st);
}

static void flush_removes_only_keys_under_prefix(void **state)
{
    /* flushdb = yes must still not FLUSHDB for a non-empty prefix. */
    void *st = OPEN("port", g_port, "flushdb", "yes");
    redisContext *c = raw_connect(g_srv.port);

    (void)state;
    set1(st, "app:entry:1", "x", 0);
    set1(st, "app:tag:t", "x", 60000);
    set1(st, "app:lock:1", "x", 0);
    raw_ok(c, "SET other:app:1 keep");
    raw_ok(c, "SET ap keep");
    raw_ok(c, "SET App:1 keep");
    raw_ok(c, "HSET app:hash f v"); /* any type under the prefix goes */
    assert_int_equal(be->flush(st, B("app:")), HERMES_BE_OK);
    assert_int_equal(raw_integer(c, "DBSIZE"), 3);
    assert_int_equal(raw_integer(c, "EXISTS other:app:1 ap App:1"), 3);
    be->close(st);
    redisFree(c);
}

static void flush_escapes_glob_characters_in_prefix(void **state)
{
    void *st = OPEN("port", g_port);
    redisContext *c = raw_connect(g_srv.port);

    (void)state;
    raw_ok(c, "SET a*[b]?\\:1 go");
    raw_ok(c, "SET a*[b]?\\:2 go");
    raw_ok(c, "SET axbx\\:1 keep"); /* would match a*?\: unescaped */
    raw_ok(c, "SET ab?\\:1 keep");  /* would match [b] unescaped */
    raw_ok(c, "SET a*[b]?:1 keep"); /* would match \: unescaped */
    assert_int_equal(be->flush(st, B("a*[b]?\\:")), HERMES_BE_OK);
    assert_int_equal(raw_integer(c, "DBSIZE"), 3);
    be->close(st);
    redisFree(c);
}

static void flush_handles_more_keys_than_one_scan_batch(void **state)
{
    enum { N = 5000 };
    void *st = OPEN("port", g_port);
    redisContext *c = raw_connect(g_srv.port);
    hermes_item *items = calloc(N, sizeof *items);
    char(*keys)[24] = calloc(N, sizeof *keys);
    snap a, b;
    int i;

    (void)state;
    assert_non_null(items);
    assert_non_null(keys);
    for (i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "big:%d", i);
        items[i] = (hermes_item){B(keys[i]), B("v"), 0, 0};
    }
    assert_int_equal(be->set(st, items, N, NULL, NULL), HERMES_BE_OK);
    raw_ok(c, "SET keep:1 x");
    assert_int_equal(raw_integer(c, "DBSIZE"), N + 1);
    a = take_snap(c);
    assert_int_equal(be->flush(st, B("big:")), HERMES_BE_OK);
    b = take_snap(c);
    assert_true(b.scan - a.scan > 1);
    assert_int_equal(b.flushdb - a.flushdb, 0);
    assert_int_equal(raw_integer(c, "DBSIZE"), 1);
    free(items);
    free(keys);
    be->close(st);
    redisFree(c);
}

static void flush_of_empty_prefix_uses_flushdb_only_when_enabled(void **state)
{
    void *scan_st = OPEN("port", g_port);
    void *fdb_st = OPEN("port", g_port, "flushdb", "yes");
    redisContext *c = raw_connect(g_srv.port);
    snap a, b;

    (void)state;
    raw_ok(c, "MSET x 1 y 2");
    a = take_snap(c);
    assert_int_equal(be->flush(scan_st, B("")), HERMES_BE_OK);
    b = take_snap(c);
    assert_int_equal(b.flushdb - a.flushdb, 0);
    assert_int_equal(raw_integer(c, "DBSIZE"), 0);

    raw_ok(c, "MSET x 1 y 2");
    a = take_snap(c);
    assert_int_equal(be->flush(fdb_st, B("")), HERMES_BE_OK);
    b = take_snap(c);
    assert_int_equal(b.flushdb - a.flushdb, 1);
    assert_int_equal(raw_integer(c, "DBSIZE"), 0);
    be->close(scan_st);
    be->close(fdb_st);
    redisFree(c);
}

static void lock_is_exclusive(void **state)
{
    void *st = OPEN("port", g_port);
    int acquired = -1;

    (void)state;
    assert_int_equal(
        be->lock(st, B("cache:lock:f"), B("tok-1"), 10000, &acquired),
        HERMES_BE_OK);
    assert_int_equal(acquired, 1);
    assert_int_equal(
        be->lock(st, B("cache:lock:f"), B("tok-2"), 10000, &acquired),
        HERMES_BE_OK);
    assert_int_equal(acquired, 0);
    assert_value(st, "cache:lock:f", "tok-1");
    be->close(st);
}

static void unlock_with_wrong_token_is_refused(void **state)
{
    void *st = OPEN("port", g_port);
    int acquired = 0, released = -1;

    (void)state;
    assert_int_equal(
        be->lock(st, B("cache:lock:g"), B("mine"), 10000, &acquired),
        HERMES_BE_OK);
    assert_int_equal(acquired, 1);
    assert_int_equal(be->unlock(st, B("cache:lock:g"), B("theirs"), &released),
                     HERMES_BE_OK);
    assert_int_equal(released, 0);
    assert_value(st, "cache:lock:g", "mine");
    /* Never taken at all. */
    assert_int_equal(be->unlock(st, B("cache:lock:none"), B("mine"), &released),
                     HERMES_BE_OK);
    assert_int_equal(released, 0);
    be->close(st);
}

static void unlock_with_right_token_releases(void **state)
{
    void *st = OPEN("port", g_port);
    int acquired = 0, released = 0;

    (void)state;
    assert_int_equal(
        be->lock(st, B("cache:lock:h"), B("mine"), 10000, &acquired),
        HERMES_BE_OK);
    assert_int_equal(be->unlock(st, B("cache:lock:h"), B("mine"), &released),
                     HERMES_BE_OK);
    assert_int_equal(released, 1);
    assert_missing(st, "cache:lock:h");
    assert_int_equal(
        be->lock(st, B("cache:lock:h"), B("next"), 10000, &acquired),
        HERMES_BE_OK);
    assert_int_equal(acquired, 1);
    be->close(st);
}

static void lock_expires_after_ttl(void **state)
{
    void *st = OPEN("port", g_port);
    int acquired = 0, released = -1;

    (void)state;
    assert_int_equal(be->lock(st, B("cache:lock:i"), B("old"), 50, &acquired),
                     HERMES_BE_OK);
    assert_int_equal(acquired, 1);
    sleep_ms(120);
    assert_int_equal(
        be->lock(st, B("cache:lock:i"), B("new"), 10000, &acquired),
        HERMES_BE_OK);
    assert_int_equal(acquired, 1);
    /* The old owner must not release the new owner's lock. */
    assert_int_equal(be->unlock(st, B("cache:lock:i"), B("old"), &released),
                     HERMES_BE_OK);
    assert_int_equal(released, 0);
    assert_int_equal(be->lock(st, B("k"), B("t"), 0, &acquired),
                     HERMES_BE_INVALID);
    be->close(st);
}

static void unlock_works_after_script_flush(void **state)
{
    void *st = OPEN("port", g_port);
    redisContext *c = raw_connect(g_srv.port);
    int acquired = 0, released = 0;
    snap a, b;

    (void)state;
    assert_int_equal(be->lock(st, B("cache:lock:j"), B("t"), 10000, &acquired),
                     HERMES_BE_OK);
    assert_int_equal(be->unlock(st, B("cache:lock:j"), B("t"), &released),
                     HERMES_BE_OK);
    assert_int_equal(released, 1);
    raw_ok(c, "SCRIPT FLUSH");
    assert_int_equal(be->lock(st, B("cache:lock:j"), B("t"), 10000, &acquired),
                     HERMES_BE_OK);
    a = take_snap(c);
    assert_int_equal(be->unlock(st, B("cache:lock:j"), B("t"), &released),
                     HERMES_BE_OK);
    b = take_snap(c);
    assert_int_equal(released, 1);
    assert_int_equal(b.evalsha - a.evalsha, 1); /* refused: NOSCRIPT */
    assert_int_equal(b.eval - a.eval, 1);       /* the fallback */
    /* EVAL reloaded the script: the next unlock needs EVALSHA only. */
    assert_int_equal(be->lock(st, B("cache:lock:j"), B("t"), 10000, &acquired),
                     HERMES_BE_OK);
    a = take_snap(c);
    assert_int_equal(be->unlock(st, B("cache:lock:j"), B("t"), &released),
                     HERMES_BE_OK);
    b = take_snap(c);
    assert_int_equal(released, 1);
    assert_int_equal(b.eval - a.eval, 0);
    be->close(st);
    redisFree(c);
}

typedef struct seen {
    int n;
    int a, b;
    long long ttl_a, ttl_b;
    int stop_after;
} seen;

static int scan_cb(void *arg, const void *key, size_t klen, const void *value,
                   size_t vlen, int64_t ttl_ms)
{
    seen *s = arg;

    s->n++;
    if (klen == 6 && memcmp(key, "scan:a", 6) == 0) {
        s->a++;
        s->ttl_a = ttl_ms;
        assert_int_equal(vlen, 2);
        assert_memory_equal(value, "va", 2);
    } else if (klen == 6 && memcmp(key, "scan:b", 6) == 0) {
        s->b++;
        s->ttl_b = ttl_ms;
        assert_int_equal(vlen, 2);
        assert_memory_equal(value, "vb", 2);
    } else if (!s->stop_after) {
        fail_msg("scan reported %.*s", (int)klen, (const char *)key);
    }
    return s->stop_after && s->n >= s->stop_after;
}

static void scan_reports_keys_values_and_ttl(void **state)
{
    void *st = OPEN("port", g_port);
    redisContext *c = raw_connect(g_srv.port);
    seen s = {0};

    (void)state;
    set1(st, "scan:a", "va", 0);
    set1(st, "scan:b", "vb", 60000);
    raw_ok(c, "HSET scan:hash f v"); /* not a string: skipped */
    raw_ok(c, "SET other:scan:c vc");
    assert_int_equal(be->scan(st, B("scan:"), scan_cb, &s), HERMES_BE_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.a, 1);
    assert_int_equal(s.b, 1);
    assert_int_equal(s.ttl_a, -1);
    assert_true(s.ttl_b > 0 && s.ttl_b <= 60000);
    be->close(st);
    redisFree(c);
}

static void scan_stops_when_callback_returns_nonzero(void **state)
{
    void *st = OPEN("port", g_port);
    seen s = {0};
    char key[32];
    int i;

    (void)state;
    for (i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "many:%d", i);
        set1(st, key, "v", 0);
    }
    s.stop_after = 3;
    assert_int_equal(be->scan(st, B("many:"), scan_cb, &s), HERMES_BE_OK);
    assert_int_equal(s.n, 3);
    be->close(st);
}

typedef struct statset {
    int version, memory, clients, keyspace;
    long long opened, commands;
    char keyspace_text[128];
} statset;

static void statset_cb(void *arg, const char *name, const char *value)
{
    statset *s = arg;

    if (strcmp(name, "redis_version") == 0)
        s->version = value[0] != '\0';
    else if (strcmp(name, "used_memory") == 0)
        s->memory = atoll(value) > 0;
    else if (strcmp(name, "connected_clients") == 0)
        s->clients = atoll(value) > 0;
    else if (strcmp(name, "keyspace") == 0) {
        s->keyspace = 1;
        snprintf(s->keyspace_text, sizeof s->keyspace_text, "%s", value);
    } else if (strcmp(name, "connections_opened") == 0)
        s->opened = atoll(value);
    else if (strcmp(name, "commands") == 0)
        s->commands = atoll(value);
}

static void stats_report_server_fields_and_plugin_counters(void **state)
{
    void *st = OPEN("port", g_port, "db", "2");
    statset s = {0};

    (void)state;
    set1(st, "s1", "v", 0);
    set1(st, "s2", "v", 0);
    assert_int_equal(be->stats(st, statset_cb, &s), HERMES_BE_OK);
    assert_true(s.version);
    assert_true(s.memory);
    assert_true(s.clients);
    assert_true(s.keyspace);
    assert_non_null(strstr(s.keyspace_text, "keys=2"));
    assert_int_equal(s.opened, 1);
    assert_true(s.commands >= 3); /* SELECT, SET, SET */
    be->close(st);
}

static void unix_socket_connection_works(void **state)
{
    void *st = OPEN("socket", g_srv.socket_path, "port", "1");

    (void)state;
    set1(st, "via:unix", "yes", 0);
    assert_value(st, "via:unix", "yes");
    be->close(st);
}

static void auth_with_password_works(void **state)
{
    char port[16];
    void *st, *none;
    hermes_bytes k = B("k");
    got g = {0};

    (void)state;
    start_extra("s3cret pass", port, sizeof port);
    st = OPEN("port", port, "password", "s3cret pass");
    set1(st, "secured", "value", 0);
    assert_value(st, "secured", "value");
    /* Without the password the server refuses: an error, not a crash. */
    none = OPEN("port", port);
    assert_int_equal(be->get(none, &k, 1, got_cb, &g), HERMES_BE_PROTOCOL);
    assert_true(log_contains("NOAUTH"));
    be->close(none);
    be->close(st);
}

static void auth_with_wrong_password_fails_with_error(void **state)
{
    char port[16];
    hermes_bytes k = B("k");
    got g = {0};
    void *st;
    int acquired = -1;

    (void)state;
    start_extra("right", port, sizeof port);
    st = OPEN("port", port, "password", "wrong");
    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    assert_int_equal(be->lock(st, k, k, 100, &acquired), HERMES_BE_IO);
    assert_int_equal(g.hits[0], 0);
    assert_true(log_contains("AUTH refused"));
    be->close(st);
}

static void db_selection_isolates_keys(void **state)
{
    void *db0 = OPEN("port", g_port);
    void *db5 = OPEN("port", g_port, "db", "5");
    redisContext *c = raw_connect(g_srv.port);

    (void)state;
    set1(db0, "same", "zero", 0);
    set1(db5, "same", "five", 0);
    set1(db5, "only5", "x", 0);
    assert_value(db0, "same", "zero");
    assert_value(db5, "same", "five");
    assert_missing(db0, "only5");
    assert_int_equal(be->flush(db5, B("")), HERMES_BE_OK);
    assert_value(db0, "same", "zero");
    raw_ok(c, "SELECT 5");
    assert_int_equal(raw_integer(c, "DBSIZE"), 0);
    be->close(db0);
    be->close(db5);
    redisFree(c);
}

/* Retry set + get until both work, for up to ms; returns the time taken
 * or -1. */
static long long wait_until_working(void *st, long ms)
{
    uint64_t t0 = now_ms();
    hermes_item it = {B("back"), B("again"), 0, 0};
    hermes_bytes k = B("back");

    while (now_ms() - t0 < (uint64_t)ms) {
        got g = {0};

        if (be->set(st, &it, 1, NULL, NULL) == HERMES_BE_OK &&
            be->get(st, &k, 1, got_cb, &g) == HERMES_BE_OK && g.hits[0]) {
            got_free(&g);
            return (long long)(now_ms() - t0);
        }
        got_free(&g);
        sleep_ms(20);
    }
    return -1;
}

static void server_killed_mid_run_fails_fast_then_recovers(void **state)
{
    char port[16];
    hermes_bytes k = B("back");
    long long failures;
    got g = {0};
    uint64_t t0;
    void *st;
    int i;

    (void)state;
    start_extra(NULL, port, sizeof port);
    st = OPEN("port", port, "connect_timeout_ms", "300", "command_timeout_ms",
              "300", "pool_size", "2");
    assert_true(wait_until_working(st, 100) >= 0);

    redis_server_kill(&g_extra);
    t0 = now_ms();
    for (i = 0; i < 5; i++)
        assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    assert_true(now_ms() - t0 < 1500);
    /* A dead server costs (almost) no connect attempts per call. */
    failures = plugin_stat(st, "connect_failures");
    t0 = now_ms();
    for (i = 0; i < 2000; i++)
        assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    assert_true(now_ms() - t0 < 1000);
    assert_true(plugin_stat(st, "connect_failures") - failures < 25);

    assert_int_equal(redis_server_restart(&g_extra), 0);
    /* Backoff is capped at 2 s. */
    assert_true(wait_until_working(st, 3000) >= 0);
    assert_int_equal(g.hits[0], 0);
    be->close(st);
}

static void paused_server_times_out_then_recovers(void **state)
{
    char port[16];
    hermes_bytes k = B("back");
    got g = {0};
    uint64_t t0;
    void *st;

    (void)state;
    start_extra(NULL, port, sizeof port);
    st = OPEN("port", port, "command_timeout_ms", "200");
    assert_true(wait_until_working(st, 100) >= 0);

    kill(g_extra.pid, SIGSTOP);
    t0 = now_ms();
    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    assert_true(now_ms() - t0 < 1500);
    kill(g_extra.pid, SIGCONT);
    assert_true(wait_until_working(st, 3000) >= 0);
    be->close(st);
}

/*
 * A hung server (SIGSTOP: its port still accepts connections, nothing
 * answers) costs one call a timeout; the calls after it fail at once while
 * the pool backs off, a few probes (one per backoff period) pay a timeout
 * each, and once the server answers again the pool uses it again.
 */
static void hung_server_costs_one_timeout_then_calls_fail_fast(void **state)
{
    char port[16];
    hermes_bytes k = B("back");
    uint64_t t0, t, took, window_end;
    long calls = 0, slow = 0;
    long long resumed;
    got g = {0};
    void *st;

    (void)state;
    start_extra(NULL, port, sizeof port);
    st = OPEN("port", port, "command_timeout_ms", "200", "connect_timeout_ms",
              "200", "pool_size", "4");
    assert_true(wait_until_working(st, 1000) >= 0);

    kill(g_extra.pid, SIGSTOP);
    t0 = now_ms();
    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    took = now_ms() - t0;
    assert_true(took >= 150 && took < 1000);
    assert_true(log_contains("no answer within 200 ms"));

    /* One second of calls: before backing off, every one took 200 ms. */
    window_end = now_ms() + 1000;
    while ((t = now_ms()) < window_end) {
        assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
        calls++;
        if (now_ms() - t >= 150)
            slow++;
    }
    print_message("after the first timeout: %ld calls in 1 s, %ld slow "
                  "(probes)\n",
                  calls, slow);
    assert_true(calls >= 1000);
    /* Probes after 50, 100, 200 ms of backoff, each costing 200 ms. */
    assert_true(slow <= 4);

    kill(g_extra.pid, SIGCONT);
    /* At most one backoff period (capped at 2 s) plus a probe. */
    resumed = wait_until_working(st, 5000);
    print_message("working again %lld ms after SIGCONT\n", resumed);
    assert_true(resumed >= 0);
    assert_true(log_contains("answers again"));
    assert_int_equal(g.hits[0], 0);
    be->close(st);
}

/* A signal every 10 ms at one thread, with a handler installed without
 * SA_RESTART, so every blocking call in that thread sees EINTR. */
static void on_usr1(int sig)
{
    (void)sig;
}

typedef struct pester {
    pthread_t target;
    atomic_int stop;
} pester;

static void *pester_main(void *arg)
{
    pester *p = arg;
    while (!atomic_load(&p->stop)) {
        pthread_kill(p->target, SIGUSR1);
        sleep_ms(10);
    }
    return NULL;
}

static void signals_do_not_stretch_a_call_past_its_timeout(void **state)
{
    char port[16];
    hermes_bytes k = B("back");
    got g = {0};
    struct sigaction sa, old;
    pester p;
    pthread_t th;
    void *st;

    (void)state;
    start_extra(NULL, port, sizeof port);
    st = OPEN("port", port, "command_timeout_ms", "200");
    assert_true(wait_until_working(st, 100) >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART */
    sigaction(SIGUSR1, &sa, &old);
    p.target = pthread_self();
    atomic_init(&p.stop, 0);
    pthread_create(&th, NULL, pester_main, &p);

    kill(g_extra.pid, SIGSTOP);
    uint64_t t0 = now_ms();
    int rc = be->get(st, &k, 1, got_cb, &g);
    uint64_t took = now_ms() - t0;
    kill(g_extra.pid, SIGCONT);

    atomic_store(&p.stop, 1);
    pthread_join(th, NULL);
    sigaction(SIGUSR1, &old, NULL);
    assert_int_equal(rc, HERMES_BE_IO);
    /* 200 ms, not 200 ms per interrupted read. */
    assert_true(took < 1000);
    got_free(&g);
    be->close(st);
}

typedef struct hammer {
    void *st;
    int errors;
} hammer;

static void *hammer_get(void *arg)
{
    hammer *h = arg;
    hermes_bytes k = B("shared");
    int i;

    for (i = 0; i < 200; i++) {
        got g = {0};

        if (be->get(h->st, &k, 1, got_cb, &g) != HERMES_BE_OK ||
            g.hits[0] != 1 || strcmp(g.val[0], "value") != 0)
            h->errors++;
        got_free(&g);
    }
    return NULL;
}

static void pool_of_one_serves_many_threads(void **state)
{
    void *st = OPEN("port", g_port, "pool_size", "1");
    pthread_t th[4];
    hammer h[4];
    int t;

    (void)state;
    set1(st, "shared", "value", 0);
    for (t = 0; t < 4; t++) {
        h[t].st = st;
        h[t].errors = 0;
        assert_int_equal(pthread_create(&th[t], NULL, hammer_get, &h[t]), 0);
    }
    for (t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(h[t].errors, 0);
    }
    assert_int_equal(plugin_stat(st, "connections_opened"), 1);
    be->close(st);
}

static void
server_restart_costs_one_failed_call_not_one_per_connection(void **state)
{
    char port[16];
    hermes_bytes k = B("shared");
    pthread_t th[4];
    hammer h[4];
    int round, t, i, failures = 0;
    void *st;

    (void)state;
    start_extra(NULL, port, sizeof port);
    /* Without batching: batched reads share at most two connections
     * (test_redis_batch shows that a dropped one fails its flight
     * alone). */
    st = OPEN("port", port, "pool_size", "4", "batch_reads", "no");
    set1(st, "shared", "value", 0);
    /* Concurrent callers make the pool open several connections. */
    for (round = 0; round < 50 && plugin_stat(st, "connections_opened") < 3;
         round++) {
        for (t = 0; t < 4; t++) {
            h[t].st = st;
            h[t].errors = 0;
            assert_int_equal(pthread_create(&th[t], NULL, hammer_get, &h[t]),
                             0);
        }
        for (t = 0; t < 4; t++)
            pthread_join(th[t], NULL);
    }
    assert_true(plugin_stat(st, "connections_opened") >= 3);

    assert_int_equal(redis_server_restart(&g_extra), 0);
    for (i = 0; i < 10; i++) {
        got g = {0};

        if (be->get(st, &k, 1, got_cb, &g) != HERMES_BE_OK)
            failures++;
        got_free(&g);
    }
    assert_true(failures <= 1);
    be->close(st);
}

/* ------------------------------------------- broken and hostile servers */

/* What a fake server answers to every command: head, then (when unit is
 * set) unit again and again until the client hangs up. */
typedef struct hostile {
    const char *head;
    size_t head_len; /* 0: strlen(head) */
    const char *unit;
} hostile;

/* The most a flood sends: enough to show unbounded growth (an array of 8
 * million elements, a string of 32 MiB) without exhausting a shared
 * machine when the bounds are missing. */
#define FLOOD_LIMIT ((uint64_t)32 << 20)

static int answer_hostile(fake_redis *f, int fd, int argc, char **argv,
                          const size_t *lens, void *arg)
{
    const hostile *h = arg;
    size_t n = h->head_len ? h->head_len : strlen(h->head);

    (void)argc;
    (void)argv;
    (void)lens;
    if (fake_redis_send(fd, h->head, n) != 0)
        return 1;
    if (!h->unit)
        return 0;
    fake_redis_flood(f, fd, h->unit, strlen(h->unit), FLOOD_LIMIT);
    return 1;
}

static fake_redis *start_fake(hostile *h, char *port, size_t size)
{
    fake_redis *f = fake_redis_start(answer_hostile, h);

    if (!f)
        fail_msg("cannot start the fake redis server");
    snprintf(port, size, "%d", fake_redis_port(f));
    return f;
}

/*
 * Ten MGETs against a server that answers head and then floods: each must
 * be refused at once, not after command_timeout_ms (long here), and the
 * process must not grow during a call by more than a small multiple of
 * max_value_bytes (1 MiB here) while the server floods.  Growth is
 * measured per call because freed memory need not leave the process
 * (AddressSanitizer keeps it in quarantine).
 */
/* Each call is refused by the reply limits, not ended by the command
 * timeout: every one returns well before it, whatever the machine's load
 * (a timeout would make each last at least REFUSE_TIMEOUT_MS). */
#define REFUSE_TIMEOUT_MS 5000

static void mgets_are_refused_quickly_in_bounded_memory(hostile *h)
{
    char port[16], timeout[16];
    snprintf(timeout, sizeof timeout, "%d", REFUSE_TIMEOUT_MS);
    fake_redis *f = start_fake(h, port, sizeof port);
    void *st = OPEN("port", port, "command_timeout_ms", timeout,
                    "max_value_bytes", "1m");
    hermes_bytes k = B("cache:entry:f:x");
    uint64_t slowest = 0;
    long long grew, most = 0;
    int i;

    for (i = 0; i < 10; i++) {
        uint64_t base = fake_redis_rss_now(), t0 = now_ms();
        got g = {0};

        fake_redis_reset_peak_rss(f);
        assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_PROTOCOL);
        assert_int_equal(g.hits[0], 0);
        if (now_ms() - t0 > slowest)
            slowest = now_ms() - t0;
        /* No sample when the reply was refused before the flood began. */
        grew = fake_redis_peak_rss(f)
                   ? (long long)fake_redis_peak_rss(f) - (long long)base
                   : 0;
        if (grew > most)
            most = grew;
    }
    be->close(st);
    fake_redis_stop(f);
    print_message("%d calls, the slowest %llu ms, RSS grew by at most %lld "
                  "KiB in a call\n",
                  i, (unsigned long long)slowest, most / 1024);
    assert_true(log_contains("refused a reply"));
    assert_true(slowest < REFUSE_TIMEOUT_MS);
    assert_true(most < (16 << 20));
}

static void hostile_array_header_allocates_nothing(void **state)
{
    /* One header promising a billion elements, then elements forever. */
    hostile h = {"*1000000000\r\n", 0, ":1\r\n"};

    (void)state;
    mgets_are_refused_quickly_in_bounded_memory(&h);
}

static void hostile_endless_string_is_cut_off(void **state)
{
    /* A bulk string of a billion bytes, sent for ever. */
    hostile h = {"*1\r\n$1000000000\r\n", 0, "xxxxxxxxxxxxxxxx"};

    (void)state;
    mgets_are_refused_quickly_in_bounded_memory(&h);
}

/* One command answered with one reply that its command cannot produce. */
typedef struct misfit {
    const char *op; /* "get1", "get2", "lock", "flush", "set" */
    const char *reply;
} misfit;

static int run_op(void *st, const char *op)
{
    hermes_bytes keys[2] = {B("k1"), B("k2")};
    hermes_item it = {B("k1"), B("v"), 0, HERMES_SET_IF_ABSENT};
    got g = {0};
    int rc, acquired;

    if (strcmp(op, "get1") == 0)
        rc = be->get(st, keys, 1, got_cb, &g);
    else if (strcmp(op, "get2") == 0)
        rc = be->get(st, keys, 2, got_cb, &g);
    else if (strcmp(op, "lock") == 0)
        rc = be->lock(st, keys[0], keys[1], 1000, &acquired);
    else if (strcmp(op, "set") == 0)
        rc = be->set(st, &it, 1, got_cb, &g);
    else
        rc = be->flush(st, B("cache:"));
    got_free(&g);
    return rc;
}

static void replies_that_do_not_fit_their_command_are_refused(void **state)
{
    static char big_string[2100], many_keys[20100 * 7 + 64];
    static const misfit bad[] = {
        /* three elements for two keys */
        {"get2", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
        /* an array inside MGET's array */
        {"get1", "*1\r\n*1\r\n:1\r\n"},
        /* a value longer than max_value_bytes (1k) */
        {"get1", big_string},
        /* SET NX answers a status or nil, never an array */
        {"lock", "*1\r\n:1\r\n"},
        /* the value read back by set-if-absent, too long */
        {"set", big_string + 4},
        /* one SCAN step with 20000 keys for COUNT 1000 */
        {"flush", many_keys},
    };
    size_t i, off;

    (void)state;
    off = (size_t)snprintf(big_string, sizeof big_string, "*1\r\n$2048\r\n");
    memset(big_string + off, 'v', 2048);
    memcpy(big_string + off + 2048, "\r\n", 3);
    off = (size_t)snprintf(many_keys, sizeof many_keys,
                           "*2\r\n$1\r\n0\r\n*20000\r\n");
    for (i = 0; i < 20000; i++)
        off += (size_t)snprintf(many_keys + off, sizeof many_keys - off,
                                "$1\r\nk\r\n");

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hostile h = {bad[i].reply, 0, NULL};
        char port[16];
        fake_redis *f = start_fake(&h, port, sizeof port);
        void *st = OPEN("port", port, "max_value_bytes", "1k");
        int rc = run_op(st, bad[i].op);

        be->close(st);
        fake_redis_stop(f);
        if (rc != HERMES_BE_PROTOCOL)
            fail_msg("case %zu (%s): status %d, not PROTOCOL", i, bad[i].op,
                     rc);
    }
    assert_true(log_contains("refused a reply"));
}

static void replies_that_fit_are_accepted_from_the_fake_server(void **state)
{
    /* The same fake server, answering like redis: the guard is not what
     * made the cases above fail. */
    hostile h = {"*2\r\n$1\r\na\r\n$-1\r\n", 0, NULL};
    hermes_bytes keys[2] = {B("k1"), B("k2")};
    char port[16];
    fake_redis *f = start_fake(&h, port, sizeof port);
    void *st = OPEN("port", port, "max_value_bytes", "1k");
    got g = {0};

    (void)state;
    assert_int_equal(be->get(st, keys, 2, got_cb, &g), HERMES_BE_OK);
    assert_int_equal(g.hits[0], 1);
    assert_string_equal(g.val[0], "a");
    assert_int_equal(g.hits[1], 0);
    got_free(&g);
    be->close(st);
    fake_redis_stop(f);
}

static void value_longer_than_max_value_bytes_is_too_big(void **state)
{
    static char v[2048];
    void *st = OPEN("port", g_port, "max_value_bytes", "1k");
    hermes_item it = {B("k"), {v, sizeof v}, 0, 0};

    (void)state;
    memset(v, 'v', sizeof v);
    assert_int_equal(be->set(st, &it, 1, NULL, NULL), HERMES_BE_TOOBIG);
    it.value.len = 1024;
    assert_int_equal(be->set(st, &it, 1, NULL, NULL), HERMES_BE_OK);
    be->close(st);
}

/* A server whose SCAN cursor never comes back to 0; DBSIZE says `dbsize`. */
typedef struct endless_scan {
    const char *dbsize; /* the DBSIZE reply */
    atomic_int scans;
} endless_scan;

static int answer_endless_scan(fake_redis *f, int fd, int argc, char **argv,
                               const size_t *lens, void *arg)
{
    endless_scan *e = arg;
    static const char step[] = "*2\r\n$2\r\n42\r\n*1\r\n$7\r\ncache:k\r\n";
    const char *reply = "+OK\r\n";

    (void)f;
    (void)argc;
    (void)lens;
    if (strcmp(argv[0], "SCAN") == 0) {
        atomic_fetch_add(&e->scans, 1);
        reply = step;
    } else if (strcmp(argv[0], "DBSIZE") == 0) {
        reply = e->dbsize;
    } else if (strcmp(argv[0], "UNLINK") == 0 || strcmp(argv[0], "DEL") == 0) {
        reply = ":1\r\n";
    } else if (strcmp(argv[0], "GET") == 0) {
        reply = "$1\r\nv\r\n";
    } else if (strcmp(argv[0], "PTTL") == 0) {
        reply = ":-1\r\n";
    }
    return fake_redis_send(fd, reply, strlen(reply)) != 0;
}

static int count_keys(void *arg, const void *key, size_t klen,
                      const void *value, size_t vlen, int64_t ttl_ms)
{
    (void)key;
    (void)klen;
    (void)value;
    (void)vlen;
    (void)ttl_ms;
    ++*(long *)arg;
    return 0;
}

static void flush_gives_up_on_a_cursor_that_never_ends(void **state)
{
    /* DBSIZE 0: a real walk would take one step; give up after 64. */
    endless_scan e = {":0\r\n", 0};
    fake_redis *f = fake_redis_start(answer_endless_scan, &e);
    char port[16];
    uint64_t t0;
    long reported = 0;
    void *st;

    (void)state;
    assert_non_null(f);
    snprintf(port, sizeof port, "%d", fake_redis_port(f));
    st = OPEN("port", port);
    t0 = now_ms();
    assert_int_equal(be->flush(st, B("cache:")), HERMES_BE_PROTOCOL);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(atomic_load(&e.scans), 64);
    assert_true(log_contains("flush: SCAN did not finish in 64 steps"));
    /* scan() is bounded the same way. */
    atomic_store(&e.scans, 0);
    assert_int_equal(be->scan(st, B("cache:"), count_keys, &reported),
                     HERMES_BE_PROTOCOL);
    assert_int_equal(atomic_load(&e.scans), 64);
    assert_int_equal(reported, 64);
    be->close(st);
    fake_redis_stop(f);
}

static void flush_gives_up_after_flush_timeout_ms(void **state)
{
    /* DBSIZE claims a billion keys: only the time bound is left. */
    endless_scan e = {":1000000000\r\n", 0};
    fake_redis *f = fake_redis_start(answer_endless_scan, &e);
    char port[16];
    uint64_t t0, took;
    void *st;

    (void)state;
    assert_non_null(f);
    snprintf(port, sizeof port, "%d", fake_redis_port(f));
    st = OPEN("port", port, "flush_timeout_ms", "300");
    t0 = now_ms();
    assert_int_equal(be->flush(st, B("cache:")), HERMES_BE_IO);
    took = now_ms() - t0;
    print_message("gave up after %llu ms and %d SCAN steps\n",
                  (unsigned long long)took, atomic_load(&e.scans));
    assert_true(took >= 300);
    /* One step past the deadline at most: a step is one command. */
    assert_true(took < 300 + 1000);
    assert_true(atomic_load(&e.scans) > 64);
    assert_true(log_contains("within flush_timeout_ms (300 ms"));
    be->close(st);
    fake_redis_stop(f);
}

/* In the child: 0 when all went well, else the step that failed. */
static int child_work(void *st)
{
    hermes_bytes k = B("fork:k");
    hermes_item it = {B("fork:child"), B("was here"), 0, 0};
    long long opened = plugin_stat(st, "connections_opened");
    got g = {0};
    int rc = 0;

    if (be->get(st, &k, 1, got_cb, &g) != HERMES_BE_OK)
        rc = 1;
    else if (!g.hits[0] || strcmp(g.val[0], "parent") != 0)
        rc = 2;
    else if (be->set(st, &it, 1, NULL, NULL) != HERMES_BE_OK)
        rc = 3;
    else if (plugin_stat(st, "connections_opened") != opened + 1)
        rc = 4; /* the child must have connected on its own */
    got_free(&g);
    be->close(st);
    return rc;
}

/* A server on a unix socket that closes every connection it accepts. */
typedef struct closer {
    int fd;
    atomic_int stop;
    pthread_t thread;
} closer;

static void *close_loop(void *arg)
{
    closer *r = arg;

    while (!atomic_load(&r->stop)) {
        int c = accept(r->fd, NULL, NULL);

        if (c >= 0)
            close(c);
    }
    return NULL;
}

/*
 * SIGPIPE never reaches the application: with its default disposition
 * (which kills the process) and unblocked, big SETs over a unix socket
 * whose server closes every connection make the writes fail with EPIPE
 * (a unix socket raises SIGPIPE on every such write), and each call just
 * fails.
 */
static void sigpipe_never_reaches_the_application(void **state)
{
    closer r = {.fd = socket(AF_UNIX, SOCK_STREAM, 0)};
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigset_t pipe_set, oldmask;
    size_t big = (size_t)4 << 20;
    char *val = malloc(big);
    int i, failed = 0;

    (void)state;
    assert_non_null(val);
    memset(val, 'v', big);
    snprintf(a.sun_path, sizeof a.sun_path, "/tmp/hermes-pipe-%d.sock",
             (int)getpid());
    unlink(a.sun_path);
    assert_true(r.fd >= 0);
    assert_int_equal(bind(r.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(r.fd, 16), 0);
    assert_int_equal(pthread_create(&r.thread, NULL, close_loop, &r), 0);

    sigaction(SIGPIPE, &dfl, &old);
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &pipe_set, &oldmask);
    void *st = OPEN("socket", a.sun_path, "max_value_bytes", "8m");
    for (i = 0; i < 20; i++) {
        hermes_item it = {B("pipe:k"), {val, big}, 0, 0};

        failed += be->set(st, &it, 1, NULL, NULL) != HERMES_BE_OK;
    }
    be->close(st);
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    sigaction(SIGPIPE, &old, NULL);

    atomic_store(&r.stop, 1);
    int wake = socket(AF_UNIX, SOCK_STREAM, 0); /* ends the accept() */
    assert_int_equal(connect(wake, (struct sockaddr *)&a, sizeof a), 0);
    pthread_join(r.thread, NULL);
    close(wake);
    close(r.fd);
    unlink(a.sun_path);
    free(val);
    assert_int_equal(failed, 20); /* and we are still alive */
}

static void fork_child_uses_its_own_connection(void **state)
{
    void *st = OPEN("port", g_port);
    int status = -1, i;
    pid_t pid;

    (void)state;
    set1(st, "fork:k", "parent", 0);
    assert_value(st, "fork:k", "parent"); /* the pool holds a connection */
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_work(st));
    assert_int_equal(cw_wait("redis_plugin", pid, CW_TIMEOUT_MS, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's connection is intact and still the only one. */
    for (i = 0; i < 10; i++) {
        assert_value(st, "fork:k", "parent");
        assert_value(st, "fork:child", "was here");
    }
    assert_int_equal(plugin_stat(st, "connections_opened"), 1);
    be->close(st);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(descriptor_declares_redis_and_its_caps),
        T(overwrite_that_is_too_big_removes_the_old_value),
        T(overwrite_refused_by_the_server_removes_the_old_value),
        T(batch_longer_than_one_request_may_be_is_too_big),
        T(config_rejects_unknown_key_with_kv_index),
        T(config_rejects_bad_values_with_kv_index),
        T(config_errors_escape_control_bytes),
        T(open_with_server_down_succeeds_and_get_fails_fast),
        T(open_does_not_connect),
        T(get_of_missing_key_reports_nothing),
        T(set_get_binary_value_empty_value_and_1k_key),
        T(batched_get_of_entry_and_tags_is_one_mget_round_trip),
        T(set_batch_with_if_absent_is_one_round_trip),
        T(set_if_absent_loser_receives_winners_value),
        T(racing_set_if_absent_threads_agree),
        T(ttl_expires_entry),
        T(del_removes_a_batch),
        T(flush_removes_only_keys_under_prefix),
        T(flush_escapes_glob_characters_in_prefix),
        T(flush_handles_more_keys_than_one_scan_batch),
        T(flush_of_empty_prefix_uses_flushdb_only_when_enabled),
        T(lock_is_exclusive),
        T(unlock_with_wrong_token_is_refused),
        T(unlock_with_right_token_releases),
        T(lock_expires_after_ttl),
        T(unlock_works_after_script_flush),
        T(scan_reports_keys_values_and_ttl),
        T(scan_stops_when_callback_returns_nonzero),
        T(stats_report_server_fields_and_plugin_counters),
        T(unix_socket_connection_works),
        T(auth_with_password_works),
        T(auth_with_wrong_password_fails_with_error),
        T(db_selection_isolates_keys),
        T(server_killed_mid_run_fails_fast_then_recovers),
        T(paused_server_times_out_then_recovers),
        T(hung_server_costs_one_timeout_then_calls_fail_fast),
        T(signals_do_not_stretch_a_call_past_its_timeout),
        T(pool_of_one_serves_many_threads),
        T(server_restart_costs_one_failed_call_not_one_per_connection),
        T(fork_child_uses_its_own_connection),
        T(hostile_array_header_allocates_nothing),
        T(hostile_endless_string_is_cut_off),
        T(replies_that_do_not_fit_their_command_are_refused),
        T(replies_that_fit_are_accepted_from_the_fake_server),
        T(sigpipe_never_reaches_the_application),
        T(value_longer_than_max_value_bytes_is_too_big),
        T(flush_gives_up_on_a_cursor_that_never_ends),
        T(flush_gives_up_after_flush_timeout_ms),
    };
#undef T
    return cmocka_run_group_tests_name("redis plugin", tests, group_setup,
                                       group_teardown);
}
