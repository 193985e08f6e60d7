/*
 * Stats publication (publish.h): the text format, writing it from the call
 * path when it is due, and reading it back for the inspection layer.
 *
 * The hot path pays one relaxed load when publication is off and one read
 * of CLOCK_MONOTONIC_COARSE (the vDSO's, no system call, a few ns) when it
 * is on.  The caller that finds the time due moves it on with a
 * compare-and-swap, so one caller per interval writes, whatever the
 * number of threads, and the others go on at once.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "publish.h"

uint64_t hm_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hm_publish_init(hermes *h)
{
    bool on = h->cfg.publish_stats < 0 ? (h->be->caps & HERMES_CAP_SHARED) != 0
                                       : h->cfg.publish_stats == 1;
    h->publish_interval_ms = h->cfg.publish_interval_ms
                                 ? h->cfg.publish_interval_ms
                                 : HM_PUBLISH_DEFAULT_INTERVAL_MS;
    /* First due one interval after the open: a process that lives less
     * than that is not worth listing, and a short run (a test counting
     * its backend calls, a script) makes no write it did not ask for. */
    uint64_t first =
        hm_coarse_ns() + (uint64_t)h->publish_interval_ms * 1000000u;
    atomic_store(&h->publish_due_ns, on ? first : 0);
    atomic_store(&h->published_pid, 0);
}

/* "<prefix>:stats:<host>:<pid>" */
static void stats_key(const hermes *h, long pid, hm_buf *k)
{
    char tail[32];
    hm_buf_adds(k, h->cfg.prefix);
    hm_buf_adds(k, ":stats:");
    hm_buf_adds(k, h->hostname);
    snprintf(tail, sizeof tail, ":%ld", pid);
    hm_buf_adds(k, tail);
}

static uint64_t fn_hits(const hermes_fn *fn)
{
    uint64_t n = 0;
    for (int i = 0; i < HM_HIT_STRIPES; i++)
        n += atomic_load_explicit(&fn->hit_stripes[i].n, memory_order_relaxed);
    return n;
}

static void add_u64(hm_buf *b, const char *name, uint64_t v)
{
    char line[96];
    int n =
        snprintf(line, sizeof line, "%s %llu\n", name, (unsigned long long)v);
    hm_buf_add(b, line, (size_t)n);
}

void hm_publish_encode(hermes *h, uint64_t now_ms, hm_buf *b)
{
    char line[160];
    hermes_stats s;
    hm_buf_reset(b);
    snprintf(line, sizeof line,
             "hermes-stats %d\nhost %s\npid %ld\npublished_ms %llu\n"
             "interval_ms %u\nbackend %s\n",
             HM_PUBLISH_FORMAT, h->hostname, (long)getpid(),
             (unsigned long long)now_ms, (unsigned)h->publish_interval_ms,
             h->be->name);
    hm_buf_adds(b, line);
    hermes_stats_get(h, &s, sizeof s);
#define HM_PUBLISH_COUNTER(name, text) add_u64(b, #name, s.name);
    HERMES_STATS_MAP(HM_PUBLISH_COUNTER)
#undef HM_PUBLISH_COUNTER
    pthread_mutex_lock(&h->fns_mu);
    for (const hermes_fn *fn = h->fns; fn; fn = fn->next) {
        hm_buf_adds(b, "fn ");
        hm_buf_add(b, fn->ename, fn->ename_len);
        snprintf(line, sizeof line, " %llu %llu",
                 (unsigned long long)fn_hits(fn),
                 (unsigned long long)atomic_load_explicit(
                     &fn->misses, memory_order_relaxed));
        hm_buf_adds(b, line);
        /* The namespace tag (taglist.h) is no tag of the function's. */
        for (size_t i = fn->tags.ns; i < fn->tags.n; i++) {
            hm_buf_add(b, " ", 1);
            hm_buf_add_escaped(b, fn->tags.bytes[i].data,
                               fn->tags.bytes[i].len);
        }
        hm_buf_add(b, "\n", 1);
    }
    pthread_mutex_unlock(&h->fns_mu);
}

void hm_publish_due(hermes *h, uint64_t due_ns)
{
    uint64_t now = hm_coarse_ns();
    uint64_t next = now + (uint64_t)h->publish_interval_ms * 1000000u;
    if (!atomic_compare_exchange_strong_explicit(&h->publish_due_ns, &due_ns,
                                                 next, memory_order_relaxed,
                                                 memory_order_relaxed))
        return; /* another caller publishes this round */
    long pid = (long)getpid();
    hm_buf key, val;
    hm_buf_init(&key);
    hm_buf_init(&val);
    stats_key(h, pid, &key);
    hm_publish_encode(h, hm_now_ms(), &val);
    if (!key.failed && !val.failed) {
        uint64_t ttl =
            (uint64_t)h->publish_interval_ms * HM_PUBLISH_TTL_PERIODS;
        hermes_item it = {hm_bytes(key.data, key.len),
                          hm_bytes(val.data, val.len),
                          ttl > UINT32_MAX ? UINT32_MAX : (uint32_t)ttl, 0};
        /* A failure is counted and logged by hm_be_set; the call goes on. */
        if (hm_be_set(h, &it, 1, NULL, NULL) == HERMES_BE_OK)
            atomic_store_explicit(&h->published_pid, pid, memory_order_relaxed);
    }
    hm_buf_free(&key);
    hm_buf_free(&val);
}

void hm_publish_retract(hermes *h)
{
    long pid = atomic_load(&h->published_pid);
    if (!pid || pid != (long)getpid())
        return; /* never published, or the parent's key: not ours */
    hm_buf key;
    hm_buf_init(&key);
    stats_key(h, pid, &key);
    if (!key.failed) {
        hermes_bytes k = hm_bytes(key.data, key.len);
        hm_be_del(h, &k, 1);
    }
    hm_buf_free(&key);
}

/* ------------------------------------------------------------ decoding */

/* ------------------------------------------------------------ decoding */

/* The next line of [*p, end) without its '\n'; false at the end. */
static bool next_line(const char **p, const char *end, const char **line,
                      size_t *len)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    *p = nl ? nl + 1 : end;
    return true;
}

/* Splits the next space-separated word off [*s, *s + *n). */
static bool next_word(const char **s, size_t *n, const char **w, size_t *wl)
{
    while (*n && **s == ' ')
        (*s)++, (*n)--;
    if (!*n)
        return false;
    const char *sp = memchr(*s, ' ', *n);
    *w = *s;
    *wl = sp ? (size_t)(sp - *s) : *n;
    *s += *wl;
    *n -= *wl;
    return true;
}

static bool word_is(const char *w, size_t wl, const char *lit)
{
    return wl == strlen(lit) && memcmp(w, lit, wl) == 0;
}

/* A decimal u64 of the whole word; false when it is not one. */
static bool word_u64(const char *w, size_t wl, uint64_t *out)
{
    uint64_t v = 0;
    if (wl == 0 || wl > 20)
        return false;
    for (size_t i = 0; i < wl; i++) {
        if (w[i] < '0' || w[i] > '9')
            return false;
        uint64_t d = (uint64_t)(w[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Copies the word into a fixed field, cut to fit, unescaped. */
static void word_copy(const char *w, size_t wl, char *out, size_t cap)
{
    size_t n = wl < cap - 1 ? wl : cap - 1;
    memcpy(out, w, n);
    out[n] = '\0';
}

static bool set_counter(hermes_stats *s, const char *w, size_t wl, uint64_t v)
{
#define HM_PUBLISH_SET(name, text)                                             \
    if (word_is(w, wl, #name)) {                                               \
        s->name = v;                                                           \
        return true;                                                           \
    }
    HERMES_STATS_MAP(HM_PUBLISH_SET)
#undef HM_PUBLISH_SET
    return false;
}

/* "fn NAME HITS MISSES TAG..." after "fn". */
static int decode_fn(const char *rest, size_t n, hm_insp_proc *p)
{
    const char *w[3];
    size_t wl[3];
    uint64_t hits, misses;
    for (int i = 0; i < 3; i++)
        if (!next_word(&rest, &n, &w[i], &wl[i]))
            return 0; /* malformed: ignored */
    if (!word_u64(w[1], wl[1], &hits) || !word_u64(w[2], wl[2], &misses) ||
        p->nfns >= HM_PUBLISH_MAX_FNS)
        return 0;
    hm_insp_fn *fns = realloc(p->fns, (p->nfns + 1) * sizeof *fns);
    if (!fns)
        return -1;
    p->fns = fns;
    hm_insp_fn *f = &fns[p->nfns];
    memset(f, 0, sizeof *f);
    if (!(f->name = hm_unescape(w[0], wl[0], NULL)))
        return -1;
    p->nfns++;
    f->hits = hits;
    f->misses = misses;
    const char *t;
    size_t tl;
    while (f->ntags < HM_PUBLISH_MAX_TAGS && next_word(&rest, &n, &t, &tl)) {
        char **tags = realloc(f->tags, (f->ntags + 1) * sizeof *tags);
        if (!tags)
            return -1;
        f->tags = tags;
        if (!(tags[f->ntags] = hm_unescape(t, tl, NULL)))
            return -1;
        f->ntags++;
    }
    return 0;
}

int hm_publish_decode(const void *v, size_t n, hm_insp_proc *p)
{
    const char *s = v, *end = s + n, *line, *w;
    size_t len, wl;
    char first[32];

    p->ok = false;
    if (!next_line(&s, end, &line, &len) || len < 13 ||
        memcmp(line, "hermes-stats ", 13) != 0) {
        p->why = "not a stats record";
        return 0;
    }
    word_copy(line + 13, len - 13, first, sizeof first);
    if (strcmp(first, "1") != 0) {
        p->why = "published in another format than 1";
        return 0;
    }
    while (next_line(&s, end, &line, &len)) {
        uint64_t u;
        if (!next_word(&line, &len, &w, &wl))
            continue;
        const char *val;
        size_t vl;
        if (word_is(w, wl, "fn")) {
            if (decode_fn(line, len, p) != 0) {
                hm_publish_proc_free(p);
                return -1;
            }
            continue;
        }
        if (!next_word(&line, &len, &val, &vl))
            continue;
        if (word_is(w, wl, "host"))
            word_copy(val, vl, p->host, sizeof p->host);
        else if (word_is(w, wl, "backend"))
            word_copy(val, vl, p->backend, sizeof p->backend);
        else if (!word_u64(val, vl, &u))
            continue;
        else if (word_is(w, wl, "pid"))
            p->pid = u > LONG_MAX ? 0 : (long)u;
        else if (word_is(w, wl, "published_ms"))
            p->published_ms = u;
        else if (word_is(w, wl, "interval_ms"))
            p->interval_ms = u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
        else
            set_counter(&p->stats, w, wl, u);
    }
    hm_stats_lock_wait(&p->stats, p->lock_wait);
    p->ok = p->host[0] && p->pid > 0;
    if (!p->ok)
        p->why = "no host or pid";
    return 0;
}

void hm_publish_proc_free(hm_insp_proc *p)
{
    for (size_t i = 0; i < p->nfns; i++) {
        for (size_t j = 0; j < p->fns[i].ntags; j++)
            free(p->fns[i].tags[j]);
        free(p->fns[i].tags);
        free(p->fns[i].name);
    }
    free(p->fns);
    p->fns = NULL;
    p->nfns = 0;
}
