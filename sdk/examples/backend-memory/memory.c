/*
 * memory - the example Hermes backend plugin, the file a vendor copies to
 * start a new backend.
 *
 * It is a small but real in-process store: one chained hash table guarded
 * by one mutex, with TTLs, set-if-absent, token locks, prefix flush, scan
 * and stats.  It is built out of tree against the installed SDK with
 * nothing but `pkg-config --cflags hermes-backend` (see the Makefile) and
 * passes `hermes-conformance memory`.  Every operation below starts with a
 * comment listing the duties <hermes/backend.h> gives it; a backend for a
 * network server keeps the same duties and replaces the table with round
 * trips (and returns HERMES_BE_IO when the server is unreachable).
 *
 * What a production in-process store would do better (see plugins/dict):
 * a keyed hash against hash flooding, sharded locks, a memory limit with
 * eviction, and a background sweep of expired entries.
 */
#define _POSIX_C_SOURCE 200809L

#include <hermes/backend.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMORY_VERSION "1.0.0"
#define MEMORY_DEFAULT_MAX_VALUE (4u * 1024 * 1024)
#define MEMORY_MIN_BUCKETS 64

/*
 * One key.  Key and value share one allocation: the key bytes at data[0],
 * the value bytes right after.  A lock is an ordinary entry whose value is
 * the owner's token, exactly as a network backend would store it (SET NX PX
 * in redis, add in memcached): a prefix flush then removes an application's
 * locks with its entries, and scan shows each lock with its owner.
 */
struct entry {
    struct entry *next;  /* next entry in the same bucket */
    uint64_t hash;       /* hash of the key, kept to rehash cheaply */
    uint64_t expires_ns; /* host monotonic deadline; 0 = never expires */
    size_t klen;
    size_t vlen;
    unsigned char data[]; /* klen key bytes, then vlen value bytes */
};

/* The plugin state open() creates: everything lives here, no globals, so
 * one process may open several independent stores. */
struct memory {
    const hermes_host *host; /* valid until close() returns */
    size_t max_value;        /* config "max_value_size" */
    pthread_mutex_t mu;      /* guards everything below */
    struct entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;    /* entries in the table, expired ones included */
    size_t bytes;    /* key and value bytes held */
    /* Counters reported by stats(). */
    uint64_t gets, hits, sets, deletes, expired;
    uint64_t locks_taken, locks_busy;
};

/* ------------------------------------------------------------ helpers */

/* Logs through the host: a plugin never prints, the application decides
 * where messages go. */
static void memory_log(const struct memory *m, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void memory_log(const struct memory *m, int level, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m->host->log(m->host->ctx, level, msg);
}

/* FNV-1a: short and good enough for a teaching example.  It is not keyed,
 * so a hostile client choosing keys could force collisions; the dict
 * backend uses SipHash with a random key for that reason. */
static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603u;

    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211u;
    }
    return h;
}

static uint64_t now_ns(const struct memory *m)
{
    return m->host->monotonic_ns(m->host->ctx);
}

/* A ttl of 0 means "never expires" in every operation of the ABI. */
static uint64_t deadline(const struct memory *m, uint32_t ttl_ms)
{
    return ttl_ms ? now_ns(m) + (uint64_t)ttl_ms * 1000000u : 0;
}

static int is_expired(const struct entry *e, uint64_t now)
{
    return e->expires_ns != 0 && e->expires_ns <= now;
}

static void unlink_entry(struct memory *m, struct entry **link)
{
    struct entry *e = *link;

    *link = e->next;
    m->count--;
    m->bytes -= e->klen + e->vlen;
    free(e);
}

/*
 * Finds the live entry for key and returns the link that points to it (so
 * the caller can remove or replace it), or NULL.  An expired entry found
 * on the way is removed: expiry is lazy, checked whenever a key is touched.
 */
static struct entry **find(struct memory *m, const void *key, size_t klen,
                           uint64_t hash, uint64_t now)
{
    struct entry **link = &m->buckets[hash & (m->nbuckets - 1)];

    while (*link) {
        struct entry *e = *link;

        if (e->hash == hash && e->klen == klen &&
            memcmp(e->data, key, klen) == 0) {
            if (is_expired(e, now)) {
                unlink_entry(m, link);
                m->expired++;
                return NULL;
            }
            return link;
        }
        link = &e->next;
    }
    return NULL;
}

/* Doubles the table when it is full; expired entries are dropped on the
 * way, which bounds the garbage left by keys that are never read again.
 * A failed allocation just leaves the table as it is (longer chains). */
static void maybe_grow(struct memory *m, uint64_t now)
{
    if (m->count < m->nbuckets || m->nbuckets > SIZE_MAX / 4)
        return;
    size_t n = m->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);

    if (!b)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct entry *e = m->buckets[i];

        while (e) {
            struct entry *next = e->next;

            if (is_expired(e, now)) {
                m->count--;
                m->bytes -= e->klen + e->vlen;
                m->expired++;
                free(e);
            } else {
                e->next = b[e->hash & (n - 1)];
                b[e->hash & (n - 1)] = e;
            }
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

/*
 * Stores key = value, replacing the entry at *link when link is not NULL.
 * Returns HERMES_BE_OK or HERMES_BE_NOMEM (the old entry is then left for
 * the caller to remove).
 */
static int store(struct memory *m, struct entry **link, hermes_bytes key,
                 uint64_t hash, const void *value, size_t vlen,
                 uint64_t expires_ns)
{
    struct entry *e = malloc(sizeof *e + key.len + vlen);

    if (!e)
        return HERMES_BE_NOMEM;
    e->hash = hash;
    e->expires_ns = expires_ns;
    e->klen = key.len;
    e->vlen = vlen;
    if (key.len)
        memcpy(e->data, key.data, key.len);
    if (vlen)
        memcpy(e->data + key.len, value, vlen);
    if (link) {
        unlink_entry(m, link);
    } else {
        maybe_grow(m, now_ns(m));
    }
    struct entry **head = &m->buckets[hash & (m->nbuckets - 1)];

    e->next = *head;
    *head = e;
    m->count++;
    m->bytes += key.len + vlen;
    return HERMES_BE_OK;
}

/* Parses a positive decimal size for config values. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v == 0 || v > SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* --------------------------------------------------------- operations */

/*
 * open(): build a state from the [memory] section.
 * Duties: reject every unknown key and every bad value with
 * HERMES_BE_INVALID, a message in err->msg and err->kv_index naming the
 * pair (the core adds "file:line: key" in front); copy whatever it keeps
 * from kv (valid only during the call); keep the host pointer, which stays
 * valid until close().  A network backend must not fail here because its
 * server is down: it connects lazily and reports HERMES_BE_IO from the
 * operations, so the application still starts.
 */
static int memory_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                       void **state, hermes_open_error *err)
{
    size_t max_value = MEMORY_DEFAULT_MAX_VALUE;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(kv[i].key, "max_value_size") == 0) {
            if (parse_size(kv[i].value, &max_value) < 0) {
                snprintf(err->msg, sizeof err->msg,
                         "max_value_size must be a positive number of "
                         "bytes, not '%s'",
                         kv[i].value);
                err->kv_index = (int)i;
                return HERMES_BE_INVALID;
            }
        } else {
            snprintf(err->msg, sizeof err->msg,
                     "unknown key '%s' (the memory backend knows: "
                     "max_value_size)",
                     kv[i].key);
            err->kv_index = (int)i;
            return HERMES_BE_INVALID;
        }
    }

    struct memory *m = calloc(1, sizeof *m);

    if (!m)
        goto nomem;
    m->buckets = calloc(MEMORY_MIN_BUCKETS, sizeof *m->buckets);
    if (!m->buckets)
        goto nomem;
    if (pthread_mutex_init(&m->mu, NULL) != 0)
        goto nomem;
    m->host = host;
    m->nbuckets = MEMORY_MIN_BUCKETS;
    m->max_value = max_value;
    *state = m;
    return HERMES_BE_OK;

nomem:
    if (m)
        free(m->buckets);
    free(m);
    snprintf(err->msg, sizeof err->msg, "out of memory");
    err->kv_index = -1;
    return HERMES_BE_NOMEM;
}

/* close(): free everything open() and the operations created.  No other
 * call is in flight, so no locking is needed. */
static void memory_close(void *state)
{
    struct memory *m = state;

    for (size_t i = 0; i < m->nbuckets; i++) {
        struct entry *e = m->buckets[i];

        while (e) {
            struct entry *next = e->next;

            free(e);
            e = next;
        }
    }
    free(m->buckets);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/*
 * get(): look up n keys, report each one found through cb(arg, index, ...)
 * at most once, from this thread, before returning.  Missing (and expired)
 * keys are simply not reported; "nothing found" is still HERMES_BE_OK.
 * The value pointer only has to live during the callback: the core copies
 * it.  The callbacks the core passes only copy bytes and never call back
 * into the plugin, so calling them with the mutex held is safe and avoids
 * copying every value twice.
 */
static int memory_get(void *state, const hermes_bytes *keys, size_t n,
                      hermes_value_cb cb, void *arg)
{
    struct memory *m = state;

    pthread_mutex_lock(&m->mu);
    uint64_t now = now_ns(m);

    for (size_t i = 0; i < n; i++) {
        uint64_t h = hash_bytes(keys[i].data, keys[i].len);
        struct entry **link = find(m, keys[i].data, keys[i].len, h, now);

        m->gets++;
        if (link) {
            m->hits++;
            cb(arg, i, (*link)->data + (*link)->klen, (*link)->vlen);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return HERMES_BE_OK;
}

/*
 * set(): store n items.  A plain item overwrites.  An item flagged
 * HERMES_SET_IF_ABSENT is stored only if its key is absent (an expired key
 * is absent), and then cb, when not NULL, receives the value the key holds
 * afterwards - the item's own value if it won, the existing one if it lost -
 * so that two racing creators agree on one value.  Checking and storing
 * happen under one mutex: that is the atomicity the race needs (a network
 * backend uses SET NX / add and reads the winner back).  Every item is
 * attempted, and the first error is returned: a value over max_value_size
 * is HERMES_BE_TOOBIG, no memory HERMES_BE_NOMEM.  A plain item that fails
 * deletes the key, since its old value is no longer the current one.
 */
static int memory_set(void *state, const hermes_item *items, size_t n,
                      hermes_value_cb cb, void *arg)
{
    struct memory *m = state;
    int rc = HERMES_BE_OK;
    size_t toobig = 0, nomem = 0;

    pthread_mutex_lock(&m->mu);
    uint64_t now = now_ns(m);

    for (size_t i = 0; i < n; i++) {
        const hermes_item *it = &items[i];
        uint64_t h = hash_bytes(it->key.data, it->key.len);
        struct entry **link = find(m, it->key.data, it->key.len, h, now);
        int r;

        if ((it->flags & HERMES_SET_IF_ABSENT) && link) {
            if (cb)
                cb(arg, i, (*link)->data + (*link)->klen, (*link)->vlen);
            continue;
        }
        if (it->value.len > m->max_value) {
            r = HERMES_BE_TOOBIG;
            toobig++;
        } else {
            r = store(m, link, it->key, h, it->value.data, it->value.len,
                      deadline(m, it->ttl_ms));
            if (r != HERMES_BE_OK)
                nomem++;
        }
        if (r != HERMES_BE_OK) {
            if (link)
                unlink_entry(m, link);
            if (rc == HERMES_BE_OK)
                rc = r;
            continue;
        }
        m->sets++;
        if ((it->flags & HERMES_SET_IF_ABSENT) && cb)
            cb(arg, i, it->value.data, it->value.len);
    }
    pthread_mutex_unlock(&m->mu);
    /* Logged after the mutex is released: the host's logger may be slow. */
    if (toobig)
        memory_log(m, HERMES_LOG_INFO,
                   "set: %zu value(s) over max_value_size %zu refused", toobig,
                   m->max_value);
    if (nomem)
        memory_log(m, HERMES_LOG_ERROR, "set: out of memory for %zu item(s)",
                   nomem);
    return rc;
}

/* del(): remove n keys; a key that is not there is not an error. */
static int memory_del(void *state, const hermes_bytes *keys, size_t n)
{
    struct memory *m = state;

    pthread_mutex_lock(&m->mu);
    uint64_t now = now_ns(m);

    for (size_t i = 0; i < n; i++) {
        uint64_t h = hash_bytes(keys[i].data, keys[i].len);
        struct entry **link = find(m, keys[i].data, keys[i].len, h, now);

        if (link) {
            unlink_entry(m, link);
            m->deletes++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return HERMES_BE_OK;
}

/*
 * lock(): take `key` for ttl_ms if nobody holds it, recording token as the
 * owner: *acquired = 1.  Held by anyone (even by this same token) means
 * *acquired = 0.  A lock past its TTL is free, which is what guarantees
 * that a crashed holder blocks nobody for long.  Never waits.
 */
static int memory_lock(void *state, hermes_bytes key, hermes_bytes token,
                       uint32_t ttl_ms, int *acquired)
{
    struct memory *m = state;
    int rc = HERMES_BE_OK;

    *acquired = 0;
    if (ttl_ms == 0)
        return HERMES_BE_INVALID; /* a lock that never expires is a bug */
    pthread_mutex_lock(&m->mu);
    uint64_t h = hash_bytes(key.data, key.len);

    if (find(m, key.data, key.len, h, now_ns(m))) {
        m->locks_busy++;
    } else {
        rc = store(m, NULL, key, h, token.data, token.len, deadline(m, ttl_ms));
        if (rc == HERMES_BE_OK) {
            *acquired = 1;
            m->locks_taken++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/*
 * unlock(): release `key` only if token owns it, checking and deleting in
 * one step (otherwise a holder whose lock expired and was taken over would
 * release the new owner's lock).  *released = 0 when the lock is expired,
 * taken over or was never taken; that is not an error.
 */
static int memory_unlock(void *state, hermes_bytes key, hermes_bytes token,
                         int *released)
{
    struct memory *m = state;

    *released = 0;
    pthread_mutex_lock(&m->mu);
    uint64_t h = hash_bytes(key.data, key.len);
    struct entry **link = find(m, key.data, key.len, h, now_ns(m));

    if (link && (*link)->vlen == token.len &&
        memcmp((*link)->data + (*link)->klen, token.data, token.len) == 0) {
        unlink_entry(m, link);
        *released = 1;
    }
    pthread_mutex_unlock(&m->mu);
    return HERMES_BE_OK;
}

static int has_prefix(const struct entry *e, hermes_bytes prefix)
{
    return e->klen >= prefix.len &&
           memcmp(e->data, prefix.data, prefix.len) == 0;
}

/*
 * flush(): delete every key starting with prefix - entries, tags and locks
 * of one application - and nothing else: other applications may share the
 * store under other prefixes.
 */
static int memory_flush(void *state, hermes_bytes prefix)
{
    struct memory *m = state;

    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct entry **link = &m->buckets[i];

        while (*link) {
            if (has_prefix(*link, prefix)) {
                unlink_entry(m, link);
                m->deletes++;
            } else {
                link = &(*link)->next;
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    return HERMES_BE_OK;
}

/*
 * scan() (HERMES_CAP_SCAN): report every live key under prefix with its
 * value and remaining TTL (-1 = never expires); stop, returning
 * HERMES_BE_OK, as soon as cb returns non-zero.  It "must not block the
 * store for long", and the inspector's callback may be slow, so the
 * matching entries are copied under the mutex and reported after it is
 * released.  (A store too big to copy would walk the table in slices, as
 * redis SCAN does with its cursor.)
 */
static int memory_scan(void *state, hermes_bytes prefix, hermes_scan_cb cb,
                       void *arg)
{
    struct memory *m = state;
    struct entry **copies = NULL;
    size_t n = 0, cap = 0;
    int rc = HERMES_BE_OK;

    pthread_mutex_lock(&m->mu);
    uint64_t now = now_ns(m);

    for (size_t i = 0; i < m->nbuckets && rc == HERMES_BE_OK; i++) {
        for (struct entry *e = m->buckets[i]; e; e = e->next) {
            if (is_expired(e, now) || !has_prefix(e, prefix))
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                struct entry **p = realloc(copies, ncap * sizeof *p);

                if (!p) {
                    rc = HERMES_BE_NOMEM;
                    break;
                }
                copies = p;
                cap = ncap;
            }
            size_t size = sizeof *e + e->klen + e->vlen;

            copies[n] = malloc(size);
            if (!copies[n]) {
                rc = HERMES_BE_NOMEM;
                break;
            }
            memcpy(copies[n++], e, size);
        }
    }
    pthread_mutex_unlock(&m->mu);

    int stop = rc != HERMES_BE_OK;

    for (size_t i = 0; i < n; i++) {
        struct entry *e = copies[i];

        if (!stop) {
            int64_t ttl = -1;

            /* Rounded up: 0 would read as "expires now". */
            if (e->expires_ns)
                ttl = (int64_t)((e->expires_ns - now + 999999u) / 1000000u);
            stop =
                cb(arg, e->data, e->klen, e->data + e->klen, e->vlen, ttl) != 0;
        }
        free(e);
    }
    free(copies);
    if (rc != HERMES_BE_OK)
        memory_log(m, HERMES_LOG_ERROR, "scan: out of memory");
    return rc;
}

/* stats() (HERMES_CAP_STATS): report the store's own counters as text
 * pairs.  They are read under the mutex and reported after releasing it,
 * for the same reason as in scan(). */
static int memory_stats(void *state, hermes_stat_cb cb, void *arg)
{
    struct memory *m = state;
    uint64_t v[9];
    static const char *const names[9] = {
        "keys",    "bytes",   "gets",        "hits",      "sets",
        "deletes", "expired", "locks_taken", "locks_busy"};

    pthread_mutex_lock(&m->mu);
    v[0] = m->count;
    v[1] = m->bytes;
    v[2] = m->gets;
    v[3] = m->hits;
    v[4] = m->sets;
    v[5] = m->deletes;
    v[6] = m->expired;
    v[7] = m->locks_taken;
    v[8] = m->locks_busy;
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < 9; i++) {
        char text[24];

        snprintf(text, sizeof text, "%" PRIu64, v[i]);
        cb(arg, names[i], text);
    }
    return HERMES_BE_OK;
}

/* ---------------------------------------------------------- descriptor */

/*
 * The descriptor: what the loader checks before anything is called.
 * abi_major/abi_minor/struct_size come from the header this file was
 * compiled against: struct_size is how a newer core knows which fields
 * exist, abi_minor which contract the plugin follows (backend.h, "The
 * extension rule").  The name selects the config section ([memory]) and
 * must match the file name (memory.so) for `backend = memory` to find it.
 * The caps promise that every operation may run concurrently (the mutex
 * makes it so) and that scan and stats are provided.  Fields not named
 * here stay NULL.
 */
static const hermes_backend memory_backend = {
    .abi_major = HERMES_BACKEND_ABI_MAJOR,
    .abi_minor = HERMES_BACKEND_ABI_MINOR,
    .struct_size = sizeof(hermes_backend),
    .name = "memory",
    .version = MEMORY_VERSION,
    .description = "example in-process store (the SDK's teaching plugin)",
    .caps = HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN | HERMES_CAP_STATS,
    .max_key_len = 0,
    .open = memory_open,
    .close = memory_close,
    .get = memory_get,
    .set = memory_set,
    .del = memory_del,
    .lock = memory_lock,
    .unlock = memory_unlock,
    .flush = memory_flush,
    .scan = memory_scan,
    .stats = memory_stats,
};

/* Exports hermes_backend_entry(), the one symbol the loader looks up. */
HERMES_BACKEND_DEFINE(memory_backend)
