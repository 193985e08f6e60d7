/*
 * Connection pool of the redis plugin: a mutex-protected idle list of
 * hiredis contexts, lazy connects with exponential backoff, and fork
 * safety.  See pool.h for the contract; this file explains the choices.
 */
#include "pool.h"

#include <hiredis/sds.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* After a failed connect no new connect is tried for backoff_ms, starting
 * here and doubling up to the cap; a success resets it. */
#define BACKOFF_FIRST_MS 50u
#define BACKOFF_MAX_MS 2000u

/* Waits are bounded by a monotonic deadline: a wall-clock jump must not
 * stretch or cut them. */
static void cv_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

/*
 * A caller waiting for a context when all size of them are borrowed.
 * Waiters queue in arrival order and a returned context is handed to the
 * first of them directly: it wakes owning it, instead of racing every
 * other thread for the idle list and going back to sleep when it loses
 * (each lost race was a futex wake and a context switch for nothing,
 * which is what made 32 callers on 8 connections slow).  Lives on the
 * waiter's stack, linked into p->waiters while queued.
 */
typedef struct rpool_waiter {
    pthread_cond_t cv;
    rpool_conn *got; /* the context handed over, or NULL */
    int retry;       /* a slot was freed or the server is in doubt: look
                        again (backoff, idle list, live < size) */
    struct rpool_waiter *next;
} rpool_waiter;

/* Called with mu held: take the first waiter off the queue, or NULL. */
static rpool_waiter *pop_waiter(rpool *p)
{
    rpool_waiter *w = p->waiters;

    if (w) {
        p->waiters = w->next;
        if (!p->waiters)
            p->waiters_tail = NULL;
        w->next = NULL;
    }
    return w;
}

/* Called with mu held: every waiter looks again (a freed slot, a backoff
 * to fail fast on). */
static void wake_all_locked(rpool *p)
{
    rpool_waiter *w;

    while ((w = pop_waiter(p)) != NULL) {
        w->retry = 1;
        pthread_cond_signal(&w->cv);
    }
}

/* Called with mu held: take w off the queue if it is still on it. */
static void unqueue(rpool *p, rpool_waiter *w)
{
    rpool_waiter **pp = &p->waiters, *prev = NULL;

    for (; *pp; prev = *pp, pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            if (p->waiters_tail == w)
                p->waiters_tail = prev;
            w->next = NULL;
            return;
        }
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The host's clock drives backoff so that the core can reason about it; the
 * condition variable below needs the real CLOCK_MONOTONIC anyway. */
static uint64_t mono_ns(const rpool *p)
{
    if (p->host && p->host->monotonic_ns)
        return p->host->monotonic_ns(p->host->ctx);
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t rpool_now_ns(const rpool *p)
{
    return mono_ns(p);
}

static struct timeval ms_to_tv(uint32_t ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

const char *rpool_quote(const char *s, size_t n, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;

    buf[o++] = '\'';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int plain = c >= 0x20 && c != 0x7f && c != '\\';
        size_t need = plain ? 1 : 4;

        /* Keep room for "...", the closing quote and the NUL. */
        if (o + need + 5 > cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (plain) {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

int rpool_has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static _Thread_local char *detail_sink;
static _Thread_local size_t detail_sink_cap;

void rpool_detail_sink(char *buf, size_t cap)
{
    detail_sink = cap ? buf : NULL;
    detail_sink_cap = cap;
    if (detail_sink)
        detail_sink[0] = '\0';
}

/* The reason of the failure the current operation returns (ABI 1.1). */
static void pool_detail(rpool *p, const char *msg)
{
    if (detail_sink)
        snprintf(detail_sink, detail_sink_cap, "%s", msg);
    if (p->host && HERMES_HOST_HAS(p->host, error_detail) &&
        p->host->error_detail)
        p->host->error_detail(p->host->ctx, msg);
}

void rpool_detail(rpool *p, const char *msg)
{
    pool_detail(p, msg);
}

void rpool_log(rpool *p, int level, const char *fmt, ...)
{
    char msg[512];
    int off;
    va_list ap;

    if (!p->host || !p->host->log)
        return;
    off = snprintf(msg, sizeof msg, "redis %s: ", p->endpoint);
    if (off < 0 || (size_t)off >= sizeof msg)
        off = 0;
    va_start(ap, fmt);
    vsnprintf(msg + off, sizeof msg - (size_t)off, fmt, ap);
    va_end(ap);
    p->host->log(p->host->ctx, level, msg);
    /* Errors and warnings are logged on the way to returning a failure:
     * the same text is that failure's reason in hermes_errmsg(). */
    if (level <= HERMES_LOG_WARN)
        pool_detail(p, msg);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *failed = 1;
    return d;
}

/*
 * fork() while other threads use the pool: the child would inherit mu held
 * by a thread that does not exist there.  Every pool registers mu with the
 * plugin's fork registry (forklist.h), whose handlers hold it across the
 * fork.  The child finds the parent's contexts by their fork generation
 * and never touches their sockets (check_fork_locked): it reads a number
 * instead of calling getpid() (a system call) each time.  No pool
 * function takes another registered lock with mu held; the objects that
 * use a pool register after it, so their locks are taken before its own.
 */
int rpool_init(rpool *p, const hermes_host *host, const rpool_settings *s)
{
    int failed = 0;
    size_t elen;

    memset(p, 0, sizeof *p);
    p->host = host;
    p->port = s->port;
    p->db = s->db;
    p->connect_timeout_ms = s->connect_timeout_ms;
    p->command_timeout_ms = s->command_timeout_ms;
    p->size = s->size;
    p->max_value_bytes = s->max_value_bytes;
    p->hostname = dup_or_null(s->host, &failed);
    p->socket_path = dup_or_null(s->socket_path, &failed);
    p->password = dup_or_null(s->password, &failed);
    elen = (s->socket_path ? strlen(s->socket_path) : strlen(s->host)) + 16;
    p->endpoint = malloc(elen);
    if (failed || !p->endpoint) {
        rpool_destroy(p);
        return HERMES_BE_NOMEM;
    }
    if (s->socket_path)
        snprintf(p->endpoint, elen, "unix:%s", s->socket_path);
    else
        snprintf(p->endpoint, elen, "%s:%d", s->host, s->port);

    pthread_mutex_init(&p->mu, NULL);
    p->gen = hm_forklist_generation();
    atomic_init(&p->connects, 0);
    atomic_init(&p->connect_failures, 0);
    atomic_init(&p->commands, 0);
    atomic_init(&p->errors, 0);
    atomic_init(&p->hung, 0);
    hm_forklist_add(&p->fork, &p->mu, NULL, p);
    return HERMES_BE_OK;
}

/*
 * Forget a context created by another process (we are a fork child).  Its
 * socket is shared with the parent, so nothing may be written to it: hiredis
 * releases the memory while we keep the descriptor, which we then close
 * ourselves.  Closing our copy of the descriptor sends nothing, because the
 * parent still holds the socket open.
 */
static void drop_foreign(rpool_conn *conn)
{
    int fd = redisFreeKeepFd(conn->c);

    if (fd >= 0)
        close(fd);
    free(conn);
}

static void free_conn(rpool_conn *conn)
{
    if (conn->gen != hm_forklist_generation()) {
        drop_foreign(conn);
        return;
    }
    redisFree(conn->c);
    free(conn);
}

/*
 * Called with mu held.  In a fork child the idle list holds the parent's
 * sockets and `live` counts contexts borrowed by parent threads that do not
 * exist here: start over with an empty pool.
 */
static void check_fork_locked(rpool *p)
{
    rpool_conn *conn;

    if (p->gen == hm_forklist_generation())
        return;
    while ((conn = p->idle) != NULL) {
        p->idle = conn->next;
        drop_foreign(conn);
    }
    p->live = 0;
    p->gen = hm_forklist_generation();
    /* The parent's waiters do not exist here (their condition variables
     * were on their stacks); no thread of the child is waiting yet. */
    p->waiters = p->waiters_tail = NULL;
}

void rpool_destroy(rpool *p)
{
    rpool_conn *conn;

    if (p->endpoint) {
        hm_forklist_remove(&p->fork);
        while ((conn = p->idle) != NULL) {
            p->idle = conn->next;
            free_conn(conn);
        }
        pthread_mutex_destroy(&p->mu);
    }
    free(p->hostname);
    free(p->socket_path);
    free(p->password);
    free(p->endpoint);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------- bounded replies */

/*
 * The reply object functions of hiredis 0.14, with a budget: each one
 * checks the reply being built against the exchange's rpool_shape before
 * allocating anything, and refuses (returns NULL, which hiredis reports as
 * out of memory) what a legitimate reply to our commands cannot contain.
 * The objects are the ones hiredis's own functions build (malloc'ed
 * redisReply trees), so freeReplyObject() frees them.
 */
static rpool_guard *guard_of(const redisReadTask *task)
{
    return task->privdata;
}

static int refuse(rpool_guard *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(rpool_guard *g, const char *fmt, ...)
{
    va_list ap;

    if (!g->why[0]) {
        va_start(ap, fmt);
        vsnprintf(g->why, sizeof g->why, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Charges cost bytes to the reply; -1 when that exceeds its budget. */
static int charge(rpool_guard *g, size_t cost)
{
    if (cost > g->shape.bytes || g->used > g->shape.bytes - cost)
        return refuse(g, "reply longer than %zu bytes", g->shape.bytes);
    g->used += cost;
    return 0;
}

/* A new reply object of type, hooked into its parent array. */
static redisReply *new_obj(const redisReadTask *task, int type)
{
    redisReply *r = calloc(1, sizeof *r);

    if (!r)
        return NULL;
    r->type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;

        parent->element[task->idx] = r;
    }
    return r;
}

static void *guarded_string(const redisReadTask *task, char *str, size_t len)
{
    rpool_guard *g = guard_of(task);
    redisReply *r;
    char *copy;

    if (len > g->shape.bulk) {
        refuse(g, "a string of %zu bytes, longer than the %zu expected", len,
               g->shape.bulk);
        return NULL;
    }
    if (charge(g, len + RPOOL_FRAME) != 0)
        return NULL;
    copy = malloc(len + 1);
    if (!copy)
        return NULL;
    r = new_obj(task, task->type);
    if (!r) {
        free(copy);
        return NULL;
    }
    memcpy(copy, str, len);
    copy[len] = '\0';
    r->str = copy;
    r->len = len;
    return r;
}

static void *guarded_array(const redisReadTask *task, int elements)
{
    rpool_guard *g = guard_of(task);
    const redisReadTask *t;
    unsigned depth = 1;
    redisReply *r;

    for (t = task->parent; t; t = t->parent)
        depth++;
    if (depth > g->shape.depth) {
        refuse(g, "an array nested %u deep where %u is expected", depth,
               g->shape.depth);
        return NULL;
    }
    if (elements < 0 || (uint64_t)elements > g->shape.elements) {
        refuse(g, "an array of %d elements where at most %u are expected",
               elements, (unsigned)g->shape.elements);
        return NULL;
    }
    if (charge(g, RPOOL_FRAME) != 0)
        return NULL;
    r = new_obj(task, REDIS_REPLY_ARRAY);
    if (!r)
        return NULL;
    if (elements > 0) {
        r->element = calloc((size_t)elements, sizeof *r->element);
        if (!r->element) {
            if (task->parent)
                ((redisReply *)task->parent->obj)->element[task->idx] = NULL;
            free(r);
            return NULL;
        }
    }
    r->elements = (size_t)elements;
    return r;
}

static void *guarded_integer(const redisReadTask *task, long long value)
{
    redisReply *r;

    if (charge(guard_of(task), RPOOL_FRAME) != 0)
        return NULL;
    r = new_obj(task, REDIS_REPLY_INTEGER);
    if (r)
        r->integer = value;
    return r;
}

static void *guarded_nil(const redisReadTask *task)
{
    if (charge(guard_of(task), RPOOL_FRAME) != 0)
        return NULL;
    return new_obj(task, REDIS_REPLY_NIL);
}

static redisReplyObjectFunctions guarded_functions = {
    guarded_string, guarded_array,   guarded_integer,
    guarded_nil,    freeReplyObject,
};

rpool_shape rpool_scalar(const rpool *p)
{
    rpool_shape s = {0, 0, p->max_value_bytes,
                     p->max_value_bytes + RPOOL_FRAME};

    return s;
}

rpool_shape rpool_array(const rpool *p, size_t n)
{
    rpool_shape s = {(uint32_t)n, 1, p->max_value_bytes,
                     (n + 1) * (p->max_value_bytes + RPOOL_FRAME)};

    return s;
}

static int status_of(const redisContext *c)
{
    switch (c->err) {
    case REDIS_ERR_PROTOCOL:
        return HERMES_BE_PROTOCOL;
    case REDIS_ERR_OOM:
        return HERMES_BE_NOMEM;
    default: /* REDIS_ERR_IO (also timeouts), _EOF, _OTHER */
        return HERMES_BE_IO;
    }
}

int rpool_append(rpool *p, rpool_conn *conn, int argc, const char **argv,
                 const size_t *lens)
{
    if (redisAppendCommandArgv(conn->c, argc, argv, lens) != REDIS_OK) {
        conn->broken = 1;
        atomic_fetch_add(&p->errors, 1);
        rpool_log(p, HERMES_LOG_ERROR, "cannot queue %.*s: out of memory",
                  (int)lens[0], argv[0]);
        return HERMES_BE_NOMEM;
    }
    atomic_fetch_add(&p->commands, 1);
    return HERMES_BE_OK;
}

/*
 * Writing to a socket the server has closed raises SIGPIPE, whose default
 * action kills the application, and a library must not change the
 * process's signal dispositions.  Where send() takes MSG_NOSIGNAL the
 * pool writes with it (send_queued): no signal is ever raised, at no cost.
 * Elsewhere SIGPIPE is blocked in the calling thread while a pipeline is
 * written, and one that became pending because of our EPIPE is consumed
 * before unblocking (as libpq does): two system calls per round trip.
 */
#ifdef MSG_NOSIGNAL
typedef int pipe_mask;
static void sigpipe_block(pipe_mask *old)
{
    *old = 0;
}
static void sigpipe_unblock(const pipe_mask *old, int got_epipe)
{
    (void)old;
    (void)got_epipe;
}
#else
typedef sigset_t pipe_mask;
static void sigpipe_block(pipe_mask *old)
{
    sigset_t pipe_set;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, old);
}

static void sigpipe_unblock(const pipe_mask *old, int got_epipe)
{
    if (got_epipe && !sigismember(old, SIGPIPE)) {
        sigset_t pipe_set, pending;
        struct timespec zero = {0, 0};

        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
            while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                ;
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}
#endif

/* Marks c as timed out, the way hiredis reports its own timeouts. */
static void set_timed_out(redisContext *c)
{
    c->err = REDIS_ERR_IO;
    snprintf(c->errstr, sizeof c->errstr, "timed out");
}

/* Waits until c's socket is ready for events or the deadline passes;
 * -1 on an error, -2 when the deadline passed. */
static int wait_ready(redisContext *c, short events, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = clock_ns(CLOCK_MONOTONIC);
        if (now >= deadline_ns) {
            set_timed_out(c);
            return -2;
        }
        struct pollfd pfd = {.fd = c->fd, .events = events};
        int ms = (int)((deadline_ns - now + 999999u) / 1000000u);
        int r = poll(&pfd, 1, ms);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR) {
            c->err = REDIS_ERR_IO;
            snprintf(c->errstr, sizeof c->errstr, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

/*
 * Sends everything queued on c within the deadline.  Each send() is
 * non-blocking, so the common case (the socket buffer has room for the
 * whole pipeline) is one system call with no poll() before it; only a
 * full buffer waits, for what is left of the deadline.  Returns 0, or -1
 * with c->err set (*timed_out when the deadline passed).
 */
#define OBUF_KEEP (64u * 1024u)

static int send_queued(redisContext *c, uint64_t deadline_ns, int *timed_out)
{
    size_t off = 0, len = sdslen(c->obuf);
    int flags = MSG_DONTWAIT;
    int w;

#ifdef MSG_NOSIGNAL
    flags |= MSG_NOSIGNAL;
#endif
    while (off < len) {
        ssize_t n = send(c->fd, c->obuf + off, len - off, flags);

        if (n >= 0) {
            off += (size_t)n;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if ((w = wait_ready(c, POLLOUT, deadline_ns)) != 0) {
                *timed_out = w == -2;
                return -1;
            }
        } else if (errno != EINTR) {
            c->err = REDIS_ERR_IO;
            snprintf(c->errstr, sizeof c->errstr, "send: %s", strerror(errno));
            return -1;
        }
    }
    /* Keep a small buffer for the next pipeline; give a big one back. */
    sds empty = sdsalloc(c->obuf) > OBUF_KEEP ? sdsempty() : NULL;
    if (empty) {
        sdsfree(c->obuf);
        c->obuf = empty;
    } else {
        sdsclear(c->obuf);
    }
    return 0;
}

/* hiredis reads at most this much per redisBufferRead(). */
#define READ_CHUNK (16u * 1024u)

/*
 * Sends what is queued on c and reads one reply into *reply, all within
 * one deadline.  hiredis's blocking redisGetReply() restarts the socket
 * timeout on every read and on every EINTR, so a server that trickles
 * bytes, or a stream of signals, could stretch a call without bound; here
 * the socket is only touched once poll() says it is ready, and poll() waits
 * for what is left of command_timeout_ms for the whole exchange.
 *
 * We read only while the buffer holds no complete reply, so what it holds
 * is the unfinished part of this reply (plus at most one read of what
 * follows): more than the reply's budget means the server sends more than
 * any legitimate reply would, and reading stops there.
 */
static int get_reply(redisContext *c, rpool_guard *g, void **reply,
                     uint64_t deadline_ns, int *timed_out)
{
    int w;

    *reply = NULL;
    /* The pipeline's first reply sends it all. */
    if (sdslen(c->obuf) > 0 && send_queued(c, deadline_ns, timed_out) != 0)
        return REDIS_ERR;
    for (;;) {
        if (redisGetReplyFromReader(c, reply) != REDIS_OK)
            return REDIS_ERR;
        if (*reply)
            return REDIS_OK;
        if ((w = wait_ready(c, POLLIN, deadline_ns)) != 0) {
            *timed_out = w == -2;
            return REDIS_ERR;
        }
        if (redisBufferRead(c) != REDIS_OK)
            return REDIS_ERR;
        if (c->reader->len - c->reader->pos >
            g->shape.bytes - g->used + READ_CHUNK) {
            refuse(g, "reply longer than %zu bytes", g->shape.bytes);
            c->err = REDIS_ERR_PROTOCOL;
            snprintf(c->errstr, sizeof c->errstr, "%s", g->why);
            return REDIS_ERR;
        }
    }
}

/* The server answered a request: if it was taken for hung, it is not. */
static void answered(rpool *p)
{
    pthread_mutex_lock(&p->mu);
    if (atomic_load(&p->hung)) {
        atomic_store(&p->hung, 0);
        p->backoff_ms = 0;
        p->retry_at_ns = 0;
        rpool_log(p, HERMES_LOG_INFO, "answers again");
    }
    pthread_mutex_unlock(&p->mu);
}

uint64_t rpool_deadline(const rpool *p)
{
    return clock_ns(CLOCK_MONOTONIC) +
           (uint64_t)p->command_timeout_ms * 1000000u;
}

/* An exchange on conn failed: the stream is out of step (or gone), so the
 * connection is never reused; counts and logs the failure, returns its
 * status. */
static int exchange_failed(rpool *p, rpool_conn *conn, const char *what)
{
    int refused = conn->guard.why[0] != '\0';

    conn->broken = 1;
    atomic_fetch_add(&p->errors, 1);
    if (refused)
        rpool_log(p, HERMES_LOG_ERROR, "%s failed: refused a reply: %s", what,
                  conn->guard.why);
    else
        rpool_log(p, HERMES_LOG_ERROR, "%s failed: %s", what,
                  conn->c->errstr[0] ? conn->c->errstr : "no reply");
    return refused ? HERMES_BE_PROTOCOL : status_of(conn->c);
}

int rpool_send(rpool *p, rpool_conn *conn, uint64_t deadline_ns,
               const char *what)
{
    pipe_mask old;
    int rc = 0;

    conn->guard.why[0] = '\0';
    sigpipe_block(&old);
    if (sdslen(conn->c->obuf) > 0)
        rc = send_queued(conn->c, deadline_ns, &conn->timed_out);
    sigpipe_unblock(&old, rc != 0 && conn->c->err == REDIS_ERR_IO);
    return rc == 0 ? HERMES_BE_OK : exchange_failed(p, conn, what);
}

int rpool_read(rpool *p, rpool_conn *conn, size_t n, redisReply **replies,
               const rpool_shape *shape, const char *what)
{
    return rpool_read_until(p, conn, n, replies, shape, what,
                            rpool_deadline(p));
}

int rpool_read_until(rpool *p, rpool_conn *conn, size_t n, redisReply **replies,
                     const rpool_shape *shape, const char *what,
                     uint64_t deadline)
{
    size_t i;
    void *r;
    pipe_mask old;

    conn->guard.shape = *shape;
    sigpipe_block(&old);
    for (i = 0; i < n; i++) {
        r = NULL;
        conn->guard.used = 0;
        conn->guard.why[0] = '\0';
        if (get_reply(conn->c, &conn->guard, &r, deadline, &conn->timed_out) !=
                REDIS_OK ||
            !r) {
            sigpipe_unblock(&old, conn->c->err == REDIS_ERR_IO);
            while (i > 0) {
                i--;
                freeReplyObject(replies[i]);
                replies[i] = NULL;
            }
            return exchange_failed(p, conn, what);
        }
        replies[i] = r;
    }
    sigpipe_unblock(&old, 0);
    if (atomic_load(&p->hung))
        answered(p);
    return HERMES_BE_OK;
}

/* Send AUTH and SELECT in one round trip; any refusal fails the connect. */
static int handshake(rpool *p, rpool_conn *conn, uint64_t deadline)
{
    redisReply *replies[2] = {NULL, NULL};
    char dbbuf[16];
    const char *argv[2];
    size_t lens[2];
    size_t n = 0, i;
    rpool_shape shape = {0, 0, 4096, 4096 + RPOOL_FRAME};
    int rc;

    if (p->password) {
        argv[0] = "AUTH";
        lens[0] = 4;
        argv[1] = p->password;
        lens[1] = strlen(p->password);
        rc = rpool_append(p, conn, 2, argv, lens);
        if (rc != HERMES_BE_OK)
            return rc;
        n++;
    }
    if (p->db != 0) {
        argv[0] = "SELECT";
        lens[0] = 6;
        lens[1] = (size_t)snprintf(dbbuf, sizeof dbbuf, "%d", p->db);
        argv[1] = dbbuf;
        rc = rpool_append(p, conn, 2, argv, lens);
        if (rc != HERMES_BE_OK)
            return rc;
        n++;
    }
    if (n == 0)
        return HERMES_BE_OK;
    rc = rpool_read_until(p, conn, n, replies, &shape, "AUTH/SELECT",
                          deadline ? deadline : rpool_deadline(p));
    if (rc != HERMES_BE_OK)
        return rc;
    for (i = 0; i < n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            char q[128];

            rpool_log(
                p, HERMES_LOG_ERROR, "%s refused: %s",
                (p->password && i == 0) ? "AUTH" : "SELECT",
                rpool_quote(replies[i]->str, replies[i]->len, q, sizeof q));
            rc = HERMES_BE_IO;
        }
        freeReplyObject(replies[i]);
    }
    return rc;
}

/* Open and prepare one context.  Runs without the pool lock held.  With a
 * deadline (CLOCK_MONOTONIC ns), the connect and the handshake end by it
 * as well as within their own timeouts. */
static int connect_until(rpool *p, uint64_t deadline, rpool_conn **out)
{
    uint32_t ms = p->connect_timeout_ms;
    if (deadline) {
        uint64_t now = clock_ns(CLOCK_MONOTONIC);
        uint64_t left = deadline > now ? (deadline - now) / 1000000u : 0;
        if (left == 0)
            return HERMES_BE_IO;
        if (left < ms)
            ms = (uint32_t)left;
    }
    struct timeval ctv = ms_to_tv(ms);
    rpool_conn *conn;
    redisContext *c;
    int rc;

    if (p->socket_path)
        c = redisConnectUnixWithTimeout(p->socket_path, ctv);
    else
        c = redisConnectWithTimeout(p->hostname, p->port, ctv);
    if (!c) {
        rpool_log(p, HERMES_LOG_ERROR, "connect: out of memory");
        return HERMES_BE_NOMEM;
    }
    if (c->err) {
        rpool_log(p, HERMES_LOG_ERROR, "connect failed: %s", c->errstr);
        redisFree(c);
        return HERMES_BE_IO;
    }
    if (redisSetTimeout(c, ms_to_tv(p->command_timeout_ms)) != REDIS_OK) {
        rpool_log(p, HERMES_LOG_ERROR, "cannot set timeout: %s",
                  c->errstr[0] ? c->errstr : strerror(errno));
        redisFree(c);
        return HERMES_BE_IO;
    }
    conn = calloc(1, sizeof *conn);
    if (!conn) {
        redisFree(c);
        return HERMES_BE_NOMEM;
    }
    conn->c = c;
    conn->gen = hm_forklist_generation();
    /* Every reply on this context is built within the current shape. */
    c->reader->fn = &guarded_functions;
    c->reader->privdata = &conn->guard;
    rc = handshake(p, conn, deadline);
    if (rc != HERMES_BE_OK) {
        redisFree(c);
        free(conn);
        return rc;
    }
    *out = conn;
    return HERMES_BE_OK;
}

/*
 * Called with mu held after a failed connect, or a request that timed
 * out: no connection is handed out for backoff_ms.  A failure of the call
 * that probed the server after a backoff doubles it (up to the cap); the
 * first timeout of a run starts it at BACKOFF_FIRST_MS, and the timeouts of
 * other requests that were in flight meanwhile do not stretch it.
 */
static void back_off_locked(rpool *p, int probe_failed)
{
    if (p->backoff_ms == 0)
        p->backoff_ms = BACKOFF_FIRST_MS;
    else if (probe_failed)
        p->backoff_ms *= 2;
    if (p->backoff_ms > BACKOFF_MAX_MS)
        p->backoff_ms = BACKOFF_MAX_MS;
    uint64_t until = mono_ns(p) + (uint64_t)p->backoff_ms * 1000000u;
    if (probe_failed || until > p->retry_at_ns)
        p->retry_at_ns = until;
}

int rpool_take(rpool *p, rpool_conn **out)
{
    return rpool_take_until(p, 0, out);
}

int rpool_take_until(rpool *p, uint64_t wait_deadline, rpool_conn **out)
{
    struct timespec deadline;
    int have_deadline = 0, probe;
    rpool_conn *conn;
    int rc;

    pthread_mutex_lock(&p->mu);
    check_fork_locked(p);
    for (;;) {
        probe = 0;
        if (p->backoff_ms != 0) {
            uint64_t now = mono_ns(p);

            /* While backing off (after a failed connect or a request that
             * timed out) every call fails at once, without touching the
             * network: neither a dead nor a hung server costs a timeout
             * per call. */
            if (now < p->retry_at_ns) {
                pthread_mutex_unlock(&p->mu);
                pool_detail(p, "backing off after a failure, not "
                               "retrying yet");
                return HERMES_BE_IO;
            }
            /* Past the backoff: this call probes the server, and the
             * others keep failing fast for as long as its connect and (a
             * hung server's port still accepts connections) its first
             * request may take. */
            p->retry_at_ns =
                now + ((uint64_t)p->connect_timeout_ms + p->backoff_ms +
                       (atomic_load(&p->hung) ? p->command_timeout_ms : 0)) *
                          1000000u;
            probe = 1;
        }
        if ((conn = p->idle) != NULL) {
            p->idle = conn->next;
            conn->next = NULL;
            conn->probe = probe && atomic_load(&p->hung);
            pthread_mutex_unlock(&p->mu);
            *out = conn;
            return HERMES_BE_OK;
        }
        if (p->live < p->size)
            break;
        if (!have_deadline) {
            uint64_t d = wait_deadline
                             ? wait_deadline
                             : clock_ns(CLOCK_MONOTONIC) +
                                   (uint64_t)p->command_timeout_ms * 1000000u;

            deadline.tv_sec = (time_t)(d / 1000000000u);
            deadline.tv_nsec = (long)(d % 1000000000u);
            have_deadline = 1;
        }
        rpool_waiter w = {.got = NULL, .retry = 0, .next = NULL};
        int timed_out = 0;

        cv_init(&w.cv);
        if (p->waiters_tail)
            p->waiters_tail->next = &w;
        else
            p->waiters = &w;
        p->waiters_tail = &w;
        while (!w.got && !w.retry && !timed_out)
            timed_out =
                pthread_cond_timedwait(&w.cv, &p->mu, &deadline) == ETIMEDOUT;
        if (!w.got && !w.retry)
            unqueue(p, &w);
        pthread_cond_destroy(&w.cv);
        if (w.got) {
            conn = w.got;
            conn->probe = 0;
            pthread_mutex_unlock(&p->mu);
            *out = conn;
            return HERMES_BE_OK;
        }
        if (timed_out && !p->idle && p->live >= p->size) {
            pthread_mutex_unlock(&p->mu);
            rpool_log(p, HERMES_LOG_WARN, "all %u connections busy for %u ms",
                      p->size, (unsigned)p->command_timeout_ms);
            return HERMES_BE_IO;
        }
    }

    /* A caller with a deadline of its own (a relayed read, batch.c) gets
     * no connect it could not finish in time: none at all once the
     * deadline has passed (that is no failure of the server's, so no
     * backoff), and the connect and its handshake end by it. */
    if (wait_deadline && clock_ns(CLOCK_MONOTONIC) >= wait_deadline) {
        pthread_mutex_unlock(&p->mu);
        pool_detail(p, "deadline passed before a connection was free");
        return HERMES_BE_IO;
    }
    p->live++;
    pthread_mutex_unlock(&p->mu);

    rc = connect_until(p, wait_deadline, &conn);

    pthread_mutex_lock(&p->mu);
    if (rc == HERMES_BE_OK) {
        atomic_fetch_add(&p->connects, 1);
        if (atomic_load(&p->hung)) {
            /* A hung server's port accepts connections: only an answer
             * ends the backoff (rpool_read), a timeout doubles it. */
            conn->probe = probe;
        } else {
            if (p->backoff_ms != 0)
                rpool_log(p, HERMES_LOG_INFO, "connected again");
            p->backoff_ms = 0;
            p->retry_at_ns = 0;
        }
        pthread_mutex_unlock(&p->mu);
        *out = conn;
        return HERMES_BE_OK;
    }
    atomic_fetch_add(&p->connect_failures, 1);
    p->live--;
    if (rc != HERMES_BE_NOMEM)
        back_off_locked(p, 1);
    /* Every waiter may now use the slot we gave up, or fail fast on the
     * backoff rather than sit out its whole timeout. */
    wake_all_locked(p);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void rpool_put(rpool *p, rpool_conn *conn)
{
    pthread_mutex_lock(&p->mu);
    check_fork_locked(p);
    if (conn->gen != p->gen) {
        /* Borrowed before fork(): `live` was reset and does not count it. */
        drop_foreign(conn);
    } else if (conn->broken) {
        int lost =
            conn->c->err == REDIS_ERR_EOF || conn->c->err == REDIS_ERR_IO;

        if (conn->timed_out) {
            /* The server accepted the request and did not answer within
             * command_timeout_ms: hung, or too slow to be worth waiting
             * for.  Calls compute directly until a probe gets an answer. */
            if (!atomic_load(&p->hung))
                rpool_log(p, HERMES_LOG_WARN,
                          "no answer within %u ms: backing off",
                          (unsigned)p->command_timeout_ms);
            atomic_store(&p->hung, 1);
            back_off_locked(p, conn->probe);
        }
        free_conn(conn);
        p->live--;
        /* The server closed or stopped answering one connection: it most
         * likely restarted or died, and the idle ones are just as dead.
         * Dropping them now means one failed call, not one per idle
         * connection, before calls work again. */
        while (lost && (conn = p->idle) != NULL) {
            p->idle = conn->next;
            free_conn(conn);
            p->live--;
        }
        wake_all_locked(p);
    } else {
        rpool_waiter *w = pop_waiter(p);

        if (w) { /* handed over: no race for the idle list */
            w->got = conn;
            pthread_cond_signal(&w->cv);
        } else {
            conn->next = p->idle;
            p->idle = conn;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

int rpool_connect(rpool *p, uint64_t deadline, rpool_conn **out)
{
    int rc = connect_until(p, deadline, out);

    if (rc == HERMES_BE_OK)
        atomic_fetch_add(&p->connects, 1);
    else
        atomic_fetch_add(&p->connect_failures, 1);
    return rc;
}

void rpool_conn_free(rpool_conn *conn)
{
    free_conn(conn);
}
