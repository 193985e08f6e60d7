/*
 * Dogpile control (DESIGN.md "Dogpile control"), the in-process half; the
 * cross-process half is lock.c.
 *
 * Flights: concurrent callers of one entry in one process share a single
 * computation.  The first caller to miss becomes the leader; the others wait
 * on the flight's condition variable, bounded by lock_wait_ms, and receive a
 * copy of the leader's outcome (value or error) without touching the
 * backend again.  A flight is reference-counted so that a follower that
 * timed out can leave while the leader is still computing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "flight.h"

struct hm_flight {
    struct hm_flight *next;
    char *key;
    size_t klen;
    unsigned refs; /* the leader plus every follower still waiting */
    bool landed;
    hm_outcome out;
    pthread_cond_t cv;
};

#define NBUCKETS (sizeof(((hm_flights *)0)->buckets) / sizeof(hm_flight *))

int hm_flights_init(hm_flights *f)
{
    memset(f->buckets, 0, sizeof f->buckets);
    return pthread_mutex_init(&f->mu, NULL) == 0 ? 0 : -1;
}

void hm_flights_free(hm_flights *f)
{
    pthread_mutex_destroy(&f->mu);
}

void hm_outcome_free(hm_outcome *o)
{
    free(o->value);
    free(o->errmsg);
    o->value = NULL;
    o->errmsg = NULL;
}

static int outcome_copy(hm_outcome *dst, const hm_outcome *src)
{
    dst->rc = src->rc;
    dst->retry = src->retry;
    dst->len = src->len;
    dst->value = NULL;
    dst->errmsg = NULL;
    if (src->value) {
        dst->value = malloc(src->len + 1);
        if (!dst->value)
            return -1;
        memcpy(dst->value, src->value, src->len + 1);
    }
    if (src->errmsg)
        dst->errmsg = strdup(src->errmsg);
    return 0;
}

static size_t bucket_of(const char *key, size_t klen)
{
    return (size_t)(XXH3_64bits(key, klen) % NBUCKETS);
}

static void flight_release(hm_flights *fs, hm_flight *f)
{
    /* Called with fs->mu held. */
    if (--f->refs > 0)
        return;
    pthread_cond_destroy(&f->cv);
    hm_outcome_free(&f->out);
    free(f->key);
    free(f);
}

/* The flight of key in bucket b, or NULL; called with fs->mu held. */
static hm_flight *flight_find(hm_flights *fs, size_t b, const char *key,
                              size_t klen)
{
    for (hm_flight *f = fs->buckets[b]; f; f = f->next)
        if (f->klen == klen && memcmp(f->key, key, klen) == 0)
            return f;
    return NULL;
}

/* A new flight of key, led by the caller, in bucket b; NULL when out of
 * memory.  Called with fs->mu held. */
static hm_flight *flight_new(hm_flights *fs, size_t b, const char *key,
                             size_t klen)
{
    hm_flight *f = calloc(1, sizeof *f);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    /* Waits are bounded in monotonic time: a clock step must neither
     * release followers early nor keep them waiting. */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (f && (f->key = malloc(klen)) != NULL &&
        pthread_cond_init(&f->cv, &ca) == 0) {
        memcpy(f->key, key, klen);
        f->klen = klen;
        f->refs = 1;
        f->next = fs->buckets[b];
        fs->buckets[b] = f;
    } else if (f) {
        free(f->key);
        free(f);
        f = NULL;
    }
    pthread_condattr_destroy(&ca);
    return f;
}

hm_flight *hm_flight_join(hermes *h, const char *key, size_t klen,
                          hm_flight **leader_flight)
{
    hm_flights *fs = &h->flights;
    size_t b = bucket_of(key, klen);
    pthread_mutex_lock(&fs->mu);
    hm_flight *f = flight_find(fs, b, key, klen);
    if (f) {
        f->refs++;
        *leader_flight = NULL;
    } else {
        /* Out of memory: lead without a flight; nobody can follow. */
        *leader_flight = flight_new(fs, b, key, klen);
    }
    pthread_mutex_unlock(&fs->mu);
    return f;
}

hm_flight *hm_flight_try_lead(hermes *h, const char *key, size_t klen,
                              bool *busy)
{
    hm_flights *fs = &h->flights;
    size_t b = bucket_of(key, klen);
    pthread_mutex_lock(&fs->mu);
    *busy = flight_find(fs, b, key, klen) != NULL;
    hm_flight *f = *busy ? NULL : flight_new(fs, b, key, klen);
    pthread_mutex_unlock(&fs->mu);
    return f;
}

void hm_flight_land(hermes *h, hm_flight *f, const hm_outcome *o)
{
    if (!f)
        return;
    hm_flights *fs = &h->flights;
    pthread_mutex_lock(&fs->mu);
    hm_flight **pp = &fs->buckets[bucket_of(f->key, f->klen)];
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next; /* later callers start a new flight */
    if (outcome_copy(&f->out, o) != 0) {
        hm_outcome_free(&f->out);
        f->out.rc = HERMES_ENOMEM;
    }
    f->landed = true;
    pthread_cond_broadcast(&f->cv);
    flight_release(fs, f);
    pthread_mutex_unlock(&fs->mu);
}

int hm_flight_wait(hermes *h, hm_flight *f, uint64_t timeout_ns, hm_outcome *o)
{
    hm_flights *fs = &h->flights;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + timeout_ns;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    int rc = 0;
    pthread_mutex_lock(&fs->mu);
    while (!f->landed && rc == 0)
        rc = pthread_cond_timedwait(&f->cv, &fs->mu, &ts);
    int got = -1;
    if (f->landed) {
        got = 0;
        if (outcome_copy(o, &f->out) != 0) {
            hm_outcome_free(o);
            o->rc = HERMES_ENOMEM;
        }
    }
    flight_release(fs, f);
    pthread_mutex_unlock(&fs->mu);
    return got;
}
