/*
 * The "dict" backend: an in-process cache store behind the plugin ABI
 * (<hermes/backend.h>).  Keys are spread over a power-of-two number of
 * shards, each a chained hash table with its own mutex and CLOCK hand, so
 * threads touching different keys rarely meet; the text keys share up to
 * their last ':' is kept once for the whole store.  One memory budget,
 * max_bytes, covers them all: it bounds what the entries really cost - the
 * allocator's rounding and headers and the bucket arrays included - so the
 * process's memory stays within about 1.3 times max_bytes (README, "dict").
 * One entry may take up to a quarter of it.
 * Keys are hashed with SipHash-1-3 under a random key drawn at open(), so
 * chosen keys cannot pile up in one chain.  Entries may carry a TTL; an
 * expired entry is invisible at once and its memory is reclaimed when it
 * is next touched or when its shard needs room.
 *
 * Compiled once: built into libhermes (the core reaches it through
 * hm_dict_backend(), dict.h) and wrapped as the dict.la plugin (entry.c).
 */
#ifdef HAVE_CONFIG_H
#include <autoconfig.h>
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h> /* malloc_usable_size */
#endif
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hermes/backend.h>
#include <hermes/version.h>

#include "dict.h"
#include "siphash.h"

#define DICT_DEFAULT_SHARDS 16
#define DICT_MAX_SHARDS 1024
#define DICT_DEFAULT_MAX_BYTES ((uint64_t)64 << 20)
/* Below this much of max_bytes per shard the bucket arrays alone would
 * fill it; refusing it at open() beats a store where every set fails. */
#define DICT_MIN_SHARD_BUDGET 1024
/* One entry costs at most max_bytes / this (HERMES_BE_TOOBIG beyond). */
#define DICT_ENTRY_FRACTION 4
/* Entries this large are mapped on their own (page-rounded, returned to
 * the system when freed) instead of taken from the heap, where freed
 * large blocks fragment it and keep the process's memory high: with
 * 64 KiB, a flood of mixed sizes peaked at 1.26 x max_bytes, with 16 KiB
 * at 1.07 x (tests/unit/test_dict.c).  At most DICT_MAX_MAPPINGS at once,
 * far below the kernel's vm.max_map_count (65530 by default), which the
 * application's own mappings need too; beyond it they go to the heap. */
#define DICT_MMAP_MIN ((size_t)16 << 10)
#define DICT_MAX_MAPPINGS 16384
/* What malloc adds to each block beyond its usable size (glibc: one size
 * word; a conservative guess elsewhere). */
#define DICT_MALLOC_HEADER 16
#define DICT_INITIAL_BUCKETS 16
/* A shard full of TTL entries is swept for expired ones at most this
 * often: the sweep is linear in the shard, eviction must stay cheap. */
#define DICT_SWEEP_INTERVAL_MS 250
/* scan() copies out at most about this much of a shard per lock hold. */
#define DICT_SCAN_CHUNK_BYTES (256 * 1024)
#define DICT_SCAN_CHUNK_ITEMS 256

/* Eviction looks at most this many entries for one that was not used
 * since the clock hand last passed it; then it takes the one it is at. */
#define DICT_CLOCK_SCAN 64
/* Key prefixes (up to the key's last ':') each shard keeps once for all
 * of its entries: at most this many, each of at least DICT_PREFIX_MIN
 * and at most DICT_PREFIX_MAX bytes.  Beyond, a key is stored whole. */
#define DICT_MAX_PREFIXES 255
#define DICT_PREFIX_MIN 8
#define DICT_PREFIX_MAX 255
#define PREFIX_NONE 0xff

/*
 * 24 bytes before the key: every entry pays them, and a cached call's
 * entry is often not much bigger (README, "dict").  What an entry costs is
 * not stored but worked out again when it goes (entry_cost_of()), and its
 * hash only in part: the bucket of a key is found by hashing it again on
 * the rare path that needs it (growing), and 15 bits of the hash spare
 * most key comparisons in a chain.  No LRU links (16 bytes more, and a
 * relink on every read): eviction is CLOCK, one "used" bit per entry,
 * set by a read and cleared by the hand going round the buckets.
 *
 * The key's text up to its last ':' ("cache:entry:<name>:") is the same
 * for many entries; the shard keeps it once (struct prefix) and the entry
 * only its index, in its first data byte, then the rest of the key.
 */
struct entry {
    struct entry *next; /* hash chain */
    uint64_t meta;      /* expiry (monotonic ms, 0 = never) in the low
                           META_EXPIRES_BITS, 15 bits of the hash above,
                           META_USED on top */
    uint32_t klen;      /* ENTRY_MAPPED: its own mapping (munmap), not a
                           heap block; the rest is the length of the key
                           bytes it holds (after its prefix) */
    uint32_t vlen;
    unsigned char data[]; /* prefix index (PREFIX_NONE: the key is all
                             here), the key's bytes after the prefix, then
                             the value's */
};

#define META_EXPIRES_BITS 48
#define META_EXPIRES_MAX ((UINT64_C(1) << META_EXPIRES_BITS) - 1)
#define META_TAG_MASK 0x7fffu
#define META_USED (UINT64_C(1) << 63)
#define ENTRY_MAPPED 0x80000000u
/* The longest key and value an entry holds (HERMES_BE_TOOBIG beyond). */
#define ENTRY_MAX_KEY (ENTRY_MAPPED - 1)
#define ENTRY_MAX_VALUE UINT32_MAX

/* A key prefix shared by entries of one shard. */
struct prefix {
    uint32_t refs; /* entries holding it, and stores about to */
    uint32_t len;
    uint64_t hash; /* spares most comparisons when looking one up */
    unsigned char bytes[];
};

static uint64_t entry_expires(const struct entry *e)
{
    return e->meta & META_EXPIRES_MAX;
}

/* A monotonic time too far ahead to fit (8900 years) never comes. */
static void entry_set_expires(struct entry *e, uint64_t ms)
{
    e->meta = (e->meta & ~META_EXPIRES_MAX) |
              (ms > META_EXPIRES_MAX ? META_EXPIRES_MAX : ms);
}

/* Bits neither the shard (the top ones) nor, but in shards of more than
 * 2^32 buckets, the bucket (the bottom ones) depends on. */
static uint16_t hash_tag(uint64_t hash)
{
    return (uint16_t)((hash >> 32) & META_TAG_MASK);
}

static uint16_t entry_tag(const struct entry *e)
{
    return (uint16_t)((e->meta >> META_EXPIRES_BITS) & META_TAG_MASK);
}

/* A read marks the entry used; written only when it was not, so hot keys
 * do not dirty their cache line on every read. */
static void entry_touch(struct entry *e)
{
    if (!(e->meta & META_USED))
        e->meta |= META_USED;
}

static size_t entry_klen(const struct entry *e)
{
    return e->klen & ~ENTRY_MAPPED;
}

static bool entry_mapped(const struct entry *e)
{
    return (e->klen & ENTRY_MAPPED) != 0;
}

struct shard {
    /* Shards sit side by side; the alignment keeps one shard's lock and
     * counters off its neighbours' cache lines. */
    _Alignas(64) pthread_mutex_t mu;
    struct entry **buckets;
    size_t mask; /* buckets - 1 */
    size_t count;
    size_t ttl_count;    /* entries with a TTL; 0 lets eviction skip sweeps */
    size_t hand;         /* the CLOCK hand: the bucket eviction looks at */
    uint64_t next_sweep; /* monotonic ms */
    uint64_t evictions;
    uint64_t expired;
};

/* The key bytes e holds after its prefix. */
static const unsigned char *entry_rest(const struct entry *e)
{
    return e->data + 1;
}

typedef struct dict {
    const hermes_host *host;
    hm_sipkey sipkey;
    struct shard *shards;
    size_t nshards;
    uint64_t max_bytes; /* 0 = unlimited */
    size_t max_entry;   /* largest entry cost, 0 = unlimited */
    /* The cost of every entry and bucket array, plus what set() has
     * reserved for entries it is about to insert.  Kept at or below
     * max_bytes by evicting before allocating. */
    _Atomic size_t used;
    _Atomic size_t evict_cursor; /* spreads cross-shard eviction */
    /* The cost of the entries alone, for stats(): one counter, so that it
     * is a snapshot, not a sum of shards read at different times. */
    _Atomic size_t entry_bytes;
    _Atomic size_t mappings; /* entries with mapped set */
    /* The key prefixes entries share: DICT_MAX_PREFIXES slots (NULL:
     * free), allocated with the first.  prefix_mu guards the slots and the
     * counts; an entry's prefix is read under its shard's lock alone,
     * being alive and unchanging while the entry holds it. */
    pthread_mutex_t prefix_mu;
    struct prefix **prefixes;
    struct dict *fork_prev, *fork_next; /* every open dict, for fork() */
} dict;

/* The prefix of e's key, NULL when e holds all of it. */
static const struct prefix *entry_prefix(const dict *d, const struct entry *e)
{
    return e->data[0] == PREFIX_NONE ? NULL : d->prefixes[e->data[0]];
}

/*
 * fork() while other threads are inside the store: the child would inherit
 * a shard mutex held by a thread that does not exist there and hang on it.
 * The handlers take every shard lock of every open dict before the fork
 * and release them on both sides after it, so the child starts with a
 * consistent, unlocked store (glibc drops the handlers if the module is
 * unloaded).
 */
static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static dict *fork_list;

static void fork_prepare(void)
{
    pthread_mutex_lock(&fork_mu);
    for (dict *d = fork_list; d != NULL; d = d->fork_next) {
        for (size_t i = 0; i < d->nshards; i++)
            pthread_mutex_lock(&d->shards[i].mu);
        pthread_mutex_lock(&d->prefix_mu);
    }
}

static void fork_release(void)
{
    for (dict *d = fork_list; d != NULL; d = d->fork_next) {
        pthread_mutex_unlock(&d->prefix_mu);
        for (size_t i = d->nshards; i-- > 0;)
            pthread_mutex_unlock(&d->shards[i].mu);
    }
    pthread_mutex_unlock(&fork_mu);
}

static void fork_setup(void)
{
    pthread_atfork(fork_prepare, fork_release, fork_release);
}

static void fork_track(dict *d)
{
    pthread_once(&fork_once, fork_setup);
    pthread_mutex_lock(&fork_mu);
    d->fork_prev = NULL;
    d->fork_next = fork_list;
    if (fork_list != NULL)
        fork_list->fork_prev = d;
    fork_list = d;
    pthread_mutex_unlock(&fork_mu);
}

static void fork_untrack(dict *d)
{
    pthread_mutex_lock(&fork_mu);
    if (d->fork_prev != NULL)
        d->fork_prev->fork_next = d->fork_next;
    else if (fork_list == d)
        fork_list = d->fork_next;
    if (d->fork_next != NULL)
        d->fork_next->fork_prev = d->fork_prev;
    pthread_mutex_unlock(&fork_mu);
}

/* "now" is read from the clock only when an entry with a TTL is met. */
#define NOW_UNSET UINT64_MAX

static uint64_t clock_ms(const dict *d)
{
    return d->host->monotonic_ns(d->host->ctx) / 1000000u;
}

static uint64_t now_ms(const dict *d, uint64_t *now)
{
    if (*now == NOW_UNSET)
        *now = clock_ms(d);
    return *now;
}

/* Both times are whole milliseconds, rounded down: an entry set at 1000.9
 * with a 1 ms TTL has expires = 1001 and must still live at 1001.0, so it
 * expires only once the clock has passed that millisecond (TTLs round up,
 * never down; for locks, down would mean two owners at once). */
static bool is_expired(const dict *d, const struct entry *e, uint64_t *now)
{
    uint64_t expires = entry_expires(e);
    return expires != 0 && expires < now_ms(d, now);
}

static const unsigned char *entry_value(const struct entry *e)
{
    return entry_rest(e) + entry_klen(e);
}

static bool bytes_equal(const void *a, const void *b, size_t len)
{
    return len == 0 || memcmp(a, b, len) == 0;
}

/* Whether e's key is key: its rest first, where keys sharing a prefix
 * differ. */
static bool entry_is(const dict *d, const struct entry *e, hermes_bytes key)
{
    const struct prefix *p = entry_prefix(d, e);
    size_t plen = p ? p->len : 0;

    return plen + entry_klen(e) == key.len &&
           bytes_equal(entry_rest(e), (const char *)key.data + plen,
                       entry_klen(e)) &&
           (p == NULL || memcmp(p->bytes, key.data, plen) == 0);
}

/* The bytes an entry holds, for klen bytes of key after its prefix; false
 * when it does not fit a size_t. */
static bool entry_size(size_t klen, size_t vlen, size_t *size)
{
    size_t base = sizeof(struct entry) + 1;

    if (klen > ENTRY_MAX_KEY || vlen > ENTRY_MAX_VALUE ||
        klen > SIZE_MAX - base - DICT_MMAP_MIN ||
        vlen > SIZE_MAX - base - DICT_MMAP_MIN - klen)
        return false;
    *size = base + klen + vlen;
    return true;
}

static size_t page_size(void)
{
    /* Threads may race to fill it in; they all write the same value. */
    static _Atomic size_t page;
    size_t v = atomic_load_explicit(&page, memory_order_relaxed);

    if (v == 0) {
        long p = sysconf(_SC_PAGESIZE);
        v = p > 0 ? (size_t)p : 4096;
        atomic_store_explicit(&page, v, memory_order_relaxed);
    }
    return v;
}

/*
 * What an entry of size bytes costs before it is allocated: a mapping is
 * whole pages; a heap block is rounded up to 16 bytes plus a header.  An
 * upper bound, corrected to the allocator's real figure once allocated.
 */
static size_t entry_cost(size_t size)
{
    if (size >= DICT_MMAP_MIN)
        return (size + page_size() - 1) / page_size() * page_size();
    return (size + 15) / 16 * 16 + DICT_MALLOC_HEADER;
}

/* The cost of an allocated heap block, as the allocator sees it. */
static size_t heap_cost(void *p, size_t size)
{
#if defined(__GLIBC__)
    (void)size;
    return malloc_usable_size(p) + DICT_MALLOC_HEADER;
#else
    (void)p;
    return entry_cost(size);
#endif
}

/* What an allocated entry took from max_bytes: the figure entry_new()
 * charged, worked out again the same way. */
static size_t entry_cost_of(const struct entry *e)
{
    size_t size = sizeof(*e) + 1 + entry_klen(e) + e->vlen;

    return entry_mapped(e) ? entry_cost(size) : heap_cost((void *)e, size);
}

static void entry_free(dict *d, struct entry *e)
{
    if (entry_mapped(e)) {
        munmap(e, entry_cost(sizeof(*e) + 1 + entry_klen(e) + e->vlen));
        atomic_fetch_sub(&d->mappings, 1);
    } else {
        free(e);
    }
}

static uint64_t hash_key(const dict *d, hermes_bytes key)
{
    return hm_siphash13(&d->sipkey, key.data, key.len);
}

static uint64_t entry_hash(const dict *d, const struct entry *e)
{
    const struct prefix *p = entry_prefix(d, e);

    return hm_siphash13_2(&d->sipkey, p ? p->bytes : NULL, p ? p->len : 0,
                          entry_rest(e), entry_klen(e));
}

/* Shards take the top bits and buckets the bottom bits of the hash, so
 * the keys of one shard still spread over all of its buckets. */
static struct shard *shard_of(const dict *d, uint64_t hash)
{
    return &d->shards[(size_t)(hash >> 54) & (d->nshards - 1)];
}

/* --------------------------------------------------------- key prefixes */

/* The length of key's prefix worth keeping once: up to and including its
 * last ':', 0 when there is none that long or the key is no longer. */
static size_t prefix_len_of(hermes_bytes key)
{
    const unsigned char *k = key.data;
    size_t n = key.len;

    while (n > 0 && k[n - 1] != ':')
        n--;
    return n >= DICT_PREFIX_MIN && n <= DICT_PREFIX_MAX && n < key.len ? n : 0;
}

/*
 * The index of the prefix of those plen bytes of key, made when there is
 * none, with one more reference; PREFIX_NONE when DICT_MAX_PREFIXES are
 * kept already or memory ran out (the key is then stored whole).  A
 * prefix's cost goes to d->used like a bucket array's: eviction makes up
 * for it.  May be called with a shard locked (prefix_mu comes after).
 */
static unsigned prefix_ref(dict *d, hermes_bytes key, size_t plen)
{
    uint64_t hash = hm_siphash13(&d->sipkey, key.data, plen);
    unsigned slot = PREFIX_NONE;
    struct prefix *p;

    pthread_mutex_lock(&d->prefix_mu);
    if (d->prefixes == NULL) {
        d->prefixes = calloc(DICT_MAX_PREFIXES, sizeof(*d->prefixes));
        if (d->prefixes == NULL)
            goto out;
        atomic_fetch_add(&d->used, DICT_MAX_PREFIXES * sizeof(*d->prefixes));
    }
    for (unsigned i = 0; i < DICT_MAX_PREFIXES; i++) {
        p = d->prefixes[i];
        if (p == NULL) {
            if (slot == PREFIX_NONE)
                slot = i;
        } else if (p->hash == hash && p->len == plen &&
                   memcmp(p->bytes, key.data, plen) == 0) {
            p->refs++;
            slot = i;
            goto out;
        }
    }
    if (slot == PREFIX_NONE || (p = malloc(sizeof(*p) + plen)) == NULL) {
        slot = PREFIX_NONE;
        goto out;
    }
    p->refs = 1;
    p->len = (uint32_t)plen;
    p->hash = hash;
    memcpy(p->bytes, key.data, plen);
    d->prefixes[slot] = p;
    size_t cost = heap_cost(p, sizeof(*p) + plen);
    atomic_fetch_add(&d->used, cost);
    atomic_fetch_add(&d->entry_bytes, cost);
out:
    pthread_mutex_unlock(&d->prefix_mu);
    return slot;
}

/* Drops one reference to prefix i (PREFIX_NONE: none), freeing it with the
 * last. */
static void prefix_unref(dict *d, unsigned i)
{
    struct prefix *p;

    if (i == PREFIX_NONE)
        return;
    pthread_mutex_lock(&d->prefix_mu);
    p = d->prefixes[i];
    if (--p->refs == 0) {
        size_t cost = heap_cost(p, sizeof(*p) + p->len);
        atomic_fetch_sub(&d->entry_bytes, cost);
        atomic_fetch_sub(&d->used, cost);
        free(p);
        d->prefixes[i] = NULL;
    }
    pthread_mutex_unlock(&d->prefix_mu);
}

/* Returns the link that points at the entry for key, or at the NULL that
 * ends its chain; the link form lets callers unlink without a second walk. */
static struct entry **find_link(const dict *d, struct shard *s, uint64_t hash,
                                hermes_bytes key)
{
    struct entry **link = &s->buckets[hash & s->mask];
    struct entry *e;

    while ((e = *link) != NULL) {
        if (entry_tag(e) == hash_tag(hash) && entry_is(d, e, key))
            break;
        link = &e->next;
    }
    return link;
}

/* Unlinks *link from its chain and frees it. */
static void remove_at(dict *d, struct shard *s, struct entry **link)
{
    struct entry *e = *link;

    size_t cost = entry_cost_of(e);

    *link = e->next;
    s->count--;
    if (entry_expires(e))
        s->ttl_count--;
    atomic_fetch_sub(&d->entry_bytes, cost);
    atomic_fetch_sub(&d->used, cost);
    prefix_unref(d, e->data[0]);
    entry_free(d, e);
}

/* Doubles the bucket array once the chains average more than one entry.
 * Failing to allocate only makes chains longer, so it is not an error. */
static void maybe_grow(dict *d, struct shard *s)
{
    size_t n = s->mask + 1, i;
    struct entry **nb;

    if (s->count <= n || n > SIZE_MAX / 2 / sizeof(*nb))
        return;
    nb = calloc(n * 2, sizeof(*nb));
    if (nb == NULL)
        return;
    for (i = 0; i < n; i++) {
        struct entry *e = s->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            uint64_t b = entry_hash(d, e) & (n * 2 - 1);
            e->next = nb[b];
            nb[b] = e;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->mask = n * 2 - 1;
    s->hand &= s->mask;
    /* The table is part of the cost; eviction makes up for it later. */
    atomic_fetch_add(&d->used, n * sizeof(*nb));
}

/* Inserts e, of that hash, whose cost is already in d->used. */
static void insert_entry(dict *d, struct shard *s, struct entry *e,
                         uint64_t hash)
{
    struct entry **head = &s->buckets[hash & s->mask];

    e->next = *head;
    *head = e;
    s->count++;
    if (entry_expires(e))
        s->ttl_count++;
    atomic_fetch_add(&d->entry_bytes, entry_cost_of(e));
    maybe_grow(d, s);
}

static void sweep_expired(dict *d, struct shard *s, uint64_t *now)
{
    size_t i;

    for (i = 0; i <= s->mask && s->ttl_count > 0; i++) {
        struct entry **link = &s->buckets[i];
        while (*link != NULL) {
            if (is_expired(d, *link, now)) {
                remove_at(d, s, link);
                s->expired++;
            } else {
                link = &(*link)->next;
            }
        }
    }
}

static bool over_budget(dict *d)
{
    return d->max_bytes != 0 && atomic_load(&d->used) > d->max_bytes;
}

/*
 * Removes one entry of s by CLOCK: from the hand on, an expired entry
 * goes at once, a used one loses its mark and is passed, and the first
 * one found unused is evicted; after DICT_CLOCK_SCAN entries without one
 * (a shard whose entries are all being read), the one the hand is at
 * goes, so that evicting stays cheap.  s is locked and not empty.
 */
static void clock_evict(dict *d, struct shard *s, uint64_t *now)
{
    for (unsigned seen = 0;; s->hand = (s->hand + 1) & s->mask) {
        struct entry **link = &s->buckets[s->hand];
        while (*link != NULL) {
            struct entry *e = *link;
            if (is_expired(d, e, now)) {
                s->expired++;
                remove_at(d, s, link);
                return;
            }
            if (!(e->meta & META_USED) || ++seen >= DICT_CLOCK_SCAN) {
                s->evictions++;
                remove_at(d, s, link);
                return;
            }
            e->meta &= ~META_USED;
            link = &e->next;
        }
    }
}

/*
 * Evicts until d->used fits max_bytes: expired entries first (they are
 * garbage anyway), then those of each shard not used lately (CLOCK),
 * starting with home and going on round the others.  Called with no shard
 * locked (it locks one at a time).  What it cannot free is held by other
 * threads' reservations, which their own eviction deals with.
 */
static void evict(dict *d, struct shard *home)
{
    size_t start = atomic_fetch_add(&d->evict_cursor, 1);

    for (size_t k = 0; k <= d->nshards && over_budget(d); k++) {
        struct shard *s =
            k == 0 ? home : &d->shards[(start + k) & (d->nshards - 1)];
        uint64_t now = NOW_UNSET;

        pthread_mutex_lock(&s->mu);
        if (s->ttl_count > 0 && now_ms(d, &now) >= s->next_sweep) {
            sweep_expired(d, s, &now);
            s->next_sweep = now + DICT_SWEEP_INTERVAL_MS;
        }
        while (over_budget(d) && s->count > 0)
            clock_evict(d, s, &now);
        pthread_mutex_unlock(&s->mu);
    }
}

/*
 * Allocates an unlinked entry outside any lock, so a large value is copied
 * without stalling the shard, after reserving its cost (evicting first,
 * so the store never holds more than max_bytes, even for a moment).  The
 * entry holds key after its first plen bytes, the prefix of index pi
 * (PREFIX_NONE: plen is 0).  Returns NULL when out of memory, with
 * nothing reserved.
 */
static struct entry *entry_new(dict *d, struct shard *s, uint64_t hash,
                               hermes_bytes key, size_t plen, unsigned pi,
                               hermes_bytes value, size_t size)
{
    size_t cost = entry_cost(size);
    struct entry *e;

    atomic_fetch_add(&d->used, cost);
    evict(d, s);
    e = NULL;
    if (size >= DICT_MMAP_MIN &&
        atomic_fetch_add(&d->mappings, 1) < DICT_MAX_MAPPINGS) {
        void *p = mmap(NULL, cost, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED)
            e = p;
    }
    if (e != NULL) {
        e->klen = ENTRY_MAPPED;
    } else {
        if (size >= DICT_MMAP_MIN)
            atomic_fetch_sub(&d->mappings, 1);
        e = malloc(size);
        if (e == NULL) {
            atomic_fetch_sub(&d->used, cost);
            return NULL;
        }
        /* The allocator's own figure, which the estimate bounds. */
        size_t real = heap_cost(e, size);
        if (real < cost)
            atomic_fetch_sub(&d->used, cost - real);
        else
            atomic_fetch_add(&d->used, real - cost);
        e->klen = 0;
    }
    e->meta = (uint64_t)hash_tag(hash) << META_EXPIRES_BITS;
    e->klen |= (uint32_t)(key.len - plen);
    e->vlen = (uint32_t)value.len;
    e->data[0] = (unsigned char)pi;
    if (key.len > plen)
        memcpy(e->data + 1, (const char *)key.data + plen, key.len - plen);
    if (value.len)
        memcpy(e->data + 1 + key.len - plen, value.data, value.len);
    return e;
}

/* Frees an entry never inserted, returning its reservation; its prefix
 * reference is dropped by the caller, under the shard's lock. */
static void entry_discard(dict *d, struct entry *e)
{
    atomic_fetch_sub(&d->used, entry_cost_of(e));
    entry_free(d, e);
}

/* ------------------------------------------------------------ operations */

static int dict_get(void *state, const hermes_bytes *keys, size_t n,
                    hermes_value_cb cb, void *arg)
{
    dict *d = state;
    size_t i;

    if (cb == NULL)
        return HERMES_BE_INVALID;
    for (i = 0; i < n; i++) {
        uint64_t hash = hash_key(d, keys[i]);
        struct shard *s = shard_of(d, hash);
        uint64_t now = NOW_UNSET;
        struct entry **link, *e;

        pthread_mutex_lock(&s->mu);
        link = find_link(d, s, hash, keys[i]);
        e = *link;
        if (e != NULL) {
            if (is_expired(d, e, &now)) {
                remove_at(d, s, link);
                s->expired++;
            } else {
                entry_touch(e);
                /* The core copies the value, so holding the lock across
                 * the callback is cheaper than copying it here. */
                cb(arg, i, entry_value(e), e->vlen);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return HERMES_BE_OK;
}

static void del_one(dict *d, hermes_bytes key)
{
    uint64_t hash = hash_key(d, key);
    struct shard *s = shard_of(d, hash);
    struct entry **link;

    pthread_mutex_lock(&s->mu);
    link = find_link(d, s, hash, key);
    if (*link != NULL)
        remove_at(d, s, link);
    pthread_mutex_unlock(&s->mu);
}

/*
 * Stores one item.  With if_absent, a live entry wins and the value the
 * key holds afterwards goes to cb; *stored says whether ours went in.
 */
static int store(dict *d, hermes_bytes key, hermes_bytes value, uint32_t ttl_ms,
                 bool if_absent, size_t index, hermes_value_cb cb, void *arg,
                 bool *stored)
{
    uint64_t hash, now = NOW_UNSET;
    struct shard *s;
    struct entry **link, *e;
    size_t size, plen = prefix_len_of(key);
    unsigned pi = PREFIX_NONE;

    *stored = false;
    /* The limit is on the whole key, wherever its prefix is kept. */
    if (!entry_size(key.len, value.len, &size) ||
        (d->max_entry != 0 && entry_cost(size) > d->max_entry))
        return HERMES_BE_TOOBIG;
    hash = hash_key(d, key);
    s = shard_of(d, hash);
    if (if_absent || plen) {
        pthread_mutex_lock(&s->mu);
        /* A live key wins at once: no allocation, and no eviction that
         * might remove the very lock this call competes for. */
        link = if_absent ? find_link(d, s, hash, key) : NULL;
        if (link && *link != NULL && !is_expired(d, *link, &now)) {
            entry_touch(*link);
            if (cb != NULL)
                cb(arg, index, entry_value(*link), (*link)->vlen);
            pthread_mutex_unlock(&s->mu);
            return HERMES_BE_OK;
        }
        if (plen && (pi = prefix_ref(d, key, plen)) == PREFIX_NONE)
            plen = 0;
        pthread_mutex_unlock(&s->mu);
        entry_size(key.len - plen, value.len, &size);
    }
    e = entry_new(d, s, hash, key, plen, pi, value, size);
    if (e == NULL) {
        if (pi != PREFIX_NONE) {
            pthread_mutex_lock(&s->mu);
            prefix_unref(d, pi);
            pthread_mutex_unlock(&s->mu);
        }
        return HERMES_BE_NOMEM;
    }
    if (ttl_ms != 0)
        entry_set_expires(e, now_ms(d, &now) + ttl_ms);
    /* New entries count as used: the hand spares them once. */
    e->meta |= META_USED;

    pthread_mutex_lock(&s->mu);
    link = find_link(d, s, hash, key);
    if (*link != NULL) {
        if (!is_expired(d, *link, &now)) {
            if (if_absent) {
                entry_touch(*link);
                if (cb != NULL)
                    cb(arg, index, entry_value(*link), (*link)->vlen);
                prefix_unref(d, pi);
                pthread_mutex_unlock(&s->mu);
                entry_discard(d, e);
                return HERMES_BE_OK;
            }
        } else {
            s->expired++;
        }
        remove_at(d, s, link);
    }
    insert_entry(d, s, e, hash);
    if (if_absent && cb != NULL)
        cb(arg, index, entry_value(e), e->vlen);
    pthread_mutex_unlock(&s->mu);
    *stored = true;
    return HERMES_BE_OK;
}

/* Every item is attempted; the first failure is returned. */
static int dict_set(void *state, const hermes_item *items, size_t n,
                    hermes_value_cb cb, void *arg)
{
    dict *d = state;
    int rc = HERMES_BE_OK;
    size_t i;

    for (i = 0; i < n; i++) {
        const hermes_item *it = &items[i];
        bool if_absent = (it->flags & HERMES_SET_IF_ABSENT) != 0, stored;
        int r = store(d, it->key, it->value, it->ttl_ms, if_absent, i, cb, arg,
                      &stored);

        if (r != HERMES_BE_OK) {
            /* An overwrite that fails must not leave the old value to be
             * served as if it were current. */
            if (!if_absent)
                del_one(d, it->key);
            if (rc == HERMES_BE_OK)
                rc = r;
        }
    }
    return rc;
}

static int dict_del(void *state, const hermes_bytes *keys, size_t n)
{
    dict *d = state;
    size_t i;

    for (i = 0; i < n; i++)
        del_one(d, keys[i]);
    return HERMES_BE_OK;
}

static int dict_lock(void *state, hermes_bytes key, hermes_bytes token,
                     uint32_t ttl_ms, int *acquired)
{
    bool stored;
    int rc;

    *acquired = 0;
    if (ttl_ms == 0)
        return HERMES_BE_INVALID;
    rc = store(state, key, token, ttl_ms, true, 0, NULL, NULL, &stored);
    if (rc == HERMES_BE_OK)
        *acquired = stored;
    return rc;
}

static int dict_unlock(void *state, hermes_bytes key, hermes_bytes token,
                       int *released)
{
    dict *d = state;
    uint64_t hash = hash_key(d, key), now = NOW_UNSET;
    struct shard *s = shard_of(d, hash);
    struct entry **link, *e;

    *released = 0;
    pthread_mutex_lock(&s->mu);
    link = find_link(d, s, hash, key);
    e = *link;
    if (e != NULL) {
        if (is_expired(d, e, &now)) {
            remove_at(d, s, link);
            s->expired++;
        } else if (e->vlen == token.len &&
                   bytes_equal(entry_value(e), token.data, token.len)) {
            remove_at(d, s, link);
            *released = 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return HERMES_BE_OK;
}

/* ABI 1.2's fused operations: in process there is no round trip to save,
 * but the core's miss then takes one call where it took two. */
static int dict_lock_get(void *state, hermes_bytes key, hermes_bytes token,
                         uint32_t ttl_ms, int *acquired,
                         const hermes_bytes *keys, size_t n, hermes_value_cb cb,
                         void *arg)
{
    int rc = dict_lock(state, key, token, ttl_ms, acquired);

    return rc != HERMES_BE_OK ? rc : dict_get(state, keys, n, cb, arg);
}

static int dict_set_unlock(void *state, const hermes_item *items, size_t n,
                           hermes_bytes key, hermes_bytes token, int *released)
{
    int rc = dict_set(state, items, n, NULL, NULL);
    int urc = dict_unlock(state, key, token, released);

    return rc != HERMES_BE_OK ? rc : urc;
}

/* Whether e's key starts with prefix (a flush's or a scan's). */
static bool has_prefix(const dict *d, const struct entry *e,
                       hermes_bytes prefix)
{
    const struct prefix *p = entry_prefix(d, e);
    size_t plen = p ? p->len : 0, head = prefix.len < plen ? prefix.len : plen;

    return plen + entry_klen(e) >= prefix.len &&
           (head == 0 || memcmp(p->bytes, prefix.data, head) == 0) &&
           bytes_equal(entry_rest(e), (const char *)prefix.data + head,
                       prefix.len - head);
}

static int dict_flush(void *state, hermes_bytes prefix)
{
    dict *d = state;
    size_t i, b;

    for (i = 0; i < d->nshards; i++) {
        struct shard *s = &d->shards[i];

        pthread_mutex_lock(&s->mu);
        for (b = 0; b <= s->mask && s->count > 0; b++) {
            struct entry **link = &s->buckets[b];
            while (*link != NULL) {
                if (has_prefix(d, *link, prefix))
                    remove_at(d, s, link);
                else
                    link = &(*link)->next;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return HERMES_BE_OK;
}

/* --------------------------------------------------------------- scan */

/* Copies of entries taken out of a shard, so the callback runs unlocked.
 * Records are a header followed by key and value bytes. */
struct scan_rec {
    size_t klen;
    size_t vlen;
    int64_t ttl_ms;
};

struct scan_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
    size_t count;
};

static bool scan_buf_add(struct scan_buf *b, const dict *d,
                         const struct entry *e, int64_t ttl_ms)
{
    const struct prefix *pre = entry_prefix(d, e);
    size_t plen = pre ? pre->len : 0, klen = plen + entry_klen(e);
    struct scan_rec rec = {klen, e->vlen, ttl_ms};
    size_t need = sizeof(rec) + klen + e->vlen;
    unsigned char *at;

    if (need > SIZE_MAX - b->len)
        return false;
    if (b->len + need > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *p;
        while (cap < b->len + need)
            cap = cap > SIZE_MAX / 2 ? b->len + need : cap * 2;
        p = realloc(b->data, cap);
        if (p == NULL)
            return false;
        b->data = p;
        b->cap = cap;
    }
    at = b->data + b->len;
    memcpy(at, &rec, sizeof(rec));
    at += sizeof(rec);
    if (plen)
        memcpy(at, pre->bytes, plen);
    memcpy(at + plen, entry_rest(e), entry_klen(e) + e->vlen);
    b->len += need;
    b->count++;
    return true;
}

/*
 * The next bucket of a reverse-binary cursor (the order Redis's SCAN
 * uses): the high bits of the index are incremented first, so when the
 * table doubles between two chunks the buckets already visited map to
 * buckets before the cursor, and no key is skipped or reported twice.
 */
static size_t next_cursor(size_t v, size_t mask)
{
    size_t r = 0, i;

    v |= ~mask;
    for (i = 0; i < sizeof(v) * CHAR_BIT; i++)
        r = (r << 1) | ((v >> i) & 1);
    r++;
    v = 0;
    for (i = 0; i < sizeof(r) * CHAR_BIT; i++)
        v = (v << 1) | ((r >> i) & 1);
    return v;
}

/* Copies the live entries of whole buckets from *cursor on until a chunk
 * is full; *cursor becomes 0 when the shard is done. */
static bool scan_chunk(dict *d, struct shard *s, hermes_bytes prefix,
                       size_t *cursor, struct scan_buf *b)
{
    uint64_t now = NOW_UNSET;
    size_t v = *cursor;
    bool ok = true;

    pthread_mutex_lock(&s->mu);
    do {
        struct entry **link = &s->buckets[v & s->mask];
        while (*link != NULL) {
            struct entry *e = *link;
            if (is_expired(d, e, &now)) {
                remove_at(d, s, link);
                s->expired++;
                continue;
            }
            if (has_prefix(d, e, prefix)) {
                uint64_t exp = entry_expires(e);
                int64_t ttl = exp ? (int64_t)(exp - now) : -1;
                if (!scan_buf_add(b, d, e, ttl)) {
                    ok = false;
                    break;
                }
            }
            link = &e->next;
        }
        v = next_cursor(v, s->mask);
    } while (ok && v != 0 && b->len < DICT_SCAN_CHUNK_BYTES &&
             b->count < DICT_SCAN_CHUNK_ITEMS);
    pthread_mutex_unlock(&s->mu);
    *cursor = v;
    return ok;
}

static int dict_scan(void *state, hermes_bytes prefix, hermes_scan_cb cb,
                     void *arg)
{
    dict *d = state;
    struct scan_buf b = {NULL, 0, 0, 0};
    int rc = HERMES_BE_OK;
    bool stop = false;
    size_t i;

    if (cb == NULL)
        return HERMES_BE_INVALID;
    for (i = 0; i < d->nshards && !stop; i++) {
        size_t cursor = 0;
        do {
            size_t off = 0;
            b.len = b.count = 0;
            if (!scan_chunk(d, &d->shards[i], prefix, &cursor, &b)) {
                rc = HERMES_BE_NOMEM;
                stop = true;
                break;
            }
            while (off < b.len && !stop) {
                struct scan_rec rec;
                const unsigned char *p;
                memcpy(&rec, b.data + off, sizeof(rec));
                p = b.data + off + sizeof(rec);
                stop = cb(arg, p, rec.klen, p + rec.klen, rec.vlen,
                          rec.ttl_ms) != 0;
                off += sizeof(rec) + rec.klen + rec.vlen;
            }
        } while (cursor != 0 && !stop);
    }
    free(b.data);
    return rc;
}

/* -------------------------------------------------------------- stats */

static void stat_u64(hermes_stat_cb cb, void *arg, const char *name,
                     uint64_t value)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRIu64, value);
    cb(arg, name, buf);
}

static int dict_stats(void *state, hermes_stat_cb cb, void *arg)
{
    dict *d = state;
    uint64_t entries = 0, bytes = 0, evictions = 0, expired = 0;
    uint64_t buckets = 0;
    size_t i;

    if (cb == NULL)
        return HERMES_BE_INVALID;
    for (i = 0; i < d->nshards; i++) {
        struct shard *s = &d->shards[i];
        pthread_mutex_lock(&s->mu);
        entries += s->count;
        evictions += s->evictions;
        expired += s->expired;
        buckets += s->mask + 1;
        pthread_mutex_unlock(&s->mu);
    }
    stat_u64(cb, arg, "entries", entries);
    bytes = atomic_load(&d->entry_bytes);
    stat_u64(cb, arg, "bytes", bytes);
    stat_u64(cb, arg, "max_bytes", d->max_bytes);
    stat_u64(cb, arg, "evictions", evictions);
    stat_u64(cb, arg, "expired", expired);
    stat_u64(cb, arg, "shards", d->nshards);
    stat_u64(cb, arg, "buckets", buckets);
    return HERMES_BE_OK;
}

/* --------------------------------------------------------- open, close */

/* Parses "123", "64k", "64M", "1g" (multiples of 1024). */
static bool parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0, mult = 1;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    switch (*s) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = (uint64_t)1 << 10;
        break;
    case 'm':
    case 'M':
        mult = (uint64_t)1 << 20;
        break;
    case 'g':
    case 'G':
        mult = (uint64_t)1 << 30;
        break;
    default:
        return false;
    }
    if (*s != '\0' && s[1] != '\0')
        return false;
    if (v > UINT64_MAX / mult || v * mult > SIZE_MAX)
        return false;
    *out = v * mult;
    return true;
}

static bool parse_shards(const char *s, size_t *out)
{
    unsigned long v;
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > DICT_MAX_SHARDS ||
        (v & (v - 1)) != 0)
        return false;
    *out = v;
    return true;
}

static int open_fail(hermes_open_error *err, int kv_index, int rc,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int open_fail(hermes_open_error *err, int kv_index, int rc,
                     const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->kv_index = kv_index;
    }
    return rc;
}

static void dict_close(void *state)
{
    dict *d = state;
    size_t i, b;

    if (d == NULL)
        return;
    fork_untrack(d);
    for (i = 0; i < d->nshards; i++) {
        struct shard *s = &d->shards[i];
        for (b = 0; s->buckets != NULL && b <= s->mask; b++) {
            struct entry *e = s->buckets[b], *next;
            for (; e != NULL; e = next) {
                next = e->next;
                entry_free(d, e);
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    for (i = 0; d->prefixes != NULL && i < DICT_MAX_PREFIXES; i++)
        free(d->prefixes[i]);
    free(d->prefixes);
    pthread_mutex_destroy(&d->prefix_mu);
    free(d->shards);
    free(d);
}

static int dict_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                     void **state, hermes_open_error *err)
{
    size_t nshards = DICT_DEFAULT_SHARDS, i;
    uint64_t max_bytes = DICT_DEFAULT_MAX_BYTES;
    int max_bytes_at = -1;
    unsigned char seed[16];
    dict *d;

    *state = NULL;
    if (err != NULL) {
        err->msg[0] = '\0';
        err->kv_index = -1;
    }
    if (host == NULL || host->monotonic_ns == NULL || host->random == NULL)
        return open_fail(err, -1, HERMES_BE_INVALID,
                         "host lacks the clock or random service");
    for (i = 0; i < n; i++) {
        const char *k = kv[i].key, *v = kv[i].value;
        int at = i < INT_MAX ? (int)i : INT_MAX;

        if (k != NULL && strcmp(k, "max_bytes") == 0) {
            if (!parse_size(v, &max_bytes))
                return open_fail(err, at, HERMES_BE_INVALID,
                                 "max_bytes: not a size: '%.64s'", v ? v : "");
            max_bytes_at = at;
        } else if (k != NULL && strcmp(k, "shards") == 0) {
            if (!parse_shards(v, &nshards))
                return open_fail(err, at, HERMES_BE_INVALID,
                                 "shards: not a power of two from 1 to %d: "
                                 "'%.64s'",
                                 DICT_MAX_SHARDS, v ? v : "");
        } else {
            return open_fail(err, at, HERMES_BE_INVALID,
                             "unknown key '%.64s' (known: max_bytes, shards)",
                             k ? k : "");
        }
    }
    if (max_bytes != 0 && max_bytes / nshards < DICT_MIN_SHARD_BUDGET)
        return open_fail(err, max_bytes_at, HERMES_BE_INVALID,
                         "max_bytes: at least %zu needed for %zu shards",
                         (size_t)DICT_MIN_SHARD_BUDGET * nshards, nshards);
    if (host->random(host->ctx, seed, sizeof(seed)) != 0)
        return open_fail(err, -1, HERMES_BE_IO,
                         "no random bytes for the hash key");

    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return open_fail(err, -1, HERMES_BE_NOMEM, "out of memory");
    d->host = host;
    if (pthread_mutex_init(&d->prefix_mu, NULL) != 0) {
        free(d);
        return open_fail(err, -1, HERMES_BE_NOMEM, "out of memory");
    }
    hm_sipkey_init(&d->sipkey, seed);
    d->max_bytes = max_bytes;
    d->max_entry = (size_t)(max_bytes / DICT_ENTRY_FRACTION);
    atomic_init(&d->used,
                nshards * DICT_INITIAL_BUCKETS * sizeof(struct entry *));
    atomic_init(&d->evict_cursor, 0);
    atomic_init(&d->mappings, 0);
    atomic_init(&d->entry_bytes, 0);
    d->shards =
        aligned_alloc(_Alignof(struct shard), nshards * sizeof(struct shard));
    if (d->shards == NULL) {
        free(d);
        return open_fail(err, -1, HERMES_BE_NOMEM, "out of memory");
    }
    memset(d->shards, 0, nshards * sizeof(struct shard));
    for (i = 0; i < nshards; i++) {
        struct shard *s = &d->shards[i];
        s->mask = DICT_INITIAL_BUCKETS - 1;
        s->buckets = calloc(DICT_INITIAL_BUCKETS, sizeof(*s->buckets));
        if (s->buckets == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->buckets);
            d->nshards = i;
            dict_close(d);
            return open_fail(err, -1, HERMES_BE_NOMEM, "out of memory");
        }
    }
    d->nshards = nshards;
    fork_track(d);
    *state = d;
    return HERMES_BE_OK;
}

static const hermes_backend dict_backend = {
    .abi_major = HERMES_BACKEND_ABI_MAJOR,
    .abi_minor = HERMES_BACKEND_ABI_MINOR,
    .struct_size = sizeof(hermes_backend),
    .name = "dict",
    .version = HERMES_VERSION, /* released with the library */
    .description = "in-process sharded hash table with TTL and CLOCK eviction",
    .caps = HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN | HERMES_CAP_STATS,
    .max_key_len = 0,
    .open = dict_open,
    .close = dict_close,
    .get = dict_get,
    .set = dict_set,
    .del = dict_del,
    .lock = dict_lock,
    .unlock = dict_unlock,
    .flush = dict_flush,
    .scan = dict_scan,
    .stats = dict_stats,
    .lock_get = dict_lock_get,
    .set_unlock = dict_set_unlock,
};

const hermes_backend *hm_dict_backend(void)
{
    return &dict_backend;
}
