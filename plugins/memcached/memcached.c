/*
 * The memcached backend plugin: maps the batched operations of the backend
 * ABI (<hermes/backend.h>) onto libmemcached over a pool of servers.
 * Placement is libmemcached's (consistent hashing, ketama, by default), so
 * the cache grows by adding servers to `servers`; no code here decides
 * which server holds a key.  Clients come from pool.c.
 *
 *   get    memcached_mget of all keys: one request per server involved,
 *          all sent before any reply is read              1 round trip
 *   set    set per item; set-if-absent is add, and when the key exists a
 *          get of the value that won                      1-2 per item
 *   del    delete per key                                 1 per key
 *   lock   add key token ttl (a freed lock: cas over it)  1-3
 *   unlock gets, then cas of the lock to a "free" marker  2
 *   flush  none: HERMES_CAP_NO_PREFIX_FLUSH, the core deletes its
 *          namespace key; flush_all on every server when flush_all = yes
 *   scan   `lru_crawler metadump` of every server, then multi-gets of
 *          the keys under the prefix (scan.c)
 *   stats  `stats` of every server, plus the plugin's counters
 *
 * Keys: memcached's text protocol takes 1..250 printable bytes without
 * spaces.  Every other key (and any key starting with "~h~") is sent as
 * "~h~" + the 128-bit XXH3 hash in base64url + ":" + a printable copy of
 * its first bytes, so one logical key has one memcached key in every
 * process, whatever protocol it speaks.  Values carry flags 0, as Python's
 * memcached clients store bytes.
 *
 * memcached keeps time in whole seconds on a clock that ticks once a
 * second, so a TTL of t ms is sent as ceil(t / 1000) + 1 seconds: a value
 * never vanishes before its TTL and is gone at most about a second after.
 * Durations past 30 days are sent as the absolute Unix time memcached
 * expects for them.
 */
#include "batch.h"
#include "pool.h"
#include "scan.h"

#include <hermes/version.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <xxhash.h>

#define MC_KEY_MAX 250  /* memcached's KEY_MAX_LENGTH */
#define HASH_MARK "~h~" /* starts every encoded key */
#define HASH_MARK_LEN 3
#define HASHED_COPY 200      /* printable bytes kept in an encoded key */
#define THIRTY_DAYS 2592000u /* beyond: an absolute Unix time */
/*
 * Added to every TTL, in seconds.  memcached's clock is the whole seconds of
 * CLOCK_MONOTONIC, read by a timer re-armed 1 s after each tick, so ticks
 * drift later and now and then one skips a second (the clock goes from n to
 * n + 2); a key set just before a skip, on the clock still reading n, is
 * already one second nearer its expiry.  One second of pad covers the
 * rounding of the clock, the second one the skip: with 1 a 1 s TTL was seen
 * gone 22 ms after its set on a loaded machine.  Keys live up to 2 s (and a
 * late tick) past their TTL; the core checks every record's own expiry,
 * so that is memory, never a stale value.
 */
#define TTL_PAD_S 2
#define MAX_VALUE_DEFAULT (1u << 20) /* memcached's default item size (-I) */
#define MAX_SERVERS 256

/* What a released lock holds until it expires: no token is empty, and
 * lock() takes a key holding this with cas. */
#define FREE_MARK ""
#define FREE_MARK_LEN 0
#define FREE_MARK_SECS 2

typedef struct mc_state {
    mcpool pool;
    const hermes_host *host;
    int flush_all;
    int binary; /* protocol = binary: no pipelined text batches */
    size_t max_value_bytes;
    uint32_t connect_ms, poll_ms, retry_s; /* for its own connections */
    atomic_ulong mgets, errors;
    atomic_ulong batches; /* pipelined write requests sent (batch.c) */
} mc_state;

/* ------------------------------------------------------------ logging */

static void mc_log(mc_state *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void mc_log(mc_state *st, int level, const char *fmt, ...)
{
    char msg[512];
    int off;
    va_list ap;

    if (!st->host || !st->host->log)
        return;
    off = snprintf(msg, sizeof msg, "memcached: ");
    va_start(ap, fmt);
    vsnprintf(msg + off, sizeof msg - (size_t)off, fmt, ap);
    va_end(ap);
    for (char *m = msg; *m; m++)
        if ((unsigned char)*m < 0x20 || *m == 0x7f)
            *m = '?';
    st->host->log(st->host->ctx, level, msg);
}

/* The reason of this failure, for hermes_errmsg (ABI 1.1). */
static void mc_detail(mc_state *st, const char *what, const char *why)
{
    char detail[256];

    if (!st->host || !HERMES_HOST_HAS(st->host, error_detail) ||
        !st->host->error_detail)
        return;
    snprintf(detail, sizeof detail, "memcached %s: %s", what,
             why ? why : "failed");
    for (char *m = detail; *m; m++)
        if ((unsigned char)*m < 0x20 || *m == 0x7f)
            *m = '?';
    st->host->error_detail(st->host->ctx, detail);
}

/* Counts and logs a failed libmemcached call; returns the ABI status. */
static int mc_fail(mc_state *st, memcached_st *mc, const char *what,
                   memcached_return_t rc)
{
    const char *why =
        mc ? memcached_last_error_message(mc) : memcached_strerror(NULL, rc);

    atomic_fetch_add(&st->errors, 1);
    mc_log(st, HERMES_LOG_ERROR, "%s: %s: %s", what,
           memcached_strerror(NULL, rc), why);
    mc_detail(st, what, why);
    switch (rc) {
    case MEMCACHED_E2BIG:
        return HERMES_BE_TOOBIG;
    case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
        return HERMES_BE_NOMEM;
    case MEMCACHED_PROTOCOL_ERROR:
    case MEMCACHED_UNKNOWN_READ_FAILURE:
    case MEMCACHED_CLIENT_ERROR:
    case MEMCACHED_SERVER_ERROR:
        return HERMES_BE_PROTOCOL;
    default:
        return HERMES_BE_IO;
    }
}

/* -------------------------------------------------------------- keys */

typedef struct mc_key {
    const char *p;
    size_t len;
    char buf[MC_KEY_MAX + 1];
} mc_key;

static int key_is_plain(const unsigned char *k, size_t n)
{
    if (n == 0 || n > MC_KEY_MAX)
        return 0;
    if (n >= HASH_MARK_LEN && memcmp(k, HASH_MARK, HASH_MARK_LEN) == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= 0x20 || k[i] >= 0x7f)
            return 0;
    return 1;
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
    }
    out[o] = '\0';
}

/* The memcached key of one logical key (see the top of this file). */
static void key_encode(hermes_bytes in, mc_key *k)
{
    const unsigned char *s = in.data ? in.data : (const unsigned char *)"";
    unsigned char digest[16];
    XXH128_hash_t h;
    size_t copy, o;

    if (key_is_plain(s, in.len)) {
        k->p = (const char *)s;
        k->len = in.len;
        return;
    }
    h = XXH3_128bits(s, in.len);
    for (int i = 0; i < 8; i++) {
        digest[i] = (unsigned char)(h.high64 >> (56 - 8 * i));
        digest[8 + i] = (unsigned char)(h.low64 >> (56 - 8 * i));
    }
    memcpy(k->buf, HASH_MARK, HASH_MARK_LEN);
    b64url(digest, 16, k->buf + HASH_MARK_LEN); /* 22 characters */
    o = HASH_MARK_LEN + 22;
    k->buf[o++] = ':';
    copy = in.len < HASHED_COPY ? in.len : HASHED_COPY;
    for (size_t i = 0; i < copy; i++)
        k->buf[o++] = (s[i] > 0x20 && s[i] < 0x7f) ? (char)s[i] : '_';
    k->buf[o] = '\0';
    k->p = k->buf;
    k->len = o;
}

/* A TTL in ms as memcached's expiration (see the top of this file). */
static time_t mc_expiry(uint32_t ttl_ms)
{
    uint64_t s;

    if (ttl_ms == 0)
        return 0;
    s = ((uint64_t)ttl_ms + 999) / 1000 + TTL_PAD_S;
    if (s > THIRTY_DAYS)
        return time(NULL) + (time_t)s;
    return (time_t)s;
}

/* ------------------------------------------------------------ config */

static const char known_keys[] =
    "servers, distribution, hash, protocol, connect_timeout_ms, "
    "poll_timeout_ms, retry_timeout_s, server_failure_limit, pool_size, "
    "max_value_bytes, tcp_keepalive, flush_all";

static int open_fail(hermes_open_error *err, int kv_index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int open_fail(hermes_open_error *err, int kv_index, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->kv_index = kv_index;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        for (char *m = err->msg; *m; m++)
            if ((unsigned char)*m < 0x20 || *m == 0x7f)
                *m = '?';
    }
    return HERMES_BE_INVALID;
}

static int parse_num(const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;

    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        unsigned d;

        if (*s < '0' || *s > '9')
            return -1;
        d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v < min)
        return -1;
    *out = v;
    return 0;
}

static int num_key(const hermes_kv *kv, size_t i, unsigned long long min,
                   unsigned long long max, unsigned long long *out,
                   hermes_open_error *err)
{
    if (parse_num(kv->value, min, max, out) == 0)
        return 0;
    open_fail(err, (int)i, "%s: '%.60s' is not an integer in %llu..%llu",
              kv->key, kv->value, min, max);
    return -1;
}

static int yes_no(const hermes_kv *kv, size_t i, int *out,
                  hermes_open_error *err)
{
    if (strcmp(kv->value, "yes") == 0)
        *out = 1;
    else if (strcmp(kv->value, "no") == 0)
        *out = 0;
    else
        return open_fail(err, (int)i, "%s: '%.60s' is neither yes nor no",
                         kv->key, kv->value);
    return 0;
}

/*
 * Adds one `servers` entry: host:port, [v6]:port, host (port 11211) or an
 * absolute unix socket path, each optionally followed by /?weight.
 */
static int add_server(memcached_st *mc, const char *e, size_t len, size_t i,
                      hermes_open_error *err)
{
    char buf[512], *w, *host = buf, *port = NULL;
    unsigned long long weight = 0, pnum = 11211;
    memcached_return_t rc;

    if (len >= sizeof buf)
        return open_fail(err, (int)i, "servers: entry '%.60s...' too long", e);
    memcpy(buf, e, len);
    buf[len] = '\0';
    if ((w = strstr(buf, "/?")) != NULL) {
        *w = '\0';
        if (parse_num(w + 2, 1, 1000000, &weight) != 0)
            return open_fail(err, (int)i,
                             "servers: '%.60s': weight '%.20s' is not an "
                             "integer in 1..1000000",
                             e, w + 2);
    }
    if (buf[0] == '/') {
        if (strlen(buf) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return open_fail(err, (int)i,
                             "servers: '%.60s' is too long for a unix "
                             "socket path",
                             buf);
        rc = memcached_server_add_unix_socket_with_weight(mc, buf,
                                                          (uint32_t)weight);
    } else {
        if (buf[0] == '[') {
            char *close = strchr(buf, ']');

            if (!close || (close[1] != '\0' && close[1] != ':'))
                return open_fail(err, (int)i,
                                 "servers: '%.60s' is not [address]:port", e);
            host = buf + 1;
            *close = '\0';
            if (close[1] == ':')
                port = close + 2;
        } else if ((port = strrchr(buf, ':')) != NULL) {
            *port++ = '\0';
            if (strchr(buf, ':'))
                return open_fail(err, (int)i,
                                 "servers: '%.60s': write an IPv6 address "
                                 "as [address]:port",
                                 e);
        }
        if (!*host)
            return open_fail(err, (int)i, "servers: '%.60s' has no host", e);
        if (port && parse_num(port, 1, 65535, &pnum) != 0)
            return open_fail(err, (int)i,
                             "servers: '%.60s': port '%.20s' is not an "
                             "integer in 1..65535",
                             e, port);
        rc = memcached_server_add_with_weight(mc, host, (in_port_t)pnum,
                                              (uint32_t)weight);
    }
    if (rc == MEMCACHED_MEMORY_ALLOCATION_FAILURE) {
        open_fail(err, -1, "out of memory");
        return HERMES_BE_NOMEM;
    }
    if (rc != MEMCACHED_SUCCESS)
        return open_fail(err, (int)i, "servers: '%.60s': %s", e,
                         memcached_strerror(mc, rc));
    return 0;
}

static int add_servers(memcached_st *mc, const char *v, size_t i,
                       hermes_open_error *err)
{
    unsigned count = 0;
    int rc;

    while (*v) {
        size_t len;

        while (*v == ',' || *v == ' ' || *v == '\t')
            v++;
        len = strcspn(v, ", \t");
        if (len == 0)
            break;
        if (++count > MAX_SERVERS)
            return open_fail(err, (int)i, "servers: more than %d entries",
                             MAX_SERVERS);
        if ((rc = add_server(mc, v, len, i, err)) != 0)
            return rc;
        v += len;
    }
    if (count == 0)
        return open_fail(err, (int)i, "servers: no server given");
    return 0;
}

/* A libmemcached allocator that refuses what no reply of ours needs, so
 * that a hostile server announcing a huge value makes us allocate nothing
 * of it.  context is the largest size allowed. */
static void *cap_malloc(const memcached_st *mc, size_t size, void *ctx)
{
    (void)mc;
    return size > (size_t)(uintptr_t)ctx ? NULL : malloc(size);
}

static void *cap_realloc(const memcached_st *mc, void *mem, size_t size,
                         void *ctx)
{
    (void)mc;
    return size > (size_t)(uintptr_t)ctx ? NULL : realloc(mem, size);
}

static void *cap_calloc(const memcached_st *mc, size_t n, size_t size,
                        void *ctx)
{
    (void)mc;
    if (size && n > (size_t)(uintptr_t)ctx / size)
        return NULL;
    return calloc(n, size);
}

static void cap_free(const memcached_st *mc, void *mem, void *ctx)
{
    (void)mc;
    (void)ctx;
    free(mem);
}

static int mc_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                   void **state, hermes_open_error *err)
{
    unsigned long long connect_ms = 1000, poll_ms = 1000, retry_s = 2,
                       failure_limit = 2, pool_size = 8,
                       max_value = MAX_VALUE_DEFAULT;
    int servers_at = -1, binary = 0, keepalive = 0, flush_all = 0;
    memcached_server_distribution_t dist =
        MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA;
    memcached_hash_t hash = MEMCACHED_HASH_DEFAULT;
    int hash_set = 0;
    memcached_st *mc;
    mc_state *st;
    int rc;

    if (err) {
        err->msg[0] = '\0';
        err->kv_index = -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i].key, *val = kv[i].value;

        if (strcmp(k, "servers") == 0) {
            servers_at = (int)i;
        } else if (strcmp(k, "distribution") == 0) {
            if (strcmp(val, "consistent") == 0 || strcmp(val, "ketama") == 0)
                dist = MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA;
            else if (strcmp(val, "modula") == 0)
                dist = MEMCACHED_DISTRIBUTION_MODULA;
            else
                return open_fail(err, (int)i,
                                 "distribution: '%.60s' is not consistent, "
                                 "ketama or modula",
                                 val);
        } else if (strcmp(k, "hash") == 0) {
            static const struct {
                const char *name;
                memcached_hash_t h;
            } hashes[] = {
                {"default", MEMCACHED_HASH_DEFAULT},
                {"md5", MEMCACHED_HASH_MD5},
                {"crc", MEMCACHED_HASH_CRC},
                {"fnv1_64", MEMCACHED_HASH_FNV1_64},
                {"fnv1a_64", MEMCACHED_HASH_FNV1A_64},
                {"fnv1_32", MEMCACHED_HASH_FNV1_32},
                {"fnv1a_32", MEMCACHED_HASH_FNV1A_32},
                {"jenkins", MEMCACHED_HASH_JENKINS},
                {"murmur", MEMCACHED_HASH_MURMUR},
            };
            size_t j;

            for (j = 0; j < sizeof hashes / sizeof hashes[0]; j++)
                if (strcmp(val, hashes[j].name) == 0)
                    break;
            if (j == sizeof hashes / sizeof hashes[0])
                return open_fail(err, (int)i,
                                 "hash: '%.60s' is not one of default, md5, "
                                 "crc, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, "
                                 "jenkins, murmur",
                                 val);
            hash = hashes[j].h;
            hash_set = 1;
        } else if (strcmp(k, "protocol") == 0) {
            if (strcmp(val, "text") == 0)
                binary = 0;
            else if (strcmp(val, "binary") == 0)
                binary = 1;
            else
                return open_fail(err, (int)i,
                                 "protocol: '%.60s' is neither text nor "
                                 "binary",
                                 val);
        } else if (strcmp(k, "connect_timeout_ms") == 0) {
            if (num_key(&kv[i], i, 1, 3600000, &connect_ms, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "poll_timeout_ms") == 0) {
            if (num_key(&kv[i], i, 1, 3600000, &poll_ms, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "retry_timeout_s") == 0) {
            if (num_key(&kv[i], i, 0, 86400, &retry_s, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "server_failure_limit") == 0) {
            if (num_key(&kv[i], i, 0, 1000, &failure_limit, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "pool_size") == 0) {
            if (num_key(&kv[i], i, 1, 1024, &pool_size, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "max_value_bytes") == 0) {
            if (num_key(&kv[i], i, 1024, 1u << 30, &max_value, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "tcp_keepalive") == 0) {
            if (yes_no(&kv[i], i, &keepalive, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "flush_all") == 0) {
            if (yes_no(&kv[i], i, &flush_all, err))
                return HERMES_BE_INVALID;
        } else {
            return open_fail(err, (int)i, "unknown key '%.60s' (known: %s)", k,
                             known_keys);
        }
    }

    mc = memcached_create(NULL);
    if (!mc) {
        open_fail(err, -1, "out of memory");
        return HERMES_BE_NOMEM;
    }
    if (servers_at >= 0)
        rc = add_servers(mc, kv[servers_at].value, (size_t)servers_at, err);
    else
        rc = add_server(mc, "127.0.0.1:11211", 15, 0, err);
    if (rc != 0) {
        memcached_free(mc);
        return rc;
    }
    /* Room for the largest value plus the reply line and buffers. */
    memcached_set_memory_allocators(mc, cap_malloc, cap_free, cap_realloc,
                                    cap_calloc,
                                    (void *)(uintptr_t)(max_value + 65536));
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_NO_BLOCK, 1);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_KEEPALIVE,
                           (uint64_t)keepalive);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, connect_ms);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, poll_ms);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, retry_s);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT,
                           failure_limit);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL,
                           (uint64_t)binary);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_VERIFY_KEY, 0);
    if (dist == MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA) {
        /* Weighted ketama: the weights of `servers` (1 by default). */
        memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
        if (hash_set)
            memcached_behavior_set_key_hash(mc, hash);
    } else {
        memcached_behavior_set_distribution(mc, dist);
        memcached_behavior_set_key_hash(mc, hash);
    }

    st = calloc(1, sizeof *st);
    if (!st) {
        memcached_free(mc);
        open_fail(err, -1, "out of memory");
        return HERMES_BE_NOMEM;
    }
    st->host = host;
    st->flush_all = flush_all;
    st->max_value_bytes = (size_t)max_value;
    st->connect_ms = (uint32_t)connect_ms;
    st->poll_ms = (uint32_t)poll_ms;
    st->retry_s = (uint32_t)retry_s;
    st->binary = binary;
    atomic_init(&st->batches, 0);
    atomic_init(&st->mgets, 0);
    atomic_init(&st->errors, 0);
    /* No connect here: the application must start with servers down. */
    mcpool_init(&st->pool, host, mc, (unsigned)pool_size,
                (uint32_t)(connect_ms + poll_ms));
    *state = st;
    return HERMES_BE_OK;
}

static void mc_close(void *state)
{
    mc_state *st = state;

    if (!st)
        return;
    mcpool_destroy(&st->pool);
    free(st);
}

/* ---------------------------------------------------------------- get */

/* Keys encoded for one batch: on the stack up to BATCH_STACK keys. */
#define BATCH_STACK 8

typedef struct batch {
    const char **keys;
    size_t *lens;
    mc_key *enc;
    const char *keys_s[BATCH_STACK];
    size_t lens_s[BATCH_STACK];
    mc_key enc_s[BATCH_STACK];
} batch;

static int batch_init(batch *b, const hermes_bytes *keys, size_t n)
{
    if (n <= BATCH_STACK) {
        b->keys = b->keys_s;
        b->lens = b->lens_s;
        b->enc = b->enc_s;
    } else {
        b->keys = malloc(n * sizeof *b->keys);
        b->lens = malloc(n * sizeof *b->lens);
        b->enc = malloc(n * sizeof *b->enc);
        if (!b->keys || !b->lens || !b->enc) {
            free(b->keys);
            free(b->lens);
            free(b->enc);
            return HERMES_BE_NOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        key_encode(keys[i], &b->enc[i]);
        b->keys[i] = b->enc[i].p;
        b->lens[i] = b->enc[i].len;
    }
    return HERMES_BE_OK;
}

static void batch_free(batch *b)
{
    if (b->keys != b->keys_s) {
        free(b->keys);
        free(b->lens);
        free(b->enc);
    }
}

static int mc_get(void *state, const hermes_bytes *keys, size_t n,
                  hermes_value_cb cb, void *arg)
{
    mc_state *st = state;
    memcached_result_st result;
    memcached_return_t rc, frc;
    unsigned char seen_s[64], *seen = seen_s;
    mc_client *cl;
    batch b;
    int status;

    if ((status = batch_init(&b, keys, n)) != HERMES_BE_OK)
        return status;
    if (n > sizeof seen_s && !(seen = calloc(n, 1))) {
        batch_free(&b);
        return HERMES_BE_NOMEM;
    }
    if (seen == seen_s)
        memset(seen_s, 0, sizeof seen_s);
    if ((status = mcpool_take(&st->pool, &cl)) != HERMES_BE_OK) {
        if (seen != seen_s)
            free(seen);
        batch_free(&b);
        return status;
    }
    atomic_fetch_add(&st->mgets, 1);
    rc = memcached_mget(cl->mc, b.keys, b.lens, n);
    memcached_result_create(cl->mc, &result);
    /* Read every reply, even after an error, so that none is left for
     * the next borrower. */
    memcached_result_st *r;
    while ((r = memcached_fetch_result(cl->mc, &result, &frc)) != NULL) {
        const char *rk = memcached_result_key_value(r);
        size_t rl = memcached_result_key_length(r);

        for (size_t i = 0; i < n; i++) {
            if (seen[i] || b.lens[i] != rl || memcmp(b.keys[i], rk, rl) != 0)
                continue;
            seen[i] = 1;
            if (rc == MEMCACHED_SUCCESS)
                cb(arg, i, memcached_result_value(r),
                   memcached_result_length(r));
        }
    }
    memcached_result_free(&result);
    status = HERMES_BE_OK;
    if (rc != MEMCACHED_SUCCESS)
        status = mc_fail(st, cl->mc, "mget", rc);
    else if (frc != MEMCACHED_END && frc != MEMCACHED_NOTFOUND &&
             frc != MEMCACHED_SUCCESS)
        status = mc_fail(st, cl->mc, "mget", frc);
    else if (memcached_failed(memcached_last_error(cl->mc)))
        /* libmemcached skips a server it cannot reach and returns what
         * the others hold: a batch that missed a server fails whole. */
        status = mc_fail(st, cl->mc, "mget", memcached_last_error(cl->mc));
    mcpool_put(&st->pool, cl, status != HERMES_BE_OK);
    if (seen != seen_s)
        free(seen);
    batch_free(&b);
    return status;
}

/* ---------------------------------------------------------------- set */

static memcached_return_t gets_one(mc_client *cl, const mc_key *k, int *found,
                                   char **value, size_t *len, uint64_t *cas);

/* Reads one key; found: cb(index); missing: nothing.  Through mget, not
 * memcached_get, which cannot tell an empty value from a missing one. */
static memcached_return_t get_one(mc_client *cl, const mc_key *k, size_t index,
                                  hermes_value_cb cb, void *arg, int *found)
{
    char *v = NULL;
    size_t len = 0;
    uint64_t cas;
    memcached_return_t rc = gets_one(cl, k, found, &v, &len, &cas);

    if (rc == MEMCACHED_SUCCESS && *found) {
        cb(arg, index, v, len);
        free(v);
    }
    return rc;
}

/* Runs a batch of plain sets and deletes (batch.c), counting and logging
 * its failure as `what`, and giving its reason as the operation's detail
 * when explain is set. */
static int run_batch(mc_state *st, mc_client *cl, const char *what,
                     mc_cmd *cmds, size_t n, int explain)
{
    mc_batch_env env = {st->host, st->connect_ms, st->poll_ms, st->retry_s};
    char why[256];
    unsigned sent;
    int status;

    if (n == 0)
        return HERMES_BE_OK;
    status = mc_batch_run(cl, &env, cmds, n, why, sizeof why, &sent);
    atomic_fetch_add(&st->batches, sent);
    if (status != HERMES_BE_OK) {
        atomic_fetch_add(&st->errors, 1);
        mc_log(st, HERMES_LOG_ERROR, "%s: %s", what, why);
        if (explain)
            mc_detail(st, what, why);
    }
    return status;
}

/* One set-if-absent item: add; when the key exists, read the value that
 * won.  A key deleted between the two is absent again: add once more, so
 * that racing deletes almost never leave the item unreported. */
static int set_if_absent(mc_state *st, mc_client *cl, const hermes_item *it,
                         size_t i, const mc_key *k, hermes_value_cb cb,
                         void *arg)
{
    const char *val = it->value.data ? it->value.data : "";
    time_t exp = mc_expiry(it->ttl_ms);
    memcached_return_t rc;

    if (it->value.len > st->max_value_bytes)
        return HERMES_BE_TOOBIG;
    for (int attempt = 0; attempt < 8; attempt++) {
        int found = 0;

        rc = memcached_add(cl->mc, k->p, k->len, val, it->value.len, exp, 0);
        if (rc == MEMCACHED_SUCCESS) {
            if (cb)
                cb(arg, i, val, it->value.len);
            return HERMES_BE_OK;
        }
        if (rc != MEMCACHED_NOTSTORED && rc != MEMCACHED_DATA_EXISTS)
            return mc_fail(st, cl->mc, "add", rc);
        if (!cb)
            return HERMES_BE_OK;
        rc = get_one(cl, k, i, cb, arg, &found);
        if (rc != MEMCACHED_SUCCESS)
            return mc_fail(st, cl->mc, "get after add", rc);
        if (found)
            return HERMES_BE_OK;
    }
    return HERMES_BE_OK;
}

/* One plain item through libmemcached (the binary protocol's way). */
static int set_plain(mc_state *st, mc_client *cl, const hermes_item *it,
                     const mc_key *k)
{
    const char *val = it->value.data ? it->value.data : "";
    memcached_return_t rc;
    int s = HERMES_BE_OK;

    if (it->value.len > st->max_value_bytes) {
        s = HERMES_BE_TOOBIG; /* refused before sending */
    } else {
        rc = memcached_set(cl->mc, k->p, k->len, val, it->value.len,
                           mc_expiry(it->ttl_ms), 0);
        if (rc == MEMCACHED_SUCCESS)
            return HERMES_BE_OK;
        s = mc_fail(st, cl->mc, "set", rc);
    }
    /* The old value must not stay readable.  memcached drops it itself
     * when a new one is too large; make sure of it whatever the reason. */
    memcached_delete(cl->mc, k->p, k->len, 0);
    return s;
}

/*
 * Plain items go out as pipelined batches (batch.c) on the text protocol:
 * a run of them, up to the next set-if-absent item, is one request per
 * server.  An item refused (too big, or by the server) has its key
 * deleted in a second batch, so its old value does not stay readable.
 */
static int mc_set(void *state, const hermes_item *items, size_t n,
                  hermes_value_cb cb, void *arg)
{
    mc_state *st = state;
    int first = HERMES_BE_OK, failed = 0, status;
    mc_key *keys = malloc(n * sizeof *keys);
    mc_cmd *cmds = malloc(n * sizeof *cmds);
    size_t *item_of = malloc(n * sizeof *item_of);
    size_t nc = 0;
    mc_client *cl;

    if (!keys || !cmds || !item_of) {
        free(keys);
        free(cmds);
        free(item_of);
        return HERMES_BE_NOMEM;
    }
    if ((status = mcpool_take(&st->pool, &cl)) != HERMES_BE_OK) {
        free(keys);
        free(cmds);
        free(item_of);
        return status;
    }
    for (size_t i = 0; i <= n; i++) {
        const hermes_item *it = i < n ? &items[i] : NULL;
        int s = HERMES_BE_OK;

        if (it)
            key_encode(it->key, &keys[i]);
        if (it && !(it->flags & HERMES_SET_IF_ABSENT) && !st->binary) {
            int big = it->value.len > st->max_value_bytes;

            cmds[nc] = (mc_cmd){keys[i].p,
                                keys[i].len,
                                big              ? NULL
                                : it->value.data ? it->value.data
                                                 : "",
                                it->value.len,
                                mc_expiry(it->ttl_ms),
                                0};
            item_of[nc++] = big ? SIZE_MAX : i; /* a delete, TOOBIG */
            if (big && first == HERMES_BE_OK)
                first = HERMES_BE_TOOBIG;
            continue;
        }
        /* The batch so far goes before the next item in array order. */
        if (nc) {
            size_t nd = 0;

            s = run_batch(st, cl, "set", cmds, nc, 1);
            /* Refused by a server that answered: delete the old value
             * there (one that did not answer is not asked again). */
            for (size_t c = 0; c < nc; c++)
                if (cmds[c].status != HERMES_BE_OK &&
                    cmds[c].status != HERMES_BE_IO && item_of[c] != SIZE_MAX)
                    cmds[nd++] =
                        (mc_cmd){cmds[c].key, cmds[c].klen, NULL, 0, 0, 0};
            if (nd)
                run_batch(st, cl, "delete after a failed set", cmds, nd, 0);
            nc = 0;
        }
        if (s == HERMES_BE_OK && it)
            s = it->flags & HERMES_SET_IF_ABSENT
                    ? set_if_absent(st, cl, it, i, &keys[i], cb, arg)
                    : set_plain(st, cl, it, &keys[i]);
        if (s != HERMES_BE_OK) {
            failed = 1;
            if (first == HERMES_BE_OK)
                first = s;
        }
    }
    mcpool_put(&st->pool, cl, failed);
    free(keys);
    free(cmds);
    free(item_of);
    return first;
}

/* ---------------------------------------------------------------- del */

static int mc_del(void *state, const hermes_bytes *keys, size_t n)
{
    mc_state *st = state;
    int first = HERMES_BE_OK;
    mc_client *cl;
    batch b;
    int status;

    if ((status = batch_init(&b, keys, n)) != HERMES_BE_OK)
        return status;
    if ((status = mcpool_take(&st->pool, &cl)) != HERMES_BE_OK) {
        batch_free(&b);
        return status;
    }
    if (!st->binary) {
        mc_cmd *cmds = malloc(n * sizeof *cmds);

        if (!cmds) {
            first = HERMES_BE_NOMEM;
        } else {
            for (size_t i = 0; i < n; i++)
                cmds[i] = (mc_cmd){b.keys[i], b.lens[i], NULL, 0, 0, 0};
            first = run_batch(st, cl, "delete", cmds, n, 1);
            free(cmds);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            memcached_return_t rc =
                memcached_delete(cl->mc, b.keys[i], b.lens[i], 0);

            if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND &&
                first == HERMES_BE_OK)
                first = mc_fail(st, cl->mc, "delete", rc);
        }
    }
    mcpool_put(&st->pool, cl, first != HERMES_BE_OK);
    batch_free(&b);
    return first;
}

/* -------------------------------------------------------------- locks */

/* gets of one key: *found 0 when missing; else its value (malloc'd) and
 * CAS. */
static memcached_return_t gets_one(mc_client *cl, const mc_key *k, int *found,
                                   char **value, size_t *len, uint64_t *cas)
{
    const char *keys[1] = {k->p};
    size_t lens[1] = {k->len};
    memcached_result_st res, *r;
    memcached_return_t rc, frc;

    *found = 0;
    rc = memcached_mget(cl->mc, keys, lens, 1);
    if (rc != MEMCACHED_SUCCESS)
        return rc;
    memcached_result_create(cl->mc, &res);
    while ((r = memcached_fetch_result(cl->mc, &res, &frc)) != NULL) {
        if (*found)
            continue;
        *len = memcached_result_length(r);
        *value = malloc(*len + 1);
        if (!*value) {
            rc = MEMCACHED_MEMORY_ALLOCATION_FAILURE;
            continue;
        }
        memcpy(*value, memcached_result_value(r), *len);
        *cas = memcached_result_cas(r);
        *found = 1;
    }
    memcached_result_free(&res);
    if (rc != MEMCACHED_SUCCESS)
        return rc;
    if (frc != MEMCACHED_END && frc != MEMCACHED_NOTFOUND &&
        frc != MEMCACHED_SUCCESS) {
        if (*found)
            free(*value);
        *found = 0;
        return frc;
    }
    return MEMCACHED_SUCCESS;
}

static int mc_lock(void *state, hermes_bytes key, hermes_bytes token,
                   uint32_t ttl_ms, int *acquired)
{
    mc_state *st = state;
    const char *tok = token.data ? token.data : "";
    memcached_return_t rc = MEMCACHED_SUCCESS;
    mc_client *cl;
    mc_key k;
    int status;

    *acquired = 0;
    if (ttl_ms == 0)
        return HERMES_BE_INVALID;
    if (token.len == FREE_MARK_LEN)
        return HERMES_BE_INVALID; /* indistinguishable from a freed lock */
    if ((status = mcpool_take(&st->pool, &cl)) != HERMES_BE_OK)
        return status;
    key_encode(key, &k);
    /* add; when the key exists and holds the free marker (a released
     * lock), cas over it; when it vanished meanwhile, add again. */
    for (int attempt = 0; attempt < 3 && !*acquired; attempt++) {
        char *v = NULL;
        size_t len = 0;
        uint64_t cas = 0;
        int found;

        rc = memcached_add(cl->mc, k.p, k.len, tok, token.len,
                           mc_expiry(ttl_ms), 0);
        if (rc == MEMCACHED_SUCCESS) {
            *acquired = 1;
            break;
        }
        if (rc != MEMCACHED_NOTSTORED && rc != MEMCACHED_DATA_EXISTS)
            break;
        rc = gets_one(cl, &k, &found, &v, &len, &cas);
        if (rc != MEMCACHED_SUCCESS)
            break;
        if (!found)
            continue;
        int is_free =
            len == FREE_MARK_LEN && memcmp(v, FREE_MARK, FREE_MARK_LEN) == 0;
        free(v);
        if (!is_free)
            break; /* held */
        rc = memcached_cas(cl->mc, k.p, k.len, tok, token.len,
                           mc_expiry(ttl_ms), 0, cas);
        if (rc == MEMCACHED_SUCCESS)
            *acquired = 1;
        else if (rc == MEMCACHED_DATA_EXISTS || rc == MEMCACHED_NOTFOUND)
            rc = MEMCACHED_SUCCESS; /* someone else moved first: retry */
        else
            break;
    }
    if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS)
        rc = MEMCACHED_SUCCESS;
    status = rc == MEMCACHED_SUCCESS ? HERMES_BE_OK
                                     : mc_fail(st, cl->mc, "lock", rc);
    mcpool_put(&st->pool, cl, status != HERMES_BE_OK);
    return status;
}

static int mc_unlock(void *state, hermes_bytes key, hermes_bytes token,
                     int *released)
{
    mc_state *st = state;
    memcached_return_t rc;
    char *v = NULL;
    size_t len = 0;
    uint64_t cas = 0;
    int found, status;
    mc_client *cl;
    mc_key k;

    *released = 0;
    if ((status = mcpool_take(&st->pool, &cl)) != HERMES_BE_OK)
        return status;
    key_encode(key, &k);
    rc = gets_one(cl, &k, &found, &v, &len, &cas);
    if (rc == MEMCACHED_SUCCESS && found) {
        int mine = token.len != FREE_MARK_LEN && len == token.len &&
                   memcmp(v, token.data, len) == 0;

        free(v);
        if (mine) {
            /* Only if nobody wrote it since our gets: a lock that expired
             * and was taken by another owner is never released. */
            rc = memcached_cas(cl->mc, k.p, k.len, FREE_MARK, FREE_MARK_LEN,
                               FREE_MARK_SECS, 0, cas);
            if (rc == MEMCACHED_SUCCESS)
                *released = 1;
            else if (rc == MEMCACHED_DATA_EXISTS || rc == MEMCACHED_NOTFOUND)
                rc = MEMCACHED_SUCCESS;
        }
    }
    status = rc == MEMCACHED_SUCCESS ? HERMES_BE_OK
                                     : mc_fail(st, cl->mc, "unlock", rc);
    mcpool_put(&st->pool, cl, status != HERMES_BE_OK);
    return status;
}

/* -------------------------------------------------------------- flush */

/*
 * memcached cannot delete by prefix, so the descriptor says
 * HERMES_CAP_NO_PREFIX_FLUSH: the core has already made every entry under
 * its prefix stale by deleting its namespace key, and this has nothing to
 * add (UNSUPPORTED).  flush_all = yes also empties every server of the
 * pool, other applications' keys included, freeing the memory at once.
 */
static int mc_flush(void *state, hermes_bytes prefix)
{
    mc_state *st = state;
    memcached_return_t rc;
    mc_client *cl;
    int status;

    (void)prefix;
    if (!st->flush_all)
        return HERMES_BE_UNSUPPORTED;
    if ((status = mcpool_take(&st->pool, &cl)) != HERMES_BE_OK)
        return status;
    rc = memcached_flush(cl->mc, 0);
    status = rc == MEMCACHED_SUCCESS ? HERMES_BE_OK
                                     : mc_fail(st, cl->mc, "flush_all", rc);
    mcpool_put(&st->pool, cl, status != HERMES_BE_OK);
    return status;
}

/* --------------------------------------------------------------- scan */

static int mc_scan(void *state, hermes_bytes prefix, hermes_scan_cb cb,
                   void *arg)
{
    mc_state *st = state;
    mc_scan_env env = {&st->pool,   st->host,  st->connect_ms,
                       st->poll_ms, HASH_MARK, TTL_PAD_S * 1000};
    char why[256];
    int status = mc_scan_pool(&env, prefix, cb, arg, why, sizeof why);

    if (status != HERMES_BE_OK) {
        if (status != HERMES_BE_UNSUPPORTED)
            atomic_fetch_add(&st->errors, 1);
        mc_log(st,
               status == HERMES_BE_UNSUPPORTED ? HERMES_LOG_WARN
                                               : HERMES_LOG_ERROR,
               "scan: %s", why);
        mc_detail(st, "scan", why);
    }
    return status;
}

/* -------------------------------------------------------------- stats */

static int mc_stats(void *state, hermes_stat_cb cb, void *arg)
{
    mc_state *st = state;
    memcached_return_t rc;
    memcached_stat_st *all;
    mc_client *cl;
    char name[256], num[32];
    int status;

    snprintf(num, sizeof num, "%lu", atomic_load(&st->mgets));
    cb(arg, "multi_gets", num);
    snprintf(num, sizeof num, "%lu", atomic_load(&st->errors));
    cb(arg, "errors", num);
    snprintf(num, sizeof num, "%lu", atomic_load(&st->batches));
    cb(arg, "write_batches", num);
    if ((status = mcpool_take(&st->pool, &cl)) != HERMES_BE_OK)
        return status;
    all = memcached_stat(cl->mc, NULL, &rc);
    status = HERMES_BE_OK;
    if (all) {
        uint32_t count = memcached_server_count(cl->mc);

        for (uint32_t i = 0; i < count; i++) {
            const memcached_instance_st *s =
                memcached_server_instance_by_position(cl->mc, i);
            memcached_return_t krc;
            char **keys = memcached_stat_get_keys(cl->mc, &all[i], &krc);

            if (!s || !keys)
                continue;
            for (char **kp = keys; *kp; kp++) {
                memcached_return_t vrc;
                char *val =
                    memcached_stat_get_value(cl->mc, &all[i], *kp, &vrc);

                if (!val)
                    continue;
                if (memcached_server_port(s))
                    snprintf(name, sizeof name, "%s:%u %s",
                             memcached_server_name(s),
                             (unsigned)memcached_server_port(s), *kp);
                else
                    snprintf(name, sizeof name, "%s %s",
                             memcached_server_name(s), *kp);
                cb(arg, name, val);
                free(val);
            }
            free(keys);
        }
        memcached_stat_free(cl->mc, all);
    }
    if (rc != MEMCACHED_SUCCESS)
        status = mc_fail(st, cl->mc, "stats", rc);
    mcpool_put(&st->pool, cl, status != HERMES_BE_OK);
    return status;
}

static const hermes_backend mc_backend = {
    .abi_major = HERMES_BACKEND_ABI_MAJOR,
    .abi_minor = HERMES_BACKEND_ABI_MINOR,
    .struct_size = sizeof(hermes_backend),
    .name = "memcached",
    .version = HERMES_VERSION, /* released with the library */
    .description = "memcached servers through libmemcached (consistent "
                   "hashing, one multi-get per read)",
    .caps = HERMES_CAP_THREADSAFE | HERMES_CAP_SHARED | HERMES_CAP_SCAN |
            HERMES_CAP_STATS | HERMES_CAP_NO_PREFIX_FLUSH,
    .max_key_len = MC_KEY_MAX,
    .open = mc_open,
    .close = mc_close,
    .get = mc_get,
    .set = mc_set,
    .del = mc_del,
    .lock = mc_lock,
    .unlock = mc_unlock,
    .flush = mc_flush,
    .scan = mc_scan,
    .stats = mc_stats,
};

HERMES_BACKEND_DEFINE(mc_backend)
