/*
 * broken - deliberately defective backends for the conformance suite's own
 * test: the SDK's example memory store with one bug each, selected by one
 * -D flag (one libtool module per flag, see Makefile.am).  Each variant
 * replaces exactly one operation and breaks one rule of
 * <hermes/backend.h>; hermes-conformance must fail the check that guards
 * that rule (tests/sdk/conformance_dict.sh names it for every variant).
 *
 *   -DBROKEN_UNLOCK   broken_unlock:  unlock() ignores the owner token
 *   -DBROKEN_ADD      broken_add:     set-if-absent overwrites a key
 *   -DBROKEN_TTL      broken_ttl:     set() ignores ttl_ms
 *   -DBROKEN_FLUSH    broken_flush:   flush() ignores the prefix
 *   -DBROKEN_BATCH    broken_batch:   get() reports values at index n-1-i
 *   -DBROKEN_LOCKTTL  broken_lockttl: lock() ignores its TTL
 *
 * The example is included whole (its functions are static) with its entry
 * function renamed, so this file only adds the defect and a descriptor.
 */
#define hermes_backend_entry memory_backend_entry_unused
#include "memory.c"
#undef hermes_backend_entry

#if defined(BROKEN_UNLOCK)
/*
 * Breaks: "release the lock key only if its owner is token".  The classic
 * mistake of deleting the lock key without checking its owner, which lets
 * a holder whose lock expired release its successor's.
 */
static int broken_unlock(void *state, hermes_bytes key, hermes_bytes token,
                         int *released)
{
    (void)token;
    *released = 0;
    int st = memory_del(state, &key, 1);

    if (st == HERMES_BE_OK)
        *released = 1;
    return st;
}
#define BROKEN_NAME "broken_unlock"
#define BROKEN_DESCRIPTION "test plugin: unlock ignores the owner token"
#define OP_UNLOCK broken_unlock

#elif defined(BROKEN_ADD)
/*
 * Breaks: "an item with HERMES_SET_IF_ABSENT is stored only when the key
 * is absent or expired".  The existing-key test is gone, so set-if-absent
 * overwrites like a plain set and always reports its own value: two racing
 * creators of a tag each believe they won.
 */
static int broken_set(void *state, const hermes_item *items, size_t n,
                      hermes_value_cb cb, void *arg)
{
    struct memory *m = state;
    int rc = HERMES_BE_OK;

    for (size_t i = 0; i < n; i++)
        if (items[i].value.len > m->max_value)
            return HERMES_BE_TOOBIG;
    pthread_mutex_lock(&m->mu);
    uint64_t now = now_ns(m);

    for (size_t i = 0; i < n && rc == HERMES_BE_OK; i++) {
        const hermes_item *it = &items[i];
        uint64_t h = hash_bytes(it->key.data, it->key.len);
        struct entry **link = find(m, it->key.data, it->key.len, h, now);

        /* The bug: no "if flagged and link exists, report and skip". */
        rc = store(m, link, it->key, h, it->value.data, it->value.len,
                   deadline(m, it->ttl_ms));
        if (rc == HERMES_BE_OK) {
            m->sets++;
            if ((it->flags & HERMES_SET_IF_ABSENT) && cb)
                cb(arg, i, it->value.data, it->value.len);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}
#define BROKEN_NAME "broken_add"
#define BROKEN_DESCRIPTION "test plugin: set-if-absent overwrites"
#define OP_SET broken_set

#elif defined(BROKEN_TTL)
/*
 * Breaks: "TTLs are milliseconds; 0 means never expires" (and "a value
 * must not outlive its TTL" by more than rounding).  Every item is stored
 * as if its ttl_ms were 0, so values never expire.
 */
static int broken_set(void *state, const hermes_item *items, size_t n,
                      hermes_value_cb cb, void *arg)
{
    struct memory *m = state;
    int rc = HERMES_BE_OK;

    for (size_t i = 0; i < n; i++)
        if (items[i].value.len > m->max_value)
            return HERMES_BE_TOOBIG;
    pthread_mutex_lock(&m->mu);
    uint64_t now = now_ns(m);

    for (size_t i = 0; i < n && rc == HERMES_BE_OK; i++) {
        const hermes_item *it = &items[i];
        uint64_t h = hash_bytes(it->key.data, it->key.len);
        struct entry **link = find(m, it->key.data, it->key.len, h, now);

        if ((it->flags & HERMES_SET_IF_ABSENT) && link) {
            if (cb)
                cb(arg, i, (*link)->data + (*link)->klen, (*link)->vlen);
            continue;
        }
        /* The bug: deadline 0 (never) instead of deadline(m, ttl_ms). */
        rc = store(m, link, it->key, h, it->value.data, it->value.len, 0);
        if (rc == HERMES_BE_OK) {
            m->sets++;
            if ((it->flags & HERMES_SET_IF_ABSENT) && cb)
                cb(arg, i, it->value.data, it->value.len);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}
#define BROKEN_NAME "broken_ttl"
#define BROKEN_DESCRIPTION "test plugin: set ignores ttl_ms"
#define OP_SET broken_set

#elif defined(BROKEN_FLUSH)
/*
 * Breaks: "delete every key that starts with prefix, leaving other keys
 * alone".  Every key goes, including other applications' (FLUSHDB instead
 * of a prefix scan).
 */
static int broken_flush(void *state, hermes_bytes prefix)
{
    struct memory *m = state;

    (void)prefix;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nbuckets; i++) {
        /* The bug: no has_prefix() test. */
        while (m->buckets[i]) {
            unlink_entry(m, &m->buckets[i]);
            m->deletes++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return HERMES_BE_OK;
}
#define BROKEN_NAME "broken_flush"
#define BROKEN_DESCRIPTION "test plugin: flush ignores the prefix"
#define OP_FLUSH broken_flush

#elif defined(BROKEN_BATCH)
/*
 * Breaks: "index is the position of the key in the array the core
 * passed".  Values are found for the right keys but reported at the
 * mirrored index n-1-i (a reply walked from the wrong end), so a batched
 * get hands the core other keys' values; a single-key get still works.
 */
static int broken_get(void *state, const hermes_bytes *keys, size_t n,
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
            /* The bug: n - 1 - i instead of i. */
            cb(arg, n - 1 - i, (*link)->data + (*link)->klen, (*link)->vlen);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return HERMES_BE_OK;
}
#define BROKEN_NAME "broken_batch"
#define BROKEN_DESCRIPTION "test plugin: get reports values at wrong indexes"
#define OP_GET broken_get

#elif defined(BROKEN_LOCKTTL)
/*
 * Breaks: "a lock past its TTL is free".  The lock key is stored without
 * a deadline, so a holder that crashes (never unlocks) blocks every other
 * process for good.
 */
static int lock_without_ttl(void *state, hermes_bytes key, hermes_bytes token,
                            uint32_t ttl_ms, int *acquired)
{
    struct memory *m = state;
    int rc = HERMES_BE_OK;

    *acquired = 0;
    if (ttl_ms == 0)
        return HERMES_BE_INVALID;
    pthread_mutex_lock(&m->mu);
    uint64_t h = hash_bytes(key.data, key.len);

    if (find(m, key.data, key.len, h, now_ns(m))) {
        m->locks_busy++;
    } else {
        /* The bug: deadline 0 (never) instead of deadline(m, ttl_ms). */
        rc = store(m, NULL, key, h, token.data, token.len, 0);
        if (rc == HERMES_BE_OK) {
            *acquired = 1;
            m->locks_taken++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}
#define BROKEN_NAME "broken_lockttl"
#define BROKEN_DESCRIPTION "test plugin: lock ignores its TTL"
#define OP_LOCK lock_without_ttl

#else
#error "define one BROKEN_* flag (see the list at the top of this file)"
#endif

/* Every operation the variant does not replace is the example's own. */
#ifndef OP_GET
#define OP_GET memory_get
#endif
#ifndef OP_SET
#define OP_SET memory_set
#endif
#ifndef OP_LOCK
#define OP_LOCK memory_lock
#endif
#ifndef OP_UNLOCK
#define OP_UNLOCK memory_unlock
#endif
#ifndef OP_FLUSH
#define OP_FLUSH memory_flush
#endif

static const hermes_backend broken_backend = {
    .abi_major = HERMES_BACKEND_ABI_MAJOR,
    .abi_minor = HERMES_BACKEND_ABI_MINOR,
    .struct_size = sizeof(hermes_backend),
    .name = BROKEN_NAME,
    .version = "0",
    .description = BROKEN_DESCRIPTION,
    .caps = HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN | HERMES_CAP_STATS,
    .open = memory_open,
    .close = memory_close,
    .get = OP_GET,
    .set = OP_SET,
    .del = memory_del,
    .lock = OP_LOCK,
    .unlock = OP_UNLOCK,
    .flush = OP_FLUSH,
    .scan = memory_scan,
    .stats = memory_stats,
};

HERMES_BACKEND_DEFINE(broken_backend)
