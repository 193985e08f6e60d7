/*
 * The redis plugin's lock-release listener, behind wait_unlock() (ABI 1.3).
 *
 * The unlock script (redis.c) PUBLISHes an empty message on the channel
 * named by the lock key, byte for byte, whenever it deletes the lock.  A
 * caller that finds a lock held waits here for that message instead of
 * sleeping.  One listener per plugin state: one subscriber connection,
 * SUBSCRIBEd to the channels of the locks its callers wait for, read by
 * one of the waiting callers at a time, which notes when each message
 * arrived and wakes the callers waiting on that channel.  So any number
 * of waiting threads cost one connection, opened by the first wait, and
 * no thread of its own.
 *
 * Ownership: the plugin state owns its listener (rwait_new, rwait_free).
 */
#ifndef HERMES_REDIS_WAIT_H
#define HERMES_REDIS_WAIT_H

#include "pool.h"

typedef struct rwait rwait;

/* A listener for p's server (no connection yet: the first wait opens
 * it).  NULL when out of memory. */
rwait *rwait_new(rpool *p);

/* Close its connection (a fork child's copy without writing to it) and
 * free w.  No wait may be in flight.  NULL is ignored. */
void rwait_free(rwait *w);

/* wait_unlock() (backend.h) for the lock `key`. */
int rwait_wait(rwait *w, hermes_bytes key, uint64_t since_ns, uint64_t until_ns,
               int *woken);

#endif /* HERMES_REDIS_WAIT_H */
