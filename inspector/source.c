/*
 * The inspector's source of models (source.h): the adapter from the core's
 * inspection snapshot to the inspector's model, the refresher thread, and
 * the actions.  The refresher is the only thread that scans; it hands a
 * finished model over under a mutex, and the UI thread only ever swaps
 * pointers, so the screen stays responsive during a long scan and a quit
 * cancels the scan at its next progress report.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "handle.h"
#include "source.h"

/* Exactly as backend.c declares it: the inspector deletes a scanned key by
 * its stored name (hermes_delete would escape an already escaped key). */
int hm_be_del(hermes *h, const hermes_bytes *keys, size_t n);

static insp_state state_of(hm_state s)
{
    switch (s) {
    case HM_STATE_FRESH:
        return INSP_FRESH;
    case HM_STATE_STALE:
        return INSP_STALE;
    case HM_STATE_EXPIRED:
        return INSP_EXPIRED;
    case HM_STATE_FOREIGN:
        return INSP_FOREIGN;
    default:
        return INSP_CORRUPT;
    }
}

static int64_t ttl_of(int64_t ttl_ms)
{
    return ttl_ms == HM_TTL_NEVER || ttl_ms == HM_TTL_UNKNOWN ? INSP_NO_TTL
                                                              : ttl_ms;
}

const char *insp_tag_display_name(const hm_insp_tag *t)
{
    return t->name ? t->name : t->key;
}

static int add_entry(insp_model *m, const hm_snapshot *s,
                     const hm_insp_entry *e)
{
    /* The Entries pane has a function column: the key column shows what
     * follows "<function>:" (the argument hash) when the key has it. */
    const char *id = e->id ? e->id : "";
    size_t fl = e->function ? strlen(e->function) : 0;
    if (fl && strncmp(id, e->function, fl) == 0 && id[fl] == ':')
        id += fl + 1;
    insp_entry *x = insp_model_add_entry(m, e->key, e->function, id, e->size,
                                         state_of(e->state));
    if (!x)
        return -1;
    x->created_ms = (int64_t)e->created_ms;
    x->compute_us = e->compute_us;
    /* The logical TTL (created + TTL) when the record has one, else what
     * the backend says of the key. */
    if (e->expiry_ms) {
        int64_t left = (int64_t)e->expiry_ms - (int64_t)s->taken_ms;
        x->ttl_left_ms = left > 0 ? left : 0;
    } else {
        x->ttl_left_ms = ttl_of(e->ttl_ms);
    }
    for (size_t j = 0; j < e->ntags; j++) {
        const hm_insp_etag *t = &e->tags[j];
        const char *name = t->name;
        if (!name && t->tag >= 0 && (size_t)t->tag < s->ntags)
            name = insp_tag_display_name(&s->tags[t->tag]);
        if (!insp_entry_add_tag(x, name, t->tag_id, t->stored_id))
            return -1;
    }
    if (e->state == HM_STATE_STALE && e->stale_tag >= 0 &&
        (size_t)e->stale_tag < e->ntags &&
        insp_entry_set_moved(x, x->tags[e->stale_tag].name) != 0)
        return -1;
    if (e->why && insp_entry_set_reason(x, e->why) != 0)
        return -1;
    return 0;
}

/* The lock's entry as the Entries pane names it: after "<prefix>:entry:". */
static const char *lock_entry_name(const hm_insp_lock *l, const char *prefix)
{
    const char *k = l->entry_key ? l->entry_key : l->key;
    size_t n = strlen(prefix);
    if (strncmp(k, prefix, n) == 0 && strncmp(k + n, ":entry:", 7) == 0)
        return k + n + 7;
    return k;
}

static int add_proc(insp_model *m, const hm_snapshot *s, const hm_insp_proc *p)
{
    if (!p->ok)
        return 0; /* unreadable counters: nothing to show but the key */
    insp_proc *x = insp_model_add_proc(m, p->host, p->pid);
    if (!x)
        return -1;
    x->hits = p->stats.hits;
    x->misses = p->stats.misses;
    x->computations = p->stats.computations;
    x->coalesced = p->stats.coalesced;
    x->lock_acquired = p->stats.lock_acquired;
    x->lock_contended = p->stats.lock_contended;
    x->lock_timeouts = p->stats.lock_timeouts;
    x->backend_errors = p->stats.backend_errors;
    /* The core's bucket i holds [2^i, 2^(i+1)) us (bucket 0 under 2 us):
     * the model's bucket i+1. */
    for (size_t b = 0; b < HM_LOCK_WAIT_BUCKETS && b + 1 < INSP_HIST_BUCKETS;
         b++)
        x->wait_hist[b + 1] += p->lock_wait[b];
    x->age_ms = p->published_ms && s->taken_ms >= p->published_ms
                    ? (int64_t)(s->taken_ms - p->published_ms)
                    : -1;
    for (size_t j = 0; j < p->nfns; j++) {
        insp_fn_stats *f = insp_proc_add_fn(x, p->fns[j].name);
        if (!f)
            return -1;
        f->hits = p->fns[j].hits;
        f->misses = p->fns[j].misses;
    }
    return 0;
}

int insp_from_snapshot(insp_model *m, const hm_snapshot *s, const char *backend,
                       const char *prefix)
{
    if (insp_model_set_str(&m->backend, backend) != 0 ||
        insp_model_set_str(&m->prefix, prefix) != 0)
        return -1;
    m->taken_ms = (int64_t)s->taken_ms;
    m->keys_scanned = s->nkeys;
    m->scan_us = s->scan_ns / 1000;
    for (size_t i = 0; i < s->ntags; i++) {
        const hm_insp_tag *t = &s->tags[i];
        if (!insp_model_add_tag(m, insp_tag_display_name(t), t->version_text,
                                t->tag_id, t->version_id))
            return -1;
    }
    for (size_t i = 0; i < s->nentries; i++)
        if (add_entry(m, s, &s->entries[i]) != 0)
            return -1;
    for (size_t i = 0; i < s->nlocks; i++) {
        const hm_insp_lock *l = &s->locks[i];
        insp_lock *x = insp_model_add_lock(m, lock_entry_name(l, prefix),
                                           l->token_ok ? l->host : "?",
                                           l->token_ok ? l->pid : 0);
        if (!x)
            return -1;
        x->age_ms = l->token_ok ? l->age_ms : -1;
        x->ttl_left_ms = ttl_of(l->ttl_ms);
    }
    for (size_t i = 0; i < s->nprocs; i++)
        if (add_proc(m, s, &s->procs[i]) != 0)
            return -1;
    return 0;
}

static const char *prefix_of(hermes *h)
{
    const hm_config *c = hm_handle_config(h);
    return c && c->prefix ? c->prefix : "cache";
}

/* A scan's progress, for the refresher's cancellation and display. */
struct scan_watch {
    atomic_bool *stop;
    atomic_size_t *keys;
};

static int on_progress(void *arg, const hm_scan_progress *p)
{
    struct scan_watch *w = arg;
    if (w->keys)
        atomic_store(w->keys, p->keys);
    return w->stop && atomic_load(w->stop);
}

static hermes_rc refresh(hermes *h, const insp_model *prev, insp_model *out,
                         struct scan_watch *w)
{
    hm_scan_opts opts = {sizeof opts, on_progress, w, 0, 0, 0};
    hm_snapshot *s = NULL;
    insp_model_init(out);
    hermes_rc rc = hm_inspect_scan(h, &opts, &s);
    if (rc == HERMES_OK &&
        (insp_from_snapshot(out, s, hermes_backend_name(h), prefix_of(h)) !=
             0 ||
         insp_model_track(out, prev, out->taken_ms) != 0 ||
         insp_model_resolve(out) != 0 || insp_model_aggregate(out) != 0))
        rc = HERMES_ENOMEM;
    hm_snapshot_free(s);
    if (rc != HERMES_OK) {
        char why[512];
        const char *msg = hermes_errmsg(h);
        snprintf(why, sizeof why, "%s%s%s", hermes_strerror(rc),
                 msg && *msg ? ": " : "", msg ? msg : "");
        insp_model_free(out);
        /* on failure (out of memory too) the model may stay partly unset */
        insp_model_set_str(&out->error, why);
        insp_model_set_str(&out->backend, hermes_backend_name(h));
        insp_model_set_str(&out->prefix, prefix_of(h));
        out->taken_ms = insp_wall_ms();
    }
    return rc;
}

hermes_rc insp_refresh(hermes *h, const insp_model *prev, insp_model *out)
{
    struct scan_watch w = {NULL, NULL};
    return refresh(h, prev, out, &w);
}

/* ------------------------------------------------------------ refresher */

struct insp_refresher {
    hermes *h;
    unsigned interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* kicks, pauses and stop */
    bool paused, kick;
    insp_model *ready; /* newest model not yet taken, or NULL */
    atomic_bool stop;
    atomic_bool scanning;
    atomic_size_t keys;
    insp_model tags; /* the last model's tags, for tracking (thread only) */
};

/* Keeps only what tracking needs of m: its tags and when it was taken. */
static int keep_tags(insp_model *dst, const insp_model *m)
{
    insp_model_free(dst);
    dst->taken_ms = m->taken_ms;
    for (size_t i = 0; i < m->ntags; i++) {
        const insp_tag *t = &m->tags[i];
        insp_tag *c = insp_model_add_tag(
            dst, t->name, t->gone ? NULL : t->version, t->id, t->version_id);
        if (!c)
            return -1;
        c->changed_ms = t->changed_ms;
    }
    return 0;
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void *refresher_main(void *arg)
{
    insp_refresher *r = arg;
    struct scan_watch w = {&r->stop, &r->keys};
    while (!atomic_load(&r->stop)) {
        insp_model *m = malloc(sizeof *m);
        if (m) {
            atomic_store(&r->scanning, true);
            atomic_store(&r->keys, 0);
            refresh(r->h, r->tags.taken_ms ? &r->tags : NULL, m, &w);
            atomic_store(&r->scanning, false);
            if (!m->error && keep_tags(&r->tags, m) != 0)
                insp_model_free(&r->tags);
        }
        pthread_mutex_lock(&r->mu);
        if (m) {
            if (r->ready) {
                insp_model_free(r->ready);
                free(r->ready);
            }
            r->ready = m;
        }
        struct timespec until;
        deadline_after(&until, r->interval_ms);
        while (!atomic_load(&r->stop) && !r->kick &&
               pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0)
            ;
        while (!atomic_load(&r->stop) && r->paused && !r->kick)
            pthread_cond_wait(&r->cv, &r->mu);
        r->kick = false;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

int insp_refresher_start(insp_refresher **out, hermes *h, unsigned interval_ms)
{
    insp_refresher *r = calloc(1, sizeof *r);
    pthread_condattr_t ca;
    int err;
    *out = NULL;
    if (!r)
        return -1;
    r->h = h;
    r->interval_ms = interval_ms ? interval_ms : 1;
    insp_model_init(&r->tags);
    atomic_init(&r->stop, false);
    atomic_init(&r->scanning, false);
    atomic_init(&r->keys, 0);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((err = pthread_create(&r->thread, NULL, refresher_main, r)) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        errno = err;
        return -1;
    }
    *out = r;
    return 0;
}

bool insp_refresher_take(insp_refresher *r, insp_model *m)
{
    pthread_mutex_lock(&r->mu);
    insp_model *next = r->ready;
    r->ready = NULL;
    pthread_mutex_unlock(&r->mu);
    if (!next)
        return false;
    if (next->error && m->taken_ms) {
        /* keep the rows the screen shows, say why they are not newer */
        insp_model_set_str(&m->error, next->error);
        insp_model_free(next);
    } else {
        insp_model_free(m);
        *m = *next;
    }
    free(next);
    return true;
}

bool insp_refresher_scanning(insp_refresher *r, size_t *keys)
{
    *keys = atomic_load(&r->keys);
    return atomic_load(&r->scanning);
}

void insp_refresher_pause(insp_refresher *r, bool paused)
{
    pthread_mutex_lock(&r->mu);
    r->paused = paused;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void insp_refresher_kick(insp_refresher *r)
{
    pthread_mutex_lock(&r->mu);
    r->kick = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void insp_refresher_stop(insp_refresher *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop, true);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    if (r->ready) {
        insp_model_free(r->ready);
        free(r->ready);
    }
    insp_model_free(&r->tags);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* -------------------------------------------------------------- actions */

static hermes_rc failed(hermes *h, hermes_rc rc, const char *what, char *msg,
                        size_t cap)
{
    const char *why = hermes_errmsg(h);
    snprintf(msg, cap, "%s failed: %s", what,
             why && *why ? why : hermes_strerror(rc));
    return rc;
}

hermes_rc insp_act_invalidate(hermes *h, const char *tag, char *msg, size_t cap)
{
    const char *prefix = prefix_of(h);
    size_t n = strlen(prefix);
    hermes_rc rc;
    if (strncmp(tag, prefix, n) == 0 && strncmp(tag + n, ":tag:", 5) == 0) {
        /* a hashed tag key whose name nobody told us: delete the key */
        hermes_bytes k = {tag, strlen(tag)};
        rc = hm_be_del(h, &k, 1) == HERMES_BE_OK ? HERMES_OK : HERMES_EBACKEND;
    } else {
        const char *tags[] = {tag, NULL};
        rc = hermes_clean(h, tags);
    }
    if (rc != HERMES_OK)
        return failed(h, rc, "invalidate", msg, cap);
    snprintf(msg, cap, "tag %s invalidated: its entries are stale", tag);
    return HERMES_OK;
}

hermes_rc insp_act_delete(hermes *h, const char *key, char *msg, size_t cap)
{
    hermes_bytes k = {key, strlen(key)};
    int st = hm_be_del(h, &k, 1);
    if (st != HERMES_BE_OK) {
        snprintf(msg, cap, "delete failed: %s", hm_be_status_str(st));
        return HERMES_EBACKEND;
    }
    snprintf(msg, cap, "deleted %s", key);
    return HERMES_OK;
}

hermes_rc insp_act_flush(hermes *h, char *msg, size_t cap)
{
    hermes_rc rc = hermes_flush(h);
    if (rc != HERMES_OK)
        return failed(h, rc, "flush", msg, cap);
    snprintf(msg, cap, "flushed every key under %s:", prefix_of(h));
    return HERMES_OK;
}
