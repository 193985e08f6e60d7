/*
 * The inspector's model (model.h): builders, the aggregation that derives
 * per-tag counts, garbage and contention from a snapshot, the tracking of
 * tag changes across snapshots, percentiles of a log2 histogram, and the
 * filtered, sorted views the panes show.  Pure functions of their inputs.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static const struct {
    const char *name;
    const char *text;
} state_info[] = {
#define INSP__STATE_INFO(id, name, text) {name, text},
    INSP_STATE_MAP(INSP__STATE_INFO)
#undef INSP__STATE_INFO
};

static const char *const pane_titles[] = {
#define INSP__PANE_TITLE(id, title) title,
    INSP_PANE_MAP(INSP__PANE_TITLE)
#undef INSP__PANE_TITLE
};

const char *insp_state_name(insp_state s)
{
    return (unsigned)s < INSP_NSTATES ? state_info[s].name : "?";
}

const char *insp_state_text(insp_state s)
{
    return (unsigned)s < INSP_NSTATES ? state_info[s].text : "";
}

const char *insp_pane_title(insp_pane p)
{
    return (unsigned)p < INSP_NPANES ? pane_titles[p] : "?";
}

/* ------------------------------------------------------------ builders */

/*
 * Appends one zeroed element of size el to *arr holding *n: the capacity
 * doubles whenever the count reaches a power of two, so it need not be
 * stored.
 */
static void *push(void *arr, size_t *n, size_t el)
{
    void **a = arr;
    size_t cnt = *n;
    if (cnt == 0 || (cnt & (cnt - 1)) == 0) {
        size_t cap = cnt ? cnt * 2 : 4;
        void *p = realloc(*a, cap * el);
        if (!p)
            return NULL;
        *a = p;
    }
    char *slot = (char *)*a + cnt * el;
    memset(slot, 0, el);
    *n = cnt + 1;
    return slot;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

int insp_model_set_str(char **field, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = strdup(value)))
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

void insp_model_init(insp_model *m)
{
    memset(m, 0, sizeof *m);
}

static void free_entry(insp_entry *e)
{
    free(e->key);
    free(e->function);
    free(e->id);
    for (size_t i = 0; i < e->ntags; i++)
        free(e->tags[i].name);
    free(e->tags);
    free(e->moved);
    free(e->reason);
}

static void free_garbage(insp_model *m)
{
    for (size_t i = 0; i < m->ngarbage; i++)
        free(m->garbage[i].function);
    free(m->garbage);
    m->garbage = NULL;
    m->ngarbage = 0;
}

/* One cached view per pane: what it was computed for, and the rows. */
struct view {
    bool valid;
    char *filter;
    size_t sort, len, n;
    size_t *idx;
};

struct insp_views {
    struct view pane[INSP_NPANES];
};

static void free_views(insp_model *m)
{
    if (!m->views)
        return;
    for (int p = 0; p < INSP_NPANES; p++) {
        free(m->views->pane[p].filter);
        free(m->views->pane[p].idx);
    }
    free(m->views);
    m->views = NULL;
}

void insp_model_free(insp_model *m)
{
    free_views(m);
    free(m->backend);
    free(m->prefix);
    free(m->error);
    for (size_t i = 0; i < m->ntags; i++) {
        free(m->tags[i].name);
        free(m->tags[i].version);
    }
    free(m->tags);
    for (size_t i = 0; i < m->nentries; i++)
        free_entry(&m->entries[i]);
    free(m->entries);
    for (size_t i = 0; i < m->nlocks; i++) {
        free(m->locks[i].entry);
        free(m->locks[i].host);
    }
    free(m->locks);
    for (size_t i = 0; i < m->nprocs; i++) {
        free(m->procs[i].host);
        for (size_t j = 0; j < m->procs[i].nfns; j++)
            free(m->procs[i].fns[j].name);
        free(m->procs[i].fns);
    }
    free(m->procs);
    free_garbage(m);
    insp_model_init(m);
}

insp_tag *insp_model_add_tag(insp_model *m, const char *name,
                             const char *version, uint32_t id,
                             uint64_t version_id)
{
    char *n = dup_or_empty(name), *v = dup_or_empty(version);
    insp_tag *t = n && v ? push(&m->tags, &m->ntags, sizeof *t) : NULL;
    if (!t) {
        free(n);
        free(v);
        return NULL;
    }
    t->name = n;
    t->version = v;
    t->id = id;
    t->version_id = version_id;
    t->gone = version == NULL;
    return t;
}

insp_entry *insp_model_add_entry(insp_model *m, const char *key,
                                 const char *function, const char *id,
                                 uint64_t size, insp_state state)
{
    char *k = dup_or_empty(key), *f = dup_or_empty(function);
    char *i = dup_or_empty(id);
    insp_entry *e =
        k && f && i ? push(&m->entries, &m->nentries, sizeof *e) : NULL;
    if (!e) {
        free(k);
        free(f);
        free(i);
        return NULL;
    }
    e->key = k;
    e->function = f;
    e->id = i;
    e->size = size;
    e->state = state;
    e->ttl_left_ms = INSP_NO_TTL;
    return e;
}

insp_tag_ref *insp_entry_add_tag(insp_entry *e, const char *name, uint32_t id,
                                 uint64_t stored)
{
    char *n = NULL;
    if (name && !(n = strdup(name)))
        return NULL;
    insp_tag_ref *r = push(&e->tags, &e->ntags, sizeof *r);
    if (!r) {
        free(n);
        return NULL;
    }
    r->name = n;
    r->tag = -1;
    r->id = id;
    r->stored = stored;
    return r;
}

int insp_entry_set_moved(insp_entry *e, const char *tag)
{
    return insp_model_set_str(&e->moved, tag);
}

int insp_entry_set_reason(insp_entry *e, const char *reason)
{
    return insp_model_set_str(&e->reason, reason);
}

insp_lock *insp_model_add_lock(insp_model *m, const char *entry,
                               const char *host, long pid)
{
    char *e = dup_or_empty(entry), *h = dup_or_empty(host);
    insp_lock *l = e && h ? push(&m->locks, &m->nlocks, sizeof *l) : NULL;
    if (!l) {
        free(e);
        free(h);
        return NULL;
    }
    l->entry = e;
    l->host = h;
    l->pid = pid;
    l->age_ms = -1;
    l->ttl_left_ms = INSP_NO_TTL;
    return l;
}

insp_proc *insp_model_add_proc(insp_model *m, const char *host, long pid)
{
    char *h = dup_or_empty(host);
    insp_proc *p = h ? push(&m->procs, &m->nprocs, sizeof *p) : NULL;
    if (!p) {
        free(h);
        return NULL;
    }
    p->host = h;
    p->pid = pid;
    p->age_ms = -1;
    return p;
}

insp_fn_stats *insp_proc_add_fn(insp_proc *p, const char *name)
{
    char *n = dup_or_empty(name);
    insp_fn_stats *f = n ? push(&p->fns, &p->nfns, sizeof *f) : NULL;
    if (!f) {
        free(n);
        return NULL;
    }
    f->name = n;
    return f;
}

/* --------------------------------------------------------- aggregation */

static insp_tag *find_tag(const insp_model *m, const char *name, uint32_t id)
{
    for (size_t i = 0; i < m->ntags; i++)
        if (name ? strcmp(m->tags[i].name, name) == 0 : m->tags[i].id == id)
            return &m->tags[i];
    return NULL;
}

/* Tag lookup by name and by id through sorted indices: resolving is
 * O(references x log tags), not a scan of the tags per reference. */
typedef struct tag_index {
    const insp_model *m;
    size_t *by_name, *by_id;
} tag_index;

static int cmp_by_name(const void *a, const void *b, void *arg)
{
    const insp_model *m = arg;
    return strcmp(m->tags[*(const size_t *)a].name,
                  m->tags[*(const size_t *)b].name);
}

static int cmp_by_id(const void *a, const void *b, void *arg)
{
    const insp_model *m = arg;
    uint32_t x = m->tags[*(const size_t *)a].id;
    uint32_t y = m->tags[*(const size_t *)b].id;
    return x < y ? -1 : x > y;
}

static int index_init(tag_index *ix, const insp_model *m)
{
    size_t n = m->ntags ? m->ntags : 1;
    ix->m = m;
    ix->by_name = malloc(n * sizeof *ix->by_name);
    ix->by_id = malloc(n * sizeof *ix->by_id);
    if (!ix->by_name || !ix->by_id) {
        free(ix->by_name);
        free(ix->by_id);
        return -1;
    }
    for (size_t i = 0; i < m->ntags; i++)
        ix->by_name[i] = ix->by_id[i] = i;
    qsort_r(ix->by_name, m->ntags, sizeof(size_t), cmp_by_name, (void *)m);
    qsort_r(ix->by_id, m->ntags, sizeof(size_t), cmp_by_id, (void *)m);
    return 0;
}

static void index_free(tag_index *ix)
{
    free(ix->by_name);
    free(ix->by_id);
}

/* The tag called name, else (name NULL) the tag with id; -1 none. */
static long index_find(const tag_index *ix, const char *name, uint32_t id)
{
    size_t lo = 0, hi = ix->m->ntags;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const insp_tag *t =
            &ix->m->tags[name ? ix->by_name[mid] : ix->by_id[mid]];
        int c = name ? strcmp(t->name, name) : (t->id > id) - (t->id < id);
        if (c == 0)
            return (long)(name ? ix->by_name[mid] : ix->by_id[mid]);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int insp_model_resolve(insp_model *m)
{
    free_views(m); /* names filtered by change */
    tag_index ix;
    if (index_init(&ix, m) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < m->nentries && rc == 0; i++) {
        insp_entry *e = &m->entries[i];
        const char *moved = NULL;
        for (size_t j = 0; j < e->ntags; j++) {
            insp_tag_ref *r = &e->tags[j];
            long k = index_find(&ix, r->name, r->id);
            if (k < 0 && r->name)
                k = index_find(&ix, NULL, r->id);
            const insp_tag *t = k >= 0 ? &m->tags[k] : NULL;
            if (t && !r->name && !(r->name = strdup(t->name))) {
                rc = -1;
                break;
            }
            r->tag = k;
            r->present = t && !t->gone;
            r->current = r->present ? t->version_id : 0;
            if (!moved && (!r->present || r->current != r->stored))
                moved = r->name;
        }
        if (rc == 0 && e->state == INSP_STALE && !e->moved && moved &&
            insp_entry_set_moved(e, moved) != 0)
            rc = -1;
    }
    index_free(&ix);
    return rc;
}

static int cmp_garbage(const void *a, const void *b)
{
    const insp_garbage *x = a, *y = b;
    if (x->stale_bytes != y->stale_bytes)
        return x->stale_bytes < y->stale_bytes ? 1 : -1;
    if (x->stale != y->stale)
        return x->stale < y->stale ? 1 : -1;
    return strcmp(x->function, y->function);
}

static void add_garbage(insp_garbage *g, const insp_entry *e)
{
    g->entries++;
    g->bytes += e->size;
    if (e->state == INSP_STALE) {
        g->stale++;
        g->stale_bytes += e->size;
    }
}

static int aggregate_garbage(insp_model *m)
{
    free_garbage(m);
    memset(&m->total, 0, sizeof m->total);
    memset(m->by_state, 0, sizeof m->by_state);
    for (size_t i = 0; i < m->nentries; i++) {
        const insp_entry *e = &m->entries[i];
        insp_garbage *g = NULL;
        for (size_t j = 0; j < m->ngarbage && !g; j++)
            if (strcmp(m->garbage[j].function, e->function) == 0)
                g = &m->garbage[j];
        if (!g) {
            char *f = strdup(e->function);
            if (!f || !(g = push(&m->garbage, &m->ngarbage, sizeof *g))) {
                free(f);
                return -1;
            }
            g->function = f;
        }
        add_garbage(g, e);
        add_garbage(&m->total, e);
        if ((unsigned)e->state < INSP_NSTATES)
            m->by_state[e->state]++;
    }
    if (m->ngarbage > 1)
        qsort(m->garbage, m->ngarbage, sizeof *m->garbage, cmp_garbage);
    return 0;
}

static void aggregate_contention(insp_model *m)
{
    insp_contention *c = &m->contention;
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < m->nprocs; i++) {
        const insp_proc *p = &m->procs[i];
        c->acquired += p->lock_acquired;
        c->contended += p->lock_contended;
        c->timeouts += p->lock_timeouts;
        c->coalesced += p->coalesced;
        for (size_t b = 0; b < INSP_HIST_BUCKETS; b++)
            c->wait_hist[b] += p->wait_hist[b];
    }
    c->p50_us = insp_hist_percentile(c->wait_hist, INSP_HIST_BUCKETS, 50);
    c->p90_us = insp_hist_percentile(c->wait_hist, INSP_HIST_BUCKETS, 90);
    c->p99_us = insp_hist_percentile(c->wait_hist, INSP_HIST_BUCKETS, 99);
}

int insp_model_aggregate(insp_model *m)
{
    free_views(m); /* counts and garbage rows change */
    for (size_t i = 0; i < m->ntags; i++)
        m->tags[i].entries = m->tags[i].stale = 0;
    for (size_t j = 0; j < m->nentries; j++) {
        const insp_entry *e = &m->entries[j];
        for (size_t k = 0; k < e->ntags; k++) {
            long t = e->tags[k].tag;
            if (t < 0 || (size_t)t >= m->ntags)
                continue;
            m->tags[t].entries++;
            if (e->state == INSP_STALE)
                m->tags[t].stale++;
        }
    }
    aggregate_contention(m);
    return aggregate_garbage(m);
}

/* Whether some entry of m refers to tag id (under that name, if known). */
static bool referenced(const insp_model *m, const char *name, uint32_t id)
{
    for (size_t i = 0; i < m->nentries; i++)
        for (size_t j = 0; j < m->entries[i].ntags; j++) {
            const insp_tag_ref *r = &m->entries[i].tags[j];
            if (r->id == id && (!r->name || strcmp(r->name, name) == 0))
                return true;
        }
    return false;
}

int insp_model_track(insp_model *next, const insp_model *prev, int64_t now_ms)
{
    if (!prev || prev->taken_ms == 0)
        return 0; /* the first snapshot: nothing has been seen to change */
    for (size_t i = 0; i < next->ntags; i++) {
        insp_tag *t = &next->tags[i];
        const insp_tag *old = find_tag(prev, t->name, 0);
        if (!old)
            t->changed_ms = now_ms;
        else if (old->gone != t->gone || old->version_id != t->version_id ||
                 strcmp(old->version, t->version) != 0)
            t->changed_ms = now_ms;
        else
            t->changed_ms = old->changed_ms;
    }
    /* Tags that went away: kept, gone, while entries still carry them. */
    for (size_t i = 0; i < prev->ntags; i++) {
        const insp_tag *old = &prev->tags[i];
        if (find_tag(next, old->name, 0) ||
            !referenced(next, old->name, old->id))
            continue;
        insp_tag *t = insp_model_add_tag(next, old->name, NULL, old->id, 0);
        if (!t)
            return -1;
        t->changed_ms = old->gone ? old->changed_ms : now_ms;
    }
    return 0;
}

/* --------------------------------------------------------- percentiles */

size_t insp_hist_bucket(uint64_t us)
{
    size_t b = 0;
    while (us && b < INSP_HIST_BUCKETS - 1) {
        us >>= 1;
        b++;
    }
    return b;
}

uint64_t insp_hist_percentile(const uint64_t *hist, size_t nbuckets, double p)
{
    uint64_t total = 0;
    for (size_t i = 0; i < nbuckets; i++)
        total += hist[i];
    if (total == 0 || nbuckets == 0)
        return 0;
    if (p > 100)
        p = 100;
    /* The rank of the percentile, 1-based, rounded up (nearest rank). */
    double want = p / 100.0 * (double)total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want || rank == 0)
        rank++;
    uint64_t seen = 0;
    for (size_t i = 0; i < nbuckets; i++) {
        seen += hist[i];
        if (seen >= rank) {
            if (i == nbuckets - 1 && i > 0)
                return (uint64_t)1 << (i - 1);
            return (uint64_t)1 << i;
        }
    }
    return (uint64_t)1 << (nbuckets - 1);
}

/* --------------------------------------------------------------- views */

size_t insp_pane_len(const insp_model *m, insp_pane p)
{
    switch (p) {
    case INSP_PANE_TAGS:
        return m->ntags;
    case INSP_PANE_ENTRIES:
        return m->nentries;
    case INSP_PANE_GARBAGE:
        return m->ngarbage;
    case INSP_PANE_LOCKS:
        return m->nlocks;
    case INSP_PANE_PROCS:
        return m->nprocs;
    default:
        return 0;
    }
}

/*
 * Sort orders per pane.  Each is a comparison of two rows; counts and sizes
 * sort largest first, names alphabetically.
 */
typedef int (*row_cmp)(const insp_model *m, size_t a, size_t b);

#define CMP_NUM(x, y) ((x) < (y) ? 1 : (x) > (y) ? -1 : 0) /* descending */

static int tag_name(const insp_model *m, size_t a, size_t b)
{
    return strcmp(m->tags[a].name, m->tags[b].name);
}
static int tag_stale(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->tags[a].stale, m->tags[b].stale);
}
static int tag_entries(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->tags[a].entries, m->tags[b].entries);
}
static int tag_changed(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->tags[a].changed_ms, m->tags[b].changed_ms);
}
static int entry_key(const insp_model *m, size_t a, size_t b)
{
    return strcmp(m->entries[a].key, m->entries[b].key);
}
static int entry_state(const insp_model *m, size_t a, size_t b)
{
    /* stale first, then the rest in the order of the state map */
    int x = m->entries[a].state, y = m->entries[b].state;
    x = x == INSP_STALE ? -1 : x;
    y = y == INSP_STALE ? -1 : y;
    return x - y;
}
static int entry_size(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->entries[a].size, m->entries[b].size);
}
static int64_t ttl_key(int64_t ttl)
{
    return ttl == INSP_NO_TTL ? INT64_MAX : ttl;
}
static int entry_ttl(const insp_model *m, size_t a, size_t b)
{
    /* soonest to expire first */
    return -CMP_NUM(ttl_key(m->entries[a].ttl_left_ms),
                    ttl_key(m->entries[b].ttl_left_ms));
}
static int entry_function(const insp_model *m, size_t a, size_t b)
{
    return strcmp(m->entries[a].function, m->entries[b].function);
}
static int garbage_bytes(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->garbage[a].stale_bytes, m->garbage[b].stale_bytes);
}
static int garbage_stale(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->garbage[a].stale, m->garbage[b].stale);
}
static int garbage_name(const insp_model *m, size_t a, size_t b)
{
    return strcmp(m->garbage[a].function, m->garbage[b].function);
}
static int lock_age(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->locks[a].age_ms, m->locks[b].age_ms);
}
static int lock_entry(const insp_model *m, size_t a, size_t b)
{
    return strcmp(m->locks[a].entry, m->locks[b].entry);
}
static int proc_contended(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->procs[a].lock_contended, m->procs[b].lock_contended);
}
static int proc_hits(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->procs[a].hits, m->procs[b].hits);
}
static int proc_misses(const insp_model *m, size_t a, size_t b)
{
    return CMP_NUM(m->procs[a].misses, m->procs[b].misses);
}
static int proc_name(const insp_model *m, size_t a, size_t b)
{
    int c = strcmp(m->procs[a].host, m->procs[b].host);
    return c ? c : CMP_NUM(m->procs[b].pid, m->procs[a].pid);
}

static const struct sort_def {
    const char *name;
    row_cmp cmp;
} sorts[INSP_NPANES][5] = {
    [INSP_PANE_TAGS] = {{"name", tag_name},
                        {"stale", tag_stale},
                        {"entries", tag_entries},
                        {"changed", tag_changed}},
    [INSP_PANE_ENTRIES] = {{"state", entry_state},
                           {"key", entry_key},
                           {"function", entry_function},
                           {"size", entry_size},
                           {"ttl", entry_ttl}},
    [INSP_PANE_GARBAGE] = {{"stale bytes", garbage_bytes},
                           {"stale", garbage_stale},
                           {"function", garbage_name}},
    [INSP_PANE_LOCKS] = {{"age", lock_age}, {"entry", lock_entry}},
    [INSP_PANE_PROCS] = {{"contended", proc_contended},
                         {"hits", proc_hits},
                         {"misses", proc_misses},
                         {"host:pid", proc_name}},
};

/* The name comparison each pane's ties fall back to. */
static const row_cmp tie_break[INSP_NPANES] = {
    tag_name, entry_key, garbage_name, lock_entry, proc_name,
};

size_t insp_sort_count(insp_pane p)
{
    size_t n = 0;
    if ((unsigned)p >= INSP_NPANES)
        return 0;
    while (n < 5 && sorts[p][n].name)
        n++;
    return n;
}

const char *insp_sort_name(insp_pane p, size_t sort)
{
    return sort < insp_sort_count(p) ? sorts[p][sort].name : "";
}

static bool contains(const char *hay, const char *needle)
{
    if (!hay)
        return false;
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) ==
                   tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

bool insp_row_matches(const insp_model *m, insp_pane p, size_t i, const char *f)
{
    if (!f || !*f)
        return true;
    switch (p) {
    case INSP_PANE_TAGS:
        return contains(m->tags[i].name, f);
    case INSP_PANE_ENTRIES: {
        const insp_entry *e = &m->entries[i];
        if (contains(e->key, f) || contains(e->function, f) ||
            contains(insp_state_name(e->state), f))
            return true;
        for (size_t j = 0; j < e->ntags; j++)
            if (contains(e->tags[j].name, f))
                return true;
        return false;
    }
    case INSP_PANE_GARBAGE:
        return contains(m->garbage[i].function, f);
    case INSP_PANE_LOCKS:
        return contains(m->locks[i].entry, f) || contains(m->locks[i].host, f);
    case INSP_PANE_PROCS: {
        char pid[24];
        snprintf(pid, sizeof pid, "%ld", m->procs[i].pid);
        return contains(m->procs[i].host, f) || contains(pid, f);
    }
    default:
        return false;
    }
}

struct view_ctx {
    const insp_model *m;
    row_cmp cmp;
    row_cmp tie;
};

static int view_cmp(const void *a, const void *b, void *arg)
{
    const struct view_ctx *c = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int r = c->cmp(c->m, x, y);
    return r ? r : c->tie(c->m, x, y);
}

size_t insp_view(const insp_model *m, insp_pane p, const char *filter,
                 size_t sort, size_t *idx)
{
    size_t n = 0, len = insp_pane_len(m, p);
    if ((unsigned)p >= INSP_NPANES)
        return 0;
    if (sort >= insp_sort_count(p))
        sort = 0;
    for (size_t i = 0; i < len; i++)
        if (insp_row_matches(m, p, i, filter))
            idx[n++] = i;
    struct view_ctx c = {m, sorts[p][sort].cmp, tie_break[p]};
    if (n > 1)
        qsort_r(idx, n, sizeof *idx, view_cmp, &c);
    return n;
}

const size_t *insp_view_cached(const insp_model *m, insp_pane p,
                               const char *filter, size_t sort, size_t *n)
{
    insp_model *mm = (insp_model *)m; /* the cache is not the model's state */
    const char *f = filter ? filter : "";
    size_t len = insp_pane_len(m, p);
    *n = 0;
    if ((unsigned)p >= INSP_NPANES)
        return NULL;
    if (!mm->views && !(mm->views = calloc(1, sizeof *mm->views)))
        return NULL;
    struct view *v = &mm->views->pane[p];
    if (v->valid && v->sort == sort && v->len == len &&
        strcmp(v->filter, f) == 0) {
        *n = v->n;
        return v->idx;
    }
    v->valid = false;
    free(v->filter);
    free(v->idx);
    v->filter = strdup(f);
    v->idx = malloc((len ? len : 1) * sizeof *v->idx);
    if (!v->filter || !v->idx)
        return NULL;
    v->n = insp_view(m, p, f, sort, v->idx);
    v->sort = sort;
    v->len = len;
    v->valid = true;
    *n = v->n;
    return v->idx;
}

void insp_row_key(const insp_model *m, insp_pane p, size_t i, char *buf,
                  size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    if (i >= insp_pane_len(m, p))
        return;
    switch (p) {
    case INSP_PANE_TAGS:
        snprintf(buf, cap, "%s", m->tags[i].name);
        break;
    case INSP_PANE_ENTRIES:
        snprintf(buf, cap, "%s", m->entries[i].key);
        break;
    case INSP_PANE_GARBAGE:
        snprintf(buf, cap, "%s", m->garbage[i].function);
        break;
    case INSP_PANE_LOCKS:
        snprintf(buf, cap, "%s", m->locks[i].entry);
        break;
    case INSP_PANE_PROCS:
        snprintf(buf, cap, "%s:%ld", m->procs[i].host, m->procs[i].pid);
        break;
    default:
        break;
    }
}
