/*
 * The cross-process lock protocol (lock.c), used by the memoized call.
 */
#ifndef HERMES_CORE_LOCK_H
#define HERMES_CORE_LOCK_H

#include "memo.h"

/* The lock key of an entry into lock: the same suffix under
 * "<prefix>:lock:".  Built only on a miss or a refresh; a hit never needs
 * it. */
hermes_rc hm_lock_key(hermes *h, const hm_buf *entry, hm_buf *lock);

/*
 * The leader of a miss: take the backend lock or wait for its holder, read
 * again, create missing tags, compute, store, unlock.  The outcome is in o.
 */
void hm_lock_lead(hm_call *c, hm_outcome *o);

/* A wait for another caller's computation reached lock_wait_ms: counted,
 * then computed directly or failed, as on_lock_timeout says. */
void hm_lock_timed_out(hm_call *c, hm_outcome *o);

/*
 * A lock owner token, unique per acquisition attempt:
 * "<host>:<pid>:<ms>:<random>", where ms is now_ms, the time of the
 * attempt in ms since the Unix epoch (decimal), and random is 12
 * characters of base64url.  Host names hold no ':', so the fields are read
 * from the right: a lock's age is now - ms.
 */
void hm_lock_token(hermes *h, uint64_t now_ms, char *buf, size_t cap,
                   size_t *len);

/* Jittered exponential backoff from 1 ms: the next sleep after `prev` ns,
 * at most cap_ns (lock_poll_ms). */
uint64_t hm_backoff_next(uint64_t prev_ns, uint64_t cap_ns);

#endif
