/*
 * The redis backend plugin: maps the batched operations of the backend ABI
 * (<hermes/backend.h>) onto redis commands through hiredis, one pipelined
 * round trip per batch.  Connections come from pool.c; this file holds the
 * config parsing and the command mapping:
 *
 *   get    MGET k1..kn                                     1 round trip
 *          (concurrent gets of one state share their writes:
 *          batch.c, batch_reads = yes; not with a cluster)
 *   set    SET k v [PX ttl] per item, and for set-if-absent
 *          SET k v NX GET [PX ttl] (redis < 7: SET NX + GET),
 *          all in one pipeline                             1 round trip
 *   del    UNLINK k1..kn (DEL on servers without UNLINK)   1 round trip
 *   lock   SET k token NX PX ttl                           1 round trip
 *   unlock EVALSHA of a compare-and-delete script, which also
 *          PUBLISHes the release (wait.c)                  1 round trip
 *   wait_unlock  a message on the lock's channel (wait.c)  no request
 *   flush  SCAN MATCH <prefix>* COUNT 1000 + UNLINK batch  2 per batch
 *   scan   SCAN MATCH ... + pipelined GET and PTTL         2 per batch
 *
 * Every argument travels through the Argv forms with explicit lengths, so
 * keys and values are binary-safe.
 */
#include "batch.h"
#include "cluster.h"
#include "near.h"
#include "pool.h"
#include "wait.h"

#include <hermes/version.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* Redis refuses bulk strings longer than 512 MB (proto-max-bulk-len). */
#define REDIS_MAX_BULK (512u * 1024u * 1024u)

/* Keys per SCAN step: large enough to make flushing cheap, small enough
 * that one step never blocks the server for long. */
#define SCAN_COUNT "1000"

/* COUNT is a hint: a step may return a few more keys (a whole hash bucket,
 * both tables while rehashing), never ten times as many.  A reply with
 * more keys is refused (rpool_shape). */
#define SCAN_MAX_KEYS 10000u

/* max_value_bytes: the default, and the smallest accepted. */
#define MAX_VALUE_DEFAULT (64u * 1024u * 1024u)
#define MAX_VALUE_MIN 1024u

/* INFO is a few kilobytes; this leaves room for many databases. */
#define INFO_MAX_BYTES (1024u * 1024u)

/* Deletes KEYS[1] only while it holds ARGV[1]: the owner check and the
 * delete must be one atomic step, or a lock that expired and was taken by
 * someone else could be released by its previous owner.  A release is
 * published on the channel named by the lock key, for the callers
 * waiting for it (wait.c); pcall, so that a server refusing PUBLISH (an
 * ACL) still unlocks. */
static const char unlock_script[] =
    "if redis.call('get',KEYS[1]) == ARGV[1] then "
    "redis.call('del',KEYS[1]) redis.pcall('publish',KEYS[1],'') "
    "return 1 else return 0 end";

typedef struct redis_state {
    rpool pool;                /* one server; unused with a cluster */
    rcluster *cl;              /* Redis Cluster (cluster = ...), or NULL */
    int flushdb;               /* flush("") may use FLUSHDB */
    uint32_t flush_timeout_ms; /* longest walk of flush() or scan() */
    pthread_mutex_t sha_mu;
    hm_forklist_entry sha_fork; /* sha_mu, held across fork() */
    char unlock_sha[41];        /* SHA1 of unlock_script once loaded, else "" */
    atomic_int no_unlink; /* the server lacks UNLINK (redis < 4): use DEL */
    atomic_int no_nx_get; /* SET NX GET refused (redis < 7): SET NX + GET */
    rnear *near;          /* near cache (near_cache = yes), or NULL */
    rwait *wait;          /* the lock-release listener; NULL: lock_notify no */
    rbatch *batch;        /* the read batcher; NULL: batch_reads = no */
} redis_state;

/* ------------------------------------------------------------ config */

/* The read the near cache goes to the server with. */
static int redis_get(void *state, const hermes_bytes *keys, size_t n,
                     hermes_value_cb cb, void *arg);

static const char known_keys[] =
    "host, port, socket, db, password, connect_timeout_ms, "
    "command_timeout_ms, pool_size, max_value_bytes, flush_timeout_ms, "
    "flushdb, cluster, lock_notify, batch_reads";

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
    }
    return HERMES_BE_INVALID;
}

/* Room for a quoted value in a message (see rpool_quote). */
#define QUOTE_CAP 128
#define QUOTE(v, q)                                                            \
    rpool_quote((v) ? (v) : "", (v) ? strlen(v) : 0, q, sizeof q)

/* A plain decimal in [min, max]: no sign, no spaces, no overflow. */
static int parse_num(const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    unsigned d;

    if (!s || !*s)
        return -1;
    for (; *s; s++) {
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

/* A size: a plain decimal optionally followed by k, m or g (binary
 * multiples), in [min, max]. */
static int parse_size(const char *s, unsigned long long min,
                      unsigned long long max, unsigned long long *out)
{
    char digits[24];
    size_t n = s ? strlen(s) : 0;
    unsigned long long v, mult = 1;

    if (n == 0 || n >= sizeof digits)
        return -1;
    memcpy(digits, s, n + 1);
    switch (digits[n - 1]) {
    case 'k':
    case 'K':
        mult = 1ull << 10;
        break;
    case 'm':
    case 'M':
        mult = 1ull << 20;
        break;
    case 'g':
    case 'G':
        mult = 1ull << 30;
        break;
    }
    if (mult != 1)
        digits[n - 1] = '\0';
    if (parse_num(digits, 0, max / mult, &v) != 0 || v * mult < min)
        return -1;
    *out = v * mult;
    return 0;
}

/* Parses one numeric key; on a bad value fills err and returns non-zero. */
static int num_key(const hermes_kv *kv, size_t i, unsigned long long min,
                   unsigned long long max, unsigned long long *out,
                   hermes_open_error *err)
{
    if (parse_num(kv->value, min, max, out) == 0)
        return 0;
    char q[QUOTE_CAP];

    open_fail(err, (int)i, "%s: %s is not an integer in %llu..%llu", kv->key,
              QUOTE(kv->value, q), min, max);
    return -1;
}

/*
 * The near cache's keys (near.h): 1 when kv is one of them, 0 when it is
 * not, -1 after filling err for a bad value.
 */
static int near_key(rnear_settings *ns, const hermes_kv *kv, size_t i,
                    hermes_open_error *err)
{
    const char *k = kv->key, *val = kv->value;
    unsigned long long v;
    char q[QUOTE_CAP];

    if (strcmp(k, "near_cache") == 0) {
        if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0)
            return open_fail(err, (int)i,
                             "near_cache: %s is neither yes nor no",
                             QUOTE(val, q)),
                   -1;
        ns->enabled = strcmp(val, "yes") == 0;
    } else if (strcmp(k, "near_cache_bytes") == 0) {
        if (parse_size(val, 64u << 10, 1ull << 40, &v) != 0)
            return open_fail(err, (int)i,
                             "near_cache_bytes: %s is not a size from 64k "
                             "to 1024g",
                             QUOTE(val, q)),
                   -1;
        ns->bytes = (size_t)v;
    } else if (strcmp(k, "near_max_item_bytes") == 0) {
        if (parse_size(val, 1, REDIS_MAX_BULK, &v) != 0)
            return open_fail(err, (int)i,
                             "near_max_item_bytes: %s is not a size from 1 "
                             "to 512m",
                             QUOTE(val, q)),
                   -1;
        ns->max_item_bytes = (size_t)v;
    } else if (strcmp(k, "near_prefix") == 0) {
        if (!*val || rpool_has_control(val) || strchr(val, ' '))
            return open_fail(err, (int)i,
                             "near_prefix: %s is not a usable key prefix",
                             QUOTE(val, q)),
                   -1;
        ns->prefix = val;
    } else if (strcmp(k, "near_ping_ms") == 0) {
        if (num_key(kv, i, 10, 3600000, &v, err))
            return -1;
        ns->ping_ms = (uint32_t)v;
    } else {
        return 0;
    }
    return 1;
}

/* Parses a yes/no key into *out; on a bad value fills err and returns
 * non-zero. */
static int yes_no_key(const hermes_kv *kv, size_t i, int *out,
                      hermes_open_error *err)
{
    char q[QUOTE_CAP];

    if (kv->value && strcmp(kv->value, "yes") == 0)
        *out = 1;
    else if (kv->value && strcmp(kv->value, "no") == 0)
        *out = 0;
    else
        return open_fail(err, (int)i, "%s: %s is neither yes nor no", kv->key,
                         QUOTE(kv->value, q));
    return 0;
}

static int redis_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                      void **state, hermes_open_error *err)
{
    rpool_settings s = {
        .host = "127.0.0.1",
        .port = 6379,
        .connect_timeout_ms = 1000,
        .command_timeout_ms = 1000,
        /* Connections are opened only as concurrent callers need them, so
         * a large bound costs an application with few threads nothing;
         * one too small makes callers queue for a connection, each
         * hand-over a wake-up and a context switch (32 threads on 8
         * connections: about 0.5 x raw GET throughput, on 32 about 0.9 x,
         * README "Benchmark"). */
        .size = 32,
        .max_value_bytes = MAX_VALUE_DEFAULT,
    };
    unsigned long long v;
    uint32_t flush_timeout_ms = 60000;
    int flushdb = 0, lock_notify = 1, batch_reads = 1;
    int cluster_at = -1, single_at = -1; /* kv of cluster, of host... */
    rcl_seed seeds[RCL_MAX_SEEDS];
    size_t nseeds = 0;
    rnear_settings ns = {
        .bytes = RNEAR_BYTES_DEFAULT,
        .max_item_bytes = RNEAR_ITEM_DEFAULT,
        .prefix = "cache",
        .ping_ms = RNEAR_PING_DEFAULT,
    };
    int nk;
    redis_state *st;
    size_t i;

    if (err) {
        err->msg[0] = '\0';
        err->kv_index = -1;
    }
    for (i = 0; i < n; i++) {
        const char *k = kv[i].key ? kv[i].key : "";
        const char *val = kv[i].value;
        char q[QUOTE_CAP];

        if (single_at < 0 &&
            (strcmp(k, "host") == 0 || strcmp(k, "port") == 0 ||
             strcmp(k, "socket") == 0 || strcmp(k, "db") == 0))
            single_at = (int)i;
        if (strcmp(k, "host") == 0) {
            if (!val || !*val)
                return open_fail(err, (int)i, "host: must not be empty");
            if (rpool_has_control(val))
                return open_fail(err, (int)i,
                                 "host: %s holds control characters",
                                 QUOTE(val, q));
            s.host = val;
        } else if (strcmp(k, "port") == 0) {
            if (num_key(&kv[i], i, 1, 65535, &v, err))
                return HERMES_BE_INVALID;
            s.port = (int)v;
        } else if (strcmp(k, "socket") == 0) {
            if (!val || !*val || rpool_has_control(val) ||
                strlen(val) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return open_fail(err, (int)i,
                                 "socket: %s is not a usable unix socket "
                                 "path",
                                 QUOTE(val, q));
            s.socket_path = val;
        } else if (strcmp(k, "db") == 0) {
            if (num_key(&kv[i], i, 0, INT_MAX, &v, err))
                return HERMES_BE_INVALID;
            s.db = (int)v;
        } else if (strcmp(k, "password") == 0) {
            /* An empty value means "no password", as in redis.conf. */
            s.password = (val && *val) ? val : NULL;
        } else if (strcmp(k, "connect_timeout_ms") == 0) {
            if (num_key(&kv[i], i, 1, 3600000, &v, err))
                return HERMES_BE_INVALID;
            s.connect_timeout_ms = (uint32_t)v;
        } else if (strcmp(k, "command_timeout_ms") == 0) {
            if (num_key(&kv[i], i, 1, 3600000, &v, err))
                return HERMES_BE_INVALID;
            s.command_timeout_ms = (uint32_t)v;
        } else if (strcmp(k, "pool_size") == 0) {
            if (num_key(&kv[i], i, 1, 1024, &v, err))
                return HERMES_BE_INVALID;
            s.size = (unsigned)v;
        } else if (strcmp(k, "max_value_bytes") == 0) {
            if (parse_size(val, MAX_VALUE_MIN, REDIS_MAX_BULK, &v) != 0)
                return open_fail(err, (int)i,
                                 "max_value_bytes: %s is not a size from 1k "
                                 "to 512m",
                                 QUOTE(val, q));
            s.max_value_bytes = (size_t)v;
        } else if (strcmp(k, "flush_timeout_ms") == 0) {
            if (num_key(&kv[i], i, 1, 86400000, &v, err))
                return HERMES_BE_INVALID;
            flush_timeout_ms = (uint32_t)v;
        } else if (strcmp(k, "flushdb") == 0) {
            if (yes_no_key(&kv[i], i, &flushdb, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "lock_notify") == 0) {
            if (yes_no_key(&kv[i], i, &lock_notify, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "batch_reads") == 0) {
            if (yes_no_key(&kv[i], i, &batch_reads, err))
                return HERMES_BE_INVALID;
        } else if (strcmp(k, "cluster") == 0) {
            cluster_at = (int)i; /* parsed below, once nothing can fail */
        } else if ((nk = near_key(&ns, &kv[i], i, err)) != 0) {
            if (nk < 0)
                return HERMES_BE_INVALID;
        } else {
            return open_fail(err, (int)i, "unknown key %s (known: %s, %s)",
                             QUOTE(k, q), known_keys, RNEAR_KEYS);
        }
    }
    if (cluster_at >= 0 && single_at >= 0)
        return open_fail(err, single_at,
                         "cannot be used with cluster = (line %d): the "
                         "nodes come from the cluster's slot map, and a "
                         "cluster has database 0 only",
                         kv[cluster_at].line);
    if (cluster_at >= 0 && ns.enabled) {
        for (i = 0; strcmp(kv[i].key, "near_cache") != 0; i++)
            ;
        return open_fail(err, (int)i,
                         "near_cache is not supported with cluster = (line "
                         "%d) yet",
                         kv[cluster_at].line);
    }
    if (cluster_at >= 0) {
        char why[200];

        if (rcl_parse_seeds(kv[cluster_at].value, seeds, &nseeds, why,
                            sizeof why) != 0)
            return open_fail(err, cluster_at, "%s", why);
    }

    st = calloc(1, sizeof *st);
    /* No connect here: the application must start with the server down. */
    if (!st || (nseeds ? rcl_new(&st->cl, host, &s, seeds, nseeds)
                       : rpool_init(&st->pool, host, &s)) != HERMES_BE_OK) {
        free(st);
        rcl_free_seeds(seeds, nseeds);
        open_fail(err, -1, "out of memory");
        return HERMES_BE_NOMEM;
    }
    rcl_free_seeds(seeds, nseeds);
    /* With a cluster, st->pool is not a pool: only its limit is set, for
     * the reply shapes (rpool_scalar, rpool_array).  Nor is there a
     * single server to listen to for lock releases: waiters poll. */
    if (st->cl)
        st->pool.max_value_bytes = s.max_value_bytes;
    else if ((ns.enabled && rnear_new(&st->near, host, &s, &ns, redis_get,
                                      st) != HERMES_BE_OK) ||
             (lock_notify && !(st->wait = rwait_new(&st->pool))) ||
             (batch_reads && !(st->batch = rbatch_new(&st->pool)))) {
        rwait_free(st->wait);
        rnear_free(st->near);
        rpool_destroy(&st->pool);
        free(st);
        open_fail(err, -1, "out of memory");
        return HERMES_BE_NOMEM;
    }
    st->flushdb = flushdb;
    st->flush_timeout_ms = flush_timeout_ms;
    pthread_mutex_init(&st->sha_mu, NULL);
    /* A child must not inherit it held by a thread copying the SHA1; it
     * is never held with another lock, so it registers in any order. */
    hm_forklist_add(&st->sha_fork, &st->sha_mu, NULL, st);
    atomic_init(&st->no_unlink, 0);
    atomic_init(&st->no_nx_get, 0);
    *state = st;
    return HERMES_BE_OK;
}

static void redis_close(void *state)
{
    redis_state *st = state;

    if (!st)
        return;
    rwait_free(st->wait);
    rnear_free(st->near);
    rbatch_free(st->batch);
    if (st->cl)
        rcl_free(st->cl);
    else
        rpool_destroy(&st->pool);
    hm_forklist_remove(&st->sha_fork);
    pthread_mutex_destroy(&st->sha_mu);
    free(st);
}

/* ----------------------------------------------------------- helpers */

/* hiredis copies each argument with memcpy, which must not see NULL. */
static const char *bytes_ptr(hermes_bytes b)
{
    return b.data ? (const char *)b.data : "";
}

static int too_big(size_t len)
{
    return len > REDIS_MAX_BULK;
}

/* One command with all these keys: hiredis 0.14 sums its length in an int,
 * and redis refuses a request over its query buffer limit, so a batch is
 * kept under one bulk string's limit as a whole (with room for framing). */
static int batch_too_big(const hermes_bytes *keys, size_t n)
{
    size_t total = 0;

    if (n >= INT_MAX)
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (too_big(keys[i].len))
            return 1;
        total += keys[i].len + 32;
        if (total > REDIS_MAX_BULK)
            return 1;
    }
    return 0;
}

/* Logs a reply we cannot use: the server's error text, or its type. */
static int bad_reply(rpool *p, const char *what, const redisReply *r)
{
    atomic_fetch_add(&p->errors, 1);
    if (r->type == REDIS_REPLY_ERROR) {
        char q[QUOTE_CAP];

        rpool_log(p, HERMES_LOG_ERROR, "%s: %s", what,
                  rpool_quote(r->str, r->len, q, sizeof q));
    } else
        rpool_log(p, HERMES_LOG_ERROR, "%s: unexpected reply of type %d", what,
                  r->type);
    return HERMES_BE_PROTOCOL;
}

static void free_replies(redisReply **replies, size_t n)
{
    size_t i;

    if (!replies)
        return;
    for (i = 0; i < n; i++)
        if (replies[i])
            freeReplyObject(replies[i]);
    free(replies);
}

/* One command, one reply of the given shape, on a borrowed connection. */
static int command1(rpool *p, rpool_conn *conn, int argc, const char **argv,
                    const size_t *lens, redisReply **r,
                    const rpool_shape *shape, const char *what)
{
    int rc = rpool_append(p, conn, argc, argv, lens);

    if (rc != HERMES_BE_OK)
        return rc;
    return rpool_read(p, conn, 1, r, shape, what);
}

/* Borrow a connection, run one command, return the connection: the reply
 * outlives the connection, so callbacks never run while holding one. */
static int run1(rpool *p, int argc, const char **argv, const size_t *lens,
                redisReply **r, const rpool_shape *shape, const char *what)
{
    rpool_conn *conn;
    int rc = rpool_take(p, &conn);

    if (rc != HERMES_BE_OK)
        return rc;
    rc = command1(p, conn, argc, argv, lens, r, shape, what);
    rpool_put(p, conn);
    return rc;
}

/*
 * Delete argc - 1 keys (argv[1..]) with UNLINK, which frees large values in
 * the background; argv[0] is filled in here.  Servers older than 4.0 answer
 * "unknown command": remember that and use DEL from then on.
 */
static int delete_keys(redis_state *st, rpool_conn *conn, int argc,
                       const char **argv, size_t *lens)
{
    redisReply *r;
    int use_del = atomic_load(&st->no_unlink);
    rpool_shape shape = rpool_scalar(&st->pool);
    int rc;

    for (;;) {
        argv[0] = use_del ? "DEL" : "UNLINK";
        lens[0] = strlen(argv[0]);
        r = NULL;
        rc = command1(&st->pool, conn, argc, argv, lens, &r, &shape, argv[0]);
        if (rc != HERMES_BE_OK)
            return rc;
        if (r->type == REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            return HERMES_BE_OK;
        }
        if (!use_del && r->type == REDIS_REPLY_ERROR &&
            strncmp(r->str, "ERR unknown command", 19) == 0) {
            freeReplyObject(r);
            atomic_store(&st->no_unlink, 1);
            rpool_log(&st->pool, HERMES_LOG_INFO,
                      "server has no UNLINK, using DEL");
            use_del = 1;
            continue;
        }
        rc = bad_reply(&st->pool, argv[0], r);
        freeReplyObject(r);
        return rc;
    }
}

/* --------------------------------------------------------- get / set */

/*
 * The argument vector of one command over a batch of keys: cmd (may be
 * NULL, for the caller to fill in) and then every key.  Refuses batches
 * too big for one request.  Free both arrays with free().
 */
static int batch_argv(const char *cmd, const hermes_bytes *keys, size_t n,
                      const char ***argv, size_t **lens)
{
    if (batch_too_big(keys, n))
        return HERMES_BE_TOOBIG;
    *argv = malloc((n + 1) * sizeof **argv);
    *lens = malloc((n + 1) * sizeof **lens);
    if (!*argv || !*lens) {
        free(*argv);
        free(*lens);
        return HERMES_BE_NOMEM;
    }
    (*argv)[0] = cmd;
    (*lens)[0] = cmd ? strlen(cmd) : 0;
    for (size_t i = 0; i < n; i++) {
        (*argv)[i + 1] = bytes_ptr(keys[i]);
        (*lens)[i + 1] = keys[i].len;
    }
    return HERMES_BE_OK;
}

/*
 * A batch of keys split by cluster slot, since a multi-key command must
 * name keys of one slot: one command per slot (cmd and that slot's keys,
 * in batch order), ready for rcl_run().  order[] holds the keys' indices
 * slot by slot; command g covers order[first[g] ..] for its argc - 1 keys.
 * One allocation, freed with free(b->cmds).
 */
typedef struct slot_batch {
    rcl_cmd *cmds;
    size_t ncmds;
    size_t *first;
    size_t *order;
    size_t widest; /* most keys of one command */
} slot_batch;

typedef struct keyslot {
    size_t slot, index;
} keyslot;

static int by_slot(const void *a, const void *b)
{
    const keyslot *x = a, *y = b;

    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int slot_batch_new(slot_batch *b, const char *cmd,
                          const hermes_bytes *keys, size_t n)
{
    size_t i, g, k, cmdlen = strlen(cmd);
    keyslot *ks;
    const char **argv;
    size_t *lens;
    char *mem;

    if (batch_too_big(keys, n))
        return HERMES_BE_TOOBIG;
    /* cmds, first, order, the pairs, argv and lens: n commands at most. */
    mem = malloc(n * (sizeof(rcl_cmd) + 2 * sizeof(size_t) + sizeof(keyslot)) +
                 2 * n * (sizeof(char *) + sizeof(size_t)));
    if (!mem)
        return HERMES_BE_NOMEM;
    b->cmds = (rcl_cmd *)mem;
    b->first = (size_t *)(b->cmds + n);
    b->order = b->first + n;
    ks = (keyslot *)(b->order + n);
    argv = (const char **)(ks + n);
    lens = (size_t *)(argv + 2 * n);
    for (i = 0; i < n; i++)
        ks[i] = (keyslot){rslot_of(bytes_ptr(keys[i]), keys[i].len), i};
    if (n > 1)
        qsort(ks, n, sizeof *ks, by_slot);
    b->ncmds = 0;
    b->widest = 0;
    for (i = 0, k = 0; i < n; i = g) {
        rcl_cmd *c = &b->cmds[b->ncmds];

        c->slot = (uint16_t)ks[i].slot;
        c->argv = argv + k;
        c->lens = lens + k;
        b->first[b->ncmds++] = i;
        argv[k] = cmd;
        lens[k++] = cmdlen;
        for (g = i; g < n && ks[g].slot == ks[i].slot; g++) {
            b->order[g] = ks[g].index;
            argv[k] = bytes_ptr(keys[ks[g].index]);
            lens[k++] = keys[ks[g].index].len;
        }
        c->argc = (int)(g - i + 1);
        if (g - i > b->widest)
            b->widest = g - i;
    }
    return HERMES_BE_OK;
}

/* The pool that answered command i of a cluster batch (for messages and
 * error counts), or the single server's. */
static rpool *reply_pool(redis_state *st, const rcl_cmd *cmds, size_t i)
{
    return cmds ? &rcl_node_at(st->cl, cmds[i].node)->pool : &st->pool;
}

static void free_cmd_replies(rcl_cmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cmds[i].reply)
            freeReplyObject(cmds[i].reply);
}

/* Reports the values of one MGET reply for the keys at order[0..n). */
static int mget_values(rpool *p, const redisReply *r, const size_t *order,
                       size_t n, hermes_value_cb cb, void *arg)
{
    int rc = HERMES_BE_OK;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != n)
        return bad_reply(p, "MGET", r);
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = r->element[i];

        if (e->type == REDIS_REPLY_STRING)
            cb(arg, order ? order[i] : i, e->str, e->len);
        else if (e->type != REDIS_REPLY_NIL)
            rc = bad_reply(p, "MGET", e);
    }
    return rc;
}

/* A cluster get: one MGET per slot, all nodes in one round trip. */
static int cluster_get(redis_state *st, const hermes_bytes *keys, size_t n,
                       hermes_value_cb cb, void *arg)
{
    slot_batch b;
    int rc = slot_batch_new(&b, "MGET", keys, n);

    if (rc != HERMES_BE_OK)
        return rc;
    rpool_shape shape = rpool_array(&st->pool, b.widest);
    rc = rcl_run(st->cl, b.cmds, b.ncmds, &shape, "MGET");
    for (size_t g = 0; g < b.ncmds && rc == HERMES_BE_OK; g++)
        rc = mget_values(reply_pool(st, b.cmds, g), b.cmds[g].reply,
                         b.order + b.first[g], (size_t)b.cmds[g].argc - 1, cb,
                         arg);
    free_cmd_replies(b.cmds, b.ncmds);
    free(b.cmds);
    return rc;
}

static int redis_get(void *state, const hermes_bytes *keys, size_t n,
                     hermes_value_cb cb, void *arg)
{
    redis_state *st = state;
    redisReply *r = NULL;
    const char **argv;
    size_t *lens;
    int rc;

    if (n == 0)
        return HERMES_BE_OK;
    if (st->cl)
        return cluster_get(st, keys, n, cb, arg);
    if ((rc = batch_argv("MGET", keys, n, &argv, &lens)) != HERMES_BE_OK)
        return rc;
    /* A reply to MGET of n keys has n elements, each at most a value. */
    rpool_shape shape = rpool_array(&st->pool, n);
    if (st->batch)
        rc = rbatch_read(st->batch, (int)n + 1, argv, lens, &shape, "MGET", &r);
    else
        rc = run1(&st->pool, (int)n + 1, argv, lens, &r, &shape, "MGET");
    free(argv);
    free(lens);
    if (rc != HERMES_BE_OK)
        return rc;
    rc = mget_values(&st->pool, r, NULL, n, cb, arg);
    freeReplyObject(r);
    return rc;
}

/* Whether set-if-absent items use one atomic SET NX GET (redis 7). */
static int nx_get(redis_state *st)
{
    return !atomic_load_explicit(&st->no_nx_get, memory_order_relaxed);
}

/* SET key value [NX [GET]] [PX ttl] for one item (GET when atomic_nx);
 * argv points into the struct, which must stay where it is. */
typedef struct set_args {
    const char *argv[7];
    size_t lens[7];
    char ttl[16];
    int argc;
    const char *get_argv[2]; /* GET key, after SET NX on old servers */
    size_t get_lens[2];
} set_args;

static void set_argv(const hermes_item *it, int atomic_nx, set_args *a)
{
    int argc = 3;

    a->argv[0] = "SET";
    a->lens[0] = 3;
    a->argv[1] = bytes_ptr(it->key);
    a->lens[1] = it->key.len;
    a->argv[2] = bytes_ptr(it->value);
    a->lens[2] = it->value.len;
    if (it->flags & HERMES_SET_IF_ABSENT) {
        a->argv[argc] = "NX";
        a->lens[argc++] = 2;
        if (atomic_nx) {
            a->argv[argc] = "GET";
            a->lens[argc++] = 3;
        }
    }
    if (it->ttl_ms != 0) {
        a->argv[argc] = "PX";
        a->lens[argc++] = 2;
        a->lens[argc] = (size_t)snprintf(a->ttl, sizeof a->ttl, "%lu",
                                         (unsigned long)it->ttl_ms);
        a->argv[argc++] = a->ttl;
    }
    a->argc = argc;
    a->get_argv[0] = "GET";
    a->get_lens[0] = 3;
    a->get_argv[1] = a->argv[1];
    a->get_lens[1] = a->lens[1];
}

/* Whether the item is sent as two commands: SET NX, then GET. */
static int two_commands(const hermes_item *it, int atomic_nx)
{
    return (it->flags & HERMES_SET_IF_ABSENT) && !atomic_nx;
}

/* The items not marked big, in one pipeline to the single server. */
static int set_pipeline(redis_state *st, const hermes_item *items, size_t n,
                        const unsigned char *big, int atomic_nx,
                        redisReply **replies, size_t nreplies)
{
    rpool_conn *conn;
    int rc = rpool_take(&st->pool, &conn);
    int took = rc == HERMES_BE_OK;
    set_args a;

    for (size_t i = 0; i < n && rc == HERMES_BE_OK; i++) {
        if (big[i])
            continue;
        set_argv(&items[i], atomic_nx, &a);
        rc = rpool_append(&st->pool, conn, a.argc, a.argv, a.lens);
        if (rc == HERMES_BE_OK && two_commands(&items[i], atomic_nx))
            rc = rpool_append(&st->pool, conn, 2, a.get_argv, a.get_lens);
    }
    rpool_shape shape = rpool_scalar(&st->pool);
    if (rc == HERMES_BE_OK)
        rc = rpool_read(&st->pool, conn, nreplies, replies, &shape, "SET");
    if (took)
        rpool_put(&st->pool, conn);
    return rc;
}

/* The same for a cluster: each item to its key's node, one round trip.
 * Items whose node failed have NULL replies; the first failure is
 * returned.  *cmds_out (free it) names the node of each reply. */
static int set_cluster(redis_state *st, const hermes_item *items, size_t n,
                       const unsigned char *big, int atomic_nx,
                       redisReply **replies, size_t nreplies,
                       rcl_cmd **cmds_out)
{
    rcl_cmd *cmds = malloc(nreplies * sizeof *cmds);
    set_args *args = malloc(n * sizeof *args);
    size_t i, j;
    int rc;

    *cmds_out = NULL;
    if (!cmds || !args) {
        free(cmds);
        free(args);
        return HERMES_BE_NOMEM;
    }
    for (i = 0, j = 0; i < n; i++) {
        uint16_t slot;

        if (big[i])
            continue;
        set_argv(&items[i], atomic_nx, &args[i]);
        slot = rslot_of(args[i].argv[1], args[i].lens[1]);
        cmds[j++] = (rcl_cmd){.slot = slot,
                              .argc = args[i].argc,
                              .argv = args[i].argv,
                              .lens = args[i].lens};
        if (two_commands(&items[i], atomic_nx))
            cmds[j++] = (rcl_cmd){.slot = slot,
                                  .argc = 2,
                                  .argv = args[i].get_argv,
                                  .lens = args[i].get_lens};
    }
    rpool_shape shape = rpool_scalar(&st->pool);
    rc = rcl_run(st->cl, cmds, nreplies, &shape, "SET");
    for (j = 0; j < nreplies; j++)
        replies[j] = cmds[j].reply;
    free(args);
    *cmds_out = cmds;
    return rc;
}

/*
 * All items go out in one pipeline (one round trip over every node of a
 * cluster).  A set-if-absent item is one SET k v NX GET (redis 7), which
 * answers nil when ours was stored and the value that was there
 * otherwise, atomically: the value that won comes back in the same round
 * trip even while other clients delete the key.  A server that refuses NX
 * with GET (redis < 7) gets SET NX followed by a GET, which a concurrent
 * delete can slip between; then nobody holds the key and no value is
 * reported.
 */
static int redis_del(void *state, const hermes_bytes *keys, size_t n);

static int redis_set(void *state, const hermes_item *items, size_t n,
                     hermes_value_cb cb, void *arg)
{
    redis_state *st = state;
    redisReply **replies;
    rcl_cmd *cmds = NULL;
    size_t i, j, nreplies = 0, nstale = 0;
    int rc, first = HERMES_BE_OK, retry_old = 0;
    /* Read once: the reply count depends on it. */
    int atomic_nx = nx_get(st);

    if (n == 0)
        return HERMES_BE_OK;
    /* Too-big items are left out of the pipeline (a half-queued one would
     * cost the connection); the others are still attempted. */
    unsigned char *big = calloc(n, 1);
    hermes_bytes *stale = calloc(n, sizeof *stale);
    if (!big || !stale) {
        free(big);
        free(stale);
        return HERMES_BE_NOMEM;
    }
    for (i = 0; i < n; i++) {
        /* A value longer than max_value_bytes would be refused when read
         * back, so it is not stored either. */
        big[i] = too_big(items[i].key.len) ||
                 items[i].value.len > st->pool.max_value_bytes;
        if (big[i]) {
            first = HERMES_BE_TOOBIG;
            /* An overwrite that fails must not leave the old value. */
            if (!(items[i].flags & HERMES_SET_IF_ABSENT) &&
                !too_big(items[i].key.len))
                stale[nstale++] = items[i].key;
            continue;
        }
        nreplies += two_commands(&items[i], atomic_nx) ? 2 : 1;
    }
    rc = HERMES_BE_OK;
    replies = calloc(nreplies ? nreplies : 1, sizeof *replies);
    if (!replies)
        rc = HERMES_BE_NOMEM;
    if (rc == HERMES_BE_OK && nreplies > 0)
        rc = st->cl ? set_cluster(st, items, n, big, atomic_nx, replies,
                                  nreplies, &cmds)
                    : set_pipeline(st, items, n, big, atomic_nx, replies,
                                   nreplies);
    if (rc != HERMES_BE_OK && !cmds) {
        /* Whether any SET ran is unknown; the old values may be readable
         * and the connection is gone, so the stale-key cleanup below is
         * left to the next call's failure handling. */
        free(replies);
        free(big);
        free(stale);
        return rc;
    }
    if (first == HERMES_BE_OK)
        first = rc; /* a cluster node failed: the others' items count */

    for (i = 0, j = 0; i < n; i++) {
        const redisReply *r, *g;
        rpool *p;
        int won, two;

        if (big[i])
            continue;
        two = two_commands(&items[i], atomic_nx);
        r = replies[j];
        g = two ? replies[j + 1] : NULL;
        if (!r) {
            j += two ? 2 : 1;
            continue; /* its node failed (cluster) */
        }
        p = reply_pool(st, cmds, j);
        j += two ? 2 : 1;
        if (!(items[i].flags & HERMES_SET_IF_ABSENT)) {
            if (r->type != REDIS_REPLY_STATUS) {
                /* Refused (e.g. OOM under maxmemory noeviction, which
                 * still allows deletes): the old value must go. */
                rc = bad_reply(p, "SET", r);
                stale[nstale++] = items[i].key;
            }
            continue;
        }
        if (atomic_nx) {
            /* SET NX GET: nil when ours was stored, else the old value. */
            if (r->type == REDIS_REPLY_NIL) {
                if (cb)
                    cb(arg, i, bytes_ptr(items[i].value), items[i].value.len);
            } else if (r->type == REDIS_REPLY_STRING) {
                if (cb)
                    cb(arg, i, r->str, r->len);
            } else if (r->type == REDIS_REPLY_ERROR && !retry_old &&
                       strstr(r->str, "syntax") != NULL) {
                retry_old = 1;
            } else {
                rc = bad_reply(p, "SET NX GET", r);
            }
            continue;
        }
        won = r->type == REDIS_REPLY_STATUS; /* NX answers nil when taken */
        if (!won && r->type != REDIS_REPLY_NIL)
            rc = bad_reply(p, "SET NX", r);
        if (g->type == REDIS_REPLY_STRING) {
            if (cb)
                cb(arg, i, g->str, g->len);
        } else if (g->type == REDIS_REPLY_NIL) {
            /* Gone again already (deleted or a tiny TTL): if ours was
             * stored, ours is the answer; otherwise nobody holds it and
             * there is nothing to agree on. */
            if (won && cb)
                cb(arg, i, bytes_ptr(items[i].value), items[i].value.len);
        } else {
            rc = bad_reply(p, "GET", g);
        }
    }
    free_replies(replies, nreplies);
    free(cmds);
    if (first == HERMES_BE_OK)
        first = rc;
    if (nstale > 0)
        redis_del(st, stale, nstale);
    free(big);
    free(stale);
    if (retry_old) {
        /* An old server: again, the set-if-absent way it understands (the
         * plain SETs of the batch are repeated, which changes nothing). */
        atomic_store(&st->no_nx_get, 1);
        return redis_set(state, items, n, cb, arg);
    }
    return first;
}

/* A cluster delete: one UNLINK (or DEL) per slot, one round trip. */
static int cluster_del(redis_state *st, const hermes_bytes *keys, size_t n)
{
    int use_del = atomic_load(&st->no_unlink);
    slot_batch b;
    int rc = slot_batch_new(&b, use_del ? "DEL" : "UNLINK", keys, n);
    int unknown = 0;

    if (rc != HERMES_BE_OK)
        return rc;
    rpool_shape shape = rpool_scalar(&st->pool);
    rc = rcl_run(st->cl, b.cmds, b.ncmds, &shape, b.cmds[0].argv[0]);
    for (size_t g = 0; g < b.ncmds; g++) {
        const redisReply *r = b.cmds[g].reply;

        if (!r || r->type == REDIS_REPLY_INTEGER)
            continue;
        if (!use_del && r->type == REDIS_REPLY_ERROR &&
            strncmp(r->str, "ERR unknown command", 19) == 0)
            unknown = 1;
        else if (rc == HERMES_BE_OK)
            rc = bad_reply(reply_pool(st, b.cmds, g), b.cmds[g].argv[0], r);
    }
    free_cmd_replies(b.cmds, b.ncmds);
    free(b.cmds);
    if (unknown) {
        atomic_store(&st->no_unlink, 1);
        rcl_log(st->cl, HERMES_LOG_INFO, "a node has no UNLINK, using DEL");
        return cluster_del(st, keys, n);
    }
    return rc;
}

static int redis_del(void *state, const hermes_bytes *keys, size_t n)
{
    redis_state *st = state;
    rpool_conn *conn;
    const char **argv;
    size_t *lens;
    int rc;

    if (n == 0)
        return HERMES_BE_OK;
    if (st->cl)
        return cluster_del(st, keys, n);
    /* delete_keys() puts UNLINK or DEL in argv[0]. */
    if ((rc = batch_argv(NULL, keys, n, &argv, &lens)) != HERMES_BE_OK)
        return rc;
    rc = rpool_take(&st->pool, &conn);
    if (rc == HERMES_BE_OK) {
        rc = delete_keys(st, conn, (int)n + 1, argv, lens);
        rpool_put(&st->pool, conn);
    }
    free(argv);
    free(lens);
    return rc;
}

/* ------------------------------------------------------------- locks */

/* The lock command: SET key token NX PX ttl_ms (ttl holds the digits). */
typedef struct lock_cmd {
    const char *argv[6];
    size_t lens[6];
    char ttl[16];
} lock_cmd;

static int lock_cmd_init(lock_cmd *l, hermes_bytes key, hermes_bytes token,
                         uint32_t ttl_ms)
{
    if (ttl_ms == 0)
        return HERMES_BE_INVALID;
    if (too_big(key.len) || too_big(token.len))
        return HERMES_BE_TOOBIG;
    *l = (lock_cmd){
        .argv = {"SET", bytes_ptr(key), bytes_ptr(token), "NX", "PX", NULL},
        .lens = {3, key.len, token.len, 2, 2, 0},
    };
    l->lens[5] =
        (size_t)snprintf(l->ttl, sizeof l->ttl, "%lu", (unsigned long)ttl_ms);
    l->argv[5] = l->ttl;
    return HERMES_BE_OK;
}

/* OK when taken, nil when held by someone else. */
static int lock_reply(rpool *p, const redisReply *r, int *acquired)
{
    if (r->type == REDIS_REPLY_STATUS)
        *acquired = 1;
    else if (r->type != REDIS_REPLY_NIL)
        return bad_reply(p, "lock SET NX", r);
    return HERMES_BE_OK;
}

/* One command about one key, on the single server or on the key's node of
 * a cluster; *p is the pool that answered (for bad_reply). */
static int run_for_key(redis_state *st, hermes_bytes key, int argc,
                       const char **argv, const size_t *lens, redisReply **r,
                       const rpool_shape *shape, const char *what, rpool **p)
{
    rcl_cmd c = {.slot = 0, .argc = argc, .argv = argv, .lens = lens};
    int rc;

    if (!st->cl) {
        *p = &st->pool;
        return run1(&st->pool, argc, argv, lens, r, shape, what);
    }
    c.slot = rslot_of(bytes_ptr(key), key.len);
    rc = rcl_run(st->cl, &c, 1, shape, what);
    *r = c.reply;
    *p = rc == HERMES_BE_OK ? reply_pool(st, &c, 0) : NULL;
    return rc;
}

static int redis_lock(void *state, hermes_bytes key, hermes_bytes token,
                      uint32_t ttl_ms, int *acquired)
{
    redis_state *st = state;
    redisReply *r = NULL;
    rpool *p;
    lock_cmd l;
    int rc;

    *acquired = 0;
    if ((rc = lock_cmd_init(&l, key, token, ttl_ms)) != HERMES_BE_OK)
        return rc;
    rpool_shape shape = rpool_scalar(&st->pool);
    rc = run_for_key(st, key, 6, l.argv, l.lens, &r, &shape, "lock SET NX", &p);
    if (rc != HERMES_BE_OK)
        return rc;
    rc = lock_reply(p, r, acquired);
    freeReplyObject(r);
    return rc;
}

/*
 * lock() and get() in one pipeline: SET NX PX, then MGET.
 *
 * On a cluster the lock and the keys read are on different nodes as a
 * rule, and two nodes do not keep the order of two requests sent at
 * once: the read could run before the lock is taken, and miss the value
 * of a leader that wrote it and unlocked in between, so this caller would
 * compute it again.  The operation promises the read after the lock, so
 * there it is lock(), then get() (two round trips, what the core does
 * without lock_get; the core chooses per plugin, not per call, so it
 * cannot be asked to).
 */
static int redis_lock_get(void *state, hermes_bytes key, hermes_bytes token,
                          uint32_t ttl_ms, int *acquired,
                          const hermes_bytes *keys, size_t n,
                          hermes_value_cb cb, void *arg)
{
    redis_state *st = state;
    redisReply *lr = NULL, *gr = NULL;
    const char **argv;
    size_t *lens;
    rpool_conn *conn;
    lock_cmd l;
    int rc;

    *acquired = 0;
    if ((rc = lock_cmd_init(&l, key, token, ttl_ms)) != HERMES_BE_OK)
        return rc;
    if (n == 0 || cb == NULL)
        return HERMES_BE_INVALID;
    if (st->cl) {
        rc = redis_lock(state, key, token, ttl_ms, acquired);
        return rc == HERMES_BE_OK ? redis_get(state, keys, n, cb, arg) : rc;
    }
    if ((rc = batch_argv("MGET", keys, n, &argv, &lens)) != HERMES_BE_OK)
        return rc;
    rpool_shape lshape = rpool_scalar(&st->pool);
    rpool_shape gshape = rpool_array(&st->pool, n);
    rc = rpool_take(&st->pool, &conn);
    if (rc == HERMES_BE_OK) {
        /* One request: both replies within one command_timeout_ms. */
        uint64_t deadline = rpool_deadline(&st->pool);
        rc = rpool_append(&st->pool, conn, 6, l.argv, l.lens);
        if (rc == HERMES_BE_OK)
            rc = rpool_append(&st->pool, conn, (int)n + 1, argv, lens);
        if (rc == HERMES_BE_OK)
            rc = rpool_read_until(&st->pool, conn, 1, &lr, &lshape,
                                  "lock SET NX", deadline);
        if (rc == HERMES_BE_OK)
            rc = rpool_read_until(&st->pool, conn, 1, &gr, &gshape, "MGET",
                                  deadline);
        rpool_put(&st->pool, conn);
    }
    free(argv);
    free(lens);
    /* The replies outlive the connection: cb runs without holding one. */
    if (rc == HERMES_BE_OK)
        rc = lock_reply(&st->pool, lr, acquired);
    if (rc == HERMES_BE_OK)
        rc = mget_values(&st->pool, gr, NULL, n, cb, arg);
    if (lr)
        freeReplyObject(lr);
    if (gr)
        freeReplyObject(gr);
    return rc;
}

/* SCRIPT LOAD of the unlock script. */
#define SCRIPT_LOAD_ARGV                                                       \
    {                                                                          \
        "SCRIPT", "LOAD", unlock_script                                        \
    }
#define SCRIPT_LOAD_LENS                                                       \
    {                                                                          \
        6, 4, sizeof unlock_script - 1                                         \
    }

/* Remembers the SHA1 that SCRIPT LOAD answered, in st and in sha. */
static void remember_sha(redis_state *st, rpool *p, const redisReply *r,
                         char *sha)
{
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        pthread_mutex_lock(&st->sha_mu);
        memcpy(st->unlock_sha, r->str, 40);
        st->unlock_sha[40] = '\0';
        pthread_mutex_unlock(&st->sha_mu);
        memcpy(sha, r->str, 40);
        sha[40] = '\0';
    } else {
        bad_reply(p, "SCRIPT LOAD", r);
    }
}

/* Load the unlock script once per plugin state and remember its SHA1.
 * Failing here is not fatal: unlock then falls back to EVAL. */
static void load_unlock_sha(redis_state *st, rpool_conn *conn, char *sha)
{
    const char *argv[3] = SCRIPT_LOAD_ARGV;
    size_t lens[3] = SCRIPT_LOAD_LENS;
    redisReply *r = NULL;
    rpool_shape shape = rpool_scalar(&st->pool);

    if (command1(&st->pool, conn, 3, argv, lens, &r, &shape, "SCRIPT LOAD") !=
        HERMES_BE_OK)
        return;
    remember_sha(st, &st->pool, r, sha);
    freeReplyObject(r);
}

/* The unlock command: EVALSHA of the script once its SHA1 is known (sha
 * holds it, or ""), else EVAL of its text, which the server caches. */
typedef struct unlock_cmd {
    const char *argv[5];
    size_t lens[5];
} unlock_cmd;

static void unlock_cmd_init(unlock_cmd *u, const char *sha, hermes_bytes key,
                            hermes_bytes token)
{
    *u = (unlock_cmd){
        .argv = {"EVALSHA", sha, "1", bytes_ptr(key), bytes_ptr(token)},
        .lens = {7, 40, 1, key.len, token.len},
    };
    if (!sha[0]) {
        u->argv[0] = "EVAL";
        u->lens[0] = 4;
        u->argv[1] = unlock_script;
        u->lens[1] = sizeof unlock_script - 1;
    }
}

/* After SCRIPT FLUSH, a server restart or on a node that never loaded it
 * (a cluster's other master, a promoted replica) the script is missing:
 * EVALSHA answers NOSCRIPT, and EVAL runs it and caches it again under
 * the same SHA1.  Frees *r and clears it when that is what it says. */
static int noscript(redisReply **r)
{
    if (*r == NULL || (*r)->type != REDIS_REPLY_ERROR ||
        strncmp((*r)->str, "NOSCRIPT", 8) != 0)
        return 0;
    freeReplyObject(*r);
    *r = NULL;
    return 1;
}

/* *r is the EVALSHA reply: EVAL on conn when it is NOSCRIPT. */
static int unlock_again(redis_state *st, rpool_conn *conn, hermes_bytes key,
                        hermes_bytes token, redisReply **r)
{
    unlock_cmd u;
    rpool_shape shape = rpool_scalar(&st->pool);

    if (!noscript(r))
        return HERMES_BE_OK;
    unlock_cmd_init(&u, "", key, token);
    return command1(&st->pool, conn, 5, u.argv, u.lens, r, &shape, "EVAL");
}

/* 1 when the script deleted our lock, 0 when it was not ours. */
static int unlock_reply(rpool *p, const redisReply *r, int *released)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(p, "unlock", r);
    *released = r->integer == 1;
    return HERMES_BE_OK;
}

static void unlock_sha_copy(redis_state *st, char sha[41])
{
    pthread_mutex_lock(&st->sha_mu);
    memcpy(sha, st->unlock_sha, 41);
    pthread_mutex_unlock(&st->sha_mu);
}

/*
 * Unlock on a cluster: everything goes to the key's node.  The script is
 * loaded there (SCRIPT LOAD routed by the key) the first time; a node
 * that does not have it yet answers NOSCRIPT, and EVAL runs it there.
 */
static int cluster_unlock(redis_state *st, hermes_bytes key, hermes_bytes token,
                          int *released)
{
    char sha[41];
    const char *load_argv[3] = SCRIPT_LOAD_ARGV;
    size_t load_lens[3] = SCRIPT_LOAD_LENS;
    redisReply *r = NULL;
    rpool_shape shape = rpool_scalar(&st->pool);
    unlock_cmd u;
    rpool *p;
    int rc;

    unlock_sha_copy(st, sha);
    if (!sha[0] && run_for_key(st, key, 3, load_argv, load_lens, &r, &shape,
                               "SCRIPT LOAD", &p) == HERMES_BE_OK) {
        remember_sha(st, p, r, sha);
        freeReplyObject(r);
        r = NULL;
    }
    unlock_cmd_init(&u, sha, key, token);
    rc = run_for_key(st, key, 5, u.argv, u.lens, &r, &shape, u.argv[0], &p);
    if (rc == HERMES_BE_OK && noscript(&r)) {
        unlock_cmd_init(&u, "", key, token);
        rc = run_for_key(st, key, 5, u.argv, u.lens, &r, &shape, "EVAL", &p);
    }
    if (rc != HERMES_BE_OK)
        return rc;
    rc = unlock_reply(p, r, released);
    freeReplyObject(r);
    return rc;
}

static int redis_unlock(void *state, hermes_bytes key, hermes_bytes token,
                        int *released)
{
    redis_state *st = state;
    char sha[41];
    redisReply *r = NULL;
    rpool_shape shape = rpool_scalar(&st->pool);
    rpool_conn *conn;
    unlock_cmd u;
    int rc;

    *released = 0;
    if (too_big(key.len) || too_big(token.len))
        return HERMES_BE_TOOBIG;
    if (st->cl)
        return cluster_unlock(st, key, token, released);
    rc = rpool_take(&st->pool, &conn);
    if (rc != HERMES_BE_OK)
        return rc;
    unlock_sha_copy(st, sha);
    if (!sha[0])
        load_unlock_sha(st, conn, sha);
    if (!conn->broken) {
        unlock_cmd_init(&u, sha, key, token);
        rc =
            command1(&st->pool, conn, 5, u.argv, u.lens, &r, &shape, u.argv[0]);
        if (rc == HERMES_BE_OK)
            rc = unlock_again(st, conn, key, token, &r);
    }
    if (rc == HERMES_BE_OK && !r)
        rc = HERMES_BE_IO; /* the connection broke while loading */
    rpool_put(&st->pool, conn);
    if (rc != HERMES_BE_OK)
        return rc;
    rc = unlock_reply(&st->pool, r, released);
    freeReplyObject(r);
    return rc;
}

/*
 * set() and unlock() in one pipeline: the SETs, then the unlock script.
 * Items set() would refuse or split (too big, set-if-absent) go the long
 * way, set() then unlock().  So does a cluster: the lock's node could
 * run the unlock before another node stored the value, and a caller
 * waiting for the lock would take it, miss and compute again; the
 * operation promises the write before the unlock.
 */
static int redis_set_unlock(void *state, const hermes_item *items, size_t n,
                            hermes_bytes key, hermes_bytes token, int *released)
{
    redis_state *st = state;
    redisReply *small[4], **replies = small, *ur = NULL;
    hermes_bytes *stale;
    rpool_conn *conn;
    unlock_cmd u;
    char sha[41];
    size_t i, nstale = 0;
    int rc, urc;

    *released = 0;
    if (too_big(key.len) || too_big(token.len))
        return HERMES_BE_TOOBIG;
    int apart = st->cl != NULL;
    for (i = 0; i < n; i++) {
        if (items[i].flags & HERMES_SET_IF_ABSENT)
            return HERMES_BE_INVALID;
        apart |= too_big(items[i].key.len) ||
                 items[i].value.len > st->pool.max_value_bytes;
    }
    if (apart) {
        rc = redis_set(state, items, n, NULL, NULL);
        urc = redis_unlock(state, key, token, released);
        return rc != HERMES_BE_OK ? rc : urc;
    }
    /* The SETs' replies and the unlock's. */
    if (n + 1 > sizeof small / sizeof *small &&
        !(replies = calloc(n + 1, sizeof *replies)))
        return HERMES_BE_NOMEM;
    memset(replies, 0, (n + 1) * sizeof *replies);
    if (!(stale = calloc(n ? n : 1, sizeof *stale))) {
        if (replies != small)
            free(replies);
        return HERMES_BE_NOMEM;
    }
    rpool_shape shape = rpool_scalar(&st->pool);
    unlock_sha_copy(st, sha);
    unlock_cmd_init(&u, sha, key, token);
    rc = rpool_take(&st->pool, &conn);
    if (rc == HERMES_BE_OK) {
        for (i = 0; i < n && rc == HERMES_BE_OK; i++) {
            set_args a;

            set_argv(&items[i], 0, &a);
            rc = rpool_append(&st->pool, conn, a.argc, a.argv, a.lens);
        }
        if (rc == HERMES_BE_OK)
            rc = rpool_append(&st->pool, conn, 5, u.argv, u.lens);
        /* All n + 1 replies fit one shape: one read, one deadline. */
        if (rc == HERMES_BE_OK)
            rc = rpool_read(&st->pool, conn, n + 1, replies, &shape, "SET");
        if (rc == HERMES_BE_OK) {
            ur = replies[n];
            replies[n] = NULL;
        }
        if (rc == HERMES_BE_OK)
            rc = unlock_again(st, conn, key, token, &ur);
        rpool_put(&st->pool, conn);
    }
    int src = HERMES_BE_OK;
    for (i = 0; rc == HERMES_BE_OK && i < n; i++) {
        if (replies[i]->type != REDIS_REPLY_STATUS) {
            /* Refused (e.g. OOM under maxmemory noeviction, which still
             * allows deletes): the old value must go. */
            int r = bad_reply(&st->pool, "SET", replies[i]);
            if (src == HERMES_BE_OK)
                src = r;
            stale[nstale++] = items[i].key;
        }
    }
    urc = rc == HERMES_BE_OK && ur ? unlock_reply(&st->pool, ur, released) : rc;
    if (rc == HERMES_BE_OK)
        rc = src;
    if (ur)
        freeReplyObject(ur);
    for (i = 0; i < n; i++)
        if (replies[i])
            freeReplyObject(replies[i]);
    if (replies != small)
        free(replies);
    if (nstale > 0)
        redis_del(st, stale, nstale);
    free(stale);
    return rc != HERMES_BE_OK ? rc : urc;
}

/* Waits on the listener (wait.c) for unlock_script's PUBLISH. */
static int redis_wait_unlock(void *state, hermes_bytes key, uint64_t since_ns,
                             uint64_t until_ns, int *woken)
{
    redis_state *st = state;

    *woken = 0;
    /* lock_notify = no, or no single server to listen to (a pool that
     * was never set up): the core polls. */
    if (!st->wait || !st->pool.endpoint)
        return HERMES_BE_UNSUPPORTED;
    return rwait_wait(st->wait, key, since_ns, until_ns, woken);
}

/* ------------------------------------------------------ flush / scan */

/* "<prefix>*" with the glob metacharacters of the prefix escaped, so that
 * a prefix "a*" matches only keys starting with the two bytes "a*". */
static char *match_pattern(hermes_bytes prefix, size_t *len)
{
    const char *p = bytes_ptr(prefix);
    char *pat = malloc(prefix.len * 2 + 2);
    size_t i, o = 0;

    if (!pat)
        return NULL;
    for (i = 0; i < prefix.len; i++) {
        if (p[i] != '\0' && strchr("*?[]\\", p[i]))
            pat[o++] = '\\';
        pat[o++] = p[i];
    }
    pat[o++] = '*';
    *len = o;
    return pat;
}

/*
 * One SCAN step: sends SCAN cursor MATCH pattern COUNT n on conn and
 * returns the reply in *out with its key array in *keys, and the next
 * cursor in cursor (NUL-terminated).
 */
static int scan_step(rpool *p, rpool_conn *conn, char *cursor,
                     size_t cursor_size, const char *pat, size_t plen,
                     redisReply **out, const redisReply **keys)
{
    const char *argv[6] = {"SCAN", cursor, "MATCH", pat, "COUNT", SCAN_COUNT};
    size_t lens[6] = {4, strlen(cursor), 5, plen, 5, sizeof SCAN_COUNT - 1};
    /* [cursor, [key...]]: one key may be as long as a value; the whole
     * step holds at most that plus SCAN_MAX_KEYS keys of 1 KiB. */
    rpool_shape shape = {SCAN_MAX_KEYS, 2, p->max_value_bytes,
                         p->max_value_bytes +
                             (SCAN_MAX_KEYS + 3) * (RPOOL_FRAME + 1024)};
    redisReply *r = NULL;
    const redisReply *c, *k;
    size_t i;
    int rc;

    rc = command1(p, conn, 6, argv, lens, &r, &shape, "SCAN");
    if (rc != HERMES_BE_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        goto bad;
    c = r->element[0];
    k = r->element[1];
    if (c->type != REDIS_REPLY_STRING || c->len == 0 || c->len >= cursor_size ||
        k->type != REDIS_REPLY_ARRAY)
        goto bad;
    for (i = 0; i < k->elements; i++)
        if (k->element[i]->type != REDIS_REPLY_STRING)
            goto bad;
    memcpy(cursor, c->str, c->len);
    cursor[c->len] = '\0';
    *out = r;
    *keys = k;
    return HERMES_BE_OK;
bad:
    rc = bad_reply(p, "SCAN", r);
    freeReplyObject(r);
    return rc;
}

/* Point argv[1..] at the keys of a SCAN reply, for one UNLINK. */
static int keys_argv(const redisReply *keys, const char ***argv, size_t **lens)
{
    size_t i, n = keys->elements;

    *argv = malloc((n + 1) * sizeof **argv);
    *lens = malloc((n + 1) * sizeof **lens);
    if (!*argv || !*lens) {
        free(*argv);
        free(*lens);
        return HERMES_BE_NOMEM;
    }
    for (i = 0; i < n; i++) {
        (*argv)[i + 1] = keys->element[i]->str;
        (*lens)[i + 1] = keys->element[i]->len;
    }
    return HERMES_BE_OK;
}

/*
 * The bounds of one walk over the keyspace (flush, scan).  A SCAN returns
 * cursor 0 after visiting every hash bucket once; a step visits up to ten
 * times COUNT buckets unless it has found COUNT keys, and the table has at
 * most about ten buckets per key before the server shrinks it, so a walk
 * takes well under DBSIZE / 100 steps.  A server whose cursor never comes
 * back to 0 (broken, hostile, or a keyspace growing faster than we walk
 * it) is given up after that many steps, or after flush_timeout_ms.
 */
typedef struct walk {
    const char *what;
    uint64_t deadline_ns;
    uint64_t steps, max_steps;
    long long dbsize; /* -1 when the server did not say */
} walk;

static int walk_begin(redis_state *st, rpool *p, rpool_conn *conn, walk *w,
                      const char *what)
{
    const char *argv[1] = {"DBSIZE"};
    size_t lens[1] = {6};
    rpool_shape shape = rpool_scalar(p);
    redisReply *r = NULL;
    int rc;

    w->what = what;
    w->deadline_ns =
        rpool_now_ns(p) + (uint64_t)st->flush_timeout_ms * 1000000u;
    w->steps = 0;
    w->dbsize = -1;
    w->max_steps = UINT64_MAX; /* only the time bound, unless DBSIZE works */
    rc = command1(p, conn, 1, argv, lens, &r, &shape, "DBSIZE");
    if (rc != HERMES_BE_OK)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        w->dbsize = r->integer;
        w->max_steps = 64 + (uint64_t)r->integer / 100;
    }
    freeReplyObject(r);
    return HERMES_BE_OK;
}

/* Counts one more step; refuses it once the walk is past its bounds. */
static int walk_step(redis_state *st, rpool *p, walk *w)
{
    if (++w->steps > w->max_steps) {
        atomic_fetch_add(&p->errors, 1);
        rpool_log(p, HERMES_LOG_ERROR,
                  "%s: SCAN did not finish in %llu steps (DBSIZE %lld): "
                  "gave up, keys may remain",
                  w->what, (unsigned long long)w->max_steps, w->dbsize);
        return HERMES_BE_PROTOCOL;
    }
    if (rpool_now_ns(p) >= w->deadline_ns) {
        atomic_fetch_add(&p->errors, 1);
        rpool_log(p, HERMES_LOG_ERROR,
                  "%s: SCAN did not finish within flush_timeout_ms (%u ms, "
                  "%llu steps): gave up, keys may remain",
                  w->what, (unsigned)st->flush_timeout_ms,
                  (unsigned long long)(w->steps - 1));
        return HERMES_BE_IO;
    }
    return HERMES_BE_OK;
}

/* FLUSHDB on one server (a flush with an empty prefix, flushdb = yes). */
static int flushdb_on(rpool *p)
{
    const char *argv[1] = {"FLUSHDB"};
    size_t lens[1] = {7};
    redisReply *r = NULL;
    rpool_shape shape = rpool_scalar(p);
    int rc = run1(p, 1, argv, lens, &r, &shape, "FLUSHDB");

    if (rc != HERMES_BE_OK)
        return rc;
    if (r->type != REDIS_REPLY_STATUS)
        rc = bad_reply(p, "FLUSHDB", r);
    freeReplyObject(r);
    return rc;
}

/* The keys of one SCAN step, deleted on a cluster: each to its slot's
 * node (a key that moved meanwhile is followed there). */
static int cluster_del_scanned(redis_state *st, const redisReply *keys)
{
    hermes_bytes *kb = malloc(keys->elements * sizeof *kb);
    int rc;

    if (!kb)
        return HERMES_BE_NOMEM;
    for (size_t i = 0; i < keys->elements; i++)
        kb[i] = (hermes_bytes){keys->element[i]->str, keys->element[i]->len};
    rc = cluster_del(st, kb, keys->elements);
    free(kb);
    return rc;
}

/* Deletes the keys matching pat on one server (a cluster's master). */
static int flush_walk(redis_state *st, rpool *p, const char *pat, size_t plen)
{
    char cursor[32] = "0";
    rpool_conn *conn;
    walk w;
    int rc;

    /* The connection goes back between steps so that a long flush does
     * not hold one away from other threads. */
    do {
        const redisReply *keys;
        redisReply *r = NULL;
        const char **argv;
        size_t *lens;

        rc = rpool_take(p, &conn);
        if (rc != HERMES_BE_OK)
            break;
        if (strcmp(cursor, "0") == 0)
            rc = walk_begin(st, p, conn, &w, "flush");
        if (rc == HERMES_BE_OK)
            rc = walk_step(st, p, &w);
        if (rc == HERMES_BE_OK)
            rc =
                scan_step(p, conn, cursor, sizeof cursor, pat, plen, &r, &keys);
        if (rc == HERMES_BE_OK && keys->elements > 0 && !st->cl) {
            rc = keys_argv(keys, &argv, &lens);
            if (rc == HERMES_BE_OK) {
                rc = delete_keys(st, conn, (int)keys->elements + 1, argv, lens);
                free(argv);
                free(lens);
            }
        }
        rpool_put(p, conn);
        /* A cluster's keys of several slots cannot go in one UNLINK. */
        if (rc == HERMES_BE_OK && keys->elements > 0 && st->cl)
            rc = cluster_del_scanned(st, keys);
        if (r)
            freeReplyObject(r);
    } while (rc == HERMES_BE_OK && strcmp(cursor, "0") != 0);
    return rc;
}

/* Runs fn on every master of the cluster, or on the single server; the
 * first failure is returned, after every master was tried. */
static int each_server(redis_state *st,
                       int (*fn)(redis_state *, rpool *, void *), void *arg)
{
    uint16_t masters[RCL_MAX_NODES];
    size_t n, i;
    int rc = HERMES_BE_OK, r;

    if (!st->cl)
        return fn(st, &st->pool, arg);
    n = rcl_masters(st->cl, masters);
    if (n == 0)
        return HERMES_BE_IO;
    for (i = 0; i < n; i++) {
        r = fn(st, &rcl_node_at(st->cl, masters[i])->pool, arg);
        if (rc == HERMES_BE_OK)
            rc = r;
    }
    return rc;
}

typedef struct flush_arg {
    const char *pat; /* NULL: FLUSHDB */
    size_t plen;
} flush_arg;

static int flush_one(redis_state *st, rpool *p, void *arg)
{
    const flush_arg *f = arg;

    return f->pat ? flush_walk(st, p, f->pat, f->plen) : flushdb_on(p);
}

static int redis_flush(void *state, hermes_bytes prefix)
{
    redis_state *st = state;
    flush_arg f = {NULL, 0};
    int rc;

    if (prefix.len == 0 && st->flushdb)
        return each_server(st, flush_one, &f);
    f.pat = match_pattern(prefix, &f.plen);
    if (!f.pat)
        return HERMES_BE_NOMEM;
    rc = each_server(st, flush_one, &f);
    free((char *)f.pat);
    return rc;
}

/* GET + PTTL for every key of one SCAN step, in one pipeline. */
static int fetch_batch(rpool *p, rpool_conn *conn, const redisReply *keys,
                       redisReply ***out)
{
    size_t i, n = keys->elements;
    redisReply **rep;
    int rc = HERMES_BE_OK;

    rep = calloc(2 * n, sizeof *rep);
    if (!rep)
        return HERMES_BE_NOMEM;
    for (i = 0; i < n && rc == HERMES_BE_OK; i++) {
        const char *argv[2] = {"GET", keys->element[i]->str};
        size_t lens[2] = {3, keys->element[i]->len};

        rc = rpool_append(p, conn, 2, argv, lens);
        if (rc == HERMES_BE_OK) {
            argv[0] = "PTTL";
            lens[0] = 4;
            rc = rpool_append(p, conn, 2, argv, lens);
        }
    }
    rpool_shape shape = rpool_scalar(p);
    if (rc == HERMES_BE_OK)
        rc = rpool_read(p, conn, 2 * n, rep, &shape, "GET/PTTL");
    if (rc != HERMES_BE_OK) {
        free(rep);
        return rc;
    }
    *out = rep;
    return HERMES_BE_OK;
}

typedef struct scan_arg {
    const char *pat;
    size_t plen;
    hermes_scan_cb cb;
    void *arg;
    int stop; /* the callback asked to stop */
} scan_arg;

/* Reports the keys matching the pattern on one server. */
static int scan_walk(redis_state *st, rpool *p, void *arg)
{
    scan_arg *sa = arg;
    char cursor[32] = "0";
    walk w;
    int rc;

    if (sa->stop)
        return HERMES_BE_OK;
    do {
        const redisReply *keys = NULL;
        redisReply *r = NULL, **rep = NULL;
        rpool_conn *conn;
        size_t i, n = 0;

        rc = rpool_take(p, &conn);
        if (rc != HERMES_BE_OK)
            break;
        if (strcmp(cursor, "0") == 0)
            rc = walk_begin(st, p, conn, &w, "scan");
        if (rc == HERMES_BE_OK)
            rc = walk_step(st, p, &w);
        if (rc == HERMES_BE_OK)
            rc = scan_step(p, conn, cursor, sizeof cursor, sa->pat, sa->plen,
                           &r, &keys);
        if (rc == HERMES_BE_OK && keys->elements > 0) {
            n = keys->elements;
            rc = fetch_batch(p, conn, keys, &rep);
        }
        rpool_put(p, conn);
        /* The callback runs without a connection held, so it may call
         * back into the plugin. */
        for (i = 0; rc == HERMES_BE_OK && rep && i < n && !sa->stop; i++) {
            const redisReply *k = keys->element[i];
            const redisReply *v = rep[2 * i], *t = rep[2 * i + 1];
            int64_t ttl = -2;

            /* Keys that expired meanwhile answer nil; keys of other types
             * answer WRONGTYPE, and keys whose slot moved away meanwhile
             * (a cluster) MOVED: none is an entry of ours here. */
            if (v->type != REDIS_REPLY_STRING)
                continue;
            if (t->type == REDIS_REPLY_INTEGER && t->integer >= -1)
                ttl = t->integer;
            sa->stop =
                sa->cb(sa->arg, k->str, k->len, v->str, v->len, ttl) != 0;
        }
        free_replies(rep, 2 * n);
        if (r)
            freeReplyObject(r);
    } while (rc == HERMES_BE_OK && !sa->stop && strcmp(cursor, "0") != 0);
    return rc;
}

static int redis_scan(void *state, hermes_bytes prefix, hermes_scan_cb cb,
                      void *arg)
{
    redis_state *st = state;
    scan_arg sa = {NULL, 0, cb, arg, 0};
    int rc;

    sa.pat = match_pattern(prefix, &sa.plen);
    if (!sa.pat)
        return HERMES_BE_NOMEM;
    rc = each_server(st, scan_walk, &sa);
    free((char *)sa.pat);
    return rc;
}

/* ------------------------------------------------------------- stats */

static void stat_u64(hermes_stat_cb cb, void *arg, const char *name, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    cb(arg, name, buf);
}

/*
 * The plugin's own counters come first and always, so that the inspector
 * sees connect failures even while the server is down; the server's INFO
 * fields follow when it answers.
 */
/* INFO of one server as a NUL-terminated string (free it). */
static int info_text(rpool *p, char **text)
{
    const char *argv[1] = {"INFO"};
    size_t lens[1] = {4};
    redisReply *r = NULL;
    rpool_shape shape = {0, 0, INFO_MAX_BYTES, INFO_MAX_BYTES + RPOOL_FRAME};
    int rc = run1(p, 1, argv, lens, &r, &shape, "INFO");

    if (rc != HERMES_BE_OK)
        return rc;
    if (r->type != REDIS_REPLY_STRING) {
        rc = bad_reply(p, "INFO", r);
        freeReplyObject(r);
        return rc;
    }
    *text = malloc(r->len + 1);
    if (*text) {
        memcpy(*text, r->str, r->len);
        (*text)[r->len] = '\0';
    }
    freeReplyObject(r);
    return *text ? HERMES_BE_OK : HERMES_BE_NOMEM;
}

/* The pool counters, summed over every node of a cluster. */
static void pool_counters(redis_state *st, hermes_stat_cb cb, void *arg)
{
    uint64_t v[4] = {0, 0, 0, 0};
    unsigned n = st->cl ? rcl_node_count(st->cl) : 1;

    for (unsigned i = 0; i < n; i++) {
        rpool *p = st->cl ? &rcl_node_at(st->cl, i)->pool : &st->pool;

        v[0] += atomic_load(&p->connects);
        v[1] += atomic_load(&p->connect_failures);
        v[2] += atomic_load(&p->commands);
        v[3] += atomic_load(&p->errors);
    }
    stat_u64(cb, arg, "connections_opened", v[0]);
    stat_u64(cb, arg, "connect_failures", v[1]);
    stat_u64(cb, arg, "commands", v[2]);
    stat_u64(cb, arg, "errors", v[3]);
}

/* The keys and expiring keys of INFO's "db0:keys=N,expires=M,..." line. */
static void db0_counts(const char *text, uint64_t *keys, uint64_t *expires)
{
    const char *l = strstr(text, "\ndb0:keys=");

    if (l) {
        *keys += strtoull(l + 10, NULL, 10);
        l = strstr(l, ",expires=");
        if (l)
            *expires += strtoull(l + 9, NULL, 10);
    }
}

/* A cluster's counters, its map, and every master's keys summed. */
static int cluster_stats(redis_state *st, hermes_stat_cb cb, void *arg)
{
    rcluster *cl = st->cl;
    uint16_t masters[RCL_MAX_NODES];
    uint64_t keys = 0, expires = 0;
    char buf[96];
    size_t n, i;
    int rc = HERMES_BE_OK;

    stat_u64(cb, arg, "cluster_nodes_seen", rcl_node_count(cl));
    stat_u64(cb, arg, "slot_map_refreshes", atomic_load(&cl->refreshes));
    stat_u64(cb, arg, "slot_map_refresh_failures",
             atomic_load(&cl->refresh_failures));
    stat_u64(cb, arg, "moved", atomic_load(&cl->moved));
    stat_u64(cb, arg, "ask", atomic_load(&cl->ask));
    stat_u64(cb, arg, "tryagain", atomic_load(&cl->tryagain));
    stat_u64(cb, arg, "clusterdown", atomic_load(&cl->clusterdown));
    n = rcl_masters(cl, masters);
    stat_u64(cb, arg, "cluster_masters", n);
    if (n == 0)
        return HERMES_BE_IO;
    for (i = 0; i < n && rc == HERMES_BE_OK; i++) {
        rcl_node *nd = rcl_node_at(cl, masters[i]);
        char *text;

        rc = info_text(&nd->pool, &text);
        if (rc != HERMES_BE_OK)
            break;
        if (i == 0) {
            const char *v = strstr(text, "redis_version:");

            if (v)
                snprintf(buf, sizeof buf, "%.*s", (int)strcspn(v + 14, "\r\n"),
                         v + 14);
            cb(arg, "redis_version", v ? buf : "unknown");
        }
        db0_counts(text, &keys, &expires);
        free(text);
    }
    if (rc != HERMES_BE_OK)
        return rc;
    snprintf(buf, sizeof buf, "keys=%llu,expires=%llu,avg_ttl=0",
             (unsigned long long)keys, (unsigned long long)expires);
    cb(arg, "keyspace", buf);
    return HERMES_BE_OK;
}

static int redis_stats(void *state, hermes_stat_cb cb, void *arg)
{
    redis_state *st = state;
    char dbkey[24], *text, *line, *save = NULL;
    int dblen, have_keyspace = 0;
    int rc;

    pool_counters(st, cb, arg);
    if (st->batch) {
        rbatch_counts bc;

        rbatch_counters(st->batch, &bc);
        stat_u64(cb, arg, "batch_reads", bc.reads);
        stat_u64(cb, arg, "batch_writes", bc.flights);
        stat_u64(cb, arg, "batch_shared", bc.shared);
        stat_u64(cb, arg, "batch_queued", bc.queued);
    }
    if (st->cl)
        return cluster_stats(st, cb, arg);
    rc = info_text(&st->pool, &text);
    if (rc != HERMES_BE_OK)
        return rc;

    dblen = snprintf(dbkey, sizeof dbkey, "db%d:", st->pool.db);
    for (line = strtok_r(text, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        static const char *const fields[] = {
            "redis_version:", "used_memory:", "connected_clients:"};
        size_t f;

        for (f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            size_t fl = strlen(fields[f]);

            if (strncmp(line, fields[f], fl) == 0) {
                char name[32];

                snprintf(name, sizeof name, "%.*s", (int)fl - 1, fields[f]);
                cb(arg, name, line + fl);
            }
        }
        if (strncmp(line, dbkey, (size_t)dblen) == 0) {
            cb(arg, "keyspace", line + dblen);
            have_keyspace = 1;
        }
    }
    /* INFO omits empty databases. */
    if (!have_keyspace)
        cb(arg, "keyspace", "keys=0,expires=0,avg_ttl=0");
    free(text);
    return HERMES_BE_OK;
}

/* ------------------------------------------------------ near cache */

/*
 * With near_cache = yes, reads go through the near cache (near.c) and
 * every write or delete of this process evicts the local copies of its
 * keys once the server has applied it (whatever the outcome: a failed
 * write may have been applied), so that this process reads its own
 * writes before the invalidation message comes back.
 */
static int near_get(void *state, const hermes_bytes *keys, size_t n,
                    hermes_value_cb cb, void *arg)
{
    redis_state *st = state;

    if (!st->near || n == 0)
        return redis_get(state, keys, n, cb, arg);
    return rnear_get(st->near, keys, n, cb, arg);
}

static int near_set(void *state, const hermes_item *items, size_t n,
                    hermes_value_cb cb, void *arg)
{
    redis_state *st = state;
    int rc = redis_set(state, items, n, cb, arg);

    if (st->near)
        rnear_forget_items(st->near, items, n);
    return rc;
}

static int near_del(void *state, const hermes_bytes *keys, size_t n)
{
    redis_state *st = state;
    int rc = redis_del(state, keys, n);

    if (st->near)
        rnear_forget(st->near, keys, n);
    return rc;
}

static int near_set_unlock(void *state, const hermes_item *items, size_t n,
                           hermes_bytes key, hermes_bytes token, int *released)
{
    redis_state *st = state;
    int rc = redis_set_unlock(state, items, n, key, token, released);

    if (st->near)
        rnear_forget_items(st->near, items, n);
    return rc;
}

static int near_flush(void *state, hermes_bytes prefix)
{
    redis_state *st = state;
    int rc = redis_flush(state, prefix);

    if (st->near)
        rnear_drop(st->near, RNEAR_DROP_LOCAL_FLUSH);
    return rc;
}

/* The near cache's counters come before the server's (which need it up). */
static int near_stats(void *state, hermes_stat_cb cb, void *arg)
{
    redis_state *st = state;

    if (st->near)
        rnear_stats(st->near, cb, arg);
    return redis_stats(state, cb, arg);
}

/* -------------------------------------------------------- descriptor */

static const hermes_backend redis_backend = {
    .abi_major = HERMES_BACKEND_ABI_MAJOR,
    .abi_minor = HERMES_BACKEND_ABI_MINOR,
    .struct_size = sizeof(hermes_backend),
    .name = "redis",
    .version = HERMES_VERSION, /* released with the library */
    .description = "redis server via hiredis (pooled, pipelined, shared)",
    .caps = HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN | HERMES_CAP_STATS |
            HERMES_CAP_SHARED,
    .max_key_len = 0, /* binary-safe keys up to 512 MB */
    .open = redis_open,
    .close = redis_close,
    .get = near_get,
    .set = near_set,
    .del = near_del,
    .lock = redis_lock,
    .unlock = redis_unlock,
    .flush = near_flush,
    .scan = redis_scan,
    .stats = near_stats,
    .lock_get = redis_lock_get,
    .set_unlock = near_set_unlock,
    .wait_unlock = redis_wait_unlock,
};

HERMES_BACKEND_DEFINE(redis_backend)
