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

typedef struct hm_call {
    hermes *h;
    hermes_fn *fn;
    hermes_compute_fn compute;
    void *arg;
    hm_buf entry, lock;
    hm_read rd;
    hm_verdict verdict;          /* of the last read */
    const struct hm_call *outer; /* computing when this one started */
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
 * The backend status is in *status, the verdict in c->verdict. */
int hm_call_read_hit(hm_call *c, int *status, hm_outcome *o);

/* What a failing backend turns into, per on_backend_error. */
void hm_call_backend_failed(hm_call *c, int status, hm_outcome *o);

#endif
