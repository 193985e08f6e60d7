/*
 * The near cache's invalidation connection: one thread per plugin state
 * that connects (through a private pool of one, so AUTH, SELECT, reply
 * bounds, backoff and fork safety are the pool's), enables broadcast
 * tracking redirected to itself, subscribes to __redis__:invalidate and
 * then only reads: each message evicts the keys it names, a null list
 * (FLUSHDB, FLUSHALL) empties the table.  When nothing arrives for
 * near_ping_ms it sends PING, which a subscribed RESP2 connection may,
 * and anything but an answer within command_timeout_ms counts as the
 * connection lost: a half-open socket (a partition, a frozen server) must
 * not leave the table trusted.  Any loss drops the whole table before
 * reads may use it again, then the thread reconnects.
 *
 * Reads never wait for this thread: they look at `alive` and the table.
 */
#include "near_impl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define CHANNEL "__redis__:invalidate"

/* Between attempts to connect: the pool's own backoff makes the early
 * ones fail at once, without touching the network. */
#define RETRY_MS 50u
/* After the server refused to track (redis < 6, an ACL): it will not
 * change its mind quickly. */
#define REFUSED_MS 2000u

/* One invalidation message: ["message", channel, [key...] or nil].  The
 * server puts every key changed under a prefix in one event-loop turn in
 * one message, so a busy server sends long lists; one longer than this
 * is refused, which drops the table and reconnects (safe, and logged). */
#define MSG_MAX_KEYS 1000000u
#define MSG_MAX_KEY (64u << 10)
#define MSG_MAX_BYTES (128u << 20)

enum { READ_STOPPED = -1 };

void (*rnear_observer)(const char *key, size_t len, int evicted);

static int stopping(rnear *nr)
{
    pthread_mutex_lock(&nr->mu);
    int stop = nr->stop;
    pthread_mutex_unlock(&nr->mu);
    return stop;
}

/* Sleeps ms, or until rnear_free() asks the thread to stop. */
static void pause_ms(rnear *nr, unsigned ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&nr->mu);
    while (!nr->stop &&
           pthread_cond_timedwait(&nr->cv, &nr->mu, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&nr->mu);
}

/* Logs a reply that is not what the handshake expects. */
static int refused(rnear *nr, const char *what, const redisReply *r)
{
    char q[128];

    if (r->type == REDIS_REPLY_ERROR)
        rpool_log(&nr->inv, HERMES_LOG_ERROR,
                  "near cache: %s refused: %s (near cache off until it "
                  "succeeds)",
                  what, rpool_quote(r->str, r->len, q, sizeof q));
    else
        rpool_log(&nr->inv, HERMES_LOG_ERROR,
                  "near cache: %s: unexpected reply of type %d", what, r->type);
    return HERMES_BE_PROTOCOL;
}

static int is_str(const redisReply *r, const char *s)
{
    size_t n = strlen(s);

    return r->type == REDIS_REPLY_STRING && r->len == n &&
           memcmp(r->str, s, n) == 0;
}

/*
 * CLIENT ID, then CLIENT TRACKING ON REDIRECT <own id> BCAST PREFIX
 * <p>:entry: PREFIX <p>:tag: and SUBSCRIBE in one round trip.  Tracking is
 * on before the subscription is confirmed, so once both replies are in,
 * every later change under the prefixes is reported here.
 */
static int setup(rnear *nr, rpool_conn *conn)
{
    rpool_shape shape = {3, 1, 4096, 4 * (4096 + RPOOL_FRAME)};
    redisReply *r[2] = {NULL, NULL};
    const char *idv[2] = {"CLIENT", "ID"};
    size_t idl[2] = {6, 2};
    char id[24];
    int rc;

    rc = rpool_append(&nr->inv, conn, 2, idv, idl);
    if (rc == HERMES_BE_OK)
        rc = rpool_read(&nr->inv, conn, 1, r, &shape, "near cache CLIENT ID");
    if (rc != HERMES_BE_OK)
        return rc;
    if (r[0]->type != REDIS_REPLY_INTEGER) {
        rc = refused(nr, "CLIENT ID", r[0]);
        freeReplyObject(r[0]);
        return rc;
    }
    snprintf(id, sizeof id, "%lld", r[0]->integer);
    freeReplyObject(r[0]);
    r[0] = NULL;

    const char *tv[10] = {"CLIENT", "TRACKING",    "ON",     "REDIRECT",
                          id,       "BCAST",       "PREFIX", nr->tracked[0],
                          "PREFIX", nr->tracked[1]};
    size_t tl[10] = {6,          8,
                     2,          8,
                     strlen(id), 5,
                     6,          nr->tracked_len[0],
                     6,          nr->tracked_len[1]};
    const char *sv[2] = {"SUBSCRIBE", CHANNEL};
    size_t sl[2] = {9, sizeof CHANNEL - 1};

    rc = rpool_append(&nr->inv, conn, 10, tv, tl);
    if (rc == HERMES_BE_OK)
        rc = rpool_append(&nr->inv, conn, 2, sv, sl);
    if (rc == HERMES_BE_OK)
        rc = rpool_read(&nr->inv, conn, 2, r, &shape,
                        "near cache CLIENT TRACKING");
    if (rc != HERMES_BE_OK)
        return rc;
    if (r[0]->type != REDIS_REPLY_STATUS)
        rc = refused(nr, "CLIENT TRACKING", r[0]);
    else if (r[1]->type != REDIS_REPLY_ARRAY || r[1]->elements != 3 ||
             !is_str(r[1]->element[0], "subscribe"))
        rc = refused(nr, "SUBSCRIBE " CHANNEL, r[1]);
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return rc;
}

/*
 * One message read: evicts what it names.  Returns -2 to go on, or the
 * drop cause when the stream is not what a subscribed connection sends.
 */
#define GO_ON (-2)

static int handle(rnear *nr, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        is_str(r->element[0], "pong"))
        return GO_ON;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        !is_str(r->element[0], "message") || !is_str(r->element[1], CHANNEL)) {
        rpool_log(&nr->inv, HERMES_LOG_ERROR,
                  "near cache: unexpected message on the invalidation "
                  "connection: near cache dropped");
        return RNEAR_DROP_CONNECTION;
    }
    const redisReply *keys = r->element[2];
    if (keys->type == REDIS_REPLY_NIL) {
        rnear_drop(nr, RNEAR_DROP_SERVER_FLUSH);
        return GO_ON;
    }
    if (keys->type != REDIS_REPLY_ARRAY) {
        rpool_log(&nr->inv, HERMES_LOG_ERROR,
                  "near cache: invalidation message without a key list: "
                  "near cache dropped");
        return RNEAR_DROP_CONNECTION;
    }
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];

        if (k->type == REDIS_REPLY_STRING) {
            if (rnear_observer)
                rnear_observer(k->str, k->len, 0);
            rnear_evict(nr, k->str, k->len);
            if (rnear_observer)
                rnear_observer(k->str, k->len, 1);
        }
        atomic_fetch_add_explicit(&nr->c.invalidations, 1,
                                  memory_order_relaxed);
    }
    return GO_ON;
}

/* Nothing is buffered in hiredis's reader: the socket must be polled. */
static int reader_empty(const redisContext *c)
{
    return c->reader->len <= c->reader->pos;
}

/*
 * Reads messages until the connection fails (returns the drop cause) or
 * rnear_free() shuts the socket down (READ_STOPPED).
 */
static int read_messages(rnear *nr, rpool_conn *conn)
{
    rpool_shape shape = {MSG_MAX_KEYS, 2, MSG_MAX_KEY, MSG_MAX_BYTES};
    redisContext *c = conn->c;

    for (;;) {
        const char *what = "near cache invalidations";
        redisReply *r = NULL;
        int rc, cause;

        if (reader_empty(c)) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            int pr = poll(&pfd, 1, (int)nr->ping_ms);

            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0) {
                /* Quiet for ping_ms: the answer (or any message) must come
                 * within command_timeout_ms. */
                const char *pv[1] = {"PING"};
                size_t pl[1] = {4};

                if (rpool_append(&nr->inv, conn, 1, pv, pl) != HERMES_BE_OK)
                    return RNEAR_DROP_CONNECTION;
                what = "near cache heartbeat PING";
            }
        }
        rc = rpool_read(&nr->inv, conn, 1, &r, &shape, what);
        if (rc != HERMES_BE_OK) {
            if (stopping(nr))
                return READ_STOPPED;
            return conn->timed_out ? RNEAR_DROP_HEARTBEAT
                                   : RNEAR_DROP_CONNECTION;
        }
        cause = handle(nr, r);
        freeReplyObject(r);
        if (cause != GO_ON)
            return cause;
    }
}

static void *reader_main(void *arg)
{
    rnear *nr = arg;

    while (!stopping(nr)) {
        rpool_conn *conn;
        int rc = rpool_take(&nr->inv, &conn);

        if (rc != HERMES_BE_OK) {
            pause_ms(nr, RETRY_MS);
            continue;
        }
        rc = setup(nr, conn);
        if (rc != HERMES_BE_OK) {
            /* The connection is not subscribed, or half so: never reuse. */
            conn->broken = 1;
            rpool_put(&nr->inv, conn);
            pause_ms(nr, rc == HERMES_BE_PROTOCOL ? REFUSED_MS : RETRY_MS);
            continue;
        }
        pthread_mutex_lock(&nr->mu);
        if (nr->stop) {
            pthread_mutex_unlock(&nr->mu);
            conn->broken = 1;
            rpool_put(&nr->inv, conn);
            break;
        }
        nr->conn = conn;
        nr->fd = conn->c->fd;
        pthread_mutex_unlock(&nr->mu);

        /* The table is empty here: it was dropped when the last
         * connection was lost, and nothing is installed while !alive. */
        atomic_store(&nr->alive, 1);
        RNEAR_COUNT(nr, tracking_starts);
        rpool_log(&nr->inv, HERMES_LOG_INFO, "near cache: tracking %s and %s",
                  nr->tracked[0], nr->tracked[1]);

        int cause = read_messages(nr, conn);

        if (cause == READ_STOPPED)
            atomic_store(&nr->alive, 0);
        else
            rnear_drop(nr, (rnear_cause)cause);
        pthread_mutex_lock(&nr->mu);
        nr->conn = NULL;
        nr->fd = -1;
        pthread_mutex_unlock(&nr->mu);
        conn->broken = 1; /* subscribed: never handed to anyone else */
        rpool_put(&nr->inv, conn);
        if (cause != READ_STOPPED)
            rpool_log(&nr->inv, HERMES_LOG_WARN,
                      "near cache: invalidation connection lost (%s): "
                      "near cache dropped, reconnecting",
                      cause == RNEAR_DROP_HEARTBEAT ? "no answer to PING"
                                                    : "closed or broken");
    }
    return NULL;
}

/* The reader's stack (room for the sanitizers too).  A stack of its own (not
 * one from the C library's cache) is never the one of a parent's reader that a
 * fork child reuses, which ThreadSanitizer would take for the same thread. */
#define READER_STACK (2u << 20)

int rnear_reader_start_locked(rnear *nr)
{
    sigset_t all, old;
    pthread_attr_t attr;
    int rc;

    void *stack;

    if (posix_memalign(&stack, 4096, READER_STACK) != 0)
        return HERMES_BE_NOMEM;
    /* A fork child's copy of the parent reader's stack goes only now, so
     * that the new one cannot be at the same address. */
    free(nr->stack);
    nr->stack = stack;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, nr->stack, READER_STACK);
    /* The thread takes no signal meant for the application's threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&nr->thread, &attr, reader_main, nr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        rpool_log(&nr->inv, HERMES_LOG_ERROR,
                  "near cache: cannot start the invalidation reader: %s",
                  strerror(rc));
        return HERMES_BE_NOMEM;
    }
    nr->running = 1;
    return HERMES_BE_OK;
}

void rnear_reader_stop(rnear *nr)
{
    int join;

    atomic_store(&nr->closing, 1);
    pthread_mutex_lock(&nr->mu);
    nr->stop = 1;
    /* Wakes a reader blocked in poll() on the socket: it reads EOF. */
    if (nr->fd >= 0)
        shutdown(nr->fd, SHUT_RDWR);
    pthread_cond_broadcast(&nr->cv);
    join = nr->running;
    nr->running = 0;
    pthread_mutex_unlock(&nr->mu);
    if (join)
        pthread_join(nr->thread, NULL);
    free(nr->stack);
    nr->stack = NULL;
    pthread_mutex_lock(&nr->mu);
    if (nr->conn) {
        /* A fork child's copy of the parent's connection. */
        rpool_put(&nr->inv, nr->conn);
        nr->conn = NULL;
    }
    pthread_mutex_unlock(&nr->mu);
}
