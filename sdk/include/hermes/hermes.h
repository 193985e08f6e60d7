/*
 * Hermes for C - cache function results with tag-based invalidation and
 * dogpile prevention.  This is the application API; see README.md for a
 * walk-through and <hermes/backend.h> for the plugin ABI.
 *
 * Conventions:
 *  - Every function that can fail returns a hermes_rc; HERMES_OK is 0.
 *    hermes_strerror() turns a code into words, hermes_errmsg() gives the
 *    detail of the last failure in the calling thread.  Every function
 *    returning a hermes_rc clears that message on entry and, when it
 *    returns anything but HERMES_OK, leaves one that describes this
 *    failure; after a success it is "".  Functions returning void or a
 *    value (hermes_errmsg, hermes_strerror, hermes_free, hermes_args_free,
 *    hermes_result_nocache/error, accessors) leave it alone.
 *  - A handle (hermes *) and registered functions (hermes_fn *) may be used
 *    from many threads at once.  Registration and close are not concurrent
 *    with anything else on the same handle.
 *  - Memory the library returns is freed with hermes_free(); memory the
 *    caller passes in stays the caller's and is copied if kept.
 */
#ifndef HERMES_HERMES_H
#define HERMES_HERMES_H

#include <stddef.h>
#include <stdint.h>

#include <hermes/log.h>
#include <hermes/version.h> /* HERMES_VERSION*, hermes_version_number() */

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes, one list: X(name, value, text) gives HERMES_<name> and the
 * text hermes_strerror() returns, so code and text cannot drift. */
#define HERMES_RC_MAP(X)                                                       \
    X(OK, 0, "success")                                                        \
    X(ENOMEM, 1, "out of memory")                                              \
    X(EINVAL, 2, "invalid argument")                                           \
    X(ECONFIG, 3, "configuration error")                                       \
    X(EPLUGIN, 4, "backend plugin could not be loaded")                        \
    X(EBACKEND, 5, "backend operation failed")                                 \
    X(ECOMPUTE, 6, "compute callback failed")                                  \
    X(ETIMEOUT, 7, "timed out waiting for another caller's computation")       \
    X(ENOTFOUND, 8, "not found")                                               \
    X(EEXIST, 9, "already exists")                                             \
    X(ETOOBIG, 10, "value or key too large")                                   \
    X(ERECURSIVE, 11, "cached function called from its own computation")

typedef enum hermes_rc {
#define HERMES__RC_ENUM(name, value, text) HERMES_##name = value,
    HERMES_RC_MAP(HERMES__RC_ENUM)
#undef HERMES__RC_ENUM
} hermes_rc;

/* A static string describing rc; never NULL. */
const char *hermes_strerror(hermes_rc rc);

typedef struct hermes hermes;
typedef struct hermes_fn hermes_fn;

/* ---------------------------------------------------------------- handle */

/*
 * Opens a cache from the INI file at path.  With path NULL, the file named
 * by the environment variable HERMES_CONFIG is used, and without it the
 * built-in defaults (the in-process dict backend, ttl 3600, prefix "cache").
 *
 * On success *out is a usable handle.  On failure *out is still set to a
 * handle that only hermes_errmsg() and hermes_close() accept, so that the
 * detail (file:line: key: reason) can be read; it is NULL only when memory
 * ran out.  Either way the caller closes it.  Errors: HERMES_ECONFIG (a bad
 * value or key, a key the backend's section rejects, a section naming
 * neither [hermes], the backend nor a plugin on the search path, a prefix
 * too long for the backend's key limit), HERMES_EPLUGIN (the backend's
 * plugin cannot be found or loaded: "file:line: backend: reason"),
 * HERMES_ENOMEM.  A relative plugin_path is relative to the file's
 * directory.
 */
hermes_rc hermes_open(hermes **out, const char *path);

/* As hermes_open(), from INI text; source names it in messages. */
hermes_rc hermes_open_string(hermes **out, const char *text,
                             const char *source);

/* As hermes_open() with the built-in defaults, ignoring HERMES_CONFIG. */
hermes_rc hermes_open_defaults(hermes **out);

/*
 * As hermes_open_string() (text may be NULL for the defaults), with a
 * backend linked into the application instead of a plugin file: the
 * descriptor (<hermes/backend.h>) is checked and copied like a loaded
 * plugin's, and its config section is the one named after backend->name.
 * What it points to (its strings and functions) must outlive the handle.
 * Useful for embedding a store, and for tests.
 */
struct hermes_backend;
hermes_rc hermes_open_with(hermes **out, const char *text, const char *source,
                           const struct hermes_backend *backend);

/*
 * Configuration in code, with the settings of the file and the same
 * checks: each hermes_options_set() copies its strings, and
 * hermes_open_options() checks them as lines of a file, with messages that
 * name "<options>" instead of a file and line, then the key:
 * "<options>: ttl: not a number: 'soon'".  section NULL is [hermes];
 * setting a key again replaces its value, a NULL value removes it.  The
 * options may be freed (hermes_options_free, NULL is fine) or reused once
 * the handle is open.  A relative plugin_path is relative to the current
 * directory.
 *
 *     hermes_options *o;
 *     hermes_options_new(&o);
 *     hermes_options_set(o, NULL, "backend", "redis");
 *     hermes_options_set(o, "redis", "port", "6390");
 *     hermes_rc rc = hermes_open_options(&h, o);
 *     hermes_options_free(o);
 *
 * hermes_options_new and _set return HERMES_ENOMEM or HERMES_EINVAL (out,
 * o or key NULL); hermes_open_options sets *out as hermes_open() does.
 */
typedef struct hermes_options hermes_options;
hermes_rc hermes_options_new(hermes_options **out);
hermes_rc hermes_options_set(hermes_options *o, const char *section,
                             const char *key, const char *value);
void hermes_options_free(hermes_options *o);
hermes_rc hermes_open_options(hermes **out, const hermes_options *options);

/* Closes the handle and every hermes_fn registered on it.  NULL is fine. */
void hermes_close(hermes *h);

/*
 * The detail of the failure of the last call this thread made, when that
 * call was about h (a call on h, or on a hermes_fn registered on h), e.g.
 * "user_profile: backend redis: backend unreachable or timed out: connect:
 * Connection refused".  Otherwise "", so a message is never shown for
 * another handle or another thread.  There is one message per thread, not
 * one per handle: the next call in this thread, on any handle, clears it.
 * On a handle whose open failed, the reason of the open (file:line: key:
 * reason) when no later call on it failed.  With h NULL, the message of a
 * failed call that had no handle (NULL handle or fn, hermes_open* with out
 * NULL or out of memory for the handle).  The string lives in the
 * thread's storage: valid until the next call in this thread.  Never NULL.
 */
const char *hermes_errmsg(const hermes *h);

/* Receives one log line: its level (HERMES_LOG_ERROR .. HERMES_LOG_DEBUG,
 * <hermes/log.h>) and its text (no newline, valid only
 * during the call).  arg is hermes_set_log()'s. */
typedef void (*hermes_log_fn)(void *arg, int level, const char *msg);

/*
 * Where h's log lines go: failures of the backend (each failed operation,
 * with the plugin's reason), the plugin's own lines ("connected again"),
 * and, once a second, "N similar messages suppressed" (at most 10 lines a
 * second reach the log; the rest are counted).  Lines above the config's
 * log_level (default warn) are not made at all.
 *
 * By default the library writes nothing anywhere: with fn NULL (the
 * initial state), lines go to stderr as "hermes: LEVEL: text" only when
 * the config says log = stderr, and are dropped with log = none (the
 * default).  With fn set, every line goes to fn(arg, level, text) instead,
 * whatever log says, called on the thread that made the line with no lock
 * of the library held; fn may call the library, but not hermes_close(h).
 * Lines made while h is opened go to the config's choice.  May be called
 * at any time; hermes_set_log(h, NULL, NULL) goes back to the config's
 * choice.  HERMES_EINVAL on a NULL or failed handle.
 */
hermes_rc hermes_set_log(hermes *h, hermes_log_fn fn, void *arg);

/* Frees memory returned by the library (values, stats text).  NULL is fine. */
void hermes_free(void *p);

/* Name and version of the backend in use, e.g. "dict", "0.1.0". */
const char *hermes_backend_name(const hermes *h);
const char *hermes_backend_version(const hermes *h);

/* ------------------------------------------------------ argument encoding */

/*
 * The bytes an entry's key is derived from.  Each argument is written with
 * a type tag and a length, so (1, "ab") and ("1a", "b") never collide.
 * Initialize with HERMES_ARGS_INIT; free with hermes_args_free().  The
 * fields are the library's: read the encoding through hermes_args_data(),
 * hermes_args_len() and hermes_args_failed().  Callers hold it by value
 * (the macros keep one on the stack), so its size and layout are fixed for
 * all of 1.x, like the encoding itself: entry keys depend on it.
 */
typedef struct hermes_args {
    unsigned char *data;
    size_t len, cap;
    int failed;                /* set when an append ran out of memory */
    unsigned char inline_[96]; /* small argument lists need no allocation */
} hermes_args;

#ifdef __cplusplus
#define HERMES_ARGS_INIT                                                       \
    {                                                                          \
    }
#else
#define HERMES_ARGS_INIT                                                       \
    {                                                                          \
        0                                                                      \
    }
#endif

/*
 * Appends one argument.  HERMES_OK, or HERMES_ENOMEM when this append or an
 * earlier one on a ran out of memory (HERMES_EINVAL when a is NULL).  A
 * failed encoding stays failed until hermes_args_free(): its data is NULL
 * and its len HERMES_ARGS_FAILED, which hermes_call() and
 * hermes_invalidate() refuse with HERMES_ENOMEM, so an incomplete encoding
 * can never stand for a shorter argument list's entry.
 */
#define HERMES_ARGS_FAILED SIZE_MAX
hermes_rc hermes_args_int(hermes_args *a, int64_t v);
hermes_rc hermes_args_uint(hermes_args *a, uint64_t v);
hermes_rc hermes_args_double(hermes_args *a, double v);
/* A NULL string is its own value, distinct from every string. */
hermes_rc hermes_args_str(hermes_args *a, const char *s);
hermes_rc hermes_args_bytes(hermes_args *a, const void *p, size_t n);
/* The encoding so far and its length, and whether an append failed. */
const void *hermes_args_data(const hermes_args *a);
size_t hermes_args_len(const hermes_args *a);
int hermes_args_failed(const hermes_args *a);
void hermes_args_free(hermes_args *a);

/* ------------------------------------------------------------ memoization */

/*
 * TTLs are seconds, and mean the same wherever one is given
 * (hermes_fn_options.ttl, hermes_set(), hermes_result_ttl(), and the
 * config's ttl):
 *
 *   HERMES_TTL_DEFAULT (0)   the next level's TTL: a result's falls back to
 *                            its function's, a function's or hermes_set()'s
 *                            to the handle's (the config's ttl).  The
 *                            config itself has no level above: ttl = 0 is
 *                            an error there.
 *   1 .. HERMES_TTL_MAX      that many seconds
 *   HERMES_TTL_FOREVER       no expiry (ttl = forever in the config)
 *
 * Backends take TTLs as 32-bit milliseconds, so the longest finite TTL is
 * HERMES_TTL_MAX seconds (49.7 days); anything between it and
 * HERMES_TTL_FOREVER is refused with HERMES_EINVAL, never shortened.
 */
#define HERMES_TTL_DEFAULT 0u
#define HERMES_TTL_MAX 4294967u /* UINT32_MAX milliseconds, in seconds */
#define HERMES_TTL_FOREVER UINT32_MAX

/* What a compute callback fills in: see hermes_result_*(). */
typedef struct hermes_result hermes_result;

/*
 * Computes the value for one call.  arg is the pointer given to
 * hermes_call().  Return 0 after setting the value with hermes_result_set();
 * return non-zero to fail: nothing is cached, hermes_call() returns
 * HERMES_ECOMPUTE to the caller and to every caller waiting on this
 * computation, with the message set by hermes_result_error() if any.
 */
typedef int (*hermes_compute_fn)(void *arg, hermes_result *res);

/* Copies n bytes as the computed value.  HERMES_ENOMEM when the copy cannot
 * be allocated; a callback that then fails makes hermes_call() return
 * HERMES_ENOMEM rather than HERMES_ECOMPUTE. */
hermes_rc hermes_result_set(hermes_result *res, const void *p, size_t n);
/* The value is returned to the callers but not stored (Hermes never caches
 * None). */
void hermes_result_nocache(hermes_result *res);
/* Stores this value with its own TTL (see HERMES_TTL_DEFAULT) instead of
 * the function's.  A TTL out of range returns HERMES_EINVAL, and the call
 * then fails with HERMES_EINVAL for every caller, storing nothing. */
hermes_rc hermes_result_ttl(hermes_result *res, uint32_t ttl_seconds);
/* A message for a failed computation (copied). */
void hermes_result_error(hermes_result *res, const char *msg);

/*
 * Writes the entry key of a call (the text after "<prefix>:entry:") into
 * buf of size cap, snprintf-style: returns the length it needs; when that is
 * >= cap the library calls again with a larger buffer.  A negative return is
 * an error.  arg is the pointer given to hermes_call()/hermes_invalidate().
 * Entry keys are one namespace: a custom (or direct-access) key reading
 * "<name>:<arghash>" is that function's entry for those arguments, so keep
 * untrusted text under a head no function is named (README: "Entry keys are one
 * namespace").
 */
typedef int (*hermes_key_fn)(void *arg, char *buf, size_t cap);

/*
 * Options of a cached function.  Versioned like every struct the caller
 * passes in: `size` is sizeof(hermes_fn_options) of the caller's header,
 * set by HERMES_FN_OPTIONS(...), so a newer library reads only the fields
 * an older caller has (the rest count as zero), and an older library
 * refuses (HERMES_EINVAL) a newer caller's struct whose fields beyond its
 * own size are not all zero, instead of ignoring an option it cannot honor.
 *
 *     hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("users"),
 *                                             .ttl = 300);
 */
typedef struct hermes_fn_options {
    size_t size;             /* sizeof(hermes_fn_options): HERMES_FN_OPTIONS */
    const char *const *tags; /* NULL-terminated list, or NULL for no tags */
    uint32_t ttl; /* seconds, HERMES_TTL_FOREVER, or HERMES_TTL_DEFAULT (0):
                     the handle's ttl; out of range is HERMES_EINVAL */
    hermes_key_fn key; /* custom key, or NULL for "<name>:<arghash>" */
    /* Freshness (README "Freshness"); 0 in each means the handle's
     * setting of the same name ([hermes] early_refresh, grace,
     * stale_if_error). */
    double early_refresh; /* XFetch factor beta: a reader recomputes early
                             with a probability that rises as expiry
                             nears; HERMES_EARLY_REFRESH_OFF: never */
    uint32_t grace;       /* seconds after expiry during which the old value
                             is served while one caller recomputes;
                             HERMES_GRACE_NONE: none */
    int stale_if_error;   /* HERMES_YES: a computation that fails within
                             grace is answered with the old value; HERMES_NO:
                             with the error */
} hermes_fn_options;

/* The "off" values of hermes_fn_options' freshness fields (0 is "the
 * handle's setting"). */
#define HERMES_EARLY_REFRESH_OFF (-1.0)
#define HERMES_GRACE_NONE UINT32_MAX
#define HERMES_YES 1
#define HERMES_NO (-1)

/* A hermes_fn_options value with size set; the arguments are designated
 * initializers of its other fields.  C only (a compound literal); in C++
 * write hermes_fn_options o = {sizeof o, ...}. */
#ifndef __cplusplus
#define HERMES_FN_OPTIONS(...)                                                 \
    ((hermes_fn_options){.size = sizeof(hermes_fn_options), __VA_ARGS__})
#endif

/* A NULL-terminated tag list literal: HERMES_TAGS("math", "power").  C only
 * (a compound literal); in C++ pass a named array ending in NULL. */
#ifndef __cplusplus
#define HERMES_TAGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#endif

/*
 * Registers a cached function called name (printable, no spaces) with
 * options opts (may be NULL; copied).  *out stays valid until
 * hermes_close(h).  HERMES_EEXIST if name is already registered.
 */
hermes_rc hermes_fn_register(hermes *h, const char *name,
                             const hermes_fn_options *opts, hermes_fn **out);

/*
 * The cached call.  args/args_len are the encoded arguments (see
 * hermes_args; any unambiguous bytes will do; a failed hermes_args, NULL
 * with len HERMES_ARGS_FAILED, is HERMES_ENOMEM).  On a hit, the stored value
 * is returned; on a miss, compute(arg, res) runs at most once per entry at a
 * time across threads and, with a shared backend, across processes.
 *
 * On HERMES_OK, *value (malloc'ed, NUL-terminated for convenience after len
 * bytes) and *len are set; free *value with hermes_free().  When the backend
 * fails, the value is computed directly; with on_backend_error = fail the
 * call returns the backend's error instead (HERMES_EBACKEND, or
 * HERMES_ENOMEM, HERMES_ETOOBIG, HERMES_EINVAL for a plugin that ran out of
 * memory, found the key too large or refused the request), computing
 * nothing.  On failure *value is NULL.
 *
 * A compute callback may call other cached functions.  One that calls the
 * entry it is computing (directly, or through other cached functions
 * whose callbacks lead back to it) gets HERMES_ERECURSIVE at once instead
 * of waiting lock_wait_ms for itself.
 */
hermes_rc hermes_call(hermes_fn *fn, const void *args, size_t args_len,
                      hermes_compute_fn compute, void *arg, void **value,
                      size_t *len);

/* Deletes the entry of one call (arg is for the custom key function). */
hermes_rc hermes_invalidate(hermes_fn *fn, const void *args, size_t args_len,
                            void *arg);

/* The handle a function was registered on. */
hermes *hermes_fn_handle(const hermes_fn *fn);

/* -------------------------------------------------------- direct access */

/*
 * Plain get/set/delete under "<prefix>:entry:<key>" for callers that do not
 * fit the memoize shape.  The same record format and tag protocol apply:
 * hermes_get() with the tags the value was set with is a hit only while
 * none of them has been cleaned.  tags may be NULL.  hermes_set()'s ttl is
 * as for hermes_fn_options (0: the handle's ttl).  These never compute, so
 * a backend failure is returned (HERMES_EBACKEND, HERMES_ENOMEM,
 * HERMES_ETOOBIG or HERMES_EINVAL, as for hermes_call()), with the
 * plugin's reason in hermes_errmsg().
 */
hermes_rc hermes_get(hermes *h, const char *key, const char *const *tags,
                     void **value, size_t *len); /* HERMES_ENOTFOUND on miss */
hermes_rc hermes_set(hermes *h, const char *key, const void *value, size_t len,
                     const char *const *tags, uint32_t ttl);
hermes_rc hermes_delete(hermes *h, const char *key);

/* Invalidates every entry tagged with any of tags (NULL-terminated).
 * HERMES_EINVAL when tags is NULL or empty: to delete every entry, call
 * hermes_flush(). */
hermes_rc hermes_clean(hermes *h, const char *const *tags);
/* Deletes every key under the prefix: entries, tags and locks. */
hermes_rc hermes_flush(hermes *h);

/* ------------------------------------------------------------------ stats */

/*
 * The handle's counters, one list: X(name, description).  The struct below,
 * the library's snapshot and every printer are generated from it.  New
 * counters are only ever appended, so an older caller's struct is a prefix
 * of a newer one.
 *
 * The lock_wait_us_* counters are a histogram of the waits lock_wait_ns
 * sums (one count per wait for another caller's computation, in this
 * process or another): fixed log2 buckets of microseconds, the first for
 * waits under 2 us, the last for 2^23 us (8.4 s) and more, so percentiles
 * can be read off them (hermesctl stats, the inspector).
 */
#define HERMES_STATS_MAP(X)                                                    \
    X(hits, "calls answered from the backend")                                 \
    X(misses, "calls that found no fresh entry")                               \
    X(stale, "misses where an entry existed but a tag version had changed")    \
    X(computations, "compute callbacks run")                                   \
    X(compute_errors, "compute callbacks that failed")                         \
    X(coalesced, "callers served by another thread's computation in this "     \
                 "process")                                                    \
    X(lock_acquired, "backend locks taken")                                    \
    X(lock_contended, "lock attempts that found it held")                      \
    X(lock_wait_ns, "time spent waiting for held locks, in nanoseconds")       \
    X(lock_timeouts, "waits that reached lock_wait_ms")                        \
    X(backend_errors, "backend operations that failed")                        \
    X(corrupt, "records that did not decode")                                  \
    X(foreign, "records of another tag list, function or format")              \
    X(early_refreshes, "values recomputed before their expiry (XFetch)")       \
    X(stale_served, "calls answered with a value past its TTL, within "        \
                    "grace, while another caller recomputed it")               \
    X(stale_if_error, "failed computations answered with the value past its "  \
                      "TTL (stale_if_error)")                                  \
    X(lock_wait_us_lt_2, "lock waits under 2 us")                              \
    X(lock_wait_us_lt_4, "lock waits of 2 to 3 us")                            \
    X(lock_wait_us_lt_8, "lock waits of 4 to 7 us")                            \
    X(lock_wait_us_lt_16, "lock waits of 8 to 15 us")                          \
    X(lock_wait_us_lt_32, "lock waits of 16 to 31 us")                         \
    X(lock_wait_us_lt_64, "lock waits of 32 to 63 us")                         \
    X(lock_wait_us_lt_128, "lock waits of 64 to 127 us")                       \
    X(lock_wait_us_lt_256, "lock waits of 128 to 255 us")                      \
    X(lock_wait_us_lt_512, "lock waits of 256 to 511 us")                      \
    X(lock_wait_us_lt_1024, "lock waits of 512 to 1023 us (under 1.02 ms)")    \
    X(lock_wait_us_lt_2048, "lock waits of 1024 to 2047 us (under 2.05 ms)")   \
    X(lock_wait_us_lt_4096, "lock waits of 2048 to 4095 us (under 4.1 ms)")    \
    X(lock_wait_us_lt_8192, "lock waits of 4096 to 8191 us (under 8.19 ms)")   \
    X(lock_wait_us_lt_16384, "lock waits of 8192 to 16383 us (under 16.4 ms)") \
    X(lock_wait_us_lt_32768,                                                   \
      "lock waits of 16384 to 32767 us (under 32.8 ms)")                       \
    X(lock_wait_us_lt_65536,                                                   \
      "lock waits of 32768 to 65535 us (under 65.5 ms)")                       \
    X(lock_wait_us_lt_131072,                                                  \
      "lock waits of 65536 to 131071 us (under 131 ms)")                       \
    X(lock_wait_us_lt_262144,                                                  \
      "lock waits of 131072 to 262143 us (under 262 ms)")                      \
    X(lock_wait_us_lt_524288,                                                  \
      "lock waits of 262144 to 524287 us (under 524 ms)")                      \
    X(lock_wait_us_lt_1048576,                                                 \
      "lock waits of 524288 to 1048575 us (under 1.05 s)")                     \
    X(lock_wait_us_lt_2097152,                                                 \
      "lock waits of 1048576 to 2097151 us (under 2.1 s)")                     \
    X(lock_wait_us_lt_4194304,                                                 \
      "lock waits of 2097152 to 4194303 us (under 4.19 s)")                    \
    X(lock_wait_us_lt_8388608,                                                 \
      "lock waits of 4194304 to 8388607 us (under 8.39 s)")                    \
    X(lock_wait_us_ge_8388608, "lock waits of 8388608 us (8.39 s) or more")    \
    X(lock_notified, "lock waits ended by the backend's notice that the "      \
                     "holder released the lock")

typedef struct hermes_stats {
#define HERMES__STATS_FIELD(name, text) uint64_t name;
    HERMES_STATS_MAP(HERMES__STATS_FIELD)
#undef HERMES__STATS_FIELD
} hermes_stats;

/*
 * Copies a snapshot of h's counters into out, whose size the caller passes
 * (sizeof *out): the library writes at most size bytes, so a newer library
 * never overflows an older caller's struct, and zeroes what an older
 * library does not know of a newer caller's.  HERMES_EINVAL when h or out
 * is NULL.
 */
hermes_rc hermes_stats_get(const hermes *h, hermes_stats *out, size_t size);

/* ------------------------------------------------- decorator-style macros */

/*
 * HERMES_FUNC(RT, name, T1, a1, ..., Tn, an) { body }     (n = 0 to 6)
 *
 * defines a cached C function whose body follows the macro, with these
 * functions, all static (local to the file):
 *
 *     RT name(T1 a1, ...);
 *         The value: cached, or computed by the body.  It always returns a
 *         value: when the cache cannot be used (not registered, handle
 *         closed, backend down or a lock wait timed out even with "fail"
 *         configured, out of memory) it runs the body directly.
 *     hermes_rc name_try(T1 a1, ..., RT *out);
 *         The same call, telling the truth: HERMES_OK with *out set, or the
 *         error hermes_call() returned (HERMES_ETIMEOUT with
 *         on_lock_timeout = fail, HERMES_EBACKEND with on_backend_error =
 *         fail, HERMES_ENOMEM) and *out untouched; HERMES_EINVAL when the
 *         function is not registered (nothing is computed then).
 *     hermes_rc name_invalidate(T1 a1, ...);
 *         Deletes the entry of these arguments.
 *
 * With no arguments: HERMES_FUNC(RT, name) { body } defines RT name(void).
 *
 * RT and the argument types are integers (including _Bool), float, double
 * or strings (const char * or char * arguments; char * results).  Any
 * other type (pointers, structs, long double, a const char * result) does
 * not compile.  A string result is malloc'ed: the body returns a malloc'ed
 * string, which the library frees after storing it, and the caller of
 * name() or name_try() frees what it gets with free().  A body returning a
 * NULL string returns NULL to its callers, and NULL is never cached
 * (Hermes never caches None): the next call runs the body again.
 *
 * A cached function shared between files: HERMES_DECLARE with the same
 * arguments in a header declares name(), name_try(), name_invalidate() and
 * what HERMES_REGISTER needs, and HERMES_DEFINE(...) { body } in one .c
 * file (which includes the header) defines them with external linkage:
 *
 *     math.h:  HERMES_DECLARE(int64_t, power, int64_t, a, int64_t, b);
 *     math.c:  HERMES_DEFINE(int64_t, power, int64_t, a, int64_t, b) { ... }
 *     main.c:  HERMES_REGISTER(h, power, .tags = HERMES_TAGS("math"));
 *
 * Before the first call, attach the function to a handle with
 * HERMES_REGISTER(h, name, options...), options being designated
 * initializers of hermes_fn_options (.tags, .ttl).  A custom key is a
 * function int k(char *buf, size_t cap, T1 a1, ...) returning snprintf's
 * value, attached with HERMES_REGISTER_KEYED(h, name, k, options...).
 * Both return a hermes_rc; on failure (HERMES_EEXIST for a second
 * registration on the same handle) the earlier registration, its key
 * function included, stays in place.  hermes_close(h) detaches the
 * function again.
 *
 * In C++ the same macros work (argument and result types are chosen by
 * overloads instead of _Generic); the options need C++20 designated
 * initializers, in declaration order, and HERMES_TAGS is C only (pass a
 * named NULL-terminated array).  Functions defined in C++ have C++
 * linkage.
 *
 * Identifiers of the form name__* and hermes__* are internal.
 */

/* Internal: the library's side of the macros. */
void hermes__args_cstr(hermes_args *a, const char *s);
void hermes__args_dbl(hermes_args *a, double v);
void hermes__args_u64(hermes_args *a, uint64_t v);
void hermes__args_i64(hermes_args *a, int64_t v);
int hermes__put_cstr(hermes_result *r, const char *s);
int hermes__put_dbl(hermes_result *r, double v);
int hermes__put_i64(hermes_result *r, int64_t v);
int hermes__get_cstr(const void *p, size_t n, void *out);
int hermes__get_flt(const void *p, size_t n, void *out);
int hermes__get_dbl(const void *p, size_t n, void *out);
int hermes__get_sc(const void *p, size_t n, void *out);
int hermes__get_s(const void *p, size_t n, void *out);
int hermes__get_i(const void *p, size_t n, void *out);
int hermes__get_l(const void *p, size_t n, void *out);
int hermes__get_ll(const void *p, size_t n, void *out);
int hermes__get_uc(const void *p, size_t n, void *out);
int hermes__get_us(const void *p, size_t n, void *out);
int hermes__get_ui(const void *p, size_t n, void *out);
int hermes__get_ul(const void *p, size_t n, void *out);
int hermes__get_ull(const void *p, size_t n, void *out);
int hermes__get_b(const void *p, size_t n, void *out);
/* Registers a copy of opts with key as its key function; *slot is set only
 * on success and cleared by hermes_close(). */
hermes_rc hermes__register(hermes *h, const char *name,
                           const hermes_fn_options *opts, hermes_key_fn key,
                           hermes_fn **slot);
/* hermes_call()/hermes_invalidate() of an encoding (freed here): EINVAL
 * when fn is NULL, ENOMEM when the encoding failed.  *value is always set. */
hermes_rc hermes__call(hermes_fn *fn, hermes_args *enc,
                       hermes_compute_fn compute, void *pack, void **value,
                       size_t *len);
hermes_rc hermes__invalidate(hermes_fn *fn, hermes_args *enc, void *pack);

#ifdef __cplusplus
} /* extern "C" */

/* C++: types are chosen by overloads; pointers other than strings and long
 * double are deleted, so they do not compile (never a lossy key). */
/* clang-format off */
#define HERMES__CXX_SCALARS(X, I, U)                                           \
    X(char, I) X(signed char, I) X(short, I) X(int, I) X(long, I)              \
    X(long long, I) X(unsigned char, U) X(unsigned short, U)                   \
    X(unsigned int, U) X(unsigned long, U) X(unsigned long long, U) X(bool, U)
/* clang-format on */
#define HERMES__CXX_ARG(T, F)                                                  \
    inline void hermes__arg(hermes_args *a, T v)                               \
    {                                                                          \
        F(a, v);                                                               \
    }
#define HERMES__CXX_PUT(T, F)                                                  \
    inline int hermes__put(hermes_result *r, T v)                              \
    {                                                                          \
        return F(r, v);                                                        \
    }
#define HERMES__CXX_GET(T, F)                                                  \
    inline int hermes__get(const void *p, size_t n, T *o)                      \
    {                                                                          \
        return F(p, n, o);                                                     \
    }
HERMES__CXX_SCALARS(HERMES__CXX_ARG, hermes__args_i64, hermes__args_u64)
HERMES__CXX_ARG(float, hermes__args_dbl)
HERMES__CXX_ARG(double, hermes__args_dbl)
HERMES__CXX_ARG(const char *, hermes__args_cstr)
HERMES__CXX_ARG(char *, hermes__args_cstr)
template <class T> void hermes__arg(hermes_args *, T *) = delete;
void hermes__arg(hermes_args *, long double) = delete;
HERMES__CXX_SCALARS(HERMES__CXX_PUT, hermes__put_i64, hermes__put_i64)
HERMES__CXX_PUT(float, hermes__put_dbl)
HERMES__CXX_PUT(double, hermes__put_dbl)
HERMES__CXX_PUT(char *, hermes__put_cstr)
template <class T> int hermes__put(hermes_result *, T *) = delete;
int hermes__put(hermes_result *, long double) = delete;
HERMES__CXX_GET(char, hermes__get_sc)
HERMES__CXX_GET(signed char, hermes__get_sc)
HERMES__CXX_GET(short, hermes__get_s)
HERMES__CXX_GET(int, hermes__get_i)
HERMES__CXX_GET(long, hermes__get_l)
HERMES__CXX_GET(long long, hermes__get_ll)
HERMES__CXX_GET(unsigned char, hermes__get_uc)
HERMES__CXX_GET(unsigned short, hermes__get_us)
HERMES__CXX_GET(unsigned int, hermes__get_ui)
HERMES__CXX_GET(unsigned long, hermes__get_ul)
HERMES__CXX_GET(unsigned long long, hermes__get_ull)
HERMES__CXX_GET(float, hermes__get_flt)
HERMES__CXX_GET(double, hermes__get_dbl)
HERMES__CXX_GET(char *, hermes__get_cstr)
inline int hermes__get(const void *p, size_t n, bool *o)
{
    return hermes__get_b(p, n, o);
}
#define HERMES__ARG(enc, x) hermes__arg(enc, x)
#define HERMES__PUT(res, x) hermes__put(res, x)
#define HERMES__GET(p, n, out) hermes__get(p, n, out)
/* Registration runs in a lambda so that the options can be a designated
 * initializer (C++20) whose omitted members g++ before 14 would warn about
 * (-Wmissing-field-initializers); omitting them is the point here. */
#define HERMES__REGISTER_WITH(h, NAME, KEYFN, ...)                             \
    ([&]() -> hermes_rc {                                                      \
        _Pragma("GCC diagnostic push")                                         \
            _Pragma("GCC diagnostic ignored \"-Wmissing-field-initializers\"") \
                const hermes_fn_options hermes_o_{                             \
                    .size = sizeof(hermes_fn_options), __VA_ARGS__};           \
        _Pragma("GCC diagnostic pop") return NAME##__register((h), &hermes_o_, \
                                                              (KEYFN));        \
    }())

extern "C" {
#else /* C */

/* No default: an argument or result of another type (long double,
 * pointers, structs) is a compile error, never a silently lossy key. */
#define HERMES__ARG(enc, x)                                                    \
    _Generic((x),                                                            \
        char *: hermes__args_cstr,                                           \
        const char *: hermes__args_cstr,                                     \
        float: hermes__args_dbl,                                             \
        double: hermes__args_dbl,                                            \
        char: hermes__args_i64,                                              \
        signed char: hermes__args_i64,                                       \
        short: hermes__args_i64,                                             \
        int: hermes__args_i64,                                               \
        long: hermes__args_i64,                                              \
        long long: hermes__args_i64,                                         \
        unsigned char: hermes__args_u64,                                     \
        unsigned short: hermes__args_u64,                                    \
        unsigned int: hermes__args_u64,                                      \
        unsigned long: hermes__args_u64,                                     \
        unsigned long long: hermes__args_u64,                                \
        _Bool: hermes__args_u64)(enc, x)

/* A string result is char * (malloc'ed by the body, freed here after it is
 * stored); const char * is refused so a literal is never freed. */
#define HERMES__PUT(res, x)                                                    \
    _Generic((x),                                                            \
        char *: hermes__put_cstr,                                            \
        float: hermes__put_dbl,                                              \
        double: hermes__put_dbl,                                             \
        char: hermes__put_i64,                                               \
        signed char: hermes__put_i64,                                        \
        short: hermes__put_i64,                                              \
        int: hermes__put_i64,                                                \
        long: hermes__put_i64,                                               \
        long long: hermes__put_i64,                                          \
        unsigned char: hermes__put_i64,                                      \
        unsigned short: hermes__put_i64,                                     \
        unsigned int: hermes__put_i64,                                       \
        unsigned long: hermes__put_i64,                                      \
        unsigned long long: hermes__put_i64,                                 \
        _Bool: hermes__put_i64)(res, x)

#define HERMES__GET(p, n, out)                                                 \
    _Generic((out),                                                          \
        char **: hermes__get_cstr,                                           \
        float *: hermes__get_flt,                                            \
        double *: hermes__get_dbl,                                           \
        char *: hermes__get_sc,                                              \
        signed char *: hermes__get_sc,                                       \
        short *: hermes__get_s,                                              \
        int *: hermes__get_i,                                                \
        long *: hermes__get_l,                                               \
        long long *: hermes__get_ll,                                         \
        unsigned char *: hermes__get_uc,                                     \
        unsigned short *: hermes__get_us,                                    \
        unsigned int *: hermes__get_ui,                                      \
        unsigned long *: hermes__get_ul,                                     \
        unsigned long long *: hermes__get_ull,                               \
        _Bool *: hermes__get_b)(p, n, (void *)(out))

/* .size first, so that the braces are never empty (ISO C before C23). */
#define HERMES__REGISTER_WITH(h, NAME, KEYFN, ...)                             \
    NAME##__register((h),                                                      \
                     &(const hermes_fn_options){                               \
                         .size = sizeof(hermes_fn_options), __VA_ARGS__},      \
                     (KEYFN))
#endif

/*
 * The generator.  HERMES__N counts the macro's arguments (RT and name
 * included: 2 + 2n); HERMES__EACH_<count>(F, M, T1, a1, ..., ~) applies F
 * to the first (type, name) pair and M to the others, so each list the
 * functions need (parameters, arguments, struct fields, encodings) is built
 * from one definition.  The trailing ~ keeps every variadic argument list
 * non-empty, as ISO C requires.
 */
#define HERMES__CAT(a, b) HERMES__CAT_(a, b)
#define HERMES__CAT_(a, b) a##b
#define HERMES__ID(...) __VA_ARGS__
#define HERMES__N(...)                                                         \
    HERMES__N_(__VA_ARGS__, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
#define HERMES__N_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13,     \
                   a14, n, ...)                                                \
    n
#define HERMES__EACH_2(F, M, ...)
#define HERMES__EACH_4(F, M, T, A, ...) F(T, A)
#define HERMES__EACH_6(F, M, T, A, ...)                                        \
    F(T, A) HERMES__EACH_4(M, M, __VA_ARGS__)
#define HERMES__EACH_8(F, M, T, A, ...)                                        \
    F(T, A) HERMES__EACH_6(M, M, __VA_ARGS__)
#define HERMES__EACH_10(F, M, T, A, ...)                                       \
    F(T, A) HERMES__EACH_8(M, M, __VA_ARGS__)
#define HERMES__EACH_12(F, M, T, A, ...)                                       \
    F(T, A) HERMES__EACH_10(M, M, __VA_ARGS__)
#define HERMES__EACH_14(F, M, T, A, ...)                                       \
    F(T, A) HERMES__EACH_12(M, M, __VA_ARGS__)
#define HERMES__EACH(N, F, M, ...)                                             \
    HERMES__CAT(HERMES__EACH_, N)(F, M, __VA_ARGS__)
#define HERMES__VOID_2 void
#define HERMES__VOID_4
#define HERMES__VOID_6
#define HERMES__VOID_8
#define HERMES__VOID_10
#define HERMES__VOID_12
#define HERMES__VOID_14
/* What one (type, name) pair contributes to each list. */
#define HERMES__PARAM(T, A) T A
#define HERMES__PARAM_N(T, A) , T A
#define HERMES__PARAM_C(T, A) T A,
#define HERMES__NAME(T, A) A
#define HERMES__NAME_N(T, A) , A
#define HERMES__NAME_C(T, A) A,
#define HERMES__PACKED(T, A) hermes_a_->A
#define HERMES__PACKED_N(T, A) , hermes_a_->A
#define HERMES__TYPE_N(T, A) , T
#define HERMES__FIELD(T, A) T A;
#define HERMES__ENCODE(T, A) HERMES__ARG(&hermes_e_, A);

#define HERMES__GEN(SINK, L, N, RT, NAME, ...)                                 \
    SINK(L, RT, NAME,                                                          \
         (HERMES__CAT(HERMES__VOID_, N)                                        \
              HERMES__EACH(N, HERMES__PARAM, HERMES__PARAM_N, __VA_ARGS__)),   \
         (HERMES__EACH(N, HERMES__PARAM_C, HERMES__PARAM_C, __VA_ARGS__) RT *  \
          hermes_out_),                                                        \
         (HERMES__EACH(N, HERMES__NAME, HERMES__NAME_N, __VA_ARGS__)),         \
         (HERMES__EACH(N, HERMES__NAME_C, HERMES__NAME_C, __VA_ARGS__) &       \
          hermes_r_),                                                          \
         (HERMES__EACH(N, HERMES__PACKED, HERMES__PACKED_N, __VA_ARGS__)),     \
         (char *, size_t HERMES__EACH(N, HERMES__TYPE_N, HERMES__TYPE_N,       \
                                      __VA_ARGS__)),                           \
         (hermes_buf_,                                                         \
          hermes_cap_ HERMES__EACH(N, HERMES__PACKED_N, HERMES__PACKED_N,      \
                                   __VA_ARGS__)),                              \
         HERMES__EACH(N, HERMES__FIELD, HERMES__FIELD, __VA_ARGS__),           \
         (0 HERMES__EACH(N, HERMES__NAME_N, HERMES__NAME_N, __VA_ARGS__)),     \
         HERMES__EACH(N, HERMES__ENCODE, HERMES__ENCODE, __VA_ARGS__))

/* Sinks of HERMES__GEN: PL parameters, PLO parameters and the out pointer,
 * AL arguments, ALO arguments and &hermes_r_, QL the arguments from the
 * pack, KT the key function's parameter types, KAL its arguments, FIELDS
 * the pack's members, INIT its initializer, ENC the encoding statements. */
#define HERMES__DECL(L, RT, NAME, PL, PLO, AL, ALO, QL, KT, KAL, FIELDS, INIT, \
                     ENC)                                                      \
    typedef int(*NAME##__keyfn) KT;                                            \
    RT NAME PL;                                                                \
    hermes_rc NAME##_try PLO;                                                  \
    hermes_rc NAME##_invalidate PL;                                            \
    hermes_rc NAME##__register(hermes *, const hermes_fn_options *,            \
                               NAME##__keyfn)

#define HERMES__BODY(L, RT, NAME, PL, PLO, AL, ALO, QL, KT, KAL, FIELDS, INIT, \
                     ENC)                                                      \
    typedef struct NAME##__pack {                                              \
        char hermes_pad_; /* never empty */                                    \
        FIELDS                                                                 \
    } NAME##__pack;                                                            \
    static RT NAME##__compute PL;                                              \
    static struct {                                                            \
        hermes_fn *fn;                                                         \
        NAME##__keyfn key;                                                     \
    } NAME##__memo;                                                            \
    static inline int NAME##__thunk(void *hermes_p_,                           \
                                    hermes_result *hermes_rs_)                 \
    {                                                                          \
        NAME##__pack *hermes_a_ = (NAME##__pack *)hermes_p_;                   \
        (void)hermes_a_;                                                       \
        return HERMES__PUT(hermes_rs_, NAME##__compute QL);                    \
    }                                                                          \
    static inline int NAME##__keythunk(void *hermes_p_, char *hermes_buf_,     \
                                       size_t hermes_cap_)                     \
    {                                                                          \
        NAME##__pack *hermes_a_ = (NAME##__pack *)hermes_p_;                   \
        (void)hermes_a_;                                                       \
        return NAME##__memo.key KAL;                                           \
    }                                                                          \
    L hermes_rc NAME##__register(hermes *hermes_h_,                            \
                                 const hermes_fn_options *hermes_o_,           \
                                 NAME##__keyfn hermes_k_)                      \
    {                                                                          \
        hermes_rc hermes_rc_ = hermes__register(                               \
            hermes_h_, #NAME, hermes_o_, hermes_k_ ? NAME##__keythunk : NULL,  \
            &NAME##__memo.fn);                                                 \
        if (hermes_rc_ == HERMES_OK)                                           \
            NAME##__memo.key = hermes_k_;                                      \
        return hermes_rc_;                                                     \
    }                                                                          \
    L hermes_rc NAME##_try PLO                                                 \
    {                                                                          \
        NAME##__pack hermes_a_ = {HERMES__ID INIT};                            \
        hermes_args hermes_e_ = HERMES_ARGS_INIT;                              \
        void *hermes_v_;                                                       \
        size_t hermes_n_;                                                      \
        ENC;                                                                   \
        hermes_rc hermes_rc_ =                                                 \
            hermes__call(NAME##__memo.fn, &hermes_e_, NAME##__thunk,           \
                         &hermes_a_, &hermes_v_, &hermes_n_);                  \
        /* A stored value of another type (the function changed): */           \
        if (hermes_rc_ == HERMES_OK &&                                         \
            HERMES__GET(hermes_v_, hermes_n_, hermes_out_) != 0)               \
            *hermes_out_ = NAME##__compute AL;                                 \
        hermes_free(hermes_v_);                                                \
        return hermes_rc_;                                                     \
    }                                                                          \
    L hermes_rc NAME##_invalidate PL                                           \
    {                                                                          \
        NAME##__pack hermes_a_ = {HERMES__ID INIT};                            \
        hermes_args hermes_e_ = HERMES_ARGS_INIT;                              \
        ENC;                                                                   \
        return hermes__invalidate(NAME##__memo.fn, &hermes_e_, &hermes_a_);    \
    }                                                                          \
    L RT NAME PL                                                               \
    {                                                                          \
        RT hermes_r_ = 0;                                                      \
        if (NAME##_try ALO == HERMES_OK)                                       \
            return hermes_r_;                                                  \
        return NAME##__compute AL;                                             \
    }                                                                          \
    static RT NAME##__compute PL

#define HERMES__STATIC(L, RT, NAME, PL, PLO, AL, ALO, QL, KT, KAL, FIELDS,     \
                       INIT, ENC)                                              \
    typedef int(*NAME##__keyfn) KT;                                            \
    HERMES__BODY(L, RT, NAME, PL, PLO, AL, ALO, QL, KT, KAL, FIELDS, INIT, ENC)

#define HERMES__DEFINE(L, RT, NAME, PL, PLO, AL, ALO, QL, KT, KAL, FIELDS,     \
                       INIT, ENC)                                              \
    HERMES__DECL(L, RT, NAME, PL, PLO, AL, ALO, QL, KT, KAL, FIELDS, INIT,     \
                 ENC);                                                         \
    HERMES__BODY(L, RT, NAME, PL, PLO, AL, ALO, QL, KT, KAL, FIELDS, INIT, ENC)

/* A cached function local to this file (see above). */
#define HERMES_FUNC(...)                                                       \
    HERMES__GEN(HERMES__STATIC, static inline, HERMES__N(__VA_ARGS__),         \
                __VA_ARGS__, ~)
/* Declares a cached function defined elsewhere with HERMES_DEFINE. */
#define HERMES_DECLARE(...)                                                    \
    HERMES__GEN(HERMES__DECL, , HERMES__N(__VA_ARGS__), __VA_ARGS__, ~)
/* Defines, with external linkage, a function declared by HERMES_DECLARE. */
#define HERMES_DEFINE(...)                                                     \
    HERMES__GEN(HERMES__DEFINE, , HERMES__N(__VA_ARGS__), __VA_ARGS__, ~)

/* Attaches a cached function to handle h: HERMES_REGISTER(h, name) or
 * HERMES_REGISTER(h, name, .tags = HERMES_TAGS("a"), .ttl = 60). */
#define HERMES_REGISTER(...) HERMES__REGISTER(__VA_ARGS__, )
#define HERMES__REGISTER(h, NAME, ...)                                         \
    HERMES__REGISTER_WITH(h, NAME, NULL, __VA_ARGS__)

/* As HERMES_REGISTER with a custom key function KEYFN. */
#define HERMES_REGISTER_KEYED(...) HERMES__REGISTER_KEYED(__VA_ARGS__, )
#define HERMES__REGISTER_KEYED(h, NAME, KEYFN, ...)                            \
    HERMES__REGISTER_WITH(h, NAME, KEYFN, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* HERMES_HERMES_H */
