/*
 * The state of one memoized call, shared by the call engine (memo.c), the
 * lock protocol (lock.c) and the result API (result.c).
 */
#ifndef HERMES_CORE_MEMO_H
#define HERMES_CORE_MEMO_H

#include "flight.h"
#include "tags.h"

struct hermes_result {
    hermes *h; /* the handle of the call, for messages */
    unsigned char *data;
    size_t len;
    bool set;
    bool nocache;
    bool has_ttl; /* ttl overrides the function's */
    bool bad_ttl; /* hermes_result_ttl() got a TTL out of range: ttl */
    uint32_t ttl;
    char *errmsg;
    bool nomem; /* hermes_result_set ran out of memory */
};

/* What a read's timing makes of a value the tags allow (fresh.c). */
typedef enum hm_fresh_kind {
    HM_FRESH_NONE = 0, /* fresh (or the read was no hit): nothing to do */
    HM_FRESH_EARLY,    /* fresh, and XFetch chose this reader to refresh it */
    HM_FRESH_GRACE,    /* past its TTL, within grace: servable while one
                          caller recomputes it */
    HM_FRESH_EXPIRED   /* past TTL and grace: a miss */
} hm_fresh_kind;

typedef struct hm_call {
    hermes *h;
    hermes_fn *fn;
    hermes_compute_fn compute;
    void *arg;
    hm_buf entry, lock;
    hm_read rd;
    hm_verdict verdict; /* of the last read */
    hm_unlock *unlock;  /* the lock a store releases with its write, or NULL */
    const struct hm_call *outer; /* computing when this one started */
    hm_fresh_kind fresh;         /* of the last read's hit */
    uint64_t seen_created;       /* the record the last hit judged: its */
    uint32_t seen_sum;           /* creation time and checksum */
    hm_outcome stale;            /* HM_FRESH_GRACE: the old value, else empty */
} hm_call;

/*
 * Runs the compute callback into o.  Stores the result when store is set
 * and the callback allows it.  A callback that returns 0 without a value
 * produced an empty value.
 */
/* hermes_result_set() of the bytes of a followed by those of b, in one
 * allocation (the HERMES_FUNC values: a type byte, then the string). */
hermes_rc hm_result_set2(hermes_result *res, const void *a, size_t an,
                         const void *b, size_t bn);

void hm_call_compute(hm_call *c, bool store, hm_outcome *o);

/* Reads entry and tags; on a hit moves the payload into o and returns 1.
 * The backend status is in *status, the verdict in c->verdict.  For a
 * function with freshness, a hit is fresh (c->fresh says whether to
 * refresh it early); a value within grace is no hit but moves into
 * c->stale (c->fresh HM_FRESH_GRACE); one beyond grace is absent. */
int hm_call_read_hit(hm_call *c, int *status, hm_outcome *o);

/* Judges what c->rd holds (read by hm_read_entry or hm_lock_read_entry);
 * on a hit moves the payload into o and returns 1. */
int hm_call_take_hit(hm_call *c, hm_outcome *o);

/* What a failing backend turns into, per on_backend_error. */
void hm_call_backend_failed(hm_call *c, int status, hm_outcome *o);

#endif
