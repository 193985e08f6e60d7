/*
 * Freshness without stampedes (fresh.c): early refresh (XFetch), serving
 * the old value within grace while one caller recomputes it, and
 * stale-if-error.  The decisions are here; the call engine (memo.c) asks
 * for them after a read that the tags allow.
 */
#ifndef HERMES_CORE_FRESH_H
#define HERMES_CORE_FRESH_H

#include "memo.h"

/*
 * The probability that XFetch makes a reader gap_ms before expiry
 * recompute, for a value that took delta_ms to compute and factor beta:
 * P(now - delta * beta * ln(u) >= expiry) for u uniform in (0, 1], which
 * is exp(-gap / (delta * beta)); 1 at or past expiry, 0 without delta or
 * beta.
 */
double hm_xfetch_probability(double gap_ms, double delta_ms, double beta);

/*
 * What a read at now_ms makes of a record created at created_ms with
 * ttl_s (0: never expires) that took compute_us to compute, for a
 * function with factor beta and grace_s: fresh, fresh but chosen to
 * refresh early (one draw of hm_draw_unit(), made only when the chance is
 * not nil), within grace, or expired.
 */
hm_fresh_kind hm_fresh_classify(uint64_t now_ms, uint64_t created_ms,
                                uint32_t ttl_s, uint32_t compute_us,
                                double beta, uint32_t grace_s);

/*
 * Whether a record is past its TTL by its own creation time, whatever the
 * store's expiry says: a store may keep a key longer than asked (memcached
 * counts whole seconds and is padded by two), never the entry.
 */
bool hm_record_expired(const hm_record *rec);

/*
 * Classifies the record the last read decoded (c->rd.rec, a hit) for
 * c's function, and remembers which record it was (c->seen_*), so that a
 * refresh can tell whether another caller replaced it meanwhile.
 */
hm_fresh_kind hm_fresh_judge(hm_call *c);

/*
 * The call's read found a value to refresh: fresh but chosen by XFetch
 * (c->fresh HM_FRESH_EARLY, the value in o) or within grace
 * (HM_FRESH_GRACE, the value in c->stale).  Recomputes it when no other
 * caller is doing so, in this process (a refresh flight) or in another
 * (the entry's lock, tried once, never waited for); else answers with the
 * value read at once.  A failed early refresh answers with the value read
 * (it is still fresh); a failure within grace answers with the old value
 * when the function says stale_if_error, else with the error.  On return
 * o holds the answer.
 */
void hm_fresh_refresh(hm_call *c, hm_outcome *o);

#endif
