/*
 * In-process coalescing (flight.c): concurrent callers of one entry in one
 * process share a single computation.
 */
#ifndef HERMES_CORE_FLIGHT_H
#define HERMES_CORE_FLIGHT_H

#include <stdlib.h>

#include "internal.h"

typedef struct hm_outcome {
    hermes_rc rc;
    unsigned char *value; /* malloc'ed, NUL-terminated after len */
    size_t len;
    char *errmsg; /* for a failed computation, or NULL */
    bool retry;   /* followers must read again instead of taking it */
} hm_outcome;

int hm_flights_init(hm_flights *f);
void hm_flights_free(hm_flights *f);

/*
 * Joins the in-process computation of key.  Returns NULL when the caller is
 * the leader (it must call hm_flight_land) and a flight to wait on
 * otherwise.  *leader_flight receives the leader's flight.
 */
hm_flight *hm_flight_join(hermes *h, const char *key, size_t klen,
                          hm_flight **leader_flight);
/*
 * Leads key's in-process work unless another caller already does, without
 * joining: *busy is set (and NULL returned) when one does.  Otherwise the
 * caller leads and lands the flight returned (NULL when memory ran out:
 * it leads without one).  Used by refreshes, on which nobody waits.
 */
hm_flight *hm_flight_try_lead(hermes *h, const char *key, size_t klen,
                              bool *busy);
/* The leader publishes its outcome (copied) and leaves the flight. */
void hm_flight_land(hermes *h, hm_flight *f, const hm_outcome *o);
/*
 * A follower waits until the leader lands or timeout_ns passes.  Returns 0
 * with a copy of the outcome in *o, or -1 on timeout.  Either way the
 * follower has left the flight.
 */
int hm_flight_wait(hermes *h, hm_flight *f, uint64_t timeout_ns, hm_outcome *o);

/* Inline: a hit frees two empty outcomes, which then cost a test each. */
static inline void hm_outcome_free(hm_outcome *o)
{
    if (o->value) {
        free(o->value);
        o->value = NULL;
    }
    if (o->errmsg) {
        free(o->errmsg);
        o->errmsg = NULL;
    }
}

#endif
