/*
 * hermes-conformance helpers: the plugin call wrappers (serializing calls
 * into plugins that are not thread-safe, as the core does), key building,
 * collection of callback results, and failure reporting.
 */
#include "conformance.h"
#include "handle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------- reporting */

static void set_reason(conf_ctx *c, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&c->reason_mu);
    if (!c->have_reason) {
        vsnprintf(c->reason, sizeof c->reason, fmt, ap);
        c->have_reason = 1;
    }
    pthread_mutex_unlock(&c->reason_mu);
}

int conf_fail(conf_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_reason(c, fmt, ap);
    va_end(ap);
    return CONF_FAIL;
}

int conf_skip(conf_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_reason(c, fmt, ap);
    va_end(ap);
    return CONF_SKIP;
}

void conf_note(conf_ctx *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!c->verbose)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One write per line keeps lines whole when threads note at once.  In
     * a check's process stdout is the capture of what the plugin prints,
     * so notes go to the real one. */
    if (c->out_fd >= 0) {
        dprintf(c->out_fd, "#   %s\n", line);
        return;
    }
    printf("#   %s\n", line);
    fflush(stdout);
}

const char *conf_status(int st)
{
    static _Thread_local char buf[4][24];
    static _Thread_local unsigned next;
    const char *name = hm_be_status_name(st);

    if (name != NULL)
        return name;
    char *b = buf[next++ % 4];

    snprintf(b, sizeof buf[0], "status %d", st);
    return b;
}

const char *conf_show(const void *p, size_t n)
{
    static _Thread_local char buf[4][96];
    static _Thread_local unsigned next;
    char *b = buf[next++ % 4];
    const unsigned char *s = p;
    size_t o = (size_t)snprintf(b, sizeof buf[0], "%zu bytes \"", n);

    for (size_t i = 0; i < n && o + 8 < sizeof buf[0]; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
            b[o++] = (char)s[i];
        else
            o += (size_t)snprintf(b + o, sizeof buf[0] - o, "\\x%02x", s[i]);
    }
    snprintf(b + o, sizeof buf[0] - o, "%s\"",
             o + 8 >= sizeof buf[0] ? "..." : "");
    return b;
}

/* ------------------------------------------------------ time, memory */

uint64_t conf_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t conf_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t conf_wall_offset_us(void)
{
    struct timespec wall, mono;

    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    return ((int64_t)wall.tv_sec - (int64_t)mono.tv_sec) * 1000000 +
           (wall.tv_nsec - mono.tv_nsec) / 1000;
}

int conf_wall_explains(conf_ctx *c, int64_t wall0, uint64_t began, uint64_t t1,
                       unsigned ttl_ms, int attempt)
{
    int64_t moved = conf_wall_offset_us() - wall0;
    uint64_t due = began + (uint64_t)ttl_ms * 1000u;

    if (t1 >= due || moved <= 0 || (uint64_t)moved < due - t1 ||
        attempt >= CONF_WALL_RETRIES)
        return 0;
    conf_note(c,
              "attempt %d: the TTL ran out %llu ms early while the wall "
              "clock moved %lld ms ahead of the monotonic one (a server may "
              "expire by it): again",
              attempt, (unsigned long long)(due - t1) / 1000u,
              (long long)moved / 1000);
    return 1;
}

void conf_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

void *conf_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p) {
        fprintf(stderr, "hermes-conformance: out of memory\n");
        exit(2);
    }
    return p;
}

/* --------------------------------------------------------------- keys */

hermes_bytes conf_key(conf_ctx *c, char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(buf, cap, "%s", c->prefix);

    va_start(ap, fmt);
    n += vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    if ((size_t)n >= cap)
        n = (int)cap - 1;
    return conf_bytes(buf, (size_t)n);
}

hermes_bytes conf_bytes(const void *p, size_t n)
{
    hermes_bytes b = {p, n};

    return b;
}

hermes_bytes conf_str(const char *s)
{
    return conf_bytes(s, strlen(s));
}

/* ----------------------------------------------------- plugin calls */

/* The core serializes every call into a plugin without
 * HERMES_CAP_THREADSAFE; the threaded checks rely on the same. */
#define CALL(c, expr)                                                          \
    do {                                                                       \
        if ((c)->serialize)                                                    \
            pthread_mutex_lock(&(c)->serial);                                  \
        st = (expr);                                                           \
        if ((c)->serialize)                                                    \
            pthread_mutex_unlock(&(c)->serial);                                \
    } while (0)

int conf_get(conf_ctx *c, const hermes_bytes *keys, size_t n,
             hermes_value_cb cb, void *arg)
{
    int st;

    CALL(c, c->be->get(c->state, keys, n, cb, arg));
    return st;
}

int conf_set(conf_ctx *c, const hermes_item *items, size_t n,
             hermes_value_cb cb, void *arg)
{
    int st;

    CALL(c, c->be->set(c->state, items, n, cb, arg));
    return st;
}

int conf_del(conf_ctx *c, const hermes_bytes *keys, size_t n)
{
    int st;

    CALL(c, c->be->del(c->state, keys, n));
    return st;
}

int conf_lock(conf_ctx *c, hermes_bytes key, hermes_bytes token,
              uint32_t ttl_ms, int *acquired)
{
    int st;

    *acquired = -1; /* so that "not set" is told apart from 0 */
    CALL(c, c->be->lock(c->state, key, token, ttl_ms, acquired));
    return st;
}

int conf_unlock(conf_ctx *c, hermes_bytes key, hermes_bytes token,
                int *released)
{
    int st;

    *released = -1;
    CALL(c, c->be->unlock(c->state, key, token, released));
    return st;
}

int conf_lock_get(conf_ctx *c, hermes_bytes key, hermes_bytes token,
                  uint32_t ttl_ms, int *acquired, const hermes_bytes *keys,
                  size_t n, hermes_value_cb cb, void *arg)
{
    int st;

    *acquired = -1;
    CALL(c, c->be->lock_get(c->state, key, token, ttl_ms, acquired, keys, n, cb,
                            arg));
    return st;
}

int conf_set_unlock(conf_ctx *c, const hermes_item *items, size_t n,
                    hermes_bytes key, hermes_bytes token, int *released)
{
    int st;

    *released = -1;
    CALL(c, c->be->set_unlock(c->state, items, n, key, token, released));
    return st;
}

int conf_wait_unlock(conf_ctx *c, hermes_bytes key, uint64_t since_ns,
                     uint64_t until_ns, int *woken)
{
    *woken = -1;
    return c->be->wait_unlock(c->state, key, since_ns, until_ns, woken);
}

int conf_flush(conf_ctx *c, hermes_bytes prefix)
{
    int st;

    CALL(c, c->be->flush(c->state, prefix));
    return st;
}

int conf_scan(conf_ctx *c, hermes_bytes prefix, hermes_scan_cb cb, void *arg)
{
    int st;

    CALL(c, c->be->scan(c->state, prefix, cb, arg));
    return st;
}

int conf_stats(conf_ctx *c, hermes_stat_cb cb, void *arg)
{
    int st;

    CALL(c, c->be->stats(c->state, cb, arg));
    return st;
}

int conf_open(conf_ctx *c)
{
    hermes_open_error err;

    memset(&err, 0, sizeof err);
    err.kv_index = -1;
    int st = c->be->open(&c->host, c->kv, c->nkv, &c->state, &err);

    if (st != HERMES_BE_OK) {
        c->state = NULL;
        if (err.kv_index >= 0 && (size_t)err.kv_index < c->nkv)
            return conf_fail(c, "open returned %s: %s: %.256s", conf_status(st),
                             c->kv[err.kv_index].key, err.msg);
        return conf_fail(c, "open returned %s: %.256s", conf_status(st),
                         err.msg);
    }
    return CONF_PASS;
}

/* ------------------------------------------------- value collection */

void conf_got_init(conf_got *g, size_t n)
{
    memset(g, 0, sizeof *g);
    g->n = n;
    g->slot = conf_xmalloc(n * sizeof *g->slot);
    memset(g->slot, 0, n * sizeof *g->slot);
    g->caller = pthread_self();
}

void conf_got_free(conf_got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->slot[i].data);
    free(g->slot);
    g->slot = NULL;
}

void conf_got_cb(void *arg, size_t index, const void *value, size_t len)
{
    conf_got *g = arg;

    if (!pthread_equal(g->caller, pthread_self()))
        g->wrong_thread = 1;
    if (index >= g->n) {
        g->bad_index = 1;
        g->bad_index_value = index;
        return;
    }
    conf_got_slot *s = &g->slot[index];

    if (s->hits++)
        g->dup = 1;
    free(s->data);
    s->data = conf_xmalloc(len);
    if (len)
        memcpy(s->data, value, len);
    s->len = len;
}

int conf_got_check(conf_ctx *c, const conf_got *g, const char *op)
{
    if (g->bad_index)
        return conf_fail(c, "%s callback got index %zu for a batch of %zu", op,
                         g->bad_index_value, g->n);
    if (g->wrong_thread)
        return conf_fail(c,
                         "%s callback ran on another thread than the "
                         "caller's",
                         op);
    if (g->dup) {
        for (size_t i = 0; i < g->n; i++)
            if (g->slot[i].hits > 1)
                return conf_fail(c,
                                 "%s callback reported index %zu %d "
                                 "times (at most once allowed)",
                                 op, i, g->slot[i].hits);
    }
    return CONF_PASS;
}

int conf_got_is(const conf_got *g, size_t i, const void *p, size_t n)
{
    const conf_got_slot *s = &g->slot[i];

    return s->hits > 0 && s->len == n && (n == 0 || memcmp(s->data, p, n) == 0);
}

/* ------------------------------------------------------ single keys */

int conf_put(conf_ctx *c, hermes_bytes key, const void *v, size_t n,
             uint32_t ttl_ms)
{
    hermes_item it = {key, conf_bytes(v, n), ttl_ms, 0};
    int st = conf_set(c, &it, 1, NULL, NULL);

    if (st != HERMES_BE_OK)
        return conf_fail(c,
                         "set of a %zu-byte key and %zu-byte value "
                         "returned %s",
                         key.len, n, conf_status(st));
    return CONF_PASS;
}

int conf_get_all(conf_ctx *c, const hermes_bytes *keys, size_t n, conf_got *g)
{
    conf_got_init(g, n);
    int st = conf_get(c, keys, n, conf_got_cb, g);

    if (st != HERMES_BE_OK) {
        conf_got_free(g);
        return conf_fail(c, "get returned %s", conf_status(st));
    }
    if (conf_got_check(c, g, "get") != CONF_PASS) {
        conf_got_free(g);
        return CONF_FAIL;
    }
    return CONF_PASS;
}

int conf_get1(conf_ctx *c, hermes_bytes key, int *present, unsigned char **val,
              size_t *len)
{
    conf_got g;

    *present = 0;
    *val = NULL;
    *len = 0;
    if (conf_get_all(c, &key, 1, &g) != CONF_PASS)
        return CONF_FAIL;
    if (g.slot[0].hits) {
        *present = 1;
        *val = g.slot[0].data;
        *len = g.slot[0].len;
        g.slot[0].data = NULL;
    }
    conf_got_free(&g);
    return CONF_PASS;
}

int conf_expect(conf_ctx *c, hermes_bytes key, const void *v, size_t n,
                const char *what)
{
    int present;
    unsigned char *got;
    size_t len;

    if (conf_get1(c, key, &present, &got, &len) != CONF_PASS)
        return CONF_FAIL;
    int rc = CONF_PASS;

    if (!present)
        rc = conf_fail(c, "%s: get reported nothing, want %s", what,
                       conf_show(v, n));
    else if (len != n || (n && memcmp(got, v, n) != 0))
        rc = conf_fail(c, "%s: get reported %s, want %s", what,
                       conf_show(got, len), conf_show(v, n));
    free(got);
    return rc;
}

int conf_expect_absent(conf_ctx *c, hermes_bytes key, const char *what)
{
    int present;
    unsigned char *got;
    size_t len;

    if (conf_get1(c, key, &present, &got, &len) != CONF_PASS)
        return CONF_FAIL;
    int rc = CONF_PASS;

    if (present)
        rc = conf_fail(c, "%s: get reported %s, want nothing", what,
                       conf_show(got, len));
    free(got);
    return rc;
}
