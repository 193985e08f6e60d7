/*
 * See mock_backend.h.  The store is the built-in dict backend, so the core
 * under test sees real semantics (TTL, set-if-absent, token locks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "dict.h"
#include "loader.h"
#include "mock_backend.h"

struct mock_state {
    const hermes_backend *inner;
    void *inner_state;
    pthread_mutex_t mu; /* the core calls from many threads */
    mock_counts counts;
    int fail;
    const char *fail_detail; /* attached to every failure when set */
    const hermes_host *host;
    bool strict;
    char last_get[8][256]; /* the keys of the last get() */
    size_t last_get_n;
};

static mock_state *current;

mock_state *mock_current(void)
{
    return current;
}

mock_counts mock_get_counts(const mock_state *m)
{
    mock_state *w = (mock_state *)m;
    pthread_mutex_lock(&w->mu);
    mock_counts c = m->counts;
    pthread_mutex_unlock(&w->mu);
    return c;
}

void mock_reset_counts(mock_state *m)
{
    pthread_mutex_lock(&m->mu);
    memset(&m->counts, 0, sizeof m->counts);
    pthread_mutex_unlock(&m->mu);
}

/* Counts one call of op with its keys. */
static void count(mock_state *m, unsigned *op, const hermes_bytes *keys,
                  size_t n, size_t get_keys)
{
    pthread_mutex_lock(&m->mu);
    (*op)++;
    m->counts.get_keys += get_keys;
    for (size_t i = 0; i < n; i++)
        if (keys[i].len > m->counts.longest_key)
            m->counts.longest_key = keys[i].len;
    pthread_mutex_unlock(&m->mu);
}

const char *mock_last_get_key(const mock_state *m, size_t i)
{
    return i < m->last_get_n ? m->last_get[i] : NULL;
}

static void keep_get_keys(mock_state *m, const hermes_bytes *keys, size_t n)
{
    pthread_mutex_lock(&m->mu);
    m->last_get_n = 0;
    for (size_t i = 0; i < n && i < 8; i++) {
        size_t len = keys[i].len < 255 ? keys[i].len : 255;
        memcpy(m->last_get[i], keys[i].data, len);
        m->last_get[i][len] = '\0';
        m->last_get_n++;
    }
    pthread_mutex_unlock(&m->mu);
}

void mock_fail_all(mock_state *m, int status)
{
    m->fail = status;
}

void mock_fail_detail(mock_state *m, const char *detail)
{
    m->fail_detail = detail;
}

/* The status of a failing call, with its detail for the core. */
static int fail_now(mock_state *m)
{
    if (m->fail_detail)
        m->host->error_detail(m->host->ctx, m->fail_detail);
    return m->fail;
}

void mock_strict(mock_state *m, bool on)
{
    m->strict = on;
}

const hermes_backend *mock_inner(const mock_state *m, void **state)
{
    *state = m->inner_state;
    return m->inner;
}

static int mock_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                     void **state, hermes_open_error *err)
{
    mock_state *m = calloc(1, sizeof *m);
    if (!m)
        return HERMES_BE_NOMEM;
    pthread_mutex_init(&m->mu, NULL);
    m->inner = hm_dict_backend();
    m->host = host;
    int st = m->inner->open(host, kv, n, &m->inner_state, err);
    if (st != HERMES_BE_OK) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        return st;
    }
    current = m;
    *state = m;
    return HERMES_BE_OK;
}

static void mock_close(void *state)
{
    mock_state *m = state;
    m->inner->close(m->inner_state);
    if (current == m)
        current = NULL;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* In strict mode these names are what tests pass to expect_function_call. */
static void strict_get(size_t n)
{
    function_called();
    check_expected(n);
}
static void strict_set(size_t n)
{
    function_called();
    check_expected(n);
}
static void strict_del(size_t n)
{
    function_called();
    check_expected(n);
}
static void strict_lock(void)
{
    function_called();
}
static void strict_unlock(void)
{
    function_called();
}

static int mock_get(void *state, const hermes_bytes *keys, size_t n,
                    hermes_value_cb cb, void *arg)
{
    mock_state *m = state;
    count(m, &m->counts.get, keys, n, n);
    keep_get_keys(m, keys, n);
    if (m->strict)
        strict_get(n);
    if (m->fail)
        return fail_now(m);
    return m->inner->get(m->inner_state, keys, n, cb, arg);
}

static int mock_set(void *state, const hermes_item *items, size_t n,
                    hermes_value_cb cb, void *arg)
{
    mock_state *m = state;
    hermes_bytes longest = {NULL, 0};
    for (size_t i = 0; i < n; i++)
        if (items[i].key.len > longest.len)
            longest = items[i].key;
    count(m, &m->counts.set, &longest, 1, 0);
    if (m->strict)
        strict_set(n);
    if (m->fail)
        return fail_now(m);
    return m->inner->set(m->inner_state, items, n, cb, arg);
}

static int mock_del(void *state, const hermes_bytes *keys, size_t n)
{
    mock_state *m = state;
    count(m, &m->counts.del, keys, n, 0);
    if (m->strict)
        strict_del(n);
    if (m->fail)
        return fail_now(m);
    return m->inner->del(m->inner_state, keys, n);
}

static int mock_lock(void *state, hermes_bytes key, hermes_bytes token,
                     uint32_t ttl_ms, int *acquired)
{
    mock_state *m = state;
    count(m, &m->counts.lock, &key, 1, 0);
    if (m->strict)
        strict_lock();
    if (m->fail)
        return fail_now(m);
    return m->inner->lock(m->inner_state, key, token, ttl_ms, acquired);
}

static int mock_unlock(void *state, hermes_bytes key, hermes_bytes token,
                       int *released)
{
    mock_state *m = state;
    count(m, &m->counts.unlock, NULL, 0, 0);
    if (m->strict)
        strict_unlock();
    if (m->fail)
        return fail_now(m);
    return m->inner->unlock(m->inner_state, key, token, released);
}

static int mock_flush(void *state, hermes_bytes prefix)
{
    mock_state *m = state;
    count(m, &m->counts.flush, NULL, 0, 0);
    if (m->fail)
        return fail_now(m);
    return m->inner->flush(m->inner_state, prefix);
}

/* A store that cannot delete by prefix has nothing to do here. */
static int mock_flush_unsupported(void *state, hermes_bytes prefix)
{
    mock_state *m = state;
    (void)prefix;
    count(m, &m->counts.flush, NULL, 0, 0);
    if (m->fail)
        return fail_now(m);
    return HERMES_BE_UNSUPPORTED;
}

static int mock_scan(void *state, hermes_bytes prefix, hermes_scan_cb cb,
                     void *arg)
{
    mock_state *m = state;
    return m->inner->scan(m->inner_state, prefix, cb, arg);
}

#define MOCK_DESC(max)                                                         \
    {                                                                          \
        .abi_major = HERMES_BACKEND_ABI_MAJOR,                                 \
        .abi_minor = HERMES_BACKEND_ABI_MINOR,                                 \
        .struct_size = sizeof(hermes_backend), .name = "dict",                 \
        .version = "mock", .description = "dict with call recording",          \
        .caps = HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN, .max_key_len = (max), \
        .open = mock_open, .close = mock_close, .get = mock_get,               \
        .set = mock_set, .del = mock_del, .lock = mock_lock,                   \
        .unlock = mock_unlock, .flush = mock_flush, .scan = mock_scan,         \
    }

static const hermes_backend mock_desc = MOCK_DESC(0);
static hermes_backend mock_desc_max = MOCK_DESC(0);
static hermes_backend mock_desc_no_prefix_flush = MOCK_DESC(0);

const hermes_backend *mock_backend_no_prefix_flush(void)
{
    mock_desc_no_prefix_flush.caps |= HERMES_CAP_NO_PREFIX_FLUSH;
    mock_desc_no_prefix_flush.flush = mock_flush_unsupported;
    return &mock_desc_no_prefix_flush;
}

const hermes_backend *mock_backend(void)
{
    return &mock_desc;
}

const hermes_backend *mock_backend_maxkey(unsigned max_key_len)
{
    mock_desc_max.max_key_len = max_key_len;
    return &mock_desc_max;
}
