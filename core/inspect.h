/*
 * The inspection layer (inspect.c): what hermesctl's views and
 * hermes-inspector show.  It attaches to an open handle, walks every key
 * under the handle's prefix through the backend's scan capability,
 * classifies each key (tag, entry, lock, published stats, unknown), decodes
 * entry records and lock tokens and the counters other processes publish
 * (publish.h), and judges each entry against the tag versions it finds:
 * fresh, stale (and which tag moved), expired, foreign or corrupt.
 *
 * Contract (kept stable; changes are additive only):
 *  - Everything is read-only: a scan writes nothing to the backend.
 *  - hm_inspect_scan() returns a snapshot the caller owns and frees with
 *    hm_snapshot_free(), its only deallocator.  Every pointer inside a
 *    snapshot (strings, arrays, pointers from one part to another) points
 *    into memory the snapshot owns and lives until that free; nothing in it
 *    points into the handle.  A snapshot is immutable once returned and may
 *    be read from any thread; hm_snapshot_free() is not concurrent with
 *    readers.
 *  - The scan runs on the calling thread (the inspector's refresh thread)
 *    and reports progress through a callback on that same thread, which may
 *    cancel it.  It may run concurrently with every other call on the same
 *    handle, from other threads (the demo's workload), and with other scans.
 *  - Strings are NUL-terminated.  Key text is shown as stored; names taken
 *    from keys are unescaped (%XX) where the key escaped them.
 *  - Times: *_ms fields are wall-clock ms since the Unix epoch (the
 *    snapshot's taken_ms is "now" for every age and TTL in it); TTLs left
 *    are ms, HM_TTL_NEVER for a key without expiry, HM_TTL_UNKNOWN when the
 *    backend does not say.
 *  - Verdicts are those of the library's own read (tags.h): an entry the
 *    snapshot calls fresh is one a call of its function would hit, as of
 *    the end of the scan (the tags are read again after the walk, so a tag
 *    that moved during a long scan counts as moved).
 */
#ifndef HERMES_CORE_INSPECT_H
#define HERMES_CORE_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hermes/hermes.h>

/* TTL left of a key (ms), special values (the backend scan's own). */
#define HM_TTL_NEVER (-1)   /* the key never expires */
#define HM_TTL_UNKNOWN (-2) /* the backend does not report TTLs */

/* ------------------------------------------------------ classification */

typedef enum hm_key_kind {
    HM_KEY_TAG = 0, /* "<prefix>:tag:<tag>", and "<prefix>:ns", the
                       namespace tag named "" of a backend that cannot
                       flush by prefix (taglist.h) */
    HM_KEY_ENTRY,   /* "<prefix>:entry:<name>:<arghash>" or a custom key */
    HM_KEY_LOCK,    /* "<prefix>:lock:<name>:<arghash>" */
    HM_KEY_STATS,   /* "<prefix>:stats:<host>:<pid>" (publish.h) */
    HM_KEY_UNKNOWN, /* anything else under "<prefix>:" */
    HM_KEY_KIND_COUNT
} hm_key_kind;

/* "tag", "entry", "lock", "stats", "unknown". */
const char *hm_key_kind_name(hm_key_kind k);

/* The kind of key (len bytes) under prefix (the config's prefix, without
 * the ':'); a key not under "<prefix>:" is HM_KEY_UNKNOWN.  Pure. */
hm_key_kind hm_inspect_classify(const char *prefix, const void *key,
                                size_t len);

/* ------------------------------------------------------------ verdicts */

typedef enum hm_state {
    HM_STATE_FRESH = 0, /* a call would hit it */
    HM_STATE_STALE,     /* computed under another version of a tag, or a
                           tag of it is gone (cleaned): see stale_tag */
    HM_STATE_EXPIRED,   /* past its logical expiry (created + TTL) while
                           the backend still holds it (a grace period) */
    HM_STATE_FOREIGN,   /* another record format, or a tag list that is
                           not its function's (a redeploy changed it) */
    HM_STATE_CORRUPT,   /* does not decode as a record of its key */
    HM_STATE_COUNT
} hm_state;

/* "fresh", "stale", "expired", "foreign", "corrupt". */
const char *hm_state_name(hm_state s);

/* ------------------------------------------------------------ snapshot */

/* A tag key and its current value. */
typedef struct hm_insp_tag {
    char *key;              /* "<prefix>:tag:<tag>" as stored */
    char *name;             /* the tag, or NULL when the key is hashed
                               ("#...") and no process named it */
    uint32_t tag_id;        /* hm_tag_id(name) (record.h); 0 when no name */
    unsigned char *version; /* the tag key's raw value (opaque bytes) */
    size_t version_len;     /* (a NUL follows the bytes) */
    uint64_t version_id;    /* hm_version_id(version): what records store */
    char version_text[40];  /* the version for display: the 22-character
                               text of a pickled str (what C and Python
                               write), else hex of version_id */
    int64_t ttl_ms;         /* TTL left, HM_TTL_NEVER, HM_TTL_UNKNOWN */
    size_t entries;         /* entries whose record carries this tag */
    size_t stale;           /* of those, stale because this tag moved */
    uint64_t stale_bytes;   /* their size */
} hm_insp_tag;

/* One tag of an entry's record, stored vs current. */
typedef struct hm_insp_etag {
    uint32_t tag_id;     /* as stored in the record */
    const char *name;    /* the tag's name when known (scanned tag key
                            or a process's tag list), else NULL */
    long tag;            /* index in hm_snapshot.tags, -1 when the tag
                            key does not exist (cleaned, or never
                            created) or its name is unknown */
    uint64_t stored_id;  /* version id the value was computed under */
    uint64_t current_id; /* version id of the tag's value now (0 when
                            the tag key does not exist) */
    bool moved;          /* stored_id != current_id, or the tag is gone */
} hm_insp_etag;

/* An entry key, its record decoded and judged. */
typedef struct hm_insp_entry {
    char *key;      /* the whole key as stored */
    const char *id; /* the key after "<prefix>:entry:" (into key) */
    char *function; /* the function that wrote it: from the key
                       (unescaped) or the record; NULL for a
                       hermes_set() record or when undecodable */
    hm_state state;
    bool expired;        /* past its logical expiry (also when the state
                            says stale: stale wins, as a tag is never
                            softened) */
    int format;          /* record format byte (2); 1 for "HRM1"; -1 when
                            not a record at all */
    size_t size;         /* bytes the backend holds for the key */
    size_t payload_len;  /* the value's bytes (0 unless decoded) */
    uint64_t created_ms; /* 0 unless decoded */
    uint32_t ttl_s;      /* the record's TTL; 0 = no expiry */
    uint64_t expiry_ms;  /* created + TTL; 0 = never */
    int64_t ttl_ms;      /* the backend's TTL left for the key */
    uint32_t compute_us; /* measured compute time of the value */
    size_t ntags;
    hm_insp_etag *tags; /* ntags, in the record's order */
    long stale_tag;     /* on HM_STATE_STALE: index in tags of the first
                           tag that moved; else -1 */
    const char *why;    /* one line on a foreign or corrupt verdict
                           (static text), else NULL */
} hm_insp_entry;

/* A lock key: who holds it, since when. */
typedef struct hm_insp_lock {
    char *key;         /* "<prefix>:lock:..." */
    char *entry_key;   /* the entry it guards: "<prefix>:entry:..." */
    char *token;       /* the raw owner token */
    bool token_ok;     /* the token parsed as "<host>:<pid>:<ms>:<r>" */
    char host[64];     /* owner host ("" when !token_ok) */
    long pid;          /* owner pid (0 when !token_ok) */
    uint64_t taken_ms; /* when it was taken */
    int64_t age_ms;    /* taken_ms to the snapshot's taken_ms */
    int64_t ttl_ms;    /* TTL left of the lock key */
} hm_insp_lock;

/* One registered function as a publishing process reports it. */
typedef struct hm_insp_fn {
    char *name;
    uint64_t hits, misses;
    size_t ntags;
    char **tags; /* its tag list, sorted */
} hm_insp_fn;

/* Lock-wait histogram: HM_LOCK_WAIT_BUCKETS fixed log2 buckets of
 * microseconds.  Bucket 0 counts waits under 2 us, bucket i (1 <= i <
 * last) waits of [2^i, 2^(i+1)) us, the last one waits of 2^23 us (8.4 s)
 * or more.  The counters are hermes_stats' lock_wait_us_* fields. */
#define HM_LOCK_WAIT_BUCKETS 24

/* A process's published counters (a "<prefix>:stats:<host>:<pid>" key). */
typedef struct hm_insp_proc {
    char *key;
    bool ok;         /* decoded; when false only key, why, ttl are set */
    const char *why; /* why not (static text), else NULL */
    char host[64];
    long pid;
    uint64_t published_ms; /* when it wrote these counters */
    uint32_t interval_ms;  /* how often it publishes */
    char backend[32];      /* its backend's name */
    int64_t ttl_ms;        /* TTL left of the key */
    hermes_stats stats;    /* counters it published (unknown: 0) */
    uint64_t lock_wait[HM_LOCK_WAIT_BUCKETS]; /* histogram, as in stats */
    size_t nfns;
    hm_insp_fn *fns;
} hm_insp_proc;

/* Totals of one function's entries (the garbage view). */
typedef struct hm_insp_func {
    char *name;                     /* NULL: hermes_set() records and
                                       undecodable entries */
    size_t count[HM_STATE_COUNT];   /* entries per state */
    uint64_t bytes[HM_STATE_COUNT]; /* their sizes */
} hm_insp_func;

typedef struct hm_snapshot {
    uint64_t taken_ms; /* wall clock at the end of the scan */
    uint64_t scan_ns;  /* how long the scan took */
    size_t nkeys;      /* keys the scan reported */
    bool complete;     /* false when cancelled or cut at max_keys */
    size_t count[HM_KEY_KIND_COUNT]; /* keys per kind */
    size_t ntags;
    hm_insp_tag *tags; /* sorted by name (hashed ones last, by key) */
    size_t nentries;
    hm_insp_entry *entries; /* sorted by key */
    size_t nlocks;
    hm_insp_lock *locks; /* sorted by key */
    size_t nprocs;
    hm_insp_proc *procs; /* sorted by host, then pid */
    size_t nunknown;
    char **unknown; /* the first HM_INSPECT_MAX_UNKNOWN unknown keys */
    size_t nfuncs;
    hm_insp_func *funcs; /* per function, sorted by name (NULL first) */
    size_t state_count[HM_STATE_COUNT];   /* entries per state */
    uint64_t state_bytes[HM_STATE_COUNT]; /* and their sizes */
} hm_snapshot;

#define HM_INSPECT_MAX_UNKNOWN 100

/* ---------------------------------------------------------------- scan */

typedef enum hm_scan_phase {
    HM_SCAN_WALK = 0, /* the backend's scan is reporting keys */
    HM_SCAN_FETCH,    /* tags (and values the scan did not give) are read
                         in batches with the backend's get */
    HM_SCAN_DONE      /* judged; the snapshot is about to be returned */
} hm_scan_phase;

typedef struct hm_scan_progress {
    hm_scan_phase phase;
    size_t keys;         /* keys reported so far */
    size_t fetched;      /* keys read in the fetch phase so far */
    size_t to_fetch;     /* keys the fetch phase reads in all */
    uint64_t elapsed_ns; /* since the scan started */
} hm_scan_progress;

/* Called on the scanning thread; non-zero cancels the scan, which then
 * returns HERMES_OK with a snapshot of what it saw (complete = false). */
typedef int (*hm_scan_progress_fn)(void *arg, const hm_scan_progress *p);

typedef struct hm_scan_opts {
    size_t size;                  /* sizeof(hm_scan_opts) */
    hm_scan_progress_fn progress; /* or NULL */
    void *arg;
    size_t progress_every; /* keys between progress calls (0: 1000) */
    size_t max_keys;       /* stop after this many keys (0: no limit) */
    size_t batch;          /* keys per get in the fetch phase (0: 256) */
} hm_scan_opts;

/*
 * Scans every key under h's prefix and returns a snapshot in *out (the
 * caller frees it with hm_snapshot_free()).  opts may be NULL.  Names of
 * tags and the tag lists of functions come from the scanned tag keys, from
 * the functions registered on h, and from the published stats of running
 * processes (which list each function's tags).
 *
 * Errors (message in hermes_errmsg(h)): HERMES_EINVAL (h or out NULL, a
 * failed handle), HERMES_EBACKEND ("backend NAME cannot list keys (no
 * scan capability)" for a backend without HERMES_CAP_SCAN, such as
 * memcached), the backend's own failure of the scan or a get as every call
 * reports it (HERMES_EBACKEND for a server down), HERMES_ENOMEM.  *out is
 * NULL on error.
 */
hermes_rc hm_inspect_scan(hermes *h, const hm_scan_opts *opts,
                          hm_snapshot **out);

/* Frees a snapshot and everything in it.  NULL is fine. */
void hm_snapshot_free(hm_snapshot *s);

/* ------------------------------------------------------------- helpers */

/* The entry whose key is key (whole key, or the id after
 * "<prefix>:entry:"), or NULL. */
const hm_insp_entry *hm_snapshot_entry(const hm_snapshot *s, const char *key);

/* The tag called name, or NULL. */
const hm_insp_tag *hm_snapshot_tag(const hm_snapshot *s, const char *name);

/*
 * The verdict of e in words, one line per fact, as `hermesctl explain`
 * prints it: the state and why, then each tag "tag NAME: stored ID, current
 * ID (moved|same|gone)".  Returns a malloc'ed string (free with
 * hermes_free), NULL when out of memory.
 */
char *hm_inspect_explain(const hm_snapshot *s, const hm_insp_entry *e);

/* A parsed lock token ("<host>:<pid>:<ms>:<random>", lock.h). */
typedef struct hm_lock_owner {
    char host[64];
    long pid;
    uint64_t taken_ms;
} hm_lock_owner;

/* Parses token (len bytes); 0, or -1 when it is not a lock token. */
int hm_lock_token_parse(const void *token, size_t len, hm_lock_owner *out);

/*
 * The p-th percentile (0 < p <= 100) of a lock-wait histogram
 * (HM_LOCK_WAIT_BUCKETS buckets, as above), in microseconds: the upper
 * bound of the bucket holding that rank (so the true value is at most it,
 * and at least half of it); 0 when the histogram is empty.  For the open
 * last bucket, its lower bound.
 */
uint64_t hm_lock_wait_percentile_us(const uint64_t *buckets, double p);

/* The histogram buckets of a hermes_stats, in order. */
void hm_stats_lock_wait(const hermes_stats *s,
                        uint64_t out[HM_LOCK_WAIT_BUCKETS]);

#endif
