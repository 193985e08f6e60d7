/*
 * The lock-release listener (wait.h): one subscriber connection per plugin
 * state, read by the callers waiting for a lock themselves.
 *
 * No thread of its own: of the callers inside rwait_wait, one at a time is
 * the reader, which polls the connection until its own deadline, stamps
 * each message with the time it arrived and wakes the callers waiting on
 * its channel; when it leaves (its own notice came, or its deadline) it
 * hands the role to another waiter.  The caller that gets a notice is
 * often the reader itself, which then needs no wake-up; and a fork child
 * (or a program under ThreadSanitizer) never has to start a thread.  While
 * nobody waits, messages wait in the socket; read late, they are stamped
 * late, which can only wake a caller for nothing (one extra read), never
 * make one miss a release.
 *
 * Why a notice is never missed: a caller passes since, a time taken
 * before the attempt that found the lock held.  A release that happened
 * after that attempt reached the server was published after it, so its
 * message arrives, and is stamped here, after since, provided the channel
 * was already subscribed when it was published.  A channel whose
 * subscription the server confirmed after since may have missed it, so
 * such a wait returns at once, unwoken, and the caller reads again (then
 * waits with a later since, on a channel now listened to).  Channels stay
 * subscribed for LINGER after their last waiter leaves, so that a caller
 * going back to waiting finds its channel still there.
 *
 * Failure: a wait never outlasts its until_ns: the reader's connect and
 * handshake end by its deadline and it polls with that deadline; the
 * others wait on a condition variable with theirs.  So a dead or hung
 * server, or a connection that was killed, makes callers read again at
 * their usual pace; nothing else changes.  While the listener cannot
 * connect (backing off, BACKOFF_FIRST_MS doubling to BACKOFF_MAX_MS after
 * a failure; at once after a connection that worked) waits fail at once
 * with HERMES_BE_IO and the core sleeps instead.  A request without an
 * answer within command_timeout_ms (a stopped server), or a reply that
 * pub/sub does not send, drops the connection; the next one subscribes
 * every channel again, which makes their waiters read again.
 *
 * fork: a child must not touch the parent's socket.  mu is registered
 * with the plugin's fork registry (forklist.h), whose handlers hold it
 * across fork() and mark the child's copy; the child's first wait (or
 * close) forgets the parent's connection without writing to it
 * (rpool_conn_free) and its subscriptions.  No other registered lock is
 * taken with mu held (rpool_conn_free takes none; the reader connects
 * without mu), so the handlers may take mu and the pool's in any order.
 *
 * Writes use send() with MSG_NOSIGNAL: no SIGPIPE.
 */
#include "wait.h"

#include <hiredis/read.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NBUCKETS 64
#define MAX_SUBS 4096u           /* channels listened to at once */
#define MAX_CHANNEL 4096u        /* longest lock key waited for */
#define LINGER_NS 1000000000u    /* a channel outlives its last waiter */
#define PING_IDLE_NS 1000000000u /* silence before a PING, while waited on */
#define BACKOFF_FIRST_MS 50u
#define BACKOFF_MAX_MS 2000u

/* A caller inside rwait_wait, on its own stack. */
typedef struct rw_waiter {
    pthread_cond_t cv;
    int woken;     /* a release was notified after its since */
    int listening; /* the subscription was confirmed during its wait */
    struct rw_waiter *next;
} rw_waiter;

enum { SUB_WANT, SUB_SENT, SUB_ON }; /* SUBSCRIBE to send, sent, confirmed */

/* One channel (a lock key) listened to, or to be. */
typedef struct rw_sub {
    struct rw_sub *next; /* hash chain */
    int state;
    uint64_t on_at;       /* when its subscription was confirmed */
    uint64_t released_at; /* when its last release notice arrived; 0: none */
    uint64_t idle_since;  /* when its last waiter left */
    rw_waiter *waiters;
    size_t len;
    char chan[]; /* the lock key */
} rw_sub;

struct rwait {
    rpool *pool;
    pthread_mutex_t mu;   /* guards everything below */
    int forked;           /* a fork child's copy, not yet cleaned up */
    int reading;          /* a waiter is the reader */
    int send_failed;      /* a waiter's write failed: the reader drops */
    rpool_conn *conn;     /* the subscriber connection: only the reader
                             reads it (without mu), connects or drops it */
    int down;             /* no connection and the last connect failed */
    int healthy;          /* the connection has answered */
    unsigned outstanding; /* replies owed for commands sent */
    uint64_t reply_due;   /* when the next one is overdue; 0: none owed */
    uint64_t last_rx;     /* when the server last sent anything */
    uint32_t backoff_ms;
    uint64_t retry_at;
    unsigned nsubs, nwaiters;
    rw_sub *buckets[NBUCKETS];
    hm_forklist_entry fork; /* mu registered for fork() */
};

/* ---------------------------------------------------------------- fork */

/* The child's hook (forklist.h).  Only marks: the cleanup frees and
 * closes, which waits for a call. */
static void forked(void *self)
{
    rwait *w = self;

    w->forked = 1;
}

/* -------------------------------------------------------- channels */

static uint64_t now_ns(const rwait *w)
{
    return rpool_now_ns(w->pool);
}

static size_t bucket_of(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)(h % NBUCKETS);
}

static rw_sub *sub_find(rwait *w, const char *chan, size_t len)
{
    for (rw_sub *s = w->buckets[bucket_of(chan, len)]; s; s = s->next)
        if (s->len == len && memcmp(s->chan, chan, len) == 0)
            return s;
    return NULL;
}

static void free_subs(rwait *w)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        rw_sub *s = w->buckets[b], *next;

        for (; s; s = next) {
            next = s->next;
            free(s);
        }
        w->buckets[b] = NULL;
    }
    w->nsubs = 0;
    w->nwaiters = 0;
}

/* Wakes every waiter of s: with a release (woken) or with the news that
 * s is listened to now (listening). */
static void wake_waiters(rw_sub *s, int released)
{
    for (rw_waiter *x = s->waiters; x; x = x->next) {
        if (released)
            x->woken = 1;
        else
            x->listening = 1;
        pthread_cond_signal(&x->cv);
    }
}

/* ------------------------------------------------------ connection */

/* Logs for the listener.  Not rpool_log: that also makes the text the
 * reason of the calling thread's failing operation, and a wait that
 * cannot listen does not fail the caller. */
static void wlog(rwait *w, int level, const char *what, const char *why)
{
    char msg[512];
    const hermes_host *host = w->pool->host;

    if (!host || !host->log)
        return;
    snprintf(msg, sizeof msg,
             "redis %s: lock-release listener: %s: %s: callers waiting "
             "for a lock read again at their usual pace meanwhile",
             w->pool->endpoint, what, why);
    host->log(host->ctx, level, msg);
}

/* Called with mu held: forget the channels nobody has waited for in
 * LINGER, while there is no connection to unsubscribe them on. */
static void forget_idle_locked(rwait *w, uint64_t now)
{
    for (size_t b = 0; b < NBUCKETS; b++)
        for (rw_sub **pp = &w->buckets[b]; *pp;) {
            rw_sub *s = *pp;

            if (!s->waiters && now - s->idle_since >= LINGER_NS) {
                *pp = s->next;
                w->nsubs--;
                free(s);
            } else {
                pp = &s->next;
            }
        }
}

/* Called with mu held: the connection is gone; every channel must be
 * subscribed again on the next one. */
static void drop_locked(rwait *w, uint64_t now, const char *why)
{
    wlog(w, HERMES_LOG_WARN, w->conn ? "connection dropped" : "no connection",
         why);
    if (w->conn) {
        rpool_conn_free(w->conn);
        w->conn = NULL;
    }
    for (size_t b = 0; b < NBUCKETS; b++)
        for (rw_sub *s = w->buckets[b]; s; s = s->next) {
            s->state = SUB_WANT;
            s->on_at = 0;
        }
    w->outstanding = 0;
    w->reply_due = 0;
    if (w->healthy) {
        /* It worked until now (a CLIENT KILL, a restart): at once. */
        w->healthy = 0;
        w->retry_at = now;
    } else {
        w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_FIRST_MS;
        if (w->backoff_ms > BACKOFF_MAX_MS)
            w->backoff_ms = BACKOFF_MAX_MS;
        w->retry_at = now + (uint64_t)w->backoff_ms * 1000000u;
        w->down = 1;
    }
}

/* Called with mu held: the forked child's cleanup (see the top). */
static void after_fork_locked(rwait *w)
{
    if (!w->forked)
        return;
    w->forked = 0;
    if (w->conn)
        rpool_conn_free(w->conn); /* another process's socket: forgotten */
    w->conn = NULL;
    free_subs(w); /* their waiters were the parent's threads */
    w->reading = w->send_failed = 0;
    w->down = w->healthy = 0;
    w->outstanding = 0;
    w->reply_due = w->retry_at = 0;
    w->backoff_ms = 0;
}

/* Sends one command; -1 when the socket does not take it at once (a
 * server that stopped reading is as good as gone). */
static int send_cmd(rwait *w, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    int fd = w->conn->c->fd, rc = 0;
    size_t off = 0;

    if (len < 0)
        return -1;
    while (off < (size_t)len) {
        ssize_t n =
            send(fd, cmd + off, (size_t)len - off, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n >= 0)
            off += (size_t)n;
        else if (errno != EINTR) {
            rc = -1;
            break;
        }
    }
    redisFreeCommand(cmd);
    return rc;
}

/* Called with mu held: a command sent, replies owed. */
static void owe(rwait *w, unsigned replies, uint64_t now)
{
    if (w->outstanding == 0)
        w->reply_due = now + (uint64_t)w->pool->command_timeout_ms * 1000000u;
    w->outstanding += replies;
}

/* One command over up to 64 channels; the subs in gone are freed once it
 * is sent (their channel bytes are its arguments). */
typedef struct batch {
    const char *argv[65];
    size_t lens[65];
    int argc;
    rw_sub *gone[64];
    int ngone;
} batch;

static int batch_flush(rwait *w, batch *bt, uint64_t now)
{
    int rc = 0;

    if (bt->argc > 1) {
        rc = send_cmd(w, bt->argc, bt->argv, bt->lens);
        if (rc == 0)
            owe(w, (unsigned)bt->argc - 1, now);
    }
    for (int i = 0; i < bt->ngone; i++)
        free(bt->gone[i]);
    bt->argc = 1;
    bt->ngone = 0;
    return rc;
}

static int batch_add(rwait *w, batch *bt, rw_sub *s, int forget, uint64_t now)
{
    bt->argv[bt->argc] = s->chan;
    bt->lens[bt->argc++] = s->len;
    if (forget)
        bt->gone[bt->ngone++] = s;
    return bt->argc == 65 ? batch_flush(w, bt, now) : 0;
}

/*
 * Called with mu held and a connection: SUBSCRIBE the channels waited
 * for; UNSUBSCRIBE and forget those idle for LINGER (a later SUBSCRIBE of
 * one reaches the server after its UNSUBSCRIBE); PING a silent connection
 * while someone waits, so that a dead one is noticed.  -1 when the
 * connection failed.
 */
static int send_locked(rwait *w, uint64_t now)
{
    batch sub = {.argv = {"SUBSCRIBE"}, .lens = {9}, .argc = 1};
    batch unsub = {.argv = {"UNSUBSCRIBE"}, .lens = {11}, .argc = 1};
    int rc = 0;

    for (size_t b = 0; b < NBUCKETS && rc == 0; b++) {
        for (rw_sub **pp = &w->buckets[b]; *pp && rc == 0;) {
            rw_sub *s = *pp;

            if (!s->waiters && s->state != SUB_SENT &&
                now - s->idle_since >= LINGER_NS) {
                *pp = s->next;
                w->nsubs--;
                if (s->state == SUB_ON)
                    rc = batch_add(w, &unsub, s, 1, now);
                else
                    free(s);
                continue;
            }
            if (s->state == SUB_WANT) {
                s->state = SUB_SENT;
                rc = batch_add(w, &sub, s, 0, now);
            }
            pp = &s->next;
        }
    }
    if (batch_flush(w, &unsub, now) != 0 || batch_flush(w, &sub, now) != 0)
        rc = -1;
    if (rc == 0 && w->nwaiters && w->outstanding == 0 &&
        now - w->last_rx >= PING_IDLE_NS) {
        const char *argv[1] = {"PING"};
        size_t lens[1] = {4};

        rc = send_cmd(w, 1, argv, lens);
        if (rc == 0)
            owe(w, 1, now);
    }
    return rc;
}

/* Whether r is a bulk string equal to the NUL-terminated s. */
static int is_str(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING && r->len == strlen(s) &&
           memcmp(r->str, s, r->len) == 0;
}

/*
 * Called with mu held: one reply of the subscriber connection.  A
 * "message" is a release; "subscribe" confirms a channel; "unsubscribe"
 * and "pong" only answer a command.  Anything else (an error reply: the
 * server refuses SUBSCRIBE, a proxy without pub/sub) is -1, with why.
 */
static int dispatch(rwait *w, const redisReply *r, uint64_t now,
                    const char **why)
{
    const redisReply *kind, *chan;

    if (r->type == REDIS_REPLY_ERROR) {
        *why = r->str;
        return -1;
    }
    *why = "unexpected reply";
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return -1;
    kind = r->element[0];
    chan = r->element[1];
    if (is_str(kind, "message") && r->elements == 3 &&
        chan->type == REDIS_REPLY_STRING) {
        rw_sub *s = sub_find(w, chan->str, chan->len);

        if (s && s->state == SUB_ON) {
            s->released_at = now;
            wake_waiters(s, 1);
        }
        return 0;
    }
    if (w->outstanding == 0)
        return -1; /* an answer to nothing we asked */
    if (is_str(kind, "subscribe") && chan->type == REDIS_REPLY_STRING) {
        rw_sub *s = sub_find(w, chan->str, chan->len);

        if (s && s->state == SUB_SENT) {
            s->state = SUB_ON;
            s->on_at = now;
            wake_waiters(s, 0);
        }
    } else if (!is_str(kind, "unsubscribe") && !is_str(kind, "pong")) {
        return -1;
    }
    w->healthy = 1;
    w->backoff_ms = 0;
    if (--w->outstanding > 0)
        w->reply_due = now + (uint64_t)w->pool->command_timeout_ms * 1000000u;
    else
        w->reply_due = 0;
    return 0;
}

/* Called with mu held: every complete reply the reader has read.  -1 when
 * the connection must go (why says why). */
static int dispatch_all(rwait *w, uint64_t now, const char **why)
{
    redisContext *c = w->conn->c;

    for (;;) {
        void *r = NULL;

        if (redisGetReplyFromReader(c, &r) != REDIS_OK) {
            *why = w->conn->guard.why[0] ? w->conn->guard.why : c->errstr;
            return -1;
        }
        if (!r)
            return 0;
        w->conn->guard.used = 0; /* the next reply's budget */
        int rc = dispatch(w, r, now, why);
        freeReplyObject(r);
        if (rc != 0)
            return -1;
    }
}

/* What a pub/sub reply may be: [kind, channel, payload or count]. */
static rpool_shape pubsub_shape(void)
{
    rpool_shape s = {3, 1, MAX_CHANNEL, 4 * (MAX_CHANNEL + RPOOL_FRAME)};

    return s;
}

/* The host's until_ns on CLOCK_MONOTONIC (condition variables, ppoll and
 * the pool's deadlines use that clock). */
static uint64_t mono_of(const rwait *w, uint64_t until)
{
    struct timespec ts;
    uint64_t now = now_ns(w);

    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mono = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return until > now ? mono + (until - now) : mono;
}

/* Called with mu held by the reader, without a connection: connect, by
 * until, without holding mu meanwhile. */
static void connect_locked(rwait *w, uint64_t until)
{
    rpool_conn *conn = NULL;
    uint64_t deadline = mono_of(w, until);

    pthread_mutex_unlock(&w->mu);
    int rc = rpool_connect(w->pool, deadline, &conn);
    pthread_mutex_lock(&w->mu);
    uint64_t now = now_ns(w);
    if (rc != HERMES_BE_OK) {
        w->healthy = 0;
        drop_locked(w, now,
                    rc == HERMES_BE_NOMEM ? "out of memory" : "cannot connect");
        return;
    }
    w->conn = conn;
    w->conn->guard.shape = pubsub_shape();
    w->conn->guard.used = 0;
    w->conn->guard.why[0] = '\0';
    w->down = 0;
    w->send_failed = 0;
    w->last_rx = now;
}

/*
 * Called with mu held by the reader: one round of the connection's work.
 * Connect if need be, send what is to be sent, sleep in ppoll() (without
 * mu) until data comes, until, or a reply is overdue, and dispatch what
 * came.  Returns 0 when there is no connection to listen on (the server
 * unreachable, or backed off from).
 */
static int read_locked(rwait *w, uint64_t until)
{
    uint64_t now = now_ns(w);

    if (!w->conn) {
        forget_idle_locked(w, now);
        if (now < w->retry_at)
            return 0;
        connect_locked(w, until);
        if (!w->conn)
            return 0;
    }
    if (w->send_failed || send_locked(w, now) != 0) {
        drop_locked(w, now, "cannot send");
        return 0;
    }
    uint64_t stop = until;
    if (w->reply_due && w->reply_due < stop)
        stop = w->reply_due;
    uint64_t left = stop > now ? stop - now : 0;
    redisContext *c = w->conn->c;
    struct pollfd pf = {c->fd, POLLIN, 0};
    struct timespec ts = {(time_t)(left / 1000000000u),
                          (long)(left % 1000000000u)};
    pthread_mutex_unlock(&w->mu);

    int ready = ppoll(&pf, 1, &ts, NULL);
    int rd = REDIS_OK;
    if (ready > 0) {
        rd = redisBufferRead(c);
        /* A string longer than any channel is refused before it is all
         * buffered (hiredis keeps an unfinished reply whole). */
        if (rd == REDIS_OK &&
            c->reader->len - c->reader->pos > pubsub_shape().bytes + 16384) {
            rd = REDIS_ERR;
            snprintf(c->errstr, sizeof c->errstr, "reply too long");
        }
    }

    pthread_mutex_lock(&w->mu);
    now = now_ns(w);
    const char *why = NULL;
    if (rd != REDIS_OK) {
        why = c->errstr[0] ? c->errstr : "connection lost";
    } else if (ready > 0) {
        w->last_rx = now;
        if (dispatch_all(w, now, &why) == 0)
            why = NULL;
    }
    if (!why && w->reply_due && now >= w->reply_due)
        why = "no answer within command_timeout_ms";
    if (why) {
        char msg[160];

        snprintf(msg, sizeof msg, "%s", why); /* why may be in conn */
        drop_locked(w, now, msg);
    }
    return 1;
}

/* Called with mu held by a reader that leaves: another waiter, if there
 * is one, takes the role. */
static void hand_over_locked(rwait *w)
{
    w->reading = 0;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (rw_sub *s = w->buckets[b]; s; s = s->next)
            if (s->waiters) {
                pthread_cond_signal(&s->waiters->cv);
                return;
            }
}

rwait *rwait_new(rpool *p)
{
    rwait *w = calloc(1, sizeof *w);

    if (!w)
        return NULL;
    w->pool = p;
    pthread_mutex_init(&w->mu, NULL);
    hm_forklist_add(&w->fork, &w->mu, forked, w);
    return w;
}

void rwait_free(rwait *w)
{
    if (!w)
        return;
    hm_forklist_remove(&w->fork);
    pthread_mutex_lock(&w->mu);
    after_fork_locked(w);
    pthread_mutex_unlock(&w->mu);
    if (w->conn)
        rpool_conn_free(w->conn);
    free_subs(w);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* A condition variable on CLOCK_MONOTONIC. */
static void waiter_init(rw_waiter *x)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&x->cv, &ca);
    pthread_condattr_destroy(&ca);
    x->woken = x->listening = 0;
    x->next = NULL;
}

/* Called with mu held: the channel of key, added (to be subscribed) when
 * new; NULL when there are too many.  A new one counts as idle from now. */
static rw_sub *sub_get(rwait *w, hermes_bytes key, uint64_t now)
{
    rw_sub *s = sub_find(w, key.data, key.len);

    if (s || w->nsubs >= MAX_SUBS)
        return s;
    s = malloc(sizeof *s + key.len);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->state = SUB_WANT;
    s->idle_since = now;
    s->len = key.len;
    memcpy(s->chan, key.data, key.len);
    size_t b = bucket_of(s->chan, s->len);
    s->next = w->buckets[b];
    w->buckets[b] = s;
    w->nsubs++;
    return s;
}

int rwait_wait(rwait *w, hermes_bytes key, uint64_t since_ns, uint64_t until_ns,
               int *woken)
{
    int rc = HERMES_BE_OK;

    *woken = 0;
    if (key.len == 0 || key.len > MAX_CHANNEL)
        return HERMES_BE_UNSUPPORTED;
    pthread_mutex_lock(&w->mu);
    after_fork_locked(w);
    uint64_t now = now_ns(w);
    if (w->down && now < w->retry_at) {
        pthread_mutex_unlock(&w->mu);
        return HERMES_BE_IO; /* the core sleeps as without notices */
    }
    rw_sub *s = sub_get(w, key, now);
    if (!s) {
        pthread_mutex_unlock(&w->mu);
        return HERMES_BE_IO;
    }
    if (s->state == SUB_ON &&
        (s->released_at > since_ns || s->on_at > since_ns)) {
        /* Notified already, or listened to only since then. */
        *woken = s->released_at > since_ns;
        s->idle_since = now;
        pthread_mutex_unlock(&w->mu);
        return HERMES_BE_OK;
    }
    rw_waiter x;
    waiter_init(&x);
    x.next = s->waiters;
    s->waiters = &x; /* from now on s is not forgotten */
    w->nwaiters++;
    /* A new channel is subscribed at once, unless the reader is busy
     * connecting (it subscribes every channel once it has). */
    if (s->state == SUB_WANT && w->conn && !w->send_failed &&
        send_locked(w, now) != 0)
        w->send_failed = 1;
    uint64_t mono_until = mono_of(w, until_ns);
    struct timespec ts = {(time_t)(mono_until / 1000000000u),
                          (long)(mono_until % 1000000000u)};
    int reader = 0;
    while (!x.woken && !x.listening && now_ns(w) < until_ns) {
        if (!w->reading)
            w->reading = reader = 1;
        if (reader) {
            if (!read_locked(w, until_ns)) {
                rc = HERMES_BE_IO; /* nothing to listen on: the core sleeps */
                break;
            }
        } else if (pthread_cond_timedwait(&x.cv, &w->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    *woken = x.woken;
    /* s is still there: a channel with waiters is never forgotten. */
    for (rw_waiter **pp = &s->waiters; *pp; pp = &(*pp)->next)
        if (*pp == &x) {
            *pp = x.next;
            break;
        }
    w->nwaiters--;
    s->idle_since = now_ns(w);
    if (reader)
        hand_over_locked(w);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&x.cv);
    return rc;
}
