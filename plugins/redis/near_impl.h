/*
 * What near.c (the table and the read path) and invalidate.c (the reader
 * of the invalidation connection) share.  Not for the rest of the plugin:
 * redis.c sees only near.h.
 */
#ifndef HERMES_REDIS_NEAR_IMPL_H
#define HERMES_REDIS_NEAR_IMPL_H

#include "near.h"
#include "siphash.h"

/* Shards of the table: each its own lock, memory budget and clock. */
#define RNEAR_SHARDS 64u

typedef struct nentry nentry;

typedef struct nshard {
    pthread_rwlock_t lock;
    nentry **buckets; /* chains by hash */
    size_t nbuckets;  /* a power of two, or 0 before the first insert */
    size_t count;
    size_t bytes; /* charged for the entries held */
    nentry *head; /* newest first; the clock hand takes the tail */
    nentry *tail;
} __attribute__((aligned(64))) nshard;

typedef struct rnear_counters {
#define RNEAR__FIELD(name, text) atomic_uint_fast64_t name;
    RNEAR_STATS_MAP(RNEAR__FIELD)
#undef RNEAR__FIELD
} rnear_counters;

struct rnear {
    size_t bytes, max_item_bytes, shard_limit;
    uint32_t ping_ms;
    char *prefix;     /* near_prefix */
    char *tracked[2]; /* "<prefix>:entry:", "<prefix>:tag:" */
    size_t tracked_len[2];
    hm_sipkey key; /* random: bucket positions unpredictable */
    rnear_fetch_fn fetch;
    void *fetch_state;

    const hermes_host *host; /* the core's */
    hermes_host own;         /* what the invalidation pool sees (near.c) */
    rpool inv;               /* the invalidation connection (one) */

    /* Tracking is established: reads may be answered and filled.  Set
     * by the reader once subscribed; cleared (before the table is
     * emptied) on any loss. */
    atomic_int alive;
    atomic_int closing; /* rnear_free() has begun */
    atomic_int warned;  /* a key outside near_prefix was reported */
    atomic_uint_fast64_t next_token;
    atomic_size_t entries, held; /* gauges */

    pthread_mutex_t mu; /* the reader's lifecycle, below */
    pthread_cond_t cv;  /* signalled on stop */
    int running;        /* a reader thread exists in this process */
    int stop;           /* rnear_free() asks the reader to end */
    int fd;             /* the connection's socket while reading, or -1 */
    rpool_conn *conn;   /* the reader's connection, or NULL */
    unsigned gen;       /* fork generation of running/conn */
    pthread_t thread;
    void *stack; /* the reader's (invalidate.c) */

    rnear_counters c;
    nshard shards[RNEAR_SHARDS];

    hm_forklist_entry fork; /* mu registered for fork() (near.c) */
};

#define RNEAR_COUNT(nr, name)                                                  \
    atomic_fetch_add_explicit(&(nr)->c.name, 1, memory_order_relaxed)

/*
 * Test seam: when set (only tests set it, before opening), the reader
 * calls it for each key an invalidation message names, just before
 * evicting it (evicted 0) and just after (1), so a test can tell which
 * invalidations were delivered.
 * NULL in production.
 */
extern void (*rnear_observer)(const char *key, size_t len, int evicted);

/* Remove one key (an invalidation): pending or filled alike. */
void rnear_evict(rnear *nr, const char *key, size_t len);

/* Empty every shard (alive is already cleared, or a flush message came
 * while tracking goes on). */
void rnear_clear(rnear *nr);

/* The reader thread (invalidate.c): started by rnear_get, stopped by
 * rnear_free.  Called with nr->mu held. */
int rnear_reader_start_locked(rnear *nr);
void rnear_reader_stop(rnear *nr);

#endif /* HERMES_REDIS_NEAR_IMPL_H */
