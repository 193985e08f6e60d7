/*
 * The redis plugin's connection pool.  A hiredis context is not thread-safe,
 * so every operation takes a private context from the pool, uses it and
 * hands it back.  The pool connects lazily, bounds the number of contexts,
 * backs off after a failed connect (so a dead server costs no network time
 * per call) and after a request that timed out (so a hung server does not
 * cost a timeout per call either), drops any context that saw an I/O or
 * protocol error, bounds
 * what a reply may make it allocate (rpool_shape), and never touches a
 * socket inherited across fork().
 *
 * Ownership: the pool owns every context; a caller borrows one between
 * rpool_take() and rpool_put() and must return it exactly once.
 */
#ifndef HERMES_REDIS_POOL_H
#define HERMES_REDIS_POOL_H

#include "forklist.h"

#include <hermes/backend.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* What the pool needs from the config; strings are copied by rpool_init. */
typedef struct rpool_settings {
    const char *host;        /* TCP host, used when socket_path is NULL */
    int port;                /* TCP port */
    const char *socket_path; /* unix socket; overrides host and port */
    int db;                  /* SELECTed after connecting when non-zero */
    const char *password;    /* AUTH after connecting when non-NULL */
    uint32_t connect_timeout_ms;
    uint32_t command_timeout_ms; /* per socket read/write, and pool wait */
    unsigned size;               /* most contexts alive at once */
    size_t max_value_bytes;      /* longest string a reply may carry */
} rpool_settings;

/*
 * What the replies of one exchange may legitimately look like.  hiredis
 * builds replies through object functions that the pool replaces with its
 * own, which refuse anything beyond the shape before allocating it: an
 * array header "*1000000000" from a broken or hostile server costs nothing.
 * The reader's buffer is bounded by `bytes` as well, so a server that
 * floods one endless string is cut off once it has sent that much.  A
 * refused reply fails the exchange with HERMES_BE_PROTOCOL and drops the
 * connection.
 */
typedef struct rpool_shape {
    uint32_t elements; /* most elements of one array, at any depth */
    unsigned depth;    /* most nesting: 0 = no array, 1 = MGET, 2 = SCAN */
    size_t bulk;       /* longest string (values, keys, error texts) */
    size_t bytes;      /* most bytes of one reply: its strings, plus
                          RPOOL_FRAME per element for framing */
} rpool_shape;

/* What one element of a reply is charged besides its string. */
#define RPOOL_FRAME 32u

/* The reader's view of the reply being read (see rpool_shape). */
typedef struct rpool_guard {
    rpool_shape shape;
    size_t used;   /* bytes charged to the reply so far */
    char why[128]; /* why the reply was refused, "" while it is not */
} rpool_guard;

/* One pooled connection. */
typedef struct rpool_conn {
    redisContext *c;
    unsigned gen;  /* fork generation that connected (pool.c); no other
                      process may use the socket */
    int broken;    /* set on I/O or protocol error: freed instead of reused */
    int timed_out; /* the failure was command_timeout_ms passing */
    int probe;     /* connected while the server was taken for hung */
    rpool_guard guard;       /* the reader's privdata */
    struct rpool_conn *next; /* idle list link */
} rpool_conn;

typedef struct rpool {
    const hermes_host *host;
    char *hostname;
    int port;
    char *socket_path;
    int db;
    char *password;
    uint32_t connect_timeout_ms;
    uint32_t command_timeout_ms;
    unsigned size;
    size_t max_value_bytes;
    char *endpoint; /* "host:port" or "unix:path", for messages */

    pthread_mutex_t mu; /* guards everything below up to the counters */
    struct rpool_waiter *waiters, *waiters_tail; /* callers waiting for a
                             context, first come first served (pool.c) */
    rpool_conn *idle;                            /* contexts ready for use */
    unsigned live;        /* contexts of this process, idle or borrowed */
    unsigned gen;         /* fork generation the idle list and live
                             belong to */
    uint32_t backoff_ms;  /* 0 when the server is not in doubt */
    uint64_t retry_at_ns; /* no connection handed out before this time */
    atomic_int hung;      /* a request timed out and none has been answered
                             since: connects prove nothing until one is */

    /* Counters for stats(); atomics so that reading them needs no lock. */
    atomic_uint_fast64_t connects;
    atomic_uint_fast64_t connect_failures;
    atomic_uint_fast64_t commands;
    atomic_uint_fast64_t errors;

    hm_forklist_entry fork; /* mu registered for fork() (pool.c) */
} rpool;

/* Set up p (no connection is made).  Returns HERMES_BE_OK or _NOMEM. */
int rpool_init(rpool *p, const hermes_host *host, const rpool_settings *s);

/* Replies made of one status, integer, nil, error or string of at most
 * max_value_bytes (SET, GET, DEL, EVALSHA...). */
rpool_shape rpool_scalar(const rpool *p);
/* A flat array of at most n such strings (MGET of n keys). */
rpool_shape rpool_array(const rpool *p, size_t n);

/* Free every idle context and everything rpool_init allocated.  No
 * context may be borrowed. */
void rpool_destroy(rpool *p);

/*
 * Borrow a connected context into *out.  Returns HERMES_BE_OK, or
 * HERMES_BE_IO when the server is unreachable, the pool is backing off
 * after a failed connect or a timed-out request, or no context became free
 * within command_timeout_ms; HERMES_BE_NOMEM when memory ran out.  No
 * thread runs in the background (the pool stays fork-safe): once the
 * backoff has passed, the next call probes the server.
 */
int rpool_take(rpool *p, rpool_conn **out);
/* As rpool_take(), waiting for a free context only until wait_deadline
 * (CLOCK_MONOTONIC ns; 0: command_timeout_ms from now); a new one's
 * connect and handshake end by wait_deadline too. */
int rpool_take_until(rpool *p, uint64_t wait_deadline, rpool_conn **out);

/* Return a borrowed context; a broken one is freed. */
void rpool_put(rpool *p, rpool_conn *conn);

/* Queue one command on conn without I/O (binary-safe arguments).  On
 * failure conn is marked broken, since a partial command may be queued. */
int rpool_append(rpool *p, rpool_conn *conn, int argc, const char **argv,
                 const size_t *lens);

/*
 * Send everything queued on conn and read n replies into replies[], one per
 * queued command: one round trip for the whole pipeline.  Each reply must
 * fit `shape`.  Error replies from the server are returned as replies (the
 * connection stays in step).  On an I/O or protocol failure, or a reply
 * that does not fit, nothing is returned (replies[] is zeroed), conn is
 * marked broken, the failure is logged naming `what`, and the status is
 * HERMES_BE_IO, _PROTOCOL or _NOMEM.  The caller frees each reply with
 * freeReplyObject().
 */
int rpool_read(rpool *p, rpool_conn *conn, size_t n, redisReply **replies,
               const rpool_shape *shape, const char *what);

/* As rpool_read, within a deadline of the caller's (rpool_deadline()):
 * the replies of one pipeline read in parts of different shapes share
 * one command_timeout_ms. */
int rpool_read_until(rpool *p, rpool_conn *conn, size_t n, redisReply **replies,
                     const rpool_shape *shape, const char *what,
                     uint64_t deadline);
/* command_timeout_ms from now, for rpool_read_until. */
uint64_t rpool_deadline(const rpool *p);
/* Writes everything queued on conn without waiting for an answer, within
 * deadline_ns: with rpool_read_until(), one round trip over several
 * connections (Redis Cluster: every node's part of a batch is sent before
 * any reply is read).  Failures are handled, logged and returned as by
 * rpool_read(). */
int rpool_send(rpool *p, rpool_conn *conn, uint64_t deadline_ns,
               const char *what);

/* The host's monotonic clock, in nanoseconds. */
uint64_t rpool_now_ns(const rpool *p);

/* Writes s[0..n) into buf (cap >= 16) as 'text' for a message: control
 * bytes and backslashes as \xNN, cut with "..." when too long; returns
 * buf.  A value from a config file or a server's reply never puts raw
 * escape sequences or line breaks into a message. */
const char *rpool_quote(const char *s, size_t n, char *buf, size_t cap);

/* Does the NUL-terminated s hold control bytes? */
int rpool_has_control(const char *s);

/* The reason of the failure the current operation is about to return
 * (host->error_detail, shown in hermes_errmsg()); rpool_log() sets it for
 * warnings and errors. */
void rpool_detail(rpool *p, const char *msg);

/* While buf is set (NULL: unset), every reason this thread sets is also
 * copied there, cut to cap bytes: a thread failing on behalf of others
 * (batch.c) hands them its reason.  Starts empty. */
#define RPOOL_WHY_CAP 256u
void rpool_detail_sink(char *buf, size_t cap);

/* Log through the host, prefixed with "redis <endpoint>: ". */
void rpool_log(rpool *p, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A connection of the pool's server outside the pool, prepared as the
 * pool's are (timeouts, bounded replies, AUTH and SELECT), for a caller
 * that keeps it to itself (the lock-release listener, wait.c); with a
 * deadline (CLOCK_MONOTONIC ns, 0 for none) it gives up by then.  Counted
 * in the pool's connects.  Free it with rpool_conn_free(), which never
 * writes to a socket another process opened (a fork child just forgets
 * it).
 */
int rpool_connect(rpool *p, uint64_t deadline, rpool_conn **out);
void rpool_conn_free(rpool_conn *conn);

#endif /* HERMES_REDIS_POOL_H */
