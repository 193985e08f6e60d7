/*
 * The inspection layer (inspect.h): one walk of the keyspace under the
 * prefix, then one batched read of every tag, then a verdict per entry.
 *
 * The walk keeps what the views need and no payload: an entry's header
 * fields and its stored tag ids and versions, a tag's value, a lock's
 * token, a process's decoded counters.  Tags are read again after the walk
 * (the backend's multi-get, in batches), so every verdict is judged
 * against the tags as they are at the end, however long the walk took; a
 * key the scan reported without its value is read in the same way.
 *
 * Names: a record stores each tag as a 32-bit id of its name; names come
 * from the tag keys themselves, the handle's registered functions and the
 * tag lists that running processes publish.  A tag key too long for the
 * backend, or holding spaces, is hashed ("<prefix>:tag:#..."); when no
 * source names it, an entry's tag is still matched to it by version.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inspect.h"
#include "keys.h"
#include "keyspace.h"
#include "publish.h"
#include "record.h"

/* ------------------------------------------------------- vocabularies */

const char *hm_key_kind_name(hm_key_kind k)
{
    static const char *const names[] = {"tag", "entry", "lock", "stats",
                                        "unknown"};
    return (unsigned)k < HM_KEY_KIND_COUNT ? names[k] : "unknown";
}

const char *hm_state_name(hm_state s)
{
    static const char *const names[] = {"fresh", "stale", "expired", "foreign",
                                        "corrupt"};
    return (unsigned)s < HM_STATE_COUNT ? names[s] : "corrupt";
}

/* The kinds' words after "<prefix>:", the ':' included. */
static const char *const kind_heads[] = {"tag:", "entry:", "lock:", "stats:"};

hm_key_kind hm_inspect_classify(const char *prefix, const void *key, size_t len)
{
    const char *k = key;
    size_t plen = strlen(prefix);
    if (len <= plen || memcmp(k, prefix, plen) != 0 || k[plen] != ':')
        return HM_KEY_UNKNOWN;
    k += plen + 1;
    len -= plen + 1;
    if (len == 2 && memcmp(k, "ns", 2) == 0)
        return HM_KEY_TAG; /* the namespace tag (taglist.h) */
    for (int i = 0; i < HM_KEY_UNKNOWN; i++) {
        size_t hl = strlen(kind_heads[i]);
        if (len > hl && memcmp(k, kind_heads[i], hl) == 0)
            return (hm_key_kind)i;
    }
    return HM_KEY_UNKNOWN;
}

/* ----------------------------------------------------------- helpers */

int hm_lock_token_parse(const void *token, size_t len, hm_lock_owner *out)
{
    const char *t = token;
    const char *c[3]; /* the last three ':' */
    size_t found = 0;
    memset(out, 0, sizeof *out);
    for (size_t i = len; i > 0 && found < 3; i--)
        if (t[i - 1] == ':')
            c[found++] = t + i - 1;
    if (found < 3)
        return -1;
    /* c[0] before the random part, c[1] before ms, c[2] before pid. */
    const char *host = t, *pid = c[2] + 1, *ms = c[1] + 1, *rnd = c[0] + 1;
    size_t hl = (size_t)(c[2] - host), pl = (size_t)(c[1] - pid),
           ml = (size_t)(c[0] - ms), rl = (size_t)(t + len - rnd);
    if (hl == 0 || hl >= sizeof out->host || pl == 0 || pl > 18 || ml == 0 ||
        ml > 19 || rl == 0)
        return -1;
    long p = 0;
    uint64_t m = 0;
    for (size_t i = 0; i < pl; i++) {
        if (pid[i] < '0' || pid[i] > '9')
            return -1;
        p = p * 10 + (pid[i] - '0');
    }
    for (size_t i = 0; i < ml; i++) {
        if (ms[i] < '0' || ms[i] > '9')
            return -1;
        m = m * 10 + (uint64_t)(ms[i] - '0');
    }
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    out->pid = p;
    out->taken_ms = m;
    return 0;
}

void hm_stats_lock_wait(const hermes_stats *s,
                        uint64_t out[HM_LOCK_WAIT_BUCKETS])
{
    size_t i = 0;
#define HM_INSPECT_BUCKET(name, text)                                          \
    if (strncmp(#name, "lock_wait_us_", 13) == 0 && i < HM_LOCK_WAIT_BUCKETS)  \
        out[i++] = s->name;
    HERMES_STATS_MAP(HM_INSPECT_BUCKET)
#undef HM_INSPECT_BUCKET
    while (i < HM_LOCK_WAIT_BUCKETS)
        out[i++] = 0;
}

uint64_t hm_lock_wait_percentile_us(const uint64_t *b, double p)
{
    uint64_t total = 0;
    for (size_t i = 0; i < HM_LOCK_WAIT_BUCKETS; i++)
        total += b[i];
    if (total == 0 || !(p > 0))
        return 0;
    if (p > 100)
        p = 100;
    /* The rank of the p-th percentile, 1-based, rounded up. */
    double r = p / 100.0 * (double)total;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HM_LOCK_WAIT_BUCKETS; i++) {
        seen += b[i];
        if (seen >= rank)
            return i + 1 < HM_LOCK_WAIT_BUCKETS ? UINT64_C(2) << i
                                                : UINT64_C(1) << i;
    }
    return UINT64_C(1) << (HM_LOCK_WAIT_BUCKETS - 1);
}

/* The version as people see it: the text of a pickled str of 22
 * characters (what this library and HermesCache write), else hex. */
static void version_text(const unsigned char *v, size_t n, uint64_t vid,
                         char *out, size_t cap)
{
    /* 80 04 95 <u64> 8c <len> <text> 94 2e */
    if (n >= 15 && v[0] == 0x80 && v[1] == 0x04 && v[2] == 0x95 &&
        v[11] == 0x8c && (size_t)v[12] + 15 == n && v[12] < cap &&
        hm_key_text_ok((const char *)v + 13, v[12])) {
        memcpy(out, v + 13, v[12]);
        out[v[12]] = '\0';
        return;
    }
    snprintf(out, cap, "%016" PRIx64, vid);
}

/* ------------------------------------------------------ the collection */

typedef struct growing {
    void *v;
    size_t n, cap;
} growing;

/* A zeroed new element at the end of g (size bytes each), or NULL. */
static void *grow_one(growing *g, size_t size)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        void *v = realloc(g->v, cap * size);
        if (!v)
            return NULL;
        g->v = v;
        g->cap = cap;
    }
    void *e = (char *)g->v + g->n++ * size;
    memset(e, 0, size);
    return e;
}

/* A tag list some source says a function has. */
typedef struct fn_tags {
    char *name;
    size_t n;
    uint32_t *ids; /* in the record's order (sorted names) */
} fn_tags;

/* A tag name some source gave, with its key and id. */
typedef struct known_tag {
    char *name;
    char *key;
    uint32_t id;
} known_tag;

typedef struct scan_ctx {
    hermes *h;
    const hm_scan_opts *o;
    hm_snapshot *s;
    growing tags, entries, locks, procs, unknown;
    growing pending; /* size_t: entries whose value the scan did not give */
    growing fntags;  /* fn_tags */
    growing known;   /* known_tag */
    uint64_t t0;
    size_t next_progress;
    bool cancelled, nomem;
} scan_ctx;

static char *dup_n(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int progress(scan_ctx *c, hm_scan_phase phase, size_t fetched,
                    size_t to_fetch)
{
    if (!c->o->progress)
        return 0;
    hm_scan_progress p = {phase, c->s->nkeys, fetched, to_fetch,
                          hm_monotonic_ns() - c->t0};
    return c->o->progress(c->o->arg, &p);
}

/* Decodes an entry's stored value into e (whose key is set). */
static int decode_entry(hm_insp_entry *e, const void *v, size_t vlen)
{
    const unsigned char *b = v;
    hm_record rec;
    e->size = vlen;
    e->stale_tag = -1;
    int dec = hm_record_decode(v, vlen, hm_bytes(e->key, strlen(e->key)), &rec);
    if (dec == HM_RECORD_CORRUPT) {
        e->state = HM_STATE_CORRUPT;
        e->format = vlen >= 2 && b[0] == HM_RECORD_MAGIC ? b[1] : -1;
        e->why = "does not decode as a record of this key (damaged, "
                 "truncated, not a record, or written under another key)";
        return 0;
    }
    if (dec == HM_RECORD_OTHER_FORMAT) {
        e->state = HM_STATE_FOREIGN;
        e->format = vlen >= 4 && memcmp(v, "HRM1", 4) == 0 ? 1 : b[1];
        e->why = "written in another record format (this library reads "
                 "format 2)";
        return 0;
    }
    e->format = HM_RECORD_FORMAT;
    e->payload_len = rec.payload_len;
    e->created_ms = rec.created_ms;
    e->ttl_s = rec.ttl_s;
    e->expiry_ms = hm_record_expiry_ms(&rec);
    e->compute_us = rec.compute_us;
    if (rec.flags & HM_REC_NAME_IN_KEY) {
        /* "<escaped name>:<arghash>" */
        const char *colon = strrchr(e->id, ':');
        if (colon && colon > e->id &&
            !(e->function = hm_unescape(e->id, (size_t)(colon - e->id), NULL)))
            return -1;
    } else if (rec.name_len) {
        if (!(e->function = dup_n(rec.name, rec.name_len)))
            return -1;
    }
    e->ntags = rec.ntags;
    if (rec.ntags) {
        e->tags = calloc(rec.ntags, sizeof *e->tags);
        if (!e->tags)
            return -1;
        for (size_t i = 0; i < rec.ntags; i++) {
            hm_record_tag(&rec, i, &e->tags[i].tag_id, &e->tags[i].stored_id);
            e->tags[i].tag = -1;
        }
    }
    e->state = HM_STATE_FRESH; /* judged later */
    return 0;
}

static int add_tag(scan_ctx *c, const char *key, size_t klen, const void *v,
                   size_t vlen, int64_t ttl)
{
    hm_insp_tag *t = grow_one(&c->tags, sizeof *t);
    if (!t)
        return -1;
    t->ttl_ms = ttl;
    if (!(t->key = dup_n(key, klen)))
        return -1;
    size_t head = strlen(c->h->tag_prefix);
    /* The namespace tag "<prefix>:ns" is the tag named "" (taglist.h). */
    bool ns = klen == strlen(c->h->cfg.prefix) + 3 &&
              memcmp(key + klen - 3, ":ns", 3) == 0;
    if (ns ? !(t->name = strdup(""))
           : key[head] != '#' && !(t->name = dup_n(key + head, klen - head)))
        return -1;
    if (!(t->version = (unsigned char *)dup_n(v, vlen)))
        return -1;
    t->version_len = vlen;
    return 0;
}

static int add_entry(scan_ctx *c, const char *key, size_t klen, const void *v,
                     size_t vlen, int64_t ttl)
{
    hm_insp_entry *e = grow_one(&c->entries, sizeof *e);
    if (!e)
        return -1;
    e->ttl_ms = ttl;
    e->stale_tag = -1;
    if (!(e->key = dup_n(key, klen)))
        return -1;
    e->id = e->key + c->h->entry_prefix_len;
    if (!v) { /* read in the fetch phase */
        size_t *i = grow_one(&c->pending, sizeof *i);
        if (!i)
            return -1;
        *i = c->entries.n - 1;
        return 0;
    }
    return decode_entry(e, v, vlen);
}

static int add_lock(scan_ctx *c, const char *key, size_t klen, const void *v,
                    size_t vlen, int64_t ttl)
{
    hermes *h = c->h;
    hm_insp_lock *l = grow_one(&c->locks, sizeof *l);
    if (!l)
        return -1;
    l->ttl_ms = ttl;
    size_t head = strlen(h->cfg.prefix) + sizeof ":lock:" - 1;
    if (!(l->key = dup_n(key, klen)) || !(l->token = dup_n(v ? v : "", vlen)))
        return -1;
    if (!(l->entry_key = malloc(h->entry_prefix_len + klen - head + 1)))
        return -1;
    memcpy(l->entry_key, h->entry_prefix, h->entry_prefix_len);
    memcpy(l->entry_key + h->entry_prefix_len, key + head, klen - head);
    l->entry_key[h->entry_prefix_len + klen - head] = '\0';
    hm_lock_owner o;
    if (v && hm_lock_token_parse(v, vlen, &o) == 0) {
        l->token_ok = true;
        memcpy(l->host, o.host, sizeof l->host);
        l->pid = o.pid;
        l->taken_ms = o.taken_ms;
    }
    return 0;
}

static int add_proc(scan_ctx *c, const char *key, size_t klen, const void *v,
                    size_t vlen, int64_t ttl)
{
    hm_insp_proc *p = grow_one(&c->procs, sizeof *p);
    if (!p)
        return -1;
    p->ttl_ms = ttl;
    if (!(p->key = dup_n(key, klen)))
        return -1;
    return hm_publish_decode(v ? v : "", vlen, p);
}

static int add_unknown(scan_ctx *c, const char *key, size_t klen)
{
    if (c->unknown.n >= HM_INSPECT_MAX_UNKNOWN)
        return 0;
    char **u = grow_one(&c->unknown, sizeof *u);
    return u && (*u = dup_n(key, klen)) ? 0 : -1;
}

static int on_scan(void *arg, const void *key, size_t klen, const void *value,
                   size_t vlen, int64_t ttl_ms)
{
    scan_ctx *c = arg;
    hm_snapshot *s = c->s;
    if (c->o->max_keys && s->nkeys >= c->o->max_keys) {
        c->cancelled = true;
        return 1;
    }
    s->nkeys++;
    hm_key_kind k = hm_inspect_classify(c->h->cfg.prefix, key, klen);
    s->count[k]++;
    int rc = 0;
    switch (k) {
    case HM_KEY_TAG:
        rc = add_tag(c, key, klen, value ? value : "", vlen, ttl_ms);
        break;
    case HM_KEY_ENTRY:
        rc = add_entry(c, key, klen, value, vlen, ttl_ms);
        break;
    case HM_KEY_LOCK:
        rc = add_lock(c, key, klen, value, vlen, ttl_ms);
        break;
    case HM_KEY_STATS:
        rc = add_proc(c, key, klen, value, vlen, ttl_ms);
        break;
    default:
        rc = add_unknown(c, key, klen);
        break;
    }
    if (rc != 0) {
        c->nomem = true;
        return 1;
    }
    if (s->nkeys >= c->next_progress) {
        c->next_progress = s->nkeys + c->o->progress_every;
        if (progress(c, HM_SCAN_WALK, 0, 0) != 0) {
            c->cancelled = true;
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ names */

static int add_known(scan_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->known.n; i++)
        if (strcmp(((known_tag *)c->known.v)[i].name, name) == 0)
            return 0;
    known_tag *k = grow_one(&c->known, sizeof *k);
    if (!k || !(k->name = strdup(name)))
        return -1;
    k->id = hm_tag_id(name, strlen(name));
    hm_buf b;
    hm_buf_init(&b);
    hm_tag_key(c->h, name, &b);
    k->key = b.failed ? NULL : dup_n(b.data, b.len);
    hm_buf_free(&b);
    return k->key ? 0 : -1;
}

static int add_fntags(scan_ctx *c, const char *name, size_t n,
                      const char *const *tags, const uint32_t *ids)
{
    fn_tags *f = grow_one(&c->fntags, sizeof *f);
    if (!f || !(f->name = strdup(name)))
        return -1;
    f->n = n;
    if (n && !(f->ids = malloc(n * sizeof *f->ids)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        f->ids[i] = ids ? ids[i] : hm_tag_id(tags[i], strlen(tags[i]));
        if (add_known(c, tags[i]) != 0)
            return -1;
    }
    return 0;
}

/* The tag lists of the handle's functions and of the publishers'. */
static int gather_names(scan_ctx *c)
{
    hermes *h = c->h;
    int rc = 0;
    pthread_mutex_lock(&h->fns_mu);
    for (const hermes_fn *fn = h->fns; fn && rc == 0; fn = fn->next)
        rc = add_fntags(c, fn->name, fn->tags.n - fn->tags.ns,
                        (const char *const *)fn->tags.names + fn->tags.ns,
                        fn->tags.ids + fn->tags.ns);
    pthread_mutex_unlock(&h->fns_mu);
    const hm_insp_proc *p = c->procs.v;
    for (size_t i = 0; i < c->procs.n && rc == 0; i++)
        for (size_t j = 0; j < p[i].nfns && rc == 0; j++)
            rc = add_fntags(c, p[i].fns[j].name, p[i].fns[j].ntags,
                            (const char *const *)p[i].fns[j].tags, NULL);
    hm_insp_tag *t = c->tags.v;
    for (size_t i = 0; i < c->tags.n && rc == 0; i++)
        if (t[i].name)
            rc = add_known(c, t[i].name);
    return rc;
}

/* ------------------------------------------------------------ fetching */

typedef struct fetch_ctx {
    scan_ctx *c;
    size_t base;      /* index of the batch's first key */
    const size_t *at; /* per key of the batch: what it is for */
    bool *found;      /* per key of the whole fetch */
    unsigned char **vals;
    size_t *lens;
    bool nomem;
} fetch_ctx;

static void on_fetch(void *arg, size_t index, const void *v, size_t len)
{
    fetch_ctx *f = arg;
    size_t i = f->base + index;
    free(f->vals[i]);
    if (!(f->vals[i] = (unsigned char *)dup_n(v, len))) {
        f->nomem = true;
        return;
    }
    f->lens[i] = len;
    f->found[i] = true;
}

/* Reads n keys in batches into vals/lens/found; a backend status. */
static int fetch_keys(scan_ctx *c, const char *const *keys, size_t n,
                      unsigned char **vals, size_t *lens, bool *found,
                      size_t *done, size_t total)
{
    size_t batch = c->o->batch;
    hermes_bytes *kb = malloc((batch < n ? batch : n) * sizeof *kb + 1);
    if (!kb)
        return HERMES_BE_NOMEM;
    fetch_ctx f = {c, 0, NULL, found, vals, lens, false};
    int st = HERMES_BE_OK;
    for (size_t i = 0; i < n && st == HERMES_BE_OK; i += batch) {
        size_t m = n - i < batch ? n - i : batch;
        for (size_t j = 0; j < m; j++)
            kb[j] = hm_bytes(keys[i + j], strlen(keys[i + j]));
        f.base = i;
        st = hm_be_get(c->h, kb, m, on_fetch, &f);
        if (st == HERMES_BE_OK && f.nomem)
            st = HERMES_BE_NOMEM;
        *done += m;
        if (st == HERMES_BE_OK && progress(c, HM_SCAN_FETCH, *done, total))
            c->cancelled = true;
    }
    free(kb);
    return st;
}

/* Reads the values the scan did not give. */
static int fetch_pending(scan_ctx *c, size_t *done, size_t total)
{
    size_t n = c->pending.n;
    if (!n)
        return HERMES_BE_OK;
    const size_t *idx = c->pending.v;
    hm_insp_entry *e = c->entries.v;
    const char **keys = malloc(n * sizeof *keys);
    unsigned char **vals = calloc(n, sizeof *vals);
    size_t *lens = calloc(n, sizeof *lens);
    bool *found = calloc(n, sizeof *found);
    int st = HERMES_BE_NOMEM;
    if (keys && vals && lens && found) {
        for (size_t i = 0; i < n; i++)
            keys[i] = e[idx[i]].key;
        st = fetch_keys(c, keys, n, vals, lens, found, done, total);
        for (size_t i = 0; i < n && st == HERMES_BE_OK; i++) {
            /* Gone meanwhile: an empty value, judged corrupt, would be a
             * lie; an entry that vanished is simply not in the snapshot. */
            if (!found[i])
                e[idx[i]].size = SIZE_MAX;
            else if (decode_entry(&e[idx[i]], vals[i], lens[i]) != 0)
                st = HERMES_BE_NOMEM;
        }
    }
    for (size_t i = 0; vals && i < n; i++)
        free(vals[i]);
    free(keys);
    free(vals);
    free(lens);
    free(found);
    return st;
}

static void tag_free(hm_insp_tag *t)
{
    free(t->key);
    free(t->name);
    free(t->version);
}

/*
 * Reads every tag again: the scanned ones and those a source names, so
 * that the verdicts are those of the end of the scan.  A tag gone since
 * the walk leaves the snapshot; one created since joins it.
 */
static int fetch_tags(scan_ctx *c, size_t *done, size_t total)
{
    hm_insp_tag *t = c->tags.v;
    const known_tag *k = c->known.v;
    size_t nt = c->tags.n, n = nt;
    const char **keys = malloc((nt + c->known.n + 1) * sizeof *keys);
    if (!keys)
        return HERMES_BE_NOMEM;
    for (size_t i = 0; i < nt; i++)
        keys[i] = t[i].key;
    for (size_t i = 0; i < c->known.n; i++) {
        size_t j = 0;
        while (j < nt && strcmp(t[j].key, k[i].key) != 0)
            j++;
        if (j == nt)
            keys[n++] = k[i].key;
    }
    unsigned char **vals = calloc(n + 1, sizeof *vals);
    size_t *lens = calloc(n + 1, sizeof *lens);
    bool *found = calloc(n + 1, sizeof *found);
    int st = HERMES_BE_NOMEM;
    if (vals && lens && found)
        st = fetch_keys(c, keys, n, vals, lens, found, done, total);
    if (st == HERMES_BE_OK) {
        /* The scanned tags take their new values; gone ones leave. */
        size_t out = 0;
        for (size_t i = 0; i < nt; i++) {
            if (!found[i]) {
                tag_free(&t[i]);
                continue;
            }
            free(t[i].version);
            t[i].version = vals[i];
            t[i].version_len = lens[i];
            vals[i] = NULL;
            t[out++] = t[i];
        }
        c->tags.n = out;
        /* Tags a source names that the walk did not see. */
        for (size_t i = nt; i < n && st == HERMES_BE_OK; i++)
            if (found[i] && add_tag(c, keys[i], strlen(keys[i]), vals[i],
                                    lens[i], HM_TTL_UNKNOWN) != 0)
                st = HERMES_BE_NOMEM;
    }
    for (size_t i = 0; vals && i < n; i++)
        free(vals[i]);
    free(keys);
    free(vals);
    free(lens);
    free(found);
    return st;
}

/* ------------------------------------------------------------- judging */

static int cmp_tag_key(const void *a, const void *b)
{
    const hm_insp_tag *x = a, *y = b;
    if (!x->name != !y->name)
        return x->name ? -1 : 1;
    return strcmp(x->name ? x->name : x->key, y->name ? y->name : y->key);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const hm_insp_entry *)a)->key,
                  ((const hm_insp_entry *)b)->key);
}

static int cmp_lock(const void *a, const void *b)
{
    return strcmp(((const hm_insp_lock *)a)->key,
                  ((const hm_insp_lock *)b)->key);
}

static int cmp_proc(const void *a, const void *b)
{
    const hm_insp_proc *x = a, *y = b;
    int r = strcmp(x->host, y->host);
    if (r)
        return r;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names, ids and display versions of the tags. */
static void name_tags(scan_ctx *c)
{
    hm_insp_tag *t = c->tags.v;
    const known_tag *k = c->known.v;
    for (size_t i = 0; i < c->tags.n; i++) {
        for (size_t j = 0; !t[i].name && j < c->known.n; j++)
            if (strcmp(k[j].key, t[i].key) == 0)
                t[i].name = strdup(k[j].name); /* NULL: stays unnamed */
        if (t[i].name)
            t[i].tag_id = hm_tag_id(t[i].name, strlen(t[i].name));
        t[i].version_id = hm_version_id(t[i].version, t[i].version_len);
        version_text(t[i].version, t[i].version_len, t[i].version_id,
                     t[i].version_text, sizeof t[i].version_text);
    }
}

/* The tag an entry's tag is, by id, else an unnamed one by version. */
static long find_tag(const hm_snapshot *s, const hm_insp_etag *et)
{
    for (size_t i = 0; i < s->ntags; i++)
        if (s->tags[i].name && s->tags[i].tag_id == et->tag_id)
            return (long)i;
    for (size_t i = 0; i < s->ntags; i++)
        if (!s->tags[i].name && s->tags[i].version_id == et->stored_id)
            return (long)i;
    return -1;
}

static const char *known_name(const scan_ctx *c, uint32_t id)
{
    const known_tag *k = c->known.v;
    for (size_t i = 0; i < c->known.n; i++)
        if (k[i].id == id)
            return k[i].name;
    return NULL;
}

/* Whether some source gives e's function a tag list, and none matches. */
static bool foreign_tags(const scan_ctx *c, const hm_insp_entry *e)
{
    const fn_tags *f = c->fntags.v;
    bool known = false;
    for (size_t i = 0; e->function && i < c->fntags.n; i++) {
        if (strcmp(f[i].name, e->function) != 0)
            continue;
        known = true;
        /* Without the namespace tag a record may start with (taglist.h). */
        size_t ns = e->ntags && e->tags[0].tag_id == hm_tag_id("", 0);
        bool same = f[i].n == e->ntags - ns;
        for (size_t j = 0; same && j < f[i].n; j++)
            same = f[i].ids[j] == e->tags[ns + j].tag_id;
        if (same)
            return false;
    }
    return known;
}

static void judge(scan_ctx *c, hm_insp_entry *e)
{
    hm_snapshot *s = c->s;
    for (size_t i = 0; i < e->ntags; i++) {
        hm_insp_etag *et = &e->tags[i];
        et->tag = find_tag(s, et);
        if (et->tag >= 0) {
            et->name = s->tags[et->tag].name;
            et->current_id = s->tags[et->tag].version_id;
        } else {
            /* Into the snapshot's own copy, set below. */
            et->name = known_name(c, et->tag_id);
        }
        et->moved = et->tag < 0 || et->current_id != et->stored_id;
    }
    if (e->state != HM_STATE_FRESH)
        return; /* corrupt or another format */
    e->expired = e->expiry_ms && s->taken_ms >= e->expiry_ms;
    if (foreign_tags(c, e)) {
        e->state = HM_STATE_FOREIGN;
        e->why = "its tag list is not its function's (the function's tags "
                 "changed since it was written)";
        return;
    }
    for (size_t i = 0; i < e->ntags; i++)
        if (e->tags[i].moved) {
            e->state = HM_STATE_STALE;
            e->stale_tag = (long)i;
            return;
        }
    if (e->expired)
        e->state = HM_STATE_EXPIRED;
}

/* Per-function totals; entries sorted, so one pass with a lookup. */
static int tally(hm_snapshot *s)
{
    growing funcs = {0};
    for (size_t i = 0; i < s->nentries; i++) {
        const hm_insp_entry *e = &s->entries[i];
        hm_insp_func *f = NULL;
        hm_insp_func *fs = funcs.v;
        for (size_t j = 0; j < funcs.n && !f; j++)
            if (!fs[j].name == !e->function &&
                (!e->function || strcmp(fs[j].name, e->function) == 0))
                f = &fs[j];
        if (!f) {
            if (!(f = grow_one(&funcs, sizeof *f)))
                goto nomem;
            if (e->function && !(f->name = strdup(e->function))) {
                funcs.n--;
                goto nomem;
            }
        }
        f->count[e->state]++;
        f->bytes[e->state] += e->size;
        s->state_count[e->state]++;
        s->state_bytes[e->state] += e->size;
        for (size_t j = 0; j < e->ntags; j++) {
            if (e->tags[j].tag < 0)
                continue;
            hm_insp_tag *t = &s->tags[e->tags[j].tag];
            t->entries++;
            if (e->state == HM_STATE_STALE && e->tags[j].moved) {
                t->stale++;
                t->stale_bytes += e->size;
            }
        }
    }
    s->funcs = funcs.v;
    s->nfuncs = funcs.n;
    return 0;
nomem:
    s->funcs = funcs.v;
    s->nfuncs = funcs.n;
    return -1;
}

static int cmp_func(const void *a, const void *b)
{
    const hm_insp_func *x = a, *y = b;
    if (!x->name || !y->name) /* NULL first */
        return (x->name != NULL) - (y->name != NULL);
    return strcmp(x->name, y->name);
}

/* ---------------------------------------------------------------- scan */

/* qsort, which may not be given a NULL array even with nothing in it. */
static void sort(void *v, size_t n, size_t size,
                 int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(v, n, size, cmp);
}

static void ctx_free(scan_ctx *c)
{
    fn_tags *f = c->fntags.v;
    for (size_t i = 0; i < c->fntags.n; i++) {
        free(f[i].name);
        free(f[i].ids);
    }
    free(f);
    known_tag *k = c->known.v;
    for (size_t i = 0; i < c->known.n; i++) {
        free(k[i].name);
        free(k[i].key);
    }
    free(k);
    free(c->pending.v);
}

/* Moves the collections into the snapshot (which frees them from now). */
static void ctx_hand_over(scan_ctx *c)
{
    hm_snapshot *s = c->s;
    s->tags = c->tags.v;
    s->ntags = c->tags.n;
    s->entries = c->entries.v;
    s->nentries = c->entries.n;
    s->locks = c->locks.v;
    s->nlocks = c->locks.n;
    s->procs = c->procs.v;
    s->nprocs = c->procs.n;
    s->unknown = c->unknown.v;
    s->nunknown = c->unknown.n;
    memset(&c->tags, 0, sizeof c->tags);
    memset(&c->entries, 0, sizeof c->entries);
    memset(&c->locks, 0, sizeof c->locks);
    memset(&c->procs, 0, sizeof c->procs);
    memset(&c->unknown, 0, sizeof c->unknown);
}

/* Drops entries that vanished between the walk and the fetch. */
static void drop_vanished(hm_snapshot *s)
{
    size_t out = 0;
    for (size_t i = 0; i < s->nentries; i++) {
        if (s->entries[i].size == SIZE_MAX) {
            free(s->entries[i].key);
            free(s->entries[i].function);
            free(s->entries[i].tags);
            s->count[HM_KEY_ENTRY]--;
            continue;
        }
        s->entries[out++] = s->entries[i];
    }
    s->nentries = out;
}

/* The names entries point to must live in the snapshot: a known name
 * whose tag key is gone is copied into a per-entry string.  To keep one
 * deallocator, such names are kept in the entry's own allocation of tags:
 * the etag array is followed by the strings. */
static int own_names(hm_snapshot *s)
{
    for (size_t i = 0; i < s->nentries; i++) {
        hm_insp_entry *e = &s->entries[i];
        size_t extra = 0;
        for (size_t j = 0; j < e->ntags; j++)
            if (e->tags[j].tag < 0 && e->tags[j].name)
                extra += strlen(e->tags[j].name) + 1;
        if (!extra)
            continue;
        size_t base = e->ntags * sizeof *e->tags;
        hm_insp_etag *t = malloc(base + extra);
        if (!t)
            return -1;
        memcpy(t, e->tags, base);
        char *p = (char *)t + base;
        for (size_t j = 0; j < e->ntags; j++) {
            if (t[j].tag < 0 && t[j].name) {
                size_t n = strlen(t[j].name) + 1;
                memcpy(p, t[j].name, n);
                t[j].name = p;
                p += n;
            }
        }
        free(e->tags);
        e->tags = t;
    }
    return 0;
}

hermes_rc hm_inspect_scan(hermes *h, const hm_scan_opts *opts,
                          hm_snapshot **out)
{
    HM_ENTER(h);
    if (!out)
        return hm_error(h, HERMES_EINVAL, "hm_inspect_scan: out is NULL");
    *out = NULL;
    if (!(h->be->caps & HERMES_CAP_SCAN) || !h->be->scan)
        return hm_error(h, HERMES_EBACKEND,
                        "backend %s cannot list keys (no scan capability): "
                        "the inspector and hermesctl's views need a backend "
                        "with HERMES_CAP_SCAN (dict, redis)",
                        h->be->name);
    hm_scan_opts o = {sizeof o, NULL, NULL, 0, 0, 0};
    if (opts)
        memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    if (!o.progress_every)
        o.progress_every = 1000;
    if (!o.batch)
        o.batch = 256;

    scan_ctx c;
    memset(&c, 0, sizeof c);
    c.h = h;
    c.o = &o;
    c.t0 = hm_monotonic_ns();
    c.next_progress = o.progress_every;
    if (!(c.s = calloc(1, sizeof *c.s)))
        return hm_error(h, HERMES_ENOMEM, "inspect: out of memory");
    hm_snapshot *s = c.s;

    size_t plen = strlen(h->cfg.prefix);
    char *pfx = malloc(plen + 2);
    int st = HERMES_BE_NOMEM;
    if (pfx) {
        memcpy(pfx, h->cfg.prefix, plen);
        memcpy(pfx + plen, ":", 2);
        st = hm_be_scan(h, hm_bytes(pfx, plen + 1), on_scan, &c);
        free(pfx);
    }
    if (st == HERMES_BE_OK && c.nomem)
        st = HERMES_BE_NOMEM;
    size_t done = 0;
    if (st == HERMES_BE_OK && gather_names(&c) != 0)
        st = HERMES_BE_NOMEM;
    size_t total = c.pending.n + c.tags.n + c.known.n;
    if (st == HERMES_BE_OK)
        st = fetch_pending(&c, &done, total);
    if (st == HERMES_BE_OK)
        st = fetch_tags(&c, &done, total);
    if (st == HERMES_BE_OK) {
        s->taken_ms = hm_now_ms();
        name_tags(&c);
    }
    ctx_hand_over(&c);
    if (st == HERMES_BE_OK) {
        drop_vanished(s);
        sort(s->tags, s->ntags, sizeof *s->tags, cmp_tag_key);
        for (size_t i = 0; i < s->nentries; i++)
            judge(&c, &s->entries[i]);
        if (own_names(s) != 0)
            st = HERMES_BE_NOMEM;
    }
    ctx_free(&c);
    if (st == HERMES_BE_OK) {
        sort(s->entries, s->nentries, sizeof *s->entries, cmp_entry);
        sort(s->locks, s->nlocks, sizeof *s->locks, cmp_lock);
        sort(s->procs, s->nprocs, sizeof *s->procs, cmp_proc);
        sort(s->unknown, s->nunknown, sizeof *s->unknown, cmp_str);
        for (size_t i = 0; i < s->nlocks; i++)
            if (s->locks[i].token_ok)
                s->locks[i].age_ms =
                    (int64_t)(s->taken_ms - s->locks[i].taken_ms);
        if (tally(s) != 0)
            st = HERMES_BE_NOMEM;
        else
            sort(s->funcs, s->nfuncs, sizeof *s->funcs, cmp_func);
    }
    if (st != HERMES_BE_OK) {
        hm_snapshot_free(s);
        if (st == HERMES_BE_NOMEM)
            return hm_error(h, HERMES_ENOMEM, "inspect: out of memory");
        return hm_be_error(h, st, "inspect: backend %s", h->be->name);
    }
    s->complete = !c.cancelled;
    s->scan_ns = hm_monotonic_ns() - c.t0;
    progress(&c, HM_SCAN_DONE, done, total);
    *out = s;
    return HERMES_OK;
}

void hm_snapshot_free(hm_snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ntags; i++)
        tag_free(&s->tags[i]);
    free(s->tags);
    for (size_t i = 0; i < s->nentries; i++) {
        free(s->entries[i].key);
        free(s->entries[i].function);
        free(s->entries[i].tags);
    }
    free(s->entries);
    for (size_t i = 0; i < s->nlocks; i++) {
        free(s->locks[i].key);
        free(s->locks[i].entry_key);
        free(s->locks[i].token);
    }
    free(s->locks);
    for (size_t i = 0; i < s->nprocs; i++) {
        hm_publish_proc_free(&s->procs[i]);
        free(s->procs[i].key);
    }
    free(s->procs);
    for (size_t i = 0; i < s->nunknown; i++)
        free(s->unknown[i]);
    free(s->unknown);
    for (size_t i = 0; i < s->nfuncs; i++)
        free(s->funcs[i].name);
    free(s->funcs);
    free(s);
}

/* ------------------------------------------------------------- lookups */

const hm_insp_entry *hm_snapshot_entry(const hm_snapshot *s, const char *key)
{
    if (!s || !key)
        return NULL;
    for (size_t i = 0; i < s->nentries; i++)
        if (strcmp(s->entries[i].key, key) == 0 ||
            strcmp(s->entries[i].id, key) == 0)
            return &s->entries[i];
    return NULL;
}

const hm_insp_tag *hm_snapshot_tag(const hm_snapshot *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->ntags; i++)
        if (s->tags[i].name && strcmp(s->tags[i].name, name) == 0)
            return &s->tags[i];
    return NULL;
}

/* ------------------------------------------------------------- explain */

static void add_time(hm_buf *b, const char *label, uint64_t ms, uint64_t now)
{
    char line[160], when[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    double d = ((double)now - (double)ms) / 1000.0;
    snprintf(line, sizeof line, "%s: %s.%03u UTC (%.1f s %s)\n", label, when,
             (unsigned)(ms % 1000), d < 0 ? -d : d, d < 0 ? "from now" : "ago");
    hm_buf_adds(b, line);
}

static void tag_label(const hm_insp_etag *t, char *out, size_t cap)
{
    if (t->name && !t->name[0])
        snprintf(out, cap, "'' (the namespace key, moved by a flush)");
    else if (t->name)
        snprintf(out, cap, "'%s'", t->name);
    else
        snprintf(out, cap, "#%08" PRIx32 " (name unknown)", t->tag_id);
}

char *hm_inspect_explain(const hm_snapshot *s, const hm_insp_entry *e)
{
    hm_buf b;
    char line[512], label[300];
    hm_buf_init(&b);
    snprintf(line, sizeof line, "key: %s\n", e->key);
    hm_buf_adds(&b, line);
    snprintf(line, sizeof line, "function: %s\n",
             e->function                     ? e->function
             : e->format == HM_RECORD_FORMAT ? "(none: written by hermes_set)"
                                             : "(unknown)");
    hm_buf_adds(&b, line);
    switch (e->state) {
    case HM_STATE_FRESH:
        snprintf(line, sizeof line,
                 "state: fresh: every tag is at the version it was computed "
                 "under; a call would hit it\n");
        break;
    case HM_STATE_STALE: {
        const hm_insp_etag *t = &e->tags[e->stale_tag];
        tag_label(t, label, sizeof label);
        if (t->tag < 0)
            snprintf(line, sizeof line,
                     "state: stale: tag %s is gone (cleaned) since it was "
                     "computed; the next call recomputes it\n",
                     label);
        else
            snprintf(line, sizeof line,
                     "state: stale: tag %s moved from %016" PRIx64
                     " to %016" PRIx64
                     " since it was computed; the next call recomputes it\n",
                     label, t->stored_id, t->current_id);
        break;
    }
    case HM_STATE_EXPIRED:
        snprintf(line, sizeof line,
                 "state: expired: past its TTL; kept by the backend until it "
                 "drops it or a call replaces it\n");
        break;
    default:
        snprintf(line, sizeof line, "state: %s: %s\n", hm_state_name(e->state),
                 e->why ? e->why : "");
        break;
    }
    hm_buf_adds(&b, line);
    if (e->format == HM_RECORD_FORMAT) {
        snprintf(line, sizeof line, "size: %zu bytes (value %zu bytes)\n",
                 e->size, e->payload_len);
        hm_buf_adds(&b, line);
        add_time(&b, "created", e->created_ms, s->taken_ms);
        if (e->expiry_ms)
            add_time(&b, "expires", e->expiry_ms, s->taken_ms);
        else
            hm_buf_adds(&b, "expires: never\n");
        snprintf(line, sizeof line, "compute time: %.3f ms\n",
                 e->compute_us / 1000.0);
        hm_buf_adds(&b, line);
    } else {
        snprintf(line, sizeof line, "size: %zu bytes\n", e->size);
        hm_buf_adds(&b, line);
    }
    if (e->ttl_ms >= 0)
        snprintf(line, sizeof line, "backend ttl: %.1f s left\n",
                 e->ttl_ms / 1000.0);
    else
        snprintf(line, sizeof line, "backend ttl: %s\n",
                 e->ttl_ms == HM_TTL_NEVER ? "none" : "unknown");
    hm_buf_adds(&b, line);
    for (size_t i = 0; i < e->ntags; i++) {
        const hm_insp_etag *t = &e->tags[i];
        tag_label(t, label, sizeof label);
        if (t->tag < 0)
            snprintf(line, sizeof line,
                     "tag %s: stored %016" PRIx64 ", current none (gone)\n",
                     label, t->stored_id);
        else
            snprintf(line, sizeof line,
                     "tag %s: stored %016" PRIx64 ", current %016" PRIx64
                     " (%s)\n",
                     label, t->stored_id, t->current_id,
                     t->moved ? "moved" : "same");
        hm_buf_adds(&b, line);
    }
    if (b.failed) {
        hm_buf_free(&b);
        return NULL;
    }
    char *r = dup_n(b.data, b.len);
    hm_buf_free(&b);
    return r;
}
