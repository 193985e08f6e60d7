/*
 * The redis plugin's near cache: recently read keys held in process memory
 * and answered without a round trip, kept correct by redis's
 * server-assisted invalidation (CLIENT TRACKING).
 *
 * One invalidation connection per plugin state (invalidate.c) enables
 * tracking in broadcast mode for the tracked prefixes ("<p>:entry:" and
 * "<p>:tag:") with REDIRECT to itself, and subscribes to
 * __redis__:invalidate over RESP2: every change of a key under those
 * prefixes, by any client, reaches it as a message naming the key (a null
 * list when the database was flushed).  Broadcast mode makes the tracking
 * independent of the data connections: redis 7.0 tells nobody when a
 * tracked data connection dies (redis#11767), so with default tracking an
 * idle pooled connection killed by the server (CLIENT KILL, `timeout`)
 * would leave its keys untracked without our knowing.
 *
 * Correctness rules (near.c):
 *  - a read that misses installs a placeholder for each key before the
 *    request is sent; an invalidation removes it; the reply fills only a
 *    placeholder that is still the one this read installed;
 *  - the whole near cache is dropped, before the next read is answered,
 *    when the invalidation connection breaks, stops answering its
 *    heartbeat PING, or the server reports a flush;
 *  - this process's own writes and deletes evict its copies once the
 *    server has applied them;
 *  - a held key that a reply contradicts (its invalidation still on the
 *    way) is evicted: once the process has seen the newer state it never
 *    reads the older one from the table;
 *  - after fork() the child starts empty and opens its own connection.
 *
 * Ownership: rnear_new() copies what it needs; rnear_free() stops the
 * reader thread and frees everything.
 */
#ifndef HERMES_REDIS_NEAR_H
#define HERMES_REDIS_NEAR_H

#include "pool.h"

#include <hermes/backend.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* What the near cache needs from the config (redis.c parses it). */
typedef struct rnear_settings {
    int enabled;           /* near_cache = yes */
    size_t bytes;          /* near_cache_bytes: memory bound */
    size_t max_item_bytes; /* near_max_item_bytes: larger values bypass */
    const char *prefix;    /* near_prefix: the core's [hermes] prefix */
    uint32_t ping_ms;      /* near_ping_ms: heartbeat interval */
} rnear_settings;

#define RNEAR_BYTES_DEFAULT (64u << 20)
#define RNEAR_ITEM_DEFAULT (256u << 10)
#define RNEAR_PING_DEFAULT 500u
#define RNEAR_KEYS                                                             \
    "near_cache, near_cache_bytes, near_max_item_bytes, near_prefix, "         \
    "near_ping_ms"

/*
 * The counters, one list: X(name, description).  Drops are counted by
 * cause; each drop empties the whole near cache.
 */
#define RNEAR_STATS_MAP(X)                                                     \
    X(hits, "reads answered from the near cache")                              \
    X(misses, "reads that went to the server and filled the near cache")       \
    X(bypass, "reads not eligible (keys outside near_prefix, or tracking "     \
              "not established)")                                              \
    X(fills, "keys installed from a server reply")                             \
    X(fills_refused, "keys not installed: invalidated while in flight")        \
    X(invalidations, "keys named by invalidation messages")                    \
    X(contradicted, "held keys evicted because a reply said otherwise first")  \
    X(evictions, "keys evicted to stay within near_cache_bytes")               \
    X(own_writes, "keys evicted by this process's own writes")                 \
    X(drops_connection, "drops: the invalidation connection broke")            \
    X(drops_heartbeat, "drops: no answer to the heartbeat PING")               \
    X(drops_server_flush, "drops: the server reported FLUSHDB/FLUSHALL")       \
    X(drops_local_flush, "drops: this process flushed the prefix")             \
    X(drops_fork, "drops: a fork child started empty")                         \
    X(tracking_starts, "invalidation connections established")

typedef enum rnear_cause {
    RNEAR_DROP_CONNECTION,
    RNEAR_DROP_HEARTBEAT,
    RNEAR_DROP_SERVER_FLUSH,
    RNEAR_DROP_LOCAL_FLUSH,
    RNEAR_DROP_FORK,
} rnear_cause;

/* The underlying read: the plugin's MGET (redis_get). */
typedef int (*rnear_fetch_fn)(void *state, const hermes_bytes *keys, size_t n,
                              hermes_value_cb cb, void *arg);

typedef struct rnear rnear;

/* A near cache for the server of s (its own connection pool, size 1).
 * Starts nothing: the reader thread starts with the first read.  Returns
 * HERMES_BE_OK or _NOMEM. */
int rnear_new(rnear **out, const hermes_host *host, const rpool_settings *s,
              const rnear_settings *ns, rnear_fetch_fn fetch,
              void *fetch_state);

/* Stop the reader (bounded by command_timeout_ms) and free everything. */
void rnear_free(rnear *nr);

/* get() through the near cache: answered locally when every key is held,
 * else one fetch whose reply fills the near cache. */
int rnear_get(rnear *nr, const hermes_bytes *keys, size_t n, hermes_value_cb cb,
              void *arg);

/* Evict these keys (after this process wrote or deleted them). */
void rnear_forget(rnear *nr, const hermes_bytes *keys, size_t n);
void rnear_forget_items(rnear *nr, const hermes_item *items, size_t n);

/* Empty the near cache, counting the drop under cause. */
void rnear_drop(rnear *nr, rnear_cause cause);

/* Report the counters and gauges (near_*) through cb. */
void rnear_stats(rnear *nr, hermes_stat_cb cb, void *arg);

#endif /* HERMES_REDIS_NEAR_H */
