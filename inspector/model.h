/*
 * The inspector's model: one snapshot of what lives under a cache's prefix
 * (tags, entries, locks, the processes' published counters) plus what the
 * inspector derives from it (how many entries carry each tag and how many
 * of those are stale, the garbage stale entries cost, contention summed
 * over processes).  Everything the screen, the text dump and the JSON dump
 * show comes from here, and everything here is plain data and pure
 * functions, so the tests build models by hand without a backend or a
 * terminal.
 *
 * A model owns every string and array it points to (the insp_model_add_*
 * builders copy their arguments); insp_model_free() releases it all.
 */
#ifndef HERMES_INSPECTOR_MODEL_H
#define HERMES_INSPECTOR_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An entry's verdict against the current tag versions. */
#define INSP_STATE_MAP(X)                                                      \
    X(FRESH, "fresh", "every stored tag version is current")                   \
    X(STALE, "stale", "a tag moved since the value was computed")              \
    X(EXPIRED, "expired", "its TTL has passed")                                \
    X(FOREIGN, "foreign",                                                      \
      "written by another function, tag list or format: the next call "        \
      "overwrites it")                                                         \
    X(CORRUPT, "corrupt", "the record does not decode under its key")

typedef enum insp_state {
#define INSP__STATE_ENUM(id, name, text) INSP_##id,
    INSP_STATE_MAP(INSP__STATE_ENUM)
#undef INSP__STATE_ENUM
        INSP_NSTATES
} insp_state;

/* "fresh", "stale", ... and a sentence saying what it means. */
const char *insp_state_name(insp_state s);
const char *insp_state_text(insp_state s);

/* No TTL (the entry or lock never expires) in the *_ttl_ms fields. */
#define INSP_NO_TTL INT64_MIN

/*
 * Lock waits are counted in a log2 histogram: bucket 0 holds waits under
 * 1 µs, bucket i (i >= 1) waits in [2^(i-1), 2^i) µs, the last bucket
 * everything longer.
 */
#define INSP_HIST_BUCKETS 32

/* One tag of an entry: the version it was computed under against now. */
typedef struct insp_tag_ref {
    char *name;      /* NULL while no scanned tag has this id */
    uint32_t id;     /* the record's tag id */
    uint64_t stored; /* the record's version id */
    uint64_t current;
    bool present; /* the tag's key exists (current is its version id) */
    long tag;     /* index in the model's tags (insp_model_resolve), -1 */
} insp_tag_ref;

typedef struct insp_entry {
    char *key;      /* the backend key, prefix included */
    char *function; /* "" for a hermes_set() record */
    char *id;       /* argument hash or custom key */
    uint64_t size;  /* bytes of the stored record */
    int64_t ttl_left_ms;
    int64_t created_ms; /* ms since the epoch, 0 unknown */
    uint32_t compute_us;
    insp_tag_ref *tags;
    size_t ntags;
    insp_state state;
    char *moved;  /* stale: the tag that moved, NULL if unknown */
    char *reason; /* the verdict in the inspection layer's words, or NULL */
} insp_entry;

typedef struct insp_tag {
    char *name;
    char *version;       /* printable current version, "" when gone */
    uint64_t version_id; /* what entries store */
    uint32_t id;         /* the tag id entries store */
    bool gone;           /* its key no longer exists (cleaned) */
    /* derived (insp_model_aggregate) */
    size_t entries; /* entries carrying it */
    size_t stale;   /* of those, stale */
    /* carried across snapshots (insp_model_track) */
    int64_t changed_ms; /* when the inspector saw it change; 0 never */
} insp_tag;

typedef struct insp_lock {
    char *entry; /* the locked entry's name (the lock key's suffix) */
    char *host;
    long pid;
    int64_t age_ms; /* -1 unknown */
    int64_t ttl_left_ms;
} insp_lock;

typedef struct insp_fn_stats {
    char *name;
    uint64_t hits;
    uint64_t misses;
} insp_fn_stats;

/* One process's published counters. */
typedef struct insp_proc {
    char *host;
    long pid;
    uint64_t hits, misses, computations, coalesced;
    uint64_t lock_acquired, lock_contended, lock_timeouts, backend_errors;
    uint64_t wait_hist[INSP_HIST_BUCKETS];
    insp_fn_stats *fns;
    size_t nfns;
    int64_t age_ms; /* since it published them, -1 unknown */
} insp_proc;

/* Garbage of one function: entries and bytes, all and stale. */
typedef struct insp_garbage {
    char *function;
    size_t entries, stale;
    uint64_t bytes, stale_bytes;
} insp_garbage;

/* Lock contention summed over every process. */
typedef struct insp_contention {
    uint64_t acquired, contended, timeouts, coalesced;
    uint64_t wait_hist[INSP_HIST_BUCKETS];
    uint64_t p50_us, p90_us, p99_us; /* bucket upper bounds, 0 no waits */
} insp_contention;

typedef struct insp_model {
    char *backend;
    char *prefix;
    char *error;      /* why the last refresh failed, or NULL */
    int64_t taken_ms; /* when the snapshot was taken */
    uint64_t keys_scanned;
    uint64_t scan_us;

    insp_tag *tags;
    size_t ntags;
    insp_entry *entries;
    size_t nentries;
    insp_lock *locks;
    size_t nlocks;
    insp_proc *procs;
    size_t nprocs;

    /* derived (insp_model_aggregate) */
    insp_garbage *garbage; /* one per function, stale bytes first */
    size_t ngarbage;
    insp_garbage total; /* function NULL */
    size_t by_state[INSP_NSTATES];
    insp_contention contention;

    struct insp_views *views; /* insp_view_cached's, allocated on use */
} insp_model;

void insp_model_init(insp_model *m);
void insp_model_free(insp_model *m);

/*
 * Builders: each copies its strings and returns the new element (whose
 * remaining fields the caller may fill), or NULL when memory ran out.
 */
insp_tag *insp_model_add_tag(insp_model *m, const char *name,
                             const char *version, uint32_t id,
                             uint64_t version_id);
insp_entry *insp_model_add_entry(insp_model *m, const char *key,
                                 const char *function, const char *id,
                                 uint64_t size, insp_state state);
insp_tag_ref *insp_entry_add_tag(insp_entry *e, const char *name, uint32_t id,
                                 uint64_t stored);
/* Sets e->moved, e->reason (copies; NULL clears). 0, or -1 out of memory. */
int insp_entry_set_moved(insp_entry *e, const char *tag);
int insp_entry_set_reason(insp_entry *e, const char *reason);
insp_lock *insp_model_add_lock(insp_model *m, const char *entry,
                               const char *host, long pid);
insp_proc *insp_model_add_proc(insp_model *m, const char *host, long pid);
insp_fn_stats *insp_proc_add_fn(insp_proc *p, const char *name);
/* Sets a string field of the model (copies). 0, or -1 out of memory. */
int insp_model_set_str(char **field, const char *value);

/*
 * Resolves each entry's tag references against the model's tags (by name,
 * else by id), so that current and present say what the tag holds now,
 * and names the tag that moved for a stale entry that does not say.
 * 0, or -1 out of memory.
 */
int insp_model_resolve(insp_model *m);

/*
 * Computes the derived fields (after insp_model_resolve): per tag how many
 * entries carry it and how many of those are stale, the garbage per function
 * and in total, the count of entries per state and the contention over all
 * processes. Idempotent.  0, or -1 out of memory.
 */
int insp_model_aggregate(insp_model *m);

/*
 * Carries what only a sequence of snapshots knows from prev into next: when
 * each tag last changed (a new version, a new tag after the first snapshot,
 * a tag whose key went away), and the names of tags that went away while
 * entries still carry them, which are kept in next as gone tags so that
 * the screen can show what an invalidation did.  Call before
 * insp_model_resolve and insp_model_aggregate.  0, or -1 out of memory.
 */
int insp_model_track(insp_model *next, const insp_model *prev, int64_t now_ms);

/*
 * The p-th percentile (0 < p <= 100) of a log2 histogram, as the upper
 * bound in µs of the bucket that holds it (1 for bucket 0); 0 when the
 * histogram is empty.  The last bucket, unbounded, reports its lower bound.
 */
uint64_t insp_hist_percentile(const uint64_t *hist, size_t nbuckets, double p);
/* The bucket of a wait of us microseconds. */
size_t insp_hist_bucket(uint64_t us);

/* ---------------------------------------------------------- views */

/* The panes, in Tab order. */
#define INSP_PANE_MAP(X)                                                       \
    X(TAGS, "Tags")                                                            \
    X(ENTRIES, "Entries")                                                      \
    X(GARBAGE, "Garbage")                                                      \
    X(LOCKS, "Locks")                                                          \
    X(PROCS, "Processes")

typedef enum insp_pane {
#define INSP__PANE_ENUM(id, title) INSP_PANE_##id,
    INSP_PANE_MAP(INSP__PANE_ENUM)
#undef INSP__PANE_ENUM
        INSP_NPANES
} insp_pane;

const char *insp_pane_title(insp_pane p);

/* Number of rows of a pane in the model (before filtering). */
size_t insp_pane_len(const insp_model *m, insp_pane p);

/* The sort orders of each pane, cycled by `s`; 0 is the pane's default. */
size_t insp_sort_count(insp_pane p);
const char *insp_sort_name(insp_pane p, size_t sort);

/*
 * Whether row i of pane p contains the filter (a substring of its name,
 * function, key, tags, owner, case-insensitive); an empty or NULL filter
 * matches everything.
 */
bool insp_row_matches(const insp_model *m, insp_pane p, size_t i,
                      const char *filter);

/*
 * Fills idx (room for insp_pane_len entries) with the rows of pane p that
 * match filter, in sort order (ties by name, so the order is stable across
 * refreshes).  Returns how many.
 */
size_t insp_view(const insp_model *m, insp_pane p, const char *filter,
                 size_t sort, size_t *idx);

/*
 * The same view, computed once and kept in the model until the filter,
 * the sort or the number of rows changes (the screen asks for it at every
 * frame and key; sorting a large keyspace each time would make it lag).
 * Returns the indices (owned by the model, valid until the next call for
 * this pane or insp_model_free) and their count in *n; NULL (with *n 0)
 * when memory ran out.  Not for concurrent use of one model.
 */
const size_t *insp_view_cached(const insp_model *m, insp_pane p,
                               const char *filter, size_t sort, size_t *n);

/*
 * A row's identity, which survives a refresh (a tag's name, an entry's
 * key, a function, a lock's entry, host:pid), written to buf; the
 * selection follows it.
 */
void insp_row_key(const insp_model *m, insp_pane p, size_t i, char *buf,
                  size_t cap);

#endif
