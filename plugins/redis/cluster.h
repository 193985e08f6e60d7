/*
 * Redis Cluster routing for the redis plugin (hiredis 0.14 has none): the
 * nodes, each with a small pool of its own (pool.c), the slot map learnt
 * from CLUSTER SLOTS, and one executor that runs a batch of single-slot
 * commands in one round trip over every node involved, following MOVED
 * and ASK once.
 *
 * Nothing here takes a lock: the node table only grows (by compare-and-
 * swap, up to RCL_MAX_NODES, until close), each slot's owner is one atomic
 * store, and a refresh is claimed by moving a timestamp on.  So fork() can
 * never leave a lock of ours held in the child, and the hot path costs one
 * atomic load per key besides the network.
 */
#ifndef HERMES_REDIS_CLUSTER_H
#define HERMES_REDIS_CLUSTER_H

#include "pool.h"
#include "slot.h"

#define RCL_MAX_NODES 256 /* masters and replicas ever seen, per state */
#define RCL_MAX_SEEDS 64  /* entries of `cluster =` */
#define RCL_NO_NODE 0xffffu

/* The fewest milliseconds between two slot-map refreshes. */
#define RCL_REFRESH_MIN_MS 100u

typedef struct rcl_node {
    rpool pool;
    char *host; /* as the cluster names it, to match MOVED and ASK */
    int port;
} rcl_node;

/* One seed of `cluster = host:port, ...`. */
typedef struct rcl_seed {
    char *host; /* malloc'ed */
    int port;
} rcl_seed;

/*
 * One command of a batch.  The caller fills in slot and the argument
 * vector; rcl_run() fills in the rest.  Commands are sent in array order,
 * so two commands of one slot keep their order.
 */
typedef struct rcl_cmd {
    uint16_t slot;
    int argc;
    const char **argv;
    const size_t *lens;
    /* results */
    redisReply *reply; /* the final reply (never a redirection), or NULL */
    int status;        /* HERMES_BE_OK exactly when reply is set */
    uint16_t node;     /* the node it went to last, or RCL_NO_NODE */
    /* private to rcl_run() */
    uint16_t to;
    unsigned char asking;
} rcl_cmd;

typedef struct rcluster {
    const hermes_host *host;
    rpool_settings base; /* every node's settings but host and port */
    char *password;
    _Atomic(rcl_node *) nodes[RCL_MAX_NODES];
    atomic_uint nnodes;
    _Atomic uint16_t owner[RSLOT_COUNT]; /* node index, or RCL_NO_NODE */
    atomic_uint_fast64_t refresh_at_ns;  /* no refresh before this */
    atomic_uint_fast64_t busy_until_ns;  /* a refresh runs until then at
                                            most; 0 when none runs */
    atomic_uint next_asked;              /* rotates the node asked */

    /* Counters for stats(). */
    atomic_uint_fast64_t refreshes, refresh_failures;
    atomic_uint_fast64_t moved, ask, tryagain, clusterdown;
} rcluster;

/*
 * Parses `host:port, host:port, ...` ("[v6addr]:port" for IPv6) into
 * seeds[] (at most RCL_MAX_SEEDS; free with rcl_free_seeds).  Returns 0, or
 * -1 with the reason in why.
 */
int rcl_parse_seeds(const char *text, rcl_seed *seeds, size_t *n, char *why,
                    size_t why_size);
void rcl_free_seeds(rcl_seed *seeds, size_t n);

/* Allocates a cluster with the seeds as its first nodes; no connection
 * is made.  HERMES_BE_OK or HERMES_BE_NOMEM. */
int rcl_new(rcluster **out, const hermes_host *host, const rpool_settings *base,
            const rcl_seed *seeds, size_t nseeds);
void rcl_free(rcluster *cl);

/* Node i (i < the count seen), never NULL for an index rcl_run() set. */
rcl_node *rcl_node_at(rcluster *cl, unsigned i);
unsigned rcl_node_count(rcluster *cl);

/*
 * Runs cmds[0..n) in one round trip: every node's part is written before
 * any reply is read, all within one command_timeout_ms.  Replies must fit
 * shape (an ASKING reply always does).  A MOVED reply updates the slot map
 * and the command goes again, once, to the node it names; ASK sends
 * ASKING and the command to the node it names, once; a second redirection,
 * TRYAGAIN (a slot half-migrated) and CLUSTERDOWN fail the command with
 * HERMES_BE_IO.  A command whose node cannot be reached fails with that
 * node's status; the others still run.  A redirection or a failed node
 * asks for a refresh of the map (at most one per RCL_REFRESH_MIN_MS).
 * Returns the first command's failure, or HERMES_BE_OK.  The caller frees
 * each reply; callbacks never run inside, and no connection is held after.
 */
int rcl_run(rcluster *cl, rcl_cmd *cmds, size_t n, const rpool_shape *shape,
            const char *what);

/*
 * Fills out[] (RCL_MAX_NODES entries) with the nodes that own slots now,
 * each once, learning the map first when none is known.  Returns their
 * count, 0 when the map cannot be learnt (the reason is logged).
 */
size_t rcl_masters(rcluster *cl, uint16_t *out);

/* Refreshes the slot map from the first node that answers, unless another
 * refresh ran within RCL_REFRESH_MIN_MS.  HERMES_BE_OK when this call
 * learnt a map.  With wait set, a call that finds another thread's
 * refresh running waits for it to end (at most that refresh's own bound,
 * connect_timeout_ms + command_timeout_ms): for a map not known at all. */
int rcl_refresh(rcluster *cl, int wait);

/* Logs through the host as "redis cluster: ..."; warnings and errors also
 * become the failing operation's detail. */
void rcl_log(rcluster *cl, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* HERMES_REDIS_CLUSTER_H */
