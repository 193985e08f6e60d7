/*
 * The near cache's table and read path: 64 shards, each a hash table
 * under a read-write lock with its own memory budget and a clock (second
 * chance) for eviction.  A hit takes the read locks of the shards its
 * keys live in and nothing else: no lock of the connection pool, no
 * system call.  See near.h for the rules that keep it correct; the
 * comments here say where each is enforced.
 */
#include "near_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NE_PENDING, NE_VALUE, NE_ABSENT };

struct nentry {
    nentry *hnext;       /* hash chain */
    nentry *prev, *next; /* shard list, newest first */
    uint64_t hash;
    uint64_t token; /* the read that installed it (placeholder owner) */
    size_t klen, vlen;
    atomic_uchar ref;    /* read since the clock hand last passed */
    unsigned char state; /* NE_* */
    char data[];         /* the key, then the value */
};

/* What one entry is charged: itself, its bytes, the allocator's header. */
static size_t entry_cost(size_t klen, size_t vlen)
{
    return sizeof(nentry) + klen + vlen + 16;
}

/* ------------------------------------------------------------- fork */

/*
 * fork(): the child must not inherit a lock held by a parent thread, nor
 * use the parent's invalidation connection (its messages go to the
 * parent), nor trust entries whose invalidations will go to the parent.
 * Each near cache's mu is registered with the plugin's fork registry
 * (forklist.h), whose handlers hold it across fork() (the reader's
 * lifecycle stays consistent), but not the shard locks: a parent thread
 * may be halfway through changing a shard, so the child does not walk
 * the copied entries at all.  It abandons them (copy-on-write pages it
 * never touches again), starts from empty shards with fresh locks,
 * clears alive, and its first read starts a reader of its own
 * (ensure_reader), which knows the parent's reader by its fork
 * generation.
 *
 * Lock order: mu is held while a connection goes back to the
 * invalidation pool (ensure_reader, rnear_reader_stop), so mu comes
 * before that pool's lock.  rnear_new() registers mu after the pool,
 * and the handlers take the newest registration first.
 */
static void forked(void *self)
{
    rnear *nr = self;

    atomic_store(&nr->alive, 0);
    nr->running = 0; /* the parent's thread does not exist here */
    nr->fd = -1;     /* nor may its socket be shut down from here */
    for (unsigned s = 0; s < RNEAR_SHARDS; s++) {
        nshard *sh = &nr->shards[s];

        memset(sh, 0, sizeof *sh);
        pthread_rwlock_init(&sh->lock, NULL);
    }
    atomic_store(&nr->entries, 0);
    atomic_store(&nr->held, 0);
}

/* -------------------------------------------------------- lifecycle */

static char *concat(const char *a, const char *b, size_t *len)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);

    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
        *len = la + lb;
    }
    return s;
}

/*
 * The host the invalidation connection's pool sees.  Its thread runs no
 * operation of the core, so it must not attach error details (ABI 1.1):
 * the host is presented as 1.0.  Its log lines are dropped once
 * rnear_free() has begun, since shutting the socket down to wake the
 * reader makes the pool report a closed connection.
 */
static void own_log(void *ctx, int level, const char *msg)
{
    rnear *nr = ctx;

    if (!atomic_load(&nr->closing) && nr->host->log)
        nr->host->log(nr->host->ctx, level, msg);
}

static uint64_t own_now_ms(void *ctx)
{
    rnear *nr = ctx;

    return nr->host->now_ms(nr->host->ctx);
}

static uint64_t own_monotonic_ns(void *ctx)
{
    rnear *nr = ctx;

    return nr->host->monotonic_ns(nr->host->ctx);
}

static int own_random(void *ctx, void *buf, size_t len)
{
    rnear *nr = ctx;

    return nr->host->random(nr->host->ctx, buf, len);
}

static void own_host(rnear *nr)
{
    const hermes_host *h = nr->host;

    nr->own = (hermes_host){
        .struct_size = HERMES_HOST_SIZE_1_0,
        .ctx = nr,
        .log = own_log,
        .now_ms = h->now_ms ? own_now_ms : NULL,
        .monotonic_ns = h->monotonic_ns ? own_monotonic_ns : NULL,
        .random = h->random ? own_random : NULL,
        .config_source = h->config_source,
    };
}

int rnear_new(rnear **out, const hermes_host *host, const rpool_settings *s,
              const rnear_settings *ns, rnear_fetch_fn fetch, void *fetch_state)
{
    unsigned char seed[16];
    rpool_settings is = *s;
    rnear *nr = calloc(1, sizeof *nr);

    if (!nr)
        return HERMES_BE_NOMEM;
    nr->bytes = ns->bytes;
    nr->max_item_bytes = ns->max_item_bytes;
    nr->shard_limit = ns->bytes / RNEAR_SHARDS;
    nr->ping_ms = ns->ping_ms;
    nr->fetch = fetch;
    nr->fetch_state = fetch_state;
    nr->fd = -1;
    nr->prefix = strdup(ns->prefix);
    nr->tracked[0] = concat(ns->prefix, ":entry:", &nr->tracked_len[0]);
    nr->tracked[1] = concat(ns->prefix, ":tag:", &nr->tracked_len[1]);
    nr->host = host;
    own_host(nr);
    is.size = 1;
    if (!nr->prefix || !nr->tracked[0] || !nr->tracked[1] ||
        rpool_init(&nr->inv, &nr->own, &is) != HERMES_BE_OK) {
        free(nr->prefix);
        free(nr->tracked[0]);
        free(nr->tracked[1]);
        free(nr);
        return HERMES_BE_NOMEM;
    }
    if (!host->random || host->random(host->ctx, seed, sizeof seed) != 0)
        for (size_t i = 0; i < sizeof seed; i++) /* no worse than unkeyed */
            seed[i] = (unsigned char)(((uintptr_t)nr >> (i % 8)) ^ i);
    hm_sipkey_init(&nr->key, seed);
    for (unsigned i = 0; i < RNEAR_SHARDS; i++)
        pthread_rwlock_init(&nr->shards[i].lock, NULL);
    pthread_mutex_init(&nr->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    /* The reader's pauses are timed on the monotonic clock. */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&nr->cv, &ca);
    pthread_condattr_destroy(&ca);
    nr->gen = hm_forklist_generation();
    /* After rpool_init(&nr->inv): see "Lock order" above. */
    hm_forklist_add(&nr->fork, &nr->mu, forked, nr);
    *out = nr;
    return HERMES_BE_OK;
}

static void shard_free_all(nshard *sh)
{
    nentry *e, *next;

    for (e = sh->head; e; e = next) {
        next = e->next;
        free(e);
    }
    free(sh->buckets);
    memset((char *)sh + sizeof sh->lock, 0, sizeof *sh - sizeof sh->lock);
}

void rnear_free(rnear *nr)
{
    if (!nr)
        return;
    hm_forklist_remove(&nr->fork);
    rnear_reader_stop(nr);
    rpool_destroy(&nr->inv);
    for (unsigned i = 0; i < RNEAR_SHARDS; i++) {
        shard_free_all(&nr->shards[i]);
        pthread_rwlock_destroy(&nr->shards[i].lock);
    }
    pthread_mutex_destroy(&nr->mu);
    pthread_cond_destroy(&nr->cv);
    free(nr->prefix);
    free(nr->tracked[0]);
    free(nr->tracked[1]);
    free(nr);
}

/* ------------------------------------------------------------ table */

static uint64_t key_hash(const rnear *nr, const void *key, size_t len)
{
    return hm_siphash13(&nr->key, key, len);
}

static nshard *shard_of(rnear *nr, uint64_t h)
{
    return &nr->shards[h % RNEAR_SHARDS];
}

/* Called with the shard's lock held (either kind). */
static nentry *find(const nshard *sh, uint64_t h, const void *key, size_t len)
{
    if (sh->nbuckets == 0)
        return NULL;
    for (nentry *e = sh->buckets[(h / RNEAR_SHARDS) & (sh->nbuckets - 1)]; e;
         e = e->hnext)
        if (e->hash == h && e->klen == len && memcmp(e->data, key, len) == 0)
            return e;
    return NULL;
}

/* Doubles the buckets (write lock held); on failure keeps the old ones,
 * which only makes chains longer. */
static void grow(nshard *sh)
{
    size_t nb = sh->nbuckets ? sh->nbuckets * 2 : 16;
    nentry **b = calloc(nb, sizeof *b);

    if (!b)
        return;
    for (nentry *e = sh->head; e; e = e->next) {
        nentry **slot = &b[(e->hash / RNEAR_SHARDS) & (nb - 1)];

        e->hnext = *slot;
        *slot = e;
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = nb;
}

static void list_unlink(nshard *sh, nentry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        sh->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        sh->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push(nshard *sh, nentry *e)
{
    e->prev = NULL;
    e->next = sh->head;
    if (sh->head)
        sh->head->prev = e;
    else
        sh->tail = e;
    sh->head = e;
}

/* Inserts e (write lock held, its key not present); 0 when the table has
 * no buckets and none could be allocated. */
static int insert(rnear *nr, nshard *sh, nentry *e)
{
    if (sh->count >= sh->nbuckets)
        grow(sh);
    if (sh->nbuckets == 0)
        return 0;
    nentry **slot = &sh->buckets[(e->hash / RNEAR_SHARDS) & (sh->nbuckets - 1)];
    e->hnext = *slot;
    *slot = e;
    list_push(sh, e);
    sh->count++;
    size_t cost = entry_cost(e->klen, e->vlen);
    sh->bytes += cost;
    atomic_fetch_add_explicit(&nr->entries, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&nr->held, cost, memory_order_relaxed);
    return 1;
}

/* Takes e out of its shard (write lock held) without freeing it. */
static void detach(rnear *nr, nshard *sh, nentry *e)
{
    nentry **pp = &sh->buckets[(e->hash / RNEAR_SHARDS) & (sh->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    list_unlink(sh, e);
    sh->count--;
    size_t cost = entry_cost(e->klen, e->vlen);
    sh->bytes -= cost;
    atomic_fetch_sub_explicit(&nr->entries, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&nr->held, cost, memory_order_relaxed);
}

static nentry *new_entry(uint64_t h, uint64_t token, int state, const void *key,
                         size_t klen, const void *val, size_t vlen)
{
    nentry *e = malloc(sizeof *e + klen + vlen);

    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->token = token;
    e->state = (unsigned char)state;
    e->klen = klen;
    e->vlen = vlen;
    atomic_init(&e->ref, 0);
    memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, val, vlen);
    return e;
}

/*
 * The clock: while the shard is over its budget, the entry at the tail
 * goes, unless it was read since the hand last passed, in which case it
 * moves to the head with its mark cleared (each entry moves at most
 * once per sweep, so this ends).  keep is never evicted.
 */
static void evict_over_budget(rnear *nr, nshard *sh, const nentry *keep)
{
    size_t moves = sh->count;

    while (sh->bytes > nr->shard_limit && sh->tail && sh->tail != keep) {
        nentry *e = sh->tail;

        if (moves > 0 &&
            atomic_exchange_explicit(&e->ref, 0, memory_order_relaxed)) {
            moves--;
            list_unlink(sh, e);
            list_push(sh, e);
            continue;
        }
        detach(nr, sh, e);
        free(e);
        RNEAR_COUNT(nr, evictions);
    }
}

void rnear_evict(rnear *nr, const char *key, size_t len)
{
    uint64_t h = key_hash(nr, key, len);
    nshard *sh = shard_of(nr, h);
    nentry *e;

    pthread_rwlock_wrlock(&sh->lock);
    if ((e = find(sh, h, key, len)) != NULL) {
        detach(nr, sh, e);
        free(e);
    }
    pthread_rwlock_unlock(&sh->lock);
}

void rnear_clear(rnear *nr)
{
    for (unsigned i = 0; i < RNEAR_SHARDS; i++) {
        nshard *sh = &nr->shards[i];

        pthread_rwlock_wrlock(&sh->lock);
        while (sh->head) {
            nentry *e = sh->head;

            detach(nr, sh, e);
            free(e);
        }
        pthread_rwlock_unlock(&sh->lock);
    }
}

void rnear_drop(rnear *nr, rnear_cause cause)
{
    /* Losing tracking: no read may be answered or filled from here on,
     * before the table is even emptied.  A flush keeps tracking. */
    if (cause == RNEAR_DROP_CONNECTION || cause == RNEAR_DROP_HEARTBEAT ||
        cause == RNEAR_DROP_FORK)
        atomic_store(&nr->alive, 0);
    rnear_clear(nr);
    switch (cause) {
    case RNEAR_DROP_CONNECTION:
        RNEAR_COUNT(nr, drops_connection);
        break;
    case RNEAR_DROP_HEARTBEAT:
        RNEAR_COUNT(nr, drops_heartbeat);
        break;
    case RNEAR_DROP_SERVER_FLUSH:
        RNEAR_COUNT(nr, drops_server_flush);
        break;
    case RNEAR_DROP_LOCAL_FLUSH:
        RNEAR_COUNT(nr, drops_local_flush);
        break;
    case RNEAR_DROP_FORK:
        RNEAR_COUNT(nr, drops_fork);
        break;
    }
}

/* -------------------------------------------------------- read path */

/* Whether key is under a tracked prefix: only those are invalidated. */
static int tracked(const rnear *nr, const hermes_bytes *k)
{
    for (int i = 0; i < 2; i++)
        if (k->len > nr->tracked_len[i] &&
            memcmp(k->data, nr->tracked[i], nr->tracked_len[i]) == 0)
            return 1;
    return 0;
}

/*
 * Makes sure this process has a reader: the first read starts it, and
 * the first read of a fork child empties the copied table, lets go of
 * the parent's connection and starts the child's own.
 */
static void ensure_reader(rnear *nr)
{
    pthread_mutex_lock(&nr->mu);
    if (nr->gen != hm_forklist_generation()) {
        nr->gen = hm_forklist_generation();
        if (nr->conn) {
            /* The pool recognises the parent's context by its fork
             * generation and closes our copy without writing to it. */
            rpool_put(&nr->inv, nr->conn);
            nr->conn = NULL;
        }
        rnear_drop(nr, RNEAR_DROP_FORK);
    }
    if (!nr->running && !nr->stop)
        rnear_reader_start_locked(nr);
    pthread_mutex_unlock(&nr->mu);
}

/* The first read of an entry or tag key outside near_prefix says so:
 * near_prefix most likely differs from the [hermes] prefix, and then
 * nothing is ever held. */
static void untracked_once(rnear *nr, const hermes_bytes *k)
{
    const char *p = k->data;

    if ((!memmem(p, k->len, ":entry:", 7) && !memmem(p, k->len, ":tag:", 5)) ||
        atomic_exchange(&nr->warned, 1))
        return;
    char q[128];
    rpool_log(&nr->inv, HERMES_LOG_WARN,
              "near cache: %s is outside near_prefix '%s' and is never held: "
              "set near_prefix to the [hermes] prefix",
              rpool_quote(p, k->len, q, sizeof q), nr->prefix);
}

#define SMALL_BATCH 8

/* The state of one read that missed, for fill_cb. */
typedef struct fill_ctx {
    rnear *nr;
    const hermes_bytes *keys;
    const uint64_t *hs;
    unsigned char *mine; /* a placeholder of ours was installed */
    unsigned char *seen; /* the server reported a value */
    uint64_t token;
    hermes_value_cb cb;
    void *arg;
} fill_ctx;

/*
 * Installs a value (or the key's absence) for a key this read holds a
 * placeholder for.  The placeholder must still be ours: an invalidation,
 * a drop or an eviction in the meantime removed it, and then the value
 * may already be superseded and is not installed.
 */
static void fill(fill_ctx *f, size_t i, int state, const void *v, size_t len)
{
    rnear *nr = f->nr;
    const hermes_bytes *k = &f->keys[i];
    uint64_t h = f->hs[i];
    nshard *sh = shard_of(nr, h);
    nentry *e, *ne = NULL;

    if (entry_cost(k->len, len) <= nr->shard_limit / 2 &&
        len <= nr->max_item_bytes)
        ne = new_entry(h, f->token, state, k->data, k->len, v, len);
    pthread_rwlock_wrlock(&sh->lock);
    e = find(sh, h, k->data, k->len);
    if (!e || e->token != f->token || e->state != NE_PENDING ||
        !atomic_load(&nr->alive)) {
        /* Ours and filled: a duplicate key of this batch. */
        int dup = e && e->token == f->token;

        pthread_rwlock_unlock(&sh->lock);
        free(ne);
        if (!dup)
            RNEAR_COUNT(nr, fills_refused);
        return;
    }
    detach(nr, sh, e);
    free(e);
    if (ne && insert(nr, sh, ne)) {
        evict_over_budget(nr, sh, ne);
        RNEAR_COUNT(nr, fills);
    } else {
        free(ne); /* too big, or out of memory: just not cached */
    }
    pthread_rwlock_unlock(&sh->lock);
}

/*
 * A key this read did not place a placeholder for was held already, and
 * the server has just said something else about it (the invalidation is
 * still on its way): the held copy goes, so that this process, having
 * seen the newer state, never reads the older one from the table again.
 * (Replacing it instead could move it backwards: another thread's reply,
 * read earlier at the server, may arrive later.)
 */
static void contradict(fill_ctx *f, size_t i, int state, const void *v,
                       size_t len)
{
    nshard *sh = shard_of(f->nr, f->hs[i]);
    const hermes_bytes *k = &f->keys[i];

    pthread_rwlock_wrlock(&sh->lock);
    nentry *e = find(sh, f->hs[i], k->data, k->len);
    if (e && e->state != NE_PENDING &&
        (e->state != state || e->vlen != len ||
         (len && memcmp(e->data + e->klen, v, len) != 0))) {
        detach(f->nr, sh, e);
        free(e);
        RNEAR_COUNT(f->nr, contradicted);
    }
    pthread_rwlock_unlock(&sh->lock);
}

static void fill_cb(void *arg, size_t i, const void *v, size_t len)
{
    fill_ctx *f = arg;

    f->seen[i] = 1;
    f->cb(f->arg, i, v, len);
    if (f->mine[i])
        fill(f, i, NE_VALUE, v, len);
    else
        contradict(f, i, NE_VALUE, v, len);
}

/* Removes the placeholders of a read that failed. */
static void unplace(fill_ctx *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!f->mine[i])
            continue;
        nshard *sh = shard_of(f->nr, f->hs[i]);
        pthread_rwlock_wrlock(&sh->lock);
        nentry *e = find(sh, f->hs[i], f->keys[i].data, f->keys[i].len);
        if (e && e->token == f->token) {
            detach(f->nr, sh, e);
            free(e);
        }
        pthread_rwlock_unlock(&sh->lock);
    }
}

/* Read locks on the shards of mask, lowest first (writers hold one shard
 * at a time, so no order of theirs can deadlock with this one). */
static void lock_mask(rnear *nr, uint64_t mask)
{
    for (unsigned s = 0; s < RNEAR_SHARDS; s++)
        if (mask & (1ull << s))
            pthread_rwlock_rdlock(&nr->shards[s].lock);
}

static void unlock_mask(rnear *nr, uint64_t mask)
{
    for (unsigned s = 0; s < RNEAR_SHARDS; s++)
        if (mask & (1ull << s))
            pthread_rwlock_unlock(&nr->shards[s].lock);
}

/* Answers the read from the table if every key is held (filled, not
 * pending); 1 when answered. */
static int try_hit(rnear *nr, const hermes_bytes *keys, size_t n,
                   const uint64_t *hs, nentry **found, hermes_value_cb cb,
                   void *arg)
{
    uint64_t mask = 0;
    size_t i;
    int all = 1;

    for (i = 0; i < n; i++)
        mask |= 1ull << (hs[i] % RNEAR_SHARDS);
    lock_mask(nr, mask);
    /* A drop clears alive before it empties the shards. */
    if (!atomic_load_explicit(&nr->alive, memory_order_acquire))
        all = 0;
    for (i = 0; all && i < n; i++) {
        found[i] = find(shard_of(nr, hs[i]), hs[i], keys[i].data, keys[i].len);
        if (!found[i] || found[i]->state == NE_PENDING)
            all = 0;
    }
    if (all)
        for (i = 0; i < n; i++) {
            nentry *e = found[i];

            if (!atomic_load_explicit(&e->ref, memory_order_relaxed))
                atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
            if (e->state == NE_VALUE)
                cb(arg, i, e->data + e->klen, e->vlen);
        }
    unlock_mask(nr, mask);
    return all;
}

/* Installs a placeholder for every key not held yet (before the request
 * is sent: an invalidation arriving from now on removes it). */
static void place(fill_ctx *f, size_t n)
{
    rnear *nr = f->nr;

    for (size_t i = 0; i < n; i++) {
        nshard *sh = shard_of(nr, f->hs[i]);
        const hermes_bytes *k = &f->keys[i];

        f->mine[i] = 0;
        f->seen[i] = 0;
        pthread_rwlock_wrlock(&sh->lock);
        /* alive is read under the lock that a drop's clear takes after
         * clearing it: a placeholder installed here is either seen by
         * that clear or refused here. */
        if (atomic_load(&nr->alive)) {
            nentry *e = find(sh, f->hs[i], k->data, k->len);

            if (!e) {
                e = new_entry(f->hs[i], f->token, NE_PENDING, k->data, k->len,
                              NULL, 0);
                if (e && insert(nr, sh, e))
                    f->mine[i] = 1;
                else
                    free(e);
            } else if (e->state == NE_PENDING && e->token == f->token) {
                f->mine[i] = 1; /* the same key twice in this batch */
            }
        }
        pthread_rwlock_unlock(&sh->lock);
    }
}

int rnear_get(rnear *nr, const hermes_bytes *keys, size_t n, hermes_value_cb cb,
              void *arg)
{
    uint64_t hs_small[SMALL_BATCH], *hs = hs_small;
    nentry *found_small[SMALL_BATCH], **found = found_small;
    unsigned char flags_small[2 * SMALL_BATCH], *flags = flags_small;
    size_t i;
    int rc;

    if (!atomic_load_explicit(&nr->alive, memory_order_acquire)) {
        ensure_reader(nr);
        RNEAR_COUNT(nr, bypass);
        return nr->fetch(nr->fetch_state, keys, n, cb, arg);
    }
    for (i = 0; i < n; i++)
        if (!tracked(nr, &keys[i])) {
            RNEAR_COUNT(nr, bypass);
            untracked_once(nr, &keys[i]);
            return nr->fetch(nr->fetch_state, keys, n, cb, arg);
        }
    if (n > SMALL_BATCH) {
        hs = malloc(n * sizeof *hs);
        found = malloc(n * sizeof *found);
        flags = malloc(2 * n);
        if (!hs || !found || !flags) {
            free(hs);
            free(found);
            free(flags);
            RNEAR_COUNT(nr, bypass);
            return nr->fetch(nr->fetch_state, keys, n, cb, arg);
        }
    }
    for (i = 0; i < n; i++)
        hs[i] = key_hash(nr, keys[i].data, keys[i].len);

    if (try_hit(nr, keys, n, hs, found, cb, arg)) {
        RNEAR_COUNT(nr, hits);
        rc = HERMES_BE_OK;
        goto out;
    }

    fill_ctx f = {
        .nr = nr,
        .keys = keys,
        .hs = hs,
        .mine = flags,
        .seen = flags + n,
        .token = atomic_fetch_add(&nr->next_token, 1) + 1,
        .cb = cb,
        .arg = arg,
    };
    place(&f, n);
    rc = nr->fetch(nr->fetch_state, keys, n, fill_cb, &f);
    if (rc == HERMES_BE_OK) {
        /* Not reported: the key does not exist, which is cached too (its
         * creation is a change the server reports). */
        for (i = 0; i < n; i++)
            if (!f.seen[i]) {
                if (f.mine[i])
                    fill(&f, i, NE_ABSENT, NULL, 0);
                else
                    contradict(&f, i, NE_ABSENT, NULL, 0);
            }
    } else {
        unplace(&f, n);
    }
    RNEAR_COUNT(nr, misses);
out:
    if (hs != hs_small) {
        free(hs);
        free(found);
        free(flags);
    }
    return rc;
}

void rnear_forget(rnear *nr, const hermes_bytes *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tracked(nr, &keys[i])) {
            rnear_evict(nr, keys[i].data, keys[i].len);
            RNEAR_COUNT(nr, own_writes);
        }
}

void rnear_forget_items(rnear *nr, const hermes_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rnear_forget(nr, &items[i].key, 1);
}

/* ------------------------------------------------------------ stats */

static void stat_u64(hermes_stat_cb cb, void *arg, const char *name, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    cb(arg, name, buf);
}

void rnear_stats(rnear *nr, hermes_stat_cb cb, void *arg)
{
    stat_u64(cb, arg, "near_tracking", (uint64_t)atomic_load(&nr->alive));
    stat_u64(cb, arg, "near_entries", atomic_load(&nr->entries));
    stat_u64(cb, arg, "near_bytes", atomic_load(&nr->held));
    stat_u64(cb, arg, "near_bytes_limit", nr->bytes);
#define RNEAR__STAT(name, text)                                                \
    stat_u64(cb, arg, "near_" #name, atomic_load(&nr->c.name));
    RNEAR_STATS_MAP(RNEAR__STAT)
#undef RNEAR__STAT
}
