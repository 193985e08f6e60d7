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

#include "loader.h"
#include "mock_backend.h"

struct mock_state {
    const hermes_backend *inner;
    void *inner_state;
    mock_counts counts;
    int fail;
    bool strict;
};

static mock_state *current;

mock_state *mock_current(void)
{
    return current;
}

mock_counts mock_get_counts(const mock_state *m)
{
    return m->counts;
}

void mock_reset_counts(mock_state *m)
{
    memset(&m->counts, 0, sizeof m->counts);
}

void mock_fail_all(mock_state *m, int status)
{
    m->fail = status;
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

static void seen_key(mock_state *m, size_t len)
{
    if (len > m->counts.longest_key)
        m->counts.longest_key = len;
}

static int mock_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                     void **state, hermes_open_error *err)
{
    mock_state *m = calloc(1, sizeof *m);
    if (!m)
        return HERMES_BE_NOMEM;
    m->inner = hm_dict_backend();
    int st = m->inner->open(host, kv, n, &m->inner_state, err);
    if (st != HERMES_BE_OK) {
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
    m->counts.get++;
    m->counts.get_keys += n;
    for (size_t i = 0; i < n; i++)
        seen_key(m, keys[i].len);
    if (m->strict)
        strict_get(n);
    if (m->fail)
        return m->fail;
    return m->inner->get(m->inner_state, keys, n, cb, arg);
}

static int mock_set(void *state, const hermes_item *items, size_t n,
                    hermes_value_cb cb, void *arg)
{
    mock_state *m = state;
    m->counts.set++;
    for (size_t i = 0; i < n; i++)
        seen_key(m, items[i].key.len);
    if (m->strict)
        strict_set(n);
    if (m->fail)
        return m->fail;
    return m->inner->set(m->inner_state, items, n, cb, arg);
}

static int mock_del(void *state, const hermes_bytes *keys, size_t n)
{
    mock_state *m = state;
    m->counts.del++;
    for (size_t i = 0; i < n; i++)
        seen_key(m, keys[i].len);
    if (m->strict)
        strict_del(n);
    if (m->fail)
        return m->fail;
    return m->inner->del(m->inner_state, keys, n);
}

static int mock_lock(void *state, hermes_bytes key, hermes_bytes token,
                     uint32_t ttl_ms, int *acquired)
{
    mock_state *m = state;
    m->counts.lock++;
    seen_key(m, key.len);
    if (m->strict)
        strict_lock();
    if (m->fail)
        return m->fail;
    return m->inner->lock(m->inner_state, key, token, ttl_ms, acquired);
}

static int mock_unlock(void *state, hermes_bytes key, hermes_bytes token,
                       int *released)
{
    mock_state *m = state;
    m->counts.unlock++;
    if (m->strict)
        strict_unlock();
    if (m->fail)
        return m->fail;
    return m->inner->unlock(m->inner_state, key, token, released);
}

static int mock_flush(void *state, hermes_bytes prefix)
{
    mock_state *m = state;
    m->counts.flush++;
    if (m->fail)
        return m->fail;
    return m->inner->flush(m->inner_state, prefix);
}

static int mock_scan(void *state, hermes_bytes prefix, hermes_scan_cb cb,
                     void *arg)
{
    mock_state *m = state;
    return m->inner->scan(m->inner_state, prefix, cb, arg);
}

#define MOCK_DESC(max)                                                       \
    {                                                                        \
        .abi_major = HERMES_BACKEND_ABI_MAJOR,                               \
        .abi_minor = HERMES_BACKEND_ABI_MINOR,                               \
        .struct_size = sizeof(hermes_backend), .name = "dict",               \
        .version = "mock", .description = "dict with call recording",        \
        .caps = HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN,                     \
        .max_key_len = (max), .open = mock_open, .close = mock_close,        \
        .get = mock_get, .set = mock_set, .del = mock_del,                   \
        .lock = mock_lock, .unlock = mock_unlock, .flush = mock_flush,       \
        .scan = mock_scan,                                                   \
    }

static const hermes_backend mock_desc = MOCK_DESC(0);
static hermes_backend mock_desc_max = MOCK_DESC(0);

const hermes_backend *mock_backend(void)
{
    return &mock_desc;
}

const hermes_backend *mock_backend_maxkey(unsigned max_key_len)
{
    mock_desc_max.max_key_len = max_key_len;
    return &mock_desc_max;
}
