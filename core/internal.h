/*
 * What the core's files share: the handle, registered functions, the
 * per-thread error message, stats counters and the thin wrappers around the
 * backend's operations.  Nothing here is installed, and nothing outside
 * core/ includes it: the tools use handle.h.
 */
#ifndef HERMES_CORE_INTERNAL_H
#define HERMES_CORE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hermes/backend.h>
#include <hermes/hermes.h>

#include "config.h"
#include "handle.h"
#include "host.h"
#include "loader.h"

#if defined(__GNUC__)
#define HM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define HM_PRINTF(f, a)
#endif

/* Counters behind hermes_stats, one per HERMES_STATS_MAP entry; relaxed
 * atomics, read as a snapshot (stats.c). */
typedef struct hm_counters {
#define HM_COUNTER_FIELD(name, text) atomic_uint_fast64_t name;
    HERMES_STATS_MAP(HM_COUNTER_FIELD)
#undef HM_COUNTER_FIELD
} hm_counters;

#define HM_COUNT(h, field, n)                                                  \
    atomic_fetch_add_explicit(&(h)->stats.field, (n), memory_order_relaxed)

/*
 * Hits, counted on every hit of every thread, are spread over stripes a
 * cache line apart, one per thread (modulo HM_HIT_STRIPES), so threads
 * hitting at once do not pass one counter's line between them; the
 * snapshot adds them up (stats.c).
 */
#define HM_HIT_STRIPES 16
typedef struct hm_hit_stripe {
    atomic_uint_fast64_t n;
    char pad[64 - sizeof(atomic_uint_fast64_t)];
} hm_hit_stripe;
#if defined(__GNUC__)
__attribute__((tls_model("initial-exec"), visibility("hidden")))
#endif
extern _Thread_local unsigned char hm_stripe_tls; /* 1 + stripe, 0 unset */
unsigned hm_stripe_assign(void);
#define HM_STRIPE() (hm_stripe_tls ? hm_stripe_tls - 1u : hm_stripe_assign())
#define HM_COUNT_HIT(h)                                                        \
    atomic_fetch_add_explicit(&(h)->hit_stripes[HM_STRIPE()].n, 1,             \
                              memory_order_relaxed)
/* A hit of a registered function: the function's count alone (striped
 * the same way, for publish.h).  The handle's hits are its direct hits
 * plus every function's, added up by the snapshot (stats.c): one locked
 * add per hit, not two. */
#define HM_COUNT_FN_HIT(h, fn)                                                 \
    do {                                                                       \
        (void)(h);                                                             \
        atomic_fetch_add_explicit(&(fn)->hit_stripes[HM_STRIPE()].n, 1,        \
                                  memory_order_relaxed);                       \
    } while (0)

/* Counts one wait for another caller's computation of ns nanoseconds:
 * lock_wait_ns and its histogram bucket (stats.c). */
struct hermes;
void hm_count_lock_wait(struct hermes *h, uint64_t ns);

/* Room after a handle's lock prefix for a fork child's "<pid>:": the
 * digits of any pid_t, the colon and the NUL. */
#define HM_LOCK_PID_ROOM 22

/* In-process coalescing of concurrent computations of one entry. */
typedef struct hm_flight hm_flight;
typedef struct hm_flights {
    pthread_mutex_t mu;
    hm_flight *buckets[64];
} hm_flights;

/* Rate limiter for log lines: at most `burst` per second. */
typedef struct hm_logger {
    pthread_mutex_t mu;
    uint64_t window_ms;
    unsigned used, suppressed;
    hermes_log_fn fn; /* hermes_set_log's function, or NULL; under mu */
    void *arg;
    atomic_bool has_fn; /* fn != NULL, read without the lock */
} hm_logger;

/* A tag list (built and freed by taglist.c): sorted, unique names with
 * their lengths and their tag keys; an entry's list on a backend without
 * prefix flush starts with the namespace tag (taglist.h). */
typedef struct hm_taglist {
    size_t n;
    bool ns;             /* index 0 is the namespace tag */
    char **names;        /* owned */
    hermes_bytes *bytes; /* names with their lengths (point into names) */
    hermes_bytes *keys;  /* "<prefix>:tag:<tag>", owned */
    uint32_t *ids;       /* hm_tag_id() of each name (record.h) */
} hm_taglist;

/*
 * The tag versions a function's last full read found, on a store private
 * to the handle (no HERMES_CAP_SHARED): every change to its tag keys then
 * passes through this handle's backend calls, which move h->tag_epoch
 * after each (backend.c), so versions read at the current epoch are still
 * the store's and a hit need not look its tags up again (tags.c).  A
 * seqlock: seq is odd while a writer fills the rest in.
 */
#define HM_TAG_MEMO_MAX 16 /* functions with more tags always read them */
typedef struct hm_tag_memo {
    atomic_uint_fast64_t seq;
    atomic_uint_fast64_t epoch; /* h->tag_epoch the versions were read at */
    atomic_uint_fast64_t vids[HM_TAG_MEMO_MAX];
} hm_tag_memo;

struct hermes_fn {
    hermes *h;
    char *name;  /* as registered */
    char *ename; /* name escaped for use in keys */
    size_t name_len, ename_len;
    /* "<entry prefix><ename>:", what every argument-hashed entry key of
     * the function starts with, made once instead of on every call. */
    char *key_head;
    size_t key_head_len;
    hm_taglist tags;
    uint32_t ttl;      /* seconds; HERMES_TTL_DEFAULT = the handle's ttl */
    hermes_key_fn key; /* custom key or NULL */
    hermes_fn **slot;  /* HERMES_REGISTER's pointer, cleared at close */
    /* Freshness, resolved against the handle's defaults (fresh.h). */
    double beta;         /* XFetch factor; 0 = no early refresh */
    uint32_t grace;      /* seconds */
    bool stale_if_error; /* a failure within grace serves the old value */
    bool fresh;          /* beta > 0 or grace > 0: hits check the time */
    /* This function's calls (publish.h): hits striped as the handle's. */
    hm_hit_stripe hit_stripes[HM_HIT_STRIPES];
    atomic_uint_fast64_t misses;
    hm_tag_memo tag_memo;
    struct hermes_fn *next;
};

struct hermes {
    bool failed;         /* hermes_open failed: only errmsg/close work */
    char open_err[1024]; /* the reason, when failed */
    hm_config cfg;
    hm_plugin plugin;
    const hermes_backend *be; /* plugin.desc once open */
    void *be_state;
    bool be_serialize; /* plugin not thread-safe: one call at a time */
    pthread_mutex_t be_mu;
    hermes_host host;
    hm_logger logger;
    uint64_t id; /* unique in the process: owns a thread's message */
    hm_counters stats;
    /* Direct hits (HM_COUNT_HIT); a function's are its own. */
    hm_hit_stripe hit_stripes[HM_HIT_STRIPES];
    hm_flights flights;
    pthread_mutex_t fns_mu;
    /* Registered functions, newest first: prepended under fns_mu, and
     * read without it by hermes_stats_get (a function lives until close,
     * and its next is set before it is published). */
    _Atomic(struct hermes_fn *) fns;
    char *entry_prefix; /* "<prefix>:entry:" */
    size_t entry_prefix_len;
    char *tag_prefix; /* "<prefix>:tag:" */
    /* "<prefix>:lock:", with room after it for a fork child's
     * "<pid>:" (HM_LOCK_PID_ROOM bytes), written there in place (fork.c) */
    char *lock_prefix;
    /* "<prefix>:ns", the namespace tag of every entry, when the backend
     * cannot flush by prefix (HERMES_CAP_NO_PREFIX_FLUSH); else NULL. */
    char *ns_key;
    /* Moved after every backend call that may change a tag key, when
     * tags_private (tags.c, "hm_tag_memo"); starts at 1, a memo at 0. */
    bool tags_private;
    atomic_uint_fast64_t tag_epoch;
    /* The backend is the built-in dict (hm_plugin.builtin): the bytes a
     * read hands back are the record this handle wrote under that key, in
     * this process's memory, with no other writer and no wire or disk in
     * between.  Reads then skip the record's checksum, which guards
     * against what cannot happen there (a shared store's other writers,
     * damaged or moved bytes); plugins, the dict.la module and linked
     * descriptors keep it. */
    bool records_intact;
    char hostname[64];
    /* Stats publication (publish.h): when the next one is due on
     * hm_coarse_ns()'s clock, 0 when publication is off; and the pid that
     * last published, whose key hermes_close() removes. */
    atomic_uint_fast64_t publish_due_ns;
    uint32_t publish_interval_ms;
    atomic_long published_pid;
    struct hermes *fork_prev, *fork_next; /* open handles (fork.c) */
};

/* errors.c: the calling thread's message (one slot for the library).
 * hm_error sets it, about h (NULL: about no handle), and returns rc. */
hermes_rc hm_error(const hermes *h, hermes_rc rc, const char *fmt, ...)
    HM_PRINTF(3, 4);
/* As hm_error, for a failed backend call: "<what>: <status>[: <detail>]",
 * with the detail the plugin attached to the failure (hm_be_detail), and
 * the result hm_be_rc(status, false). */
hermes_rc hm_be_error(const hermes *h, int status, const char *fmt, ...)
    HM_PRINTF(3, 4);
/* backend.c: the hermes_rc of a plugin's status, the same for every
 * operation (at_open: for open(), where INVALID names a config key). */
hermes_rc hm_be_rc(int status, bool at_open);
/* Whether the calling thread's message and backend detail (errors.c) are
 * set.  Initial-exec and hidden, so that clearing them, on entry to every
 * public call and before every backend call, is one store at an offset
 * from the thread pointer, even in libhermes.so (2 bytes of static TLS,
 * which glibc has room for even when the library is dlopen'ed). */
typedef struct hm_errflags {
    bool msg, detail;
} hm_errflags;
#if defined(__GNUC__)
__attribute__((tls_model("initial-exec"), visibility("hidden")))
#endif
extern _Thread_local hm_errflags hm_errflags_tls;
/* Empties the message: one store, done on entry to every public call. */
static inline void hm_clear_error(void)
{
    hm_errflags_tls.msg = false;
}
/* The EINVAL of a call on a NULL handle or one whose open failed. */
hermes_rc hm_bad_handle(const hermes *h, const char *func);
/* A new handle id (never 0). */
uint64_t hm_handle_id_next(void);
/* The plugin's detail of the backend call running on this thread
 * (host->error_detail): emptied before each call, "" when none. */
static inline void hm_be_detail_clear(void)
{
    hm_errflags_tls.detail = false;
}
void hm_be_detail_set(const char *msg);
const char *hm_be_detail(void);

/* host.c: the services handed to plugins (clocks in host.h). */
void hm_host_init(hermes *h);
void hm_log(hermes *h, int level, const char *fmt, ...) HM_PRINTF(3, 4);

/* handle.c: frees a registered function (fn.c builds them). */
void hm_fn_free(hermes_fn *fn);

/* The start of every public call on a handle: clear the thread's message;
 * a NULL handle or one whose open failed is HERMES_EINVAL, with a message. */
#define HM_ENTER(h)                                                            \
    do {                                                                       \
        hm_clear_error();                                                      \
        if (!(h) || (h)->failed)                                               \
            return hm_bad_handle((h), __func__);                               \
    } while (0)

/* A TTL the API accepts: HERMES_TTL_DEFAULT, 1..HERMES_TTL_MAX, or
 * HERMES_TTL_FOREVER. */
static inline bool hm_ttl_ok(uint32_t ttl)
{
    return ttl <= HERMES_TTL_MAX || ttl == HERMES_TTL_FOREVER;
}

/* The message of an out-of-range TTL, for hm_error("%s: " HM_TTL_RANGE). */
#define HM_TTL_RANGE                                                           \
    "ttl %lu s is beyond the longest a backend holds (%u s, 49.7 days); for "  \
    "no expiry use HERMES_TTL_FOREVER"

static inline hermes_bytes hm_bytes(const char *data, size_t len)
{
    return (hermes_bytes){data, len};
}

/* backend.c: calls into the plugin, serialized when it asks, with failures
 * counted and logged.  Return the plugin's hermes_be_status. */
int hm_be_get(hermes *h, const hermes_bytes *keys, size_t n, hermes_value_cb cb,
              void *arg);
int hm_be_set(hermes *h, const hermes_item *items, size_t n, hermes_value_cb cb,
              void *arg);
int hm_be_del(hermes *h, const hermes_bytes *keys, size_t n);
int hm_be_lock(hermes *h, hermes_bytes key, hermes_bytes token, uint32_t ttl_ms,
               int *acquired);
int hm_be_unlock(hermes *h, hermes_bytes key, hermes_bytes token,
                 int *released);
int hm_be_flush(hermes *h, hermes_bytes prefix);
/* The optional scan (HERMES_CAP_SCAN), HERMES_BE_UNSUPPORTED without it.
 * For a plugin that is not thread-safe the whole walk holds be_mu, so cb
 * must not call into the backend. */
int hm_be_scan(hermes *h, hermes_bytes prefix, hermes_scan_cb cb, void *arg);
/* The optional fused operations (ABI 1.2), for backends that have them
 * (HERMES_BACKEND_HAS); HERMES_BE_UNSUPPORTED otherwise. */
int hm_be_lock_get(hermes *h, hermes_bytes key, hermes_bytes token,
                   uint32_t ttl_ms, int *acquired, const hermes_bytes *keys,
                   size_t n, hermes_value_cb cb, void *arg);
int hm_be_set_unlock(hermes *h, const hermes_item *items, size_t n,
                     hermes_bytes key, hermes_bytes token, int *released);
/* The optional wait for a lock's release (ABI 1.3), for thread-safe
 * backends that have it; HERMES_BE_UNSUPPORTED otherwise.  Its failures
 * are neither counted nor logged: the caller sleeps instead. */
bool hm_be_can_wait_unlock(const hermes *h);
int hm_be_wait_unlock(hermes *h, hermes_bytes key, uint64_t since_ns,
                      uint64_t until_ns, int *woken);

#endif
