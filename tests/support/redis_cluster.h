/*
 * A private Redis Cluster for tests and benchmarks: masters (and
 * replicas) started as redis_server processes with --cluster-enabled on
 * free loopback ports, joined with `redis-cli --cluster create`, and
 * waited on until every node reports cluster_state:ok with all 16384 slots
 * and every replica is in sync: conditions, never fixed sleeps.
 *
 * The binaries are $HERMES_REDIS_SERVER and $HERMES_REDIS_CLI, or
 * redis-server and redis-cli on PATH; either missing fails the start
 * loudly (stderr), never silently.
 */
#ifndef HERMES_TEST_REDIS_CLUSTER_H
#define HERMES_TEST_REDIS_CLUSTER_H

#include "redis_server.h"

#define REDIS_CLUSTER_MAX 12

typedef struct redis_cluster {
    /* Set before redis_cluster_start(): */
    int masters;         /* at least 3 */
    int replicas;        /* per master, 0 or more */
    int node_timeout_ms; /* cluster-node-timeout; 0: 1000 */

    /* Filled in: node[0 .. masters) are the masters as created. */
    int n;
    redis_server node[REDIS_CLUSTER_MAX];
    char timeout_arg[16];
} redis_cluster;

/* Start and join the cluster; 0, or -1 after saying why on stderr. */
int redis_cluster_start(redis_cluster *c);

/* Stop every node and remove their directories. */
void redis_cluster_stop(redis_cluster *c);

/* "127.0.0.1:p1, 127.0.0.1:p2, ..." of the first `count` nodes (all when
 * count is 0), for `cluster =`. */
void redis_cluster_seeds(const redis_cluster *c, int count, char *buf,
                         size_t size);

/* Wait (up to timeout_ms) until every running node reports
 * cluster_state:ok, all slots assigned, and agrees which node serves each
 * of them.  0 or -1. */
int redis_cluster_wait_ok(redis_cluster *c, int timeout_ms);

/* The index of the node serving slot now (asks node `ask`), or -1. */
int redis_cluster_owner(redis_cluster *c, int ask, unsigned slot);

/* Is node i a master right now? */
int redis_cluster_is_master(redis_cluster *c, int i);

/*
 * Move one slot to node `to` the way redis-cli --cluster reshard does
 * (SETSLOT IMPORTING / MIGRATING, MIGRATE the keys `per_step` at a time,
 * SETSLOT NODE on every master), so that clients see ASK while it runs and
 * MOVED after.  0, or -1 after saying why.
 */
int redis_cluster_move_slot(redis_cluster *c, unsigned slot, int to,
                            int per_step);

/* A connection to node i (hiredis; the caller frees it), NULL on error. */
struct redisContext *redis_cluster_connect(const redis_cluster *c, int i);

#endif /* HERMES_TEST_REDIS_CLUSTER_H */
