/*
 * The memcached plugin's client pool.  A memcached_st is not thread-safe,
 * so every operation borrows a private client (a memcached_clone() of one
 * template that never connects), uses it and hands it back.  Clients
 * connect lazily, one connection per server, and keep libmemcached's own
 * record of failed servers (retry_timeout, server_failure_limit), so a
 * dead server costs no network time per call until it is retried.
 *
 * fork(): pthread_atfork() handlers take every pool's lock around fork, so
 * a child never inherits one held.  A child never uses a client the parent
 * created: libmemcached has no call that closes a connection without
 * writing "quit" to it (which would make the server close the parent's
 * connection too), so the child abandons the parent's clients, keeping
 * their memory and descriptors (at most pool_size x servers) until it
 * exits, and creates its own.
 *
 * Ownership: the pool owns every client; a caller borrows one between
 * mcpool_take() and mcpool_put() and returns it exactly once.
 */
#ifndef HERMES_MEMCACHED_POOL_H
#define HERMES_MEMCACHED_POOL_H

#include "forklist.h"
#include "wire.h"

#include <hermes/backend.h>
#include <libmemcached/memcached.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct mc_client {
    memcached_st *mc;
    pid_t pid; /* the process that created it */
    /* The client's own connections, one per server, for what libmemcached
     * does not do (batch.c); NULL until the first batch. */
    mc_wire *wires;
    uint32_t nwires;
    struct mc_client *next;
} mc_client;

typedef struct mcpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    memcached_st *master; /* template: servers and behaviours, no I/O */
    mc_client *idle;
    unsigned live;    /* clients of this process, idle or borrowed */
    unsigned size;    /* most clients alive at once */
    uint32_t wait_ms; /* longest wait for a free client */
    pid_t pid;
    const hermes_host *host;
    hm_forklist_entry fork; /* mu registered for fork() (pool.c) */
} mcpool;

/* Takes ownership of master (a configured memcached_st).  Returns
 * HERMES_BE_OK or HERMES_BE_NOMEM (master is freed then). */
int mcpool_init(mcpool *p, const hermes_host *host, memcached_st *master,
                unsigned size, uint32_t wait_ms);
void mcpool_destroy(mcpool *p);

/* Borrow a client: HERMES_BE_OK, HERMES_BE_NOMEM, or HERMES_BE_IO when
 * none came free within wait_ms. */
int mcpool_take(mcpool *p, mc_client **out);
/* Give it back.  failed: the operation saw an error; replies still
 * pending on any of its connections are dropped (memcached_quit), so the
 * next borrower never reads an answer meant for someone else. */
void mcpool_put(mcpool *p, mc_client *c, int failed);

#endif /* HERMES_MEMCACHED_POOL_H */
