/*
 * The redis plugin on a Redis Cluster (cluster = ...), driven through its
 * ABI as the loader would: key slots against redis's own CLUSTER KEYSLOT,
 * the config checks, batches split over three real masters, redirections
 * after a slot moves (MOVED), while it moves (ASK) and half-moved
 * (TRYAGAIN), scripts missing on a node, and hostile CLUSTER SLOTS replies
 * from a fake server.  The plugin's sources are compiled in.
 *
 * Set HERMES_TEST_VERBOSE=1 to see the plugin's log on stderr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hermes/backend.h>
#include <hiredis/hiredis.h>

#include "../support/test_host.h"
#include "../support/fake_redis.h"
#include "../support/redis_cluster.h"
#include "slot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

const hermes_backend *hermes_backend_entry(void);

static const hermes_backend *be;
static redis_cluster g_cl = {.masters = 3, .replicas = 0};
static char g_seeds[256];

/* ------------------------------------------------------------ fake host */

static void host_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (getenv("HERMES_TEST_VERBOSE"))
        fprintf(stderr, "plugin log [%d]: %s\n", level, msg);
}

static const hermes_host host = TEST_HOST(host_log);

/* ------------------------------------------------------------- helpers */

static hermes_bytes B(const char *s)
{
    hermes_bytes b = {s, strlen(s)};

    return b;
}

/* open() with "key", "value", ... pairs; returns its status, the state in
 * *st and the blamed pair in *kv_index. */
static int try_open(const char *const *pairs, void **st, int *kv_index,
                    char *msg, size_t msg_size)
{
    hermes_kv kv[16];
    hermes_open_error err;
    size_t n = 0;
    int rc;

    for (; pairs[0]; pairs += 2) {
        kv[n].key = pairs[0];
        kv[n].value = pairs[1];
        kv[n].line = (int)n + 1;
        n++;
    }
    *st = NULL;
    err.kv_index = -1;
    err.msg[0] = '\0';
    rc = be->open(&host, kv, n, st, &err);
    if (kv_index)
        *kv_index = err.kv_index;
    if (msg)
        snprintf(msg, msg_size, "%s", err.msg);
    return rc;
}

#define PAIRS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void *open_cluster(const char *seeds)
{
    void *st;
    char msg[256];

    if (try_open(PAIRS("cluster", seeds, "connect_timeout_ms", "500",
                       "command_timeout_ms", "1000"),
                 &st, NULL, msg, sizeof msg) != HERMES_BE_OK)
        fail_msg("open: %s", msg);
    return st;
}

#define MAXGOT 1024
typedef struct got {
    int hits[MAXGOT];
    char val[MAXGOT][64];
} got;

static void got_cb(void *arg, size_t i, const void *v, size_t len)
{
    got *g = arg;

    if (i >= MAXGOT || len >= sizeof g->val[0])
        return;
    g->hits[i]++;
    memcpy(g->val[i], v, len);
    g->val[i][len] = '\0';
}

/* The stat `name` of the plugin state, or -1. */
typedef struct stat_want {
    const char *name;
    long long value;
} stat_want;

static void stat_cb(void *arg, const char *name, const char *value)
{
    stat_want *w = arg;

    if (strcmp(name, w->name) == 0)
        w->value = atoll(value);
}

static long long stat_of(void *st, const char *name)
{
    stat_want w = {name, -1};

    be->stats(st, stat_cb, &w);
    return w.value;
}

static long long node_int(int i, const char *fmt, ...)
{
    redisContext *c = redis_cluster_connect(&g_cl, i);
    redisReply *r;
    long long v = -1;
    va_list ap;

    assert_non_null(c);
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

static void node_cmd(int i, const char *fmt, ...)
{
    redisContext *c = redis_cluster_connect(&g_cl, i);
    redisReply *r;
    va_list ap;

    assert_non_null(c);
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* calls of `cmd` in node i's INFO commandstats */
static long long node_calls(int i, const char *cmd)
{
    redisContext *c = redis_cluster_connect(&g_cl, i);
    redisReply *r = redisCommand(c, "INFO commandstats");
    char needle[64];
    long long v = 0;

    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", cmd);
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, needle);
        if (p)
            v = atoll(p + strlen(needle));
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

/* A key of the form "<prefix><n>" whose slot node `want` serves. */
static void key_on(int want, const char *prefix, char *buf, size_t size)
{
    for (int n = 0;; n++) {
        snprintf(buf, size, "%s%d", prefix, n);
        if (redis_cluster_owner(&g_cl, 0, rslot_of(buf, strlen(buf))) == want)
            return;
    }
}

static int empty_all(void **state)
{
    (void)state;
    for (int i = 0; i < g_cl.n; i++)
        node_cmd(i, "FLUSHALL");
    return 0;
}

/* -------------------------------------------------------------- tests */

static void key_slots_are_the_ones_redis_computes(void **state)
{
    redisContext *c = redis_cluster_connect(&g_cl, 0);
    unsigned char key[48];
    int checked = 0;

    (void)state;
    assert_non_null(c);
    for (int i = 0; i < 4000; i++) {
        size_t len = (size_t)(i % 40);
        const char *argv[3] = {"CLUSTER", "KEYSLOT", (const char *)key};
        size_t lens[3] = {7, 7, len};

        assert_int_equal(getrandom(key, len, 0), (ssize_t)len);
        /* Braces in every position and number, as hash tags go. */
        for (size_t k = 0; k < len; k++)
            if (key[k] % 7 == 0)
                key[k] = (i & 1) ? '{' : '}';
        redisReply *r = redisCommandArgv(c, 3, argv, lens);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        if ((long long)rslot_of(key, len) != r->integer)
            fail_msg("slot of key %d (len %zu): ours %u, redis %lld", i, len,
                     rslot_of(key, len), r->integer);
        freeReplyObject(r);
        checked++;
    }
    /* And the spec's own examples and our key shapes. */
    static const char *const named[] = {"foo",
                                        "{user1000}.following",
                                        "{user1000}.followers",
                                        "foo{}{bar}",
                                        "foo{{bar}}zap",
                                        "foo{bar}{zap}",
                                        "",
                                        "{",
                                        "}",
                                        "{}",
                                        "cache:tag:rock",
                                        "cache:entry:f:AAAAAAAAAAAAAAAAAAAAAA",
                                        "cache:lock:f:x",
                                        "cache:tag:{tag}"};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        const char *argv[3] = {"CLUSTER", "KEYSLOT", named[i]};
        size_t lens[3] = {7, 7, strlen(named[i])};
        redisReply *r = redisCommandArgv(c, 3, argv, lens);

        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(rslot_of(named[i], strlen(named[i])), r->integer);
        freeReplyObject(r);
    }
    assert_int_equal(rslot_crc16("123456789", 9), 0x31c3);
    redisFree(c);
    print_message("%d random keys and %zu named ones: same slots\n", checked,
                  sizeof named / sizeof named[0]);
}

static void cluster_with_single_server_keys_is_refused(void **state)
{
    static const char *const bad[] = {"host", "port", "socket", "db"};
    static const char *const vals[] = {"127.0.0.1", "6379", "/tmp/r.sock", "1"};
    void *st;
    int idx;
    char msg[256];

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(
            try_open(PAIRS("cluster", "127.0.0.1:7000", bad[i], vals[i]), &st,
                     &idx, msg, sizeof msg),
            HERMES_BE_INVALID);
        assert_int_equal(idx, 1); /* blames the single-server key */
        assert_non_null(strstr(msg, "cluster = (line 1)"));
        /* The other order blames it too. */
        assert_int_equal(
            try_open(PAIRS(bad[i], vals[i], "cluster", "127.0.0.1:7000"), &st,
                     &idx, msg, sizeof msg),
            HERMES_BE_INVALID);
        assert_int_equal(idx, 0);
    }
}

static void malformed_seed_lists_are_refused(void **state)
{
    static const char *const bad[] = {
        "",          "127.0.0.1",  "127.0.0.1:0", "127.0.0.1:65536",
        ":7000",     "h:70x",      "a:1,,b:2",    "a:1, ",
        "[::1]7000", "h\x01:7000", "a b:7000",    "h:-1"};
    void *st;
    int idx;
    char msg[256];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (try_open(PAIRS("pool_size", "2", "cluster", bad[i]), &st, &idx, msg,
                     sizeof msg) != HERMES_BE_INVALID)
            fail_msg("cluster = '%s' was accepted", bad[i]);
        assert_int_equal(idx, 1);
        assert_non_null(strstr(msg, "host:port"));
    }
    /* Good ones: spaces around, IPv6 in brackets, names. */
    assert_int_equal(
        try_open(PAIRS("cluster", " 127.0.0.1:7000 ,[::1]:7001,redis-a:7002"),
                 &st, &idx, msg, sizeof msg),
        HERMES_BE_OK);
    be->close(st);
}

static void a_batch_is_split_over_every_master_and_read_back(void **state)
{
    enum { N = 300 };
    void *st = open_cluster(g_seeds);
    hermes_item items[N];
    hermes_bytes keys[N];
    char kbuf[N][32], vbuf[N][32];
    got *g = calloc(1, sizeof *g);

    (void)state;
    for (int i = 0; i < N; i++) {
        snprintf(kbuf[i], sizeof kbuf[i], "app:k%d", i);
        snprintf(vbuf[i], sizeof vbuf[i], "v%d", i);
        keys[i] = B(kbuf[i]);
        items[i] = (hermes_item){keys[i], B(vbuf[i]), 60000, 0};
    }
    assert_int_equal(be->set(st, items, N, NULL, NULL), HERMES_BE_OK);
    assert_int_equal(be->get(st, keys, N, got_cb, g), HERMES_BE_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(g->hits[i], 1);
        assert_string_equal(g->val[i], vbuf[i]);
    }
    long long total = 0;
    for (int i = 0; i < g_cl.masters; i++) {
        long long n = node_int(i, "DBSIZE");
        print_message("master %d (port %d): %lld keys\n", i, g_cl.node[i].port,
                      n);
        assert_true(n > N / 6); /* spread, not all on one */
        total += n;
    }
    assert_int_equal(total, N);
    assert_int_equal(be->del(st, keys, N), HERMES_BE_OK);
    memset(g, 0, sizeof *g);
    assert_int_equal(be->get(st, keys, N, got_cb, g), HERMES_BE_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(g->hits[i], 0);
    free(g);
    be->close(st);
}

static void a_get_over_three_masters_is_one_mget_on_each(void **state)
{
    void *st = open_cluster(g_seeds);
    char k[3][32];
    hermes_bytes keys[3];
    got g = {0};

    (void)state;
    for (int i = 0; i < 3; i++) {
        key_on(i, "rt:", k[i], sizeof k[i]);
        keys[i] = B(k[i]);
        hermes_item it = {keys[i], B("x"), 0, 0};
        assert_int_equal(be->set(st, &it, 1, NULL, NULL), HERMES_BE_OK);
    }
    for (int i = 0; i < 3; i++)
        node_cmd(i, "CONFIG RESETSTAT");
    assert_int_equal(be->get(st, keys, 3, got_cb, &g), HERMES_BE_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g.hits[i], 1);
        assert_int_equal(node_calls(i, "mget"), 1);
        assert_int_equal(node_calls(i, "get"), 0);
    }
    be->close(st);
}

static void set_if_absent_lock_and_unlock_go_to_the_keys_node(void **state)
{
    void *st = open_cluster(g_seeds);
    char k[3][32];
    got g = {0};
    int acquired, released;

    (void)state;
    for (int i = 0; i < 3; i++)
        key_on(i, "lk:", k[i], sizeof k[i]);
    hermes_item it[2] = {{B(k[0]), B("first"), 0, HERMES_SET_IF_ABSENT},
                         {B(k[1]), B("one"), 0, HERMES_SET_IF_ABSENT}};
    assert_int_equal(be->set(st, it, 2, got_cb, &g), HERMES_BE_OK);
    it[0].value = B("second");
    assert_int_equal(be->set(st, it, 1, got_cb, &g), HERMES_BE_OK);
    assert_string_equal(g.val[0], "first"); /* the winner, reported */
    assert_int_equal(be->lock(st, B(k[2]), B("tok"), 10000, &acquired),
                     HERMES_BE_OK);
    assert_int_equal(acquired, 1);
    assert_int_equal(be->lock(st, B(k[2]), B("tok"), 10000, &acquired),
                     HERMES_BE_OK);
    assert_int_equal(acquired, 0);
    assert_int_equal(node_int(2, "EXISTS %s", k[2]), 1);
    /* The script is gone from every node (a restart, SCRIPT FLUSH). */
    for (int i = 0; i < 3; i++)
        node_cmd(i, "SCRIPT FLUSH");
    assert_int_equal(be->unlock(st, B(k[2]), B("other"), &released),
                     HERMES_BE_OK);
    assert_int_equal(released, 0);
    assert_int_equal(be->unlock(st, B(k[2]), B("tok"), &released),
                     HERMES_BE_OK);
    assert_int_equal(released, 1);
    assert_int_equal(node_int(2, "EXISTS %s", k[2]), 0);
    /* Another node, which never saw the script: NOSCRIPT, then EVAL. */
    key_on(1, "lk2:", k[1], sizeof k[1]);
    assert_int_equal(be->lock(st, B(k[1]), B("t2"), 10000, &acquired),
                     HERMES_BE_OK);
    assert_int_equal(acquired, 1);
    assert_int_equal(be->unlock(st, B(k[1]), B("t2"), &released), HERMES_BE_OK);
    assert_int_equal(released, 1);
    be->close(st);
}

typedef struct seen {
    int n, foreign;
} seen;

static int scan_cb(void *arg, const void *key, size_t klen, const void *v,
                   size_t vlen, int64_t ttl)
{
    seen *s = arg;

    (void)v;
    (void)vlen;
    (void)ttl;
    if (klen >= 4 && memcmp(key, "fl:", 3) == 0)
        s->n++;
    else
        s->foreign++;
    return 0;
}

static void flush_and_scan_walk_every_master(void **state)
{
    enum { N = 200 };
    void *st = open_cluster(g_seeds);
    char k[32];
    seen s = {0, 0};

    (void)state;
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "fl:%d", i);
        hermes_item it = {B(k), B("v"), 0, 0};
        assert_int_equal(be->set(st, &it, 1, NULL, NULL), HERMES_BE_OK);
        snprintf(k, sizeof k, "other:%d", i);
        hermes_item o = {B(k), B("v"), 0, 0};
        assert_int_equal(be->set(st, &o, 1, NULL, NULL), HERMES_BE_OK);
    }
    assert_int_equal(be->scan(st, B("fl:"), scan_cb, &s), HERMES_BE_OK);
    assert_int_equal(s.n, N);
    assert_int_equal(s.foreign, 0);
    assert_int_equal(be->flush(st, B("fl:")), HERMES_BE_OK);
    long long total = 0;
    for (int i = 0; i < g_cl.masters; i++)
        total += node_int(i, "DBSIZE");
    assert_int_equal(total, N); /* the other application's keys stay */
    be->close(st);
}

static void a_moved_slot_is_followed_and_remembered(void **state)
{
    void *st = open_cluster(g_seeds);
    char k[32];
    got g = {0};

    (void)state;
    key_on(0, "mv:", k, sizeof k);
    hermes_item it = {B(k), B("moving"), 0, 0};
    assert_int_equal(be->set(st, &it, 1, NULL, NULL), HERMES_BE_OK);
    unsigned slot = rslot_of(k, strlen(k));
    assert_int_equal(redis_cluster_move_slot(&g_cl, slot, 1, 10), 0);
    long long before = stat_of(st, "moved");
    hermes_bytes key = B(k);
    assert_int_equal(be->get(st, &key, 1, got_cb, &g), HERMES_BE_OK);
    assert_string_equal(g.val[0], "moving");
    assert_int_equal(stat_of(st, "moved"), before + 1);
    /* The map knows now: no redirection the second time. */
    assert_int_equal(be->get(st, &key, 1, got_cb, &g), HERMES_BE_OK);
    assert_int_equal(stat_of(st, "moved"), before + 1);
    assert_int_equal(redis_cluster_move_slot(&g_cl, slot, 0, 10), 0);
    be->close(st);
}

static void a_migrating_slot_is_asked_and_a_split_batch_fails_open(void **state)
{
    void *st = open_cluster(g_seeds);
    char a[32], b[32];
    got g = {0};

    (void)state;
    /* Two keys of one slot (one hash tag), owned by node 0. */
    for (int n = 0;; n++) {
        snprintf(a, sizeof a, "{ask%d}a", n);
        snprintf(b, sizeof b, "{ask%d}b", n);
        if (redis_cluster_owner(&g_cl, 0, rslot_of(a, strlen(a))) == 0)
            break;
    }
    unsigned slot = rslot_of(a, strlen(a));
    hermes_item it[2] = {{B(a), B("A"), 0, 0}, {B(b), B("B"), 0, 0}};
    assert_int_equal(be->set(st, it, 2, NULL, NULL), HERMES_BE_OK);
    hermes_bytes ka = B(a), kb = B(b), both[2] = {ka, kb};
    assert_int_equal(be->get(st, both, 2, got_cb, &g), HERMES_BE_OK);

    /* Half-migrate by hand: a goes to node 1, b stays. */
    redisContext *c0 = redis_cluster_connect(&g_cl, 0);
    redisContext *c1 = redis_cluster_connect(&g_cl, 1);
    redisReply *id0 = redisCommand(c0, "CLUSTER MYID");
    redisReply *id1 = redisCommand(c1, "CLUSTER MYID");
    freeReplyObject(
        redisCommand(c1, "CLUSTER SETSLOT %u IMPORTING %s", slot, id0->str));
    freeReplyObject(
        redisCommand(c0, "CLUSTER SETSLOT %u MIGRATING %s", slot, id1->str));
    redisReply *m = redisCommand(c0, "MIGRATE 127.0.0.1 %d %s 0 5000",
                                 g_cl.node[1].port, a);
    if (m->type != REDIS_REPLY_STATUS)
        fail_msg("MIGRATE: %s", m->str);
    freeReplyObject(m);

    long long ask = stat_of(st, "ask"), tryagain = stat_of(st, "tryagain");
    memset(&g, 0, sizeof g);
    assert_int_equal(be->get(st, &ka, 1, got_cb, &g), HERMES_BE_OK);
    assert_string_equal(g.val[0], "A"); /* asked node 1 */
    assert_int_equal(stat_of(st, "ask"), ask + 1);
    memset(&g, 0, sizeof g);
    assert_int_equal(be->get(st, &kb, 1, got_cb, &g), HERMES_BE_OK);
    assert_string_equal(g.val[0], "B"); /* still on node 0 */
    /* Both at once: the source has one of them, TRYAGAIN: fail open. */
    assert_int_equal(be->get(st, both, 2, got_cb, &g), HERMES_BE_IO);
    assert_int_equal(stat_of(st, "tryagain"), tryagain + 1);

    /* Finish the move. */
    m = redisCommand(c0, "MIGRATE 127.0.0.1 %d %s 0 5000", g_cl.node[1].port,
                     b);
    freeReplyObject(m);
    for (int i = 0; i < g_cl.n; i++)
        node_cmd(i, "CLUSTER SETSLOT %u NODE %s", slot, id1->str);
    memset(&g, 0, sizeof g);
    assert_int_equal(be->get(st, both, 2, got_cb, &g), HERMES_BE_OK);
    assert_string_equal(g.val[0], "A");
    assert_string_equal(g.val[1], "B");
    freeReplyObject(id0);
    freeReplyObject(id1);
    redisFree(c0);
    redisFree(c1);
    assert_int_equal(redis_cluster_move_slot(&g_cl, slot, 0, 10), 0);
    be->close(st);
}

static void seeds_that_are_down_are_skipped(void **state)
{
    char seeds[300];
    void *st;
    got g = {0};
    hermes_bytes k = B("anything");

    (void)state;
    /* A dead seed first: the map comes from the next one. */
    snprintf(seeds, sizeof seeds, "127.0.0.1:1, %s", g_seeds);
    st = open_cluster(seeds);
    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_OK);
    assert_int_equal(stat_of(st, "cluster_masters"), 3);
    be->close(st);
    /* No seed answers: calls fail open, at once, and do not crash. */
    st = open_cluster("127.0.0.1:1");
    assert_int_equal(be->get(st, &k, 1, got_cb, &g), HERMES_BE_IO);
    hermes_item it = {k, B("v"), 0, 0};
    assert_int_equal(be->set(st, &it, 1, NULL, NULL), HERMES_BE_IO);
    assert_int_equal(be->flush(st, B("x:")), HERMES_BE_IO);
    be->close(st);
}

/* ---------------------------------------------- hostile CLUSTER SLOTS */

typedef struct hostile {
    const char *reply; /* to CLUSTER SLOTS */
    size_t len;
    int flood; /* send reply again and again */
} hostile;

static int answer_slots(fake_redis *f, int fd, int argc, char **argv,
                        const size_t *lens, void *arg)
{
    hostile *h = arg;

    (void)argc;
    (void)lens;
    if (strcasecmp(argv[0], "CLUSTER") == 0) {
        if (h->flood) {
            fake_redis_send(fd, h->reply, h->len);
            fake_redis_flood(f, fd, "1234567890", 10, 1u << 30);
            return 1;
        }
        fake_redis_send(fd, h->reply, h->len);
        return 0;
    }
    /* Anything else: as if the slot map were right. */
    fake_redis_send(fd, "*1\r\n$-1\r\n", 9);
    return 0;
}

/* A map of n ranges, each to its own port: n distinct nodes. */
static char *many_nodes(int n, size_t *len)
{
    size_t cap = (size_t)n * 96 + 32, off = 0;
    char *s = malloc(cap);

    off += (size_t)snprintf(s + off, cap - off, "*%d\r\n", n);
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(s + off, cap - off,
                                "*3\r\n:%d\r\n:%d\r\n*2\r\n$9\r\n127.0.0.1\r\n"
                                ":%d\r\n",
                                i, i, 20000 + i);
    *len = off;
    return s;
}

/* A slot map may take 16 MiB (16384 ranges of a few nodes), and the
 * reader's buffer doubles on its way there; the flood below would send
 * 1 GiB.  AddressSanitizer keeps freed buffers in quarantine, so its
 * builds hold several generations of that buffer at once. */
#ifdef __SANITIZE_ADDRESS__
#define GROWTH_LIMIT (320u << 20)
#else
#define GROWTH_LIMIT (64u << 20)
#endif

static void hostile_slot_maps_are_refused_without_harm(void **state)
{
    static const char *const replies[] = {
        "*1000000000\r\n",                                     /* huge header */
        "*1\r\n*3\r\n:5\r\n:2\r\n*2\r\n$1\r\nh\r\n:1\r\n",     /* start > end */
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n", /* slot */
        "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n:0\r\n",    /* port 0 */
        "*1\r\n*2\r\n:0\r\n:10\r\n",                           /* no master */
        "*1\r\n:7\r\n",                                        /* not a range */
        "*0\r\n",                                              /* no slots */
        "$5\r\nhello\r\n", /* not an array */
        "-ERR This instance has cluster support disabled\r\n",
        "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*0\r\n", /* nested too deep */
    };
    char seeds[64];
    hermes_bytes k = B("k");
    got g;

    (void)state;
    for (size_t i = 0; i < sizeof replies / sizeof replies[0] + 2; i++) {
        size_t len = 0;
        char *big = NULL;
        hostile h = {NULL, 0, 0};

        if (i < sizeof replies / sizeof replies[0]) {
            h.reply = replies[i];
            h.len = strlen(replies[i]);
        } else if (i == sizeof replies / sizeof replies[0]) {
            big = many_nodes(1000, &len); /* more nodes than we keep */
            h.reply = big;
            h.len = len;
        } else { /* a valid start, then an endless string */
            h.reply = "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n$100000000\r\n";
            h.len = strlen(h.reply);
            h.flood = 1;
        }
        fake_redis *f = fake_redis_start(answer_slots, &h);
        assert_non_null(f);
        fake_redis_reset_peak_rss(f);
        uint64_t rss = fake_redis_rss_now();
        snprintf(seeds, sizeof seeds, "127.0.0.1:%d", fake_redis_port(f));
        void *st = open_cluster(seeds);
        int rc = be->get(st, &k, 1, got_cb, &g);
        if (rc == HERMES_BE_OK)
            fail_msg("hostile reply %zu was taken as a slot map", i);
        be->close(st);
        if (fake_redis_peak_rss(f) > rss + GROWTH_LIMIT)
            fail_msg(
                "reply %zu: resident memory grew by %llu MiB", i,
                (unsigned long long)((fake_redis_peak_rss(f) - rss) >> 20));
        fake_redis_stop(f);
        free(big);
    }
}

int main(void)
{
    be = hermes_backend_entry();
    if (redis_cluster_start(&g_cl) != 0)
        return 1;
    redis_cluster_seeds(&g_cl, 1, g_seeds, sizeof g_seeds);
#define T(f) cmocka_unit_test_setup(f, empty_all)
    const struct CMUnitTest tests[] = {
        T(key_slots_are_the_ones_redis_computes),
        T(cluster_with_single_server_keys_is_refused),
        T(malformed_seed_lists_are_refused),
        T(a_batch_is_split_over_every_master_and_read_back),
        T(a_get_over_three_masters_is_one_mget_on_each),
        T(set_if_absent_lock_and_unlock_go_to_the_keys_node),
        T(flush_and_scan_walk_every_master),
        T(a_moved_slot_is_followed_and_remembered),
        T(a_migrating_slot_is_asked_and_a_split_batch_fails_open),
        T(seeds_that_are_down_are_skipped),
        T(hostile_slot_maps_are_refused_without_harm),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    redis_cluster_stop(&g_cl);
    return failed;
}
