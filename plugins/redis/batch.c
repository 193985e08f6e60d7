/*
 * The read batcher of the redis plugin: a queue of waiting reads under one
 * mutex, and flights that relay it.  See batch.h for the contract; this
 * file explains how each guarantee is kept.
 *
 * A flight is a list of requests sent in one write on one pooled
 * connection and read back in order by one of its callers, its reader.  A
 * caller that finds fewer than `max` flights in the air starts one of its
 * own (itself alone: the queue is only ever non-empty while every flight
 * is taken) and is its reader.  Otherwise it queues.  When a reader has
 * read its flight's replies it takes the whole queue as the next flight,
 * sends it at once on the same connection (the server works on it while
 * this thread hands out replies), names the next flight's oldest caller
 * its reader and wakes it, then marks its own flight's callers done.  So
 * every read is sent by the first write after it was queued, and a queue
 * that built up during one round trip goes out in one write.
 *
 * Time: a caller is queued for at most command_timeout_ms from its call
 * (it leaves the queue then; take_queue() does not send it after that,
 * nor fly() once a connection for it came too late), and its flight's
 * replies are awaited for command_timeout_ms from the flight's send, as a
 * read sent alone is: so at most twice command_timeout_ms in all, and a
 * slow server's replies are read as without batching.  A hung server
 * fails the flights in the air after command_timeout_ms, which backs the
 * pool off, and the queue behind them then fails at once.
 *
 * Every request lives on its caller's stack.  The caller does not return
 * while anyone may touch it: a queued request is only taken off the queue
 * under mu, and a caller whose request was taken (FLYING) waits, without a
 * timeout of its own, for its reader, who is bounded by the flight's
 * deadline.  All state changes and wake-ups happen under mu, so a woken
 * caller sees them and nobody signals a condition variable that is gone.
 *
 * No pool function is called, nor anything logged, with mu held: the
 * pool's lock and mu are never held together, so the fork handlers
 * (forklist.h) may take them in any order.
 */
#include "batch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { RQ_QUEUED, RQ_FLYING, RQ_READ, RQ_DONE };

typedef struct rbreq {
    int argc;
    const char **argv;
    const size_t *lens;
    rpool_shape shape;
    const char *what;
    uint64_t deadline; /* CLOCK_MONOTONIC ns: queued until then at most
                          (command_timeout_ms from the call) */
    redisReply *reply;
    int rc;
    int state;                    /* RQ_* */
    int expired;                  /* RQ_DONE: left in the queue past deadline */
    uint64_t sent_at;             /* a flight's first: when it was sent */
    rpool_conn *conn;             /* RQ_READ: the flight was sent on it; NULL:
                                     the reader takes a connection and sends */
    struct rbreq *next;           /* queue link, then flight link */
    pthread_cond_t cv;            /* signalled on every change of state */
    char why[RPOOL_WHY_CAP + 64]; /* a failed flight's reason, told so
                                    when another read failed it */
} rbreq;

struct rbatch {
    rpool *pool;
    unsigned max;       /* flights in the air at most */
    pthread_mutex_t mu; /* guards the queue and flights */
    rbreq *head, *tail; /* queued requests, oldest first */
    unsigned flights;   /* flights in the air */
    atomic_uint_fast64_t reads, sent, shared, queued;
    hm_forklist_entry fork; /* mu registered for fork() */
};

/* ------------------------------------------------------------- fork */

/*
 * fork() while other threads read: the child must not inherit mu held by
 * a thread that does not exist there, nor wait for their flights.  mu is
 * registered with the plugin's fork registry (forklist.h), whose handlers
 * hold it across fork(); the child empties the queue (the requests are
 * on the stacks of the parent's threads) and counts no flight (their
 * connections are the parent's; the pool forgets them by their fork
 * generation).
 */
static void forked(void *self)
{
    rbatch *b = self;

    b->head = b->tail = NULL;
    b->flights = 0;
    atomic_store(&b->queued, 0);
}

rbatch *rbatch_new(rpool *p)
{
    rbatch *b = calloc(1, sizeof *b);

    if (!b)
        return NULL;
    b->pool = p;
    b->max = p->size < RBATCH_FLIGHTS ? p->size : RBATCH_FLIGHTS;
    pthread_mutex_init(&b->mu, NULL);
    atomic_init(&b->reads, 0);
    atomic_init(&b->sent, 0);
    atomic_init(&b->shared, 0);
    atomic_init(&b->queued, 0);
    hm_forklist_add(&b->fork, &b->mu, forked, b);
    return b;
}

void rbatch_free(rbatch *b)
{
    if (!b)
        return;
    hm_forklist_remove(&b->fork);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void rbatch_counters(rbatch *b, rbatch_counts *out)
{
    out->reads = atomic_load(&b->reads);
    out->flights = atomic_load(&b->sent);
    out->shared = atomic_load(&b->shared);
    out->queued = atomic_load(&b->queued);
}

/* ---------------------------------------------------------- flights */

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Called with mu held: the whole queue as the next flight, its requests
 * FLYING (their callers wait for the reader from now on), or NULL.  A
 * request whose deadline has passed (its caller has not woken yet to
 * leave the queue) is not taken: it would be sent only to time out at
 * once, which drops a good connection (and the idle ones with it) and
 * fails the rest of its flight.  Its caller is told (RQ_DONE, expired)
 * and fails as a caller still queued at its deadline does.
 */
static rbreq *take_queue(rbatch *b)
{
    rbreq *f = NULL, **link = &f, *r, *rnext;
    uint64_t now = mono_ns(), n = 0;

    for (r = b->head; r; r = rnext, n++) {
        rnext = r->next;
        r->next = NULL;
        if (r->deadline <= now) {
            r->expired = 1;
            r->state = RQ_DONE;
            pthread_cond_signal(&r->cv);
            continue;
        }
        r->state = RQ_FLYING;
        *link = r;
        link = &r->next;
    }
    b->head = b->tail = NULL;
    atomic_fetch_sub(&b->queued, n);
    return f;
}

/* Called with mu held: take r off the queue (its caller gives up). */
static void unqueue(rbatch *b, rbreq *r)
{
    rbreq **pp = &b->head, *prev = NULL;

    for (; *pp; prev = *pp, pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            if (b->tail == r)
                b->tail = prev;
            r->next = NULL;
            atomic_fetch_sub(&b->queued, 1);
            return;
        }
}

/* The earliest queue deadline of a flight's callers: a connection for it
 * is awaited (and made) only until then, and it is not sent after it. */
static uint64_t flight_deadline(const rbreq *f)
{
    uint64_t d = f->deadline;

    for (f = f->next; f; f = f->next)
        if (f->deadline < d)
            d = f->deadline;
    return d;
}

/* command_timeout_ms from the send of flight f (f->sent_at). */
static uint64_t reply_deadline(const rbatch *b, const rbreq *f)
{
    return f->sent_at + (uint64_t)b->pool->command_timeout_ms * 1000000u;
}

/* Queue every request of flight f on conn and write them in one send(),
 * now (f->sent_at); only a write that went out is counted. */
static int send_flight(rbatch *b, rpool_conn *conn, rbreq *f)
{
    uint64_t n = 0;
    int rc = HERMES_BE_OK;

    for (rbreq *r = f; r && rc == HERMES_BE_OK; r = r->next, n++)
        rc = rpool_append(b->pool, conn, r->argc, r->argv, r->lens);
    if (rc == HERMES_BE_OK)
        rc = rpool_send(b->pool, conn, reply_deadline(b, f), f->what);
    if (rc != HERMES_BE_OK)
        return rc;
    atomic_fetch_add(&b->sent, 1);
    if (n > 1)
        atomic_fetch_add(&b->shared, n);
    return rc;
}

/*
 * The calling thread is the reader of flight f, whose first request is its
 * own.  conn is the connection f was sent on, or NULL: then f is sent here
 * first, on a connection from the pool (a relayed flight's connection is
 * awaited, and made, only until the earliest queue deadline of its
 * callers).  Every flight, fresh or relayed, is allowed command_timeout_ms
 * from its send, as a read sent alone is: its callers' time in the queue
 * (at most command_timeout_ms) comes on top, as a wait for a connection
 * does.  So a slow server's replies are read as without batching, and a
 * timeout proves the server hung as any request's does.
 * Reads every reply, relays the queue, and marks every caller of f done.
 */
static void fly(rbatch *b, rbreq *f, rpool_conn *conn, int fresh)
{
    rpool *p = b->pool;
    rbreq *next, *r, *rnext, *failed = NULL;
    rpool_conn *next_conn = NULL;
    char why[RPOOL_WHY_CAP];
    int rc = HERMES_BE_OK;

    rpool_detail_sink(why, sizeof why);
    if (!conn) {
        uint64_t queued_until = fresh ? 0 : flight_deadline(f);

        rc = rpool_take_until(p, queued_until, &conn);
        if (rc == HERMES_BE_OK) {
            f->sent_at = mono_ns();
            if (queued_until && f->sent_at >= queued_until) {
                rpool_log(p, HERMES_LOG_WARN,
                          "%s queued past its deadline: not sent", f->what);
                rc = HERMES_BE_IO;
            } else {
                rc = send_flight(b, conn, f);
            }
        }
    }
    for (r = f; r; r = r->next) {
        r->reply = NULL;
        if (rc == HERMES_BE_OK) {
            rc = rpool_read_until(p, conn, 1, &r->reply, &r->shape, r->what,
                                  reply_deadline(b, f));
            if (rc != HERMES_BE_OK)
                failed = r;
        }
        r->rc = rc; /* failed still NULL: not sent, the flight's failure */
    }
    rpool_detail_sink(NULL, 0);

    pthread_mutex_lock(&b->mu);
    next = take_queue(b);
    if (!next)
        b->flights--;
    pthread_mutex_unlock(&b->mu);
    if (next && conn && !conn->broken) {
        next->sent_at = mono_ns();
        if (send_flight(b, conn, next) == HERMES_BE_OK) {
            next_conn = conn;
            conn = NULL;
        }
    }
    /* Before the next reader may take one: a broken connection backs the
     * pool off (timed out) or drops the idle ones (lost) first. */
    if (conn)
        rpool_put(p, conn);
    /* The reader's own reason is its flight's, not a later one's (the
     * relay's send, the pool's backoff notice). */
    if (f->rc != HERMES_BE_OK && why[0])
        rpool_detail(p, why);
    if (!next && !f->next)
        return; /* nobody else to tell */

    pthread_mutex_lock(&b->mu);
    for (r = f; r; r = rnext) {
        rnext = r->next;
        if (r == f)
            continue;
        /* The caller whose read failed gets that failure's reason; those
         * after it in the flight, whose replies were not read, are told
         * so (a refused reply was another caller's). */
        if (r->rc != HERMES_BE_OK && (!failed || failed == r))
            snprintf(r->why, sizeof r->why, "%s", why);
        else if (r->rc != HERMES_BE_OK)
            snprintf(r->why, sizeof r->why,
                     "%s not read: another read of its batch failed: %s",
                     r->what, why);
        r->state = RQ_DONE;
        pthread_cond_signal(&r->cv);
    }
    if (next) {
        next->state = RQ_READ;
        next->conn = next_conn;
        pthread_cond_signal(&next->cv);
    }
    pthread_mutex_unlock(&b->mu);
}

static void cv_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

int rbatch_read(rbatch *b, int argc, const char **argv, const size_t *lens,
                const rpool_shape *shape, const char *what, redisReply **reply)
{
    rbreq me = {
        .argc = argc,
        .argv = argv,
        .lens = lens,
        .shape = *shape,
        .what = what,
        .state = RQ_FLYING,
    };
    struct timespec ts;
    int timed_out = 0;

    atomic_fetch_add_explicit(&b->reads, 1, memory_order_relaxed);
    pthread_mutex_lock(&b->mu);
    if (b->flights < b->max) {
        /* The queue is empty (it fills only while every flight is
         * taken): this read goes at once, alone. */
        b->flights++;
        pthread_mutex_unlock(&b->mu);
        fly(b, &me, NULL, 1);
        *reply = me.reply;
        return me.rc;
    }
    me.deadline = rpool_deadline(b->pool);
    cv_init(&me.cv);
    me.state = RQ_QUEUED;
    if (b->tail)
        b->tail->next = &me;
    else
        b->head = &me;
    b->tail = &me;
    atomic_fetch_add(&b->queued, 1);
    ts.tv_sec = (time_t)(me.deadline / 1000000000u);
    ts.tv_nsec = (long)(me.deadline % 1000000000u);
    while (me.state == RQ_QUEUED && !timed_out)
        timed_out = pthread_cond_timedwait(&me.cv, &b->mu, &ts) == ETIMEDOUT;
    if (me.state == RQ_QUEUED || me.expired) {
        if (me.state == RQ_QUEUED)
            unqueue(b, &me);
        pthread_mutex_unlock(&b->mu);
        pthread_cond_destroy(&me.cv);
        *reply = NULL;
        rpool_log(b->pool, HERMES_LOG_WARN,
                  "%s queued behind other reads for %u ms: not sent", what,
                  (unsigned)b->pool->command_timeout_ms);
        return HERMES_BE_IO;
    }
    /* Taken into a flight: its reader is bounded by the flight's
     * deadline, which is no later than ours. */
    while (me.state == RQ_FLYING)
        pthread_cond_wait(&me.cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    if (me.state == RQ_READ)
        fly(b, &me, me.conn, 0);
    pthread_cond_destroy(&me.cv);
    if (me.rc != HERMES_BE_OK && me.why[0])
        rpool_detail(b->pool, me.why);
    *reply = me.reply;
    return me.rc;
}
