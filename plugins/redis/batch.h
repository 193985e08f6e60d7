/*
 * Automatic pipelining of concurrent reads (batch_reads = yes).  Threads
 * that read through one plugin state at the same time share round trips:
 * while RBATCH_FLIGHTS requests are in the air, a caller queues, and the
 * caller whose flight comes back first sends every queued read in one
 * write on the connection it holds before it hands its own callers their
 * replies.  A caller that finds a flight free sends at once: no waiting
 * for company, so a lone thread's latency is what it was without batching.
 *
 * Only idempotent plain reads go through here (the plugin's MGET): a lost
 * or refused batch costs a failed read, never a write done twice.  Locks,
 * writes, scripts and blocking commands use the pool directly.
 *
 * Guarantees (batch.c says where each is enforced):
 *  - one round trip per read, as without batching: a read is sent in the
 *    first write after it was queued, and its reply is the one in its
 *    place in that pipeline;
 *  - bounded waits: a caller is queued for at most command_timeout_ms
 *    from its call (still queued then, it leaves the queue and fails, and
 *    it is never sent after that), as a caller of rpool_take() waits for a
 *    connection; every flight, fresh or relayed, is then allowed
 *    command_timeout_ms from its send, as a read sent alone is.  So a
 *    queued read takes at most 2 x command_timeout_ms (plus a connect,
 *    which ends within the queue's time), and a slow server's replies are
 *    read as without batching.  A hung server fails the flights in the
 *    air after command_timeout_ms; that backs the pool off, and the
 *    callers queued behind them fail at once;
 *  - each reply is read within its own caller's rpool_shape (the guarded
 *    reader); an error reply is that caller's; a broken, refused or
 *    timed-out exchange fails the rest of its flight (the connection is
 *    out of step) and drops that connection, not the others.  A lost
 *    connection (a server restart) thus fails each flight in the air on
 *    a connection of the old server: up to RBATCH_FLIGHTS flights and
 *    their callers, where unbatched reads fail one per connection in use;
 *    the pool drops the idle ones at the first loss, so the next flight
 *    connects again;
 *  - a caller of a failed flight gets the reason as its own error detail:
 *    the failure's own when its read failed or the flight was not sent,
 *    "not read: another read of its batch failed: ..." when an earlier
 *    reply of its flight failed it;
 *  - after fork() the child starts with an empty queue and no flight: the
 *    parent's callers and connections are not its own.
 *
 * Ownership: rbatch_new() borrows the pool, which must outlive the
 * batcher; rbatch_free() requires that no caller is inside.
 */
#ifndef HERMES_REDIS_BATCH_H
#define HERMES_REDIS_BATCH_H

#include "pool.h"

#include <stdatomic.h>
#include <stdint.h>

/* Flights in the air at once (at most pool_size): callers beyond queue.
 * Measured on the 2-core development machine (README "Benchmark"). */
#define RBATCH_FLIGHTS 2u

typedef struct rbatch rbatch;

/* A batcher for the reads of p, or NULL when memory ran out. */
rbatch *rbatch_new(rpool *p);
void rbatch_free(rbatch *b);

/*
 * Run one read command (binary-safe arguments, which must stay valid until
 * the call returns) and return its reply in *reply, fitting shape; the
 * status and failures are those of rpool_read().  The caller frees the
 * reply with freeReplyObject().
 */
int rbatch_read(rbatch *b, int argc, const char **argv, const size_t *lens,
                const rpool_shape *shape, const char *what, redisReply **reply);

/* The counters (stats): reads through the batcher, writes that sent
 * them (a write that failed is not counted), reads that shared a sent
 * write with another, callers queued now. */
typedef struct rbatch_counts {
    uint64_t reads, flights, shared, queued;
} rbatch_counts;

void rbatch_counters(rbatch *b, rbatch_counts *out);

#endif /* HERMES_REDIS_BATCH_H */
