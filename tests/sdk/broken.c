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
 *   -DBROKEN_NSFLUSH  broken_nsflush: HERMES_CAP_NO_PREFIX_FLUSH, and
 *                     flush() deletes every key but answers UNSUPPORTED
 *   -DBROKEN_BATCH    broken_batch:   get() reports values at index n-1-i
 *   -DBROKEN_LOCKTTL  broken_lockttl: lock() ignores its TTL
 *   -DBROKEN_TTLEARLY broken_ttlearly: set() cuts ttl_ms to 1%
 *   -DBROKEN_TTLLONG  broken_ttllong: set() triples ttl_ms (and has no scan)
 *   -DBROKEN_LOCKEARLY broken_lockearly: lock() cuts its TTL to 1%
 *   -DBROKEN_STOPFIRST broken_stopfirst: set() stops at the first error
 *   -DBROKEN_KEEPOLD  broken_keepold: a TOOBIG overwrite keeps the old value
 *   -DBROKEN_LOCKZERO broken_lockzero: lock() takes ttl 0 as "never expires"
 *   -DBROKEN_DUPGET   broken_dupget:  get() reports a repeated key once
 *   -DBROKEN_GLOBAL   broken_global:  every open() returns one global state
 *   -DBROKEN_WALLCLOCK broken_wallclock: TTLs follow the wall clock
 *   -DBROKEN_STATSTHREAD broken_statsthread: stats() reports from a thread
 *   -DBROKEN_UNSUPPORTED broken_unsupported: del() returns UNSUPPORTED
 *   -DBROKEN_CRASH    broken_crash:   stats() dereferences NULL
 *   -DBROKEN_HANG     broken_hang:    scan() never returns
 *   -DBROKEN_PRINT    broken_print:   get() prints to stdout
 *
 * The example is included whole (its functions are static) with its entry
 * function renamed, so this file only adds the defect and a descriptor.
 */
#define hermes_backend_entry memory_backend_entry_unused
#include "memory.c"
#undef hermes_backend_entry

/* The example's own operations with the items altered: one defect each,
 * and no copy of the store's code to drift. */
/* Calls the example's operations one key or item at a time, reporting
 * the index in the caller's batch. */
struct shifted {
    hermes_value_cb cb;
    void *arg;
    size_t index;
};

__attribute__((unused)) static void shift_index(void *arg, size_t i,
                                                const void *value, size_t len)
{
    struct shifted *s = arg;
    (void)i;
    s->cb(s->arg, s->index, value, len);
}

/* ttl_ms scaled by num/den: 0/1 drops TTLs, 1/100 cuts them to 1%. */
__attribute__((unused)) static uint32_t scale_ttl(uint32_t ttl_ms, unsigned num,
                                                  unsigned den)
{
    uint64_t t = (uint64_t)ttl_ms * num / den;

    if (ttl_ms && num && t == 0)
        t = 1;
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

__attribute__((unused)) static int
set_altered(void *state, const hermes_item *items, size_t n,
            uint32_t drop_flags, unsigned ttl_num, unsigned ttl_den,
            hermes_value_cb cb, void *arg)
{
    hermes_item *copy = calloc(n ? n : 1, sizeof *copy);

    if (!copy)
        return HERMES_BE_NOMEM;
    for (size_t i = 0; i < n; i++) {
        copy[i] = items[i];
        copy[i].flags &= ~drop_flags;
        copy[i].ttl_ms = scale_ttl(items[i].ttl_ms, ttl_num, ttl_den);
    }
    int rc = memory_set(state, copy, n, cb, arg);
    free(copy);
    return rc;
}

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
    /* The bug: the flag is ignored, so the item overwrites, and the
     * "winner" reported is always the caller's own value. */
    int rc =
        set_altered(state, items, n, HERMES_SET_IF_ABSENT, 1, 1, NULL, NULL);

    for (size_t i = 0; rc == HERMES_BE_OK && cb && i < n; i++)
        if (items[i].flags & HERMES_SET_IF_ABSENT)
            cb(arg, i, items[i].value.data, items[i].value.len);
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
    /* The bug: ttl_ms 0 (never) instead of the item's. */
    return set_altered(state, items, n, 0, 0, 1, cb, arg);
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
    /* The bug: the empty prefix, which every key starts with. */
    (void)prefix;
    return memory_flush(state, (hermes_bytes){"", 0});
}
#define BROKEN_NAME "broken_flush"
#define BROKEN_DESCRIPTION "test plugin: flush ignores the prefix"
#define OP_FLUSH broken_flush

#elif defined(BROKEN_NSFLUSH)
/*
 * Breaks: "flush() returns HERMES_BE_UNSUPPORTED when it has nothing to
 * add" to the core's namespace tag.  It says it did nothing, and deleted
 * every key, other applications' included.
 */
static int broken_flush(void *state, hermes_bytes prefix)
{
    (void)prefix;
    memory_flush(state, (hermes_bytes){"", 0});
    return HERMES_BE_UNSUPPORTED;
}
#define BROKEN_NAME "broken_nsflush"
#define BROKEN_DESCRIPTION                                                     \
    "test plugin: flush deletes everything, says it did not"
#define OP_FLUSH broken_flush
#define BROKEN_CAPS                                                            \
    (HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN | HERMES_CAP_STATS |              \
     HERMES_CAP_NO_PREFIX_FLUSH)

#elif defined(BROKEN_BATCH)
/*
 * Breaks: "index is the position of the key in the array the core
 * passed".  Values are found for the right keys but reported at the
 * mirrored index n-1-i (a reply walked from the wrong end), so a batched
 * get hands the core other keys' values; a single-key get still works.
 */
struct mirror {
    hermes_value_cb cb;
    void *arg;
    size_t n;
};

/* The bug: n - 1 - i instead of i. */
static void mirrored(void *arg, size_t i, const void *value, size_t len)
{
    struct mirror *m = arg;
    m->cb(m->arg, m->n - 1 - i, value, len);
}

static int broken_get(void *state, const hermes_bytes *keys, size_t n,
                      hermes_value_cb cb, void *arg)
{
    struct mirror m = {cb, arg, n};
    return memory_get(state, keys, n, mirrored, &m);
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

#elif defined(BROKEN_TTLEARLY)
/*
 * Breaks: "a value must not vanish before its TTL".  A unit slip
 * (centiseconds read as milliseconds, say): values vanish after 1% of
 * their TTL, so a cache barely caches and tags seem to be cleaned.
 */
static int early_set(void *state, const hermes_item *items, size_t n,
                     hermes_value_cb cb, void *arg)
{
    /* The bug: ttl_ms / 100. */
    return set_altered(state, items, n, 0, 1, 100, cb, arg);
}
#define BROKEN_NAME "broken_ttlearly"
#define BROKEN_DESCRIPTION "test plugin: set cuts ttl_ms to 1%"
#define OP_SET early_set

#elif defined(BROKEN_TTLLONG)
/*
 * Breaks: "TTLs are milliseconds" (a store rounds up, but not threefold).
 * Values live three times their TTL.  Without scan (and its reported
 * TTLs) only the expiry itself shows it.
 */
static int long_set(void *state, const hermes_item *items, size_t n,
                    hermes_value_cb cb, void *arg)
{
    /* The bug: ttl_ms * 3. */
    return set_altered(state, items, n, 0, 3, 1, cb, arg);
}
#define BROKEN_NAME "broken_ttllong"
#define BROKEN_DESCRIPTION "test plugin: set triples ttl_ms"
#define OP_SET long_set
#define BROKEN_CAPS (HERMES_CAP_THREADSAFE | HERMES_CAP_STATS)
#define OP_SCAN NULL

#elif defined(BROKEN_LOCKEARLY)
/*
 * Breaks: "a lock past its TTL is free" read the wrong way round: the lock
 * is free after 1% of its TTL, so a second process computes the same value
 * while the first still holds the lock (the dogpile the lock prevents).
 */
static int early_lock(void *state, hermes_bytes key, hermes_bytes token,
                      uint32_t ttl_ms, int *acquired)
{
    /* The bug: ttl_ms / 100. */
    return memory_lock(state, key, token, scale_ttl(ttl_ms, 1, 100), acquired);
}
#define BROKEN_NAME "broken_lockearly"
#define BROKEN_DESCRIPTION "test plugin: lock cuts its TTL to 1%"
#define OP_LOCK early_lock

#elif defined(BROKEN_STOPFIRST) || defined(BROKEN_KEEPOLD)
/*
 * The example's set() called one item at a time, so that a variant can
 * change what happens around a failing item.
 */
static int broken_set(void *state, const hermes_item *items, size_t n,
                      hermes_value_cb cb, void *arg)
{
    struct memory *m = state;
    int rc = HERMES_BE_OK;

    for (size_t i = 0; i < n; i++) {
        struct shifted s = {cb, arg, i};
#if defined(BROKEN_KEEPOLD)
        /* The bug: a value known to be too big is refused before the
         * store is touched, so the key keeps serving its old value. */
        if (items[i].value.len > m->max_value) {
            rc = rc ? rc : HERMES_BE_TOOBIG;
            continue;
        }
#else
        (void)m;
#endif
        int r = memory_set(state, &items[i], 1, cb ? shift_index : NULL, &s);

        if (r != HERMES_BE_OK) {
#if defined(BROKEN_STOPFIRST)
            return r; /* The bug: the rest of the batch is dropped. */
#else
            rc = rc ? rc : r;
#endif
        }
    }
    return rc;
}
#if defined(BROKEN_STOPFIRST)
/*
 * Breaks: "every item is attempted; the first error is returned".  The
 * items after a failing one are silently not stored, so one oversized
 * result also loses the tags written with it.
 */
#define BROKEN_NAME "broken_stopfirst"
#define BROKEN_DESCRIPTION "test plugin: set stops at the first error"
#else
/*
 * Breaks: "an overwrite that fails must not leave the old value readable".
 * A refused (too big) new value leaves the previous one in place, which
 * the core would then serve as current.
 */
#define BROKEN_NAME "broken_keepold"
#define BROKEN_DESCRIPTION "test plugin: a TOOBIG overwrite keeps the old value"
#endif
#define OP_SET broken_set

#elif defined(BROKEN_LOCKZERO)
/*
 * Breaks: "ttl_ms 0 returns HERMES_BE_INVALID and takes nothing".  ttl 0
 * is read as the set() meaning, "never expires", so one such call blocks
 * the key for good.
 */
static int lock_zero_forever(void *state, hermes_bytes key, hermes_bytes token,
                             uint32_t ttl_ms, int *acquired)
{
    /* The bug: 0 becomes the longest TTL there is. */
    return memory_lock(state, key, token, ttl_ms ? ttl_ms : UINT32_MAX,
                       acquired);
}
#define BROKEN_NAME "broken_lockzero"
#define BROKEN_DESCRIPTION "test plugin: lock takes ttl 0 as never expires"
#define OP_LOCK lock_zero_forever

#elif defined(BROKEN_DUPGET)
/*
 * Breaks: "get() reports the value at every index naming the key".  A
 * repeated key is looked up once (the keys were put in a set), so later
 * indexes naming it read as misses.
 */
static int dedup_get(void *state, const hermes_bytes *keys, size_t n,
                     hermes_value_cb cb, void *arg)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;

        while (j < i && !(keys[j].len == keys[i].len &&
                          memcmp(keys[j].data, keys[i].data, keys[i].len) == 0))
            j++;
        if (j < i)
            continue; /* The bug: seen before, skipped. */
        struct shifted sh = {cb, arg, i};
        int st = memory_get(state, &keys[i], 1, shift_index, &sh);

        if (st != HERMES_BE_OK)
            return st;
    }
    return HERMES_BE_OK;
}
#define BROKEN_NAME "broken_dupget"
#define BROKEN_DESCRIPTION "test plugin: get reports a repeated key once"
#define OP_GET dedup_get

#elif defined(BROKEN_GLOBAL)
/*
 * Breaks: "each open() creates a state of its own".  The store is a
 * global made by the first open() and handed to every later one, so two
 * handles of one process see each other's keys.
 */
static void *global_state;
static int global_refs;

static int global_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                       void **state, hermes_open_error *err)
{
    if (!global_state) {
        int st = memory_open(host, kv, n, &global_state, err);
        if (st != HERMES_BE_OK)
            return st;
    }
    global_refs++;
    *state = global_state; /* The bug. */
    return HERMES_BE_OK;
}

static void global_close(void *state)
{
    if (--global_refs == 0) {
        memory_close(state);
        global_state = NULL;
    }
}
#define BROKEN_NAME "broken_global"
#define BROKEN_DESCRIPTION "test plugin: every open returns one global state"
#define OP_OPEN global_open
#define OP_CLOSE global_close

#elif defined(BROKEN_WALLCLOCK)
/*
 * Breaks: "an in-process store uses host->monotonic_ns, never the wall
 * clock".  The store's clock is host->now_ms, so setting the system time
 * ahead expires every TTL at once (and setting it back makes values
 * outlive theirs).
 */
static const hermes_host *real_host;
static hermes_host wall_host;

static uint64_t wall_ns(void *ctx)
{
    return real_host->now_ms(ctx) * 1000000u; /* The bug. */
}

static int wallclock_open(const hermes_host *host, const hermes_kv *kv,
                          size_t n, void **state, hermes_open_error *err)
{
    real_host = host;
    wall_host = *host;
    wall_host.monotonic_ns = wall_ns;
    return memory_open(&wall_host, kv, n, state, err);
}
#define BROKEN_NAME "broken_wallclock"
#define BROKEN_DESCRIPTION "test plugin: TTLs follow the wall clock"
#define OP_OPEN wallclock_open

#elif defined(BROKEN_STATSTHREAD)
/*
 * Breaks: "callbacks run on the thread that called the operation".  The
 * statistics are reported from a helper thread (joined before returning),
 * which breaks a caller relying on its thread-local state.
 */
struct stats_job {
    void *state;
    hermes_stat_cb cb;
    void *arg;
    int st;
};

static void *stats_worker(void *arg)
{
    struct stats_job *j = arg;
    j->st = memory_stats(j->state, j->cb, j->arg);
    return NULL;
}

static int threaded_stats(void *state, hermes_stat_cb cb, void *arg)
{
    struct stats_job j = {state, cb, arg, HERMES_BE_OK};
    pthread_t t;

    /* The bug: another thread runs the callback. */
    if (pthread_create(&t, NULL, stats_worker, &j) != 0)
        return HERMES_BE_NOMEM;
    pthread_join(t, NULL);
    return j.st;
}
#define BROKEN_NAME "broken_statsthread"
#define BROKEN_DESCRIPTION "test plugin: stats reports from another thread"
#define OP_STATS threaded_stats

#elif defined(BROKEN_UNSUPPORTED)
/*
 * Breaks: "a mandatory operation never returns HERMES_BE_UNSUPPORTED".
 * del() is left unimplemented, so invalidation silently never happens.
 */
static int no_del(void *state, const hermes_bytes *keys, size_t n)
{
    (void)state, (void)keys, (void)n;
    return HERMES_BE_UNSUPPORTED; /* The bug. */
}
#define BROKEN_NAME "broken_unsupported"
#define BROKEN_DESCRIPTION "test plugin: del returns UNSUPPORTED"
#define OP_DEL no_del

#elif defined(BROKEN_CRASH)
/*
 * Breaks: "a plugin never aborts".  stats() follows a NULL pointer, which
 * kills the process; the suite must fail that check, naming the signal,
 * and still run the others.
 */
static int crashing_stats(void *state, hermes_stat_cb cb, void *arg)
{
    int *volatile p = NULL;

    (void)state, (void)cb, (void)arg;
    return *p; /* The bug. */
}
#define BROKEN_NAME "broken_crash"
#define BROKEN_DESCRIPTION "test plugin: stats dereferences NULL"
#define OP_STATS crashing_stats

#elif defined(BROKEN_HANG)
/*
 * Breaks: "must not block for longer than its own configured timeouts".
 * scan() waits forever, like a call stuck on a server that never answers;
 * the suite must fail that one check within its deadline and still run
 * the others.
 */
#include <unistd.h>

static int hanging_scan(void *state, hermes_bytes prefix, hermes_scan_cb cb,
                        void *arg)
{
    (void)state, (void)prefix, (void)cb, (void)arg;
    for (;;) /* The bug: no timeout. */
        sleep(1);
    return HERMES_BE_IO;
}
#define BROKEN_NAME "broken_hang"
#define BROKEN_DESCRIPTION "test plugin: scan never returns"
#define OP_SCAN hanging_scan

#elif defined(BROKEN_PRINT)
/*
 * Breaks: "a plugin never prints to stdout".  A debugging printf left in
 * the hot path corrupts the output of every application writing to
 * stdout (a CGI program, a pipe, a terminal UI).
 */
static int chatty_get(void *state, const hermes_bytes *keys, size_t n,
                      hermes_value_cb cb, void *arg)
{
    printf("get of %zu keys\n", n); /* The bug. */
    return memory_get(state, keys, n, cb, arg);
}
#define BROKEN_NAME "broken_print"
#define BROKEN_DESCRIPTION "test plugin: get prints to stdout"
#define OP_GET chatty_get

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
#ifndef OP_SCAN
#define OP_SCAN memory_scan
#endif
#ifndef OP_OPEN
#define OP_OPEN memory_open
#endif
#ifndef OP_CLOSE
#define OP_CLOSE memory_close
#endif
#ifndef OP_DEL
#define OP_DEL memory_del
#endif
#ifndef OP_STATS
#define OP_STATS memory_stats
#endif
#ifndef BROKEN_CAPS
#define BROKEN_CAPS (HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN | HERMES_CAP_STATS)
#endif

static const hermes_backend broken_backend = {
    .abi_major = HERMES_BACKEND_ABI_MAJOR,
    .abi_minor = HERMES_BACKEND_ABI_MINOR,
    .struct_size = sizeof(hermes_backend),
    .name = BROKEN_NAME,
    .version = "0",
    .description = BROKEN_DESCRIPTION,
    .caps = BROKEN_CAPS,
    .open = OP_OPEN,
    .close = OP_CLOSE,
    .get = OP_GET,
    .set = OP_SET,
    .del = OP_DEL,
    .lock = OP_LOCK,
    .unlock = OP_UNLOCK,
    .flush = OP_FLUSH,
    .scan = OP_SCAN,
    .stats = OP_STATS,
};

HERMES_BACKEND_DEFINE(broken_backend)
