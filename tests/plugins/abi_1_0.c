/*
 * A working backend built against the frozen ABI 1.0 header
 * (tests/plugins/abi_1_0.h), never against the SDK: the plugin an
 * application compiled against Hermes 1.0 would still be loading.  The
 * loader tests load it into today's core and run the cache through it
 * (set/get, a memoized miss then hit, delete, flush), so any change to the
 * descriptor or the host that breaks 1.0 plugins fails them.
 *
 * The store is deliberately plain: an array searched linearly, TTLs on the
 * host's monotonic clock.  It is not thread-safe (no HERMES_CAP_THREADSAFE:
 * the core serializes calls) and keeps nothing in globals.
 */
#include <stdlib.h>
#include <string.h>

#include "abi_1_0.h"

typedef struct entry {
    void *key, *value;
    size_t klen, vlen;
    uint64_t expires_ns; /* 0: never */
} entry;

typedef struct store {
    const hermes_host *host;
    entry *v;
    size_t n, cap;
} store;

static uint64_t now_ns(const store *s)
{
    return s->host->monotonic_ns(s->host->ctx);
}

/* The live entry for key, or NULL; an expired one is dropped on the way. */
static entry *find(store *s, const void *key, size_t klen)
{
    for (size_t i = 0; i < s->n; i++) {
        entry *e = &s->v[i];
        if (e->klen != klen || memcmp(e->key, key, klen) != 0)
            continue;
        if (e->expires_ns && e->expires_ns <= now_ns(s)) {
            free(e->key);
            free(e->value);
            *e = s->v[--s->n];
            return NULL;
        }
        return e;
    }
    return NULL;
}

static void drop(store *s, const void *key, size_t klen)
{
    entry *e = find(s, key, klen);
    if (e) {
        free(e->key);
        free(e->value);
        *e = s->v[--s->n];
    }
}

static void *dup(const void *p, size_t n)
{
    void *c = malloc(n ? n : 1);
    if (c && n)
        memcpy(c, p, n);
    return c;
}

static int put(store *s, hermes_bytes key, hermes_bytes value, uint32_t ttl_ms)
{
    void *v = dup(value.data, value.len);
    if (!v)
        return HERMES_BE_NOMEM;
    uint64_t exp = ttl_ms ? now_ns(s) + (uint64_t)ttl_ms * 1000000u : 0;
    entry *e = find(s, key.data, key.len);
    if (e) {
        free(e->value);
        e->value = v;
        e->vlen = value.len;
        e->expires_ns = exp;
        return HERMES_BE_OK;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        entry *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv) {
            free(v);
            return HERMES_BE_NOMEM;
        }
        s->v = nv;
        s->cap = cap;
    }
    void *k = dup(key.data, key.len);
    if (!k) {
        free(v);
        return HERMES_BE_NOMEM;
    }
    s->v[s->n++] = (entry){k, v, key.len, value.len, exp};
    return HERMES_BE_OK;
}

static int t_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                  void **state, hermes_open_error *err)
{
    /* The 1.0 host's fields must all be there, whatever the core adds. */
    if (host->struct_size <
        offsetof(hermes_host, config_source) + sizeof host->config_source) {
        strcpy(err->msg, "the host is smaller than ABI 1.0's");
        return HERMES_BE_INVALID;
    }
    if (n > 0) {
        strcpy(err->msg, "this plugin takes no settings");
        err->kv_index = 0;
        return HERMES_BE_INVALID;
    }
    store *s = calloc(1, sizeof *s);
    if (!s)
        return HERMES_BE_NOMEM;
    s->host = host;
    *state = s;
    return HERMES_BE_OK;
}

static void t_close(void *state)
{
    store *s = state;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].key);
        free(s->v[i].value);
    }
    free(s->v);
    free(s);
}

static int t_get(void *state, const hermes_bytes *keys, size_t n,
                 hermes_value_cb cb, void *arg)
{
    for (size_t i = 0; i < n; i++) {
        entry *e = find(state, keys[i].data, keys[i].len);
        if (e)
            cb(arg, i, e->value, e->vlen);
    }
    return HERMES_BE_OK;
}

static int t_set(void *state, const hermes_item *items, size_t n,
                 hermes_value_cb cb, void *arg)
{
    int rc = HERMES_BE_OK;
    for (size_t i = 0; i < n; i++) {
        const hermes_item *it = &items[i];
        entry *e = NULL;
        int st = HERMES_BE_OK;
        if (it->flags & HERMES_SET_IF_ABSENT)
            e = find(state, it->key.data, it->key.len);
        if (!e)
            st = put(state, it->key, it->value, it->ttl_ms);
        if (st == HERMES_BE_OK && cb && (it->flags & HERMES_SET_IF_ABSENT)) {
            e = find(state, it->key.data, it->key.len);
            if (e)
                cb(arg, i, e->value, e->vlen);
        }
        if (st != HERMES_BE_OK && rc == HERMES_BE_OK)
            rc = st;
    }
    return rc;
}

static int t_del(void *state, const hermes_bytes *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        drop(state, keys[i].data, keys[i].len);
    return HERMES_BE_OK;
}

static int t_lock(void *state, hermes_bytes key, hermes_bytes token,
                  uint32_t ttl_ms, int *acquired)
{
    *acquired = 0;
    if (ttl_ms == 0)
        return HERMES_BE_INVALID;
    if (find(state, key.data, key.len))
        return HERMES_BE_OK;
    int st = put(state, key, token, ttl_ms);
    *acquired = st == HERMES_BE_OK;
    return st;
}

static int t_unlock(void *state, hermes_bytes key, hermes_bytes token,
                    int *released)
{
    entry *e = find(state, key.data, key.len);
    *released = e && e->vlen == token.len &&
                memcmp(e->value, token.data, token.len) == 0;
    if (*released)
        drop(state, key.data, key.len);
    return HERMES_BE_OK;
}

static int t_flush(void *state, hermes_bytes prefix)
{
    store *s = state;
    for (size_t i = 0; i < s->n;) {
        entry *e = &s->v[i];
        if (e->klen >= prefix.len &&
            memcmp(e->key, prefix.data, prefix.len) == 0) {
            free(e->key);
            free(e->value);
            *e = s->v[--s->n];
        } else {
            i++;
        }
    }
    return HERMES_BE_OK;
}

/* Exactly the 1.0 descriptor's size: AddressSanitizer's redzone after this
 * object catches a core that reads a field 1.0 did not have. */
static const hermes_backend desc = {
    .abi_major = HERMES_BACKEND_ABI_MAJOR,
    .abi_minor = HERMES_BACKEND_ABI_MINOR,
    .struct_size = sizeof(hermes_backend),
    .name = "abi_1_0",
    .version = "1.0.0",
    .description = "a plugin built against the frozen ABI 1.0 header",
    .open = t_open,
    .close = t_close,
    .get = t_get,
    .set = t_set,
    .del = t_del,
    .lock = t_lock,
    .unlock = t_unlock,
    .flush = t_flush,
};

HERMES_BACKEND_EXPORT const hermes_backend *hermes_backend_entry(void);
HERMES_BACKEND_EXPORT const hermes_backend *hermes_backend_entry(void)
{
    return &desc;
}
