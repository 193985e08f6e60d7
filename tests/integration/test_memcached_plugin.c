/*
 * The memcached plugin against two private memcached servers: config
 * errors, binary-safe keys mapped the same way every time, batches that
 * are one multi-get (counted by the servers), set-if-absent reporting the
 * winner, token-checked locks, TTLs rounded up and past 30 days, flush
 * only when allowed, stats, pipelined write batches (one request per
 * server, refusals and a dead server reported with their reason), scan (values,
 * TTLs, a server that refuses it, a server gone), bounded failure with a server
 * gone, and fork. The plugin is compiled into the test
 * (hermes_backend_entry()).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hermes/backend.h>

#include "../support/child_wait.h"
#include "memcached_server.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const hermes_backend *hermes_backend_entry(void);

static const hermes_backend *be;
static memcached_server g_a, g_b;
static char g_servers[64];
static int g_seq;

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void host_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (getenv("HERMES_TEST_VERBOSE"))
        fprintf(stderr, "plugin log [%d]: %s\n", level, msg);
}

static uint64_t host_now_ms(void *ctx)
{
    (void)ctx;
    return clock_ms(CLOCK_REALTIME);
}

static uint64_t host_monotonic_ns(void *ctx)
{
    (void)ctx;
    return clock_ms(CLOCK_MONOTONIC) * 1000000u;
}

static int host_random(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

/* The last error detail the plugin gave (ABI 1.1). */
static char g_detail[256];

static void host_detail(void *ctx, const char *msg)
{
    (void)ctx;
    snprintf(g_detail, sizeof g_detail, "%s", msg);
}

static const hermes_host host = {
    .struct_size = sizeof(hermes_host),
    .log = host_log,
    .now_ms = host_now_ms,
    .monotonic_ns = host_monotonic_ns,
    .random = host_random,
    .config_source = "<test>",
    .error_detail = host_detail,
};

static hermes_bytes B(const char *s)
{
    hermes_bytes b = {s, strlen(s)};
    return b;
}

/* Opens a state on kv (key, value, key, value, ..., NULL). */
static void *open_kv(const char *first, ...)
{
    hermes_kv kv[16];
    size_t n = 0;
    va_list ap;
    void *st = NULL;
    hermes_open_error err = {{0}, -1};

    va_start(ap, first);
    for (const char *k = first; k && n < 16; k = va_arg(ap, const char *)) {
        kv[n].key = k;
        kv[n].value = va_arg(ap, const char *);
        kv[n].line = (int)n + 1;
        n++;
    }
    va_end(ap);
    int rc = be->open(&host, kv, n, &st, &err);
    if (rc != HERMES_BE_OK)
        fail_msg("open: %d: %s", rc, err.msg);
    return st;
}

static void *open_pool(void)
{
    return open_kv("servers", g_servers, "connect_timeout_ms", "200",
                   "poll_timeout_ms", "300", NULL);
}

/* A key unique to this run. */
static hermes_bytes ukey(char *buf, size_t cap, const char *what)
{
    snprintf(buf, cap, "t%d:%d:%s", (int)getpid(), g_seq++, what);
    return B(buf);
}

typedef struct got {
    int hits[64];
    char val[64][128];
    size_t len[64];
} got;

static void got_cb(void *arg, size_t i, const void *v, size_t len)
{
    got *g = arg;

    assert_true(i < 64);
    g->hits[i]++;
    g->len[i] = len;
    memcpy(g->val[i], v, len < 128 ? len : 128);
}

static void put(void *st, hermes_bytes k, const char *v, uint32_t ttl)
{
    hermes_item it = {k, B(v), ttl, 0};
    assert_int_equal(be->set(st, &it, 1, NULL, NULL), HERMES_BE_OK);
}

static int get1(void *st, hermes_bytes k, char *out, size_t cap)
{
    got g;

    memset(&g, 0, sizeof g);
    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_OK);
    if (!g.hits[0])
        return 0;
    snprintf(out, cap, "%.*s", (int)g.len[0], g.val[0]);
    return 1;
}

static long long total(const char *stat)
{
    long long a = memcached_server_stat(&g_a, stat);
    long long b = memcached_server_stat(&g_b, stat);

    assert_true(a >= 0 && b >= 0);
    return a + b;
}

/* ------------------------------------------------------------- tests */

static void descriptor(void **state)
{
    (void)state;
    assert_string_equal(be->name, "memcached");
    assert_int_equal(be->max_key_len, 250);
    assert_true(be->caps & HERMES_CAP_THREADSAFE);
    assert_true(be->caps & HERMES_CAP_SHARED);
    assert_true(be->caps & HERMES_CAP_NO_PREFIX_FLUSH);
}

static void config_errors_name_the_key(void **state)
{
    static const struct {
        const char *key, *value, *msg;
    } bad[] = {
        {"colour", "red", "unknown key 'colour'"},
        {"servers", "", "no server given"},
        {"servers", "127.0.0.1:0", "port '0'"},
        {"servers", "127.0.0.1:99999", "port '99999'"},
        {"servers", "::1:11211", "[address]:port"},
        {"servers", "127.0.0.1:11211/?0", "weight"},
        {"distribution", "random", "distribution:"},
        {"hash", "sha1", "hash:"},
        {"protocol", "udp", "protocol:"},
        {"poll_timeout_ms", "0", "poll_timeout_ms:"},
        {"pool_size", "x", "pool_size:"},
        {"flush_all", "true", "neither yes nor no"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hermes_kv kv[2] = {{"servers", "127.0.0.1:11211", 1},
                           {bad[i].key, bad[i].value, 2}};
        hermes_open_error err = {{0}, -1};
        void *st = NULL;
        int rc = be->open(
            &host,
            kv + (i == 1 || i == 2 || i == 3 || i == 4 || i == 5 ? 1 : 0),
            i >= 1 && i <= 5 ? 1 : 2, &st, &err);

        assert_int_equal(rc, HERMES_BE_INVALID);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("%s = %s: message '%s' lacks '%s'", bad[i].key,
                     bad[i].value, err.msg, bad[i].msg);
        assert_int_equal(err.kv_index, i >= 1 && i <= 5 ? 0 : 1);
    }
}

static void opens_with_every_server_down(void **state)
{
    (void)state;
    uint64_t t0 = clock_ms(CLOCK_MONOTONIC);
    void *st =
        open_kv("servers", "127.0.0.1:1, 127.0.0.1:2", "connect_timeout_ms",
                "100", "poll_timeout_ms", "100", NULL);
    char kb[64], v[16];
    hermes_bytes k = ukey(kb, sizeof kb, "down");
    got g;

    memset(&g, 0, sizeof g);
    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    (void)v;
    assert_true(clock_ms(CLOCK_MONOTONIC) - t0 < 1000);
    be->close(st);
}

static void set_get_and_spread_over_both_servers(void **state)
{
    (void)state;
    void *st = open_pool();
    long long a0 = memcached_server_stat(&g_a, "curr_items");
    long long b0 = memcached_server_stat(&g_b, "curr_items");
    char kb[64], v[64], out[64];

    for (int i = 0; i < 40; i++) {
        snprintf(v, sizeof v, "value %d", i);
        put(st, ukey(kb, sizeof kb, "spread"), v, 0);
    }
    g_seq -= 40;
    for (int i = 0; i < 40; i++) {
        snprintf(v, sizeof v, "value %d", i);
        assert_true(get1(st, ukey(kb, sizeof kb, "spread"), out, sizeof out));
        assert_string_equal(out, v);
    }
    /* Consistent hashing put keys on both servers. */
    assert_true(memcached_server_stat(&g_a, "curr_items") - a0 >= 5);
    assert_true(memcached_server_stat(&g_b, "curr_items") - b0 >= 5);
    be->close(st);
}

static void a_batch_is_one_multiget(void **state)
{
    (void)state;
    void *st = open_pool();
    enum { N = 12 };
    char kb[N][64];
    hermes_bytes keys[N];
    got g;

    for (int i = 0; i < N; i++) {
        keys[i] = ukey(kb[i], sizeof kb[i], "batch");
        if (i % 3 != 2)
            put(st, keys[i], kb[i], 0);
    }
    keys[N - 1] = keys[0]; /* a repeated key is reported at both places */
    long long gets0 = total("cmd_get"), hits0 = total("get_hits"),
              sets0 = total("cmd_set");
    memset(&g, 0, sizeof g);
    assert_int_equal(be->get(st, keys, N, got_cb, &g), HERMES_BE_OK);
    for (int i = 0; i < N; i++) {
        int want = (i % 3 != 2) || i == N - 1;
        assert_int_equal(g.hits[i], want);
        if (want)
            assert_memory_equal(g.val[i], i == N - 1 ? kb[0] : kb[i], g.len[i]);
    }
    /* Every key was asked once (the repeat too), nothing else was sent. */
    assert_int_equal(total("cmd_get") - gets0, N);
    int want_hits = 0;
    for (int i = 0; i < N; i++)
        want_hits += g.hits[i];
    assert_int_equal(want_hits, 9); /* 8 stored, and the repeat */
    assert_int_equal(total("get_hits") - hits0, want_hits);
    assert_int_equal(total("cmd_set") - sets0, 0);
    be->close(st);
}

static void keys_are_binary_safe_and_stable(void **state)
{
    (void)state;
    void *st = open_pool();
    char longa[300], longb[300], out[64];
    char bin[] = {'k', ' ', 'e', '\n', 'y', '\0', 'z'};
    hermes_bytes kbin = {bin, sizeof bin};
    char bin2[sizeof bin];

    memcpy(bin2, bin, sizeof bin);
    bin2[5] = '\1';
    hermes_bytes kbin2 = {bin2, sizeof bin2};
    memset(longa, 'a', sizeof longa);
    memset(longb, 'a', sizeof longb);
    longb[299] = 'b';
    hermes_bytes la = {longa, 300}, lb = {longb, 300};
    /* A plain key that looks like an encoded one is encoded itself. */
    hermes_bytes mark = B("~h~AAAAAAAAAAAAAAAAAAAAAA:k");
    hermes_bytes empty = {"", 0};

    put(st, kbin, "bin", 0);
    put(st, kbin2, "bin2", 0);
    put(st, la, "la", 0);
    put(st, lb, "lb", 0);
    put(st, mark, "mark", 0);
    put(st, empty, "empty-key", 0);
    assert_true(get1(st, kbin, out, sizeof out));
    assert_string_equal(out, "bin");
    assert_true(get1(st, kbin2, out, sizeof out));
    assert_string_equal(out, "bin2");
    assert_true(get1(st, la, out, sizeof out));
    assert_string_equal(out, "la");
    assert_true(get1(st, lb, out, sizeof out));
    assert_string_equal(out, "lb");
    assert_true(get1(st, mark, out, sizeof out));
    assert_string_equal(out, "mark");
    assert_true(get1(st, empty, out, sizeof out));
    assert_string_equal(out, "empty-key");
    be->close(st);
    /* Another state (another process would do the same) finds them. */
    st = open_pool();
    assert_true(get1(st, kbin, out, sizeof out));
    assert_string_equal(out, "bin");
    assert_true(get1(st, lb, out, sizeof out));
    assert_string_equal(out, "lb");
    be->close(st);
    /* Plain keys are sent as they are: the server knows them by name. */
    st = open_pool();
    char kb[64], reply[128];
    hermes_bytes k = ukey(kb, sizeof kb, "plain");
    put(st, k, "x", 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "mg %s v", kb);
    int found = 0;
    for (int s = 0; s < 2; s++)
        if (memcached_server_command(s ? &g_b : &g_a, cmd, reply,
                                     sizeof reply) == 0 &&
            strncmp(reply, "VA 1", 4) == 0)
            found++;
    assert_int_equal(found, 1);
    be->close(st);
}

typedef struct winner {
    int calls;
    char val[64];
} winner;

static void winner_cb(void *arg, size_t i, const void *v, size_t len)
{
    winner *w = arg;

    (void)i;
    w->calls++;
    snprintf(w->val, sizeof w->val, "%.*s", (int)len, (const char *)v);
}

static void set_if_absent_reports_the_winner(void **state)
{
    (void)state;
    void *st = open_pool();
    char kb[64];
    hermes_bytes k = ukey(kb, sizeof kb, "tag");
    hermes_item first = {k, B("v1"), 0, HERMES_SET_IF_ABSENT};
    hermes_item second = {k, B("v2"), 0, HERMES_SET_IF_ABSENT};
    winner w = {0, ""};

    assert_int_equal(be->set(st, &first, 1, winner_cb, &w), HERMES_BE_OK);
    assert_int_equal(w.calls, 1);
    assert_string_equal(w.val, "v1");
    assert_int_equal(be->set(st, &second, 1, winner_cb, &w), HERMES_BE_OK);
    assert_int_equal(w.calls, 2);
    assert_string_equal(w.val, "v1");
    /* An empty value that won is reported too (memcached_get cannot tell
     * it from a missing key). */
    hermes_bytes k2 = ukey(kb, sizeof kb, "empty-tag");
    hermes_item e1 = {k2, {"", 0}, 0, HERMES_SET_IF_ABSENT};
    hermes_item e2 = {k2, B("v3"), 0, HERMES_SET_IF_ABSENT};
    assert_int_equal(be->set(st, &e1, 1, winner_cb, &w), HERMES_BE_OK);
    assert_int_equal(be->set(st, &e2, 1, winner_cb, &w), HERMES_BE_OK);
    assert_int_equal(w.calls, 4);
    assert_string_equal(w.val, "");
    be->close(st);
}

static void locks_are_token_checked(void **state)
{
    (void)state;
    void *st = open_pool();
    char kb[64], out[64];
    hermes_bytes k = ukey(kb, sizeof kb, "lock");
    int acq, rel;

    assert_int_equal(be->lock(st, k, B("me"), 10000, &acq), HERMES_BE_OK);
    assert_int_equal(acq, 1);
    assert_int_equal(be->lock(st, k, B("you"), 10000, &acq), HERMES_BE_OK);
    assert_int_equal(acq, 0);
    assert_int_equal(be->lock(st, k, B("me"), 10000, &acq), HERMES_BE_OK);
    assert_int_equal(acq, 0); /* not re-entrant */
    assert_int_equal(be->unlock(st, k, B("you"), &rel), HERMES_BE_OK);
    assert_int_equal(rel, 0);
    assert_true(get1(st, k, out, sizeof out));
    assert_string_equal(out, "me");
    assert_int_equal(be->unlock(st, k, B("me"), &rel), HERMES_BE_OK);
    assert_int_equal(rel, 1);
    assert_int_equal(be->unlock(st, k, B("me"), &rel), HERMES_BE_OK);
    assert_int_equal(rel, 0);
    /* Free at once after release, for anyone. */
    assert_int_equal(be->lock(st, k, B("you"), 10000, &acq), HERMES_BE_OK);
    assert_int_equal(acq, 1);
    assert_int_equal(be->unlock(st, k, B("you"), &rel), HERMES_BE_OK);
    assert_int_equal(rel, 1);
    assert_int_equal(be->lock(st, k, B("x"), 0, &acq), HERMES_BE_INVALID);
    assert_int_equal(acq, 0);
    be->close(st);
}

/* The server's view of a key's remaining TTL (meta get), whichever of
 * the two holds it: -2 when neither does. */
static long long server_ttl(const char *key)
{
    char cmd[300], reply[128];

    snprintf(cmd, sizeof cmd, "mg %s t", key);
    for (int s = 0; s < 2; s++)
        if (memcached_server_command(s ? &g_b : &g_a, cmd, reply,
                                     sizeof reply) == 0 &&
            strncmp(reply, "HD", 2) == 0) {
            const char *t = strstr(reply, " t");
            return t ? strtoll(t + 2, NULL, 10) : -3;
        }
    return -2;
}

static void ttls_round_up_and_pass_thirty_days(void **state)
{
    (void)state;
    void *st = open_pool();
    char k1[64], k2[64], k3[64], k4[64];

    put(st, ukey(k1, sizeof k1, "ttl1"), "x", 1);               /* 1 ms */
    put(st, ukey(k2, sizeof k2, "ttl2"), "x", 2500);            /* 2.5 s */
    put(st, ukey(k3, sizeof k3, "ttl3"), "x", 40u * 86400000u); /* 40 d */
    put(st, ukey(k4, sizeof k4, "ttl4"), "x", 0);
    long long t1 = server_ttl(k1), t2 = server_ttl(k2), t3 = server_ttl(k3),
              t4 = server_ttl(k4);
    /* Whole seconds rounded up, plus two for memcached's ticking clock
     * (read back one lower when it ticked since the set). */
    assert_true(t1 >= 2 && t1 <= 3);
    assert_true(t2 >= 4 && t2 <= 5);
    /* Past 30 days memcached takes an absolute time: read back as the
     * remaining duration, 40 days (not "already expired"), plus the 2 s
     * pad, a second its clock may read behind and a second of rounding
     * between the two start times it counts from. */
    assert_true(t3 >= 40 * 86400 - 5 && t3 <= 40 * 86400 + 4);
    assert_int_equal(t4, -1);
    be->close(st);
}

static void flush_only_when_allowed(void **state)
{
    (void)state;
    void *st = open_pool();
    char kb[64], out[64];
    hermes_bytes k = ukey(kb, sizeof kb, "flush");

    put(st, k, "x", 0);
    assert_int_equal(be->flush(st, B("t:")), HERMES_BE_UNSUPPORTED);
    assert_true(get1(st, k, out, sizeof out));
    be->close(st);
    st = open_kv("servers", g_servers, "flush_all", "yes", NULL);
    assert_int_equal(be->flush(st, B("t:")), HERMES_BE_OK);
    assert_false(get1(st, k, out, sizeof out));
    be->close(st);
}

typedef struct stats_seen {
    int multi_gets, per_server_a, per_server_b;
} stats_seen;

static void stat_cb(void *arg, const char *name, const char *value)
{
    stats_seen *s = arg;
    char a[64], b[64];

    snprintf(a, sizeof a, "127.0.0.1:%d cmd_get", g_a.port);
    snprintf(b, sizeof b, "127.0.0.1:%d cmd_get", g_b.port);
    if (strcmp(name, "multi_gets") == 0)
        s->multi_gets = atoi(value);
    if (strcmp(name, a) == 0)
        s->per_server_a = 1;
    if (strcmp(name, b) == 0)
        s->per_server_b = 1;
}

/* ------------------------------------------------------------- scan */

#define SCAN_KEYS 40

typedef struct scan_seen {
    const char *prefix;
    int count[SCAN_KEYS], others, calls, stop_after;
    int wrong_value, wrong_ttl;
    void *st; /* when set, the callback reads through the plugin */
    int reads_ok;
} scan_seen;

static int scan_cb(void *arg, const void *key, size_t klen, const void *value,
                   size_t vlen, int64_t ttl_ms)
{
    scan_seen *s = arg;
    size_t pl = strlen(s->prefix);
    char want[32];
    int i;

    s->calls++;
    if (klen <= pl || memcmp(key, s->prefix, pl) != 0) {
        s->others++;
        return 0;
    }
    /* The key is not NUL-terminated. */
    snprintf(want, sizeof want, "%.*s", (int)(klen - pl),
             (const char *)key + pl);
    i = atoi(want);
    if (i < 0 || i >= SCAN_KEYS) {
        s->others++;
        return 0;
    }
    s->count[i]++;
    snprintf(want, sizeof want, "value-%d", i);
    if (vlen != strlen(want) || memcmp(value, want, vlen) != 0)
        s->wrong_value++;
    /* Even keys never expire; odd ones have 60 s (62 s on the server). */
    if (i % 2 == 0 ? ttl_ms != -1 : (ttl_ms <= 0 || ttl_ms > 62000))
        s->wrong_ttl++;
    if (s->st) {
        char out[8];
        hermes_bytes k = {key, klen};
        got g;

        memset(&g, 0, sizeof g);
        if (be->get(s->st, &k, 1, got_cb, &g) == HERMES_BE_OK && g.hits[0])
            s->reads_ok++;
        (void)out;
    }
    return s->stop_after && s->calls >= s->stop_after;
}

/* A scan that must succeed; on failure says why. */
static void scan_ok(void *st, const char *prefix, scan_seen *s)
{
    int rc;

    g_detail[0] = '\0';
    rc = be->scan(st, B(prefix), scan_cb, s);
    if (rc != HERMES_BE_OK)
        fail_msg("scan: %d: %s", rc, g_detail);
}

/* SCAN_KEYS keys "<prefix><i>" = "value-<i>", odd ones with a TTL. */
static void scan_fill(void *st, char *prefix, size_t cap)
{
    char kb[64], vb[32];

    snprintf(prefix, cap, "scan%d.%d:", (int)getpid(), g_seq++);
    for (int i = 0; i < SCAN_KEYS; i++) {
        snprintf(kb, sizeof kb, "%s%d", prefix, i);
        snprintf(vb, sizeof vb, "value-%d", i);
        put(st, B(kb), vb, i % 2 ? 60000 : 0);
    }
    /* Beside them, keys of someone else. */
    snprintf(kb, sizeof kb, "x%s0", prefix);
    put(st, B(kb), "other", 0);
}

static void scan_lists_keys_with_values_and_ttls(void **state)
{
    (void)state;
    void *st = open_pool();
    char prefix[64];
    scan_seen s;
    long long a0 = memcached_server_stat(&g_a, "curr_items");

    assert_true(be->caps & HERMES_CAP_SCAN);
    scan_fill(st, prefix, sizeof prefix);
    /* The keys are on both servers, so both were dumped. */
    assert_true(memcached_server_stat(&g_a, "curr_items") > a0);
    memset(&s, 0, sizeof s);
    s.prefix = prefix;
    scan_ok(st, prefix, &s);
    for (int i = 0; i < SCAN_KEYS; i++)
        if (s.count[i] != 1)
            fail_msg("key %d reported %d times", i, s.count[i]);
    assert_int_equal(s.others, 0);
    assert_int_equal(s.wrong_value, 0);
    assert_int_equal(s.wrong_ttl, 0);
    be->close(st);
}

static void scan_stops_when_the_callback_says_so(void **state)
{
    (void)state;
    void *st = open_pool();
    char prefix[64];
    scan_seen s;

    scan_fill(st, prefix, sizeof prefix);
    memset(&s, 0, sizeof s);
    s.prefix = prefix;
    s.stop_after = 3;
    scan_ok(st, prefix, &s);
    assert_int_equal(s.calls, 3);
    be->close(st);
}

/* With one pooled client, a callback that reads through the plugin
 * would wait for the client the scan holds, and fail: it holds none. */
static void scan_holds_no_client_during_the_callback(void **state)
{
    (void)state;
    void *st =
        open_kv("servers", g_servers, "pool_size", "1", "connect_timeout_ms",
                "200", "poll_timeout_ms", "300", NULL);
    char prefix[64];
    scan_seen s;

    scan_fill(st, prefix, sizeof prefix);
    memset(&s, 0, sizeof s);
    s.prefix = prefix;
    s.st = st;
    scan_ok(st, prefix, &s);
    assert_int_equal(s.reads_ok, SCAN_KEYS);
    be->close(st);
}

static void scan_unsupported_says_which_server_and_why(void **state)
{
    (void)state;
    static const char *const no_crawler[] = {"-o", "no_lru_crawler", NULL};
    memcached_server c;
    char servers[64];
    void *st;

    memset(&c, 0, sizeof c);
    c.extra_args = no_crawler;
    assert_int_equal(memcached_server_start(&c), 0);
    snprintf(servers, sizeof servers, "127.0.0.1:%d", c.port);
    st = open_kv("servers", servers, NULL);
    g_detail[0] = '\0';
    assert_int_equal(
        be->scan(st, B("p:"), scan_cb, &(scan_seen){.prefix = "p:"}),
        HERMES_BE_UNSUPPORTED);
    if (!strstr(g_detail, servers) || !strstr(g_detail, "lru crawler disabled"))
        fail_msg("detail: %s", g_detail);
    be->close(st);
    memcached_server_stop(&c);
}

static void scan_of_a_dead_server_fails_and_says_why(void **state)
{
    (void)state;
    memcached_server c;
    char servers[64];
    void *st;

    memset(&c, 0, sizeof c);
    assert_int_equal(memcached_server_start(&c), 0);
    snprintf(servers, sizeof servers, "127.0.0.1:%d", c.port);
    memcached_server_stop(&c);
    st = open_kv("servers", servers, "connect_timeout_ms", "200",
                 "poll_timeout_ms", "300", NULL);
    g_detail[0] = '\0';
    assert_int_equal(
        be->scan(st, B("p:"), scan_cb, &(scan_seen){.prefix = "p:"}),
        HERMES_BE_IO);
    if (!strstr(g_detail, servers) || !strstr(g_detail, "refused"))
        fail_msg("detail: %s", g_detail);
    be->close(st);
}

/* ---------------------------------------------------- write batches */

typedef struct one_stat {
    const char *name;
    long long value;
} one_stat;

static void one_stat_cb(void *arg, const char *name, const char *value)
{
    one_stat *o = arg;

    if (strcmp(name, o->name) == 0)
        o->value = atoll(value);
}

/* One of the plugin's own counters, by stats(). */
static long long plugin_stat(void *st, const char *name)
{
    one_stat o = {name, -1};

    assert_int_equal(be->stats(st, one_stat_cb, &o), HERMES_BE_OK);
    return o.value;
}

#define BATCH_N 20

/* Sets and deletes of many keys are one pipelined request per server,
 * each command seen once by the servers (their cmd_set, delete_hits,
 * delete_misses) and each reply judged. */
static void writes_are_one_request_per_server(void **state)
{
    (void)state;
    void *st = open_pool();
    char kb[BATCH_N + 5][64], out[16];
    hermes_item items[BATCH_N];
    hermes_bytes keys[BATCH_N + 5];
    long long set0 = total("cmd_set"), b0 = plugin_stat(st, "write_batches");
    long long a0 = memcached_server_stat(&g_a, "cmd_set");

    for (int i = 0; i < BATCH_N + 5; i++)
        keys[i] = ukey(kb[i], sizeof kb[i], "batch");
    for (int i = 0; i < BATCH_N; i++)
        items[i] = (hermes_item){keys[i], B("v"), i % 2 ? 60000 : 0, 0};
    assert_int_equal(be->set(st, items, BATCH_N, NULL, NULL), HERMES_BE_OK);
    assert_int_equal(total("cmd_set") - set0, BATCH_N);
    /* Spread over both servers: one request to each. */
    long long on_a = memcached_server_stat(&g_a, "cmd_set") - a0;
    assert_true(on_a > 0 && on_a < BATCH_N);
    assert_int_equal(plugin_stat(st, "write_batches") - b0, 2);
    for (int i = 0; i < BATCH_N; i++)
        assert_true(get1(st, keys[i], out, sizeof out));

    long long hits0 = total("delete_hits"), miss0 = total("delete_misses");
    assert_int_equal(be->del(st, keys, BATCH_N + 5), HERMES_BE_OK);
    assert_int_equal(total("delete_hits") - hits0, BATCH_N);
    assert_int_equal(total("delete_misses") - miss0, 5);
    assert_int_equal(plugin_stat(st, "write_batches") - b0, 4);
    for (int i = 0; i < BATCH_N; i++)
        assert_false(get1(st, keys[i], out, sizeof out));
    be->close(st);
}

/* A command the server refuses inside a batch fails the batch with the
 * server's words, the others are stored, and the refused key's old value
 * is gone. */
static void a_refused_write_in_a_batch_is_reported_with_its_reason(void **state)
{
    (void)state;
    void *st =
        open_kv("servers", g_servers, "max_value_bytes", "4194304", NULL);
    char kb[3][64], out[16], *big = malloc(2u << 20);
    hermes_bytes k[3];

    for (int i = 0; i < 3; i++)
        k[i] = ukey(kb[i], sizeof kb[i], "refused");
    memset(big, 'y', 2u << 20);
    put(st, k[1], "old", 0);
    hermes_item items[3] = {{k[0], B("a"), 0, 0},
                            {k[1], {big, 2u << 20}, 0, 0},
                            {k[2], B("c"), 0, 0}};
    g_detail[0] = '\0';
    assert_int_equal(be->set(st, items, 3, NULL, NULL), HERMES_BE_TOOBIG);
    if (!strstr(g_detail, "SERVER_ERROR object too large"))
        fail_msg("detail: %s", g_detail);
    assert_true(get1(st, k[0], out, sizeof out));
    assert_string_equal(out, "a");
    assert_true(get1(st, k[2], out, sizeof out));
    assert_false(get1(st, k[1], out, sizeof out));
    free(big);
    be->close(st);
}

/* A batch whose keys live on a dead server fails with the reason, and the
 * other server's keys are written. */
static void a_batch_with_a_server_gone_says_why(void **state)
{
    (void)state;
    memcached_server c;
    char servers[96], kb[BATCH_N][64];
    hermes_item items[BATCH_N];
    void *st;

    memset(&c, 0, sizeof c);
    assert_int_equal(memcached_server_start(&c), 0);
    snprintf(servers, sizeof servers, "127.0.0.1:%d, 127.0.0.1:%d", g_a.port,
             c.port);
    memcached_server_stop(&c);
    st = open_kv("servers", servers, "connect_timeout_ms", "200",
                 "poll_timeout_ms", "300", NULL);
    long long set0 = memcached_server_stat(&g_a, "cmd_set");
    for (int i = 0; i < BATCH_N; i++)
        items[i] =
            (hermes_item){ukey(kb[i], sizeof kb[i], "gone"), B("v"), 0, 0};
    g_detail[0] = '\0';
    assert_int_equal(be->set(st, items, BATCH_N, NULL, NULL), HERMES_BE_IO);
    if (!strstr(g_detail, "refused"))
        fail_msg("detail: %s", g_detail);
    long long on_a = memcached_server_stat(&g_a, "cmd_set") - set0;
    assert_true(on_a > 0 && on_a < BATCH_N);
    be->close(st);
}

static void stats_per_server(void **state)
{
    (void)state;
    void *st = open_pool();
    char kb[64], out[8];
    stats_seen s = {0, 0, 0};

    get1(st, ukey(kb, sizeof kb, "stats"), out, sizeof out);
    get1(st, ukey(kb, sizeof kb, "stats"), out, sizeof out);
    assert_int_equal(be->stats(st, stat_cb, &s), HERMES_BE_OK);
    assert_int_equal(s.multi_gets, 2);
    assert_true(s.per_server_a && s.per_server_b);
    be->close(st);
}

static void too_big_values_are_refused_and_old_ones_gone(void **state)
{
    (void)state;
    void *st = open_kv("servers", g_servers, "max_value_bytes", "4096", NULL);
    char kb[64], out[8], *big = malloc(5000);
    hermes_bytes k = ukey(kb, sizeof kb, "big");

    memset(big, 'x', 5000);
    put(st, k, "old", 0);
    hermes_item it = {k, {big, 5000}, 0, 0};
    assert_int_equal(be->set(st, &it, 1, NULL, NULL), HERMES_BE_TOOBIG);
    assert_false(get1(st, k, out, sizeof out));
    be->close(st);
    /* And the server's own limit (1 MiB items) when ours is higher. */
    st = open_kv("servers", g_servers, "max_value_bytes", "4194304", NULL);
    big = realloc(big, 2u << 20);
    memset(big, 'y', 2u << 20);
    put(st, k, "old", 0);
    hermes_item it2 = {k, {big, 2u << 20}, 0, 0};
    assert_int_equal(be->set(st, &it2, 1, NULL, NULL), HERMES_BE_TOOBIG);
    assert_false(get1(st, k, out, sizeof out));
    free(big);
    be->close(st);
}

static void one_server_gone_fails_fast_and_comes_back(void **state)
{
    (void)state;
    void *st = open_kv("servers", g_servers, "connect_timeout_ms", "200",
                       "poll_timeout_ms", "300", "retry_timeout_s", "1", NULL);
    enum { N = 32 };
    char kb[N][64], out[64];
    hermes_bytes keys[N];
    got g;

    for (int i = 0; i < N; i++) {
        keys[i] = ukey(kb[i], sizeof kb[i], "gone");
        put(st, keys[i], kb[i], 0);
    }
    memcached_server_kill(&g_b);
    int ok = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        uint64_t t0 = clock_ms(CLOCK_MONOTONIC);
        memset(&g, 0, sizeof g);
        int rc = be->get(st, &keys[i], 1, got_cb, &g);
        assert_true(clock_ms(CLOCK_MONOTONIC) - t0 < 600);
        if (rc == HERMES_BE_OK) {
            /* on the live server: the right value */
            assert_int_equal(g.hits[0], 1);
            assert_memory_equal(g.val[0], kb[i], g.len[0]);
            ok++;
        } else {
            assert_int_equal(rc, HERMES_BE_IO);
            failed++;
        }
    }
    assert_true(ok > 0 && failed > 0);
    /* A batch touching the dead server fails as a whole. */
    memset(&g, 0, sizeof g);
    assert_int_equal(be->get(st, keys, N, got_cb, &g), HERMES_BE_IO);
    assert_int_equal(memcached_server_restart(&g_b), 0);
    /* Retried after retry_timeout_s: the restarted (empty) server
     * answers again; keys it held are misses, the others still hit. */
    uint64_t t0 = clock_ms(CLOCK_MONOTONIC);
    int rc;
    do {
        memset(&g, 0, sizeof g);
        rc = be->get(st, keys, N, got_cb, &g);
        if (rc != HERMES_BE_OK)
            usleep(100000);
    } while (rc != HERMES_BE_OK && clock_ms(CLOCK_MONOTONIC) - t0 < 5000);
    assert_int_equal(rc, HERMES_BE_OK);
    int hits = 0;
    for (int i = 0; i < N; i++)
        hits += g.hits[i];
    assert_int_equal(hits, ok);
    (void)out;
    be->close(st);
}

static void fork_child_uses_its_own_connections(void **state)
{
    (void)state;
    void *st = open_pool();
    char kb[64], out[64];
    hermes_bytes k = ukey(kb, sizeof kb, "fork");

    put(st, k, "parent", 0);
    /* The parent's client has read and written, so a child reusing it
     * would connect nothing.  Each total() connects to each server
     * itself: what it adds is measured, so that only the child's
     * connects count below. */
    assert_true(get1(st, k, out, sizeof out));
    long long conns0 = total("total_connections");
    long long own = total("total_connections") - conns0;
    conns0 += own;
    pid_t pid = fork();
    if (pid == 0) {
        char o[64];
        int okc = get1(st, k, o, sizeof o) && strcmp(o, "parent") == 0;
        hermes_item it = {k, B("child"), 0, 0};
        okc = okc && be->set(st, &it, 1, NULL, NULL) == HERMES_BE_OK;
        be->close(st);
        _exit(okc ? 0 : 1);
    }
    int status;
    assert_int_equal(cw_wait("memcached_plugin", pid, CW_TIMEOUT_MS, &status),
                     0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The child connected afresh... */
    assert_true(total("total_connections") > conns0 + own);
    /* ...and the parent's connection still works. */
    assert_true(get1(st, k, out, sizeof out));
    assert_string_equal(out, "child");
    be->close(st);
}

static void *hammer(void *arg)
{
    void *st = arg;
    char kb[64], v[64], out[64];

    for (int i = 0; i < 200; i++) {
        snprintf(kb, sizeof kb, "t%d:hammer:%d", (int)getpid(), i % 17);
        snprintf(v, sizeof v, "v%d", i % 17);
        hermes_bytes k = B(kb);
        hermes_item it = {k, B(v), 0, 0};
        if (be->set(st, &it, 1, NULL, NULL) != HERMES_BE_OK)
            return "set failed";
        if (get1(st, k, out, sizeof out) && strcmp(out, v) != 0)
            return "wrong value";
    }
    return NULL;
}

static void threads_share_one_state(void **state)
{
    (void)state;
    void *st = open_kv("servers", g_servers, "pool_size", "3", NULL);
    pthread_t t[8];

    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, hammer, st);
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r)
            fail_msg("%s", (const char *)r);
    }
    be->close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor),
        cmocka_unit_test(config_errors_name_the_key),
        cmocka_unit_test(opens_with_every_server_down),
        cmocka_unit_test(set_get_and_spread_over_both_servers),
        cmocka_unit_test(a_batch_is_one_multiget),
        cmocka_unit_test(keys_are_binary_safe_and_stable),
        cmocka_unit_test(set_if_absent_reports_the_winner),
        cmocka_unit_test(locks_are_token_checked),
        cmocka_unit_test(ttls_round_up_and_pass_thirty_days),
        cmocka_unit_test(stats_per_server),
        cmocka_unit_test(writes_are_one_request_per_server),
        cmocka_unit_test(
            a_refused_write_in_a_batch_is_reported_with_its_reason),
        cmocka_unit_test(a_batch_with_a_server_gone_says_why),
        cmocka_unit_test(scan_lists_keys_with_values_and_ttls),
        cmocka_unit_test(scan_stops_when_the_callback_says_so),
        cmocka_unit_test(scan_holds_no_client_during_the_callback),
        cmocka_unit_test(scan_unsupported_says_which_server_and_why),
        cmocka_unit_test(scan_of_a_dead_server_fails_and_says_why),
        cmocka_unit_test(too_big_values_are_refused_and_old_ones_gone),
        cmocka_unit_test(fork_child_uses_its_own_connections),
        cmocka_unit_test(threads_share_one_state),
        cmocka_unit_test(flush_only_when_allowed),
        cmocka_unit_test(one_server_gone_fails_fast_and_comes_back),
    };
    be = hermes_backend_entry();
    if (memcached_server_start(&g_a) != 0 || memcached_server_start(&g_b) != 0)
        return 1;
    snprintf(g_servers, sizeof g_servers, "127.0.0.1:%d, 127.0.0.1:%d",
             g_a.port, g_b.port);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    memcached_server_stop(&g_a);
    memcached_server_stop(&g_b);
    return failed;
}
