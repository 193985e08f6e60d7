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
 *
 * Followers wait on the flight's gate (gate.c), not on a condition
 * variable with the flights' mutex: the leader opens it after leaving
 * the mutex, every follower wakes at once, and none takes a lock to
 * leave.  The outcome is written before the gate opens and never after,
 * so a follower that saw it open copies it without a lock; a reference
 * is dropped with an atomic decrement, and the last one frees.  Only
 * hm_flight_join adds references, under the mutex, to a flight still in
 * the table, which its leader's reference keeps alive; landing removes it
 * from the table first, so no reference is added once the count can
 * fall to 0.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "flight.h"
#include "gate.h"

struct hm_flight {
    struct hm_flight *next;
    char *key;
    size_t klen;
    atomic_uint refs; /* the leader plus every follower still waiting */
    hm_outcome out;   /* the leader's, set once before landed opens */
    hm_gate landed;
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

/* Drops a reference, with or without fs->mu held. */
static void flight_release(hm_flight *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) > 1)
        return;
    hm_gate_destroy(&f->landed);
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
    if (f && (f->key = malloc(klen)) != NULL && hm_gate_init(&f->landed) == 0) {
        memcpy(f->key, key, klen);
        f->klen = klen;
        atomic_init(&f->refs, 1);
        f->next = fs->buckets[b];
        fs->buckets[b] = f;
    } else if (f) {
        free(f->key);
        free(f);
        f = NULL;
    }
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
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
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
    pthread_mutex_unlock(&fs->mu);
    hm_gate_open(&f->landed);
    flight_release(f);
}

int hm_flight_wait(hermes *h, hm_flight *f, uint64_t timeout_ns, hm_outcome *o)
{
    (void)h;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    int got = -1;
    if (hm_gate_wait(&f->landed, now + timeout_ns)) {
        got = 0;
        if (outcome_copy(o, &f->out) != 0) {
            hm_outcome_free(o);
            o->rc = HERMES_ENOMEM;
        }
    }
    flight_release(f);
    return got;
}
