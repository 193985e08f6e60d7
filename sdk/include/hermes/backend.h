/*
 * Hermes for C - backend plugin ABI.
 *
 * A backend is a shared object that exports one function,
 * hermes_backend_entry(), returning a pointer to a constant descriptor
 * (struct hermes_backend).  The descriptor carries the ABI version it was
 * built against, its own size, identity, capability flags and the table of
 * operations.  This header is all a plugin includes; it does not depend on
 * <hermes/hermes.h>.
 *
 * The extension rule, one for struct hermes_backend and struct
 * hermes_host (modelled on SQLite's VFS):
 *  - Fields are only appended, at the end; a field keeps its offset, type
 *    and meaning for every 1.x.  Nothing is reserved: a new field takes new
 *    space, so struct_size, the size of the struct as the side that filled
 *    it was compiled, says exactly which fields it has.
 *  - struct_size is the authority.  The side that reads a struct filled by
 *    the other reads a field only when struct_size covers it
 *    (HERMES_BACKEND_HAS, HERMES_HOST_HAS); a field it does not cover is
 *    absent and counts as NULL or 0.  The loader enforces this for the
 *    descriptor: it keeps a copy of the plugin's struct_size bytes,
 *    zero-filled to its own size, and the core reads only that copy.
 *  - abi_minor says which 1.x contract the plugin was written to: which
 *    fields, capability bits, status codes and duties it knows.  The core
 *    loads a plugin of its own major and a minor up to its own, and
 *    refuses a newer minor (it cannot honor duties it does not know), as
 *    it refuses a struct_size below ABI 1.0's or above its own.  So a
 *    plugin built against 1.N loads in every core 1.M with M >= N, and
 *    always finds the host services of its own minor.
 *  - HERMES_BACKEND_ABI_MAJOR changes only when a field changes meaning,
 *    type or position or goes away; the core refuses another major.
 *  - Status codes and flag bits are only ever added, never renumbered.
 *
 * Buffers: every pointer the core passes into an operation is owned by the
 * core and valid only for the duration of that call.  Values travel from a
 * plugin to the core only through callbacks (hermes_value_cb,
 * hermes_scan_cb); the core copies what it keeps, so nothing allocated by
 * one module is ever freed by the other.
 *
 * States: open() is called once per handle (hermes_open*), and each call
 * creates a state of its own: a plugin keeps nothing in globals, so two
 * handles in one process share no locks, connections or counters, closing
 * one leaves the other working, and - unless the plugin sets
 * HERMES_CAP_SHARED - they share no data either (a key set through one is
 * not seen through the other).
 *
 * Threads: unless the descriptor sets HERMES_CAP_THREADSAFE, the core
 * serializes every call into one plugin state with a mutex.  open() and
 * close() are always called from one thread with no other call in flight.
 * Callbacks (hermes_value_cb, hermes_scan_cb, hermes_stat_cb) run on the
 * thread that called the operation, before it returns.  Value and stats
 * callbacks never call back into the plugin, so a plugin may hold its own
 * locks while calling them; a scan callback may, so scan() must not hold
 * locks while calling it.
 *
 * fork: an application may fork() while other threads are inside plugin
 * operations, and the child may go on using its handles.  A plugin that
 * holds a lock inside an operation must make sure the child does not
 * inherit it held: register pthread_atfork() handlers that take the
 * plugin's locks before the fork and release them after it on both sides
 * (the core never unloads a plugin it loaded: it stays mapped, with its
 * handlers and thread-local variables, until the process ends).  In the
 * child, a
 * network plugin never writes to a connection the parent opened (compare
 * getpid() with the one that opened it) and opens its own.  The core does
 * the same for its own locks, and serializes a plugin without
 * HERMES_CAP_THREADSAFE, which then never is inside a call at the fork.
 *
 * Failures: operations return HERMES_BE_OK or one of the hermes_be_status
 * codes below.  A plugin reports detail through host->log(), and the
 * reason of one failure through host->error_detail() (ABI 1.1); it never
 * aborts, never exits, never prints to stdout, and never lets a signal
 * kill the application (a network plugin blocks or avoids SIGPIPE: write
 * with MSG_NOSIGNAL, or block it in the calling thread around writes).  The
 * core treats every failure as "the backend is unavailable for this call":
 * a cached call computes the value directly (a direct hermes_get/set, or
 * on_backend_error = fail, returns the error: one table, the same for
 * every call, turns a status into the application's hermes_rc), the
 * failure is counted and logged, and the next call tries again.  So a
 * plugin never needs to retry by itself, and must not block for longer
 * than its own configured timeouts.
 *
 * Keys are binary-safe byte strings.  The core's own keys are printable
 * (no spaces, no control characters) and at most max_key_len bytes; a
 * plugin for a store with a narrower key syntax encodes keys itself.
 *
 * TTLs are milliseconds (a 32-bit count, so at most about 49 days); 0
 * means "never expires".  A TTL is a duration counted from the moment the
 * operation is called, on a clock that only moves forward: an in-process
 * store uses host->monotonic_ns, never the wall clock (host->now_ms or
 * time(), which jump when the system time is set); a server uses its own
 * expiry.  A store with coarser expiry rounds up, never down: a value must
 * not vanish before its TTL, and should be gone soon after it (the
 * conformance kit allows 1 s, or what --ttl-late says: a store counting
 * whole seconds on a clock that ticks once a second, like memcached, needs
 * 2 s).
 *
 * Batches: the keys of one get() or del() and the items of one set() may
 * repeat a key.  get() reports the value at every index naming the key;
 * set() applies items in array order, so the last plain item for a key
 * wins and a set-if-absent item after another for the same key loses to
 * it (and reports the first one's value).
 *
 * HERMES_BE_UNSUPPORTED is only for scan() and stats(), declared in caps
 * but refused by the store in its present configuration (a server that
 * disables SCAN or INFO, say; the kit then skips the check), and for the
 * flush() of a plugin with HERMES_CAP_NO_PREFIX_FLUSH.  A mandatory
 * operation never returns it otherwise: a store that cannot lock or
 * set-if-absent cannot be a backend.
 *
 * Everything below is ABI 1.0 unless marked otherwise.
 */
#ifndef HERMES_BACKEND_H
#define HERMES_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERMES_BACKEND_ABI_MAJOR 1
#define HERMES_BACKEND_ABI_MINOR 3

/* The symbol the loader looks up in every plugin. */
#define HERMES_BACKEND_ENTRY_SYMBOL "hermes_backend_entry"

/*
 * Status codes returned by every backend operation (ABI 1.0), one list:
 * X(name, value, text) gives HERMES_BE_<name>, and the core's messages and
 * the conformance kit's report use the same names and texts.
 *
 *   OK           the operation completed
 *   IO           server unreachable, timed out or reset: the core fails
 *                open and counts it
 *   NOMEM        out of memory inside the plugin
 *   TOOBIG       a key or value exceeds the store's limits
 *   INVALID      bad arguments (open: a bad config key or value)
 *   PROTOCOL     the server answered something unexpected
 *   UNSUPPORTED  optional operation refused by the store (see below)
 */
#define HERMES_BE_STATUS_MAP(X)                                                \
    X(OK, 0, "ok")                                                             \
    X(IO, 1, "backend unreachable or timed out")                               \
    X(NOMEM, 2, "backend out of memory")                                       \
    X(TOOBIG, 3, "key or value too large for the backend")                     \
    X(INVALID, 4, "invalid request")                                           \
    X(PROTOCOL, 5, "unexpected answer from the backend")                       \
    X(UNSUPPORTED, 6, "operation not supported by the backend")

typedef enum hermes_be_status {
#define HERMES__BE_STATUS_ENUM(name, value, text) HERMES_BE_##name = value,
    HERMES_BE_STATUS_MAP(HERMES__BE_STATUS_ENUM)
#undef HERMES__BE_STATUS_ENUM
} hermes_be_status;

/* Log levels for hermes_host.log: HERMES_LOG_ERROR .. HERMES_LOG_DEBUG. */
#include <hermes/log.h>

/*
 * Services the core offers a plugin (ABI 1.0, extended in 1.1).  The structure
 * and the functions it points to stay valid from open() until close() returns
 * and may be called from any thread.  The core fills every field it has and
 * sets struct_size to its own sizeof; a plugin checks HERMES_HOST_HAS before
 * calling a service newer than 1.0 (another host, such as an older
 * conformance kit, may lack it).
 */
typedef struct hermes_host {
    uint32_t struct_size; /* sizeof(struct hermes_host) of the core */
    void *ctx;            /* pass back as the first argument */
    /* Log one message (no trailing newline needed).  The core rate-limits
     * repeated messages, so a plugin may log every failure. */
    void (*log)(void *ctx, int level, const char *msg);
    /* Wall-clock time in milliseconds since the Unix epoch. */
    uint64_t (*now_ms)(void *ctx);
    /* Monotonic time in nanoseconds, for timeouts and backoff. */
    uint64_t (*monotonic_ns)(void *ctx);
    /* Fill buf with len unpredictable bytes (getrandom).  Returns 0, or -1
     * when the system cannot supply them. */
    int (*random)(void *ctx, void *buf, size_t len);
    /* The config file the section came from, for messages ("<string>",
     * "<options>" or "<defaults>" when there is no file). */
    const char *config_source;

    /* ---- ABI 1.1 ---- */

    /*
     * Attach detail text to the failure the calling thread's current
     * operation is about to return, like SQLite's xGetLastError: the
     * server's own reason ("OOM command not allowed when used memory >
     * 'maxmemory'", "NOAUTH Authentication required", "connect: Connection
     * refused").  The core copies msg (at most 255 bytes are kept), shows
     * it in hermes_errmsg() and in its log line for that failure, and
     * forgets it when the operation returns: a detail set by an operation
     * that then returns HERMES_BE_OK is dropped.  A later call within the
     * same operation replaces an earlier one.  Call it only from the thread
     * running an operation (get, set, del, lock, unlock, flush, scan,
     * stats), never from open() (use err->msg) or another thread.  It does
     * not log: log through log() as well if the line belongs in the log.
     * Present when HERMES_HOST_HAS(host, error_detail).
     */
    void (*error_detail)(void *ctx, const char *msg);
} hermes_host;

/* The bytes a struct needs to hold `field` and everything before it. */
#define HERMES__END_OF(type, field)                                            \
    (offsetof(type, field) + sizeof(((type *)0)->field))

/* Whether the core's host structure has `field` (see the extension rule):
 * a plugin checks this before calling a service newer than ABI 1.0. */
#define HERMES_HOST_HAS(host, field)                                           \
    ((host)->struct_size >= HERMES__END_OF(hermes_host, field))

/* The size of ABI 1.0's host: the smallest a plugin can be given. */
#define HERMES_HOST_SIZE_1_0 HERMES__END_OF(hermes_host, config_source)

/* One "key = value" line of the plugin's config section.  Neither key nor
 * value is ever NULL: "key =" gives the empty string, which a plugin
 * rejects (HERMES_BE_INVALID, kv_index set) or accepts, never crashes on.
 * The core's parser refuses a key given twice in one section. */
typedef struct hermes_kv {
    const char *key;
    const char *value;
    int line; /* line in host->config_source; 0 when not from a file
               * (hermes_open_options) or past INT_MAX */
} hermes_kv;

/*
 * How open() reports a failure: a message in msg (NUL-terminated, the
 * plugin writes at most sizeof msg bytes) and, when one config key is to
 * blame, its index in the kv array in kv_index (the core sets -1 before the
 * call).  The core prefixes the message with "file:line: key:" and appends
 * the plugin's name and path, so the message itself says only what is
 * wrong: "unknown key 'colour' (known: host, port)", "not a number: 'x'".
 */
typedef struct hermes_open_error {
    char msg[256];
    int kv_index;
} hermes_open_error;

/* A key or value passed from the core: binary-safe, not NUL-terminated. */
typedef struct hermes_bytes {
    const void *data;
    size_t len;
} hermes_bytes;

/* Flags of one item passed to set(). */
#define HERMES_SET_IF_ABSENT 0x1u /* store only when the key does not exist */

/* One item of a batched set(). */
typedef struct hermes_item {
    hermes_bytes key;
    hermes_bytes value;
    uint32_t ttl_ms; /* 0 = never expires */
    uint32_t flags;  /* HERMES_SET_* */
} hermes_item;

/*
 * Receives one value found by get() or set().  index is the position of the
 * key (or item) in the array the core passed; value is valid only during the
 * call and the core copies it.  Called at most once per index, in any order,
 * from the thread that called the operation, before the operation returns.
 * It does not call into the plugin.
 */
typedef void (*hermes_value_cb)(void *arg, size_t index, const void *value,
                                size_t len);

/*
 * Receives one key found by scan().  ttl_ms is the remaining time to live,
 * -1 when the key never expires, -2 when unknown.  Return 0 to continue,
 * non-zero to stop the scan (scan then returns HERMES_BE_OK).
 */
typedef int (*hermes_scan_cb)(void *arg, const void *key, size_t klen,
                              const void *value, size_t vlen, int64_t ttl_ms);

/* Receives one statistic of stats(): a name and its value as text (both
 * valid only during the call).  It does not call into the plugin. */
typedef void (*hermes_stat_cb)(void *arg, const char *name, const char *value);

/* Capability flags. */
#define HERMES_CAP_THREADSAFE 0x1u /* ops may be called concurrently */
#define HERMES_CAP_SCAN 0x2u       /* scan() is implemented */
#define HERMES_CAP_STATS 0x4u      /* stats() is implemented */
#define HERMES_CAP_SHARED                                                      \
    0x8u /* the store is shared between processes                              \
            (locks coordinate across processes) */
/* (ABI 1.1) flush() cannot delete by prefix (memcached): the core flushes
 * through a namespace tag instead.  Without it, as for every 1.0 plugin,
 * flush() deletes by prefix.  See flush(). */
#define HERMES_CAP_NO_PREFIX_FLUSH 0x10u

/*
 * The descriptor: every field here is ABI 1.0; a later minor appends its
 * fields after `stats` (see the extension rule).  All operations except
 * scan and stats are mandatory: the loader refuses a descriptor with a NULL
 * mandatory operation.  Fill it with designated initializers, the three
 * version fields from this header (see the example at
 * HERMES_BACKEND_DEFINE), so that every field left out is NULL or 0.
 */
typedef struct hermes_backend {
    uint16_t abi_major; /* HERMES_BACKEND_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor; /* HERMES_BACKEND_ABI_MINOR the plugin was built with */
    uint32_t struct_size; /* sizeof(struct hermes_backend) of the plugin */
    const char *name;     /* short name, [a-z0-9_]+, names the config section */
    const char *version;  /* the plugin's own version, free text, not NULL */
    const char *description; /* one line for `hermesctl plugins` (the
                                conformance kit requires it) */
    uint32_t caps;           /* HERMES_CAP_* */
    uint32_t max_key_len;    /* longest key accepted, 0 = no limit; the core
                                hashes longer keys so they fit */

    /*
     * Called by hermes_open*() once per handle.  Creates a plugin state from
     * the config section (kv, n pairs; both valid only during the call; n
     * may be 0 and kv NULL).  Must reject unknown keys and bad values with
     * HERMES_BE_INVALID and err->kv_index set; HERMES_BE_NOMEM when memory
     * runs out.  On failure *state is ignored and close() is not called, so
     * free what was allocated.  It should not fail because a server is down:
     * connect lazily and report HERMES_BE_IO from the operations instead, so
     * that the application starts.  host stays valid until close().
     */
    int (*open)(const hermes_host *host, const hermes_kv *kv, size_t n,
                void **state, hermes_open_error *err);
    /* Release everything open() created.  No call is in flight. */
    void (*close)(void *state);

    /*
     * Batched get: look up n (>= 1) keys and call cb for each one found.
     * Missing and expired keys are simply not reported.  Returns
     * HERMES_BE_OK even when nothing was found; on an error the core ignores
     * whatever was reported.  This is the hot path: every cached read is
     * one get() of the entry key and its tag keys, so a network plugin
     * sends it as one request (MGET, mget), never one per key.
     */
    int (*get)(void *state, const hermes_bytes *keys, size_t n,
               hermes_value_cb cb, void *arg);
    /*
     * Batched set of n (>= 1) items, in one round trip where the store
     * allows.  For an item with HERMES_SET_IF_ABSENT the plugin stores it
     * only when the key is absent or expired and then reports, through cb
     * when cb is not NULL, the value the key holds afterwards (its own or
     * the one that was there), so that racing creators agree on one value;
     * the core uses this to create tags.  If the key vanished in between
     * and no value can be reported, the plugin skips cb for that item and
     * the core treats the tag as unknown for this call.  An item without
     * the flag overwrites; cb is never called for it.  Every item is
     * attempted; the first error is returned.  An overwrite that fails
     * must not leave the old value readable (delete it if in doubt).
     * HERMES_BE_TOOBIG when an item exceeds the store's limits.
     */
    int (*set)(void *state, const hermes_item *items, size_t n,
               hermes_value_cb cb, void *arg);
    /* Batched delete of n (>= 1) keys in one round trip; deleting a
     * missing key is not an error.  clean(tags) is one del() of tag keys. */
    int (*del)(void *state, const hermes_bytes *keys, size_t n);
    /*
     * Take the lock `key` for ttl_ms (> 0) milliseconds if nobody holds it,
     * recording token as the owner.  *acquired is 1 when taken, 0 when held
     * by someone else, the same token included (locks are not re-entrant;
     * a lock past its TTL is free).  Never blocks waiting: the core polls.
     * ttl_ms 0 (which the core never passes) returns HERMES_BE_INVALID with
     * *acquired 0 and takes nothing: a lock that never expires would block
     * every process for good once its holder died.
     * A lock is an ordinary key holding its token (SET NX PX, add), so
     * flush() and scan() see it.
     */
    int (*lock)(void *state, hermes_bytes key, hermes_bytes token,
                uint32_t ttl_ms, int *acquired);
    /*
     * Release the lock `key` only if its owner is token, in one atomic step.
     * *released is 1 when released, 0 when the lock was not held by token
     * (expired, taken over, never taken).
     */
    int (*unlock)(void *state, hermes_bytes key, hermes_bytes token,
                  int *released);
    /*
     * Delete every key that starts with prefix (entries, tags and locks of
     * one application: the core passes "<prefix>:"), leaving other keys
     * alone.  prefix is matched as bytes, never as a pattern.  Keys written
     * while a flush runs may survive it.
     *
     * A store that cannot delete by prefix sets HERMES_CAP_NO_PREFIX_FLUSH.
     * The core then adds a namespace tag, the key "<prefix>:ns", to every
     * entry it writes and reads it in the same get() as the other tags;
     * hermes_flush() gives that key a new version, which makes every entry
     * stale at once, and then calls flush(), which returns
     * HERMES_BE_UNSUPPORTED
     * when it has nothing to add, or deletes more when its configuration
     * says so (memcached's flush_all = yes) and returns HERMES_BE_OK only
     * when every key under prefix is gone.
     */
    int (*flush)(void *state, hermes_bytes prefix);

    /* Optional (HERMES_CAP_SCAN), used by the inspector: report every live
     * key starting with prefix with its value and TTL.  Incremental: must
     * not block the store for long, holds no lock while calling cb, and may
     * report a key twice when the store is changing. */
    int (*scan)(void *state, hermes_bytes prefix, hermes_scan_cb cb, void *arg);
    /* Optional (HERMES_CAP_STATS): report the store's own counters
     * (`hermesctl stats`) through cb, on the calling thread, before
     * returning.  May report some pairs and then fail, e.g. its own
     * counters before finding the server down. */
    int (*stats)(void *state, hermes_stat_cb cb, void *arg);

    /* ---- ABI 1.2: optional, NULL when not provided ---- */

    /*
     * lock() and then get() in one round trip: take the lock `key` as
     * lock() does, then read keys as get() does, whether or not the lock
     * was taken (a caller that found it held learns at once whether the
     * holder's value is there).  Both halves behave exactly as the two
     * operations would; the values go to cb before this returns, and on
     * an error the core ignores *acquired and whatever was reported (a
     * lock that was taken all the same expires with its TTL).  A miss's
     * leader uses it to take the lock and read the entry again together.
     * Used when HERMES_BACKEND_HAS(desc, lock_get) and it is not NULL; else
     * the core calls lock() and get().
     */
    int (*lock_get)(void *state, hermes_bytes key, hermes_bytes token,
                    uint32_t ttl_ms, int *acquired, const hermes_bytes *keys,
                    size_t n, hermes_value_cb cb, void *arg);
    /*
     * set() of n items without HERMES_SET_IF_ABSENT and then unlock() of
     * `key`, in one round trip: a miss's leader writes its value and
     * releases its lock together.  The unlock is attempted even when an
     * item fails, and *released says what it did; the first error of
     * either half is returned.  Used when HERMES_BACKEND_HAS(desc,
     * set_unlock) and it is not NULL; else set() and unlock().
     */
    int (*set_unlock)(void *state, const hermes_item *items, size_t n,
                      hermes_bytes key, hermes_bytes token, int *released);

    /* ---- ABI 1.3: optional, NULL when not provided ---- */

    /*
     * Wait for the store to say that the lock `key` was released: the core
     * calls it between two attempts at a lock another caller holds,
     * instead of sleeping, so that it reads again as soon as the holder's
     * unlock() or set_unlock() (from any process or handle on the store)
     * lands.  Times are host->monotonic_ns() readings.  since_ns is taken
     * before the attempt that found the lock held; until_ns is when to
     * give up.
     *
     * *woken = 1: a release of key was notified after since_ns (possibly
     * before this call: then it returns at once).  *woken = 0: until_ns
     * came, or the plugin began listening for key during this call and
     * so cannot rule out a release it did not see (it returns as soon as
     * it listens).  Either way the core then reads again, so a notice
     * that is lost (a lock that expires with its TTL sends none) costs at
     * most until_ns - now, and a wake with no release costs one read.
     *
     * It returns by until_ns whatever the server does: the core's
     * lock_wait_ms bound depends on it.  HERMES_BE_UNSUPPORTED when it
     * cannot wait in its present configuration, any other failure (the
     * store unreachable) while it cannot listen: the core then sleeps as
     * it would without this operation, and counts neither as a backend
     * error.  Used when HERMES_BACKEND_HAS_OP(desc, wait_unlock) and the
     * descriptor sets HERMES_CAP_THREADSAFE: a wait must not hold up the
     * other calls, as the core's serializing mutex would make it.
     */
    int (*wait_unlock)(void *state, hermes_bytes key, uint64_t since_ns,
                       uint64_t until_ns, int *woken);
} hermes_backend;

/* Whether descriptor d has `field`: its struct_size covers it.  The core
 * reads a field newer than 1.0 only when this holds (and an operation
 * only when it is also non-NULL). */
#define HERMES_BACKEND_HAS(d, field)                                           \
    ((d)->struct_size >= HERMES__END_OF(hermes_backend, field))

/* Whether d has the optional operation op (ABI 1.2 on) and sets it. */
#define HERMES_BACKEND_HAS_OP(d, op) (HERMES_BACKEND_HAS(d, op) && (d)->op)

/* The size of ABI 1.0's descriptor: the smallest struct_size accepted. */
#define HERMES_BACKEND_SIZE_1_0 HERMES__END_OF(hermes_backend, stats)

/* The function a plugin exports, named HERMES_BACKEND_ENTRY_SYMBOL. */
typedef const hermes_backend *(*hermes_backend_entry_fn)(void);

#if defined(__GNUC__)
#define HERMES_BACKEND_EXPORT __attribute__((visibility("default")))
#else
#define HERMES_BACKEND_EXPORT
#endif

/*
 * Defines the entry function of a plugin returning &desc:
 *     static const hermes_backend desc = {
 *         .abi_major = HERMES_BACKEND_ABI_MAJOR,
 *         .abi_minor = HERMES_BACKEND_ABI_MINOR,
 *         .struct_size = sizeof(hermes_backend),
 *         .name = "mystore",
 *         .version = "1.0.0",
 *         .description = "one line about the store",
 *         .open = my_open, .close = my_close, .get = my_get,
 *         .set = my_set, .del = my_del, .lock = my_lock,
 *         .unlock = my_unlock, .flush = my_flush,
 *     };
 *     HERMES_BACKEND_DEFINE(desc)
 */
#define HERMES_BACKEND_DEFINE(desc)                                            \
    HERMES_BACKEND_EXPORT const hermes_backend *hermes_backend_entry(void);    \
    HERMES_BACKEND_EXPORT const hermes_backend *hermes_backend_entry(void)     \
    {                                                                          \
        return &(desc);                                                        \
    }

#ifdef __cplusplus
}
#endif

#endif /* HERMES_BACKEND_H */
