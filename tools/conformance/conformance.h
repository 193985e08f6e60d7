/*
 * Shared declarations of hermes-conformance: the run context every check
 * receives, the wrappers through which checks call the plugin, and the
 * helpers that collect what the plugin reports through its callbacks.
 * Checks talk to the plugin only through <hermes/backend.h>; nothing here
 * knows which backend is under test.
 */
#ifndef HERMES_CONFORMANCE_H
#define HERMES_CONFORMANCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hermes/backend.h>

/* What a check returns. */
enum { CONF_PASS = 0, CONF_FAIL = 1, CONF_SKIP = 2 };

typedef struct conf_ctx {
    const hermes_backend *be; /* the loaded, validated descriptor */
    const char *spec;         /* PLUGIN as given on the command line */
    const char *path;         /* the file loaded, or "(built-in)" */
    hermes_host host;         /* what open() receives */
    const hermes_kv *kv;      /* the plugin's config section */
    size_t nkv;
    void *state;     /* from open(), NULL before */
    char prefix[64]; /* "hconf:<pid>:<random>:", unique per run */
    size_t prefix_len;
    int verbose;
    int serialize;           /* plugin lacks HERMES_CAP_THREADSAFE */
    pthread_mutex_t serial;  /* held around every call when serialize */
    const char *kill_cmd;    /* --kill-cmd, or NULL */
    const char *restart_cmd; /* --restart-cmd, or NULL */
    unsigned ttl_late_ms;    /* --ttl-late, or CONF_TTL_LATE_MS */
    int hung;                /* an operation never returned: no close() */
    /* Added to the wall clock the host gives (host->now_ms): the TTL
     * checks move it a day ahead, since TTLs must not follow it. */
    _Atomic int64_t wall_skew_ms;
    int out_fd; /* in a check's process, the real stdout (notes go there);
                   -1 in the parent */
    pthread_mutex_t reason_mu;
    char reason[512]; /* why the current check failed or skipped */
    int have_reason;
} conf_ctx;

typedef int (*conf_check_fn)(conf_ctx *c);

/* Records why the current check fails (the first reason wins, so a check
 * may keep going after a failure) and returns CONF_FAIL.  Thread-safe. */
int conf_fail(conf_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Records why the current check is skipped and returns CONF_SKIP. */
int conf_skip(conf_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A detail line ("#   ...") printed with -v only. */
void conf_note(conf_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "OK", "IO", ... or "status N" for an unknown code (static string or
 * one of a few rotating thread-local buffers). */
const char *conf_status(int st);

/* Monotonic clock and sleeping, in the units the checks think in. */
uint64_t conf_now_ms(void);
uint64_t conf_now_us(void);
void conf_sleep_ms(unsigned ms);

/*
 * The system's wall clock against the monotonic one: CLOCK_REALTIME minus
 * CLOCK_MONOTONIC, in microseconds.  It moves only when the wall clock is
 * set, stepped or slewed.  A server that expires keys by its wall clock
 * (redis, memcached) runs a TTL out early by as much as the wall clock
 * moved ahead meanwhile; the TTL checks measure by the monotonic clock, so
 * they tell such a move (CONF_WALL_RETRIES times at most, then they fail
 * as usual) from a TTL that a backend really shortened.
 */
int64_t conf_wall_offset_us(void);
#define CONF_WALL_RETRIES 3

/* Whether an expiry seen at t1, early for a TTL of ttl_ms begun at began
 * (monotonic us), is explained by the wall clock moving ahead since wall0
 * (conf_wall_offset_us) and the check's attempt (from 1) may be run again;
 * notes it when so. */
int conf_wall_explains(conf_ctx *c, int64_t wall0, uint64_t began, uint64_t t1,
                       unsigned ttl_ms, int attempt);

/* Aborts the run when the tool itself runs out of memory: that is not
 * the plugin's fault and no check result would be meaningful. */
void *conf_xmalloc(size_t n);

/* A key under the run's prefix: writes prefix + formatted text into buf
 * (truncating at cap) and returns it as bytes pointing into buf. */
hermes_bytes conf_key(conf_ctx *c, char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
hermes_bytes conf_bytes(const void *p, size_t n);
hermes_bytes conf_str(const char *s);

/* Opens c->state from the run's config section; fails the check (with
 * open's message) when open() does. */
int conf_open(conf_ctx *c);

/* Calls into the plugin, serialized when the plugin is not thread-safe. */
int conf_get(conf_ctx *c, const hermes_bytes *keys, size_t n,
             hermes_value_cb cb, void *arg);
int conf_set(conf_ctx *c, const hermes_item *items, size_t n,
             hermes_value_cb cb, void *arg);
int conf_del(conf_ctx *c, const hermes_bytes *keys, size_t n);
int conf_lock(conf_ctx *c, hermes_bytes key, hermes_bytes token,
              uint32_t ttl_ms, int *acquired);
int conf_unlock(conf_ctx *c, hermes_bytes key, hermes_bytes token,
                int *released);
int conf_flush(conf_ctx *c, hermes_bytes prefix);
/* The optional operations of ABI 1.2; call only when the plugin has them
 * (HERMES_BACKEND_HAS_OP). */
int conf_lock_get(conf_ctx *c, hermes_bytes key, hermes_bytes token,
                  uint32_t ttl_ms, int *acquired, const hermes_bytes *keys,
                  size_t n, hermes_value_cb cb, void *arg);
int conf_set_unlock(conf_ctx *c, const hermes_item *items, size_t n,
                    hermes_bytes key, hermes_bytes token, int *released);
/* wait_unlock (ABI 1.3) is never serialized: the core calls it only for
 * thread-safe plugins. */
int conf_wait_unlock(conf_ctx *c, hermes_bytes key, uint64_t since_ns,
                     uint64_t until_ns, int *woken);
int conf_scan(conf_ctx *c, hermes_bytes prefix, hermes_scan_cb cb, void *arg);
int conf_stats(conf_ctx *c, hermes_stat_cb cb, void *arg);

/*
 * Collects what get() or set() reports through hermes_value_cb, checking
 * the callback's contract on the way: index in range, at most once per
 * index, from the calling thread.
 */
typedef struct conf_got_slot {
    int hits;            /* times this index was reported */
    unsigned char *data; /* copy of the last value reported (malloc) */
    size_t len;
} conf_got_slot;

typedef struct conf_got {
    size_t n;            /* number of keys or items passed */
    conf_got_slot *slot; /* n slots */
    pthread_t caller;
    int bad_index; /* an index >= n was reported */
    size_t bad_index_value;
    int wrong_thread; /* reported from another thread */
    int dup;          /* an index was reported twice */
} conf_got;

void conf_got_init(conf_got *g, size_t n);
void conf_got_free(conf_got *g);
void conf_got_cb(void *arg, size_t index, const void *value, size_t len);
/* Fails the check (naming op) if the callback broke its contract. */
int conf_got_check(conf_ctx *c, const conf_got *g, const char *op);
/* 1 when slot i holds exactly (p, n). */
int conf_got_is(const conf_got *g, size_t i, const void *p, size_t n);

/* Convenience: set one key (plain, ttl_ms) and fail the check on error. */
int conf_put(conf_ctx *c, hermes_bytes key, const void *v, size_t n,
             uint32_t ttl_ms);
/* Gets n keys into g (initialized here; the caller frees it when this
 * returns CONF_PASS), failing on an error or a broken callback. */
int conf_get_all(conf_ctx *c, const hermes_bytes *keys, size_t n, conf_got *g);
/*
 * Gets one key: returns CONF_PASS with *present and, when present, a
 * malloc'd copy in *val and *len (free it; NULL when absent), or CONF_FAIL
 * with the reason recorded.
 */
int conf_get1(conf_ctx *c, hermes_bytes key, int *present, unsigned char **val,
              size_t *len);
/* Fails unless key holds exactly (v, n); what names the situation. */
int conf_expect(conf_ctx *c, hermes_bytes key, const void *v, size_t n,
                const char *what);
/* Fails unless key is absent. */
int conf_expect_absent(conf_ctx *c, hermes_bytes key, const char *what);

/* Describes a value for messages: its length and first bytes escaped. */
const char *conf_show(const void *p, size_t n);

/*
 * How TTLs are judged (ttl_expiry, lock_ttl_takeover): a key or lock must
 * live at least its TTL counted from the moment its set() or lock() call
 * began - strictly, since a store rounds up, never down - and must be gone
 * from calls that begin CONF_TTL_LATE_MS after its set() returned.  The
 * lower bound needs no slack (a loaded machine only makes the kit see
 * later); the upper one, c->ttl_late_ms, is CONF_TTL_LATE_MS unless
 * --ttl-late says otherwise: a store counting whole seconds on a clock
 * ticking once a second, as memcached does, reads up to a second behind
 * and, when a tick is late, skips one, so never to drop a key early it must
 * keep it up to 2 s past its TTL (its test passes --ttl-late 2500).
 */
#define CONF_TTL_MS 1000
#define CONF_TTL_LATE_MS 1000
#define CONF_WALL_SKEW_MS ((int64_t)86400000)

/* The checks, one behaviour each (tools/conformance/checks_*.c). */
int check_descriptor(conf_ctx *c);
int check_open_rejects_unknown_key(conf_ctx *c);
int check_open(conf_ctx *c);
int check_two_states(conf_ctx *c);
int check_batch_duplicates(conf_ctx *c);
int check_lock_ttl_zero(conf_ctx *c);
int check_get_missing(conf_ctx *c);
int check_set_get_binary(conf_ctx *c);
int check_empty_value(conf_ctx *c);
int check_long_key(conf_ctx *c);
int check_value_limit(conf_ctx *c);
int check_get_batch(conf_ctx *c);
int check_overwrite(conf_ctx *c);
int check_set_if_absent(conf_ctx *c);
int check_ttl_expiry(conf_ctx *c);
int check_delete(conf_ctx *c);
int check_flush_prefix(conf_ctx *c);
int check_scan(conf_ctx *c);
int check_scan_stop(conf_ctx *c);
int check_stats(conf_ctx *c);
int check_lock_exclusive(conf_ctx *c);
int check_lock_race(conf_ctx *c);
int check_unlock_wrong_token(conf_ctx *c);
int check_unlock_owner(conf_ctx *c);
int check_lock_ttl_takeover(conf_ctx *c);
int check_lock_get(conf_ctx *c);
int check_set_unlock(conf_ctx *c);
int check_wait_unlock(conf_ctx *c);
int check_set_if_absent_race(conf_ctx *c);
int check_concurrency(conf_ctx *c);
int check_server_gone(conf_ctx *c);
int check_server_back(conf_ctx *c);

#endif
